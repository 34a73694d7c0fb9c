/* The scheduler's placement (placement.h): what the planner needs, from the
 * database and the runs in flight, and its plan written back for `epochd
 * status`.
 *
 * Per pass: the queued runs' costs (worked out from their spec once and
 * kept in `plans`), device speeds learned from the timed epochs (again when
 * an epoch was recorded, at most every SPEEDS_MAX_AGE_MS otherwise), the
 * remaining time of each run in flight from its own measured epochs (as
 * `epochd status` computes its ETA), and each GPU's memory for the service's
 * runs. Free memory comes from `epochd devices --json`; under
 * earliest_finish a run is started on a GPU only after a fresh look at it -
 * one taken since the service's last start or end of a run there and
 * within MEMORY_MAX_AGE_MS - so a new look is taken first when needed. */
#include "service/placement.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "db/plans.h"
#include "service/datafetch.h"
#include "service/estimate.h"
#include "service/log.h"
#include "service/map.h"
#include "service/run_spec.h"

#define SPEEDS_MAX_AGE_MS 60000
#define MEMORY_MAX_AGE_MS 60000
#define BACKFILL_PER_PASS 16  /* finished runs given a cost per pass, to learn from */
#define REWRITE_SECONDS 1.0   /* a plan's time moves this much (or 1 % of the way there) before it is rewritten */

/* What the placement remembers of a run between passes. */
typedef struct memo {
    int prev_device;     /* the device it was planned on, -1: none */
    bool written;        /* the row below is in the database */
    char device[32];     /* "" for none */
    double start, finish, cpu, seconds; /* unix seconds, unix seconds, seconds, seconds; NAN: none */
    uint64_t pass;
} memo;

struct svc_placer {
    int n_gpus;
    svc_gpu_info gpus[SVC_MAX_GPUS];   /* by host ordinal */
    bool mem_known;                    /* some GPU reported its free memory */
    int64_t ours_at_query[SVC_MAX_GPUS];
    uint64_t sig_seen[SVC_MAX_GPUS];     /* our runs on each GPU at the last look */
    uint64_t changed_ms[SVC_MAX_GPUS];   /* when one of ours last started or ended there */
    uint64_t mem_at_ms;
    bool querying;
    uint64_t query_ms;                 /* when the memory query in flight began */
    double query_seconds;              /* how long reading free memory takes (a running mean) */
    svc_speeds speeds;
    bool speeds_ok;
    uint64_t speeds_at_ms;
    int64_t speeds_epochs;             /* epochs of the runs in flight when learned */
    svc_map memos;                     /* run id -> memo */
    uint64_t pass;
    /* the last pass's plan, until svc_placement_record writes it */
    bool *planned;                     /* by queue position: planned in that pass */
    size_t n_planned;
    double planned_at;                 /* unix seconds */
};

static svc_placer *placer(svc_service *sv)
{
    if (!sv->placer) {
        sv->placer = calloc(1, sizeof *sv->placer);
        if (sv->placer)
            svc_map_init(&sv->placer->memos);
    }
    return sv->placer;
}

void svc_placement_free(svc_service *sv)
{
    svc_placer *pl = sv->placer;
    if (!pl)
        return;
    for (svc_map_iter it = svc_map_begin(&pl->memos); svc_map_next(&it);)
        free(it.value);
    svc_map_free(&pl->memos);
    svc_speeds_clear(&pl->speeds);
    free(pl->planned);
    free(pl);
    sv->placer = NULL;
}

static double now_unix(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

/* unix seconds -> "2026-11-28T03:04:05.123Z" */
static void iso_at(double t, char out[DB_TIME_LEN])
{
    time_t s = (time_t)floor(t);
    unsigned ms = (unsigned)((t - floor(t)) * 1000.0) % 1000u;
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, DB_TIME_LEN, "%.19s.%03uZ", base, ms);
}

static void key_of(int64_t id, char key[24]) { snprintf(key, 24, "%lld", (long long)id); }

static memo *memo_of(svc_placer *pl, int64_t id)
{
    char key[24];
    key_of(id, key);
    memo *m = svc_map_get(&pl->memos, key);
    if (m)
        return m;
    m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->prev_device = -1;
    m->start = m->finish = m->cpu = m->seconds = NAN;
    if (svc_map_put(&pl->memos, key, m) < 0) {
        free(m);
        return NULL;
    }
    return m;
}

