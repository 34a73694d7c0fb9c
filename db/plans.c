/* The planner's table: costs, plans, and the timed epochs speeds are learned
 * from. These statements run once per scheduler pass at most, so they are
 * prepared per call rather than cached. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "db/internal.h"
#include "db/plans.h"

static int prepare(db *d, const char *sql, sqlite3_stmt **s)
{
    int st = sqlite3_prepare_v2(d->h, sql, -1, s, NULL);
    return st == SQLITE_OK ? DB_OK : db__sqlite_error(d, st, "prepare a plans statement");
}

/* Steps a bound write; a foreign-key failure means the run does not exist. */
static int step_write(db *d, sqlite3_stmt *s, int64_t run_id, const char *what)
{
    int st = sqlite3_step(s);
    sqlite3_finalize(s);
    if (st == SQLITE_DONE)
        return DB_OK;
    if (st == SQLITE_CONSTRAINT_FOREIGNKEY)
        return db__error(DB_ENOTFOUND, "no run %lld to %s", (long long)run_id, what);
    return db__sqlite_error(d, st, what);
}

int db_plan_set_cost(db *d, int64_t run_id, const db_cost *c)
{
    static const char sql[] =
        "INSERT INTO plans (run_id, flops_per_sample, train_samples, test_samples, memory_bytes)"
        " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (run_id) DO UPDATE SET"
        " flops_per_sample = excluded.flops_per_sample, train_samples = excluded.train_samples,"
        " test_samples = excluded.test_samples, memory_bytes = excluded.memory_bytes";
    if (!c)
        return db__error(DB_EINVAL, "no cost given");
    sqlite3_stmt *s;
    int rc = prepare(d, sql, &s);
    if (rc)
        return rc;
    if ((rc = db__bind_int(d, s, 1, run_id)) || (rc = db__bind_int_or_null(d, s, 2, c->flops_per_sample, 0)) ||
        (rc = db__bind_int_or_null(d, s, 3, c->train_samples, 0)) ||
        (rc = db__bind_int_or_null(d, s, 4, c->test_samples, 0)) ||
        (rc = db__bind_int_or_null(d, s, 5, c->memory_bytes, 0))) {
        sqlite3_finalize(s);
        return rc;
    }
    return step_write(d, s, run_id, "record its cost");
}

int db_plan_set(db *d, const db_plan *p)
{
    static const char sql[] =
        "INSERT INTO plans (run_id, device, start_at, finish_at, seconds, cpu_seconds, planned_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (run_id) DO UPDATE SET"
        " device = excluded.device, start_at = excluded.start_at, finish_at = excluded.finish_at,"
        " seconds = excluded.seconds, cpu_seconds = excluded.cpu_seconds, planned_at = excluded.planned_at";
    if (!p)
        return db__error(DB_EINVAL, "no plan given");
    if ((p->seconds < 0) || (p->cpu_seconds < 0))
        return db__error(DB_EINVAL, "run %lld: a plan's durations cannot be negative", (long long)p->run_id);
    char now[DB_TIME_LEN];
    int rc = db_now(now);
    sqlite3_stmt *s;
    if (rc || (rc = prepare(d, sql, &s)))
        return rc;
    bool none = !p->device;
    if ((rc = db__bind_int(d, s, 1, p->run_id)) || (rc = db__bind_text(d, s, 2, p->device)) ||
        (rc = db__bind_text(d, s, 3, none ? NULL : p->start_at)) ||
        (rc = db__bind_text(d, s, 4, none ? NULL : p->finish_at)) ||
        (rc = db__bind_double(d, s, 5, none ? NAN : p->seconds)) ||
        (rc = db__bind_double(d, s, 6, p->cpu_seconds)) || (rc = db__bind_text(d, s, 7, now))) {
        sqlite3_finalize(s);
        return rc;
    }
    return step_write(d, s, p->run_id, "record its plan");
}

static void plan_fini(db_plan *p)
{
    free(p->device);
    free(p->start_at);
    free(p->finish_at);
    free(p->planned_at);
}

void db_plan_list_free(db_plan_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        plan_fini(&l->plans[i]);
    free(l->plans);
    free(l);
}

/* A growable array step: room for one more element of size `size`. */
static int grow(void **v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return DB_OK;
    size_t ncap = *cap ? 2 * *cap : 16;
    void *nv = realloc(*v, ncap * size);
    if (!nv)
        return db__error(DB_ENOMEM, "out of memory");
    *v = nv;
    *cap = ncap;
    return DB_OK;
}

static void read_cost(sqlite3_stmt *s, int first, db_cost *c)
{
    c->flops_per_sample = db__col_int(s, first, -1);
    c->train_samples = db__col_int(s, first + 1, -1);
    c->test_samples = db__col_int(s, first + 2, -1);
    c->memory_bytes = db__col_int(s, first + 3, -1);
}

