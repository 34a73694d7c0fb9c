/* Sweeps: `matrix:` and `include:` expanded into one entry per combination.
 *
 * Each combination is the base tree (the file without matrix/include) with
 * the combination's values set at their key paths; the values keep their
 * own source marks, so a problem is located at the matrix value (or the base
 * key) that causes it. A combination's stored text is its effective YAML
 * (spec_node_yaml) and its identity the SHA-256 of that text: it changes
 * only when the base or this combination's values change. The service
 * stores the file once and derives a combination's text again from the file
 * and its values (spec_sweep_combination: the same expansion, one
 * combination, no validation). */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/alloc.h"
#include "schema/internal.h"
#include "schema/strbuf.h"
#include "schema/sha256.h"
#include "schema/suggest.h"

typedef struct assign {
    const char *path; /* "model.patch_size" */
    const ynode *key;    /* the key node in matrix or include (for locations) */
    const ynode *value;
} assign;

typedef struct axis {
    const char *path;
    const ynode *key;
    const ynode *values; /* a non-empty list */
} axis;

/* A key path: identifiers joined by dots. */
static bool path_ok(const char *p)
{
    if (!*p || strlen(p) >= 200)
        return false;
    for (const char *s = p; *s; s++) {
        bool ident = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_';
        if (*s == '.') {
            if (s == p || s[1] == '\0' || s[1] == '.')
                return false;
        } else if (!ident) {
            return false;
        }
    }
    return true;
}

static bool first_is(const char *p, const char *k)
{
    size_t n = strlen(k);
    return !strncmp(p, k, n) && (p[n] == '\0' || p[n] == '.');
}

/* One path is the other or lies inside it. */
static bool overlap(const char *a, const char *b) { return first_is(a, b) || first_is(b, a); }

/* include: entries may set name (an explicit extra run); matrix: may not. */
static bool key_path_ok(load_ctx *L, const ynode *k, const char *where, bool name_ok)
{
    if (!path_ok(k->s)) {
        spec_file_error(L, k->line, k->col, where, "expected a key path like model.patch_size, found '%.80s'", k->s);
        return false;
    }
    if (first_is(k->s, "matrix") || first_is(k->s, "include") || (!name_ok && !strcmp(k->s, "name"))) {
        spec_file_error(L, k->line, k->col, where, "%s cannot be swept%s", k->s,
                        !strcmp(k->s, "name") ? " (put placeholders like {model.patch_size} in name: instead)" : "");
        return false;
    }
    return true;
}

/* The value at path in tree, or NULL. */
static const ynode *lookup(const ynode *tree, const char *path)
{
    char comp[SPEC_PATH_LEN];
    const ynode *cur = tree;
    while (cur && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof comp)
            return NULL;
        memcpy(comp, path, n);
        comp[n] = '\0';
        cur = yn_map_get(cur, comp);
        path += n + (dot ? 1 : 0);
    }
    return cur;
}

/* Appends (key, value) to map, which lives in arena a. */
static bool map_append(yn_arena *a, ynode *map, ynode *key, ynode *value)
{
    ynode **v = yn_alloc(a, (size_t)(2 * map->n + 2) * sizeof *v);
    if (!v)
        return false;
    if (map->n)
        memcpy(v, map->v, (size_t)(2 * map->n) * sizeof *v);
    v[2 * map->n] = key;
    v[2 * map->n + 1] = value;
    map->v = v;
    map->n++;
    return true;
}

/* Sets path in tree to value, creating maps on the way. 0; SPEC_ENOMEM; or
 * 1 when a component on the way is not a map (reported into extra). */
