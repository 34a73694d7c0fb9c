/* Typed getters, key checks and messages shared by the validator sections. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "schema/suggest.h"
#include "schema/validate.h"

void vpath(char out[SPEC_PATH_LEN], const char *parent, const char *key)
{
    snprintf(out, SPEC_PATH_LEN, "%s%s%s", parent, parent[0] ? "." : "", key);
}

void vpath_index(char out[SPEC_PATH_LEN], const char *parent, int64_t i)
{
    snprintf(out, SPEC_PATH_LEN, "%s[%" PRId64 "]", parent, i);
}

const char *vdescribe(const ynode *n, char *buf, size_t len)
{
    if (!n)
        snprintf(buf, len, "nothing");
    else if (n->kind == YN_SEQ)
        snprintf(buf, len, "a list");
    else if (n->kind == YN_MAP)
        snprintf(buf, len, "a map");
    else if (yn_is_null(n))
        snprintf(buf, len, "nothing");
    else if (n->quoted)
        snprintf(buf, len, "the string \"%.60s%s\"", n->s, n->len > 60 ? "..." : "");
    else
        snprintf(buf, len, "%.60s%s", n->s, n->len > 60 ? "..." : "");
    return buf;
}

const ynode *vget(vctx *c, const ynode *map, const char *parent, const char *key, char path[SPEC_PATH_LEN])
{
    vpath(path, parent, key);
    const ynode *n = yn_map_get(map, key);
    if (n)
        vctx_record(c, path, n);
    return n;
}

static void int_expect(char *buf, size_t len, int64_t lo, int64_t hi)
{
    if (lo == INT64_MIN && hi == INT64_MAX)
        snprintf(buf, len, "an integer");
    else if (hi == INT64_MAX)
        snprintf(buf, len, "an integer >= %" PRId64, lo);
    else
        snprintf(buf, len, "an integer in [%" PRId64 ", %" PRId64 "]", lo, hi);
}

int vn_int(vctx *c, const ynode *n, const char *path, int64_t lo, int64_t hi, int64_t *out)
{
    char exp[96], found[96];
    int64_t v;
    int_expect(exp, sizeof exp, lo, hi);
    double d;
    if (!spec_scalar_int(n, &v)) {
        if (spec_scalar_float(n, &d))
            vctx_error(c, n->line, n->col, path, "expected %s, found %s (not a whole number)", exp,
                       vdescribe(n, found, sizeof found));
        else
            vctx_error(c, n->line, n->col, path, "expected %s, found %s", exp, vdescribe(n, found, sizeof found));
        return V_BAD;
    }
    if (v < lo || v > hi) {
        vctx_error(c, n->line, n->col, path, "expected %s, found %s", exp, vdescribe(n, found, sizeof found));
        return V_BAD;
    }
    *out = v;
    return V_OK;
}

static void num_expect(char *buf, size_t len, vrange r)
{
    bool lo = isfinite(r.lo), hi = isfinite(r.hi);
    if (lo && hi)
        snprintf(buf, len, "a number in %c%g, %g%c", r.lo_open ? '(' : '[', r.lo, r.hi, r.hi_open ? ')' : ']');
    else if (lo)
        snprintf(buf, len, "a number %s %g", r.lo_open ? ">" : ">=", r.lo);
    else if (hi)
        snprintf(buf, len, "a number %s %g", r.hi_open ? "<" : "<=", r.hi);
    else
        snprintf(buf, len, "a number");
}

static bool in_range(double v, vrange r)
{
    return !(v < r.lo || v > r.hi || (r.lo_open && v == r.lo) || (r.hi_open && v == r.hi));
}

/* Every number of a spec is used as a 32-bit float (the engine's
 * descriptions hold floats), so the range is checked on the float the value
 * becomes, not on the double it was written as: 1e39 would be inf, 1e-46
 * would be 0, 0.9999999999 would be 1. */
int vn_float(vctx *c, const ynode *n, const char *path, vrange r, float *out)
{
    char exp[96], found[96];
    double d;
    num_expect(exp, sizeof exp, r);
    if (!spec_scalar_float(n, &d)) {
        vctx_error(c, n->line, n->col, path, "expected %s, found %s", exp, vdescribe(n, found, sizeof found));
        return V_BAD;
    }
    float f = (float)d;
    if (!in_range(d, r)) {
        vctx_error(c, n->line, n->col, path, "expected %s, found %s", exp, vdescribe(n, found, sizeof found));
        return V_BAD;
    }
    if (isinf(f) || !in_range((double)f, r)) {
        vctx_error(c, n->line, n->col, path, "expected %s, found %s (as the 32-bit float it is used as: %g)", exp,
                   vdescribe(n, found, sizeof found), (double)f);
        return V_BAD;
    }
    *out = f;
    return V_OK;
}

int vn_bool(vctx *c, const ynode *n, const char *path, bool *out)
{
    char found[96];
    int b = spec_scalar_bool(n);
    if (b < 0) {
        static const char *const yaml11[] = {"yes", "no", "on", "off", "y", "n", "Yes", "No", "On", "Off",
                                             "YES", "NO", "ON", "OFF", "Y", "N"};
        bool old = false;
        for (int i = 0; i < V_NELEM(yaml11); i++)
            old |= n->kind == YN_SCALAR && !n->quoted && !strcmp(n->s, yaml11[i]);
        vctx_error(c, n->line, n->col, path, "expected true or false, found %s%s", vdescribe(n, found, sizeof found),
                   old ? " (YAML 1.1 booleans are not accepted)" : "");
        return V_BAD;
    }
    *out = b;
    return V_OK;
}

