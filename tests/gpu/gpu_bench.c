/* gpu_bench: throughput of the CUDA backend, and of the CPU backend.
 *
 *   gpu_bench ops    [--device cuda|cpu] [--precision LIST] [--reps N] [--only TEXT]
 *       time the heavy operations at the seed's shapes (batch 500):
 *       the mixers' linear layers and the CNN's convolutions, forward and
 *       backward, as GFLOP/s; --only runs the rows whose name holds TEXT;
 *   gpu_bench models [--device cuda|cpu] [--precision LIST] [--batch B]
 *                    [--steps N] [--epochs E] [--warmup-steps W]
 *                    [--models a,b,...] [--profile]
 *       train the six seed models (as scripts/torch_seed_models.py
 *       builds them: logits heads, the mixers' plain reshape) on synthetic
 *       3x32x32 data through the engine's trainer: N steps per epoch, E
 *       epochs, the last one reported (the first includes planning and
 *       warm-up); train images/s, evaluation images/s and the training
 *       GFLOP/s (3x the forward FLOPs per image). --warmup-steps W > 0
 *       replaces the E - 1 warm-up epochs by W steps (then one timed
 *       epoch); --profile adds the timed epoch's time per layer
 *       (--profile-cpu-time: the process's CPU time, steadier on a busy
 *       machine);
 *   gpu_bench ceilings [--reps N]
 *       the CPU's matrix-product rates at the seed's shapes and a square
 *       one: OpenBLAS sgemm, oneDNN matmul in f32 and in bf16 (float32
 *       out); the fp32 ceiling is the best f32 rate, the bf16 ceiling the
 *       best bf16 rate.
 *
 * Prints a markdown table on stdout and one `BENCH key=value ...` line per
 * row for scripts. Needs none of libyaml, libuv or SQLite. With
 * --device cuda (the default) and no CUDA device (or no driver) it exits 77;
 * a driver that fails, or a backend that cannot be opened, exits 1. */
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <signal.h>
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
    int64_t batch, steps, epochs, warmup_steps;
    const char *models;
    bool profile, profile_cpu;
} opts;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int open_backend(const opts *o, int p, eng_backend **b)
{
    if (o->cpu) {
        const char *env = getenv("EPOCHD_THREADS"); /* as epochd run: default all cores */
        return eng_cpu_backend_open(env ? atoi(env) : 0, (eng_precision)p, b);
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

/* gpu_bench ops --only: the rows whose name holds this text (NULL: all) */
static const char *only_rows;
static bool row_skipped(const char *what) { return only_rows && !strstr(what, only_rows); }

static int bench_gemm(eng_backend *b, const char *prec, int reps, int64_t m, int64_t n, int64_t k, const char *what)
{
    if (row_skipped(what))
        return 0;
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
    if (row_skipped(what))
        return 0;
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

/* A max pool 3x3 at stride 2 as a CNN trains it: the forward keeping its
 * taps where the backend keeps them, then the backward through the relu
 * before it. GB/s counts the tensors read and written once. */
static int bench_pool(eng_backend *b, const char *prec, int reps, int64_t n, int64_t c, int64_t hw, int64_t pad,
                      const char *what)
{
    if (row_skipped(what))
        return 0;
    eng_pool_desc d = {.mode = ENG_POOL_MAX, .n = n, .c = c, .h = hw, .w = hw, .kh = 3, .kw = 3, .stride = 2,
                       .pad = pad};
    d.oh = d.ow = (hw + 2 * pad - 3) / 2 + 1;
    const size_t nx = (size_t)(n * c * hw * hw), ny = (size_t)(n * c * d.oh * d.ow);
    float *x = dev_alloc(b, nx * 4), *y = dev_alloc(b, ny * 4), *dy = dev_alloc(b, ny * 4), *dx = dev_alloc(b, nx * 4);
    d.keep_bytes = b->ops->pool_keep ? b->ops->pool_keep(b, &d) : 0;
    d.keep = d.keep_bytes ? dev_alloc(b, d.keep_bytes) : NULL;
    if (!x || !y || !dy || !dx || (d.keep_bytes && !d.keep))
        return ENG_ENOMEM;
    float *hx = malloc(nx * 4);
    if (!hx)
        return ENG_ENOMEM;
    uint32_t r = 12345; /* relu'd values, a third of them zero: ties and windows the relu zeroed */
    for (size_t i = 0; i < nx; i++) {
        r = r * 1664525u + 1013904223u;
        hx[i] = (r >> 8) % 3 == 0 ? 0.0f : (float)(r >> 8) * 0x1p-24f;
    }
    const int up = b->ops->upload(b, x, hx, nx * 4);
    free(hx);
    CHECK(up);
    CHECK(b->ops->fill(b, dy, (int64_t)ny, 1.0f));
    int (*backward)(eng_backend *, const eng_pool_desc *, const float *, const float *, const float *, float *) =
        b->ops->pool_relu_backward ? b->ops->pool_relu_backward : b->ops->pool_backward;
    CHECK(b->ops->pool_forward(b, &d, x, y)); /* warm-up */
    CHECK(backward(b, &d, x, y, dy, dx));
    CHECK(b->ops->sync(b));
    double tf = 0.0, tb = 0.0;
    for (int r = 0; r < reps; r++) { /* the backward reads what the forward kept */
        double t = now();
        CHECK(b->ops->pool_forward(b, &d, x, y));
        CHECK(b->ops->sync(b));
        tf += now() - t;
        t = now();
        CHECK(backward(b, &d, x, y, dy, dx));
        CHECK(b->ops->sync(b));
        tb += now() - t;
    }
    char name[160];
    snprintf(name, sizeof name, "%s forward (GB/s)", what);
    row(name, prec, (double)(nx + ny) * 4 + (double)ny, tf, reps);
    snprintf(name, sizeof name, "%s backward through the relu (GB/s)", what);
    row(name, prec, (double)(nx + 2 * ny) * 4 + (double)ny, tb, reps);
    void *all[] = {x, y, dy, dx, d.keep};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (all[i])
            b->ops->free(b, all[i]);
    return 0;
}

static int bench_ops(const opts *o)
{
    printf("| operation (batch 500 unless named) | precision | ms | GFLOP/s |\n|---|---|---:|---:|\n");
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
        /* residual_cnn at batch 64: its middle and last blocks' images are small */
        if (!rc)
            rc = bench_conv(b, prec_names[p], o->reps, 64, 32, 8, 32, "conv 32->32 3x3 on 8x8, batch 64");
        if (!rc)
            rc = bench_conv(b, prec_names[p], o->reps, 64, 64, 3, 64, "conv 64->64 3x3 on 3x3, batch 64");
        if (!rc)
            rc = bench_conv(b, prec_names[p], o->reps, 64, 128, 1, 128, "conv 128->128 3x3 on 1x1, batch 64");
        if (!rc && p == 0) /* (pooling runs in float32 whatever the precision) */
            rc = bench_pool(b, prec_names[p], o->reps, 500, 16, 32, 0, "max pool 16 x 32x32 -> 15x15 (normal_cnn)");
        if (!rc && p == 0)
            rc = bench_pool(b, prec_names[p], o->reps, 500, 32, 15, 0, "max pool 32 x 15x15 -> 7x7 (normal_cnn)");
        if (!rc && p == 0)
            rc = bench_pool(b, prec_names[p], o->reps, 500, 32, 16, 1, "max pool 32 x 16x16 -> 8x8, pad 1 (residual_cnn)");
        if (!rc && p == 0)
            rc = bench_pool(b, prec_names[p], o->reps, 64, 32, 16, 1, "max pool 32 x 16x16 -> 8x8, pad 1, batch 64");
        if (!rc && p == 0)
            rc = bench_pool(b, prec_names[p], o->reps, 64, 32, 8, 0, "max pool 32 x 8x8 -> 3x3, batch 64");
        if (!rc && p == 0)
            rc = bench_pool(b, prec_names[p], o->reps, 64, 64, 3, 0, "max pool 64 x 3x3 -> 1x1, batch 64");
        eng_backend_free(b);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- the six seed models through the trainer ---- */

/* Warm-up of a few steps: the epoch is stopped after `left` steps. */
typedef struct warmup {
    int64_t left;
    volatile sig_atomic_t stop;
} warmup;

static void warmup_progress(void *ctx, const eng_progress *p)
{
    warmup *w = ctx;
    if (p->step >= w->left)
        w->stop = 1;
}

static void print_profile(eng_trainer *t, int64_t steps, int64_t batch)
{
    eng_model *m = eng_trainer_model(t);
    const eng_layer_info *layers;
    const int n = eng_model_layers(m, &layers);
    double *f = calloc((size_t)n + 1, sizeof *f), *bw = calloc((size_t)n + 1, sizeof *bw);
    if (!f || !bw) {
        free(f);
        free(bw);
        return;
    }
    eng_model_layer_times(m, f, bw);
    double total = 0.0;
    for (int i = 0; i < n; i++)
        if (layers[i].depth == 1)
            total += f[i] + bw[i];
    printf("\n| layer | type | layout | forward ms/step | backward ms/step | share | forward GFLOP/s |\n"
           "|---|---|---|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        if (f[i] + bw[i] <= 0.0)
            continue;
        const double fms = f[i] * 1e3 / (double)steps, bms = bw[i] * 1e3 / (double)steps;
        const double gf = f[i] > 0 ? (double)layers[i].flops * (double)batch * (double)steps / f[i] * 1e-9 : 0.0;
        char share[16] = "";
        if (layers[i].depth == 1)
            snprintf(share, sizeof share, "%.1f%%", 100.0 * (f[i] + bw[i]) / total);
        printf("| %*s%s | %s | %s | %.2f | %.2f | %s | %.1f |\n", 2 * (layers[i].depth - 1), "", layers[i].name,
               layers[i].type, layers[i].blocked ? "blocked" : "", fms, bms, share, gf);
        printf("BENCH kind=layer layer=%s type=%s depth=%d blocked=%d fwd_ms=%.4f bwd_ms=%.4f\n", layers[i].name,
               layers[i].type, layers[i].depth, layers[i].blocked ? 1 : 0, fms, bms);
    }
    printf("\n");
    free(f);
    free(bw);
}

static int bench_models(const opts *o)
{
    printf("| model | params | precision | train img/s | eval img/s | train GFLOP/s | epoch s |\n"
           "|---|---:|---|---:|---:|---:|---:|\n");
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
            int64_t timed_epochs = o->epochs;
            if (o->warmup_steps > 0) {
                /* a few steps, stopped through the trainer's stop flag, then one timed epoch */
                warmup w = {.left = o->warmup_steps};
                eng_train_hooks h = {.ctx = &w, .progress = warmup_progress, .progress_interval = 0.0,
                                     .stop = &w.stop};
                rc = eng_trainer_run_epoch(t, &h, &st);
                if (rc == ENG_EINTR || (rc == 0 && o->warmup_steps >= o->steps))
                    rc = 0;
                timed_epochs = 1;
            }
            double cpu0 = 0.0;
            for (int64_t e = 0; e < timed_epochs && rc == 0; e++) {
                if (o->profile && e + 1 == timed_epochs)
                    eng_model_profile(eng_trainer_model(t), o->profile_cpu ? ENG_PROFILE_CPU_TIME : ENG_PROFILE_WALL);
                cpu0 = cpu_seconds();
                rc = eng_trainer_run_epoch(t, NULL, &st);
            }
            /* the timed epoch's CPU time per training step, evaluation included: steadier than the wall clock
             * on a busy machine (with one thread, what an idle machine's wall clock would show) */
            const double cpu_ms_step = (cpu_seconds() - cpu0) * 1e3 / (double)o->steps;
            if (rc < 0) {
                fprintf(stderr, "gpu_bench: %s %s: %s\n", s->name, prec_names[p], eng_last_error());
                eng_trainer_free(t);
                eng_backend_free(b);
                return 1;
            }
            const double eval_s = st.seconds - st.train_seconds;
            const double eval_ips = eval_s > 0 ? (double)st.test_samples / eval_s : 0.0;
            const int64_t params = eng_model_param_count(eng_trainer_model(t));
            const double gflops = 3.0 * (double)eng_model_flops(eng_trainer_model(t)) * st.samples_per_sec * 1e-9;
            printf("| %s | %lld | %s | %.0f | %.0f | %.1f | %.2f |\n", s->name, (long long)params, prec_names[p],
                   st.samples_per_sec, eval_ips, gflops, st.seconds);
            printf("BENCH kind=model model=%s precision=%s params=%lld train_img_s=%.1f eval_img_s=%.1f "
                   "epoch_s=%.3f loss=%.4f gflops=%.2f flops_per_img=%lld cpu_ms_step=%.2f\n",
                   s->name, prec_names[p], (long long)params, st.samples_per_sec, eval_ips, st.seconds,
                   st.train_loss, gflops, (long long)(3 * eng_model_flops(eng_trainer_model(t))), cpu_ms_step);
            if (o->profile)
                print_profile(t, st.train_samples / o->batch, o->batch);
            fflush(stdout);
            eng_trainer_free(t);
            eng_backend_free(b);
        }
    }
    return 0;
}

/* ---- the CPU's matrix-product ceilings ---- */

#define DNNL_CHECK(call)                                                                                           \
    do {                                                                                                           \
        if ((call) != dnnl_success) {                                                                              \
            fprintf(stderr, "gpu_bench: %s failed\n", #call);                                                      \
            return -1.0;                                                                                           \
        }                                                                                                          \
    } while (0)

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of reps timed calls of run(ctx), after one untimed call. */
static double median_time(void (*run)(void *), void *ctx, int reps)
{
    double t[64];
    if (reps > 64)
        reps = 64;
    run(ctx);
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        run(ctx);
        t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    return t[reps / 2];
}

typedef struct sgemm_ctx {
    int m, k, n;
    float *a, *b, *c;
} sgemm_ctx;

static void run_sgemm(void *p)
{
    sgemm_ctx *s = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->m, s->n, s->k, 1.0f, s->a, s->k, s->b, s->n, 0.0f, s->c,
                s->n);
}

typedef struct dnnl_ctx {
    dnnl_primitive_t p;
    dnnl_stream_t st;
    dnnl_exec_arg_t args[3];
} dnnl_ctx;

static void run_dnnl(void *p)
{
    dnnl_ctx *d = p;
    dnnl_primitive_execute(d->p, d->st, 3, d->args);
    dnnl_stream_wait(d->st);
}

/* GFLOP/s of oneDNN's matmul (bf16 or f32 in, f32 out); -1 when it fails. */
static double dnnl_rate(dnnl_engine_t eng, dnnl_stream_t st, int m, int k, int n, bool bf16, int reps,
                        const char **impl)
{
    const dnnl_data_type_t t = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t da = {m, k}, db = {k, n}, dc = {m, n};
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&a, 2, da, t, dnnl_ab));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&b, 2, db, t, dnnl_ab));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&c, 2, dc, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    DNNL_CHECK(dnnl_matmul_desc_init(&md, &a, &b, NULL, &c));
    DNNL_CHECK(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL));
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, impl);
    dnnl_ctx d = {.st = st};
    dnnl_memory_t ma, mb, mc;
    DNNL_CHECK(dnnl_primitive_create(&d.p, pd));
    DNNL_CHECK(dnnl_memory_create(&ma, &a, eng, DNNL_MEMORY_ALLOCATE));
    DNNL_CHECK(dnnl_memory_create(&mb, &b, eng, DNNL_MEMORY_ALLOCATE));
    DNNL_CHECK(dnnl_memory_create(&mc, &c, eng, DNNL_MEMORY_ALLOCATE));
    d.args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ma};
    d.args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, mb};
    d.args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, mc};
    const double sec = median_time(run_dnnl, &d, reps);
    *impl = strdup(*impl ? *impl : "?"); /* the primitive descriptor owns the string */
    dnnl_primitive_destroy(d.p);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(ma);
    dnnl_memory_destroy(mb);
    dnnl_memory_destroy(mc);
    return 2.0 * m * k * n / sec * 1e-9;
}