static int set_path(load_ctx *L, yn_arena *a, ynode *tree, const assign *as, spec_diags *extra, const char *suffix)
{
    char comp[SPEC_PATH_LEN], sofar[SPEC_PATH_LEN];
    const char *path = as->path;
    assert(strlen(path) < SPEC_PATH_LEN); /* path_ok held it to 200 bytes: each component fits comp */
    ynode *cur = tree;
    int line = as->key->line, col = as->key->col;
    for (;;) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        memcpy(comp, path, n);
        comp[n] = '\0';
        snprintf(sofar, sizeof sofar, "%.*s", (int)(path + n - as->path), as->path);
        ynode *child = NULL;
        int64_t at = -1;
        for (int64_t i = 0; i < cur->n; i++) {
            if (!strcmp(cur->v[2 * i]->s, comp)) {
                child = cur->v[2 * i + 1];
                at = i;
                break;
            }
        }
        if (!dot) {
            ynode *v = yn_copy(a, as->value);
            if (!v)
                return SPEC_ENOMEM;
            if (at >= 0) {
                cur->v[2 * at + 1] = v;
                return 0;
            }
            ynode *k = yn_new_scalar(a, comp, n, false, line, col);
            return k && map_append(a, cur, k, v) ? 0 : SPEC_ENOMEM;
        }
        if (!child) {
            ynode *k = yn_new_scalar(a, comp, n, false, line, col);
            child = yn_new_map(a, 0, line, col);
            if (!k || !child || !map_append(a, cur, k, child))
                return SPEC_ENOMEM;
        } else if (child->kind != YN_MAP) {
            char msg[SPEC_PATH_LEN + 128];
            snprintf(msg, sizeof msg, "cannot set %s: %s is not a map in this spec%s", as->path, sofar, suffix);
            return spec_diags_add(extra, L->file, line, col, as->path, msg) ? SPEC_ENOMEM : 1;
        }
        cur = child;
        path = dot + 1;
    }
}

/* Keeps what may appear in a run name; the rest becomes '_'. */
static void sanitize(char *s)
{
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '-' || ch == '.' || ch == '+' || ch == '='))
            *s = '_';
    }
}

static void put_node(sbuf *b, const ynode *n, bool bare)
{
    char *s = spec_node_json(n, bare);
    if (!s) {
        b->oom = true;
        return;
    }
    sbuf_puts(b, s);
    free(s);
}

/* Fills {key.path} placeholders of a name template. 0, SPEC_ENOMEM, or 1 when
 * a placeholder is not defined (reported into extra). */
static int fill_name(load_ctx *L, const ynode *name, const ynode *tree, const assign *as, int nas, sbuf *out,
                     spec_diags *extra, const char *suffix)
{
    const char *s = name->s;
    while (*s) {
        const char *open = strchr(s, '{');
        if (!open) {
            sbuf_puts(out, s);
            break;
        }
        char lit[SPEC_PATH_LEN];
        snprintf(lit, sizeof lit, "%.*s", (int)(open - s), s);
        sbuf_puts(out, lit);
        const char *close = strchr(open, '}');
        char key[SPEC_PATH_LEN], msg[SPEC_PATH_LEN + 256];
        if (!close || (size_t)(close - open - 1) >= sizeof key) {
            snprintf(msg, sizeof msg, "a placeholder opened with { is not closed with }%s", suffix);
            return spec_diags_add(extra, L->file, name->line, name->col, "name", msg) ? SPEC_ENOMEM : 1;
        }
        snprintf(key, sizeof key, "%.*s", (int)(close - open - 1), open + 1);
        const ynode *v = NULL;
        for (int i = 0; i < nas && !v; i++)
            if (!strcmp(as[i].path, key))
                v = as[i].value;
        if (!v && path_ok(key))
            v = lookup(tree, key);
        if (!v) {
            const char *cands[64];
            int nc = 0;
            for (int i = 0; i < nas && nc < 64; i++)
                cands[nc++] = as[i].path;
            const char *sug = spec_suggest(key, cands, nc);
            char hint[SPEC_PATH_LEN + 32] = "";
            if (sug)
                snprintf(hint, sizeof hint, " (did you mean {%s}?)", sug);
            snprintf(msg, sizeof msg, "placeholder {%s} is neither a swept key nor a key of the spec%s%s", key, hint,
                     suffix);
            return spec_diags_add(extra, L->file, name->line, name->col, "name", msg) ? SPEC_ENOMEM : 1;
        }
        put_node(out, v, true);
        s = close + 1;
    }
    return out->oom ? SPEC_ENOMEM : 0;
}

/* The combination's values as JSON ({"model.patch_size":4}, stored with the
 * run) and as the suffix of its messages (" [model.patch_size=4]"). */
