/* From a settled spec file to run rows: one queued run per valid entry (a
 * sweep gives one per combination) and an `invalid` row with the located
 * messages per invalid entry, each exactly once (identity: path, SHA-256 of
 * the entry's text, sweep values; a sweep's file text is stored once, in
 * the same transaction, and its combinations' rows refer to it); an entry that was invalid and now
 * validates (its dataset appeared, the limits changed) is queued when it is
 * read again (at start, on SIGHUP). Queued runs that never started are
 * cancelled when their file changes (superseded) or disappears; runs that
 * started keep going (`epochd cancel` stops them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "service/log.h"
#include "service/notify.h"
#include "service/internal.h"
#include "schema/paths.h"
#include "schema/spec.h"

typedef struct ident {
    const char *sha;
    const char *sweep;
} ident;

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* A retry can help with these; the others would fail the same way again. */
static bool transient(int rc)
{
    return rc == DB_EBUSY || rc == DB_EFULL || rc == DB_ESQL || rc == DB_ENOMEM;
}

static void chomp(char *s)
{
    size_t n = s ? strlen(s) : 0;
    while (n && s[n - 1] == '\n')
        s[--n] = '\0';
}

static void requested_device(const spec *s, char *buf, size_t len)
{
    if (s->device == SPEC_DEVICE_CUDA && s->device_index >= 0)
        snprintf(buf, len, "cuda:%d", s->device_index);
    else
        snprintf(buf, len, "%s", spec_device_name(s->device));
}

/* Cancels queued runs of path that never started and are not one of keep[]. */
static int cancel_queued(svc_service *sv, const char *path, const ident *keep, int n_keep, const char *reason)
{
    db_filter f = {.statuses = DB_STATUS_BIT(DB_QUEUED), .spec_path = path};
    db_run_list *l = NULL;
    int rc = db_runs_list(sv->db, &f, DB_ORDER_ID, &l);
    if (rc)
        return rc;
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        const db_run *r = &l->runs[i];
        bool kept = false;
        for (int k = 0; k < n_keep && !kept; k++)
            kept = same_str(r->spec_sha256, keep[k].sha) && same_str(r->sweep, keep[k].sweep);
        if (kept || r->attempts > 0 || svc_attempt_find(sv, r->id))
            continue;
        rc = db_run_finish(sv->db, r->id, DB_CANCELLED, reason);
        if (rc == 0)
            svc_log_run(SVC_LOG_INFO, r->id, "cancelled: %s", reason);
    }
    db_run_list_free(l);
    return rc;
}

/* A sweep's file text, stored once for all its combinations (spec_texts):
 * each combination's row names it instead of holding its effective spec,
 * which an anchored file can make ~10x the file (service/run_spec.h derives
 * it again). */
typedef struct file_text {
    const char *buf;
    size_t len;
    bool stored;
} file_text;

static int store_file_text(svc_service *sv, const spec_file *sf, file_text *ft)
{
    if (ft->stored)
        return 0;
    int rc = db_spec_text_put(sv->db, sf->sha256, ft->buf, ft->len);
    ft->stored = rc == 0;
    return rc;
}

/* Records one entry (or the whole file when e is NULL) unless its identity
 * is known already. */
