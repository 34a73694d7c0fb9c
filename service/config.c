/* The service's settings: defaults, the YAML config file (libyaml, every
 * problem located), command-line overrides. */
#include "service/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "db/db.h"
#include "service/listen.h"
#include "service/log.h"
#include "service/paths.h"
#include "service/plan.h"
#include "service/slots.h"
#include "engine/error.h"
#include "engine/file.h"
#include "schema/suggest.h"
#include "schema/ytree.h"
#include "service/config_read.h"
#include "service/error.h"

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_roots(char **r, int n)
{
    for (int i = 0; i < n; i++)
        free(r[i]);
    free(r);
}

void svc_config_free(svc_config *c)
{
    if (!c)
        return;
    free(c->config_path);
    free(c->experiments);
    free(c->db_path);
    free(c->state_dir);
    free(c->devices);
    free(c->http_listen);
    free(c->http_token_file);
    free_roots(c->data_roots, c->n_data_roots);
    free_roots(c->worker_prefix, c->n_worker_prefix);
    svc_slurm_config_free(&c->slurm);
    svc_data_config_free(&c->data);
    memset(c, 0, sizeof *c);
}

int svc_config_defaults(svc_config *c)
{
    memset(c, 0, sizeof *c);
    const char *exp = getenv("EPOCHD_EXPERIMENTS");
    c->experiments = strdup(exp && *exp ? exp : "experiments");
    c->db_path = strdup(db_default_path());
    c->state_dir = strdup(svc_default_state_dir());
    c->devices = strdup("auto");
    c->cpu_slots = 1;
    c->gpu_slots = 1;
    c->placement = SVC_POLICY_EARLIEST_FINISH;
    c->max_attempts = 3;
    c->worker_threads = 0;
    c->settle_ms = 500;
    c->stop_timeout_ms = 30000;
    c->cancel_poll_ms = 1000;
    c->rescan_interval_ms = 60000;
    c->log_level = SVC_LOG_INFO;
    spec_options o;
    spec_options_default(&o);
    c->max_spec_bytes = o.max_file_bytes;
    c->max_params = o.max_params;
    c->max_memory_bytes = 0;
    c->min_free_bytes = 64u << 20;
    c->max_depth = o.max_depth;
    c->max_nodes = o.max_nodes;
    c->max_combinations = o.max_combinations;
    c->executor = SVC_EXECUTOR_LOCAL;
    if (svc_slurm_config_defaults(&c->slurm) < 0 || svc_data_config_defaults(&c->data) < 0 || !c->experiments ||
        !c->db_path || !c->state_dir || !c->devices) {
        svc_config_free(c);
        return SVC_ENOMEM;
    }
    return 0;
}

/* ---- the YAML file ---- */

typedef svc_cfg_ctx cfg_ctx; /* config_read.h: shared with the files of single sections */

