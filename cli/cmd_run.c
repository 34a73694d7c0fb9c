/* epochd run: trains a spec in the foreground, with a progress bar on a
 * terminal, writing the run and its epochs to SQLite. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "service/error.h"
#include "service/paths.h"
#include "service/session.h"
#include "schema/spec.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    stop_flag = 1;
    signal(sig, SIG_DFL); /* a second Ctrl-C stops at once */
}

typedef struct run_view {
    db *db;
    int64_t run_id;
    const spec *spec;
    bool tty;
    int64_t epochs;
    int64_t samples_per_epoch;
    bool bar_shown;
} run_view;

static void fmt_duration(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 359999)
        snprintf(buf, len, "--:--");
    else if (s >= 3600)
        snprintf(buf, len, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else
        snprintf(buf, len, "%d:%02d", (int)s / 60, (int)s % 60);
}

static void view_started(void *ctx, const svc_started_info *s)
{
    run_view *v = ctx;
    v->epochs = s->epochs;
    v->samples_per_epoch = s->train_samples;
    printf("run %lld: %s on %s (%d thread%s), %lld parameters, %lld epochs of %lld steps", (long long)v->run_id,
           v->spec->name, s->device, s->threads, s->threads == 1 ? "" : "s", (long long)s->params,
           (long long)s->epochs, (long long)s->steps_per_epoch);
    if (s->resumed_epoch)
        printf(", resuming after epoch %lld", (long long)s->resumed_epoch);
    printf("\n");
    fflush(stdout);
}

static void view_progress(void *ctx, const eng_progress *p)
{
    run_view *v = ctx;
    db_progress dp = {.epoch = p->epoch, .fraction = (double)p->step / (double)p->steps,
                      .images_per_sec = p->samples_per_sec, .samples_per_epoch = v->samples_per_epoch};
    db_run_progress(v->db, v->run_id, &dp); /* best effort: a busy reader must not stop training */
    if (!v->tty)
        return;
    enum { WIDTH = 24 };
    int filled = (int)(WIDTH * p->step / (p->steps ? p->steps : 1));
    char bar[WIDTH + 1], eta[16];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = '\0';
    fmt_duration(p->elapsed / (double)p->step * (double)(p->steps - p->step), eta, sizeof eta);
    char metrics[64] = "";
    if (isfinite(p->loss)) /* not read mid-epoch on a GPU */
        snprintf(metrics, sizeof metrics, "  loss %.4f  acc %.4f", p->loss, p->acc);
    printf("\r\033[Kepoch %lld/%lld [%s] %3d%%%s  %.0f img/s  eta %s", (long long)p->epoch, (long long)v->epochs,
           bar, (int)(100 * p->step / (p->steps ? p->steps : 1)), metrics, p->samples_per_sec, eta);
    fflush(stdout);
    v->bar_shown = true;
}

static int view_epoch(void *ctx, const eng_epoch_stats *s, const char *checkpoint, int64_t best_epoch)
{
    run_view *v = ctx;
    if (v->bar_shown)
        printf("\r\033[K");
    v->bar_shown = false;
    printf("epoch %lld/%lld  train loss %.4f acc %.4f  test loss %.4f acc %.4f  lr %.3g  %.1f s  %.0f img/s\n",
           (long long)s->epoch, (long long)v->epochs, s->train_loss, s->train_acc, s->test_loss, s->test_acc,
           s->lr, s->seconds, s->samples_per_sec);
    fflush(stdout);
    db_epoch e = {.run_id = v->run_id, .epoch = s->epoch, .train_loss = s->train_loss, .train_acc = s->train_acc,
                  .test_loss = s->test_loss, .test_acc = s->test_acc, .lr = s->lr, .seconds = s->seconds,
                  .samples_per_sec = s->samples_per_sec};
    int rc = db_begin(v->db);
    if (rc == 0)
        rc = db_epoch_put(v->db, &e);
    if (rc == 0 && checkpoint)
        rc = db_run_set_checkpoint(v->db, v->run_id, checkpoint, best_epoch);
    if (rc == 0)
        rc = db_commit(v->db);
    else
        db_rollback(v->db);
    if (rc < 0) {
        fprintf(stderr, "epochd run: cannot record epoch %lld: %s\n", (long long)s->epoch, db_last_error());
        return svc_from_db(rc);
    }
    return 0;
}

static const char usage_text[] =
    "usage: epochd run SPEC.yaml [--db FILE] [--state-dir DIR] [--device auto|cpu|cuda[:N]] "
    "[--epochs N] [--threads N]\n"
    "Trains the spec (each run of a sweep in turn) in the foreground, recording it in the\n"
    "database as the service would. Ctrl-C stops it at the next step: it is recorded\n"
    "interrupted (exit 130).\n";

static db_run_new run_row(const spec *s, const char *path)
{
    return (db_run_new){.name = s->name, .spec_path = path, .spec_sha256 = s->sha256, .spec = s->text,
                        .template_name = eng_template_name(s->model.template_kind),
                        .requested_device = spec_device_name(s->device), .sweep = s->sweep_json,
                        .params = s->params, .epochs_planned = s->train.epochs, .priority = s->priority};
}

