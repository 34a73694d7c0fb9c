/* The JSON API behind the pages (docs/web.md): /api/runs, /api/runs/ID,
 * /api/runs/ID/epochs; /api/compare is beside the compare page. A run's
 * object is the one `epochd compare --format json` prints for it (by the
 * same code), with what the dashboard adds: device, note, error, live
 * progress (as `epochd status` computes it) and, for one run, its spec,
 * checkpoint and the worker's last messages. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/compare.h"
#include "cli/status.h"
#include "service/error.h"
#include "service/observe.h"
#include "service/run_spec.h"
#include "web/internal.h"

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }
/* A JSON string of s; bytes that are not UTF-8 (a file name can hold any)
 * become '?' instead of failing the whole answer. */
static json_t *jstr(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s);
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    while (*p) {
        size_t len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
        size_t k = 1;
        while (len && k < len && (p[k] & 0xc0) == 0x80)
            k++;
        if (len && k == len) {
            memcpy(c + o, p, len);
            o += len;
            p += len;
        } else {
            c[o++] = '?';
            p++;
        }
    }
    c[o] = '\0';
    j = json_string(c); /* overlong forms and surrogates may still fail: then a placeholder */
    free(c);
    return j ? j : json_string("(not UTF-8)");
}

static int jset(json_t *o, const char *k, json_t *v) { return v ? json_object_set_new(o, k, v) : -1; }

static int send_json(web_request *rq, json_t *j, int status)
{
    rq->type = "application/json";
    rq->status = status;
    if (status != 200)
        rq->no_cache = true;
    int rc = j ? json_dumpf(j, rq->out, CLI_JSON_FLAGS) : -1;
    fputc('\n', rq->out);
    json_decref(j);
    return rc ? svc_error(SVC_ENOMEM, "cannot render JSON") : 0;
}

int web_json_error(web_request *rq, int status, const char *msg)
{
    json_t *o = json_object();
    if (o && jset(o, "error", json_string(msg))) {
        json_decref(o);
        o = NULL;
    }
    return send_json(rq, o, status);
}

