/* Trainer checkpoints: the model's weights plus the optimizer state and the
 * run's position, in one safetensors file written atomically.
 *
 * Nothing random needs saving beyond the seed and the position: the data
 * order of epoch e is a Philox permutation keyed by (seed, e), augmentation
 * and dropout draws are keyed by (seed, e, step). The metadata records that
 * contract so a reader knows what "resume" means. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/file.h"
#include "engine/safetensors.h"
#include "engine/train_internal.h"
#include "engine/weights.h"

#define CKPT_FORMAT "epochd-checkpoint"
#define CKPT_VERSION "1"
#define OPT_PREFIX "optimizer."

static int add_optimizer_state(eng_st_writer *w, eng_trainer *t, float **host, int *nhost)
{
    eng_backend *b = t->b;
    const eng_tensor_info *params;
    int np = eng_model_params(t->model, &params);
    int64_t n = eng_model_param_count(t->model);
    *nhost = eng_optimizer_state_count(t->opt);
    for (int s = 0; s < *nhost; s++) {
        const char *sname;
        float *dev = eng_optimizer_state(t->opt, s, &sname);
        host[s] = malloc((size_t)(n ? n : 1) * sizeof(float));
        if (!host[s])
            return eng_error(ENG_ENOMEM, "out of memory copying the optimizer state");
        int rc = b->ops->download(b, host[s], dev, (size_t)n * sizeof(float));
        for (int i = 0; rc == 0 && i < np; i++) {
            char name[ENG_NAME_MAX + 64];
            snprintf(name, sizeof name, OPT_PREFIX "%s.%s", sname, params[i].name);
            rc = eng_st_add_ref(w, name, ENG_ST_F32, params[i].shape.d, params[i].shape.ndim,
                                host[s] + params[i].offset);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int eng_trainer_save(eng_trainer *t, const char *path, const eng_kv *extra, int nextra)
{
    float *params = NULL, *buffers = NULL, *state[2] = {NULL, NULL};
    int nstate = 0;
    eng_st_writer *w = NULL;
    char epoch[32], steps[32], seed[32], best[40], best_epoch[32], spe[32];
    snprintf(epoch, sizeof epoch, "%" PRId64, t->epochs_done);
    snprintf(steps, sizeof steps, "%" PRId64, eng_optimizer_steps(t->opt));
    snprintf(seed, sizeof seed, "%" PRIu64, t->train.seed);
    snprintf(best, sizeof best, "%.17g", t->best_acc);
    snprintf(best_epoch, sizeof best_epoch, "%" PRId64, t->best_epoch);
    snprintf(spe, sizeof spe, "%" PRId64, t->steps_per_epoch);
    const eng_kv meta[] = {
        {"format", CKPT_FORMAT},
        {"version", CKPT_VERSION},
        {"epoch", epoch},
        {"optimizer_steps", steps},
        {"steps_per_epoch", spe},
        {"seed", seed},
        {"best_test_acc", best},
        {"best_epoch", best_epoch},
        {"data_order", "Fisher-Yates over Philox4x32-10 keyed by (seed, epoch)"},
        {"rng", "Philox4x32-10; augmentation keyed by (seed, epoch, step), dropout by (seed, global step)"},
    };
    char *kernels = NULL; /* the backend's per-shape implementation choices: part of the bits */
    int rc = 0;
    if (t->b->ops->kernels_record)
        rc = t->b->ops->kernels_record(t->b, &kernels);
    if (rc == 0)
        rc = eng_weights_host_copy(t->model, &params, &buffers);
    if (rc == 0)
        rc = eng_st_writer_new(&w);
    if (rc == 0)
        rc = eng_weights_add(w, t->model, params, buffers);
    if (rc == 0)
        rc = add_optimizer_state(w, t, state, &nstate);
    for (size_t i = 0; rc == 0 && i < sizeof meta / sizeof meta[0]; i++)
        rc = eng_st_add_metadata(w, meta[i].key, meta[i].value);
    if (rc == 0 && kernels && kernels[0])
        rc = eng_st_add_metadata(w, "kernels", kernels);
    for (int i = 0; rc == 0 && i < nextra; i++)
        rc = eng_st_add_metadata(w, extra[i].key, extra[i].value);
    if (rc == 0)
        rc = eng_st_write_file(w, path);
    eng_st_writer_free(w);
    free(kernels);
    free(params);
    free(buffers);
    for (int i = 0; i < 2; i++)
        free(state[i]);
    return rc;
}

/* The state directory is input like any other: a checkpoint's metadata is
 * checked against what this run can have written before anything of it is
 * used (a value out of range is a damaged checkpoint, not a spec error). */
