/* Three training steps of each seed model on the GPU against the same steps
 * on the CPU backend: the same initial parameters (bit for bit), the loss of
 * every step, the first step's gradients, the running statistics and the
 * parameter changes after three Adam steps with clipping. Models as
 * ../shared/tools/torch_seed_models.py builds them (logits heads, the
 * mixers' reshape), plus normal_cnn with the seed's softmax head; batch 32
 * keeps the CPU reference quick. Exits 77 where there is no CUDA device (or
 * no driver); a driver that fails, or a backend that cannot be created on a
 * device that is there, fails (exit 1), and so does any NaN.
 * `test_gpu_models --cpu-vs-cpu` checks the harness itself without a GPU:
 * the CPU backend with 1 thread against the CPU backend with 2. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/desc.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/rng.h"
#include "gpu/gpu.h"
#include "tests/common/seed_models.h"

#define BATCH 32
#define STEPS 3

static const char *prec_name[3] = {"fp32", "tf32", "bf16"};
/* Tolerances per precision (relative): loss, first gradients and running
 * statistics, parameter changes after 3 steps. For scale: the CPU backend
 * with 1 thread against 2 threads (--cpu-vs-cpu) differs by up to 4e-6 in
 * the loss, 1e-6 in the gradients and 2.2e-4 in the parameter changes
 * (Adam's near sign-like first steps amplify rounding where gradients are
 * tiny), so fp32 gets some margin above that; tf32/bf16 changes are only
 * reported. */
static const double tol_loss[3] = {3e-5, 2e-3, 2e-2};
static const double tol_grad[3] = {1e-4, 2e-2, 1e-1};
static const double tol_delta[3] = {3e-3, -1, -1};

/* The seed's six models with logits heads, and normal_cnn once more with the
 * seed's softmax head. */
typedef struct model_case {
    const char *name;
    const char *seed;
    eng_head head;
} model_case;

static const model_case models[] = {
    {"normal_cnn", "normal_cnn", ENG_HEAD_LOGITS},
    {"normal_cnn (softmax head)", "normal_cnn", ENG_HEAD_SOFTMAX},
    {"residual_cnn", "residual_cnn", ENG_HEAD_LOGITS},
    {"mlp_mixer_S4", "mlp_mixer_S4", ENG_HEAD_LOGITS},
    {"mlp_mixer_S2", "mlp_mixer_S2", ENG_HEAD_LOGITS},
    {"mlp_mixer_B4", "mlp_mixer_B4", ENG_HEAD_LOGITS},
    {"mlp_mixer_B2", "mlp_mixer_B2", ENG_HEAD_LOGITS},
};

/* One backend's run: a bound model, its optimiser state and step buffers. */
typedef struct run {
    eng_backend *b;
    eng_model *m;
    int64_t np, nb;
    float *x, *dlogits, *mom, *vel;
    int32_t *labels;
    double *acc, *sumsq;
    double loss[STEPS];
    float *p0, *g1, *p3, *bufs; /* host copies */
} run;