/* ---- GPU memory ---- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* Which runs of ours are on each GPU (host ordinal): a sum of their
 * hashes, which changes whenever one starts or ends there. */
static void our_runs(svc_service *sv, uint64_t sig[SVC_MAX_GPUS])
{
    memset(sig, 0, SVC_MAX_GPUS * sizeof *sig);
    for (svc_attempt *w = sv->attempts; w; w = w->next)
        if (w->place.ordinal >= 0 && w->place.ordinal < SVC_MAX_GPUS)
            sig[w->place.ordinal] += mix((uint64_t)w->run_id * 1000003u + (uint64_t)w->worker_id);
}

void svc_placement_devices(svc_service *sv, int n_gpus, const svc_gpu_info *gpus)
{
    svc_placer *pl = placer(sv);
    if (!pl)
        return;
    pl->n_gpus = n_gpus < 0 ? 0 : n_gpus > SVC_MAX_GPUS ? SVC_MAX_GPUS : n_gpus;
    pl->mem_known = false;
    for (int i = 0; i < pl->n_gpus; i++) {
        pl->gpus[i] = gpus[i];
        pl->ours_at_query[i] = 0;
        pl->mem_known |= gpus[i].memory_free_bytes > 0;
    }
    our_runs(sv, pl->sig_seen);
    pl->mem_at_ms = uv_now(sv->loop);
}

/* Notes when runs of ours started or ended on a GPU since the last look. */
static void track_changes(svc_service *sv, svc_placer *pl)
{
    uint64_t sig[SVC_MAX_GPUS];
    our_runs(sv, sig);
    for (int g = 0; g < SVC_MAX_GPUS; g++)
        if (sig[g] != pl->sig_seen[g]) {
            pl->sig_seen[g] = sig[g];
            pl->changed_ms[g] = uv_now(sv->loop);
        }
}

/* The memory our runs are expected to hold on each GPU now. */
static void our_memory(svc_service *sv, const svc_map *costs, int64_t out[SVC_MAX_GPUS])
{
    memset(out, 0, SVC_MAX_GPUS * sizeof *out);
    for (svc_attempt *w = sv->attempts; w; w = w->next) {
        char key[24];
        key_of(w->run_id, key);
        const db_cost *c = svc_map_get(costs, key);
        if (w->place.ordinal >= 0 && w->place.ordinal < SVC_MAX_GPUS && c && c->memory_bytes > 0)
            out[w->place.ordinal] += c->memory_bytes;
    }
}

static void on_memory(svc_service *sv, int n_gpus, const svc_gpu_info *gpus)
{
    svc_placer *pl = sv->placer;
    if (!pl)
        return;
    pl->querying = false;
    if (sv->stopping)
        return;
    /* a start on a GPU waits for this read: the plan counts it in */
    double took = (double)(uv_now(sv->loop) - pl->query_ms) / 1000.0;
    pl->query_seconds = pl->query_seconds > 0 ? 0.5 * (pl->query_seconds + took) : took;
    if (n_gpus == pl->n_gpus) {
        for (int i = 0; i < n_gpus; i++) {
            pl->gpus[i].memory_free_bytes = gpus[i].memory_free_bytes;
            if (gpus[i].memory_bytes > 0)
                pl->gpus[i].memory_bytes = gpus[i].memory_bytes;
        }
    } else {
        svc_log(SVC_LOG_WARNING, "asking for free GPU memory found %d GPUs instead of %d; keeping the old numbers",
                n_gpus, pl->n_gpus);
    }
    /* the runs of ours that were there when it was read */
    db_plan_list *l = NULL;
    svc_map costs;
    svc_map_init(&costs);
    if (db_plans_list(sv->db, DB_STATUS_BIT(DB_RUNNING), &l) == 0) {
        for (size_t i = 0; i < l->n; i++) {
            char key[24];
            key_of(l->plans[i].run_id, key);
            svc_map_put(&costs, key, &l->plans[i].cost);
        }
    }
    our_memory(sv, &costs, pl->ours_at_query);
    svc_map_free(&costs);
    db_plan_list_free(l);
    track_changes(sv, pl);
    pl->mem_at_ms = uv_now(sv->loop);
    for (int i = 0; i < pl->n_gpus; i++)
        svc_log(SVC_LOG_DEBUG, "cuda:%d: %.2f GiB free, %.2f GiB of it held by our runs", i,
                (double)pl->gpus[i].memory_free_bytes / (1u << 30), (double)pl->ours_at_query[i] / (1u << 30));
    svc_sched_request(sv);
}

