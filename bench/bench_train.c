/* epochd-bench: training and evaluation throughput of the seed's six models
 * on one backend, measured like tools/torch_seed_models.py measures PyTorch
 * (a fixed random batch, Adam with weight decay, clipping at 1.0), so that
 * scripts/bench can print both side by side. Needs only the engine (and the
 * CUDA backend when built with it): no YAML, SQLite or libuv.
 *
 *   epochd-bench [--device cpu|cuda[:N]] [--precision fp32|tf32|bf16]
 *                [--threads N] [--batch N] [--steps N] [--models a,b,...]
 * prints one line per model:
 *   name params=N train_img_per_s=X step_s=Y eval_img_per_s=Z */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/error.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "epochd_config.h"
#if EPOCHD_HAVE_CUDA
#include "gpu/gpu.h"
#endif

static int64_t cnn_channels[] = {16, 16, ENG_POOL_ENTRY, 32, 32, ENG_POOL_ENTRY, 64, 64, ENG_POOL_ENTRY,
                                 128, 128, ENG_POOL_ENTRY, 256, 256};
static int64_t res_channels[] = {32, 32, 64, 64, 64, 64, 128, 128, 128};

typedef struct seed_model {
    const char *name;
    eng_template kind;
    int64_t patch, hidden, depth;
} seed_model;