#define TRY(call)                                                                                                  \
    do {                                                                                                           \
        int try_rc_ = (call);                                                                                      \
        if (try_rc_ < 0) {                                                                                         \
            fprintf(stderr, "%s: %s\n", #call, eng_last_error());                                                 \
            return try_rc_;                                                                                        \
        }                                                                                                          \
    } while (0)

static int run_steps(run *r, const eng_model_desc *desc, const float *x, const int32_t *labels)
{
    const eng_shape in = eng_shape3(3, 32, 32);
    eng_backend *b = r->b;
    TRY(eng_model_build(desc, &in, 10, NULL, NULL, &r->m));
    TRY(eng_model_bind(r->m, b, BATCH));
    TRY(eng_model_init_params(r->m, 7));
    r->np = eng_model_param_count(r->m);
    r->nb = eng_model_buffer_count(r->m);
    TRY(eng_alloc_floats(b, BATCH * 3 * 32 * 32, &r->x));
    TRY(eng_alloc_floats(b, BATCH * 10, &r->dlogits));
    TRY(eng_alloc_floats(b, r->np, &r->mom));
    TRY(eng_alloc_floats(b, r->np, &r->vel));
    TRY(b->ops->alloc(b, BATCH * sizeof(int32_t), (void **)&r->labels));
    TRY(b->ops->alloc(b, 2 * sizeof(double), (void **)&r->acc));
    TRY(b->ops->alloc(b, sizeof(double), (void **)&r->sumsq));
    TRY(b->ops->upload(b, r->x, x, BATCH * 3 * 32 * 32 * sizeof(float)));
    TRY(b->ops->upload(b, r->labels, labels, BATCH * sizeof(int32_t)));
    r->p0 = malloc(r->np * sizeof(float));
    r->g1 = malloc(r->np * sizeof(float));
    r->p3 = malloc(r->np * sizeof(float));
    r->bufs = malloc((r->nb ? r->nb : 1) * sizeof(float));
    if (!r->p0 || !r->g1 || !r->p3 || !r->bufs)
        return eng_error(ENG_ENOMEM, "out of memory");
    TRY(b->ops->download(b, r->p0, eng_model_param_data(r->m), r->np * sizeof(float)));
    for (int s = 0; s < STEPS; s++) {
        const double zero[2] = {0, 0};
        TRY(b->ops->upload(b, r->acc, zero, sizeof zero));
        const float *logits;
        TRY(eng_model_forward(r->m, r->x, BATCH, true, eng_rng_key(7, ENG_RNG_DROPOUT, (uint64_t)s), &logits));
        eng_xent_desc xd = {.rows = BATCH, .classes = 10, .k = 1, .scale = 1.0f / BATCH};
        TRY(b->ops->xent(b, &xd, logits, r->labels, r->dlogits, r->acc));
        TRY(eng_model_backward(r->m, r->dlogits));
        float *g = eng_model_grad_data(r->m), *p = eng_model_param_data(r->m);
        if (s == 0)
            TRY(b->ops->download(b, r->g1, g, r->np * sizeof(float)));
        TRY(b->ops->sumsq(b, r->np, g, r->sumsq));
        TRY(b->ops->clip_by_norm(b, r->np, g, r->sumsq, 1.0f));
        eng_adam_args a = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f,
                           .step = s + 1};
        TRY(b->ops->adam_step(b, r->np, p, g, r->mom, r->vel, &a));
        double acc[2];
        TRY(b->ops->download(b, acc, r->acc, sizeof acc));
        r->loss[s] = acc[0] / BATCH;
    }
    TRY(b->ops->download(b, r->p3, eng_model_param_data(r->m), r->np * sizeof(float)));
    if (r->nb)
        TRY(b->ops->download(b, r->bufs, eng_model_buffer_data(r->m), r->nb * sizeof(float)));
    return 0;
}

static void run_free(run *r)
{
    if (r->b) {
        void *dev[] = {r->x, r->dlogits, r->mom, r->vel, r->labels, r->acc, r->sumsq};
        for (size_t i = 0; i < sizeof dev / sizeof *dev; i++)
            if (dev[i])
                r->b->ops->free(r->b, dev[i]);
    }
    eng_model_free(r->m);
    free(r->p0);
    free(r->g1);
    free(r->p3);
    free(r->bufs);
    memset(r, 0, sizeof *r);
}

