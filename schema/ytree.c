/* YAML event stream -> ynode tree with marks, limits, duplicate-key checks. */
#include "schema/ytree.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "schema/alloc.h"
#include "schema/spec.h"

/* ---- arena ---- */

typedef struct yn_chunk {
    struct yn_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} yn_chunk;

struct yn_arena {
    yn_chunk *head;
};

yn_arena *yn_arena_new(void) { return spec_calloc(1, sizeof(yn_arena)); }

void yn_arena_free(yn_arena *a)
{
    if (!a)
        return;
    for (yn_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

void *yn_alloc(yn_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    yn_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = spec_malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

char *yn_strndup(yn_arena *a, const char *s, size_t n)
{
    char *d = yn_alloc(a, n + 1);
    if (d) {
        if (n) /* s may be NULL for an empty string (an empty sweep name template) */
            memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ---- constructors ---- */

ynode *yn_new_scalar(yn_arena *a, const char *s, size_t len, bool quoted, int line, int col)
{
    ynode *n = yn_alloc(a, sizeof *n);
    if (!n)
        return NULL;
    *n = (ynode){.kind = YN_SCALAR, .line = line, .col = col, .len = len, .quoted = quoted, .weight = 1, .height = 1};
    n->s = yn_strndup(a, s, len);
    return n->s ? n : NULL;
}

ynode *yn_new_map(yn_arena *a, int64_t pairs, int line, int col)
{
    ynode *n = yn_alloc(a, sizeof *n);
    if (!n)
        return NULL;
    *n = (ynode){.kind = YN_MAP, .line = line, .col = col, .n = pairs, .weight = 1, .height = 1};
    if (pairs) {
        n->v = yn_alloc(a, (size_t)(2 * pairs) * sizeof *n->v);
        if (!n->v)
            return NULL;
        memset(n->v, 0, (size_t)(2 * pairs) * sizeof *n->v);
    }
    return n;
}

ynode *yn_copy(yn_arena *a, const ynode *src)
{
    ynode *n = yn_alloc(a, sizeof *n);
    if (!n)
        return NULL;
    *n = *src;
    if (src->kind == YN_SCALAR)
        return n; /* the text is immutable: share it */
    int64_t m = src->kind == YN_MAP ? 2 * src->n : src->n;
    if (m) {
        n->v = yn_alloc(a, (size_t)m * sizeof *n->v);
        if (!n->v)
            return NULL;
        for (int64_t i = 0; i < m; i++)
            if (!(n->v[i] = yn_copy(a, src->v[i])))
                return NULL;
    }
    return n;
}

ynode *yn_map_get(const ynode *map, const char *k)
{
    if (!map || map->kind != YN_MAP)
        return NULL;
    for (int64_t i = 0; i < map->n; i++) {
        const ynode *key = map->v[2 * i];
        if (key->kind == YN_SCALAR && !strcmp(key->s, k))
            return map->v[2 * i + 1];
    }
    return NULL;
}

bool yn_is_null(const ynode *n)
{
    if (n->kind != YN_SCALAR || n->quoted)
        return false;
    return !strcmp(n->s, "") || !strcmp(n->s, "~") || !strcmp(n->s, "null") || !strcmp(n->s, "Null") ||
           !strcmp(n->s, "NULL");
}

/* ---- parser ---- */

typedef struct frame {
    ynode *node;
    size_t start; /* first child in the child stack */
} frame;

typedef struct anchor {
    const char *name;
    ynode *node;
} anchor;

typedef struct pstate {
    yn_arena *a;
    const yn_limits *lim;
    yn_report_fn report;
    void *ctx;
    frame *frames;
    int nframes, capframes;
    ynode **kids;
    size_t nkids, capkids;
    anchor *anchors; /* open addressing, capacity a power of two */
    size_t nanchors, capanchors;
    int64_t expanded;
    bool oom, failed;
    ynode *root;
} pstate;

/* The key path of the position being parsed, e.g. "model.layers[2]". */
static void cur_path(const pstate *p, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < p->nframes && o < len; i++) {
        const frame *f = &p->frames[i];
        size_t have = (i + 1 < p->nframes ? p->frames[i + 1].start : p->nkids) - f->start;
        int w = 0;
        if (f->node->kind == YN_SEQ) {
            w = snprintf(buf + o, len - o, "[%zu]", have);
        } else if (have % 2 == 1) {
            const ynode *k = p->kids[f->start + have - 1];
            w = snprintf(buf + o, len - o, "%s%s", o ? "." : "", k->kind == YN_SCALAR ? k->s : "?");
        } else {
            break;
        }
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if (o >= len)
        buf[len - 1] = '\0';
}

static void fail(pstate *p, int line, int col, const char *path, const char *msg)
{
    p->report(p->ctx, line, col, path, msg);
    p->failed = true;
}

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static int anchor_put(pstate *p, const char *name, ynode *node)
{
    if (2 * (p->nanchors + 1) > p->capanchors) {
        size_t cap = p->capanchors ? 2 * p->capanchors : 16;
        anchor *t = spec_calloc(cap, sizeof *t);
        if (!t)
            return SPEC_ENOMEM;
        for (size_t i = 0; i < p->capanchors; i++) {
            if (!p->anchors[i].name)
                continue;
            size_t j = hash_str(p->anchors[i].name) & (cap - 1);
            while (t[j].name)
                j = (j + 1) & (cap - 1);
            t[j] = p->anchors[i];
        }
        free(p->anchors);
        p->anchors = t;
        p->capanchors = cap;
    }
    size_t j = hash_str(name) & (p->capanchors - 1);
    while (p->anchors[j].name && strcmp(p->anchors[j].name, name))
        j = (j + 1) & (p->capanchors - 1);
    if (!p->anchors[j].name) {
        /* a redefined anchor replaces the old one, as YAML says */
        p->anchors[j].name = yn_strndup(p->a, name, strlen(name));
        if (!p->anchors[j].name)
            return SPEC_ENOMEM;
        p->nanchors++;
    }
    p->anchors[j].node = node;
    return 0;
}

static ynode *anchor_get(const pstate *p, const char *name)
{
    if (!p->capanchors)
        return NULL;
    size_t j = hash_str(name) & (p->capanchors - 1);
    while (p->anchors[j].name) {
        if (!strcmp(p->anchors[j].name, name))
            return p->anchors[j].node;
        j = (j + 1) & (p->capanchors - 1);
    }
    return NULL;
}

static int push_kid(pstate *p, ynode *n)
{
    if (p->nframes == 0) {
        p->root = n;
        return 0;
    }
    if (p->nkids == p->capkids) {
        size_t cap = p->capkids ? 2 * p->capkids : 64;
        ynode **k = spec_realloc(p->kids, cap * sizeof *k);
        if (!k)
            return SPEC_ENOMEM;
        p->kids = k;
        p->capkids = cap;
    }
    p->kids[p->nkids++] = n;
    return 0;
}

/* Counts a node (and everything an alias brings along) against the limits. */
static bool account(pstate *p, const ynode *n, int line, int col)
{
    char msg[160], path[256];
    p->expanded += n->weight;
    if (p->expanded > p->lim->max_nodes) {
        cur_path(p, path, sizeof path);
        snprintf(msg, sizeof msg, "the document has more than %lld nodes%s (limit)", (long long)p->lim->max_nodes,
                 n->weight > 1 ? " once aliases are expanded" : "");
        fail(p, line, col, path, msg);
        return false;
    }
    if (p->nframes + n->height > p->lim->max_depth) {
        cur_path(p, path, sizeof path);
        snprintf(msg, sizeof msg, "nested deeper than %d levels%s (limit)", p->lim->max_depth,
                 n->weight > 1 ? " once aliases are expanded" : "");
        fail(p, line, col, path, msg);
        return false;
    }
    return true;
}

static int cmp_key_idx(const void *a, const void *b, void *keys)
{
    ynode **k = keys;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(k[2 * i]->s, k[2 * j]->s);
    return c ? c : (i > j) - (i < j);
}

/* Drops pairs whose key is not a scalar or repeats an earlier key, reporting each. */
static int check_map_keys(pstate *p, ynode **kv, size_t *npairs)
{
    size_t n = *npairs;
    char path[256], msg[512];
    cur_path(p, path, sizeof path);
    bool *drop = spec_calloc(n, sizeof *drop);
    size_t *idx = spec_malloc(n * sizeof *idx);
    if (!drop || !idx) {
        free(drop);
        free(idx);
        return SPEC_ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (kv[2 * i]->kind != YN_SCALAR) {
            /* reported and dropped; parsing goes on */
            p->report(p->ctx, kv[2 * i]->line, kv[2 * i]->col, path, "expected a plain key, found a list or map as key");
            drop[i] = true;
        } else {
            idx[m++] = i;
        }
    }
    qsort_r(idx, m, sizeof *idx, cmp_key_idx, kv);
    /* idx is sorted by (key, position): the first of a run of equal keys is the original */
    for (size_t i = 1, run = 0; i < m; i++) {
        const ynode *first = kv[2 * idx[run]], *k = kv[2 * idx[i]];
        if (strcmp(first->s, k->s)) {
            run = i;
            continue;
        }
        char kp[300];
        snprintf(kp, sizeof kp, "%s%s%s", path, path[0] ? "." : "", k->s);
        snprintf(msg, sizeof msg, "duplicate key (first given at line %d, column %d)", first->line, first->col);
        p->report(p->ctx, k->line, k->col, kp, msg);
        drop[idx[i]] = true;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (drop[i])
            continue;
        kv[2 * o] = kv[2 * i];
        kv[2 * o + 1] = kv[2 * i + 1];
        o++;
    }
    *npairs = o;
    free(drop);
    free(idx);
    return 0;
}

static bool has_tag(pstate *p, const yaml_char_t *tag, int line, int col)
{
    if (!tag)
        return false;
    char path[256], msg[256];
    cur_path(p, path, sizeof path);
    snprintf(msg, sizeof msg, "YAML tags are not supported, found '%.64s'", (const char *)tag);
    fail(p, line, col, path, msg);
    return true;
}

/* An alias: the anchored node again (counted with its whole weight). */
static int on_alias(pstate *p, const yaml_event_t *e, int line, int col)
{
    ynode *n = anchor_get(p, (const char *)e->data.alias.anchor);
    if (!n) {
        char path[256], msg[320];
        cur_path(p, path, sizeof path);
        snprintf(msg, sizeof msg, "undefined alias '*%.64s'", (const char *)e->data.alias.anchor);
        fail(p, line, col, path, msg);
        return 0;
    }
    if (!account(p, n, line, col))
        return 0;
    return push_kid(p, n);
}

static int on_scalar(pstate *p, const yaml_event_t *e, int line, int col)
{
    if (has_tag(p, e->data.scalar.tag, line, col))
        return 0;
    if (memchr(e->data.scalar.value, '\0', e->data.scalar.length)) {
        char path[256];
        cur_path(p, path, sizeof path);
        fail(p, line, col, path, "NUL characters are not allowed in values");
        return 0;
    }
    ynode *n = yn_new_scalar(p->a, (const char *)e->data.scalar.value, e->data.scalar.length,
                             e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE, line, col);
    if (!n)
        return SPEC_ENOMEM;
    if (!account(p, n, line, col))
        return 0;
    if (e->data.scalar.anchor && anchor_put(p, (const char *)e->data.scalar.anchor, n))
        return SPEC_ENOMEM;
    return push_kid(p, n);
}

/* A list or map opens: a new frame collects its children until it closes. */
static int on_open(pstate *p, const yaml_event_t *e, int line, int col)
{
    bool seq = e->type == YAML_SEQUENCE_START_EVENT;
    const yaml_char_t *tag = seq ? e->data.sequence_start.tag : e->data.mapping_start.tag;
    if (has_tag(p, tag, line, col))
        return 0;
    char path[256], msg[320];
    if (p->nframes + 1 > p->lim->max_depth) {
        cur_path(p, path, sizeof path);
        snprintf(msg, sizeof msg, "nested deeper than %d levels (limit)", p->lim->max_depth);
        fail(p, line, col, path, msg);
        return 0;
    }
    if (++p->expanded > p->lim->max_nodes) {
        cur_path(p, path, sizeof path);
        snprintf(msg, sizeof msg, "the document has more than %lld nodes (limit)", (long long)p->lim->max_nodes);
        fail(p, line, col, path, msg);
        return 0;
    }
    ynode *n = yn_alloc(p->a, sizeof *n);
    if (!n)
        return SPEC_ENOMEM;
    *n = (ynode){.kind = seq ? YN_SEQ : YN_MAP, .line = line, .col = col};
    /* the anchor is registered when the node is complete, so a node
     * cannot contain itself (which would make the tree a cycle) */
    const yaml_char_t *anc = seq ? e->data.sequence_start.anchor : e->data.mapping_start.anchor;
    n->s = anc ? yn_strndup(p->a, (const char *)anc, strlen((const char *)anc)) : NULL;
    if (anc && !n->s)
        return SPEC_ENOMEM;
    if (p->nframes == p->capframes) {
        int cap = p->capframes ? 2 * p->capframes : 16;
        frame *f = spec_realloc(p->frames, (size_t)cap * sizeof *f);
        if (!f)
            return SPEC_ENOMEM;
        p->frames = f;
        p->capframes = cap;
    }
    p->frames[p->nframes++] = (frame){.node = n, .start = p->nkids};
    return 0;
}

/* A list or map closes: its children (a map's keys checked) move into the
 * node, which then becomes a child of the frame around it. */
static int on_close(pstate *p)
{
    assert(p->nframes > 0); /* libyaml balances start and end events; parsing stops at the first failure */
    frame f = p->frames[p->nframes - 1];
    ynode *n = f.node;
    size_t m = p->nkids - f.start;
    if (n->kind == YN_MAP) {
        assert(m % 2 == 0); /* a key and a value each */
        size_t pairs = m / 2;
        /* an empty map before any child was seen: kids is still NULL, and
         * NULL + 0 is undefined in C (UBSan, through scripts/fuzz config) */
        int rc = m ? check_map_keys(p, p->kids + f.start, &pairs) : 0;
        if (rc)
            return rc;
        m = 2 * pairs;
        n->n = (int64_t)pairs;
    } else {
        n->n = (int64_t)m;
    }
    if (m) {
        n->v = yn_alloc(p->a, m * sizeof *n->v);
        if (!n->v)
            return SPEC_ENOMEM;
        memcpy(n->v, p->kids + f.start, m * sizeof *n->v);
    }
    n->weight = 1;
    n->height = 1;
    for (size_t i = 0; i < m; i++) {
        n->weight += n->v[i]->weight;
        if (n->v[i]->height + 1 > n->height)
            n->height = n->v[i]->height + 1;
    }
    p->nkids = f.start;
    p->nframes--;
    const char *anc = n->s;
    n->s = NULL;
    if (anc && anchor_put(p, anc, n))
        return SPEC_ENOMEM;
    return push_kid(p, n);
}

static int on_event(pstate *p, const yaml_event_t *e, int *ndocs)
{
    int line = (int)e->start_mark.line + 1, col = (int)e->start_mark.column + 1;
    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++*ndocs > 1)
            fail(p, line, col, "", "a spec is one YAML document, found a second one ('---')");
        return 0;
    case YAML_ALIAS_EVENT:
        return on_alias(p, e, line, col);
    case YAML_SCALAR_EVENT:
        return on_scalar(p, e, line, col);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return on_open(p, e, line, col);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_close(p);
    default:
        return 0;
    }
}

/* libyaml reports reader errors (bad UTF-8, control characters) by byte offset. */
static void offset_to_mark(const char *buf, size_t len, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (buf[i] == '\n') {
            ++*line;
            *col = 1;
        } else if (((unsigned char)buf[i] & 0xC0) != 0x80) {
            ++*col;
        }
    }
}

int yn_parse(yn_arena *a, const char *buf, size_t len, const yn_limits *lim, yn_report_fn report, void *ctx,
             ynode **root, bool *syntax_ok)
{
    yaml_parser_t parser;
    pstate p = {.a = a, .lim = lim, .report = report, .ctx = ctx};
    int rc = 0, ndocs = 0;
    *root = NULL;
    *syntax_ok = false;
    if (!yaml_parser_initialize(&parser))
        return SPEC_ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    for (;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&parser, &e)) {
            if (parser.error == YAML_MEMORY_ERROR) {
                rc = SPEC_ENOMEM;
                break;
            }
            char msg[512], path[256];
            int line, col;
            if (parser.error == YAML_READER_ERROR) {
                offset_to_mark(buf, len, parser.problem_offset, &line, &col);
                snprintf(msg, sizeof msg, "not valid YAML: %s", parser.problem ? parser.problem : "unreadable input");
            } else {
                line = (int)parser.problem_mark.line + 1;
                col = (int)parser.problem_mark.column + 1;
                if (parser.context)
                    snprintf(msg, sizeof msg, "not valid YAML: %s (%s at line %d, column %d)",
                             parser.problem ? parser.problem : "syntax error", parser.context,
                             (int)parser.context_mark.line + 1, (int)parser.context_mark.column + 1);
                else
                    snprintf(msg, sizeof msg, "not valid YAML: %s", parser.problem ? parser.problem : "syntax error");
            }
            cur_path(&p, path, sizeof path);
            report(ctx, line, col, path, msg);
            p.failed = true;
            break;
        }
        bool end = e.type == YAML_STREAM_END_EVENT;
        rc = on_event(&p, &e, &ndocs);
        yaml_event_delete(&e);
        if (rc || p.failed || end)
            break;
    }
    yaml_parser_delete(&parser);
    free(p.frames);
    free(p.kids);
    free(p.anchors);
    if (rc)
        return rc;
    if (!p.failed) {
        *root = p.root;
        *syntax_ok = true;
    }
    return 0;
}
