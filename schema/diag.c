/* Diagnostics: located messages, printed as "file:line:col: path: message". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/alloc.h"
#include "schema/spec.h"

int spec_diags_add(spec_diags *d, const char *file, int line, int col, const char *path, const char *message)
{
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 8;
        spec_diag *v = spec_realloc(d->v, (size_t)cap * sizeof *v);
        if (!v)
            return SPEC_ENOMEM;
        d->v = v;
        d->cap = cap;
    }
    spec_diag g = {
        .file = spec_strdup(file ? file : ""),
        .line = line,
        .col = col,
        .path = spec_strdup(path ? path : ""),
        .message = spec_strdup(message ? message : ""),
    };
    if (!g.file || !g.path || !g.message) {
        free(g.file);
        free(g.path);
        free(g.message);
        return SPEC_ENOMEM;
    }
    d->v[d->n++] = g;
    return 0;
}

int spec_diag_format(const spec_diag *g, char *buf, size_t len)
{
    char where[64] = "";
    if (g->line > 0)
        snprintf(where, sizeof where, ":%d:%d", g->line, g->col);
    return snprintf(buf, len, "%s%s: %s%s%s", g->file, where, g->path, g->path[0] ? ": " : "", g->message);
}

void spec_diags_print(FILE *f, const spec_diags *d)
{
    for (int i = 0; i < d->n; i++) {
        const spec_diag *g = &d->v[i];
        if (g->line > 0)
            fprintf(f, "%s:%d:%d: ", g->file, g->line, g->col);
        else
            fprintf(f, "%s: ", g->file);
        if (g->path[0])
            fprintf(f, "%s: ", g->path);
        fprintf(f, "%s\n", g->message);
    }
}

char *spec_diags_join(const spec_diags *d)
{
    size_t total = 1;
    for (int i = 0; i < d->n; i++) {
        int n = spec_diag_format(&d->v[i], NULL, 0);
        total += (size_t)(n > 0 ? n : 0) + 1;
    }
    char *s = spec_malloc(total), *p = s;
    if (!s)
        return NULL;
    *p = '\0';
    for (int i = 0; i < d->n; i++) {
        int n = spec_diag_format(&d->v[i], p, total - (size_t)(p - s));
        p += n > 0 ? n : 0;
        *p++ = '\n';
        *p = '\0';
    }
    return s;
}

void spec_diags_clear(spec_diags *d)
{
    for (int i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].path);
        free(d->v[i].message);
    }
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}