static void describe(const assign *as, int nas, sbuf *json, sbuf *suffix)
{
    sbuf_puts(json, "{");
    sbuf_puts(suffix, " [");
    for (int i = 0; i < nas; i++) {
        sbuf_puts(json, i ? ",\"" : "\"");
        sbuf_puts(json, as[i].path);
        sbuf_puts(json, "\":");
        put_node(json, as[i].value, false);
        sbuf_puts(suffix, i ? ", " : "");
        sbuf_puts(suffix, as[i].path);
        sbuf_puts(suffix, "=");
        put_node(suffix, as[i].value, true);
    }
    sbuf_puts(json, "}");
    sbuf_puts(suffix, "]");
}

/* A name: that is a template with {key.path} placeholders (any other kind of
 * name is left for the validator to report). */
static bool is_template(const ynode *nm) { return nm->kind == YN_SCALAR && !yn_is_null(nm); }

/* The run name into name: the template filled in; without name: (or when the
 * template cannot be filled, which is reported into extra) the file's stem
 * and each swept key's last component with its value. 0 or SPEC_ENOMEM. */
static int run_name(load_ctx *L, const ynode *tree, const assign *as, int nas, spec_diags *extra,
                    const char *suffix, sbuf *name)
{
    const ynode *nm = yn_map_get(tree, "name");
    if (nm && !is_template(nm))
        return 0;
    if (nm) {
        int fr = fill_name(L, nm, tree, as, nas, name, extra, suffix);
        if (fr <= 0)
            return fr;
        free(name->p);
        *name = (sbuf){0};
    }
    sbuf_puts(name, L->stem);
    for (int i = 0; i < nas; i++) {
        const char *leaf = strrchr(as[i].path, '.');
        sbuf_puts(name, "_");
        sbuf_puts(name, leaf ? leaf + 1 : as[i].path);
        put_node(name, as[i].value, true);
    }
    if (name->oom)
        return SPEC_ENOMEM;
    sanitize(name->p);
    return 0;
}

/* Puts the run name into tree (in arena a): in place of the template, or
 * first into the effective YAML when the spec has no name:. 0 or SPEC_ENOMEM. */
static int place_name(yn_arena *a, ynode *tree, const sbuf *name)
{
    const ynode *nm = yn_map_get(tree, "name");
    if (nm && is_template(nm)) {
        ynode *filled = yn_new_scalar(a, name->p, name->n, true, nm->line, nm->col);
        if (!filled)
            return SPEC_ENOMEM;
        for (int64_t i = 0; i < tree->n; i++)
            if (!strcmp(tree->v[2 * i]->s, "name"))
                tree->v[2 * i + 1] = filled;
    } else if (!nm) {
        ynode *k = yn_new_scalar(a, "name", 4, false, 1, 1), *v = yn_new_scalar(a, name->p, name->n, true, 1, 1);
        ynode **kv = yn_alloc(a, (size_t)(2 * tree->n + 2) * sizeof *kv);
        if (!k || !v || !kv)
            return SPEC_ENOMEM;
        kv[0] = k;
        kv[1] = v;
        if (tree->n)
            memcpy(kv + 2, tree->v, (size_t)(2 * tree->n) * sizeof *kv);
        tree->v = kv;
        tree->n++;
    }
    return 0;
}

/* Builds and validates one combination into entry e: the base with the
 * combination's values set, named, rendered as YAML. */
static int build_combo(load_ctx *L, const ynode *base, const assign *as, int nas, spec_entry *e)
{
    spec_diags extra = {0};
    sbuf json = {0}, suffix = {0}, name = {0};
    yn_arena *a = yn_arena_new();
    if (!a)
        return SPEC_ENOMEM;
    describe(as, nas, &json, &suffix);
    ynode *tree = yn_copy(a, base);
    int rc = json.oom || suffix.oom || !tree ? SPEC_ENOMEM : 0;
    for (int i = 0; i < nas && !rc; i++) {
        int r = set_path(L, a, tree, &as[i], &extra, suffix.p);
        if (r < 0)
            rc = r;
    }
    if (!rc)
        rc = run_name(L, tree, as, nas, &extra, suffix.p, &name);
    if (!rc)
        rc = place_name(a, tree, &name);
    size_t len = 0;
    char *text = rc ? NULL : spec_node_yaml(tree, &len);
    if (!rc && !text)
        rc = SPEC_ENOMEM;
    if (!rc && L->only_sweep) {
        /* spec_sweep_combination: the text is all it wants */
        e->text = text;
        e->text_len = len;
        e->sweep_json = json.p;
        e->name = spec_strdup(name.p ? name.p : L->stem);
        spec_sha256_hex(text, len, e->sha256);
        json.p = NULL;
        rc = e->name ? 0 : SPEC_ENOMEM;
    } else if (!rc) {
        rc = spec_entry_build(L, e, tree, text, len, json.p, suffix.p, &extra);
        json.p = NULL;
    }
    free(json.p);
    free(suffix.p);
    free(name.p);
    spec_diags_clear(&extra);
    yn_arena_free(a);
    return rc;
}

