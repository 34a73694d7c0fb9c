/* epochd data: fetch the standard datasets (or a manifest's own) into a data
 * root, list what is there, print the built-in manifest. The work is
 * datasets/fetch.c's; this file is options, progress lines and exit codes. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "datasets/error.h"
#include "datasets/fetch.h"
#include "datasets/http.h"
#include "datasets/manifest.h"
#include "datasets/state.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/text_table.h"

#define DATA_ROOT_DEFAULT "data"

static const char data_usage[] = "usage: epochd data fetch NAME... [--root DIR] [--mirror URL] [--manifest "
                                 "FILE] [--force]\n"
                                 "                         [--keep-downloads] [--retries N] [--timeout "
                                 "SECONDS] [--json]\n"
                                 "       epochd data list [--root DIR] [--manifest FILE] [--verify] "
                                 "[--json]\n"
                                 "       epochd data manifest          # the built-in manifest (a template "
                                 "for your own)\n"
                                 "  NAME: cifar10, cifar100, mnist, fashion_mnist, or a name in --manifest "
                                 "FILE.\n"
                                 "  --root DIR       the data root (default $EPOCHD_DATA_ROOT, else "
                                 "./" DATA_ROOT_DEFAULT "); each dataset\n"
                                 "                   goes to its folder there (cifar10: "
                                 "DIR/cifar-10-batches-bin)\n"
                                 "  --mirror URL     try URL/NAME/FILE first (default $EPOCHD_DATA_MIRROR): "
                                 "http(s):// or file://\n"
                                 "  --force          fetch again even when the dataset is there\n"
                                 "  --keep-downloads keep the verified archives in DIR/downloads/NAME (a "
                                 "mirror's layout)\n"
                                 "  --retries N      more tries of a source after a network failure "
                                 "(default 3)\n"
                                 "  --timeout S      give up on a source that sends nothing for S seconds "
                                 "(default 60)\n"
                                 "  --verify         (list) check every file's SHA-256 against the fetch "
                                 "record\n"
                                 "  --json           one JSON object per line\n"
                                 "exit: 0 ok, 64 usage, 65 checksum mismatch or bad manifest, 66 no such "
                                 "manifest file,\n"
                                 "      74 download or disk failure, 130 interrupted (a partial download is "
                                 "kept and resumed)\n";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int exit_code(int rc)
{
    switch (rc) {
    case 0: return EX_OK;
    case DS_EINTR: return EX_INTERRUPTED;
    case DS_ECHECKSUM:
    case DS_EFORMAT:
    case DS_EINVAL: return EX_DATAERR;
    case DS_ENOENT: return EX_NOINPUT;
    case DS_ENOMEM: return EX_SOFTWARE;
    default: return EX_IOERR; /* DS_ENET, DS_EIO, DS_ENOSPC */
    }
}

static const char *root_of(const char *opt)
{
    if (opt)
        return opt;
    const char *env = getenv("EPOCHD_DATA_ROOT");
    return env && env[0] ? env : DATA_ROOT_DEFAULT;
}

static int load_manifest(const char *file, ds_manifest **m)
{
    int rc = file ? ds_manifest_load(file, m) : ds_manifest_builtin(m);
    if (rc)
        fprintf(stderr, "epochd data: %s\n", ds_last_error());
    return rc;
}

/* ---- fetch: progress ---- */

typedef struct progress_out {
    bool json, tty;
    double last_print;
    ds_phase last_phase;
    int last_file;
    int last_attempt;
    const char *last_url;
    bool line_open; /* a \r-updated line is on the terminal */
} progress_out;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *phase_name(ds_phase p)
{
    static const char *const names[] = {"wait", "download", "retry", "verify", "unpack", "done"};
    return (unsigned)p <= DS_PHASE_DONE ? names[p] : "?";
}

static void end_line(progress_out *o)
{
    if (o->line_open)
        fputc('\n', stderr);
    o->line_open = false;
}