static void err_at(cfg_ctx *x, const ynode *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void err_at(cfg_ctx *x, const ynode *n, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    x->errors++;
    if (spec_diags_add(x->diags, x->file, n ? n->line : 0, n ? n->col : 0, key ? key : "", msg) < 0)
        x->oom = true;
}

static const char *scalar(const ynode *n)
{
    return n && n->kind == YN_SCALAR ? n->s : NULL;
}

static bool plain(const ynode *n)
{
    return n->kind == YN_SCALAR && !n->quoted;
}

static int get_i64(cfg_ctx *x, const ynode *n, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const char *s = scalar(n);
    char *end = NULL;
    errno = 0;
    long long v = s && plain(n) ? strtoll(s, &end, 10) : 0;
    if (!s || !plain(n) || !*s || errno || *end) {
        err_at(x, n, key, "expected an integer, found %s", s ? s : "a collection");
        return -1;
    }
    if (v < lo || v > hi) {
        err_at(x, n, key, "expected an integer from %lld to %lld, found %lld", (long long)lo, (long long)hi, v);
        return -1;
    }
    *out = v;
    return 0;
}

static int get_int(cfg_ctx *x, const ynode *n, const char *key, int lo, int hi, int *out)
{
    int64_t v;
    if (get_i64(x, n, key, lo, hi, &v))
        return -1;
    *out = (int)v;
    return 0;
}

/* A byte count: an integer, or a number with a unit (K, M, G, T; KiB ... or
 * kB ... are accepted as powers of 1024 and 1000). */
static int get_bytes(cfg_ctx *x, const ynode *n, const char *key, size_t *out)
{
    const char *s = scalar(n);
    if (!s || !*s) {
        err_at(x, n, key, "expected a size in bytes such as 1048576 or 8GiB");
        return -1;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0)) {
        err_at(x, n, key, "expected a size in bytes such as 1048576 or 8GiB, found %s", s);
        return -1;
    }
    while (*end == ' ')
        end++;
    static const struct {
        const char *unit;
        double mult;
    } units[] = {
        {"", 1},         {"B", 1},       {"K", 1024.0},   {"KiB", 1024.0},   {"kB", 1e3},   {"M", 1048576.0},
        {"MiB", 1048576.0}, {"MB", 1e6}, {"G", 1073741824.0}, {"GiB", 1073741824.0}, {"GB", 1e9},
        {"T", 1099511627776.0}, {"TiB", 1099511627776.0}, {"TB", 1e12},
    };
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (!strcmp(end, units[i].unit)) {
            double b = v * units[i].mult;
            if (b > (double)SIZE_MAX / 2) {
                err_at(x, n, key, "%s is too large", s);
                return -1;
            }
            *out = (size_t)b;
            return 0;
        }
    err_at(x, n, key, "unknown unit '%s' (expected B, KiB, MiB, GiB, TiB, kB, MB, GB or TB)", end);
    return -1;
}

/* A path; relative ones are taken from the config file's folder. */
static int get_path(cfg_ctx *x, const ynode *n, const char *key, char **out)
{
    const char *s = scalar(n);
    if (!s || !*s) {
        err_at(x, n, key, "expected a path");
        return -1;
    }
    char *p;
    if (s[0] == '/' || !x->dir) {
        p = strdup(s);
    } else {
        size_t len = strlen(x->dir) + strlen(s) + 2;
        p = malloc(len);
        if (p)
            snprintf(p, len, "%s/%s", x->dir, s);
    }
    if (!p) {
        x->oom = true;
        return -1;
    }
    free(*out);
    *out = p;
    return 0;
}

static void unknown_key(cfg_ctx *x, const ynode *k, const char *prefix, const char *const *known, int n)
{
    const char *name = scalar(k);
    const char *sugg = name ? spec_suggest(name, known, n) : NULL;
    char path[256];
    snprintf(path, sizeof path, "%s%s", prefix, name ? name : "?");
    if (sugg)
        err_at(x, k, path, "unknown key (did you mean '%s'?)", sugg);
    else
        err_at(x, k, path, "unknown key");
}

static const char *const limit_keys[] = {"spec_bytes", "params",     "memory",       "yaml_depth",
                                         "yaml_nodes", "sweep_combinations", "min_free_disk"};