static int record(svc_service *sv, const char *path, const spec_file *sf, const spec_entry *e, file_text *ft,
                  int *n_new)
{
    const char *buf = ft->buf;
    /* a combination names its sweep file's text; a plain spec keeps its own */
    bool combo = e && e->sweep_json;
    const char *sha = e ? e->sha256 : sf->sha256;
    const char *sweep = e ? e->sweep_json : NULL;
    int64_t id;
    int rc = db_run_find_spec(sv->db, path, sha, sweep, &id);
    bool was_invalid = false;
    if (rc == 0 && e && e->spec) {
        /* the same bytes were invalid before, but the world changed (the
         * dataset appeared, the limits were raised): it runs now */
        db_run *prev = NULL;
        if ((rc = db_run_get(sv->db, id, &prev)) < 0)
            return rc;
        was_invalid = prev->status == DB_INVALID;
        db_run_free(prev);
    }
    if (rc == 0 && !was_invalid) {
        svc_log(SVC_LOG_DEBUG, "%s%s%s: unchanged (run %lld)", path, sweep ? " " : "", sweep ? sweep : "",
                (long long)id);
        return 0;
    }
    if (rc != 0 && rc != DB_ENOTFOUND)
        return rc;
    if (e && e->spec) {
        const spec *s = e->spec;
        char dev[32];
        requested_device(s, dev, sizeof dev);
        if (combo && (rc = store_file_text(sv, sf, ft)) < 0)
            return rc;
        db_run_new row = {.name = s->name, .spec_path = path, .spec_sha256 = s->sha256,
                          .spec = combo ? NULL : s->text, .spec_file_sha256 = combo ? sf->sha256 : NULL,
                          .template_name = eng_template_name(s->model.template_kind), .requested_device = dev,
                          .sweep = s->sweep_json, .params = s->params, .epochs_planned = s->train.epochs,
                          .priority = s->priority};
        rc = db_run_create(sv->db, &row, &id);
        if (rc == 0) {
            (*n_new)++;
            svc_log_run(SVC_LOG_INFO, id, "queued %s from %s%s%s (%s, %lld parameters, %lld epochs, priority %lld)%s",
                        s->name, path, s->sweep_json ? " " : "", s->sweep_json ? s->sweep_json : "", dev,
                        (long long)s->params, (long long)s->train.epochs, (long long)s->priority,
                        was_invalid ? ": it was invalid before and is valid now" : "");
        }
        return rc;
    }
    char *msg = spec_diags_join(e && e->diags.n ? &e->diags : &sf->file_diags);
    char *name = e ? NULL : spec_stem(path); /* names a file-level invalid run, as a spec's default name */
    if (!msg || (!e && !name)) {
        free(msg);
        free(name);
        return DB_ENOMEM;
    }
    chomp(msg);
    if (combo && (rc = store_file_text(sv, sf, ft)) < 0) {
        free(msg);
        free(name);
        return rc;
    }
    db_run_new row = {.name = e ? e->name : name, .spec_path = path, .spec_sha256 = sha,
                      .spec = combo ? NULL : e ? e->text : buf, .spec_file_sha256 = combo ? sf->sha256 : NULL,
                      .sweep = sweep, .params = -1, .epochs_planned = -1};
    rc = db_run_create_invalid(sv->db, &row, *msg ? msg : "invalid spec", &id);
    if (rc == 0) {
        (*n_new)++;
        svc_log_run(SVC_LOG_WARNING, id, "invalid spec %s:\n%s", path, msg);
    }
    free(msg);
    free(name);
    return rc;
}

int svc_ingest_file(void *ctx, const char *path, const char *buf, size_t len)
{
    svc_service *sv = ctx;
    spec_options opt;
    svc_config_spec_options(&sv->cfg, &opt);
    opt.drop_combination_texts = true; /* the file is stored; a combination's text is derived when needed */
    spec_file *sf = NULL;
    if (spec_file_load_buffer(path, buf, len, &opt, &sf) < 0) {
        svc_log(SVC_LOG_ERR, "%s: out of memory loading the spec; trying again later", path);
        return -1;
    }
    if (!sf->sha256[0])
        spec_sha256_hex(buf, len, sf->sha256);
    bool whole = sf->file_diags.n > 0 || sf->n_entries == 0;
    if (whole && sf->file_diags.n == 0 &&
        spec_diags_add(&sf->file_diags, path, 0, 0, "", "the file holds no experiment") < 0) {
        spec_file_free(sf);
        return -1;
    }
    int n_keep = whole ? 1 : sf->n_entries, n_new = 0;
    file_text ft = {.buf = buf, .len = len};
    ident *keep = calloc((size_t)n_keep, sizeof *keep);
    int rc = keep ? db_begin(sv->db) : DB_ENOMEM;
    if (rc == 0) {
        if (whole) {
            keep[0] = (ident){sf->sha256, NULL};
            rc = record(sv, path, sf, NULL, &ft, &n_new);
        } else {
            for (int i = 0; i < sf->n_entries && rc == 0; i++) {
                keep[i] = (ident){sf->entries[i].sha256, sf->entries[i].sweep_json};
                rc = record(sv, path, sf, &sf->entries[i], &ft, &n_new);
            }
        }
        if (rc == 0)
            rc = cancel_queued(sv, path, keep, n_keep, "superseded: its spec file changed");
        if (rc == 0)
            rc = db_commit(sv->db);
        else
            db_rollback(sv->db);
    }
    free(keep);
    spec_file_free(sf);
    if (rc) {
        bool again = transient(rc);
        svc_log(SVC_LOG_ERR, "%s: cannot record its runs: %s%s", path, db_last_error(),
                again ? "; trying again" : "");
        svc_guard_db_write(sv, rc);
        return again ? -1 : 0;
    }
    if (n_new)
        svc_sched_request(sv);
    return 0;
}

