/* gpu_bench: throughput of the CUDA backend.
 *
 *   gpu_bench ops    [--device cuda|cpu] [--precision LIST] [--reps N]
 *       time the heavy operations at the seed's shapes (batch 500):
 *       the mixers' linear layers and the CNN's convolutions, forward and
 *       backward, as GFLOP/s;
 *   gpu_bench models [--device cuda|cpu] [--precision LIST] [--batch B]
 *                    [--steps N] [--epochs E] [--models a,b,...]
 *       train the six seed models (as scripts/torch_seed_models.py
 *       builds them: logits heads, the mixers' plain reshape) on synthetic
 *       3x32x32 data through the engine's trainer: N steps per epoch, E
 *       epochs, the last one reported (the first includes planning and
 *       warm-up); train images/s and evaluation images/s.
 *
 * Prints a markdown table on stdout and one `BENCH key=value ...` line per
 * row for scripts. Needs none of libyaml, libuv or SQLite. With
 * --device cuda (the default) and no CUDA device (or no driver) it exits 77;
 * a driver that fails, or a backend that cannot be opened, exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/backend.h"
#include "engine/desc.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/train.h"
#include "epochd_config.h"
#include "tests/common/seed_models.h"
#if EPOCHD_HAVE_CUDA
#include "gpu/gpu.h"
#endif

static const char *prec_names[3] = {"fp32", "tf32", "bf16"};

typedef struct opts {
    bool cpu;
    bool prec[3];
    int reps;
    int64_t batch, steps, epochs;
    const char *models;
} opts;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int open_backend(const opts *o, int p, eng_backend **b)
{
    if (o->cpu) {
        const char *env = getenv("EPOCHD_THREADS"); /* as epochd run: default all cores */
        return p == ENG_PREC_FP32 ? eng_cpu_backend_new(env ? atoi(env) : 0, b) : ENG_ENOTSUP;
    }
#if EPOCHD_HAVE_CUDA
    return gpu_backend_new(0, (eng_precision)p, b);
#else
    return eng_error(ENG_ENOTSUP, "built without CUDA");
#endif
}

/* ---- operations ---- */