/* A sweep being loaded: what the checks of matrix: and include: leave for the expansion. */
typedef struct sweep {
    const ynode *root, *matrix, *include;
    axis *axes; /* the matrix's keys in file order (the bad ones left out) */
    int naxes;
    int64_t nmatrix;  /* the matrix's combinations; past the limit, limit + 1 */
    int64_t ninclude; /* include:'s entries */
} sweep;

/* Reports a matrix key whose path overlaps one swept before it; true if it does. */
static bool overlaps_axis(load_ctx *L, const sweep *s, const ynode *k, const char *where)
{
    bool found = false;
    for (int j = 0; j < s->naxes; j++) {
        if (overlap(s->axes[j].path, k->s)) {
            spec_file_error(L, k->line, k->col, where, "overlaps the swept key %s", s->axes[j].path);
            found = true;
        }
    }
    return found;
}

/* A matrix key's values must be a non-empty list; reports it otherwise. */
static bool values_ok(load_ctx *L, const ynode *v, const char *where)
{
    if (v->kind == YN_SEQ && v->n > 0)
        return true;
    char found[96];
    const char *what = v->kind == YN_SEQ ? "an empty list" : v->kind == YN_MAP ? "a map" : NULL;
    if (!what) {
        snprintf(found, sizeof found, "%.60s", yn_is_null(v) ? "nothing" : v->s);
        what = found;
    }
    spec_file_error(L, v->line, v->col, where, "expected a non-empty list of values, found %s%s", what,
                    v->kind == YN_SCALAR ? " (write [value] for a single value)" : "");
    return false;
}

/* A swept key path must lead through maps of the base; reports it otherwise. */
static bool axis_reachable(load_ctx *L, const ynode *root, const axis *ax)
{
    bool ok = true;
    const char *p = ax->path;
    const ynode *cur = root;
    for (const char *dot; cur && (dot = strchr(p, '.'));) {
        char comp[SPEC_PATH_LEN];
        snprintf(comp, sizeof comp, "%.*s", (int)(dot - p), p);
        cur = yn_map_get(cur, comp);
        if (cur && cur->kind != YN_MAP) {
            char where[SPEC_PATH_LEN];
            snprintf(where, sizeof where, "matrix.%s", ax->path);
            spec_file_error(L, ax->key->line, ax->key->col, where, "cannot set %s: %.*s is not a map in this spec",
                            ax->path, (int)(dot - ax->path), ax->path);
            ok = false;
        }
        p = dot + 1;
    }
    return ok;
}

/* Checks matrix: (a map of key paths to non-empty lists) into s->axes and
 * counts its combinations. 0; 1 when problems were reported; SPEC_ENOMEM. */