static int on_progress(void *ctx, const ds_progress *p)
{
    progress_out *o = ctx;
    double t = now_s();
    bool change = p->phase != o->last_phase || p->file_index != o->last_file || p->attempt != o->last_attempt ||
                  p->url != o->last_url;
    if (o->json) {
        if (change || t - o->last_print >= 0.5 || p->phase == DS_PHASE_DONE) {
            json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:f}", "event", "progress", "dataset",
                                  p->dataset, "phase", phase_name(p->phase), "file", p->file ? p->file : "",
                                  "file_index", p->file_index, "file_count", p->file_count, "done", (json_int_t)p->done,
                                  "total", (json_int_t)p->total, "rate", p->rate);
            if (j && p->url)
                json_object_set_new(j, "url", json_string(p->url));
            if (j && p->attempt)
                json_object_set_new(j, "attempt", json_integer(p->attempt));
            if (j && p->message)
                json_object_set_new(j, "message", json_string(p->message));
            if (j) {
                char *s = json_dumps(j, JSON_COMPACT);
                if (s)
                    printf("%s\n", s);
                free(s);
                json_decref(j);
                fflush(stdout);
            }
            o->last_print = t;
        }
    } else if (p->phase == DS_PHASE_RETRY && change) {
        end_line(o);
        fprintf(stderr, "%s: %s; trying again (attempt %d of %d)\n", p->dataset, p->message, p->attempt + 1,
                p->attempts);
    } else if (p->phase == DS_PHASE_WAIT && change) {
        end_line(o);
        fprintf(stderr, "%s: waiting: %s\n", p->dataset, p->message);
    } else if (p->phase == DS_PHASE_DOWNLOAD || p->phase == DS_PHASE_UNPACK || p->phase == DS_PHASE_VERIFY) {
        if (change && !o->tty && p->phase == DS_PHASE_DOWNLOAD)
            fprintf(stderr, "%s: [%d/%d] %s from %s%s\n", p->dataset, p->file_index, p->file_count, p->file, p->url,
                    p->done > 0 ? " (resuming)" : "");
        if (o->tty && (change || t - o->last_print >= 0.1)) {
            char done[32], total[32] = "?", rate[32] = "";
            ds_format_bytes((double)p->done, done, sizeof done);
            if (p->total >= 0)
                ds_format_bytes((double)p->total, total, sizeof total);
            if (p->phase == DS_PHASE_DOWNLOAD && p->rate > 0) {
                ds_format_bytes(p->rate, rate, sizeof rate);
                strcat(rate, "/s");
            }
            int pct = p->total > 0 ? (int)(100.0 * (double)p->done / (double)p->total) : 0;
            int bar = pct / 5;
            fprintf(stderr, "\r\033[K%s [%d/%d] %-8s %s [%.*s%*s] %3d%% %s / %s %s", p->dataset, p->file_index,
                    p->file_count, phase_name(p->phase), p->file, bar, "====================", 20 - bar, "", pct, done,
                    total, rate);
            o->line_open = true;
            o->last_print = t;
        }
    }
    o->last_phase = p->phase;
    o->last_file = p->file_index;
    o->last_attempt = p->attempt;
    o->last_url = p->url;
    return interrupted ? 1 : 0;
}

