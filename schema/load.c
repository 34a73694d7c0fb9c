/* Loading a spec file: read with limits, parse, validate or expand the sweep. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/file.h"
#include "schema/alloc.h"
#include "schema/internal.h"
#include "schema/paths.h"
#include "schema/sha256.h"

void spec_options_default(spec_options *o)
{
    memset(o, 0, sizeof *o);
    o->check_files = true;
    o->max_file_bytes = 1u << 20;
    o->max_depth = 32;
    o->max_nodes = 100000;
    o->max_params = 1000000000;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    double ram = pages > 0 && page > 0 ? (double)pages * (double)page : 8.0 * (1u << 30);
    o->max_memory_bytes = (size_t)(ram / 4 * 3);
    o->max_combinations = 1024;
    o->max_diags = 100;
    const char *root = getenv("EPOCHD_DATA_ROOT");
    o->download_root = root && *root ? root : "data";
}

const char *spec_device_name(spec_device_kind k)
{
    switch (k) {
    case SPEC_DEVICE_AUTO: return "auto";
    case SPEC_DEVICE_CPU: return "cpu";
    case SPEC_DEVICE_CUDA: return "cuda";
    }
    return "?";
}

void spec_free(spec *s)
{
    if (!s)
        return;
    spec_desc_free(s);
    spec_slurm_clear(&s->slurm);
    free(s->name);
    free(s->path);
    free(s->text);
    free(s->sweep_json);
    free(s);
}

void spec_file_error(load_ctx *L, int line, int col, const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (spec_diags_add(&L->f->file_diags, L->file, line, col, path, msg))
        L->oom = true;
}

static int copy_diags(spec_diags *to, const spec_diags *from)
{
    for (int i = 0; from && i < from->n; i++) {
        const spec_diag *g = &from->v[i];
        if (spec_diags_add(to, g->file, g->line, g->col, g->path, g->message))
            return SPEC_ENOMEM;
    }
    return 0;
}

/* In file order (stable; unlocated problems last): the engine's reports
 * come after the validator's but belong among them. */
static void sort_diags(spec_diags *d)
{
    for (int i = 1; i < d->n; i++) {
        spec_diag g = d->v[i];
        long key = g.line > 0 ? (long)g.line << 20 | g.col : LONG_MAX;
        int j = i - 1;
        while (j >= 0 && (d->v[j].line > 0 ? (long)d->v[j].line << 20 | d->v[j].col : LONG_MAX) > key) {
            d->v[j + 1] = d->v[j];
            j--;
        }
        d->v[j + 1] = g;
    }
}

int spec_entry_build(load_ctx *L, spec_entry *e, const ynode *tree, char *text, size_t text_len, char *sweep_json,
                     const char *suffix, const spec_diags *extra)
{
    e->text = text;
    e->text_len = text_len;
    e->sweep_json = sweep_json;
    spec_sha256_hex(text, text_len, e->sha256);
    /* an anchored sweep file expands up to the node limit per combination:
     * 1,024 of them need not all be held when the caller derives them again */
    bool drop_text = sweep_json && L->opt->drop_combination_texts;
    if (drop_text) {
        free(text);
        e->text = NULL;
    }
    if (copy_diags(&e->diags, &L->pre) || copy_diags(&e->diags, extra))
        return SPEC_ENOMEM;
    spec *s = spec_calloc(1, sizeof *s);
    if (!s)
        return SPEC_ENOMEM;
    vctx c = {.file = L->file, .dir = L->dir, .stem = L->stem, .opt = L->opt, .diags = &e->diags, .suffix = suffix,
              .ndropped = L->pre_dropped, .init_files = &L->init_files};
    int rc = spec_validate(&c, tree, s);
    vctx_finish(&c);
    if (rc || c.oom) {
        spec_free(s);
        return SPEC_ENOMEM;
    }
    sort_diags(&e->diags);
    e->name = spec_strdup(s->name ? s->name : L->stem);
    if (!e->name) {
        spec_free(s);
        return SPEC_ENOMEM;
    }
    if (e->diags.n) {
        spec_free(s);
        return 0;
    }
    s->path = spec_strdup(L->file);
    s->text = drop_text ? NULL : spec_strndup(text, text_len);
    s->text_len = text_len;
    memcpy(s->sha256, e->sha256, sizeof s->sha256);
    s->sweep_json = sweep_json ? spec_strdup(sweep_json) : NULL;
    if (!s->path || (!s->text && !drop_text) || (sweep_json && !s->sweep_json)) {
        spec_free(s);
        return SPEC_ENOMEM;
    }
    e->spec = s;
    return 0;
}

