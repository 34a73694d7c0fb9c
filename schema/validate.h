/* Typed getters and key checks for the validator sections (internal).
 *
 * Each getter looks a key up in a map, records its location, checks its
 * type and range, and reports a located problem when it is wrong. Results:
 * V_ABSENT (key not there; *out untouched), V_OK, or V_BAD (reported). */
#ifndef SPEC_VALIDATE_H
#define SPEC_VALIDATE_H

#include <stdbool.h>
#include <stdint.h>

#include "schema/internal.h"

enum { V_BAD = -1, V_ABSENT = 0, V_OK = 1 };

#define V_NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* A numeric range; open ends exclude the bound. */
typedef struct vrange {
    double lo, hi;
    bool lo_open, hi_open;
} vrange;

void vpath(char out[SPEC_PATH_LEN], const char *parent, const char *key);
void vpath_index(char out[SPEC_PATH_LEN], const char *parent, int64_t i);
/* "3", "the string \"3\"", "a list", "a map", "nothing" */
const char *vdescribe(const ynode *n, char *buf, size_t len);

/* The node of key in map (recorded under parent.key), or NULL. */
const ynode *vget(vctx *c, const ynode *map, const char *parent, const char *key, char path[SPEC_PATH_LEN]);

int vn_int(vctx *c, const ynode *n, const char *path, int64_t lo, int64_t hi, int64_t *out);
/* A number checked as the 32-bit float it becomes (1e39 is inf, 1e-46 is 0). */
int vn_float(vctx *c, const ynode *n, const char *path, vrange r, float *out);
int vn_bool(vctx *c, const ynode *n, const char *path, bool *out);
int vn_enum(vctx *c, const ynode *n, const char *path, const char *const *names, int nnames, int *out);
int vn_str(vctx *c, const ynode *n, const char *path, const char **out);
/* The node is a map (else reported with what it should hold). */
bool vn_map(vctx *c, const ynode *n, const char *path, const char *what);
bool vn_seq(vctx *c, const ynode *n, const char *path, const char *what);

int v_int(vctx *c, const ynode *map, const char *parent, const char *key, int64_t lo, int64_t hi, int64_t *out);
int v_num(vctx *c, const ynode *map, const char *parent, const char *key, vrange r, float *out);
int v_bool(vctx *c, const ynode *map, const char *parent, const char *key, bool *out);
int v_enum(vctx *c, const ynode *map, const char *parent, const char *key, const char *const *names, int nnames,
           int *out);

/* Reports a required key that is missing, at the map that should hold it. */
void v_missing(vctx *c, const ynode *map, const char *parent, const char *key, const char *hint);

/* Reports every key of map not in known[] (with a suggestion). other(key)
 * may explain a key that is known elsewhere (NULL: none). */
typedef const char *(*v_other_fn)(const char *key, char *buf, size_t len, void *arg);
void v_check_keys(vctx *c, const ynode *map, const char *path, const char *const *known, int nknown, v_other_fn other,
                  void *arg);

/* Reports key (present in map) as not applicable: "path.key: why". */
void v_not_here(vctx *c, const ynode *map, const char *parent, const char *key, const char *why);

/* The validator's sections. */
/* What of the data section is usable for the checks across sections. */
typedef struct v_data_ok {
    bool geometry; /* dataset (and synthetic:) valid: the input shape and classes are known */
    bool root;     /* data.root (or its default) valid */
    bool all;      /* no problem in data: at all */
} v_data_ok;
void v_data(vctx *c, const ynode *node, spec *s, v_data_ok *ok);
void v_model(vctx *c, const ynode *node, spec *s);
void v_train(vctx *c, const ynode *node, spec *s, bool *precision_gpu, const ynode **precision_node);
void v_slurm(vctx *c, const ynode *node, spec_slurm *out);
/* Every known key of each section, for "it belongs under ..." hints. */
const char *v_section_of(const char *key, const char *except);

#endif