static void load_limits(cfg_ctx *x, const ynode *m, svc_config *c)
{
    if (m->kind != YN_MAP) {
        err_at(x, m, "limits", "expected a mapping of limits");
        return;
    }
    for (int64_t i = 0; i < m->n; i++) {
        const ynode *k = m->v[2 * i], *v = m->v[2 * i + 1];
        const char *name = scalar(k);
        char key[128];
        snprintf(key, sizeof key, "limits.%s", name ? name : "?");
        int64_t num;
        if (!name)
            err_at(x, k, "limits", "keys must be names");
        else if (!strcmp(name, "spec_bytes"))
            get_bytes(x, v, key, &c->max_spec_bytes);
        else if (!strcmp(name, "params")) {
            if (!get_i64(x, v, key, 1, INT64_MAX, &num))
                c->max_params = num;
        } else if (!strcmp(name, "memory"))
            get_bytes(x, v, key, &c->max_memory_bytes);
        else if (!strcmp(name, "min_free_disk"))
            get_bytes(x, v, key, &c->min_free_bytes);
        else if (!strcmp(name, "yaml_depth"))
            get_int(x, v, key, 1, 10000, &c->max_depth);
        else if (!strcmp(name, "yaml_nodes")) {
            if (!get_i64(x, v, key, 1, INT64_MAX, &num))
                c->max_nodes = num;
        } else if (!strcmp(name, "sweep_combinations")) {
            if (!get_i64(x, v, key, 1, INT64_MAX, &num))
                c->max_combinations = num;
        } else
            unknown_key(x, k, "limits.", limit_keys, (int)(sizeof limit_keys / sizeof *limit_keys));
    }
}

static void load_roots(cfg_ctx *x, const ynode *v, svc_config *c)
{
    free_roots(c->data_roots, c->n_data_roots);
    c->data_roots = NULL;
    c->n_data_roots = 0;
    if (v->kind == YN_SCALAR && !*v->s)
        return;
    ynode *const *items = NULL;
    int64_t n = 1;
    if (v->kind == YN_SEQ) {
        items = v->v;
        n = v->n;
    } else if (v->kind != YN_SCALAR) {
        err_at(x, v, "data_roots", "expected a list of folders");
        return;
    }
    if (n > SVC_MAX_DATA_ROOTS) {
        err_at(x, v, "data_roots", "expected at most %d folders, found %lld", SVC_MAX_DATA_ROOTS, (long long)n);
        return;
    }
    c->data_roots = calloc((size_t)(n ? n : 1), sizeof *c->data_roots);
    if (!c->data_roots) {
        x->oom = true;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const ynode *e = items ? items[i] : v;
        char key[64];
        if (items)
            snprintf(key, sizeof key, "data_roots[%lld]", (long long)i);
        else
            snprintf(key, sizeof key, "data_roots");
        char *p = NULL;
        if (get_path(x, e, key, &p) == 0)
            c->data_roots[c->n_data_roots++] = p;
    }
}

/* A command prefix: a list of words (or one word). */
static void load_prefix(cfg_ctx *x, const ynode *v, svc_config *c)
{
    free_roots(c->worker_prefix, c->n_worker_prefix);
    c->worker_prefix = NULL;
    c->n_worker_prefix = 0;
    ynode *const *items = NULL;
    int64_t n = 1;
    if (v->kind == YN_SEQ) {
        items = v->v;
        n = v->n;
    } else if (v->kind != YN_SCALAR || !*v->s) {
        err_at(x, v, "worker_prefix", "expected a list of words, e.g. [nice, -n, \"10\"]");
        return;
    }
    if (n == 0)
        return;
    if (n > 256) {
        err_at(x, v, "worker_prefix", "expected at most 256 words, found %lld", (long long)n);
        return;
    }
    c->worker_prefix = calloc((size_t)n, sizeof *c->worker_prefix);
    if (!c->worker_prefix) {
        x->oom = true;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const ynode *e = items ? items[i] : v;
        const char *w = scalar(e);
        if (!w || !*w) {
            err_at(x, e, "worker_prefix", "expected a word, found %s", w ? "an empty string" : "a collection");
            continue;
        }
        if (!(c->worker_prefix[c->n_worker_prefix] = strdup(w))) {
            x->oom = true;
            return;
        }
        c->n_worker_prefix++;
    }
}

static void load_devices(cfg_ctx *x, const ynode *v, svc_config *c)
{
    char buf[512] = "";
    if (v->kind == YN_SEQ) {
        for (int64_t i = 0; i < v->n; i++) {
            const char *s = scalar(v->v[i]);
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof buf - l, "%s%s", l ? "," : "", s ? s : "?");
        }
    } else if (scalar(v)) {
        snprintf(buf, sizeof buf, "%s", scalar(v));
    } else {
        err_at(x, v, "devices", "expected auto, cpu or a list of GPU numbers");
        return;
    }
    svc_device_filter f;
    if (svc_devices_parse(buf, &f) < 0) {
        err_at(x, v, "devices", "%s", svc_last_error());
        return;
    }
    char *d = strdup(buf);
    if (!d) {
        x->oom = true;
        return;
    }
    free(c->devices);
    c->devices = d;
}