static void parse_report(void *ctx, int line, int col, const char *path, const char *message)
{
    load_ctx *L = ctx;
    if (L->pre.n >= L->opt->max_diags) {
        L->pre_dropped++;
        return;
    }
    if (spec_diags_add(&L->pre, L->file, line, col, path, message))
        L->oom = true;
}

void spec_file_free(spec_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n_entries; i++) {
        spec_entry *e = &f->entries[i];
        spec_free(e->spec);
        spec_diags_clear(&e->diags);
        free(e->name);
        free(e->sweep_json);
        free(e->text);
    }
    free(f->entries);
    spec_diags_clear(&f->file_diags);
    free(f->path);
    free(f);
}

static int load(load_ctx *L, const char *buf, size_t len)
{
    spec_file *f = L->f;
    const spec_options *o = L->opt;
    spec_sha256_hex(buf, len, f->sha256);
    if (len > o->max_file_bytes) {
        spec_file_error(L, 0, 0, "", "the file has %zu bytes, more than the limit of %zu", len, o->max_file_bytes);
        return 0;
    }
    yn_arena *a = yn_arena_new();
    if (!a)
        return SPEC_ENOMEM;
    ynode *root = NULL;
    bool syntax_ok;
    yn_limits lim = {.max_depth = o->max_depth, .max_nodes = o->max_nodes};
    int rc = yn_parse(a, buf, len, &lim, parse_report, L, &root, &syntax_ok);
    if (rc || L->oom) {
        yn_arena_free(a);
        return SPEC_ENOMEM;
    }
    if (!syntax_ok) {
        /* a syntax error or an exceeded limit: nothing more can be said */
        rc = copy_diags(&f->file_diags, &L->pre);
        if (!rc && L->pre_dropped)
            spec_file_error(L, 0, 0, "", "%d more problems not shown (limit %d)", L->pre_dropped, o->max_diags);
    } else if (!root) {
        spec_file_error(L, 0, 0, "", "the file is empty (a spec needs at least data: and model:)");
    } else if (root->kind == YN_MAP && (yn_map_get(root, "matrix") || yn_map_get(root, "include"))) {
        f->is_sweep = true;
        rc = spec_sweep_load(L, root);
    } else if (L->only_sweep) {
        spec_file_error(L, 0, 0, "", "the file is not a sweep (it has no matrix: or include:)");
    } else {
        f->entries = spec_calloc(1, sizeof *f->entries);
        if (!f->entries) {
            rc = SPEC_ENOMEM;
        } else {
            f->n_entries = 1;
            char *text = spec_strndup(buf, len);
            rc = text ? spec_entry_build(L, &f->entries[0], root, text, len, NULL, "", NULL) : SPEC_ENOMEM;
        }
    }
    yn_arena_free(a);
    return rc ? rc : L->oom ? SPEC_ENOMEM : 0;
}

static int start(const char *path, const spec_options *opt, spec_options *def, load_ctx *L, spec_file **out)
{
    *out = NULL;
    if (!opt) {
        spec_options_default(def);
        opt = def;
    }
    memset(L, 0, sizeof *L);
    L->opt = opt;
    L->f = spec_calloc(1, sizeof *L->f);
    char *file = spec_strdup(path ? path : "<buffer>");
    char *dir = path ? spec_dirname(path) : spec_strdup("");
    char *stem = spec_stem(path ? path : "buffer");
    if (!L->f || !file || !dir || !stem) {
        free(L->f);
        free(file);
        free(dir);
        free(stem);
        return SPEC_ENOMEM;
    }
    L->f->path = file;
    L->file = file;
    L->dir = dir;
    L->stem = stem;
    return 0;
}

static int finish(load_ctx *L, int rc, spec_file **out)
{
    free((char *)L->dir);
    free((char *)L->stem);
    spec_diags_clear(&L->pre);
    spec_init_cache_free(L->init_files);
    L->init_files = NULL;
    if (rc || L->oom) {
        spec_file_free(L->f);
        return SPEC_ENOMEM;
    }
    *out = L->f;
    return 0;
}

