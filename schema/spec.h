/* Spec v1: an experiment spec file loaded from YAML and validated.
 *
 * A file gives one entry, or one entry per combination of its `matrix:`
 * (a sweep). Each entry carries either a valid `spec` (the plain engine
 * descriptions filled in) or its diagnostics, every one located as
 * "file:line:col: key.path: message". Problems that concern the whole file
 * (unreadable, not YAML, a bad matrix) are the file's own diagnostics.
 *
 * Nothing here exits, aborts or prints unless asked to; functions return 0
 * or a negative SPEC_E* code, and a spec that is merely invalid is not an
 * error of the call. */
#ifndef SPEC_SPEC_H
#define SPEC_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/desc.h"

enum {
    SPEC_OK = 0,
    SPEC_ENOMEM = -1, /* an allocation failed: no result */
};

/* ---- diagnostics ---- */

typedef struct spec_diag {
    char *file;    /* the spec file as given */
    int line, col; /* 1-based; 0 when the problem has no place in the file */
    char *path;    /* key path ("model.channels[13]"), "" for the document */
    char *message; /* "expected an integer >= 1, found 0" */
} spec_diag;

typedef struct spec_diags {
    spec_diag *v;
    int n, cap;
} spec_diags;

/* Adds one diagnostic (copies every string); 0 or SPEC_ENOMEM. */
int spec_diags_add(spec_diags *d, const char *file, int line, int col, const char *path, const char *message);
/* Prints "file:line:col: path: message" (fields that are absent left out), one a line. */
void spec_diags_print(FILE *f, const spec_diags *d);
/* The same lines in one malloc'd string (for the runs table's `error`); NULL on OOM. */
char *spec_diags_join(const spec_diags *d);
/* One diagnostic's line (no newline) into buf; returns what snprintf returns. */
int spec_diag_format(const spec_diag *g, char *buf, size_t len);
void spec_diags_clear(spec_diags *d);

/* ---- the spec ---- */

typedef enum spec_device_kind { SPEC_DEVICE_AUTO = 0, SPEC_DEVICE_CPU, SPEC_DEVICE_CUDA } spec_device_kind;

/* `slurm:` - how the service's executor slurm submits the run (the local
 * executor ignores it). NULL / 0: the service's defaults. */
typedef struct spec_slurm {
    char *partition, *account, *qos;
    char *time;   /* Slurm's time limit as written: "30", "1:30:00", "2-00:00:00" */
    char **extra; /* more sbatch words, each "--option" or "--option=value" */
    int n_extra;
} spec_slurm;

typedef struct spec {
    char *name;       /* `name:`, or the file name without .yaml/.yml; for sweeps the filled-in template */
    char *path;       /* the spec file as given */
    char *text;       /* the file's bytes; for a sweep combination its effective YAML (NUL-terminated;
                       * NULL with spec_options.drop_combination_texts) */
    size_t text_len;
    char sha256[65];  /* identity: of `text` */
    char *sweep_json; /* NULL, or {"model.patch_size":4,...} for a sweep combination */
    spec_device_kind device;
    int device_index; /* cuda:N -> N, else -1 */
    int64_t priority;
    int64_t params;   /* trainable parameters as the engine counts them; -1 if not built */
    eng_data_desc data;
    eng_model_desc model;
    eng_train_desc train; /* train.seed = `seed:` */
    char **class_names;   /* dataset: folder, when its files were looked at: the class folders in label order */
    int64_t n_class_names;
    spec_slurm slurm;
    /* data.download: true - the standard dataset is fetched when data.root is
     * missing (the service before queueing, `epochd run` in the foreground) */
    bool download;
    bool download_missing; /* download, and data.root does not exist yet (when the files were looked at) */
} spec;

void spec_free(spec *s);

/* ---- options ---- */

