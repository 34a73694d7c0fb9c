/* epochd worker: runs one run for the service and reports on stdout, one
 * JSON object per line (docs/worker-protocol.md):
 *   {"event":"started", ...} {"event":"progress", ...} {"event":"epoch", ...}
 *   {"event":"done", ...} | {"event":"failed", ...} | {"event":"interrupted", ...}
 * It never opens the database. Diagnostics go to stderr, which the service
 * copies into its log with the run id. Each epoch is also appended to the
 * run's history before it is reported, so that a resumed worker reports
 * again what the service may have missed (runner/worker_history.h). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cli/commands.h"
#include "service/paths.h"
#include "service/session.h"
#include "service/history.h"
#include "schema/spec.h"

#define MAX_DATA_ROOTS 64

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

typedef struct worker_ctx {
    svc_history hist;
    bool failed_history;
    char history_error[1024];
} worker_ctx;

/* A JSON number, or null for NaN and infinities (JSON has neither; a
 * diverged loss must still be reported). */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* Writes one event line; doubles keep 17 significant digits so the service
 * stores exactly the values computed here. */
static void emit(json_t *obj)
{
    if (!obj) {
        fprintf(stderr, "epochd worker: out of memory building an event\n");
        return;
    }
    char *line = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (line) {
        fputs(line, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(line);
    }
    json_decref(obj);
}

static void w_started(void *ctx, const svc_started_info *s)
{
    worker_ctx *w = ctx;
    emit(json_pack("{s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:i}", "event", "started", "pid", (int)getpid(),
                   "device", s->device, "params", (json_int_t)s->params, "epochs", (json_int_t)s->epochs,
                   "steps_per_epoch", (json_int_t)s->steps_per_epoch, "train_samples",
                   (json_int_t)s->train_samples, "test_samples", (json_int_t)s->test_samples, "resumed_epoch",
                   (json_int_t)s->resumed_epoch, "threads", s->threads));
    /* the epochs before the resume point, again: the service may have
     * missed the last of them (it records them idempotently) */
    json_t **rep;
    size_t n = svc_history_replay(&w->hist, s->resumed_epoch, &rep);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_deep_copy(rep[i]);
        if (o) {
            json_object_del(o, "checkpoint");
            json_object_set_new(o, "replayed", json_true());
        }
        emit(o);
    }
}

static void w_progress(void *ctx, const eng_progress *p)
{
    (void)ctx;
    emit(json_pack("{s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:o}", "event", "progress", "epoch", (json_int_t)p->epoch,
                   "step", (json_int_t)p->step, "steps", (json_int_t)p->steps, "loss", num(p->loss), "acc",
                   num(p->acc), "images_per_sec", num(p->samples_per_sec), "elapsed", num(p->elapsed)));
}

static int w_epoch(void *ctx, const eng_epoch_stats *s, const char *checkpoint, int64_t best_epoch)
{
    worker_ctx *w = ctx;
    json_t *o = json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I}", "event", "epoch", "epoch",
                          (json_int_t)s->epoch, "train_loss", num(s->train_loss), "train_acc", num(s->train_acc),
                          "test_loss", num(s->test_loss), "test_acc", num(s->test_acc), "lr", num(s->lr),
                          "seconds", num(s->seconds), "samples_per_sec", num(s->samples_per_sec), "best_epoch",
                          (json_int_t)best_epoch);
    if (!o) {
        fprintf(stderr, "epochd worker: out of memory building an event\n");
        return -1;
    }
    /* recorded (and synced) before it is reported */
    if (svc_history_append(&w->hist, o, checkpoint, w->history_error, sizeof w->history_error) < 0) {
        w->failed_history = true;
        json_decref(o);
        return -1;
    }
    if (checkpoint)
        json_object_set_new(o, "checkpoint", json_string(checkpoint));
    emit(o);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: epochd worker --spec-file FILE [--spec-path PATH] --key KEY --state-dir DIR\n"
               "                     [--device D] [--epochs N] [--threads N] [--resume] [--data-root DIR]...\n"
               "Internal: runs one run and reports JSON lines on stdout (used by `epochd serve`).\n");
}

static void fail_event(const char *msg, int code, bool retryable)
{
    emit(json_pack("{s:s, s:s, s:i, s:b}", "event", "failed", "error", msg, "code", code, "retryable", retryable));
}