static int meta_i64(const eng_st_file *f, const char *path, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const char *v = eng_st_metadata(f, key);
    char *end = NULL;
    if (!v)
        return eng_error(ENG_EFORMAT, "%s: damaged checkpoint: its metadata lacks '%s'", path, key);
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno == ERANGE)
        return eng_error(ENG_EFORMAT, "%s: damaged checkpoint: metadata '%s' is not an integer: '%.40s'", path, key,
                         v);
    if ((x < lo || x > hi) && lo == hi)
        return eng_error(ENG_EFORMAT, "%s: damaged checkpoint: metadata '%s' is %lld, expected %lld", path, key, x,
                         (long long)lo);
    if (x < lo || x > hi)
        return eng_error(ENG_EFORMAT, "%s: damaged checkpoint: metadata '%s' is %lld, expected %lld to %lld", path,
                         key, x, (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

static int load_optimizer_state(eng_trainer *t, const eng_st_file *f, const char *path)
{
    eng_backend *b = t->b;
    const eng_tensor_info *params;
    int np = eng_model_params(t->model, &params);
    for (int s = 0; s < eng_optimizer_state_count(t->opt); s++) {
        const char *sname;
        float *dev = eng_optimizer_state(t->opt, s, &sname);
        for (int i = 0; i < np; i++) {
            char name[ENG_NAME_MAX + 64];
            snprintf(name, sizeof name, OPT_PREFIX "%s.%s", sname, params[i].name);
            const eng_st_tensor *st = eng_st_find(f, name);
            if (!st || st->dtype != ENG_ST_F32 || (int64_t)(st->nbytes / sizeof(float)) != params[i].numel)
                return eng_error(ENG_EFORMAT, "%s: optimizer state '%s' is missing or has the wrong shape "
                                              "(was the checkpoint written with another optimizer?)",
                                 path, name);
            int rc = b->ops->upload(b, dev + params[i].offset, st->data, st->nbytes);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int eng_trainer_load(eng_trainer *t, const char *path)
{
    eng_st_file *f = NULL;
    /* the state directory is input too: a link or a FIFO in the checkpoint's place is refused */
    int rc = eng_st_open_flags(path, ENG_FILE_NOFOLLOW, &f);
    if (rc < 0)
        return rc;
    const char *fmt = eng_st_metadata(f, "format"), *ver = eng_st_metadata(f, "version");
    int64_t epoch = 0, steps = 0, spe = 0, best_epoch = 0, seed = 0;
    double best = 0.0;
    if (!fmt || strcmp(fmt, CKPT_FORMAT) || !ver || strcmp(ver, CKPT_VERSION))
        rc = eng_error(ENG_EFORMAT, "%s: not an epochd checkpoint of version " CKPT_VERSION, path);
    if (rc == 0)
        rc = meta_i64(f, path, "epoch", 0, t->train.epochs, &epoch);
    if (rc == 0)
        rc = meta_i64(f, path, "steps_per_epoch", 0, INT64_MAX, &spe);
    if (rc == 0 && spe != t->steps_per_epoch)
        rc = eng_error(ENG_EFORMAT, "%s: the checkpoint has %lld steps per epoch, this run %lld (did the data change?)",
                       path, (long long)spe, (long long)t->steps_per_epoch);
    /* written at the end of an epoch: exactly the epochs' steps */
    if (rc == 0)
        rc = meta_i64(f, path, "optimizer_steps", epoch * spe, epoch * spe, &steps);
    if (rc == 0)
        rc = meta_i64(f, path, "best_epoch", epoch ? 1 : 0, epoch, &best_epoch);
    if (rc == 0)
        rc = meta_i64(f, path, "seed", 0, INT64_MAX, &seed);
    if (rc == 0 && (uint64_t)seed != t->train.seed)
        rc = eng_error(ENG_EFORMAT, "%s: the checkpoint is of seed %lld, this run's is %llu", path, (long long)seed,
                       (unsigned long long)t->train.seed);
    if (rc == 0) {
        const char *v = eng_st_metadata(f, "best_test_acc");
        char *end = NULL;
        best = v ? strtod(v, &end) : NAN;
        if (!v || !*v || *end || !(best >= 0.0 && best <= 1.0))
            rc = eng_error(ENG_EFORMAT, "%s: damaged checkpoint: metadata 'best_test_acc' is '%.40s', expected a "
                                        "fraction in [0, 1]",
                           path, v ? v : "(missing)");
    }
    /* the kernels the saved run used, before any step runs here */
    const char *kernels = eng_st_metadata(f, "kernels");
    if (rc == 0 && kernels && t->b->ops->kernels_restore) {
        rc = t->b->ops->kernels_restore(t->b, kernels);
        if (rc < 0)
            rc = eng_error(rc, "%s: %s", path, eng_last_error());
    }
    if (rc == 0)
        rc = eng_weights_load_file(t->model, f, path, OPT_PREFIX);
    if (rc == 0)
        rc = load_optimizer_state(t, f, path);
    if (rc == 0) {
        t->best_acc = best;
        t->best_epoch = best_epoch;
        t->epochs_done = epoch;
        eng_optimizer_set_steps(t->opt, steps);
    }
    eng_st_close(f);
    return rc;
}