typedef struct spec_options {
    /* If n_data_roots > 0, data.root and model.init_from must resolve (after
     * symlinks) under one of these directories. */
    const char *const *data_roots;
    int n_data_roots;
    bool check_files;         /* probe the dataset's files and init_from (default true) */
    bool shape_files;         /* without check_files, still read what a folder or npy dataset's shape and
                               * classes need (class folder names, array headers; default false) */
    size_t max_file_bytes;    /* default 1 MiB */
    int max_depth;            /* YAML nesting, default 32 */
    int64_t max_nodes;        /* YAML nodes after alias expansion, default 100000 */
    int64_t max_params;       /* default 1e9 */
    size_t max_memory_bytes;  /* the engine's estimate at the batch size; default 3/4 of physical memory */
    int64_t max_combinations; /* sweep size, default 1024 */
    int max_diags;            /* per entry, default 100 */
    /* A sweep combination keeps the SHA-256 of its effective text but not the
     * text (spec_entry.text and spec.text NULL, text_len still its size):
     * for a caller that stores the file once and derives a combination's
     * text when it needs it (spec_sweep_combination), as the service does.
     * Default false. */
    bool drop_combination_texts;
    /* sbatch options a spec's slurm.extra may use ("--constraint", ...);
     * NULL: any but those epochd sets itself */
    const char *const *slurm_allowed;
    int n_slurm_allowed;
    /* data.download: where a standard dataset goes when data.root is not
     * given: DOWNLOAD_ROOT/<its folder> (cifar10: cifar-10-batches-bin).
     * Default $EPOCHD_DATA_ROOT, else "data" (the current directory's, as
     * `epochd data fetch`). Relative: to the current directory. */
    const char *download_root;
    /* The manifest whose entries name those folders before the built-in ones
     * (datasets/manifest.h; the service's data_manifest); NULL: built-in only. */
    const struct ds_manifest *download_manifest;
} spec_options;

void spec_options_default(spec_options *o);

/* ---- loading ---- */

typedef struct spec_entry {
    spec *spec;         /* NULL when invalid */
    spec_diags diags;   /* empty when valid */
    char *name;         /* always set (the file stem when name: itself is broken) */
    char *sweep_json;   /* NULL, or the combination's values as compact JSON, keys in matrix order */
    char *text;         /* as spec->text, also for an invalid entry */
    size_t text_len;
    char sha256[65];    /* as spec->sha256, also for an invalid entry */
} spec_entry;

typedef struct spec_file {
    char *path;
    char sha256[65];        /* of the file's bytes ("" if it could not be read) */
    spec_diags file_diags;  /* unreadable, too large, not YAML, bad matrix ... */
    bool is_sweep;          /* the file has `matrix:` or `include:` */
    spec_entry *entries;
    int n_entries;
} spec_file;

/* Reads and validates a spec file. 0 even when the spec is invalid (see the
 * diagnostics); SPEC_ENOMEM only when memory ran out (then *out is NULL). */
int spec_file_load(const char *path, const spec_options *opt, spec_file **out);
/* The same from bytes in memory; path names the file in messages and is the
 * base of relative paths (NULL: "<buffer>", relative to the working directory). */
int spec_file_load_buffer(const char *path, const char *buf, size_t len, const spec_options *opt, spec_file **out);

/* The effective YAML of one combination of a sweep file: the text a full
 * load gives the entry whose sweep_json equals sweep_json (the same
 * expansion, so the same bytes and SHA-256), without validating anything
 * or building the other combinations. The service stores a sweep file once
 * and derives each combination's spec from it with this. path names the
 * file as it was loaded (the default run names use its stem); opt gives the
 * YAML limits (NULL: the defaults; the file-size limit is not applied).
 * 0 with *out malloc'd (NUL-terminated, *out_len bytes); 1 when the file
 * gives no such combination (err says why: not YAML, not a sweep, no
 * combination with these values); SPEC_ENOMEM. */
int spec_sweep_combination(const char *path, const char *buf, size_t len, const char *sweep_json,
                           const spec_options *opt, char **out, size_t *out_len, char *err, size_t errlen);

/* True when the file has no file-level problem and every entry is valid. */
bool spec_file_valid(const spec_file *f);
/* Every diagnostic of the file, file-level ones first. */
void spec_file_print_diags(FILE *f, const spec_file *sf);
/* Takes entry i's spec out of the file (the caller frees it with spec_free). */
spec *spec_file_take(spec_file *f, int i);
void spec_file_free(spec_file *f);

/* ---- helpers also used by the service and the command line ---- */

/* SHA-256 of data as 64 lower-case hex digits (schema/sha256.c). */
void spec_sha256_hex(const void *data, size_t len, char out[65]);
const char *spec_device_name(spec_device_kind k);

/* ---- the slurm: section (schema/validate_slurm.c) ---- */

/* The slurm: section of a stored spec text (validated before; the service
 * reads it when it submits the run). 0 (out all NULL when there is none),
 * 1 when it is not valid (err says why), or SPEC_ENOMEM. */
int spec_slurm_from_text(const char *text, size_t len, spec_slurm *out, char *err, size_t errlen);
void spec_slurm_clear(spec_slurm *s);
/* A Slurm time limit: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, INFINITE. */
bool spec_slurm_time_ok(const char *s);
/* An sbatch word a spec or the service's config may add: "--name" or
 * "--name=value", not one epochd sets itself, and with allowed non-NULL
 * one of the n_allowed names. 0, or -1 with why set. */
int spec_slurm_check_word(const char *w, const char *const *allowed, int n_allowed, char *why, size_t len);

#endif