static int bench_ceilings(const opts *o)
{
    const char *env = getenv("EPOCHD_THREADS");
    eng_backend *b = NULL; /* only to size the OpenMP team as the backend does */
    if (eng_cpu_backend_new(env ? atoi(env) : 0, &b) < 0) {
        fprintf(stderr, "gpu_bench: %s\n", eng_last_error());
        return 1;
    }
    dnnl_engine_t eng;
    dnnl_stream_t st;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&st, eng, dnnl_stream_default_flags) != dnnl_success) {
        fprintf(stderr, "gpu_bench: oneDNN cannot start\n");
        eng_backend_free(b);
        return 1;
    }
    static const int shapes[][3] = {{32000, 128, 128}, {64000, 64, 64}, {128000, 192, 192}, {2048, 2048, 2048}};
    double best[3] = {0, 0, 0};
    printf("| M x K x N (%d threads) | OpenBLAS sgemm | oneDNN f32 | oneDNN bf16 |\n|---|---:|---:|---:|\n",
           b->threads);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int m = shapes[i][0], k = shapes[i][1], n = shapes[i][2];
        sgemm_ctx s = {m, k, n, calloc((size_t)m * k, 4), calloc((size_t)k * n, 4), calloc((size_t)m * n, 4)};
        if (!s.a || !s.b || !s.c) {
            fprintf(stderr, "gpu_bench: out of memory\n");
            return 1;
        }
        const double blas = 2.0 * m * k * n / median_time(run_sgemm, &s, o->reps) * 1e-9;
        free(s.a);
        free(s.b);
        free(s.c);
        const char *impl_f = NULL, *impl_b = NULL;
        const double f32 = dnnl_rate(eng, st, m, k, n, false, o->reps, &impl_f);
        const double bf16 = dnnl_rate(eng, st, m, k, n, true, o->reps, &impl_b);
        printf("| %dx%dx%d | %.1f | %.1f (%s) | %.1f (%s) |\n", m, k, n, blas, f32, impl_f ? impl_f : "-", bf16,
               impl_b ? impl_b : "-");
        printf("BENCH kind=ceiling shape=%dx%dx%d sgemm=%.1f onednn_f32=%.1f onednn_bf16=%.1f impl_f32=%s "
               "impl_bf16=%s\n",
               m, k, n, blas, f32, bf16, impl_f ? impl_f : "-", impl_b ? impl_b : "-");
        best[0] = blas > best[0] ? blas : best[0];
        best[1] = f32 > best[1] ? f32 : best[1];
        best[2] = bf16 > best[2] ? bf16 : best[2];
        free((void *)impl_f);
        free((void *)impl_b);
    }
    const double fp32 = best[0] > best[1] ? best[0] : best[1];
    printf("\nceilings: fp32 %.1f GFLOP/s (best of OpenBLAS %s and oneDNN f32), bf16 %.1f GFLOP/s (oneDNN)\n", fp32,
           eng_cpu_blas_core(), best[2]);
    printf("BENCH kind=ceilings fp32=%.1f bf16=%.1f sgemm=%.1f onednn_f32=%.1f threads=%d openblas=%s\n", fp32, best[2],
           best[0], best[1], b->threads, eng_cpu_blas_core());
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
    eng_backend_free(b);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: gpu_bench ops|models|ceilings [--device cuda|cpu] [--precision fp32,tf32,bf16] [--reps N] [--only TEXT]\n"
               "                 [--batch B] [--steps N] [--epochs E] [--warmup-steps W] [--models name,...]\n"
               "                 [--profile | --profile-cpu-time]\n");
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
        } else if (!strcmp(a, "--only") && v) {
            only_rows = v;
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
        } else if (!strcmp(a, "--warmup-steps") && v) {
            o.warmup_steps = atoll(v);
            i++;
        } else if (!strcmp(a, "--models") && v) {
            o.models = v;
            i++;
        } else if (!strcmp(a, "--profile")) {
            o.profile = true;
        } else if (!strcmp(a, "--profile-cpu-time")) {
            o.profile = o.profile_cpu = true;
        } else {
            usage(stderr);
            return 64;
        }
    }
    if (o.reps < 1 || o.batch < 1 || o.steps < 1 || o.epochs < 1 || o.warmup_steps < 0) {
        usage(stderr);
        return 64;
    }
    if (!strcmp(argv[1], "ceilings"))
        return bench_ceilings(&o) ? 1 : 0; /* the CPU's */
    if (o.cpu) {
        o.prec[1] = false; /* tf32 is a GPU format; the CPU computes in fp32 or bf16 */
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