static int cmd_fetch(int argc, char **argv)
{
    const char *root = NULL, *mirror = getenv("EPOCHD_DATA_MIRROR"), *manifest = NULL;
    ds_fetch_opts fo;
    ds_fetch_opts_default(&fo);
    bool json = false;
    static const struct option opts[] = {
        {"root", required_argument, NULL, 'r'},    {"mirror", required_argument, NULL, 'm'},
        {"manifest", required_argument, NULL, 'M'}, {"retries", required_argument, NULL, 'R'},
        {"timeout", required_argument, NULL, 't'}, {"force", no_argument, NULL, 'f'},
        {"keep-downloads", no_argument, NULL, 'k'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    cli_parser p = cli_parser_start("data fetch", data_usage, argc, argv, "", opts);
    for (int c; (c = cli_next(&p)) != -1;) {
        char *end;
        switch (c) {
        case 'r': root = optarg; break;
        case 'm': mirror = optarg; break;
        case 'M': manifest = optarg; break;
        case 'R': {
            long n = strtol(optarg, &end, 10);
            if (!*optarg || *end || n < 0 || n > 100)
                cli_bad(&p, "--retries needs a number in [0, 100], not %s", optarg);
            fo.retries = (int)n;
            break;
        }
        case 't': {
            double s = strtod(optarg, &end);
            if (!*optarg || *end || !(s >= 1 && s <= 86400))
                cli_bad(&p, "--timeout needs seconds in [1, 86400], not %s", optarg);
            fo.stall_timeout_s = s;
            if (s < fo.connect_timeout_s)
                fo.connect_timeout_s = s;
            break;
        }
        case 'f': fo.force = true; break;
        case 'k': fo.keep_downloads = true; break;
        case 'j': json = true; break;
        }
    }
    if (!p.done && p.n_args == 0)
        cli_bad(&p, "fetch: which dataset? (cifar10, cifar100, mnist, fashion_mnist)");
    if (!p.done && p.n_args > 64)
        cli_bad(&p, "at most 64 datasets at once");
    if (p.done)
        return p.status;
    const char *const *names = (const char *const *)p.args;
    int n_names = p.n_args;
    ds_manifest *m = NULL;
    int rc = load_manifest(manifest, &m);
    if (rc)
        return exit_code(rc);
    for (int i = 0; i < n_names; i++)
        if (!ds_manifest_find(m, names[i])) {
            fprintf(stderr, "epochd data: %s\n", ds_last_error());
            ds_manifest_free(m);
            return EX_USAGE;
        }

    ds_http_global_init();
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    progress_out po = {.json = json, .tty = !json && isatty(STDERR_FILENO), .last_phase = (ds_phase)-1};
    fo.root = root_of(root);
    fo.mirror = mirror && mirror[0] ? mirror : NULL;
    fo.progress = on_progress;
    fo.ctx = &po;
    int code = EX_OK;
    for (int i = 0; i < n_names && !interrupted; i++) {
        const ds_entry *e = ds_manifest_find(m, names[i]);
        ds_fetch_result r;
        double t0 = now_s();
        rc = ds_fetch(e, m, &fo, &r);
        double secs = now_s() - t0;
        end_line(&po);
        if (json) {
            json_t *j = rc ? json_pack("{s:s, s:s, s:s, s:b}", "event", "failed", "dataset", e->name, "error",
                                       ds_last_error(), "retryable", rc == DS_ENET || rc == DS_EIO)
                           : json_pack("{s:s, s:s, s:s, s:b, s:b, s:I, s:I, s:f}", "event", "done", "dataset", e->name,
                                       "dir", r.dir, "already", r.already, "verified", !r.unverified, "downloaded",
                                       (json_int_t)r.downloaded, "resumed", (json_int_t)r.resumed, "seconds", secs);
            if (j && !rc)
                json_object_set_new(j, "download_seconds", json_real(r.download_seconds));
            char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
            if (s)
                printf("%s\n", s);
            free(s);
            json_decref(j);
            fflush(stdout);
        } else if (rc) {
            fprintf(stderr, "epochd data: %s: %s\n", e->name, ds_last_error());
        } else if (r.already) {
            printf("%s: already in %s (%s)\n", e->name, r.dir,
                   r.unverified ? "not fetched by epochd, the loader accepts it; "
                                  "--force fetches it again"
                                : "verified");
        } else {
            char got[32], rate[32], res[48] = "";
            ds_format_bytes((double)r.downloaded, got, sizeof got);
            ds_format_bytes(r.download_seconds > 0 ? (double)r.downloaded / r.download_seconds : 0, rate, sizeof rate);
            if (r.resumed > 0) {
                char b[32];
                ds_format_bytes((double)r.resumed, b, sizeof b);
                snprintf(res, sizeof res, ", resumed after %s", b);
            }
            printf("%s: fetched into %s (%s downloaded in %.2f s at %s/s%s; %.2f s "
                   "in all)\n",
                   e->name, r.dir, got, r.download_seconds, rate, res, secs);
        }
        if (rc && code == EX_OK)
            code = exit_code(rc);
    }
    if (interrupted && code == EX_OK)
        code = EX_INTERRUPTED;
    ds_manifest_free(m);
    return code;
}

/* ---- list ---- */

static int cmd_list(int argc, char **argv)
{
    const char *root = NULL, *manifest = NULL;
    bool verify = false, json = false;
    static const struct option opts[] = {
        {"root", required_argument, NULL, 'r'}, {"manifest", required_argument, NULL, 'M'},
        {"verify", no_argument, NULL, 'v'},     {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    cli_parser p = cli_parser_start("data list", data_usage, argc, argv, "", opts);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case 'r': root = optarg; break;
        case 'M': manifest = optarg; break;
        case 'v': verify = true; break;
        case 'j': json = true; break;
        }
    }
    cli_arg_count(&p, 0, 0);
    if (p.done)
        return p.status;
    ds_manifest *m = NULL;
    int rc = load_manifest(manifest, &m);
    if (rc)
        return exit_code(rc);
    const char *r = root_of(root);
    cli_table *t = json ? NULL : cli_table_new(5);
    if (t) {
        cli_table_column(t, 0, "name", 0);
        cli_table_column(t, 1, "state", 0);
        cli_table_column(t, 2, "size", 1);
        cli_table_column(t, 3, "folder", 0);
        cli_table_column(t, 4, "note", 0);
    }
    int code = EX_OK;
    for (int i = 0; i < m->n; i++) {
        const ds_entry *e = &m->entries[i];
        ds_state st;
        if ((rc = ds_state_of(e, m, r, verify, &st))) {
            fprintf(stderr, "epochd data: %s\n", ds_last_error());
            code = exit_code(rc);
            break;
        }
        char size[32] = "-";
        int64_t b = st.kind == DS_PARTIAL ? st.partial_bytes : st.bytes;
        if (b > 0)
            ds_format_bytes((double)b, size, sizeof size);
        char note[1200];
        if (st.kind == DS_ABSENT)
            snprintf(note, sizeof note, "epochd data fetch %s", e->name);
        else if (st.fetched[0])
            snprintf(note, sizeof note, "fetched %s; %s", st.fetched, st.detail);
        else
            snprintf(note, sizeof note, "%s", st.detail);
        if (json) {
            json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "name", e->name, "loader", e->loader, "state",
                                  ds_state_name(st.kind), "dir", st.dir, "bytes", (json_int_t)b, "detail", st.detail);
            if (j && st.fetched[0])
                json_object_set_new(j, "fetched", json_string(st.fetched));
            char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
            if (s)
                printf("%s\n", s);
            free(s);
            json_decref(j);
        } else if (t) {
            cli_table_row(t);
            cli_table_set(t, 0, e->name, 0);
            cli_table_set(t, 1, ds_state_name(st.kind), 0);
            cli_table_set(t, 2, size, 0);
            cli_table_set(t, 3, st.dir, 0);
            cli_table_set(t, 4, note, 0);
        }
        if (verify && st.kind == DS_DAMAGED && code == EX_OK)
            code = EX_DATAERR;
    }
    if (t) {
        printf("data root: %s%s\n", r,
               root                         ? ""
               : getenv("EPOCHD_DATA_ROOT") ? " ($EPOCHD_DATA_ROOT)"
                                            : " (default; --root or $EPOCHD_DATA_ROOT to change)");
        cli_table_print(t, stdout, 0);
        cli_table_free(t);
    }
    ds_manifest_free(m);
    return code;
}

int cli_data_fetch_for_run(const char *name, const char *root)
{
    const char *manifest = getenv("EPOCHD_DATA_MANIFEST");
    char *av[] = {"fetch", (char *)name, "--root", (char *)root, "--manifest", (char *)manifest, NULL};
    if (!manifest || !*manifest)
        av[4] = NULL;
    int ac = 0;
    while (av[ac])
        ac++;
    return cmd_fetch(ac, av);
}

int cli_cmd_data(int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : "";
    if (!strcmp(sub, "fetch"))
        return cmd_fetch(argc - 1, argv + 1);
    if (!strcmp(sub, "list"))
        return cmd_list(argc - 1, argv + 1);
    if (!strcmp(sub, "manifest") && argc == 2) {
        fputs(ds_manifest_builtin_text(), stdout);
        return EX_OK;
    }
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
        fputs(data_usage, stdout);
        return EX_OK;
    }
    cli_parser p = cli_parser_start("data", data_usage, argc, argv, "", NULL);
    if (argc < 2)
        return cli_bad(&p, "fetch, list or manifest?");
    return cli_bad(&p, "unknown subcommand '%s'", sub);
}