/* Bytes the service's runs may use on GPU ordinal g in all; -1: not limited. */
static int64_t capacity(const svc_placer *pl, int g)
{
    const svc_gpu_info *i = &pl->gpus[g];
    int64_t cap = -1;
    if (i->memory_free_bytes > 0)
        cap = i->memory_free_bytes + pl->ours_at_query[g];
    else if (i->memory_bytes > 0)
        cap = i->memory_bytes;
    if (cap > 0 && i->memory_bytes > 0 && cap > i->memory_bytes)
        cap = i->memory_bytes;
    return cap;
}

static bool memory_fresh(svc_service *sv, const svc_placer *pl, int g)
{
    if (!pl->mem_known || pl->gpus[g].memory_free_bytes <= 0)
        return true; /* nothing to refresh: the total is all there is */
    return pl->mem_at_ms > pl->changed_ms[g] && uv_now(sv->loop) - pl->mem_at_ms <= MEMORY_MAX_AGE_MS;
}

/* ---- costs and speeds ---- */

/* A run's cost from its spec (a sweep combination's derived from its file). */
static int cost_of_run(svc_service *sv, const db_run *r, db_cost *c)
{
    spec_options opt;
    svc_config_spec_options(&sv->cfg, &opt);
    char *text = NULL;
    int rc = svc_run_spec_text(sv->db, r, &opt, &text, NULL);
    if (rc == 0)
        rc = svc_cost_of_spec(text, r->spec_path, c);
    else
        *c = (db_cost){-1, -1, -1, -1}; /* unknown */
    free(text);
    return rc;
}

/* Costs of the queued and running runs, from `plans` or worked out now
 * (and stored); the list keeps the memory that `costs` points into. */
static int load_costs(svc_service *sv, const db_run_list *q, db_plan_list **keep, svc_map *costs, db_cost **extra)
{
    int rc = db_plans_list(sv->db, DB_STATUS_BIT(DB_QUEUED) | DB_STATUS_BIT(DB_RUNNING), keep);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < (*keep)->n; i++) {
        char key[24];
        key_of((*keep)->plans[i].run_id, key);
        if (svc_map_put(costs, key, &(*keep)->plans[i].cost) < 0)
            return DB_ENOMEM;
    }
    *extra = calloc(q->n ? q->n : 1, sizeof **extra);
    if (!*extra)
        return DB_ENOMEM;
    bool open = false; /* new costs are written in one transaction (a sweep brings many) */
    for (size_t i = 0; i < q->n && rc == 0; i++) {
        const db_run *r = &q->runs[i];
        char key[24];
        key_of(r->id, key);
        if (svc_map_get(costs, key))
            continue;
        db_cost *c = &(*extra)[i];
        if (cost_of_run(sv, r, c) < 0)
            svc_log_run(SVC_LOG_WARNING, r->id, "no estimate: %s", svc_last_error());
        if (!open)
            open = db_begin(sv->db) == 0;
        if (db_plan_set_cost(sv->db, r->id, c) < 0)
            svc_log_run(SVC_LOG_WARNING, r->id, "cannot record its cost: %s", db_last_error());
        if (svc_map_put(costs, key, c) < 0)
            rc = DB_ENOMEM;
    }
    if (open && db_commit(sv->db) < 0) /* a failed commit has rolled its level back */
        svc_log(SVC_LOG_WARNING, "cannot record the runs' costs: %s", db_last_error());
    return rc;
}

/* Finished runs recorded before the planner (or by `epochd run`) get a
 * cost a few at a time, so that their epochs teach the speeds too. */
