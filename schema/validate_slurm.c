/* The spec's `slurm:` section: how the service's executor slurm submits the
 * run (partition, account, QoS, time limit, more sbatch words from the
 * service's allow-list), and the same checks for the service's own
 * defaults. The local executor ignores the section. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/alloc.h"
#include "schema/validate.h"

/* sbatch options epochd sets itself (job name, files, requeue, environment,
 * the script): a spec or a config may not change them. */
static const char *const reserved[] = {
    "--output",     "--error", "--input",     "--job-name",   "--comment",      "--open-mode",           "--parsable",
    "--wrap",       "--array", "--requeue",   "--no-requeue", "--export",       "--export-file",         "--chdir",
    "--wait",       "--hold",  "--test-only", "--batch",      "--get-user-env", "--kill-on-invalid-dep", "--signal",
    "--dependency",
};

static bool word_char_ok(char ch) { return isalnum((unsigned char)ch) || strchr("_.,+-:=/@%", ch); }

/* Partition, account and QoS names: letters, digits and _ . , + - (a
 * comma-separated list of partitions too), not starting with '-'. */
static bool slurm_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128 || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.,+-", s[i]))
            return false;
    return true;
}

/* digits only, at most 6 of them */
static bool number(const char *s, size_t n)
{
    if (n < 1 || n > 6)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

bool spec_slurm_time_ok(const char *s)
{
    if (!s || !*s)
        return false;
    if (!strcmp(s, "INFINITE") || !strcmp(s, "UNLIMITED") || !strcmp(s, "infinite") || !strcmp(s, "unlimited"))
        return true;
    /* minutes | minutes:seconds | hours:minutes:seconds |
     * days-hours[:minutes[:seconds]] */
    const char *dash = strchr(s, '-');
    const char *p = s;
    if (dash) {
        if (!number(s, (size_t)(dash - s)))
            return false;
        p = dash + 1;
    }
    int parts = 0;
    for (;;) {
        size_t n = strcspn(p, ":");
        if (!number(p, n))
            return false;
        parts++;
        p += n;
        if (*p != ':')
            break;
        p++;
    }
    return *p == '\0' && parts <= 3;
}

int spec_slurm_check_word(const char *w, const char *const *allowed, int n_allowed, char *why, size_t len)
{
    size_t n = strcspn(w, "=");
    bool shape = n > 2 && !strncmp(w, "--", 2) && islower((unsigned char)w[2]);
    for (size_t i = 2; shape && i < n; i++)
        shape = islower((unsigned char)w[i]) || isdigit((unsigned char)w[i]) || w[i] == '-';
    for (const char *p = w + n; shape && *p; p++)
        shape = word_char_ok(*p);
    if (!shape) {
        snprintf(why, len,
                 "expected an sbatch option as --name or --name=value (letters, "
                 "digits and _.,+-:=/@%%), "
                 "found '%.60s'",
                 w);
        return -1;
    }
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strlen(reserved[i]) == n && !strncmp(w, reserved[i], n)) {
            snprintf(why, len, "%.*s is set by epochd itself and cannot be changed", (int)n, w);
            return -1;
        }
    if (!allowed)
        return 0;
    for (int i = 0; i < n_allowed; i++)
        if (strlen(allowed[i]) == n && !strncmp(w, allowed[i], n))
            return 0;
    char list[512] = "";
    for (int i = 0; i < n_allowed && strlen(list) < sizeof list - 40; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", allowed[i]);
    snprintf(why, len, "%.*s is not among the sbatch options the service allows (%s)", (int)n, w,
             n_allowed ? list : "none: slurm.allowed_extra is empty");
    return -1;
}

void spec_slurm_clear(spec_slurm *s)
{
    free(s->partition);
    free(s->account);
    free(s->qos);
    free(s->time);
    for (int i = 0; i < s->n_extra; i++)
        free(s->extra[i]);
    free(s->extra);
    memset(s, 0, sizeof *s);
}

static void v_name(vctx *c, const ynode *map, const char *key, char **out)
{
    char p[SPEC_PATH_LEN], found[96];
    const ynode *n = vget(c, map, "slurm", key, p);
    const char *s;
    if (!n || vn_str(c, n, p, &s) != V_OK)
        return;
    if (!slurm_name_ok(s)) {
        vctx_error(c, n->line, n->col, p, "expected a Slurm %s name (letters, digits and _ . , + -), found %s", key,
                   vdescribe(n, found, sizeof found));
        return;
    }
    if (!(*out = spec_strdup(s)))
        c->oom = true;
}

void v_slurm(vctx *c, const ynode *node, spec_slurm *out)
{
    static const char *const keys[] = {"partition", "account", "qos", "time", "extra"};
    char p[SPEC_PATH_LEN], q[SPEC_PATH_LEN], found[96];
    if (!vn_map(c, node, "slurm", "{partition: ..., time: \"2:00:00\", ...}"))
        return;
    v_check_keys(c, node, "slurm", keys, V_NELEM(keys), NULL, NULL);
    v_name(c, node, "partition", &out->partition);
    v_name(c, node, "account", &out->account);
    v_name(c, node, "qos", &out->qos);
    const ynode *n = vget(c, node, "slurm", "time", p);
    if (n) {
        const char *s = n->kind == YN_SCALAR && !yn_is_null(n) ? n->s : NULL;
        if (!s || !spec_slurm_time_ok(s))
            vctx_error(c, n->line, n->col, p,
                       "expected a Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, "
                       "D-HH:MM, D-HH:MM:SS or "
                       "INFINITE), found %s",
                       vdescribe(n, found, sizeof found));
        else if (!(out->time = spec_strdup(s)))
            c->oom = true;
    }
    n = vget(c, node, "slurm", "extra", p);
    if (!n || !vn_seq(c, n, p, "of sbatch options, e.g. [--constraint=a100, --mem=16G]"))
        return;
    if (n->n > 64) {
        vctx_error(c, n->line, n->col, p, "expected at most 64 sbatch options, found %lld", (long long)n->n);
        return;
    }
    if (n->n && !(out->extra = spec_calloc((size_t)n->n, sizeof *out->extra))) {
        c->oom = true;
        return;
    }
    for (int64_t i = 0; i < n->n; i++) {
        const ynode *e = n->v[i];
        const char *w;
        vpath_index(q, p, i);
        vctx_record(c, q, e);
        if (vn_str(c, e, q, &w) != V_OK)
            continue;
        char why[768];
        if (spec_slurm_check_word(w, c->opt->slurm_allowed, c->opt->n_slurm_allowed, why, sizeof why) < 0) {
            vctx_error(c, e->line, e->col, q, "%s", why);
            continue;
        }
        if (!(out->extra[out->n_extra] = spec_strdup(w))) {
            c->oom = true;
            return;
        }
        out->n_extra++;
    }
}

/* Reports of the YAML parser while reading the section for the service. */
static void on_report(void *ctx, int line, int col, const char *path, const char *message)
{
    (void)line;
    (void)col;
    char *err = ctx;
    if (!err[0])
        snprintf(err, 512, "%s: %s", path, message);
}

int spec_slurm_from_text(const char *text, size_t len, spec_slurm *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    char perr[512] = "";
    yn_arena *a = yn_arena_new();
    ynode *root = NULL;
    bool syntax_ok = false;
    yn_limits lim = {.max_depth = 64, .max_nodes = 1000000};
    if (!a || yn_parse(a, text, len, &lim, on_report, perr, &root, &syntax_ok) < 0) {
        yn_arena_free(a);
        return SPEC_ENOMEM;
    }
    int rc = 0;
    const ynode *n = root && root->kind == YN_MAP ? yn_map_get(root, "slurm") : NULL;
    (void)syntax_ok; /* duplicate keys were dropped; the rest is usable */
    if (!root && perr[0]) {
        snprintf(err, errlen, "the spec is not valid YAML: %s", perr);
        rc = 1;
    } else if (n) {
        spec_options o;
        spec_options_default(&o);
        spec_diags diags = {0};
        vctx c = {.file = "spec", .dir = "", .stem = "spec", .opt = &o, .diags = &diags};
        v_slurm(&c, n, out);
        if (c.oom) {
            rc = SPEC_ENOMEM;
        } else if (diags.n) {
            spec_diag_format(&diags.v[0], err, errlen);
            rc = 1;
        }
        vctx_finish(&c);
        spec_diags_clear(&diags);
        if (rc)
            spec_slurm_clear(out);
    }
    yn_arena_free(a);
    return rc;
}
