/* Model weights in safetensors: export, init_from loading, and the check the
 * spec validator runs on an init_from file. Names and layouts are those of
 * `epochd summary --json` (PyTorch's state_dict names and layouts), so a file
 * loads into the equivalent PyTorch module with load_state_dict. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/file.h"
#include "engine/safetensors.h"
#include "engine/weights.h"

static const char BN_SUFFIX[] = "running_var";
static const char NBT[] = "num_batches_tracked";

/* "1.running_var" -> "1.num_batches_tracked"; false when not a BN variance. */
static bool nbt_name(const char *buffer_name, char *out, size_t len)
{
    size_t n = strlen(buffer_name), s = sizeof BN_SUFFIX - 1;
    if (n < s || strcmp(buffer_name + n - s, BN_SUFFIX))
        return false;
    snprintf(out, len, "%.*s%s", (int)(n - s), buffer_name, NBT);
    return true;
}

int eng_weights_host_copy(eng_model *m, float **params, float **buffers)
{
    eng_backend *b = eng_model_backend(m);
    int64_t np = eng_model_param_count(m), nb = eng_model_buffer_count(m);
    *params = malloc((size_t)(np ? np : 1) * sizeof(float));
    *buffers = malloc((size_t)(nb ? nb : 1) * sizeof(float));
    if (!*params || !*buffers) {
        free(*params);
        free(*buffers);
        *params = *buffers = NULL;
        return eng_error(ENG_ENOMEM, "out of memory copying the weights");
    }
    int rc = b->ops->download(b, *params, eng_model_param_data(m), (size_t)np * sizeof(float));
    if (rc == 0)
        rc = b->ops->download(b, *buffers, eng_model_buffer_data(m), (size_t)nb * sizeof(float));
    if (rc < 0) {
        free(*params);
        free(*buffers);
        *params = *buffers = NULL;
    }
    return rc;
}

int eng_weights_add(eng_st_writer *w, eng_model *m, const float *params, const float *buffers)
{
    const eng_tensor_info *t;
    int n = eng_model_params(m, &t);
    for (int i = 0; i < n; i++)
        ENG_TRY(eng_st_add_ref(w, t[i].name, ENG_ST_F32, t[i].shape.d, t[i].shape.ndim, params + t[i].offset));
    n = eng_model_buffers(m, &t);
    int64_t tracked = eng_model_batches_tracked(m);
    for (int i = 0; i < n; i++) {
        ENG_TRY(eng_st_add_ref(w, t[i].name, ENG_ST_F32, t[i].shape.d, t[i].shape.ndim, buffers + t[i].offset));
        char name[ENG_NAME_MAX + 32];
        if (nbt_name(t[i].name, name, sizeof name))
            ENG_TRY(eng_st_add(w, name, ENG_ST_I64, NULL, 0, &tracked));
    }
    return 0;
}

int eng_model_save_weights(eng_model *m, const char *path, const eng_kv *meta, int nmeta)
{
    float *params = NULL, *buffers = NULL;
    eng_st_writer *w = NULL;
    int rc = eng_weights_host_copy(m, &params, &buffers);
    if (rc == 0)
        rc = eng_st_writer_new(&w);
    if (rc == 0)
        rc = eng_weights_add(w, m, params, buffers);
    for (int i = 0; rc == 0 && i < nmeta; i++)
        rc = eng_st_add_metadata(w, meta[i].key, meta[i].value);
    if (rc == 0)
        rc = eng_st_write_file(w, path);
    eng_st_writer_free(w);
    free(params);
    free(buffers);
    return rc;
}

/* ---- matching a file against the model ---- */

static const eng_tensor_info *find_info(const eng_tensor_info *t, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, name))
            return &t[i];
    return NULL;
}

static bool same_shape(const eng_st_tensor *st, const eng_shape *s)
{
    if (st->ndim != s->ndim)
        return false;
    for (int i = 0; i < s->ndim; i++)
        if (st->shape[i] != s->d[i])
            return false;
    return true;
}

static void st_shape_str(const eng_st_tensor *st, char *buf, size_t len)
{
    size_t off = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < st->ndim && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, i ? ", %lld" : "%lld", (long long)st->shape[i]);
    if (off < len)
        snprintf(buf + off, len - off, "]");
}

/* Reports every mismatch between the file and the model through fn (with
 * prefix "skip" names starting with it, e.g. "optimizer."); returns the count. */