static void backfill(svc_service *sv)
{
    int64_t *ids = NULL;
    size_t n = 0;
    if (db_runs_without_cost(sv->db, BACKFILL_PER_PASS, &ids, &n) < 0)
        return;
    bool open = n > 0 && db_begin(sv->db) == 0;
    for (size_t i = 0; i < n; i++) {
        db_run *r = NULL;
        if (db_run_get(sv->db, ids[i], &r) < 0)
            continue;
        db_cost c;
        cost_of_run(sv, r, &c); /* unknowns are recorded too: tried once */
        if (db_plan_set_cost(sv->db, r->id, &c) < 0)
            svc_log_run(SVC_LOG_DEBUG, r->id, "cannot record its cost: %s", db_last_error());
        db_run_free(r);
    }
    if (open && db_commit(sv->db) < 0)
        svc_log(SVC_LOG_DEBUG, "cannot record the finished runs' costs: %s", db_last_error());
    free(ids);
}

static void learn(svc_service *sv, svc_placer *pl)
{
    int64_t epochs = 0;
    for (svc_attempt *w = sv->attempts; w; w = w->next)
        epochs += w->epochs_done + 1000000 * w->run_id;
    uint64_t now = uv_now(sv->loop);
    if (pl->speeds_ok && epochs == pl->speeds_epochs && now - pl->speeds_at_ms < SPEEDS_MAX_AGE_MS)
        return;
    db_speed_sample *v = NULL;
    size_t n = 0;
    if (db_speed_samples(sv->db, &v, &n) < 0) {
        svc_log(SVC_LOG_WARNING, "cannot read the epochs' timings: %s", db_last_error());
        return;
    }
    if (svc_speeds_learn(&pl->speeds, v, n) == 0) {
        pl->speeds_ok = true;
        pl->speeds_epochs = epochs;
        pl->speeds_at_ms = now;
    }
    db_speed_samples_free(v, n);
}

static double device_speed(svc_service *sv, svc_placer *pl, int d, const char *name, const char *tmpl,
                           int64_t flops)
{
    char dev[32];
    svc_plan_device_name(&sv->slots, d, dev, sizeof dev);
    double guess;
    if (d == svc_plan_cpu(&sv->slots)) {
        guess = svc_speed_guess_cpu(svc_config_threads(&sv->cfg));
    } else {
        int o = sv->slots.gpu_ordinal[d];
        guess = svc_speed_guess_gpu(o < pl->n_gpus ? pl->gpus[o].multiprocessors : -1);
    }
    return svc_speed_of(&pl->speeds, dev, name, tmpl, flops, guess, NULL);
}

/* ---- the runs ---- */

static const db_board_row *board_row(const db_board *b, int64_t id)
{
    for (size_t i = 0; b && i < b->n; i++)
        if (b->rows[i].id == id)
            return &b->rows[i];
    return NULL;
}

static const db_run *run_row(const db_run_list *l, int64_t id)
{
    for (size_t i = 0; l && i < l->n; i++)
        if (l->runs[i].id == id)
            return &l->runs[i];
    return NULL;
}

/* Seconds a run in flight still needs: the epochs left (less the part of
 * the current one done) times its own mean epoch time so far, or, before
 * its first epoch ends, its training rate; failing both, the estimate
 * (`estimated` seconds per epoch). The rule of `epochd status`'s ETA. */
static double remaining(const db_run *r, const db_board_row *b, double estimated)
{
    if (!r || r->epochs_planned <= 0)
        return NAN;
    int64_t done = b ? b->epochs_done : 0;
    double f = r->progress_epoch == done + 1 && isfinite(r->progress_fraction) ? r->progress_fraction : 0.0;
    double left = (double)(r->epochs_planned - done) - f;
    if (left <= 0)
        return 0;
    double per = estimated;
    if (b && done > 0 && b->train_seconds > 0)
        per = b->train_seconds / (double)done;
    else if (r->samples_per_epoch > 0 && isfinite(r->progress_images_per_sec) && r->progress_images_per_sec > 0)
        per = (double)r->samples_per_epoch / r->progress_images_per_sec;
    return left * per;
}

static int device_of(const svc_slots *s, const svc_placement *p)
{
    if (p->gpu < 0)
        return svc_plan_cpu(s);
    for (int i = 0; i < s->n_gpus; i++)
        if (s->gpu_ordinal[i] == p->ordinal)
            return i;
    return -1; /* a GPU no longer in use: it does not hold a planned slot */
}

