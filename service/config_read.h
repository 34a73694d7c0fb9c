/* Reading the config file's sections (internal to config.c and the files
 * that read one section each, e.g. config_slurm.c): typed getters that
 * report every problem as "file:line:col: key: message". */
#ifndef SVC_CONFIG_READ_H
#define SVC_CONFIG_READ_H

#include <stdbool.h>
#include <stdint.h>

#include "schema/ytree.h"
#include "service/config.h"

typedef struct svc_cfg_ctx {
    const char *file;
    char *dir; /* the file's folder, for relative paths */
    spec_diags *diags;
    int errors;
    bool oom;
} svc_cfg_ctx;

void svc_cfg_error(svc_cfg_ctx *x, const ynode *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The text of a scalar node, else NULL. */
const char *svc_cfg_scalar(const ynode *n);
/* An integer in [lo, hi]; 0, or -1 (reported). */
int svc_cfg_i64(svc_cfg_ctx *x, const ynode *n, const char *key, int64_t lo, int64_t hi, int64_t *out);
int svc_cfg_int(svc_cfg_ctx *x, const ynode *n, const char *key, int lo, int hi, int *out);
/* A list of words (or one word) into a fresh array; 0, or -1 (reported). */
int svc_cfg_words(svc_cfg_ctx *x, const ynode *v, const char *key, int max, char ***out, int *n);
/* Reports an unknown key of the map at prefix ("slurm."), with a suggestion. */
void svc_cfg_unknown_key(svc_cfg_ctx *x, const ynode *k, const char *prefix, const char *const *known, int n);

/* config_slurm.c: the slurm: mapping. */
void svc_config_load_slurm(svc_cfg_ctx *x, const ynode *m, svc_slurm_config *s);
/* config_data.c: a top-level data_* key; false when name is not one. */
bool svc_config_load_data_key(svc_cfg_ctx *x, const char *name, const ynode *v, svc_data_config *d);

#endif