static int match_file(const eng_model *m, const eng_st_file *f, const char *path, const char *skip, eng_diag_fn fn,
                      void *ctx)
{
    const eng_tensor_info *params, *bufs;
    int np = eng_model_params(m, &params), nb = eng_model_buffers(m, &bufs);
    int problems = 0;
    char msg[512], got[96], want[96];
    for (int64_t i = 0; i < eng_st_count(f); i++) {
        const eng_st_tensor *st = eng_st_at(f, i);
        if (skip && !strncmp(st->name, skip, strlen(skip)))
            continue;
        size_t len = strlen(st->name);
        if (len >= sizeof NBT - 1 && !strcmp(st->name + len - (sizeof NBT - 1), NBT))
            continue; /* BatchNorm step counters: optional */
        const eng_tensor_info *t = find_info(params, np, st->name);
        if (!t)
            t = find_info(bufs, nb, st->name);
        if (!t) {
            snprintf(msg, sizeof msg, "%s: tensor '%s' is not a parameter or buffer of the model", path, st->name);
        } else if (st->dtype != ENG_ST_F32) {
            snprintf(msg, sizeof msg, "%s: tensor '%s': expected dtype F32, found %s", path, st->name,
                     eng_st_dtype_name(st->dtype));
        } else if (!same_shape(st, &t->shape)) {
            st_shape_str(st, got, sizeof got);
            snprintf(msg, sizeof msg, "%s: tensor '%s': expected shape %s, found %s", path, st->name,
                     eng_shape_str(&t->shape, want, sizeof want), got);
        } else {
            continue;
        }
        problems++;
        if (fn)
            fn(ctx, "model.init_from", msg);
    }
    for (int i = 0; i < np; i++)
        if (!eng_st_find(f, params[i].name)) {
            problems++;
            snprintf(msg, sizeof msg, "%s: missing tensor '%s' (shape %s) that the model needs", path,
                     params[i].name, eng_shape_str(&params[i].shape, want, sizeof want));
            if (fn)
                fn(ctx, "model.init_from", msg);
        }
    return problems;
}

int eng_model_check_weights(const eng_model *m, const char *path, eng_diag_fn fn, void *ctx)
{
    eng_st_file *f = NULL;
    int rc = eng_st_open_header(path, ENG_FILE_RESOLVED, &f); /* names, dtypes, shapes: the header says it all */
    if (rc < 0) {
        if (fn)
            fn(ctx, "model.init_from", eng_last_error());
        return 1;
    }
    int problems = eng_model_check_weights_file(m, f, path, fn, ctx);
    eng_st_close(f);
    return problems;
}

int eng_model_check_weights_file(const eng_model *m, const eng_st_file *f, const char *path, eng_diag_fn fn,
                                 void *ctx)
{
    return match_file(m, f, path, NULL, fn, ctx);
}

typedef struct first_problem {
    char msg[512];
    int count;
} first_problem;

static void keep_first(void *ctx, const char *path, const char *msg)
{
    (void)path;
    first_problem *p = ctx;
    if (p->count++ == 0)
        snprintf(p->msg, sizeof p->msg, "%s", msg);
}

int eng_weights_load_file(eng_model *m, const eng_st_file *f, const char *path, const char *skip)
{
    first_problem fp = {{0}, 0};
    if (match_file(m, f, path, skip, keep_first, &fp) > 0)
        return eng_error(ENG_EFORMAT, "%s%s", fp.msg,
                         fp.count > 1 ? " (and more mismatches; `epochd check` lists them all)" : "");
    eng_backend *b = eng_model_backend(m);
    const eng_tensor_info *t;
    int n = eng_model_params(m, &t);
    for (int i = 0; i < n; i++) {
        const eng_st_tensor *st = eng_st_find(f, t[i].name);
        ENG_TRY(b->ops->upload(b, eng_model_param_data(m) + t[i].offset, st->data, st->nbytes));
    }
    n = eng_model_buffers(m, &t);
    for (int i = 0; i < n; i++) {
        const eng_st_tensor *st = eng_st_find(f, t[i].name);
        if (st)
            ENG_TRY(b->ops->upload(b, eng_model_buffer_data(m) + t[i].offset, st->data, st->nbytes));
        char name[ENG_NAME_MAX + 32];
        const eng_st_tensor *nbt;
        if (nbt_name(t[i].name, name, sizeof name) && (nbt = eng_st_find(f, name)) && nbt->dtype == ENG_ST_I64 &&
            nbt->numel == 1) {
            int64_t v;
            memcpy(&v, nbt->data, sizeof v);
            eng_model_set_batches_tracked(m, v);
        }
    }
    return 0;
}

int eng_model_load_weights(eng_model *m, const char *path)
{
    eng_st_file *f = NULL;
    ENG_TRY(eng_st_open(path, &f));
    int rc = eng_weights_load_file(m, f, path, NULL);
    eng_st_close(f);
    return rc;
}
