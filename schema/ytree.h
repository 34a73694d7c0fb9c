/* A YAML document as a small tree with source marks (internal to schema/).
 *
 * Built from libyaml's event stream rather than its yaml_document_t so that
 * the limits (nesting, node count after alias expansion) are enforced while
 * parsing, duplicate keys and tags are caught where they occur, and every
 * node keeps its line and column when it is copied into a sweep combination.
 * Aliases share the anchored node; `weight` and `height` describe the tree as
 * if every alias were expanded, so later walks are bounded by the limits. */
#ifndef SPEC_YTREE_H
#define SPEC_YTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum yn_kind { YN_SCALAR = 0, YN_SEQ, YN_MAP } yn_kind;

typedef struct ynode ynode;
struct ynode {
    yn_kind kind;
    int line, col;  /* 1-based start of the node in the file */
    const char *s;  /* scalar: the text, NUL-terminated (never contains NUL) */
    size_t len;
    bool quoted;    /* scalar written quoted or as a block scalar: always a string */
    ynode **v;         /* seq: n items; map: n pairs as v[2i] key, v[2i+1] value */
    int64_t n;
    int64_t weight; /* nodes after alias expansion, this one included */
    int height;     /* levels after alias expansion, this one included */
};

/* Chunked bump allocator: a tree and its strings are freed at once. */
typedef struct yn_arena yn_arena;
yn_arena *yn_arena_new(void);
void yn_arena_free(yn_arena *a);
void *yn_alloc(yn_arena *a, size_t n);
char *yn_strndup(yn_arena *a, const char *s, size_t n);

/* Receives a located problem found while parsing (path may be ""). */
typedef void (*yn_report_fn)(void *ctx, int line, int col, const char *path, const char *message);

typedef struct yn_limits {
    int max_depth;
    int64_t max_nodes;
} yn_limits;

/* Parses one YAML document. A syntax error or an exceeded limit is reported
 * and leaves *root NULL; duplicate keys and non-string keys are reported and
 * dropped, and parsing goes on. An empty document gives *root NULL with no
 * report. Returns 0, or SPEC_ENOMEM. */
int yn_parse(yn_arena *a, const char *buf, size_t len, const yn_limits *lim, yn_report_fn report, void *ctx,
             ynode **root, bool *syntax_ok);

/* Map lookup: the value of key k, or NULL (the first one if duplicated). */
ynode *yn_map_get(const ynode *map, const char *k);

/* Node constructors for building sweep combinations. */
ynode *yn_new_scalar(yn_arena *a, const char *s, size_t len, bool quoted, int line, int col);
ynode *yn_new_map(yn_arena *a, int64_t n, int line, int col);
/* Deep copy into arena a (expanding aliases); NULL on OOM. */
ynode *yn_copy(yn_arena *a, const ynode *n);

bool yn_is_null(const ynode *n);

#endif