static void list_names(char *buf, size_t len, const char *const *names, int n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && o < len; i++) {
        int w = snprintf(buf + o, len - o, "%s%s", i ? (i == n - 1 ? " or " : ", ") : "", names[i]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

int vn_enum(vctx *c, const ynode *n, const char *path, const char *const *names, int nnames, int *out)
{
    char list[256], found[96];
    list_names(list, sizeof list, names, nnames);
    if (n->kind == YN_SCALAR && !yn_is_null(n)) {
        for (int i = 0; i < nnames; i++) {
            if (!strcmp(n->s, names[i])) {
                *out = i;
                return V_OK;
            }
        }
        const char *s = spec_suggest(n->s, names, nnames);
        if (s) {
            vctx_error(c, n->line, n->col, path, "expected %s, found %s (did you mean '%s'?)", list,
                       vdescribe(n, found, sizeof found), s);
            return V_BAD;
        }
    }
    vctx_error(c, n->line, n->col, path, "expected %s, found %s", list, vdescribe(n, found, sizeof found));
    return V_BAD;
}

int vn_str(vctx *c, const ynode *n, const char *path, const char **out)
{
    char found[96];
    if (n->kind != YN_SCALAR || yn_is_null(n)) {
        vctx_error(c, n->line, n->col, path, "expected a string, found %s", vdescribe(n, found, sizeof found));
        return V_BAD;
    }
    *out = n->s;
    return V_OK;
}

bool vn_map(vctx *c, const ynode *n, const char *path, const char *what)
{
    char found[96];
    if (n->kind == YN_MAP)
        return true;
    vctx_error(c, n->line, n->col, path, "expected a map%s%s, found %s", what ? " " : "", what ? what : "",
               vdescribe(n, found, sizeof found));
    return false;
}

bool vn_seq(vctx *c, const ynode *n, const char *path, const char *what)
{
    char found[96];
    if (n->kind == YN_SEQ)
        return true;
    vctx_error(c, n->line, n->col, path, "expected a list%s%s, found %s", what ? " " : "", what ? what : "",
               vdescribe(n, found, sizeof found));
    return false;
}

int v_int(vctx *c, const ynode *map, const char *parent, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    char p[SPEC_PATH_LEN];
    const ynode *n = vget(c, map, parent, key, p);
    return n ? vn_int(c, n, p, lo, hi, out) : V_ABSENT;
}

int v_num(vctx *c, const ynode *map, const char *parent, const char *key, vrange r, float *out)
{
    char p[SPEC_PATH_LEN];
    const ynode *n = vget(c, map, parent, key, p);
    return n ? vn_float(c, n, p, r, out) : V_ABSENT;
}

int v_bool(vctx *c, const ynode *map, const char *parent, const char *key, bool *out)
{
    char p[SPEC_PATH_LEN];
    const ynode *n = vget(c, map, parent, key, p);
    return n ? vn_bool(c, n, p, out) : V_ABSENT;
}

int v_enum(vctx *c, const ynode *map, const char *parent, const char *key, const char *const *names, int nnames,
           int *out)
{
    char p[SPEC_PATH_LEN];
    const ynode *n = vget(c, map, parent, key, p);
    return n ? vn_enum(c, n, p, names, nnames, out) : V_ABSENT;
}

void v_missing(vctx *c, const ynode *map, const char *parent, const char *key, const char *hint)
{
    char p[SPEC_PATH_LEN];
    vpath(p, parent, key);
    vctx_error(c, map->line, map->col, p, "missing required key%s%s", hint ? " " : "", hint ? hint : "");
}

void v_check_keys(vctx *c, const ynode *map, const char *path, const char *const *known, int nknown, v_other_fn other,
                  void *arg)
{
    for (int64_t i = 0; i < map->n; i++) {
        const ynode *k = map->v[2 * i];
        bool ok = false;
        for (int j = 0; j < nknown && !ok; j++)
            ok = !strcmp(k->s, known[j]);
        if (ok)
            continue;
        if (c->diags->n >= c->opt->max_diags) {
            c->ndropped++; /* only counted: no need for a suggestion */
            continue;
        }
        char p[SPEC_PATH_LEN], why[256];
        vpath(p, path, k->s);
        const char *w = other ? other(k->s, why, sizeof why, arg) : NULL;
        if (w) {
            vctx_error(c, k->line, k->col, p, "%s", w);
            continue;
        }
        const char *s = spec_suggest(k->s, known, nknown);
        if (s) {
            vctx_error(c, k->line, k->col, p, "unknown key (did you mean '%s'?)", s);
            continue;
        }
        const char *sec = v_section_of(k->s, path);
        if (sec && !sec[0])
            vctx_error(c, k->line, k->col, p, "unknown key here (%s belongs at the top level)", k->s);
        else if (sec)
            vctx_error(c, k->line, k->col, p, "unknown key here (%s belongs under %s:)", k->s, sec);
        else
            vctx_error(c, k->line, k->col, p, "unknown key");
    }
}

void v_not_here(vctx *c, const ynode *map, const char *parent, const char *key, const char *why)
{
    for (int64_t i = 0; i < map->n; i++) {
        const ynode *k = map->v[2 * i];
        if (!strcmp(k->s, key)) {
            char p[SPEC_PATH_LEN];
            vpath(p, parent, key);
            vctx_error(c, k->line, k->col, p, "%s", why);
        }
    }
}