static const char *const http_keys[] = {"listen", "token_file"};

/* http: {listen: ADDR:PORT, token_file: FILE} */
static void load_http(cfg_ctx *x, const ynode *m, svc_config *c)
{
    if (m->kind != YN_MAP) {
        err_at(x, m, "http", "expected a mapping: {listen: 127.0.0.1:8080, token_file: FILE}");
        return;
    }
    for (int64_t i = 0; i < m->n; i++) {
        const ynode *k = m->v[2 * i], *v = m->v[2 * i + 1];
        const char *name = scalar(k);
        if (!name) {
            err_at(x, k, "http", "keys must be names");
        } else if (!strcmp(name, "listen")) {
            svc_listen l;
            const char *s = scalar(v);
            if (!s || svc_listen_parse(s, &l) < 0) {
                err_at(x, v, "http.listen", "%s", s ? svc_last_error() : "expected ADDRESS:PORT, e.g. 127.0.0.1:8080");
            } else {
                char *d = strdup(s);
                if (!d) {
                    x->oom = true;
                    return;
                }
                free(c->http_listen);
                c->http_listen = d;
            }
        } else if (!strcmp(name, "token_file")) {
            get_path(x, v, "http.token_file", &c->http_token_file);
        } else {
            unknown_key(x, k, "http.", http_keys, (int)(sizeof http_keys / sizeof *http_keys));
        }
    }
}

static const char *const top_keys[] = {
    "experiments", "db", "state_dir", "devices", "data_roots", "cpu_slots", "gpu_slots", "max_attempts",
    "worker_threads", "settle_ms", "stop_timeout_s", "cancel_poll_ms", "rescan_interval_s", "log_level", "limits",
    "worker_prefix", "executor", "slurm", "http", "placement", "data_root", "data_mirror", "data_manifest",
    "data_fetch_attempts", "data_retry_s",
};