int svc_ingest_unreadable(void *ctx, const char *path, const char *reason)
{
    svc_service *sv = ctx;
    /* its identity is the reason: the same unreadable file is recorded once,
     * and once it can be read its bytes make a new identity */
    char sha[65], msg[700];
    snprintf(msg, sizeof msg, "%s: %s", path, reason);
    spec_sha256_hex(msg, strlen(msg), sha);
    int64_t id;
    int rc = db_run_find_spec(sv->db, path, sha, NULL, &id);
    if (rc == 0)
        return 0;
    char *name = spec_stem(path);
    db_run_new row = {.name = name ? name : path, .spec_path = path, .spec_sha256 = sha, .params = -1,
                      .epochs_planned = -1};
    if (rc == DB_ENOTFOUND && (rc = db_run_create_invalid(sv->db, &row, msg, &id)) == 0)
        svc_log_run(SVC_LOG_WARNING, id, "invalid spec %s", msg);
    free(name);
    if (rc) {
        svc_log(SVC_LOG_ERR, "%s: cannot record it: %s%s", path, db_last_error(), transient(rc) ? "; trying again" : "");
        svc_guard_db_write(sv, rc);
        return transient(rc) ? -1 : 0;
    }
    return 0;
}

void svc_ingest_gone(void *ctx, const char *path)
{
    svc_service *sv = ctx;
    svc_log(SVC_LOG_INFO, "%s: deleted", path);
    if (cancel_queued(sv, path, NULL, 0, "its spec file was deleted") < 0)
        svc_log(SVC_LOG_ERR, "%s: cannot cancel its queued runs: %s", path, db_last_error());
    db_filter f = {.statuses = DB_STATUS_BIT(DB_RUNNING), .spec_path = path};
    db_run_list *l = NULL;
    if (db_runs_list(sv->db, &f, DB_ORDER_ID, &l) == 0) {
        for (size_t i = 0; i < l->n; i++)
            svc_log_run(SVC_LOG_INFO, l->runs[i].id,
                        "keeps running although its spec file was deleted (epochd cancel %lld stops it)",
                        (long long)l->runs[i].id);
        db_run_list_free(l);
    }
    svc_sched_status(sv);
}

void svc_ingest_scan_done(void *ctx)
{
    svc_service *sv = ctx;
    /* files deleted while no service was watching */
    db_run_list *l = NULL;
    if (db_runs_queued(sv->db, &l) == 0) {
        for (size_t i = 0; i < l->n; i++) {
            const db_run *r = &l->runs[i];
            if (r->attempts == 0 && svc_watch_covers(sv->watch, r->spec_path) &&
                !svc_watch_has(sv->watch, r->spec_path) && !svc_attempt_find(sv, r->id)) {
                if (db_run_finish(sv->db, r->id, DB_CANCELLED, "its spec file was deleted") == 0)
                    svc_log_run(SVC_LOG_INFO, r->id, "cancelled: its spec file %s was deleted", r->spec_path);
                else
                    svc_log_run(SVC_LOG_ERR, r->id, "cannot cancel: %s", db_last_error());
            }
        }
        db_run_list_free(l);
    } else {
        svc_log(SVC_LOG_ERR, "cannot list the queue: %s", db_last_error());
    }
    if (!sv->ready && !sv->stopping) {
        sv->ready = true;
        svc_log(SVC_LOG_INFO, "ready: watching %s (%zu new or changed spec files settling)",
                svc_watch_root(sv->watch), svc_watch_pending(sv->watch));
        svc_notify("READY=1");
        svc_sched_request(sv);
        svc_sched_status(sv);
    }
}