static double rel_err(const float *a, const float *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static double delta_err(const run *g, const run *c)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < c->np; i++) {
        const double dc = (double)c->p3[i] - c->p0[i], dg = (double)g->p3[i] - g->p0[i];
        num += (dg - dc) * (dg - dc);
        den += dc * dc;
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static int open_dut(bool cpu_vs_cpu, int p, eng_backend **b)
{
    if (cpu_vs_cpu)
        return eng_cpu_backend_new(2, b);
    return gpu_backend_new(0, (eng_precision)p, b);
}

int main(int argc, char **argv)
{
    const bool cpu_vs_cpu = argc > 1 && !strcmp(argv[1], "--cpu-vs-cpu");
    gpu_device_info info;
    int count = 0;
    if (!cpu_vs_cpu && gpu_device_list(&info, 1, &count) < 0) {
        /* a driver that is installed and fails is a failure, never a skip */
        fprintf(stderr, "FAIL: CUDA is installed but unusable: %s\n", eng_last_error());
        return 1;
    }
    if (!cpu_vs_cpu && count == 0) {
        printf("no CUDA device: skipping the seed-model steps\n");
        return 77;
    }
    printf("device: %s\n", cpu_vs_cpu ? "the CPU backend, 2 threads (against 1)" : info.name);
    float *x = malloc(BATCH * 3 * 32 * 32 * sizeof *x);
    int32_t labels[BATCH];
    eng_rng rng;
    eng_rng_init(&rng, 12345, 0);
    for (int64_t i = 0; i < BATCH * 3 * 32 * 32; i++)
        x[i] = 2.0f * eng_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < BATCH; i++)
        labels[i] = (int32_t)eng_rng_below(&rng, 10);

    int failures = 0;
    for (size_t k = 0; k < sizeof models / sizeof *models; k++) {
        eng_model_desc desc;
        seed_model_desc(seed_model_find(models[k].seed), models[k].head, &desc);
        run cpu = {0};
        if (eng_cpu_backend_new(cpu_vs_cpu ? 1 : 0, &cpu.b) < 0 || run_steps(&cpu, &desc, x, labels) < 0) {
            fprintf(stderr, "%s on the CPU: %s\n", models[k].name, eng_last_error());
            return 1;
        }
        for (int p = 0; p < 3; p++) {
            run gpu = {0};
            if (cpu_vs_cpu && p > 0)
                continue; /* the CPU computes in fp32 only: nothing to compare */
            if (!cpu_vs_cpu && p > 0 && info.cc_major < 8) {
                printf("%s %s: not supported by compute capability %d.%d (tf32 and bf16 need 8.0)\n",
                       models[k].name, prec_name[p], info.cc_major, info.cc_minor);
                continue;
            }
            if (open_dut(cpu_vs_cpu, p, &gpu.b) < 0) {
                /* a device that is present and cannot open a backend fails the test */
                printf("FAIL %s %s: cannot create the backend: %s\n", models[k].name, prec_name[p],
                       eng_last_error());
                failures++;
                continue;
            }
            if (run_steps(&gpu, &desc, x, labels) < 0) {
                printf("FAIL %s %s: %s\n", models[k].name, prec_name[p], eng_last_error());
                failures++;
                run_free(&gpu);
                eng_backend_free(gpu.b);
                continue;
            }
            bool ok = memcmp(gpu.p0, cpu.p0, cpu.np * sizeof(float)) == 0;
            if (!ok)
                printf("FAIL %s %s: initial parameters differ\n", models[k].name, prec_name[p]);
            double worst_loss = 0;
            for (int s = 0; s < STEPS; s++) {
                const double e = fabs(gpu.loss[s] - cpu.loss[s]) / fabs(cpu.loss[s]);
                if (!(e <= worst_loss)) /* a NaN sticks, and fails the tolerance below */
                    worst_loss = e;
            }
            const double eg = rel_err(gpu.g1, cpu.g1, cpu.np), ed = delta_err(&gpu, &cpu);
            const double eb = cpu.nb ? rel_err(gpu.bufs, cpu.bufs, cpu.nb) : 0.0;
            ok = ok && worst_loss <= tol_loss[p] && eg <= tol_grad[p] && eb <= tol_grad[p] &&
                 (tol_delta[p] < 0 ? isfinite(ed) : ed <= tol_delta[p]); /* only reported, but never NaN */
            printf("%s %-26s %s  params %lld  loss %.6f/%.6f/%.6f (cpu %.6f/%.6f/%.6f, rel %.2g)  grads %.2g  "
                   "running stats %.2g  param changes %.2g\n",
                   ok ? "ok  " : "FAIL", models[k].name, prec_name[p], (long long)cpu.np, gpu.loss[0], gpu.loss[1],
                   gpu.loss[2], cpu.loss[0], cpu.loss[1], cpu.loss[2], worst_loss, eg, eb, ed);
            fflush(stdout);
            failures += !ok;
            eng_backend *gb = gpu.b;
            run_free(&gpu);
            eng_backend_free(gb);
        }
        eng_backend *cb = cpu.b;
        run_free(&cpu);
        eng_backend_free(cb);
    }
    free(x);
    printf("%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