/* Trains one valid spec; returns the exit code. */
static int train_one(db *d, const spec *s, const char *path, const char *state_dir, const char *device,
                     int64_t epochs, int threads)
{
    int64_t id = 0;
    db_run_new row = run_row(s, path);
    if (epochs > 0)
        row.epochs_planned = epochs;
    int rc = db_run_create_running(d, &row, device && *device ? device : spec_device_name(s->device),
                                   (int64_t)getpid(), &id);
    if (rc < 0) {
        fprintf(stderr, "epochd run: cannot record the run: %s\n", db_last_error());
        return EX_IOERR;
    }
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)id);
    run_view v = {.db = d, .run_id = id, .spec = s, .tty = isatty(STDOUT_FILENO)};
    svc_session_sink sink = {.ctx = &v, .started = view_started, .progress = view_progress, .epoch = view_epoch};
    svc_session_job job = {.spec = s, .state_dir = state_dir, .key = key, .device = device, .epochs = epochs,
                   .resume = false, .threads = threads, .stop = &stop_flag};
    svc_outcome out;
    svc_session_run(&job, &sink, &out);
    if (v.bar_shown)
        printf("\n");
    db_status status = out.err == 0 ? DB_DONE : out.err == SVC_EINTR ? DB_INTERRUPTED : DB_FAILED;
    if (db_run_finish(d, id, status, out.err == 0 ? NULL : out.error) < 0)
        fprintf(stderr, "epochd run: cannot record the run's end: %s\n", db_last_error());
    if (out.err == 0)
        printf("run %lld done: best test accuracy %.4f at epoch %lld (checkpoint %s)\n", (long long)id,
               out.best_acc, (long long)out.best_epoch, out.checkpoint[0] ? out.checkpoint : "none");
    else if (out.err == SVC_EINTR)
        printf("run %lld interrupted after %lld epoch%s\n", (long long)id, (long long)out.epochs_done,
               out.epochs_done == 1 ? "" : "s");
    else
        fprintf(stderr, "epochd run: run %lld failed: %s\n", (long long)id, out.error);
    return cli_exit_status(out.err);
}

/* The bad spec is recorded too (each invalid entry of a sweep), so that
 * `epochd status` shows what happened. */
static void record_invalid(db *d, const spec_file *sf, const char *path)
{
    for (int i = 0; i < sf->n_entries || (i == 0 && sf->n_entries == 0); i++) {
        const spec_entry *e = sf->n_entries ? &sf->entries[i] : NULL;
        if (e && e->spec)
            continue;
        char *msg = spec_diags_join(e && e->diags.n ? &e->diags : &sf->file_diags);
        db_run_new row = {.name = e ? e->name : path, .spec_path = path, .spec_sha256 = e ? e->sha256 : sf->sha256,
                          .spec = e ? e->text : NULL, .sweep = e ? e->sweep_json : NULL, .params = -1};
        int64_t id;
        if (db_run_create_invalid(d, &row, msg ? msg : "invalid spec", &id) < 0)
            fprintf(stderr, "epochd run: cannot record the invalid spec: %s\n", db_last_error());
        free(msg);
    }
}

int cli_cmd_run(int argc, char **argv)
{
    const char *db_path = NULL, *state_dir = NULL, *device = NULL;
    int64_t epochs = 0;
    int threads = 0;
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},     {"state-dir", required_argument, NULL, 's'},
        {"device", required_argument, NULL, 'D'}, {"epochs", required_argument, NULL, 'e'},
        {"threads", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_parser p = cli_parser_start("run", usage_text, argc, argv, "", opts);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case 'd': db_path = optarg; break;
        case 's': state_dir = optarg; break;
        case 'D': device = optarg; break;
        case 'e': cli_positive_i64(&p, &epochs); break;
        case 't': cli_positive_int(&p, &threads); break;
        }
    }
    cli_arg_count(&p, 1, 1);
    if (p.done)
        return p.status;
    const char *path = p.args[0];
    if (access(path, R_OK) < 0) {
        fprintf(stderr, "epochd run: %s: %s\n", path, strerror(errno));
        return EX_NOINPUT;
    }
    if (!db_path)
        db_path = db_default_path();
    if (!state_dir)
        state_dir = svc_default_state_dir();

    spec_options opt;
    spec_options_default(&opt);
    spec_file *sf = NULL;
    if (spec_file_load(path, &opt, &sf) < 0) {
        fprintf(stderr, "epochd run: out of memory reading %s\n", path);
        return EX_SOFTWARE;
    }
    db *d = NULL;
    int rc = db_open(db_path, DB_OPEN_CREATE, &d);
    if (rc < 0) {
        fprintf(stderr, "epochd run: cannot open the database %s: %s\n", db_path, db_last_error());
        spec_file_free(sf);
        return cli_exit_status_db(rc);
    }
    int code = EX_OK;
    if (!spec_file_valid(sf)) {
        spec_file_print_diags(stderr, sf);
        record_invalid(d, sf, path);
        code = EX_DATAERR;
    } else {
        /* data.download: the missing dataset first, with its progress bar */
        for (int i = 0; i < sf->n_entries && code == EX_OK; i++) {
            const spec *s = sf->entries[i].spec;
            struct stat st;
            if (!s->download_missing || stat(s->data.root, &st) == 0)
                continue;
            char root[sizeof s->data.root];
            snprintf(root, sizeof root, "%s", s->data.root);
            char *slash = strrchr(root, '/');
            if (slash && slash != root)
                *slash = '\0';
            fprintf(stderr, "epochd run: %s is not in %s: fetching it (data.download)\n",
                    eng_dataset_names[s->data.dataset], root);
            code = cli_data_fetch_for_run(eng_dataset_names[s->data.dataset], root);
        }
    }
    if (code == EX_OK && spec_file_valid(sf)) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        for (int i = 0; i < sf->n_entries && code == EX_OK; i++)
            code = train_one(d, sf->entries[i].spec, path, state_dir, device, epochs, threads);
    }
    db_close(d);
    spec_file_free(sf);
    return code;
}
