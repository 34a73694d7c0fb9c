/* Model weights as safetensors files: export, init_from, and checks. */
#ifndef ENG_WEIGHTS_H
#define ENG_WEIGHTS_H

#include "engine/model.h"
#include "engine/safetensors.h"

typedef struct eng_kv {
    const char *key, *value;
} eng_kv;

/* Writes parameters, buffers and "<bn>.num_batches_tracked" (I64) under the
 * summary's names, with metadata; atomically. The export format. */
int eng_model_save_weights(eng_model *m, const char *path, const eng_kv *meta, int nmeta);

/* Loads a file into a bound model. Strict: every tensor of the file must be
 * a parameter or buffer of the model with the same shape and dtype F32, and
 * every parameter must be in the file (buffers and num_batches_tracked are
 * optional). Nothing is loaded when anything mismatches. */
int eng_model_load_weights(eng_model *m, const char *path);

/* The same checks without loading (the model need not be bound): reports
 * each problem to fn under the key path "model.init_from" and returns their
 * number (an unreadable file counts as one). path is an init_from as the
 * validator stores it: resolved, and opened without following any symbolic
 * link (ENG_FILE_RESOLVED). */
int eng_model_check_weights(const eng_model *m, const char *path, eng_diag_fn fn, void *ctx);
/* The same against a file already open (eng_st_open_header is enough): a
 * sweep reads its init_from once for all its combinations. */
int eng_model_check_weights_file(const eng_model *m, const eng_st_file *f, const char *path, eng_diag_fn fn,
                                 void *ctx);

/* Pieces for checkpoints (checkpoint.c). */
int eng_weights_host_copy(eng_model *m, float **params, float **buffers);
int eng_weights_add(eng_st_writer *w, eng_model *m, const float *params, const float *buffers);
/* Loads from an open file; tensors whose names start with `skip` are ignored. */
int eng_weights_load_file(eng_model *m, const eng_st_file *f, const char *path, const char *skip);

#endif