static void load_top(cfg_ctx *x, const ynode *root, svc_config *c)
{
    if (root->kind != YN_MAP) {
        err_at(x, root, "", "expected a mapping of settings (key: value)");
        return;
    }
    /* duplicate keys were reported (and dropped) by the parser, as in specs */
    for (int64_t j = 0; j < root->n; j++) {
        const ynode *k = root->v[2 * j], *v = root->v[2 * j + 1];
        const char *name = scalar(k);
        int64_t i;
        if (!name)
            continue;
        if (!strcmp(name, "experiments"))
            get_path(x, v, name, &c->experiments);
        else if (!strcmp(name, "db"))
            get_path(x, v, name, &c->db_path);
        else if (!strcmp(name, "state_dir"))
            get_path(x, v, name, &c->state_dir);
        else if (!strcmp(name, "devices"))
            load_devices(x, v, c);
        else if (!strcmp(name, "data_roots"))
            load_roots(x, v, c);
        else if (!strcmp(name, "worker_prefix"))
            load_prefix(x, v, c);
        else if (!strcmp(name, "cpu_slots"))
            get_int(x, v, name, 0, 1024, &c->cpu_slots);
        else if (!strcmp(name, "gpu_slots"))
            get_int(x, v, name, 0, 64, &c->gpu_slots);
        else if (!strcmp(name, "max_attempts"))
            get_int(x, v, name, 1, 1000, &c->max_attempts);
        else if (!strcmp(name, "worker_threads"))
            get_int(x, v, name, 0, 4096, &c->worker_threads);
        else if (!strcmp(name, "settle_ms")) {
            if (!get_i64(x, v, name, 0, 3600000, &i))
                c->settle_ms = i;
        } else if (!strcmp(name, "stop_timeout_s")) {
            if (!get_i64(x, v, name, 1, 86400, &i))
                c->stop_timeout_ms = i * 1000;
        } else if (!strcmp(name, "cancel_poll_ms")) {
            if (!get_i64(x, v, name, 10, 3600000, &i))
                c->cancel_poll_ms = i;
        } else if (!strcmp(name, "rescan_interval_s")) {
            if (!get_i64(x, v, name, 0, 86400 * 7, &i))
                c->rescan_interval_ms = i * 1000;
        } else if (!strcmp(name, "log_level")) {
            int l = svc_log_level_parse(scalar(v));
            if (l < 0)
                err_at(x, v, name, "expected error, warning, notice, info or debug, found %s",
                       scalar(v) ? scalar(v) : "a collection");
            else
                c->log_level = l;
        } else if (!strcmp(name, "placement")) {
            svc_policy p;
            if (svc_policy_parse(scalar(v), &p) < 0)
                err_at(x, v, name, "expected earliest_finish or first_free, found %s",
                       scalar(v) ? scalar(v) : "a collection");
            else
                c->placement = (int)p;
        } else if (!strcmp(name, "limits"))
            load_limits(x, v, c);
        else if (!strcmp(name, "executor")) {
            const char *e = scalar(v);
            if (e && !strcmp(e, "local"))
                c->executor = SVC_EXECUTOR_LOCAL;
            else if (e && !strcmp(e, "slurm"))
                c->executor = SVC_EXECUTOR_SLURM;
            else
                err_at(x, v, name, "expected local or slurm, found %s", e ? e : "a collection");
        } else if (!strcmp(name, "slurm"))
            svc_config_load_slurm(x, v, &c->slurm);
        else if (!strcmp(name, "http"))
            load_http(x, v, c);
        else if (svc_config_load_data_key(x, name, v, &c->data))
            ; /* config_data.c */
        else
            unknown_key(x, k, "", top_keys, (int)(sizeof top_keys / sizeof *top_keys));
    }
}

/* A deep copy of c so that a failed load leaves the caller's settings alone. */
static int copy_config(svc_config *dst, const svc_config *src)
{
    *dst = *src;
    dst->config_path = dup_or_null(src->config_path);
    dst->experiments = dup_or_null(src->experiments);
    dst->db_path = dup_or_null(src->db_path);
    dst->state_dir = dup_or_null(src->state_dir);
    dst->devices = dup_or_null(src->devices);
    dst->http_listen = dup_or_null(src->http_listen);
    dst->http_token_file = dup_or_null(src->http_token_file);
    dst->data_roots = NULL;
    dst->n_data_roots = 0;
    dst->worker_prefix = NULL;
    dst->n_worker_prefix = 0;
    bool slurm_ok = svc_slurm_config_copy(&dst->slurm, &src->slurm) == 0;
    if (svc_data_config_copy(&dst->data, &src->data) < 0)
        slurm_ok = false;
    bool ok = slurm_ok && (!src->config_path || dst->config_path) && (!src->experiments || dst->experiments) &&
              (!src->db_path || dst->db_path) && (!src->state_dir || dst->state_dir) &&
              (!src->devices || dst->devices) && (!src->http_listen || dst->http_listen) &&
              (!src->http_token_file || dst->http_token_file);
    if (ok && src->n_data_roots) {
        dst->data_roots = calloc((size_t)src->n_data_roots, sizeof *dst->data_roots);
        ok = dst->data_roots != NULL;
        for (int i = 0; ok && i < src->n_data_roots; i++) {
            dst->data_roots[i] = strdup(src->data_roots[i]);
            ok = dst->data_roots[i] != NULL;
            dst->n_data_roots = i + 1;
        }
    }
    if (ok && src->n_worker_prefix) {
        dst->worker_prefix = calloc((size_t)src->n_worker_prefix, sizeof *dst->worker_prefix);
        ok = dst->worker_prefix != NULL;
        for (int i = 0; ok && i < src->n_worker_prefix; i++) {
            dst->worker_prefix[i] = strdup(src->worker_prefix[i]);
            ok = dst->worker_prefix[i] != NULL;
            dst->n_worker_prefix = i + 1;
        }
    }
    if (!ok) {
        svc_config_free(dst);
        return SVC_ENOMEM;
    }
    return 0;
}