int spec_file_load_buffer(const char *path, const char *buf, size_t len, const spec_options *opt, spec_file **out)
{
    spec_options def;
    load_ctx L;
    int rc = start(path, opt, &def, &L, out);
    if (rc)
        return rc;
    return finish(&L, load(&L, buf, len), out);
}

int spec_sweep_combination(const char *path, const char *buf, size_t len, const char *sweep_json,
                           const spec_options *opt, char **out, size_t *out_len, char *err, size_t errlen)
{
    *out = NULL;
    *out_len = 0;
    if (err && errlen)
        err[0] = '\0';
    spec_options o;
    if (opt)
        o = *opt;
    else
        spec_options_default(&o);
    if (o.max_file_bytes < len)
        o.max_file_bytes = len; /* the file was taken once: its size is not in question */
    spec_file *f = NULL;
    load_ctx L;
    int rc = start(path, &o, &o, &L, &f);
    if (rc)
        return rc;
    L.only_sweep = sweep_json ? sweep_json : "";
    if ((rc = finish(&L, load(&L, buf, len), &f)))
        return rc;
    if (f->n_entries == 1 && f->entries[0].text) {
        *out = f->entries[0].text;
        *out_len = f->entries[0].text_len;
        f->entries[0].text = NULL;
    } else if (err && errlen) {
        if (f->file_diags.n)
            spec_diag_format(&f->file_diags.v[0], err, errlen);
        else
            snprintf(err, errlen, "%s: no combination of the sweep has the values %s", f->path, L.only_sweep);
    }
    spec_file_free(f);
    return *out ? 0 : 1;
}

/* Reads at most limit + 1 bytes (the file may grow while it is read): 0 with
 * the bytes in *buf, 1 when a read failed (reported), or SPEC_ENOMEM. */
static int read_bounded(load_ctx *L, int fd, size_t size_hint, char **buf, size_t *len)
{
    size_t limit = L->opt->max_file_bytes, cap = size_hint + 1, n = 0;
    char *b = spec_malloc(cap + 1);
    if (!b)
        return SPEC_ENOMEM;
    for (;;) {
        if (n == cap) {
            if (cap > limit)
                break;
            size_t ncap = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
            char *nb = spec_realloc(b, ncap + 1);
            if (!nb) {
                free(b);
                return SPEC_ENOMEM;
            }
            b = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            spec_file_error(L, 0, 0, "", "cannot read the file: %s", strerror(errno));
            free(b);
            return 1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *buf = b;
    *len = n;
    return 0;
}

int spec_file_load(const char *path, const spec_options *opt, spec_file **out)
{
    spec_options def;
    load_ctx L;
    int rc = start(path, opt, &def, &L, out);
    if (rc)
        return rc;
    /* a FIFO or a device dropped into the experiments directory is refused without blocking */
    int fd;
    struct stat st;
    int orc = eng_file_open(path, 0, &fd, &st);
    if (orc && errno == 0) {
        spec_file_error(&L, 0, 0, "", "not a regular file (%s)", eng_file_kind(st.st_mode));
    } else if (orc) {
        spec_file_error(&L, 0, 0, "", "cannot read the file: %s", strerror(errno));
    } else if ((size_t)st.st_size > L.opt->max_file_bytes) {
        /* checked before reading anything */
        spec_file_error(&L, 0, 0, "", "the file has %lld bytes, more than the limit of %zu", (long long)st.st_size,
                        L.opt->max_file_bytes);
    } else {
        char *buf = NULL;
        size_t len = 0;
        rc = read_bounded(&L, fd, (size_t)st.st_size, &buf, &len);
        if (rc == 0)
            rc = load(&L, buf, len);
        else if (rc == 1)
            rc = 0; /* reported */
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return finish(&L, rc, out);
}

bool spec_file_valid(const spec_file *f)
{
    if (!f || f->file_diags.n || f->n_entries == 0)
        return false;
    for (int i = 0; i < f->n_entries; i++)
        if (!f->entries[i].spec)
            return false;
    return true;
}

void spec_file_print_diags(FILE *out, const spec_file *f)
{
    spec_diags_print(out, &f->file_diags);
    for (int i = 0; i < f->n_entries; i++)
        spec_diags_print(out, &f->entries[i].diags);
}

spec *spec_file_take(spec_file *f, int i)
{
    if (!f || i < 0 || i >= f->n_entries)
        return NULL;
    spec *s = f->entries[i].spec;
    f->entries[i].spec = NULL;
    return s;
}