static json_t *progress_json(const db_run *r, const db_board_row *b, const db_plan *plan)
{
    cli_progress p;
    cli_status_progress(r, b, plan, time(NULL), &p);
    json_t *o = json_object();
    if (o && (jset(o, "live", json_boolean(p.live)) || jset(o, "epoch", json_integer(p.epoch)) ||
              jset(o, "epoch_fraction", jnum(p.epoch_fraction)) || jset(o, "fraction", jnum(p.total_fraction)) ||
              jset(o, "images_per_sec", jnum(p.images_per_sec)) || jset(o, "eta_seconds", jnum(p.eta_seconds)) ||
              jset(o, "updated_at", jstr(r->progress_updated_at)) ||
              jset(o, "note", jstr(p.note[0] ? p.note : NULL)))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* What the dashboard adds to compare's object of run r. */
static int add_run_fields(json_t *o, const db_run *r, const db_board_row *b, const db_plan *plan)
{
    return jset(o, "device", jstr(r->device)) || jset(o, "requested_device", jstr(r->requested_device)) ||
           jset(o, "spec_path", jstr(r->spec_path)) || jset(o, "note", jstr(r->note)) ||
           jset(o, "error", jstr(r->error)) || jset(o, "attempts", json_integer(r->attempts)) ||
           jset(o, "started_at", jstr(r->started_at)) || jset(o, "progress", progress_json(r, b, plan));
}

static int by_id(const void *x, const void *y)
{
    json_int_t a = json_integer_value(json_object_get(*(json_t *const *)x, "id"));
    json_int_t b = json_integer_value(json_object_get(*(json_t *const *)y, "id"));
    return (a > b) - (a < b);
}

/* The runs matching f: compare's objects, by id, with the added fields. */
static int runs_json(web_request *rq, const db_filter *f, json_t **out)
{
    *out = NULL;
    cli_comparison *c = NULL;
    db_run_list *runs = NULL;
    db_board *board = NULL;
    db_plan_list *plans = NULL;
    int rc = db_begin_read(rq->db);
    if (rc == 0 && (rc = cli_comparison_load_filter(rq->db, f, CLI_SORT_BEST, false, &c)) == 0 &&
        (rc = db_runs_list(rq->db, f, DB_ORDER_ID, &runs)) == 0 && (rc = db_leaderboard(rq->db, f, &board)) == 0)
        rc = cli_plans_load(rq->db, &plans);
    if (rc == 0)
        rc = db_commit(rq->db);
    else
        db_rollback(rq->db);
    json_t *arr = rc == 0 ? cli_comparison_json(c) : NULL;
    cli_comparison_free(c);
    if (rc < 0) {
        rc = svc_error(svc_from_db(rc), "%s", db_last_error());
    } else if (!arr) {
        rc = svc_error(SVC_ENOMEM, "out of memory");
    } else {
        size_t n = json_array_size(arr);
        json_t **items = malloc((n ? n : 1) * sizeof *items);
        rc = items ? 0 : svc_error(SVC_ENOMEM, "out of memory");
        for (size_t i = 0; i < n && rc == 0; i++)
            items[i] = json_array_get(arr, i);
        if (rc == 0) {
            qsort(items, n, sizeof *items, by_id);
            json_t *sorted = json_array();
            for (size_t i = 0; sorted && i < n; i++) {
                json_int_t id = json_integer_value(json_object_get(items[i], "id"));
                const db_run *r = NULL;
                for (size_t k = 0; k < runs->n && !r; k++) /* both by id: this is a merge */
                    if (runs->runs[k].id == id)
                        r = &runs->runs[k];
                if (r && add_run_fields(items[i], r, cli_status_board_row(board, id), cli_plan_find(plans, id)))
                    rc = svc_error(SVC_ENOMEM, "out of memory");
                if (json_array_append(sorted, items[i]))
                    rc = svc_error(SVC_ENOMEM, "out of memory");
            }
            if (!sorted)
                rc = svc_error(SVC_ENOMEM, "out of memory");
            if (rc == 0)
                *out = sorted;
            else
                json_decref(sorted);
        }
        free(items);
    }
    json_decref(arr);
    db_run_list_free(runs);
    db_board_free(board);
    db_plan_list_free(plans);
    return rc;
}

int web_api_runs(web_request *rq)
{
    db_filter f = {0};
    const char *st = web_arg(rq, "status"), *name = web_arg(rq, "name");
    db_status s;
    if (st && *st) {
        if (db_status_parse(st, &s) < 0)
            return web_json_error(rq, 400, "status: expected queued, running, done, failed, invalid, cancelled or "
                                       "interrupted");
        f.statuses = DB_STATUS_BIT(s);
    }
    if (name && *name) {
        f.names = &name;
        f.n_names = 1;
    }
    json_t *arr;
    int rc = runs_json(rq, &f, &arr);
    return rc < 0 ? rc : send_json(rq, arr, 200);
}

int web_api_run(web_request *rq, int64_t id)
{
    db_filter f = {.run_id = id};
    json_t *arr;
    int rc = runs_json(rq, &f, &arr);
    if (rc < 0)
        return rc;
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return web_json_error(rq, 404, "no such run");
    }
    json_t *o = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    db_run *r = NULL;
    if ((rc = db_run_get(rq->db, id, &r)) < 0) {
        json_decref(o);
        if (rc == DB_ENOTFOUND)
            return web_json_error(rq, 404, "no such run");
        return svc_error(svc_from_db(rc), "%s", db_last_error());
    }
    json_t *msgs = json_null();
    if (rq->srv->service) {
        char **lines = NULL;
        size_t n = 0;
        msgs = json_array();
        if (msgs && svc_service_messages(rq->srv->service, id, &lines, &n) == 0)
            for (size_t i = 0; i < n; i++) {
                json_array_append_new(msgs, jstr(lines[i]));
                free(lines[i]);
            }
        free(lines);
    }
    /* the spec as it ran: a sweep combination's derived from its file */
    char *spec = NULL;
    if ((rc = svc_run_spec_text(rq->db, r, NULL, &spec, NULL)) < 0) {
        json_decref(msgs);
        json_decref(o);
        db_run_free(r);
        return rc == SVC_ENOMEM ? rc : web_json_error(rq, 500, svc_last_error());
    }
    rc = jset(o, "spec", jstr(spec)) || jset(o, "spec_sha256", jstr(r->spec_sha256)) ||
         jset(o, "priority", json_integer(r->priority)) || jset(o, "checkpoint", jstr(r->checkpoint)) ||
         jset(o, "best_checkpoint_epoch",
              r->best_checkpoint_epoch > 0 ? json_integer(r->best_checkpoint_epoch) : json_null()) ||
         jset(o, "cancel_requested", json_boolean(r->cancel_requested)) || jset(o, "messages", msgs);
    free(spec);
    db_run_free(r);
    if (rc) {
        json_decref(o);
        return svc_error(SVC_ENOMEM, "out of memory");
    }
    return send_json(rq, o, 200);
}

int web_api_epochs(web_request *rq, int64_t id)
{
    db_run *r = NULL;
    db_epoch *e = NULL;
    size_t n = 0;
    int rc = db_begin_read(rq->db);
    if (rc == 0 && (rc = db_run_get(rq->db, id, &r)) == 0)
        rc = db_epochs_get(rq->db, id, &e, &n);
    if (rc == 0)
        rc = db_commit(rq->db);
    else
        db_rollback(rq->db);
    db_run_free(r);
    if (rc == DB_ENOTFOUND)
        return web_json_error(rq, 404, "no such run");
    if (rc < 0)
        return svc_error(svc_from_db(rc), "%s", db_last_error());
    json_t *arr = json_array();
    double elapsed = 0.0;
    for (size_t i = 0; arr && i < n; i++) {
        const db_epoch *ep = &e[i];
        if (isfinite(ep->seconds)) /* the results view's running total skips unknown times */
            elapsed += ep->seconds;
        json_t *o = json_object();
        if (!o || jset(o, "epoch", json_integer(ep->epoch)) || jset(o, "train_loss", jnum(ep->train_loss)) ||
            jset(o, "train_acc", jnum(ep->train_acc)) || jset(o, "test_loss", jnum(ep->test_loss)) ||
            jset(o, "test_acc", jnum(ep->test_acc)) || jset(o, "lr", jnum(ep->lr)) ||
            jset(o, "seconds", jnum(ep->seconds)) || jset(o, "elapsed_seconds", jnum(elapsed)) ||
            jset(o, "samples_per_sec", jnum(ep->samples_per_sec))) {
            json_decref(o);
            json_decref(arr);
            arr = NULL;
        } else if (json_array_append_new(arr, o)) { /* it freed o */
            json_decref(arr);
            arr = NULL;
        }
    }
    free(e);
    return arr ? send_json(rq, arr, 200) : svc_error(SVC_ENOMEM, "out of memory");
}