/* The parser's problems (syntax, duplicate keys) as located diagnostics. */
static void on_parse_report(void *ctx, int line, int col, const char *path, const char *message)
{
    cfg_ctx *x = ctx;
    x->errors++;
    if (spec_diags_add(x->diags, x->file, line, col, path, message) < 0)
        x->oom = true;
}

#define MAX_CONFIG_BYTES (1u << 20)

/* The file's bytes: a regular file (not a FIFO that would block, not a
 * device), at most MAX_CONFIG_BYTES. */
static int read_config(const char *path, char **buf, size_t *len)
{
    *buf = NULL;
    int fd;
    struct stat st;
    int rc = eng_file_open(path, 0, &fd, &st); /* a FIFO, a device, a folder: refused without blocking */
    if (rc < 0)
        return svc_error(rc == ENG_ENOENT ? SVC_ENOENT : SVC_EUSAGE, "%s", eng_last_error());
    if ((size_t)st.st_size > MAX_CONFIG_BYTES)
        rc = svc_error(SVC_EUSAGE, "larger than %u bytes", MAX_CONFIG_BYTES);
    else if (!(*buf = malloc((size_t)st.st_size + 1)))
        rc = svc_error(SVC_ENOMEM, "out of memory");
    size_t got = 0;
    while (rc == 0 && got < (size_t)st.st_size) {
        ssize_t n = read(fd, *buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = svc_error(SVC_EIO, "%s", n < 0 ? strerror(errno) : "the file shrank while being read");
        else
            got += (size_t)n;
    }
    close(fd);
    if (rc < 0) {
        free(*buf);
        *buf = NULL;
        return rc;
    }
    *len = got;
    return 0;
}

int svc_config_load(svc_config *c, const char *path, spec_diags *diags)
{
    char *buf;
    size_t len = 0;
    int rc = read_config(path, &buf, &len);
    if (rc < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot read the config file: %s", svc_last_error());
        return spec_diags_add(diags, path, 0, 0, "", msg) < 0 || rc == SVC_ENOMEM ? SVC_ENOMEM : SVC_EUSAGE;
    }
    svc_config n;
    if (copy_config(&n, c) < 0) {
        free(buf);
        return SVC_ENOMEM;
    }
    cfg_ctx x = {.file = path, .diags = diags};
    const char *slash = strrchr(path, '/');
    x.dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : NULL;
    yn_arena *a = yn_arena_new();
    ynode *root = NULL;
    bool syntax_ok = false;
    yn_limits lim = {.max_depth = 64, .max_nodes = 100000};
    if (!a || (slash && !x.dir) || yn_parse(a, buf, len, &lim, on_parse_report, &x, &root, &syntax_ok) < 0)
        x.oom = true;
    else if (root && !(root->kind == YN_SCALAR && !*root->s))
        load_top(&x, root, &n);
    yn_arena_free(a);
    free(buf);
    free(x.dir);
    if (!x.oom && x.errors == 0) {
        free(n.config_path);
        n.config_path = strdup(path);
        if (!n.config_path)
            x.oom = true;
    }
    if (x.oom || x.errors) {
        svc_config_free(&n);
        return x.oom ? SVC_ENOMEM : SVC_EUSAGE;
    }
    svc_config_free(c);
    *c = n;
    return 0;
}

static int set_str(char **dst, const char *v)
{
    if (!v)
        return 0;
    char *s = strdup(v);
    if (!s)
        return SVC_ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

int svc_config_override(svc_config *c, const svc_overrides *o)
{
    if (set_str(&c->experiments, o->experiments) || set_str(&c->db_path, o->db_path) ||
        set_str(&c->state_dir, o->state_dir) || set_str(&c->devices, o->devices) ||
        set_str(&c->http_listen, o->http_listen))
        return SVC_ENOMEM;
    return 0;
}

int svc_config_build(svc_config *c, const svc_overrides *o, spec_diags *diags)
{
    int rc = svc_config_defaults(c);
    if (rc)
        return rc;
    if (o->config && (rc = svc_config_load(c, o->config, diags)) < 0) {
        svc_config_free(c);
        return rc;
    }
    if ((rc = svc_config_override(c, o)) < 0)
        svc_config_free(c);
    return rc;
}

void svc_config_spec_options(const svc_config *c, spec_options *o)
{
    spec_options_default(o);
    o->data_roots = (const char *const *)c->data_roots;
    o->n_data_roots = c->n_data_roots;
    o->max_file_bytes = c->max_spec_bytes;
    o->max_params = c->max_params;
    if (c->max_memory_bytes)
        o->max_memory_bytes = c->max_memory_bytes;
    o->max_depth = c->max_depth;
    o->max_nodes = c->max_nodes;
    o->max_combinations = c->max_combinations;
    /* a spec's slurm.extra words: only what the service allows (an empty list allows nothing) */
    static const char *const none[] = {NULL};
    o->slurm_allowed = c->slurm.allowed_extra ? (const char *const *)c->slurm.allowed_extra : none;
    o->n_slurm_allowed = c->slurm.n_allowed_extra;
    o->download_root = c->data.root;
    o->download_manifest = c->data.manifest;
}

int svc_config_threads(const svc_config *c)
{
    if (c->worker_threads > 0)
        return c->worker_threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int slots = c->cpu_slots > 0 ? c->cpu_slots : 1;
    long t = cores > 0 ? cores / slots : 1;
    return t < 1 ? 1 : (int)t;
}

/* ---- for the files that read one section (config_read.h) ---- */

void svc_cfg_error(svc_cfg_ctx *x, const ynode *n, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err_at(x, n, key, "%s", msg);
}

const char *svc_cfg_scalar(const ynode *n) { return scalar(n); }

int svc_cfg_i64(svc_cfg_ctx *x, const ynode *n, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    return get_i64(x, n, key, lo, hi, out);
}

int svc_cfg_int(svc_cfg_ctx *x, const ynode *n, const char *key, int lo, int hi, int *out)
{
    return get_int(x, n, key, lo, hi, out);
}

void svc_cfg_unknown_key(svc_cfg_ctx *x, const ynode *k, const char *prefix, const char *const *known, int n)
{
    unknown_key(x, k, prefix, known, n);
}

int svc_cfg_words(svc_cfg_ctx *x, const ynode *v, const char *key, int max, char ***out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    ynode *const *items = NULL;
    int64_t n = 1;
    if (v->kind == YN_SEQ) {
        items = v->v;
        n = v->n;
    } else if (v->kind != YN_SCALAR || !*v->s) {
        err_at(x, v, key, "expected a list of words");
        return -1;
    }
    if (n > max) {
        err_at(x, v, key, "expected at most %d words, found %lld", max, (long long)n);
        return -1;
    }
    char **w = n ? calloc((size_t)n, sizeof *w) : NULL;
    if (n && !w) {
        x->oom = true;
        return -1;
    }
    int k = 0, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        const ynode *e = items ? items[i] : v;
        const char *t = scalar(e);
        if (!t || !*t) {
            err_at(x, e, key, "expected a word, found %s", t ? "an empty string" : "a collection");
            bad = 1;
            continue;
        }
        if (!(w[k] = strdup(t))) {
            x->oom = true;
            bad = 1;
            break;
        }
        k++;
    }
    if (bad) {
        free_roots(w, k);
        return -1;
    }
    *out = w;
    *n_out = k;
    return 0;
}