int cli_cmd_worker(int argc, char **argv)
{
    const char *text_path = NULL, *spec_path = NULL, *key = NULL, *state_dir = NULL, *device = NULL;
    const char *roots[MAX_DATA_ROOTS];
    int n_roots = 0;
    int64_t epochs = 0;
    int threads = 0;
    bool resume = false;
    static const struct option opts[] = {
        {"spec-file", required_argument, NULL, 'f'}, {"spec-path", required_argument, NULL, 'p'},
        {"key", required_argument, NULL, 'k'},       {"state-dir", required_argument, NULL, 's'},
        {"device", required_argument, NULL, 'D'},    {"epochs", required_argument, NULL, 'e'},
        {"threads", required_argument, NULL, 't'},   {"resume", no_argument, NULL, 'r'},
        {"data-root", required_argument, NULL, 'R'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': text_path = optarg; break;
        case 'p': spec_path = optarg; break;
        case 'k': key = optarg; break;
        case 's': state_dir = optarg; break;
        case 'D': device = optarg; break;
        case 'e': epochs = strtoll(optarg, NULL, 10); break;
        case 't': threads = atoi(optarg); break;
        case 'r': resume = true; break;
        case 'R':
            if (n_roots == MAX_DATA_ROOTS) {
                fprintf(stderr, "epochd worker: at most %d --data-root\n", MAX_DATA_ROOTS);
                return EX_USAGE;
            }
            roots[n_roots++] = optarg;
            break;
        case 'h': usage(stdout); return EX_OK;
        default: usage(stderr); return EX_USAGE;
        }
    }
    if (!text_path || !key || !state_dir || optind != argc) {
        usage(stderr);
        return EX_USAGE;
    }
    if (!spec_path)
        spec_path = text_path;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* Started by the service: stop (at the next step, as on SIGTERM) when
     * the parent dies, rather than train on with nobody reading. The parent
     * is the service, or a worker_prefix wrapper (nice, srun) in between. */
    const char *service = getenv("EPOCHD_SERVICE_PID");
    if (service && *service) {
        long sp = strtol(service, NULL, 10);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (sp > 0 && (long)getppid() != sp && kill((pid_t)sp, 0) < 0 && errno == ESRCH) {
            fprintf(stderr, "epochd worker %s: the service (pid %ld) has gone\n", key, sp);
            return EX_INTERRUPTED;
        }
    }

    /* The stored text, resolved relative to the original spec's folder. */
    FILE *f = fopen(text_path, "rb");
    if (!f) {
        char msg[4200];
        snprintf(msg, sizeof msg, "cannot open %s: %s", text_path, strerror(errno));
        fail_event(msg, EX_NOINPUT, true);
        return EX_NOINPUT;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 > cap) {
            char *nb = realloc(buf, cap = cap ? 2 * cap : 65536);
            if (!nb) {
                free(buf);
                fclose(f);
                fail_event("out of memory reading the spec", EX_SOFTWARE, true);
                return EX_SOFTWARE;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);

    spec_options opt;
    spec_options_default(&opt);
    opt.data_roots = roots;
    opt.n_data_roots = n_roots;
    spec_file *sf = NULL;
    int rc = spec_file_load_buffer(spec_path, buf, len, &opt, &sf);
    free(buf);
    if (rc < 0) {
        fail_event("out of memory parsing the spec", EX_SOFTWARE, true);
        return EX_SOFTWARE;
    }
    if (!spec_file_valid(sf) || sf->n_entries != 1) {
        char *msg = NULL;
        if (sf->file_diags.n)
            msg = spec_diags_join(&sf->file_diags);
        else if (sf->n_entries)
            msg = spec_diags_join(&sf->entries[0].diags);
        fail_event(msg ? msg : "the spec is not one valid run", EX_DATAERR, false);
        free(msg);
        spec_file_free(sf);
        return EX_DATAERR;
    }

    worker_ctx w = {0};
    char dir[1024], err[1200];
    int mk = svc_run_dir(state_dir, key, dir, sizeof dir) < 0 ? -ENAMETOOLONG : svc_mkdirs(dir, 0750);
    if (mk < 0 || svc_history_open(&w.hist, dir, sf->entries[0].spec->sha256, resume, err, sizeof err) < 0) {
        if (mk < 0)
            snprintf(err, sizeof err, "cannot create %s: %s", dir, strerror(-mk));
        fail_event(err, EX_IOERR, true);
        fprintf(stderr, "epochd worker %s: %s\n", key, err);
        spec_file_free(sf);
        return EX_IOERR;
    }

    svc_session_sink sink = {.ctx = &w, .started = w_started, .progress = w_progress, .epoch = w_epoch};
    svc_session_job job = {.spec = sf->entries[0].spec, .state_dir = state_dir, .key = key, .device = device,
                   .epochs = epochs, .resume = resume, .threads = threads, .stop = &stop_flag};
    svc_outcome out;
    svc_session_run(&job, &sink, &out);
    if (w.failed_history) {
        out.code = EX_IOERR;
        out.retryable = true;
        snprintf(out.error, sizeof out.error, "%s", w.history_error);
    }
    if (out.code == EX_OK)
        emit(json_pack("{s:s, s:I, s:o, s:I}", "event", "done", "epochs", (json_int_t)out.epochs_done,
                       "best_test_acc", num(out.best_acc), "best_epoch", (json_int_t)out.best_epoch));
    else if (out.interrupted)
        emit(json_pack("{s:s, s:I}", "event", "interrupted", "epochs", (json_int_t)out.epochs_done));
    else
        fail_event(out.error, out.code, out.retryable);
    if (out.code != EX_OK)
        fprintf(stderr, "epochd worker %s: %s\n", key, out.error);
    svc_history_close(&w.hist);
    spec_file_free(sf);
    return out.code;
}
