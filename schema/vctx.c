/* The validation context: collecting located problems and key-path locations. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/alloc.h"
#include "schema/internal.h"

void vctx_error(vctx *c, int line, int col, const char *path, const char *fmt, ...)
{
    if (c->diags->n >= c->opt->max_diags) {
        c->ndropped++;
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    if (c->suffix && c->suffix[0]) {
        size_t used = strlen(msg);
        snprintf(msg + used, sizeof msg - used, "%s", c->suffix);
    }
    if (spec_diags_add(c->diags, c->file, line, col, path, msg))
        c->oom = true;
}

void vctx_record(vctx *c, const char *path, const ynode *n)
{
    if (c->oom || !n)
        return;
    if (c->nlocs == c->caplocs) {
        int cap = c->caplocs ? 2 * c->caplocs : 64;
        spec_loc *l = spec_realloc(c->locs, (size_t)cap * sizeof *l);
        if (!l) {
            c->oom = true;
            return;
        }
        c->locs = l;
        c->caplocs = cap;
    }
    char *p = spec_strdup(path);
    if (!p) {
        c->oom = true;
        return;
    }
    c->locs[c->nlocs++] = (spec_loc){.path = p, .line = n->line, .col = n->col};
}

void vctx_locate(const vctx *c, const char *path, int *line, int *col)
{
    char p[SPEC_PATH_LEN];
    snprintf(p, sizeof p, "%s", path ? path : "");
    for (;;) {
        for (int i = 0; i < c->nlocs; i++) {
            if (!strcmp(c->locs[i].path, p)) {
                *line = c->locs[i].line;
                *col = c->locs[i].col;
                return;
            }
        }
        if (!p[0])
            break;
        /* drop the last component: ".key" or "[i]" */
        size_t len = strlen(p);
        char *cut = NULL;
        if (p[len - 1] == ']')
            cut = strrchr(p, '[');
        else
            cut = strrchr(p, '.');
        if (!cut)
            cut = p;
        *cut = '\0';
    }
    *line = 1;
    *col = 1;
}

void vctx_finish(vctx *c)
{
    if (c->ndropped && !c->oom) {
        char msg[128];
        snprintf(msg, sizeof msg, "%d more problems not shown (limit %d)", c->ndropped, c->opt->max_diags);
        if (spec_diags_add(c->diags, c->file, 0, 0, "", msg))
            c->oom = true;
    }
    for (int i = 0; i < c->nlocs; i++)
        free(c->locs[i].path);
    free(c->locs);
    c->locs = NULL;
    c->nlocs = c->caplocs = 0;
}