/* ---- recording ---- */

static bool moved(double a, double b, double now)
{
    if (isnan(a) || isnan(b))
        return isnan(a) != isnan(b);
    double tol = fmax(REWRITE_SECONDS, 0.01 * fabs(b - now));
    return fabs(a - b) > tol;
}

/* Writes the plans that changed since they were last written. */
/* The seconds a start on planned device d waits for a read of the GPU's
 * free memory: earliest_finish trusts that memory only when freshly read
 * (svc_placement_plan), so the plan counts the read in each GPU run's time
 * and the recorded promise takes it out again (record). */
static double memory_read_seconds(const svc_service *sv, const svc_placer *pl, int d)
{
    return d >= 0 && d < sv->slots.n_gpus && pl->mem_known &&
                   (svc_policy)sv->cfg.placement == SVC_POLICY_EARLIEST_FINISH
               ? pl->query_seconds
               : 0.0;
}

static void record(svc_service *sv, svc_placer *pl, const db_run_list *q, const svc_plan_out *out,
                   const bool *planned, double now)
{
    bool open = false;
    for (size_t i = 0; i < q->n; i++) {
        if (!planned[i])
            continue;
        const svc_plan_out *o = &out[i];
        memo *m = memo_of(pl, q->runs[i].id);
        if (!m)
            continue;
        m->pass = pl->pass;
        m->prev_device = o->device;
        char dev[32] = "";
        if (o->device >= 0)
            svc_plan_device_name(&sv->slots, o->device, dev, sizeof dev);
        double start = o->device >= 0 && isfinite(o->start) ? now + o->start : NAN;
        double finish = o->device >= 0 && isfinite(o->finish) ? now + o->finish : NAN;
        /* a waiting run starts after the memory read, a run starting now had
         * it read already: the promise's seconds are the run's own either way */
        const double read = memory_read_seconds(sv, pl, o->device);
        if (read > 0 && isfinite(start) && isfinite(finish)) {
            if (o->action == SVC_PLAN_START)
                finish = fmax(start, finish - read);
            else
                start = fmin(start + read, finish);
        }
        double secs = isfinite(start) && isfinite(finish) ? finish - start : NAN;
        if (m->written && !strcmp(m->device, dev) && !moved(start, m->start, now) && !moved(finish, m->finish, now) &&
            !moved(now + o->cpu_seconds, now + m->cpu, now))
            continue;
        if (!open) {
            if (db_begin(sv->db) < 0) {
                svc_log(SVC_LOG_WARNING, "cannot record the plan: %s", db_last_error());
                return;
            }
            open = true;
        }
        char s_at[DB_TIME_LEN], f_at[DB_TIME_LEN];
        if (isfinite(start))
            iso_at(start, s_at);
        if (isfinite(finish))
            iso_at(finish, f_at);
        db_plan p = {.run_id = q->runs[i].id, .device = dev[0] ? dev : NULL, .start_at = isfinite(start) ? s_at : NULL,
                     .finish_at = isfinite(finish) ? f_at : NULL, .seconds = secs, .cpu_seconds = o->cpu_seconds};
        if (db_plan_set(sv->db, &p) < 0) {
            svc_log_run(SVC_LOG_WARNING, q->runs[i].id, "cannot record its plan: %s", db_last_error());
            continue;
        }
        m->written = true;
        snprintf(m->device, sizeof m->device, "%s", dev);
        m->start = start;
        m->finish = finish;
        m->seconds = secs;
        m->cpu = o->cpu_seconds;
    }
    if (open && db_commit(sv->db) < 0) {
        svc_log(SVC_LOG_WARNING, "cannot record the plan: %s", db_last_error());
        svc_placement_unwritten(sv);
    }
}

/* Forgets runs neither planned in this pass nor in flight. */
static void prune(svc_service *sv, svc_placer *pl)
{
    for (svc_map_iter it = svc_map_begin(&pl->memos); svc_map_next(&it);) {
        memo *m = it.value;
        if (m->pass == pl->pass || svc_attempt_find(sv, strtoll(it.key, NULL, 10)))
            continue;
        free(svc_map_del(&pl->memos, it.key));
    }
}