static int check_matrix(load_ctx *L, sweep *s)
{
    const ynode *matrix = s->matrix;
    if (matrix->kind != YN_MAP || matrix->n == 0) {
        spec_file_error(L, matrix->line, matrix->col, "matrix",
                        "expected a map of key paths to lists of values, like {model.patch_size: [4, 2]}, found %s",
                        matrix->kind == YN_MAP ? "an empty map" : matrix->kind == YN_SEQ ? "a list" : "a value");
        return 1;
    }
    s->axes = spec_calloc((size_t)matrix->n, sizeof *s->axes);
    if (!s->axes)
        return SPEC_ENOMEM;
    const int64_t maxc = L->opt->max_combinations;
    bool bad = false;
    s->nmatrix = 1;
    for (int64_t i = 0; i < matrix->n; i++) {
        const ynode *k = matrix->v[2 * i], *v = matrix->v[2 * i + 1];
        char where[SPEC_PATH_LEN];
        snprintf(where, sizeof where, "matrix.%s", k->s);
        if (!key_path_ok(L, k, "matrix", false)) {
            bad = true;
            continue;
        }
        bad |= overlaps_axis(L, s, k, where);
        if (!values_ok(L, v, where)) {
            bad = true;
            continue;
        }
        s->axes[s->naxes++] = (axis){.path = k->s, .key = k, .values = v};
        if (s->nmatrix > maxc / v->n + 1)
            s->nmatrix = maxc + 1; /* saturate: only "too many" matters */
        else
            s->nmatrix *= v->n;
    }
    for (int j = 0; j < s->naxes; j++)
        bad |= !axis_reachable(L, s->root, &s->axes[j]);
    return bad;
}

/* Checks include: (a non-empty list of maps of key paths to values, the
 * paths of one entry not overlapping). True when problems were reported. */
static bool check_include(load_ctx *L, sweep *s)
{
    const ynode *include = s->include;
    if (include->kind != YN_SEQ || include->n == 0) {
        spec_file_error(L, include->line, include->col, "include",
                        "expected a non-empty list of maps of key paths to values, like "
                        "[{model.patch_size: 8, model.hidden: 256}]");
        return true;
    }
    bool bad = false;
    s->ninclude = include->n;
    for (int64_t i = 0; i < include->n; i++) {
        const ynode *m = include->v[i];
        char where[SPEC_PATH_LEN];
        snprintf(where, sizeof where, "include[%" PRId64 "]", i);
        if (m->kind != YN_MAP || m->n == 0) {
            spec_file_error(L, m->line, m->col, where,
                            "expected a map of key paths to values, like {model.patch_size: 8}");
            bad = true;
            continue;
        }
        for (int64_t j = 0; j < m->n; j++) {
            const ynode *k = m->v[2 * j];
            if (!key_path_ok(L, k, where, true)) {
                bad = true;
                continue;
            }
            for (int64_t e = 0; e < j; e++) {
                if (overlap(m->v[2 * e]->s, k->s)) {
                    spec_file_error(L, k->line, k->col, where, "%s overlaps %s", k->s, m->v[2 * e]->s);
                    bad = true;
                }
            }
        }
    }
    return bad;
}

/* The sweep may not have more combinations than max_combinations; true (reported) when it has. */
static bool over_limit(load_ctx *L, const sweep *s)
{
    const int64_t maxc = L->opt->max_combinations;
    if (s->nmatrix + s->ninclude <= maxc)
        return false;
    const ynode *at = s->matrix ? s->matrix : s->include;
    const char *where = s->matrix ? "matrix" : "include";
    if (s->nmatrix > maxc)
        spec_file_error(L, at->line, at->col, where, "the sweep has more than %" PRId64 " combinations (limit)", maxc);
    else
        spec_file_error(L, at->line, at->col, where,
                        "the sweep has %" PRId64 " combinations, more than the limit of %" PRId64,
                        s->nmatrix + s->ninclude, maxc);
    return true;
}

/* The base: the file without matrix: and include: (sharing root's nodes), in arena a. NULL on OOM. */
static ynode *base_tree(yn_arena *a, const ynode *root)
{
    ynode *base = yn_new_map(a, root->n, root->line, root->col);
    if (!base)
        return NULL;
    base->n = 0;
    for (int64_t i = 0; i < root->n; i++) {
        const char *k = root->v[2 * i]->s;
        if (!strcmp(k, "matrix") || !strcmp(k, "include"))
            continue;
        base->v[2 * base->n] = root->v[2 * i];
        base->v[2 * base->n + 1] = root->v[2 * i + 1];
        base->n++;
    }
    return base;
}

/* The assignments of combination c into as (room for every axis and every
 * include entry's keys); returns how many. The matrix's combinations come
 * first, its first key varying slowest like nested loops in matrix order;
 * then include:'s entries. */
