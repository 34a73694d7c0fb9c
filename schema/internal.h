/* Shared internals of schema/: the validation context and the steps of a load. */
#ifndef SPEC_INTERNAL_H
#define SPEC_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/safetensors.h"
#include "schema/spec.h"
#include "schema/ytree.h"

#define SPEC_PATH_LEN 512

/* Where a key path's value sits in the file, for locating the engine's reports. */
typedef struct spec_loc {
    char *path;
    int line, col;
} spec_loc;

/* The init_from files one load has read (init_cache.c). */
typedef struct spec_init_cache spec_init_cache;
/* The header of path, read on the first request of this load; NULL when it
 * cannot be read, with *msg the reason (*msg NULL: out of memory). */
const eng_st_file *spec_init_cache_get(spec_init_cache **cache, const char *path, const char **msg);
void spec_init_cache_free(spec_init_cache *cache);

typedef struct vctx {
    const char *file;  /* as given, for messages */
    const char *dir;   /* base of relative paths: the file's directory ("" = working directory) */
    const char *stem;  /* the file name without .yaml/.yml: the default name */
    const spec_options *opt;
    spec_diags *diags;
    const char *suffix; /* appended to every message: " [model.patch_size=5]" for a combination */
    int ndropped;       /* diagnostics beyond opt->max_diags */
    bool oom;
    spec_loc *locs;
    int nlocs, caplocs;
    spec_init_cache **init_files; /* the load's init_from files (NULL: none kept) */
} vctx;

/* Adds "message" (printf-style) at line:col for path; over max_diags it is only counted. */
void vctx_error(vctx *c, int line, int col, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Remembers where path's value is. */
void vctx_record(vctx *c, const char *path, const ynode *n);
/* The location of path, or of its nearest recorded ancestor ("model.units[2]" -> "model.units" -> "model"). */
void vctx_locate(const vctx *c, const char *path, int *line, int *col);
/* Adds the "too many problems" line if any were dropped, frees the location table. */
void vctx_finish(vctx *c);

/* Validates the spec tree `root` (a map; sweep keys already removed) into s:
 * descriptions, name, device, priority. Problems go to c. The engine
 * checks (model build, parameter and memory limits) run only when the
 * rest is valid. Returns 0 or SPEC_ENOMEM. */
int spec_validate(vctx *c, const ynode *root, spec *s);

/* Frees what spec_validate allocated inside the descriptions. */
void spec_desc_free(spec *s);

/* Renders a node: compact JSON (strings quoted) or, with bare_strings, the
 * scalar text as written (for names and messages). NULL on OOM. */
char *spec_node_json(const ynode *n, bool bare_strings);
/* The effective YAML of a tree (block style, aliases expanded); NULL on OOM. */
char *spec_node_yaml(const ynode *root, size_t *len);

/* One load in progress (load.c); sweep.c adds its entries through it. */
typedef struct load_ctx {
    const char *file, *dir, *stem;
    const spec_options *opt;
    spec_file *f;
    spec_diags pre; /* non-fatal parse problems (duplicate keys): every entry gets them */
    int pre_dropped; /* beyond opt->max_diags */
    bool oom;
    spec_init_cache *init_files; /* read once for every combination of a sweep */
    const char *only_sweep; /* spec_sweep_combination: render only this combination, validate nothing */
} load_ctx;

/* Validates tree as one entry: diagnostics = pre + extra + the validator's.
 * Takes ownership of text and sweep_json (malloc'd; sweep_json may be NULL). */
int spec_entry_build(load_ctx *L, spec_entry *e, const ynode *tree, char *text, size_t text_len, char *sweep_json,
                     const char *suffix, const spec_diags *extra);
/* Expands a root with matrix:/include: into the file's entries. */
int spec_sweep_load(load_ctx *L, const ynode *root);
/* Reports a file-level problem. */
void spec_file_error(load_ctx *L, int line, int col, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Scalar readings shared by the validator and the sweep expansion. */
bool spec_scalar_int(const ynode *n, int64_t *out);
bool spec_scalar_float(const ynode *n, double *out);
int spec_scalar_bool(const ynode *n); /* 1 true, 0 false, -1 neither */

#endif