#define CHECK(call)                                                                                                \
    do {                                                                                                           \
        int check_rc_ = (call);                                                                                    \
        if (check_rc_ < 0) {                                                                                       \
            fprintf(stderr, "gpu_bench: %s: %s\n", #call, eng_last_error());                                     \
            return check_rc_;                                                                                      \
        }                                                                                                          \
    } while (0)

static void *dev_alloc(eng_backend *b, size_t bytes)
{
    void *p = NULL;
    if (b->ops->alloc(b, bytes ? bytes : 1, &p) < 0)
        fprintf(stderr, "gpu_bench: alloc %zu: %s\n", bytes, eng_last_error());
    return p;
}

static void row(const char *what, const char *prec, double flops, double secs, int reps)
{
    const double per = secs / reps;
    printf("| %s | %s | %.3f | %.1f |\n", what, prec, per * 1e3, flops / per * 1e-9);
    printf("BENCH kind=op op=\"%s\" precision=%s ms=%.4f gflops=%.1f\n", what, prec, per * 1e3, flops / per * 1e-9);
}

static int bench_gemm(eng_backend *b, const char *prec, int reps, int64_t m, int64_t n, int64_t k, const char *what)
{
    float *A = dev_alloc(b, (size_t)(m * k) * 4), *B = dev_alloc(b, (size_t)(k * n) * 4),
          *C = dev_alloc(b, (size_t)(m * n) * 4);
    if (!A || !B || !C)
        return ENG_ENOMEM;
    eng_gemm_desc d = {.tb = true, .m = m, .n = n, .k = k, .lda = k, .ldb = k, .ldc = n, .batch = 1, .alpha = 1.0f};
    CHECK(b->ops->gemm(b, &d, A, B, C)); /* warm-up */
    CHECK(b->ops->sync(b));
    double t = now();
    for (int r = 0; r < reps; r++)
        CHECK(b->ops->gemm(b, &d, A, B, C));
    CHECK(b->ops->sync(b));
    row(what, prec, 2.0 * m * n * k, now() - t, reps);
    b->ops->free(b, A);
    b->ops->free(b, B);
    b->ops->free(b, C);
    return 0;
}

static int bench_conv(eng_backend *b, const char *prec, int reps, int64_t n, int64_t c, int64_t hw, int64_t k,
                      const char *what)
{
    eng_conv_desc d = {.n = n, .c = c, .h = hw, .w = hw, .k = k, .kh = 3, .kw = 3, .stride = 1, .pad = 1,
                       .oh = hw, .ow = hw};
    const size_t ws = b->ops->conv2d_workspace(b, &d);
    float *x = dev_alloc(b, (size_t)(n * c * hw * hw) * 4), *w = dev_alloc(b, (size_t)(k * c * 9) * 4);
    float *y = dev_alloc(b, (size_t)(n * k * hw * hw) * 4), *dx = dev_alloc(b, (size_t)(n * c * hw * hw) * 4);
    float *dw = dev_alloc(b, (size_t)(k * c * 9) * 4), *bias = dev_alloc(b, (size_t)k * 4),
          *db = dev_alloc(b, (size_t)k * 4);
    void *wsp = dev_alloc(b, ws);
    if (!x || !w || !y || !dx || !dw || !bias || !db || !wsp)
        return ENG_ENOMEM;
    const double flops = 2.0 * n * k * hw * hw * c * 9;
    CHECK(b->ops->conv2d_forward(b, &d, x, w, bias, y, wsp));
    CHECK(b->ops->conv2d_backward(b, &d, x, w, y, dx, dw, db, wsp));
    CHECK(b->ops->sync(b));
    double t = now();
    for (int r = 0; r < reps; r++)
        CHECK(b->ops->conv2d_forward(b, &d, x, w, bias, y, wsp));
    CHECK(b->ops->sync(b));
    char name[128];
    snprintf(name, sizeof name, "%s forward", what);
    row(name, prec, flops, now() - t, reps);
    t = now();
    for (int r = 0; r < reps; r++)
        CHECK(b->ops->conv2d_backward(b, &d, x, w, y, dx, dw, db, wsp));
    CHECK(b->ops->sync(b));
    snprintf(name, sizeof name, "%s backward (dx, dw, db)", what);
    row(name, prec, 2.0 * flops, now() - t, reps);
    void *all[] = {x, w, y, dx, dw, bias, db, wsp};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        b->ops->free(b, all[i]);
    return 0;
}

static int bench_ops(const opts *o)
{
    printf("| operation (batch 500) | precision | ms | GFLOP/s |\n|---|---|---:|---:|\n");
    for (int p = 0; p < 3; p++) {
        if (!o->prec[p])
            continue;
        eng_backend *b = NULL;
        if (open_backend(o, p, &b) < 0) {
            fprintf(stderr, "gpu_bench: %s: cannot open the backend: %s\n", prec_names[p], eng_last_error());
            return -1;
        }
        int rc = 0;
        if (!rc)
            rc = bench_gemm(b, prec_names[p], o->reps, 500 * 64, 128, 128, "linear 128->128 on 500x64 tokens (S4 channel mixing)");
        if (!rc)
            rc = bench_gemm(b, prec_names[p], o->reps, 500 * 128, 64, 64, "linear 64->64 on 500x128 rows (S4 token mixing)");
        if (!rc)
            rc = bench_gemm(b, prec_names[p], o->reps, 500 * 256, 192, 192, "linear 192->192 on 500x256 tokens (B2 channel mixing)");
        if (!rc)
            rc = bench_conv(b, prec_names[p], o->reps, 500, 16, 32, 16, "conv 16->16 3x3 on 32x32");
        if (!rc)
            rc = bench_conv(b, prec_names[p], o->reps, 500, 64, 7, 64, "conv 64->64 3x3 on 7x7");
        eng_backend_free(b);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- the six seed models through the trainer ---- */

static int bench_models(const opts *o)
{
    printf("| model | params | precision | train img/s | eval img/s | epoch s |\n|---|---:|---|---:|---:|---:|\n");
    for (int i = 0; i < SEED_MODEL_COUNT; i++) {
        const seed_model *s = &seed_models[i];
        if (!seed_model_wanted(o->models, s->name))
            continue;
        for (int p = 0; p < 3; p++) {
            if (!o->prec[p])
                continue;
            eng_backend *b = NULL;
            if (open_backend(o, p, &b) < 0) {
                fprintf(stderr, "gpu_bench: %s %s: cannot open the backend: %s\n", s->name, prec_names[p],
                        eng_last_error());
                return 1;
            }
            eng_data_desc data;
            eng_data_desc_default(&data);
            data.dataset = ENG_DATASET_SYNTHETIC;
            data.batch_size = data.eval_batch_size = o->batch;
            data.synth_train = o->batch * o->steps;
            data.synth_test = o->batch * (o->steps > 4 ? o->steps / 4 : 1);
            eng_model_desc model;
            seed_model_desc(s, ENG_HEAD_LOGITS, &model); /* as torch_seed_models.py */
            eng_train_desc train;
            eng_train_desc_default(&train);
            train.epochs = o->epochs;
            train.grad_clip = 1.0f; /* as torch_seed_models.py */
            train.warmup_epochs = 0;
            train.precision = (eng_precision)p;
            eng_trainer *t = NULL;
            if (eng_trainer_new(&data, &model, &train, b, &t) < 0) {
                fprintf(stderr, "gpu_bench: %s %s: %s\n", s->name, prec_names[p], eng_last_error());
                eng_backend_free(b);
                return 1;
            }
            eng_epoch_stats st = {0};
            int rc = 0;
            for (int64_t e = 0; e < o->epochs && rc == 0; e++)
                rc = eng_trainer_run_epoch(t, NULL, &st);
            if (rc < 0) {
                fprintf(stderr, "gpu_bench: %s %s: %s\n", s->name, prec_names[p], eng_last_error());
                eng_trainer_free(t);
                eng_backend_free(b);
                return 1;
            }
            const double eval_s = st.seconds - st.train_seconds;
            const double eval_ips = eval_s > 0 ? (double)st.test_samples / eval_s : 0.0;
            const int64_t params = eng_model_param_count(eng_trainer_model(t));
            printf("| %s | %lld | %s | %.0f | %.0f | %.2f |\n", s->name, (long long)params, prec_names[p],
                   st.samples_per_sec, eval_ips, st.seconds);
            printf("BENCH kind=model model=%s precision=%s params=%lld train_img_s=%.1f eval_img_s=%.1f "
                   "epoch_s=%.3f loss=%.4f\n",
                   s->name, prec_names[p], (long long)params, st.samples_per_sec, eval_ips, st.seconds,
                   st.train_loss);
            fflush(stdout);
            eng_trainer_free(t);
            eng_backend_free(b);
        }
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: gpu_bench ops|models [--device cuda|cpu] [--precision fp32,tf32,bf16] [--reps N]\n"
               "                 [--batch B] [--steps N] [--epochs E] [--models name,...]\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 64;
    }
    opts o = {.reps = 20, .batch = 500, .steps = 20, .epochs = 2};
    bool precision_given = false;
    o.prec[0] = o.prec[1] = o.prec[2] = true;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--device") && v) {
            o.cpu = !strcmp(v, "cpu");
            i++;
        } else if (!strcmp(a, "--precision") && v) {
            for (int p = 0; p < 3; p++)
                o.prec[p] = seed_model_wanted(v, prec_names[p]);
            precision_given = true;
            i++;
        } else if (!strcmp(a, "--reps") && v) {
            o.reps = atoi(v);
            i++;
        } else if (!strcmp(a, "--batch") && v) {
            o.batch = atoll(v);
            i++;
        } else if (!strcmp(a, "--steps") && v) {
            o.steps = atoll(v);
            i++;
        } else if (!strcmp(a, "--epochs") && v) {
            o.epochs = atoll(v);
            i++;
        } else if (!strcmp(a, "--models") && v) {
            o.models = v;
            i++;
        } else {
            usage(stderr);
            return 64;
        }
    }
    if (o.reps < 1 || o.batch < 1 || o.steps < 1 || o.epochs < 1) {
        usage(stderr);
        return 64;
    }
    if (o.cpu) {
        o.prec[1] = o.prec[2] = false; /* the CPU computes in fp32 only */
    } else {
#if EPOCHD_HAVE_CUDA
        gpu_device_info info;
        int count = 0;
        if (gpu_device_list(&info, 1, &count) < 0) {
            fprintf(stderr, "gpu_bench: CUDA is installed but unusable: %s\n", eng_last_error());
            return 1;
        }
        if (count == 0) {
            printf("no CUDA device: nothing to benchmark\n");
            return 77;
        }
        printf("device: %s (compute capability %d.%d, %d multiprocessors)\n\n", info.name, info.cc_major,
               info.cc_minor, info.multiprocessors);
        if (info.cc_major < 8 && (o.prec[1] || o.prec[2])) {
            if (precision_given) {
                fprintf(stderr, "gpu_bench: tf32 and bf16 need compute capability 8.0 or newer\n");
                return 1;
            }
            printf("compute capability %d.%d: fp32 only (tf32 and bf16 need 8.0)\n\n", info.cc_major, info.cc_minor);
            o.prec[1] = o.prec[2] = false;
        }
#else
        (void)precision_given;
        printf("built without CUDA: nothing to benchmark (try --device cpu)\n");
        return 77;
#endif
    }
    int rc;
    if (!strcmp(argv[1], "ops"))
        rc = bench_ops(&o);
    else if (!strcmp(argv[1], "models"))
        rc = bench_models(&o);
    else {
        usage(stderr);
        return 64;
    }
    return rc ? 1 : 0;
}