/* ---- a pass ---- */

typedef struct pass_data {
    db_plan_list *plans;
    db_cost *extra;
    svc_map costs;
    db_board *board;
    db_run_list *running;
    svc_plan_busy *busy;
    svc_plan_job *jobs;
    double *secs;
    int *prev;
    size_t *index;    /* job -> queue position */
    svc_plan_out *jout;
    bool *planned;
} pass_data;

static void pass_free(pass_data *p)
{
    db_plan_list_free(p->plans);
    free(p->extra);
    svc_map_free(&p->costs);
    db_board_free(p->board);
    db_run_list_free(p->running);
    free(p->busy);
    free(p->jobs);
    free(p->secs);
    free(p->prev);
    free(p->index);
    free(p->jout);
    free(p->planned);
}

svc_plan_out *svc_placement_plan(svc_service *sv, const db_run_list *q)
{
    svc_placer *pl = placer(sv);
    if (!pl)
        return NULL;
    pl->pass++;
    const svc_slots *s = &sv->slots;
    int nd = s->n_gpus + 1;
    size_t n = q->n ? q->n : 1;
    pass_data p = {0};
    svc_map_init(&p.costs);
    svc_plan_out *out = calloc(n, sizeof *out);
    p.busy = calloc((size_t)sv->n_attempts + 1, sizeof *p.busy);
    p.jobs = calloc(n, sizeof *p.jobs);
    p.secs = calloc(n * (size_t)nd, sizeof *p.secs);
    p.prev = calloc(n, sizeof *p.prev);
    p.index = calloc(n, sizeof *p.index);
    p.jout = calloc(n, sizeof *p.jout);
    p.planned = calloc(n, sizeof *p.planned);
    int rc = out && p.busy && p.jobs && p.secs && p.prev && p.index && p.jout && p.planned ? 0 : DB_ENOMEM;
    db_filter active = {.statuses = DB_STATUS_BIT(DB_QUEUED) | DB_STATUS_BIT(DB_RUNNING)};
    db_filter running = {.statuses = DB_STATUS_BIT(DB_RUNNING)};
    if (rc == 0)
        rc = load_costs(sv, q, &p.plans, &p.costs, &p.extra);
    if (rc == 0)
        rc = db_leaderboard(sv->db, &active, &p.board);
    if (rc == 0)
        rc = db_runs_list(sv->db, &running, DB_ORDER_ID, &p.running);
    if (rc < 0) {
        svc_log(SVC_LOG_ERR, "cannot plan the queue (%s): placing runs on the first free slot",
                rc == DB_ENOMEM ? "out of memory" : db_last_error());
        pass_free(&p);
        free(out);
        return NULL;
    }
    backfill(sv);
    learn(sv, pl);
    track_changes(sv, pl);

    /* the runs in flight */
    size_t nb = 0;
    for (svc_attempt *w = sv->attempts; w; w = w->next) {
        int d = device_of(s, &w->place);
        if (d < 0)
            continue;
        char key[24];
        key_of(w->run_id, key);
        const db_cost *c = svc_map_get(&p.costs, key);
        const db_run *r = run_row(p.running, w->run_id);
        const db_board_row *b = board_row(p.board, w->run_id);
        double est = c ? svc_estimate_seconds(c, 1, device_speed(sv, pl, d, w->name, r ? r->template_name : NULL,
                                                                   c->flops_per_sample))
                       : NAN;
        double left = remaining(r, b, est);
        p.busy[nb++] = (svc_plan_busy){.device = d, .remaining = isfinite(left) ? left : 0,
                                       .memory = c ? c->memory_bytes : 0};
    }
    /* the queue */
    svc_policy policy = (svc_policy)sv->cfg.placement;
    size_t nj = 0;
    for (size_t i = 0; i < q->n; i++) {
        const db_run *r = &q->runs[i];
        out[i].action = SVC_PLAN_WAIT;
        out[i].device = -1;
        char fetching[8];
        if (r->cancel_requested || svc_attempt_find(sv, r->id) ||
            svc_datafetch_waits(sv, r->id, fetching, sizeof fetching)) /* its data first (datafetch.c) */
            continue;
        char key[24];
        key_of(r->id, key);
        const db_cost *c = svc_map_get(&p.costs, key);
        const db_board_row *b = board_row(p.board, r->id);
        double left = r->epochs_planned > 0 ? (double)(r->epochs_planned - (b ? b->epochs_done : 0)) : NAN;
        double *secs = &p.secs[nj * (size_t)nd];
        for (int d = 0; d < nd; d++) {
            char dev[32];
            svc_plan_device_name(s, d, dev, sizeof dev);
            secs[d] = c && left >= 0 ? svc_overhead_of(&pl->speeds, dev) +
                                           svc_estimate_seconds(c, left, device_speed(sv, pl, d, r->name,
                                                                                      r->template_name,
                                                                                      c->flops_per_sample))
                                     : NAN;
            secs[d] += memory_read_seconds(sv, pl, d);
        }
        memo *m = memo_of(pl, r->id);
        p.prev[nj] = m ? m->prev_device : -1;
        p.jobs[nj] = (svc_plan_job){.id = r->id, .requested = r->requested_device, .priority = r->priority,
                                    .memory = c ? c->memory_bytes : -1, .seconds = secs};
        p.index[nj] = i;
        p.planned[i] = true;
        nj++;
    }
    int64_t mem[SVC_MAX_GPUS];
    bool limited = false;
    for (int d = 0; d < s->n_gpus; d++) {
        int o = s->gpu_ordinal[d];
        mem[d] = o < pl->n_gpus ? capacity(pl, o) : -1;
        limited |= mem[d] >= 0;
    }
    svc_plan_input in = {.policy = policy, .slots = s, .gpu_memory = limited ? mem : NULL,
                         .busy = p.busy, .n_busy = nb, .jobs = p.jobs, .n_jobs = nj, .previous = p.prev};
    if (svc_plan_make(&in, p.jout) < 0) {
        svc_log(SVC_LOG_ERR, "cannot plan the queue (%s): placing runs on the first free slot", svc_last_error());
        pass_free(&p);
        free(out);
        return NULL;
    }
    bool ask = false;
    for (size_t j = 0; j < nj; j++) {
        svc_plan_out *o = &out[p.index[j]];
        *o = p.jout[j];
        /* earliest_finish trusts a GPU's free memory only when freshly read */
        if (in.policy == SVC_POLICY_EARLIEST_FINISH && o->action == SVC_PLAN_START && o->place.gpu >= 0 &&
            !memory_fresh(sv, pl, o->place.ordinal)) {
            o->action = SVC_PLAN_WAIT;
            snprintf(o->note, sizeof o->note, "waiting: reading %s's free memory", o->place.device);
            ask = true;
        }
    }
    if (ask && !pl->querying) {
        if (svc_discover_gpus(sv, true, on_memory) == 0) {
            pl->querying = true;
            pl->query_ms = uv_now(sv->loop);
        }
        else
            svc_log(SVC_LOG_WARNING, "cannot ask for free GPU memory: out of memory");
    }
    /* written by svc_placement_record, once the scheduler knows the notes */
    free(pl->planned);
    pl->planned = p.planned;
    pl->n_planned = q->n;
    pl->planned_at = now_unix();
    p.planned = NULL;
    pass_free(&p);
    return out;
}

void svc_placement_record(svc_service *sv, const db_run_list *q, const svc_plan_out *out)
{
    svc_placer *pl = sv->placer;
    if (!pl || !pl->planned || !out || q->n != pl->n_planned)
        return;
    record(sv, pl, q, out, pl->planned, pl->planned_at);
    prune(sv, pl);
    free(pl->planned);
    pl->planned = NULL;
}

void svc_placement_unwritten(svc_service *sv)
{
    svc_placer *pl = sv->placer;
    if (!pl)
        return;
    for (svc_map_iter it = svc_map_begin(&pl->memos); svc_map_next(&it);)
        ((memo *)it.value)->written = false;
}

svc_place_result svc_placement_result(const svc_plan_out *o, svc_placement *p, char *note, size_t notelen)
{
    *p = o->place;
    snprintf(note, notelen, "%s", o->note);
    return o->action == SVC_PLAN_START ? SVC_PLACE_OK : o->action == SVC_PLAN_NEVER ? SVC_PLACE_NEVER : SVC_PLACE_BUSY;
}