static int combination(const sweep *s, int64_t c, assign *as)
{
    if (c < s->nmatrix) {
        int64_t r = c;
        for (int j = s->naxes - 1; j >= 0; j--) {
            const axis *ax = &s->axes[j];
            as[j] = (assign){ax->path, ax->key, ax->values->v[r % ax->values->n]};
            r /= ax->values->n;
        }
        return s->naxes;
    }
    const ynode *m = s->include->v[c - s->nmatrix];
    for (int64_t j = 0; j < m->n; j++)
        as[j] = (assign){m->v[2 * j]->s, m->v[2 * j], m->v[2 * j + 1]};
    return (int)m->n;
}

/* Builds and validates every combination into L->f->entries. */
static int expand(load_ctx *L, const sweep *s, const ynode *base)
{
    int64_t total = s->nmatrix + s->ninclude;
    int nas_max = s->naxes;
    for (int64_t i = 0; i < s->ninclude; i++)
        if (s->include->v[i]->n > nas_max)
            nas_max = (int)s->include->v[i]->n;
    assign *as = spec_calloc((size_t)nas_max + 1, sizeof *as);
    L->f->entries = spec_calloc((size_t)total, sizeof *L->f->entries);
    int rc = as && L->f->entries ? 0 : SPEC_ENOMEM;
    for (int64_t c = 0; c < total && !rc; c++) {
        int nas = combination(s, c, as);
        if (L->only_sweep) {
            /* one combination, found by its values: only it is built */
            sbuf json = {0}, suffix = {0};
            describe(as, nas, &json, &suffix);
            bool found = json.p && !strcmp(json.p, L->only_sweep);
            rc = json.oom || suffix.oom ? SPEC_ENOMEM : 0;
            free(json.p);
            free(suffix.p);
            if (!rc && found) {
                rc = build_combo(L, base, as, nas, &L->f->entries[0]);
                L->f->n_entries = 1;
                break;
            }
            continue;
        }
        rc = build_combo(L, base, as, nas, &L->f->entries[c]);
        L->f->n_entries = (int)(c + 1);
    }
    free(as);
    return rc;
}

/* Every combination must be a different run with a different name: a
 * repeat is reported on the later combination, which then has no spec. */
static int check_unique(load_ctx *L, const sweep *s)
{
    int64_t total = s->nmatrix + s->ninclude;
    for (int64_t c = 1; c < total; c++) {
        spec_entry *e = &L->f->entries[c];
        for (int64_t d = 0; d < c; d++) {
            const spec_entry *o = &L->f->entries[d];
            const char *why = !strcmp(e->sha256, o->sha256) ? "repeats"
                              : !strcmp(e->name, o->name)   ? "has the name of"
                                                            : NULL;
            if (!why)
                continue;
            const ynode *nm = yn_map_get(s->root, "name");
            const ynode *at = c >= s->nmatrix ? s->include->v[c - s->nmatrix] : nm ? nm : s->root;
            char msg[512];
            snprintf(msg, sizeof msg, "this combination %s combination %" PRId64 " (%s)%s", why, d + 1, o->name,
                     why[0] == 'h' ? ": put the swept values in name:, like {model.patch_size}" : "");
            if (spec_diags_add(&e->diags, L->file, at->line, at->col, c >= s->nmatrix ? "include" : "name", msg))
                return SPEC_ENOMEM;
            spec_free(e->spec);
            e->spec = NULL;
            break;
        }
    }
    return 0;
}

int spec_sweep_load(load_ctx *L, const ynode *root)
{
    sweep s = {.root = root, .matrix = yn_map_get(root, "matrix"), .include = yn_map_get(root, "include")};
    bool bad = false;
    if (s.matrix) {
        int r = check_matrix(L, &s);
        if (r < 0)
            return r;
        bad = r;
    }
    if (s.include)
        bad |= check_include(L, &s);
    if (!bad)
        bad = over_limit(L, &s);
    if (bad || L->oom) {
        free(s.axes);
        return L->oom ? SPEC_ENOMEM : 0;
    }
    yn_arena *a = yn_arena_new();
    ynode *base = a ? base_tree(a, root) : NULL;
    int rc = base ? expand(L, &s, base) : SPEC_ENOMEM;
    if (!rc && !L->only_sweep)
        rc = check_unique(L, &s);
    free(s.axes);
    yn_arena_free(a);
    return rc;
}