static const seed_model models[] = {
    {"normal_cnn", ENG_TEMPLATE_CNN, 0, 0, 0},         {"residual_cnn", ENG_TEMPLATE_RESNET, 0, 0, 0},
    {"mlp_mixer_S4", ENG_TEMPLATE_MLP_MIXER, 4, 128, 6}, {"mlp_mixer_S2", ENG_TEMPLATE_MLP_MIXER, 2, 128, 6},
    {"mlp_mixer_B4", ENG_TEMPLATE_MLP_MIXER, 4, 192, 8}, {"mlp_mixer_B2", ENG_TEMPLATE_MLP_MIXER, 2, 192, 8},
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static eng_model_desc desc_of(const seed_model *s)
{
    eng_model_desc d;
    eng_model_desc_default(&d);
    d.template_kind = s->kind;
    d.head = ENG_HEAD_LOGITS; /* as the PyTorch peer: cross-entropy on logits */
    if (s->kind == ENG_TEMPLATE_CNN) {
        d.channels = cnn_channels;
        d.n_channels = 14;
    } else if (s->kind == ENG_TEMPLATE_RESNET) {
        d.channels = res_channels;
        d.n_channels = 9;
    } else {
        d.patch_size = s->patch;
        d.hidden = s->hidden;
        d.depth = s->depth;
        d.patching = ENG_PATCHING_RESHAPE; /* the peer's plain reshape */
    }
    return d;
}

static int open_backend(const char *device, eng_precision prec, int threads, eng_backend **b)
{
    if (!strcmp(device, "cpu"))
        return eng_cpu_backend_new(threads, b);
#if EPOCHD_HAVE_CUDA
    int ordinal = !strncmp(device, "cuda:", 5) ? atoi(device + 5) : 0;
    return gpu_backend_new(ordinal, prec, b);
#else
    (void)prec;
    return eng_error(ENG_ENOTSUP, "this build has no CUDA backend (device %s)", device);
#endif
}

#define CHECK(call)                                                                                          \
    do {                                                                                                     \
        int rc_ = (call);                                                                                    \
        if (rc_ < 0) {                                                                                       \
            fprintf(stderr, "epochd-bench: %s: %s\n", #call, eng_last_error());                             \
            return rc_;                                                                                      \
        }                                                                                                    \
    } while (0)

static int bench_one(eng_backend *b, const seed_model *s, int64_t batch, int steps)
{
    eng_model_desc d = desc_of(s);
    eng_shape in = eng_shape3(3, 32, 32);
    eng_model *m = NULL;
    CHECK(eng_model_build(&d, &in, 10, NULL, NULL, &m));
    int64_t numel = eng_shape_numel(&in);
    float *x_host = malloc((size_t)(batch * numel) * sizeof(float));
    int32_t *y_host = malloc((size_t)batch * sizeof(int32_t));
    if (!x_host || !y_host) {
        fprintf(stderr, "epochd-bench: out of memory\n");
        return -1;
    }
    eng_rng r;
    eng_rng_init(&r, 42, 0);
    for (int64_t i = 0; i < batch * numel; i++)
        x_host[i] = (float)eng_rng_normal(&r);
    for (int64_t i = 0; i < batch; i++)
        y_host[i] = (int32_t)eng_rng_below(&r, 10);

    eng_train_desc t;
    eng_train_desc_default(&t);
    t.grad_clip = 1.0f;
    eng_optimizer *opt = NULL;
    float *x = NULL, *dlogits = NULL;
    int32_t *y = NULL;
    double *acc = NULL;
    CHECK(eng_model_bind(m, b, batch));
    CHECK(eng_model_init_params(m, 0));
    CHECK(eng_optimizer_new(&t, b, eng_model_param_count(m), &opt));
    CHECK(eng_alloc_floats(b, batch * numel, &x));
    CHECK(eng_alloc_floats(b, batch * 10, &dlogits));
    CHECK(b->ops->alloc(b, (size_t)batch * sizeof(int32_t), (void **)&y));
    CHECK(b->ops->alloc(b, 2 * sizeof(double), (void **)&acc));
    CHECK(b->ops->upload(b, x, x_host, (size_t)(batch * numel) * sizeof(float)));
    CHECK(b->ops->upload(b, y, y_host, (size_t)batch * sizeof(int32_t)));

    eng_xent_desc xd = {.rows = batch, .classes = 10, .k = 1, .scale = 1.0f / (float)batch};
    double t0 = 0;
    int warm = b->kind == ENG_DEVICE_CUDA ? 3 : 1;
    for (int i = 0; i < warm + steps; i++) {
        if (i == warm) {
            CHECK(b->ops->sync(b));
            t0 = now();
        }
        const float *logits;
        CHECK(eng_model_forward(m, x, batch, true, 0, &logits));
        CHECK(b->ops->xent(b, &xd, logits, y, dlogits, acc));
        CHECK(eng_model_backward(m, dlogits));
        CHECK(eng_optimizer_step(opt, eng_model_param_data(m), eng_model_grad_data(m), 1e-3f));
    }
    CHECK(b->ops->sync(b));
    double step_s = (now() - t0) / steps;

    double e0 = now();
    for (int i = 0; i < steps; i++) {
        const float *logits;
        CHECK(eng_model_forward(m, x, batch, false, 0, &logits));
        eng_xent_desc ed = xd;
        ed.scale = 0.0f;
        CHECK(b->ops->xent(b, &ed, logits, y, NULL, acc));
    }
    CHECK(b->ops->sync(b));
    double eval_s = (now() - e0) / steps;
    printf("%-14s params=%9lld train_img_per_s=%8.1f step_s=%.4f eval_img_per_s=%9.1f\n", s->name,
           (long long)eng_model_param_count(m), (double)batch / step_s, step_s, (double)batch / eval_s);
    fflush(stdout);
    eng_optimizer_free(opt);
    b->ops->free(b, x);
    b->ops->free(b, dlogits);
    b->ops->free(b, y);
    b->ops->free(b, acc);
    eng_model_free(m);
    free(x_host);
    free(y_host);
    return 0;
}

int main(int argc, char **argv)
{
    const char *device = "cpu", *only = NULL;
    eng_precision prec = ENG_PREC_FP32;
    int threads = 2, steps = 3;
    int64_t batch = 500;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--device") && v)
            device = argv[++i];
        else if (!strcmp(a, "--threads") && v)
            threads = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && v)
            batch = atoll(argv[++i]);
        else if (!strcmp(a, "--steps") && v)
            steps = atoi(argv[++i]);
        else if (!strcmp(a, "--models") && v)
            only = argv[++i];
        else if (!strcmp(a, "--precision") && v) {
            const char *p = argv[++i];
            prec = !strcmp(p, "tf32") ? ENG_PREC_TF32 : !strcmp(p, "bf16") ? ENG_PREC_BF16 : ENG_PREC_FP32;
        } else {
            fprintf(stderr, "usage: epochd-bench [--device cpu|cuda[:N]] [--precision fp32|tf32|bf16] "
                            "[--threads N] [--batch N] [--steps N] [--models a,b,...]\n");
            return 64;
        }
    }
    if (steps < 1 || batch < 1) {
        fprintf(stderr, "epochd-bench: --steps and --batch must be positive\n");
        return 64;
    }
    eng_backend *b = NULL;
    if (open_backend(device, prec, threads, &b) < 0) {
        fprintf(stderr, "epochd-bench: cannot open %s: %s\n", device, eng_last_error());
        return 70;
    }
    printf("# epochd %s, %s, %d threads, batch %lld, %d steps\n", EPOCHD_VERSION, b->name, b->threads,
           (long long)batch, steps);
    int rc = 0;
    for (size_t i = 0; i < sizeof models / sizeof models[0] && rc == 0; i++) {
        if (only) {
            size_t n = strlen(models[i].name);
            const char *hit = strstr(only, models[i].name);
            if (!hit || (hit[n] != '\0' && hit[n] != ','))
                continue;
        }
        rc = bench_one(b, &models[i], batch, steps);
    }
    eng_backend_free(b);
    return rc < 0 ? 70 : 0;
}