int db_plans_list(db *d, unsigned statuses, db_plan_list **out)
{
    static const char sql[] =
        "SELECT p.run_id, p.flops_per_sample, p.train_samples, p.test_samples, p.memory_bytes,"
        " p.device, p.start_at, p.finish_at, p.seconds, p.cpu_seconds, p.planned_at"
        " FROM plans p JOIN runs r ON r.id = p.run_id"
        " WHERE (?1 >> CASE r.status WHEN 'queued' THEN 0 WHEN 'running' THEN 1"
        "  WHEN 'done' THEN 2 WHEN 'failed' THEN 3 WHEN 'invalid' THEN 4 WHEN 'cancelled' THEN 5"
        "  WHEN 'interrupted' THEN 6 END) & 1"
        " ORDER BY p.run_id";
    *out = NULL;
    db_plan_list *l = calloc(1, sizeof *l);
    if (!l)
        return db__error(DB_ENOMEM, "out of memory");
    sqlite3_stmt *s;
    int rc = prepare(d, sql, &s);
    if (rc) {
        free(l);
        return rc;
    }
    size_t cap = 0;
    int st;
    if ((rc = db__bind_int(d, s, 1, (int64_t)statuses)))
        goto out;
    while ((st = sqlite3_step(s)) == SQLITE_ROW) {
        if ((rc = grow((void **)&l->plans, l->n, &cap, sizeof *l->plans)))
            goto out;
        db_plan *p = &l->plans[l->n];
        memset(p, 0, sizeof *p);
        p->run_id = sqlite3_column_int64(s, 0);
        read_cost(s, 1, &p->cost);
        p->seconds = db__col_double(s, 8);
        p->cpu_seconds = db__col_double(s, 9);
        l->n++; /* counted before the strings: a failure below frees what was read */
        if ((rc = db__col_text(s, 5, &p->device)) || (rc = db__col_text(s, 6, &p->start_at)) ||
            (rc = db__col_text(s, 7, &p->finish_at)) || (rc = db__col_text(s, 10, &p->planned_at)))
            goto out;
    }
    if (st != SQLITE_DONE)
        rc = db__sqlite_error(d, st, "read plans");
out:
    sqlite3_finalize(s);
    if (rc)
        db_plan_list_free(l);
    else
        *out = l;
    return rc;
}

void db_speed_samples_free(db_speed_sample *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].device);
        free(v[i].template_name);
    }
    free(v);
}

int db_speed_samples(db *d, db_speed_sample **out, size_t *n)
{
    static const char sql[] =
        "SELECT r.id, r.device, r.template, p.flops_per_sample, p.train_samples, p.test_samples,"
        " p.memory_bytes, count(*), total(e.seconds),"
        " CASE WHEN r.status = 'done' AND r.attempts = 1 AND r.epochs_planned = count(*)"
        "  THEN (julianday(r.finished_at) - julianday(r.started_at)) * 86400.0 END, r.name"
        " FROM runs r JOIN plans p ON p.run_id = r.id JOIN epochs e ON e.run_id = r.id"
        " WHERE r.device IS NOT NULL AND p.flops_per_sample > 0 AND e.seconds > 0"
        " GROUP BY r.id ORDER BY r.id";
    *out = NULL;
    *n = 0;
    sqlite3_stmt *s;
    int rc = prepare(d, sql, &s);
    if (rc)
        return rc;
    db_speed_sample *v = NULL;
    size_t len = 0, cap = 0;
    int st;
    while ((st = sqlite3_step(s)) == SQLITE_ROW) {
        if ((rc = grow((void **)&v, len, &cap, sizeof *v)))
            goto out;
        db_speed_sample *x = &v[len++];
        memset(x, 0, sizeof *x);
        x->run_id = sqlite3_column_int64(s, 0);
        read_cost(s, 3, &x->cost);
        x->epochs = sqlite3_column_int64(s, 7);
        x->seconds = sqlite3_column_double(s, 8);
        x->run_seconds = db__col_double(s, 9);
        if ((rc = db__col_text(s, 1, &x->device)) || (rc = db__col_text(s, 2, &x->template_name)) ||
            (rc = db__col_text(s, 10, &x->name)))
            goto out;
    }
    if (st != SQLITE_DONE)
        rc = db__sqlite_error(d, st, "read epoch timings");
out:
    sqlite3_finalize(s);
    if (rc) {
        db_speed_samples_free(v, len);
        return rc;
    }
    *out = v;
    *n = len;
    return DB_OK;
}

int db_runs_without_cost(db *d, size_t max, int64_t **ids, size_t *n)
{
    static const char sql[] =
        "SELECT r.id FROM runs r WHERE (r.spec IS NOT NULL OR r.spec_file_sha256 IS NOT NULL)"
        " AND NOT EXISTS (SELECT 1 FROM plans p WHERE p.run_id = r.id)"
        " AND (r.status = 'queued' OR EXISTS (SELECT 1 FROM epochs e WHERE e.run_id = r.id))"
        " ORDER BY r.id LIMIT ?1";
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *s;
    int rc = prepare(d, sql, &s);
    if (rc)
        return rc;
    size_t cap = 0;
    int st;
    if ((rc = db__bind_int(d, s, 1, (int64_t)max)))
        goto out;
    while ((st = sqlite3_step(s)) == SQLITE_ROW) {
        if ((rc = grow((void **)ids, *n, &cap, sizeof **ids)))
            goto out;
        (*ids)[(*n)++] = sqlite3_column_int64(s, 0);
    }
    if (st != SQLITE_DONE)
        rc = db__sqlite_error(d, st, "read runs without a cost");
out:
    sqlite3_finalize(s);
    if (rc) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}
