/* Model building, naming, diagnostics, schedules, and the trainer's
 * determinism and checkpoint/resume guarantees. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/checked.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/safetensors.h"
#include "engine/train.h"
#include "tests/common/seed_models.h"

/* ---- the seed's six models (README.md, experiments/seed/) ---- */

static eng_model_desc seed(const char *name)
{
    eng_model_desc d;
    seed_model_desc(seed_model_find(name), ENG_HEAD_SOFTMAX, &d);
    return d;
}

static int64_t count_params(const eng_model_desc *d)
{
    eng_shape in = eng_shape3(3, 32, 32);
    eng_model *m = NULL;
    assert_int_equal(eng_model_build(d, &in, 10, NULL, NULL, &m), 0);
    int64_t n = eng_model_param_count(m);
    eng_model_free(m);
    return n;
}

static void test_seed_param_counts(void **state)
{
    (void)state;
    for (int i = 0; i < SEED_MODEL_COUNT; i++) {
        eng_model_desc d;
        seed_model_desc(&seed_models[i], ENG_HEAD_SOFTMAX, &d);
        print_message("%-14s %lld parameters (the seed: %lld)\n", seed_models[i].name, (long long)count_params(&d),
                      (long long)seed_models[i].params);
        assert_int_equal(count_params(&d), seed_models[i].params);
    }
}

/* Names and layouts follow the PyTorch reference (torch_seed_models.py). */
/* A batch of CIFAR-shaped inputs and a gradient of 10 logits each, fixed
 * patterns, in the backend's memory. */
static void step_inputs(eng_backend *b, int64_t batch, float **x, float **dout)
{
    const int64_t nx = batch * 3 * 32 * 32;
    assert_int_equal(b->ops->alloc(b, (size_t)nx * sizeof(float), (void **)x), 0);
    assert_int_equal(b->ops->alloc(b, (size_t)(batch * 10) * sizeof(float), (void **)dout), 0);
    for (int64_t i = 0; i < nx; i++)
        (*x)[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    for (int64_t i = 0; i < batch * 10; i++)
        (*dout)[i] = (float)(i % 7) / 7.0f - 0.4f;
}

/* Fusion (a batchnorm applies the relu after it) changes no bit: the seed
 * CNNs on the CPU backend against the same models on a copy of it that
 * lacks the fused operations, so that their layers take the separate path
 * (and, without conv2d_keep, evaluation reorders into the backend's
 * scratch). The tests below run it on our own kernels and on oneDNN's,
 * forced. */
static void compare_with_plain(eng_backend *cpu, const eng_backend_ops *plain_ops, const char *const *names,
                               size_t nnames)
{
    eng_backend plain = *cpu; /* shares the implementation; never destroyed itself */
    plain.ops = plain_ops;
    const int64_t batch = 6;
    eng_shape in = eng_shape3(3, 32, 32);
    for (size_t k = 0; k < nnames; k++) {
        eng_model_desc d = seed(names[k]);
        eng_model *m[2] = {NULL, NULL};
        const float *out[2];
        float *x = NULL, *dout = NULL;
        step_inputs(cpu, batch, &x, &dout);
        for (int t = 0; t < 2; t++) {
            assert_int_equal(eng_model_build(&d, &in, 10, NULL, NULL, &m[t]), 0);
            assert_int_equal(eng_model_bind(m[t], t ? &plain : cpu, batch), 0);
            assert_int_equal(eng_model_init_params(m[t], 5), 0);
            assert_int_equal(eng_model_forward(m[t], x, batch, true, 1, &out[t]), 0);
            assert_int_equal(eng_model_backward(m[t], dout), 0);
        }
        print_message("  %s: training forward, backward and eval forward, fused against separate\n", names[k]);
        assert_memory_equal(out[0], out[1], (size_t)(batch * 10) * sizeof(float));
        const size_t np = (size_t)eng_model_param_count(m[0]) * sizeof(float);
        assert_memory_equal(eng_model_grad_data(m[0]), eng_model_grad_data(m[1]), np);
        assert_memory_equal(eng_model_buffer_data(m[0]), eng_model_buffer_data(m[1]),
                            (size_t)eng_model_buffer_count(m[0]) * sizeof(float));
        for (int t = 0; t < 2; t++)
            assert_int_equal(eng_model_forward(m[t], x, batch, false, 0, &out[t]), 0);
        assert_memory_equal(out[0], out[1], (size_t)(batch * 10) * sizeof(float));
        for (int t = 0; t < 2; t++)
            eng_model_free(m[t]);
        cpu->ops->free(cpu, x);
        cpu->ops->free(cpu, dout);
    }
}

static void test_fusion_changes_no_bit(void **state)
{
    (void)state;
    const char *sides[] = {"own", "onednn"}; /* forced: both models run the same kernels */
    for (int side = 0; side < 2; side++) {
        eng_backend *cpu = NULL;
        setenv("EPOCHD_KERNELS", sides[side], 1);
        assert_int_equal(eng_cpu_backend_new(2, &cpu), 0);
        unsetenv("EPOCHD_KERNELS");
        print_message("  fp32 on %s kernels:\n", sides[side]);
        assert_non_null(cpu->ops->batchnorm_relu_forward_train); /* else this compares the fallback with itself */
        eng_backend_ops plain_ops = *cpu->ops;
        plain_ops.batchnorm_relu_forward_train = NULL;
        plain_ops.batchnorm_relu_forward_eval = NULL;
        plain_ops.pool_relu_backward = NULL;
        plain_ops.batchnorm_relu_backward = NULL;
        plain_ops.conv2d_keep = NULL;
        plain_ops.pool_keep = NULL; /* the max pools find their argmax again in x */
        plain_ops.bias_act = NULL;
        plain_ops.bias_residual = NULL;
        plain_ops.layernorm_backward_add = NULL;
        plain_ops.act_bias_backward = NULL;
        const char *names[] = {"normal_cnn", "residual_cnn", "mlp_mixer_S4"};
        compare_with_plain(cpu, &plain_ops, names, 3);
        eng_backend_free(cpu);
    }
}

static double max_rel_diff(const float *a, const float *b, size_t n)
{
    double e = 0.0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)b[i]);
        e = isnan(d) ? INFINITY : fmax(e, d);
        scale = fmax(scale, fabs((double)b[i]));
    }
    return e / scale;
}

/* The seed CNNs' chains conv -> BN -> ReLU (-> max pool) -> conv run in
 * oneDNN's blocked layout (backend.h, ENG_BLOCK16) where the backend has one - on the CPU,
 * with AVX-512 - and train as on NCHW: the same backend without
 * conv2d_blocked gives the same outputs, gradients and running statistics
 * but for the statistics' order of summation. On our own kernels (forced)
 * the blocked tensors are converted around each convolution; on oneDNN's
 * they are taken as they lie. */
static void test_blocked_chains_match_nchw(void **state)
{
    (void)state;
    const char *sides[] = {"own", "onednn"};
    for (int side = 0; side < 2; side++) {
        eng_backend *cpu = NULL;
        setenv("EPOCHD_KERNELS", sides[side], 1);
        assert_int_equal(eng_cpu_backend_new(2, &cpu), 0);
        unsetenv("EPOCHD_KERNELS");
        assert_non_null(cpu->ops->conv2d_blocked);
        eng_backend_ops plain_ops = *cpu->ops;
        plain_ops.conv2d_blocked = NULL;
        eng_backend plain = *cpu;
        plain.ops = &plain_ops;
        const char *names[] = {"normal_cnn", "residual_cnn"};
        const int64_t batch = 6;
        const eng_shape in = eng_shape3(3, 32, 32);
        for (size_t k = 0; k < 2; k++) {
            eng_model_desc d = seed(names[k]);
            eng_model *m[2] = {NULL, NULL};
            const float *out[2];
            float *x = NULL, *dout = NULL;
            step_inputs(cpu, batch, &x, &dout);
            int nblocked[2] = {0, 0};
            for (int t = 0; t < 2; t++) {
                assert_int_equal(eng_model_build(&d, &in, 10, NULL, NULL, &m[t]), 0);
                assert_int_equal(eng_model_bind(m[t], t ? &plain : cpu, batch), 0);
                const eng_layer_info *layers;
                const int n = eng_model_layers(m[t], &layers);
                for (int i = 0; i < n; i++)
                    nblocked[t] += layers[i].blocked;
                assert_int_equal(eng_model_init_params(m[t], 5), 0);
                assert_int_equal(eng_model_forward(m[t], x, batch, true, 1, &out[t]), 0);
                assert_int_equal(eng_model_backward(m[t], dout), 0);
            }
            const size_t np = (size_t)eng_model_param_count(m[0]), nb = (size_t)eng_model_buffer_count(m[0]);
            const double e_out = max_rel_diff(out[0], out[1], (size_t)(batch * 10));
            const double e_grad = max_rel_diff(eng_model_grad_data(m[0]), eng_model_grad_data(m[1]), np);
            const double e_buf = max_rel_diff(eng_model_buffer_data(m[0]), eng_model_buffer_data(m[1]), nb);
            for (int t = 0; t < 2; t++)
                assert_int_equal(eng_model_forward(m[t], x, batch, false, 0, &out[t]), 0);
            const double e_eval = max_rel_diff(out[0], out[1], (size_t)(batch * 10));
            print_message("  %s on %s kernels: %d layers blocked; against NCHW: output %.1e, gradients %.1e, "
                          "running statistics %.1e, eval %.1e\n",
                          names[k], sides[side], nblocked[0], e_out, e_grad, e_buf, e_eval);
            /* normal_cnn: every layer from its first convolution to the last on 3x3 images (25: the chains
             * conv, BN, ReLU, (max pool,) conv overlap at their convolutions); residual_cnn: the first half
             * of its blocks on 8x8 and 3x3 images (4 x 4; its 1x1 images' blocked layout is NCHW itself) */
            assert_int_equal(nblocked[0], k == 0 ? 25 : 16);
            assert_int_equal(nblocked[1], 0);
            assert_true(e_out <= 1e-5 && e_grad <= 1e-4 && e_buf <= 1e-5 && e_eval <= 1e-5);
            for (int t = 0; t < 2; t++)
                eng_model_free(m[t]);
            cpu->ops->free(cpu, x);
            cpu->ops->free(cpu, dout);
        }
        eng_backend_free(cpu);
    }
}

/* The per-layer profile times training steps only: an evaluation forward
 * adds nothing to it, a training step adds to every convolution. */
static void test_profile_times_training_only(void **state)
{
    (void)state;
    eng_backend *cpu = NULL;
    assert_int_equal(eng_cpu_backend_new(1, &cpu), 0);
    const int64_t batch = 4;
    eng_shape in = eng_shape3(3, 32, 32);
    eng_model_desc d = seed("residual_cnn");
    eng_model *m = NULL;
    assert_int_equal(eng_model_build(&d, &in, 10, NULL, NULL, &m), 0);
    assert_int_equal(eng_model_bind(m, cpu, batch), 0);
    assert_int_equal(eng_model_init_params(m, 3), 0);
    float *x = NULL, *dout = NULL;
    step_inputs(cpu, batch, &x, &dout);
    const eng_layer_info *layers;
    const int n = eng_model_layers(m, &layers);
    double *f = calloc((size_t)n, sizeof *f), *b = calloc((size_t)n, sizeof *b);
    assert_non_null(f);
    assert_non_null(b);
    const float *out;
    eng_model_profile(m, ENG_PROFILE_WALL);
    for (int k = 0; k < 3; k++)
        assert_int_equal(eng_model_forward(m, x, batch, false, 0, &out), 0);
    eng_model_layer_times(m, f, b);
    for (int i = 0; i < n; i++) {
        assert_true(f[i] == 0.0);
        assert_true(b[i] == 0.0);
    }
    assert_int_equal(eng_model_forward(m, x, batch, true, 1, &out), 0);
    assert_int_equal(eng_model_backward(m, dout), 0);
    eng_model_layer_times(m, f, b);
    int convs = 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(layers[i].type, "conv2d")) {
            assert_true(f[i] > 0.0);
            assert_true(b[i] > 0.0);
            convs++;
        }
    assert_true(convs >= 10); /* the stem and both convolutions of each block */
    free(f);
    free(b);
    cpu->ops->free(cpu, x);
    cpu->ops->free(cpu, dout);
    eng_model_free(m);
    eng_backend_free(cpu);
}

/* bf16 storage (the mixer's norm and GELU outputs kept in bf16, read so by
 * the products; the convolutions' inputs kept as oneDNN read them) changes
 * no bit either: against the same backend without the bf16-output
 * operations and conv2d_keep, on our own kernels and on oneDNN's (forced,
 * so that both sides run the same kernels). */
static void test_bf16_storage_changes_no_bit(void **state)
{
    (void)state;
    const char *sides[] = {"own", "onednn"};
    for (int s = 0; s < 2; s++) {
        setenv("EPOCHD_KERNELS", sides[s], 1);
        eng_backend *cpu = NULL;
        assert_int_equal(eng_cpu_backend_open(2, ENG_PREC_BF16, &cpu), 0);
        unsetenv("EPOCHD_KERNELS");
        assert_non_null(cpu->ops->layernorm_forward_bf16);
        eng_backend_ops plain_ops = *cpu->ops;
        plain_ops.layernorm_forward_bf16 = NULL;
        plain_ops.bias_act_bf16 = NULL;
        plain_ops.act_bias_backward_bf16 = NULL;
        plain_ops.bias_grad_bf16 = NULL;
        plain_ops.conv2d_keep = NULL; /* and the convolutions' kept inputs */
        plain_ops.pool_keep = NULL;   /* and the max pools' argmax */
        print_message("  bf16 on %s kernels:\n", sides[s]);
        const char *names[] = {"mlp_mixer_S4", "normal_cnn", "residual_cnn"};
        compare_with_plain(cpu, &plain_ops, names, 3);
        eng_backend_free(cpu);
    }
}

static void test_names_and_layouts(void **state)
{
    (void)state;
    eng_shape in = eng_shape3(3, 32, 32);
    eng_model *m = NULL;
    eng_model_desc d = seed("normal_cnn");
    assert_int_equal(eng_model_build(&d, &in, 10, NULL, NULL, &m), 0);
    const eng_tensor_info *p;
    int np = eng_model_params(m, &p);
    assert_string_equal(p[0].name, "0.weight");
    assert_int_equal(p[0].shape.ndim, 4);
    assert_int_equal(p[0].shape.d[0], 16);
    assert_int_equal(p[0].shape.d[1], 3);
    assert_int_equal(p[0].shape.d[2], 3);
    assert_string_equal(p[2].name, "1.weight"); /* BatchNorm2d after the conv */
    assert_string_equal(p[np - 2].name, "34.weight");
    assert_int_equal(p[np - 2].shape.d[0], 10);
    assert_int_equal(p[np - 2].shape.d[1], 256);
    const eng_tensor_info *b;
    int nb = eng_model_buffers(m, &b);
    assert_string_equal(b[0].name, "1.running_mean");
    assert_string_equal(b[1].name, "1.running_var");
    assert_int_equal(nb, 2 * 10);
    eng_model_free(m);

    d = seed("residual_cnn");
    assert_int_equal(eng_model_build(&d, &in, 10, NULL, NULL, &m), 0);
    np = eng_model_params(m, &p);
    assert_string_equal(p[2].name, "2.b.0.weight");
    assert_string_equal(p[np - 1].name, "12.bias");
    eng_model_free(m);

    d = seed("mlp_mixer_S4");
    assert_int_equal(eng_model_build(&d, &in, 10, NULL, NULL, &m), 0);
    np = eng_model_params(m, &p);
    assert_string_equal(p[0].name, "embed.weight");
    assert_int_equal(p[0].shape.d[0], 128);
    assert_int_equal(p[0].shape.d[1], 48);
    assert_string_equal(p[2].name, "blocks.0.0.weight");
    assert_int_equal(p[2].shape.d[0], 64); /* LayerNorm over the 64 tokens */
    assert_string_equal(p[4].name, "blocks.0.1.weight");
    assert_string_equal(p[np - 4].name, "norm.weight");
    assert_int_equal(p[np - 4].shape.ndim, 2);
    assert_int_equal(p[np - 4].shape.d[0], 64);
    assert_int_equal(p[np - 4].shape.d[1], 128);
    assert_string_equal(p[np - 2].name, "head.weight");
    eng_model_free(m);
}

/* ---- diagnostics carry key paths ---- */

typedef struct diag_log {
    char paths[8][64];
    char msgs[8][256];
    int n;
} diag_log;

static void log_diag(void *ctx, const char *path, const char *msg)
{
    diag_log *l = ctx;
    if (l->n < 8) {
        snprintf(l->paths[l->n], sizeof l->paths[0], "%s", path);
        snprintf(l->msgs[l->n], sizeof l->msgs[0], "%s", msg);
    }
    l->n++;
}

static void test_diagnostics(void **state)
{
    (void)state;
    eng_model *m = NULL;
    diag_log log = {0};
    eng_shape img = eng_shape3(3, 32, 32), flat = eng_shape3(1, 28, 28);

    int64_t units[] = {64, 7};
    eng_model_desc d;
    eng_model_desc_default(&d);
    d.template_kind = ENG_TEMPLATE_MLP;
    d.units = units;
    d.n_units = 2;
    assert_int_equal(eng_model_build(&d, &flat, 10, log_diag, &log, &m), ENG_EINVAL);
    assert_null(m);
    assert_int_equal(log.n, 1);
    assert_string_equal(log.paths[0], "model.units[1]");
    assert_non_null(strstr(log.msgs[0], "expected the last entry to be the output size 10"));
    assert_non_null(strstr(log.msgs[0], "found 7"));

    /* one pooling too many: 32 -> 15 -> 7 -> 3 -> 1 -> (none) */
    int64_t ch[] = {8, ENG_POOL_ENTRY, 8, ENG_POOL_ENTRY, ENG_POOL_ENTRY, ENG_POOL_ENTRY, ENG_POOL_ENTRY};
    eng_model_desc_default(&d);
    d.channels = ch;
    d.n_channels = 7;
    memset(&log, 0, sizeof log);
    assert_int_equal(eng_model_build(&d, &img, 10, log_diag, &log, &m), ENG_EINVAL);
    assert_int_equal(log.n, 1);
    assert_string_equal(log.paths[0], "model.channels[6]");
    assert_non_null(strstr(log.msgs[0], "found 1x1"));

    eng_model_desc_default(&d);
    d.template_kind = ENG_TEMPLATE_MLP_MIXER;
    d.patch_size = 5;
    memset(&log, 0, sizeof log);
    assert_int_equal(eng_model_build(&d, &img, 10, log_diag, &log, &m), ENG_EINVAL);
    assert_string_equal(log.paths[0], "model.patch_size");
    assert_non_null(strstr(log.msgs[0], "found 5"));

    /* a residual whose layers change the shape */
    eng_layer_desc inner[] = {{.kind = ENG_LAYER_CONV2D, .out = 4, .kernel = 3, .stride = 1, .padding = 1}};
    eng_layer_desc layers[] = {
        {.kind = ENG_LAYER_RESIDUAL, .layers = inner, .n_layers = 1},
        {.kind = ENG_LAYER_FLATTEN},
        {.kind = ENG_LAYER_LINEAR, .out = 10, .bias = true},
    };
    eng_model_desc_default(&d);
    d.template_kind = ENG_TEMPLATE_SEQUENTIAL;
    d.layers = layers;
    d.n_layers = 3;
    memset(&log, 0, sizeof log);
    assert_int_equal(eng_model_build(&d, &img, 10, log_diag, &log, &m), ENG_EINVAL);
    assert_string_equal(log.paths[0], "model.layers[0].residual.layers");

    /* a sequential model whose output is not the class count */
    layers[0].kind = ENG_LAYER_FLATTEN;
    layers[2].out = 9;
    memset(&log, 0, sizeof log);
    assert_int_equal(eng_model_build(&d, &img, 10, log_diag, &log, &m), ENG_EINVAL);
    assert_string_equal(log.paths[0], "model.layers");
    assert_non_null(strstr(log.msgs[0], "found [9]"));
}

/* ---- sizes past 64 bits saturate instead of wrapping (issue 10, defect 1) ---- */

static void test_sizes_saturate(void **state)
{
    (void)state;
    assert_int_equal(eng_size_mul(3, 5), 15);
    assert_int_equal(eng_size_mul(0, 7), 0);
    assert_int_equal(eng_size_mul(INT64_C(1) << 31, INT64_C(1) << 31), INT64_C(1) << 62);
    assert_true(eng_size_mul(INT64_C(1) << 32, INT64_C(1) << 31) == ENG_SIZE_MAX);
    assert_true(eng_size_mul(-1, 2) == ENG_SIZE_MAX);
    assert_true(eng_size_mul(ENG_SIZE_MAX, 1) == ENG_SIZE_MAX); /* saturated stays saturated */
    assert_int_equal(eng_size_add(INT64_MAX - 1, 0), INT64_MAX - 1);
    assert_true(eng_size_add(INT64_MAX - 1, 2) == ENG_SIZE_MAX);
    assert_int_equal(eng_size_align64(1), 64);
    assert_int_equal(eng_size_align64(128), 128);
    assert_true(eng_size_align64(INT64_MAX - 10) == ENG_SIZE_MAX);
    /* the reshape: 34724 * 27905 * 49477 * 384773 = 2^64 + 4 wrapped to 4 */
    eng_shape wrap = {4, {34724, 27905, 49477, 384773}};
    assert_true(eng_shape_numel(&wrap) == ENG_SIZE_MAX);
    assert_int_equal(eng_shape_prod(&wrap, 1, 3), INT64_C(27905) * 49477);

    /* a conv2d whose weight has 2^24 * 2^24 * 1024 * 1024 = 2^68 values (0
     * after wrapping): the parameter count, FLOPs and memory saturate, and
     * binding refuses before allocating anything */
    eng_layer_desc layers[] = {
        {.kind = ENG_LAYER_CONV2D, .out = 1 << 24, .kernel = 1024, .stride = 1024, .padding = 1024, .bias = true},
        {.kind = ENG_LAYER_FLATTEN},
        {.kind = ENG_LAYER_LINEAR, .out = 10, .bias = true},
    };
    eng_model_desc d;
    eng_model_desc_default(&d);
    d.template_kind = ENG_TEMPLATE_SEQUENTIAL;
    d.layers = layers;
    d.n_layers = 3;
    eng_shape in = eng_shape3(1 << 24, 4, 4);
    eng_model *m = NULL;
    assert_int_equal(eng_model_build(&d, &in, 10, NULL, NULL, &m), 0);
    assert_true(eng_model_param_count(m) == ENG_SIZE_MAX);
    assert_true(eng_model_flops(m) == ENG_SIZE_MAX);
    assert_true(eng_model_memory_estimate(m, 1) == (size_t)ENG_SIZE_MAX);
    eng_backend *b = NULL;
    assert_int_equal(eng_cpu_backend_new(1, &b), 0);
    assert_int_equal(eng_model_bind(m, b, 1), ENG_ELIMIT);
    assert_non_null(strstr(eng_last_error(), "too large to count"));
    eng_model_free(m);

    /* a mixer on (2^24, 2^24) tokens: 4 S^2 C FLOPs is 2^74 */
    eng_layer_desc mix[] = {{.kind = ENG_LAYER_MIXER}, {.kind = ENG_LAYER_MEAN, .dim = -1},
                            {.kind = ENG_LAYER_LINEAR, .out = 10, .bias = true}};
    d.layers = mix;
    in = eng_shape2(1 << 24, 1 << 24);
    assert_int_equal(eng_model_build(&d, &in, 10, NULL, NULL, &m), 0);
    assert_true(eng_model_flops(m) == ENG_SIZE_MAX);
    assert_int_equal(eng_model_bind(m, b, 1 << 20), ENG_ELIMIT);
    eng_model_free(m);
    eng_backend_free(b);
}

/* ---- learning-rate schedules, computed by hand ---- */

static void test_schedules(void **state)
{
    (void)state;
    eng_train_desc t;
    eng_train_desc_default(&t);
    t.lr = 1e-3f;
    t.epochs = 10;
    t.warmup_epochs = 2; /* 2 epochs of 100 steps: 200 warm-up steps */
    assert_float_equal(eng_schedule_lr(&t, 0, 100), 1e-3 * 1 / 200.0, 1e-12);
    assert_float_equal(eng_schedule_lr(&t, 99, 100), 1e-3 * 100 / 200.0, 1e-12);
    assert_float_equal(eng_schedule_lr(&t, 199, 100), 1e-3, 1e-12);
    assert_float_equal(eng_schedule_lr(&t, 500, 100), 1e-3, 1e-12);

    t.warmup_epochs = 0;
    t.schedule = ENG_SCHED_STEP;
    t.step_epochs = 3;
    t.gamma = 0.5f;
    assert_float_equal(eng_schedule_lr(&t, 299, 100), 1e-3, 1e-12);
    assert_float_equal(eng_schedule_lr(&t, 300, 100), 5e-4, 1e-12);
    assert_float_equal(eng_schedule_lr(&t, 650, 100), 2.5e-4, 1e-12);

    t.schedule = ENG_SCHED_COSINE;
    t.min_lr = 1e-4f;
    assert_float_equal(eng_schedule_lr(&t, 0, 100), 1e-3, 1e-9);
    assert_float_equal(eng_schedule_lr(&t, 500, 100), 1e-4 + 0.9e-3 * 0.5, 1e-9); /* half way: cos = 0 */
    assert_float_equal(eng_schedule_lr(&t, 1000, 100), 1e-4, 1e-9);
}

/* ---- training on the CPU backend ---- */

static void tiny_setting(eng_data_desc *data, eng_model_desc *model, eng_train_desc *train, int64_t *units)
{
    eng_data_desc_default(data);
    data->dataset = ENG_DATASET_SYNTHETIC;
    data->synth_shape = eng_shape3(1, 8, 8);
    data->synth_classes = 4;
    data->synth_train = 256;
    data->synth_test = 64;
    data->batch_size = 32;
    eng_model_desc_default(model);
    model->template_kind = ENG_TEMPLATE_MLP;
    units[0] = 32;
    units[1] = 4;
    model->units = units;
    model->n_units = 2;
    model->bias = true;
    eng_train_desc_default(train);
    train->epochs = 3;
    train->seed = 7;
    train->warmup_epochs = 1;
    train->grad_clip = 1.0f;
}

static void params_of(eng_trainer *t, float **out, int64_t *n)
{
    eng_model *m = eng_trainer_model(t);
    *n = eng_model_param_count(m);
    *out = malloc((size_t)*n * sizeof(float));
    assert_non_null(*out);
    memcpy(*out, eng_model_param_data(m), (size_t)*n * sizeof(float)); /* CPU backend: host memory */
}

/* A private kernel file for this process's backends: the second backend of
 * a test takes the kernels the first one measured, as a second run on the
 * same machine does. */
static char kernel_file[64];

static void use_private_kernel_file(void)
{
    if (!kernel_file[0]) {
        snprintf(kernel_file, sizeof kernel_file, "/tmp/epochd-test-kernels-XXXXXX");
        int fd = mkstemp(kernel_file);
        assert_true(fd >= 0);
        close(fd);
    }
    setenv("EPOCHD_KERNEL_FILE", kernel_file, 1);
}

static const eng_precision precisions[] = {ENG_PREC_FP32, ENG_PREC_BF16};
static const char *const precision_names[] = {"fp32", "", "bf16"};

static void test_training_learns_and_is_deterministic(void **state)
{
    (void)state;
    use_private_kernel_file();
    for (size_t pi = 0; pi < sizeof precisions / sizeof precisions[0]; pi++) {
        const eng_precision prec = precisions[pi];
        eng_data_desc data;
        eng_model_desc model;
        eng_train_desc train;
        int64_t units[2];
        tiny_setting(&data, &model, &train, units);
        train.epochs = 6;
        train.precision = prec;
        /* two backends: two runs of the same spec on this machine */
        eng_backend *b1 = NULL, *b2 = NULL;
        assert_int_equal(eng_cpu_backend_open(2, prec, &b1), 0);
        assert_int_equal(eng_cpu_backend_open(2, prec, &b2), 0);

        eng_trainer *t1 = NULL, *t2 = NULL;
        assert_int_equal(eng_trainer_new(&data, &model, &train, b1, &t1), 0);
        assert_int_equal(eng_trainer_new(&data, &model, &train, b2, &t2), 0);
        eng_epoch_stats s1[6], s2[6];
        for (int e = 0; e < 6; e++) {
            assert_int_equal(eng_trainer_run_epoch(t1, NULL, &s1[e]), 0);
            assert_int_equal(eng_trainer_run_epoch(t2, NULL, &s2[e]), 0);
            assert_int_equal(s1[e].epoch, e + 1);
            /* same seed, same threads: the same numbers, bit for bit */
            assert_memory_equal(&s1[e].train_loss, &s2[e].train_loss, sizeof(double));
            assert_memory_equal(&s1[e].test_acc, &s2[e].test_acc, sizeof(double));
        }
        for (int e = 0; e < 6; e++)
            print_message("%s epoch %d: train loss %.4f acc %.4f, test loss %.4f acc %.4f\n",
                          precision_names[prec], e + 1, s1[e].train_loss, s1[e].train_acc, s1[e].test_loss,
                          s1[e].test_acc);
        /* it learns: loss falls, accuracy well above chance (0.25) */
        assert_true(s1[5].train_loss < s1[0].train_loss);
        assert_true(s1[5].test_acc > 0.6);
        float *p1, *p2;
        int64_t n;
        params_of(t1, &p1, &n);
        params_of(t2, &p2, &n);
        assert_memory_equal(p1, p2, (size_t)n * sizeof(float));
        free(p1);
        free(p2);
        eng_trainer_free(t1);
        eng_trainer_free(t2);
        eng_backend_free(b1);
        eng_backend_free(b2);
    }
}

/* The resume test's model: a small CNN with augmentation. */
static void resume_setting(eng_data_desc *data, eng_model_desc *model, eng_train_desc *train, int64_t *units,
                           int64_t *ch)
{
    tiny_setting(data, model, train, units);
    data->synth_shape = eng_shape3(2, 8, 8);
    data->crop_padding = 1;
    data->hflip = true;
    ch[0] = 4, ch[1] = ENG_POOL_ENTRY, ch[2] = 4;
    model->template_kind = ENG_TEMPLATE_CNN;
    model->channels = ch;
    model->n_channels = 3;
}

/* ---- a diverged run (issue 10, defect 4) ---- */

typedef struct first_nonfinite {
    int64_t epoch, step; /* of the first progress report whose running loss is not finite */
} first_nonfinite;

static void note_nonfinite(void *ctx, const eng_progress *p)
{
    first_nonfinite *f = ctx;
    if (!f->step && !isfinite(p->loss)) {
        f->epoch = p->epoch;
        f->step = p->step;
    }
}

/* sgd at lr 1e20 turns the loss NaN within the first epoch. With
 * stop_on_nonfinite the epoch fails with ENG_EDIVERGED and names the first
 * step whose loss was not finite - the step where the CPU's per-step progress
 * reports (an independent reading) first see it - and does not count; without
 * it the run goes on, and NaN outputs count as wrong predictions (they used
 * to count as hits: 100 % accuracy). */
static void test_divergence(void **state)
{
    (void)state;
    eng_data_desc data;
    eng_model_desc model;
    eng_train_desc train;
    int64_t units[2];
    tiny_setting(&data, &model, &train, units);
    train.optimizer = ENG_OPT_SGD;
    train.lr = 1e20f;
    train.grad_clip = 0.0f;
    train.warmup_epochs = 0.0f;
    eng_backend *b = NULL;
    assert_int_equal(eng_cpu_backend_new(2, &b), 0);

    train.stop_on_nonfinite = false;
    eng_trainer *t = NULL;
    assert_int_equal(eng_trainer_new(&data, &model, &train, b, &t), 0);
    first_nonfinite seen = {0};
    eng_train_hooks hooks = {.ctx = &seen, .progress = note_nonfinite, .progress_interval = 0.0};
    eng_epoch_stats st;
    assert_int_equal(eng_trainer_run_epoch(t, &hooks, &st), 0);
    assert_int_equal(eng_trainer_run_epoch(t, &hooks, &st), 0);
    print_message("loss first not finite at epoch %lld step %lld; epoch 2: train loss %g acc %g, test loss %g acc %g\n",
                  (long long)seen.epoch, (long long)seen.step, st.train_loss, st.train_acc, st.test_loss, st.test_acc);
    assert_int_equal(seen.epoch, 1);
    assert_true(seen.step >= 1);
    assert_true(isnan(st.train_loss) && isnan(st.test_loss));
    /* every parameter is NaN by now, so every output is: not one hit */
    float *p;
    int64_t n;
    params_of(t, &p, &n);
    bool all_nan = true;
    for (int64_t i = 0; i < n; i++)
        all_nan &= isnan(p[i]);
    free(p);
    assert_true(all_nan);
    assert_true(st.train_acc == 0.0 && st.test_acc == 0.0);
    eng_trainer_free(t);

    train.stop_on_nonfinite = true;
    assert_int_equal(eng_trainer_new(&data, &model, &train, b, &t), 0);
    assert_int_equal(eng_trainer_run_epoch(t, NULL, &st), ENG_EDIVERGED);
    char want[96];
    snprintf(want, sizeof want, "diverged: train loss is NaN at epoch 1 step %lld", (long long)seen.step);
    assert_string_equal(eng_last_error(), want);
    assert_int_equal(eng_trainer_epochs_done(t), 0); /* the diverged epoch does not count */
    eng_trainer_free(t);
    eng_backend_free(b);
}

/* ---- the state directory is untrusted input (issue 10, defect 9) ---- */

/* Writes `from` again with one metadata key's value replaced. */
static void rewrite_meta(const char *from, const char *to, const char *key, const char *value)
{
    eng_st_file *f = NULL;
    assert_int_equal(eng_st_open(from, &f), 0);
    eng_st_writer *w = NULL;
    assert_int_equal(eng_st_writer_new(&w), 0);
    for (int64_t i = 0; i < eng_st_count(f); i++) {
        const eng_st_tensor *t = eng_st_at(f, i);
        assert_int_equal(eng_st_add_ref(w, t->name, t->dtype, t->shape, t->ndim, t->data), 0);
    }
    for (int64_t i = 0; i < eng_st_metadata_count(f); i++) {
        const char *k, *v;
        assert_int_equal(eng_st_metadata_at(f, i, &k, &v), 0);
        assert_int_equal(eng_st_add_metadata(w, k, strcmp(k, key) ? v : value), 0);
    }
    assert_int_equal(eng_st_write_file(w, to), 0);
    eng_st_writer_free(w);
    eng_st_close(f);
}

/* A checkpoint whose metadata this run cannot have written (a negative step
 * count, an absurd epoch, another seed, a best accuracy outside [0, 1]) is
 * refused as damaged before any of it is loaded, and a FIFO or a link in the
 * checkpoint's place is refused without blocking. */
static void test_checkpoint_untrusted(void **state)
{
    (void)state;
    eng_data_desc data;
    eng_model_desc model;
    eng_train_desc train;
    int64_t units[2];
    tiny_setting(&data, &model, &train, units);
    eng_backend *b = NULL;
    assert_int_equal(eng_cpu_backend_new(2, &b), 0);
    char dir[] = "/tmp/epochd-test-untrusted-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char good[64], bad[64];
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/last.safetensors", dir);
    eng_trainer *t = NULL;
    eng_epoch_stats st;
    assert_int_equal(eng_trainer_new(&data, &model, &train, b, &t), 0);
    assert_int_equal(eng_trainer_run_epoch(t, NULL, &st), 0);
    assert_int_equal(eng_trainer_save(t, good, NULL, 0), 0); /* epoch 1 of 8 steps */
    eng_trainer_free(t);

    static const struct {
        const char *key, *value, *msg;
    } cases[] = {
        {"optimizer_steps", "-5", "metadata 'optimizer_steps' is -5, expected 8"},
        {"optimizer_steps", "9", "metadata 'optimizer_steps' is 9, expected 8"},
        {"epoch", "100000000", "metadata 'epoch' is 100000000, expected 0 to 3"},
        {"epoch", "-1", "metadata 'epoch' is -1, expected 0 to 3"},
        {"epoch", "99999999999999999999", "metadata 'epoch' is not an integer"},
        {"best_epoch", "7", "metadata 'best_epoch' is 7, expected 1"},
        {"best_test_acc", "nan", "metadata 'best_test_acc' is 'nan'"},
        {"best_test_acc", "2", "metadata 'best_test_acc' is '2'"},
        {"seed", "8", "the checkpoint is of seed 8, this run's is 7"},
        {"format", "other", "not an epochd checkpoint"},
    };
    assert_int_equal(eng_trainer_new(&data, &model, &train, b, &t), 0);
    float *before, *after;
    int64_t n;
    params_of(t, &before, &n);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rewrite_meta(good, bad, cases[i].key, cases[i].value);
        assert_int_equal(eng_trainer_load(t, bad), ENG_EFORMAT);
        print_message("    %s = %s: %s\n", cases[i].key, cases[i].value, eng_last_error());
        assert_non_null(strstr(eng_last_error(), cases[i].msg));
    }
    params_of(t, &after, &n);
    assert_memory_equal(before, after, (size_t)n * sizeof(float)); /* nothing of them was loaded */
    assert_int_equal(eng_trainer_epochs_done(t), 0);
    free(before);
    free(after);

    /* a FIFO and a link where the checkpoint should be */
    unlink(bad);
    assert_int_equal(mkfifo(bad, 0600), 0);
    alarm(30);
    assert_int_equal(eng_trainer_load(t, bad), ENG_EIO);
    alarm(0);
    assert_non_null(strstr(eng_last_error(), "not a regular file (a FIFO)"));
    unlink(bad);
    assert_int_equal(symlink(good, bad), 0);
    assert_int_equal(eng_trainer_load(t, bad), ENG_EIO);
    assert_non_null(strstr(eng_last_error(), "(a symbolic link)"));
    /* the real one still loads */
    assert_int_equal(eng_trainer_load(t, good), 0);
    assert_int_equal(eng_trainer_epochs_done(t), 1);
    eng_trainer_free(t);
    unlink(bad);
    unlink(good);
    rmdir(dir);
    eng_backend_free(b);
}

/* A run resumed from the checkpoint of epoch 1 continues exactly as one that
 * never stopped (parameters, optimizer state, BatchNorm statistics, data
 * order, augmentation), in fp32 and in bf16. */
static void test_checkpoint_resume_is_exact(void **state)
{
    (void)state;
    use_private_kernel_file();
    for (size_t pi = 0; pi < sizeof precisions / sizeof precisions[0]; pi++) {
        const eng_precision prec = precisions[pi];
        eng_data_desc data;
        eng_model_desc model;
        eng_train_desc train;
        int64_t units[2], ch[3];
        resume_setting(&data, &model, &train, units, ch);
        train.precision = prec;
        eng_backend *b = NULL;
        assert_int_equal(eng_cpu_backend_open(2, prec, &b), 0);

        char path[] = "/tmp/epochd-test-ckpt-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);

        eng_trainer *straight = NULL, *first = NULL, *resumed = NULL;
        eng_epoch_stats a[3], r;
        assert_int_equal(eng_trainer_new(&data, &model, &train, b, &straight), 0);
        for (int e = 0; e < 3; e++)
            assert_int_equal(eng_trainer_run_epoch(straight, NULL, &a[e]), 0);

        assert_int_equal(eng_trainer_new(&data, &model, &train, b, &first), 0);
        assert_int_equal(eng_trainer_run_epoch(first, NULL, &r), 0);
        assert_int_equal(eng_trainer_save(first, path, NULL, 0), 0);
        eng_trainer_free(first);

        /* a trainer that has moved on (other weights, optimizer moments, BatchNorm
         * statistics, position): loading must replace everything that matters */
        assert_int_equal(eng_trainer_new(&data, &model, &train, b, &resumed), 0);
        assert_int_equal(eng_trainer_run_epoch(resumed, NULL, &r), 0);
        assert_int_equal(eng_trainer_run_epoch(resumed, NULL, &r), 0);
        assert_int_equal(eng_trainer_load(resumed, path), 0);
        assert_int_equal(eng_trainer_epochs_done(resumed), 1);
        for (int e = 1; e < 3; e++) {
            assert_int_equal(eng_trainer_run_epoch(resumed, NULL, &r), 0);
            assert_int_equal(r.epoch, e + 1);
            assert_memory_equal(&r.train_loss, &a[e].train_loss, sizeof(double));
            assert_memory_equal(&r.train_acc, &a[e].train_acc, sizeof(double));
            assert_memory_equal(&r.test_loss, &a[e].test_loss, sizeof(double));
            assert_memory_equal(&r.test_acc, &a[e].test_acc, sizeof(double));
        }
        print_message("%s: epochs 2-3 resumed from epoch 1 equal the straight run (loss %.6f, %.6f)\n",
                      precision_names[prec], a[1].train_loss, a[2].train_loss);
        float *p1, *p2;
        int64_t n;
        params_of(straight, &p1, &n);
        params_of(resumed, &p2, &n);
        assert_memory_equal(p1, p2, (size_t)n * sizeof(float));
        assert_int_equal(eng_model_batches_tracked(eng_trainer_model(resumed)),
                         eng_model_batches_tracked(eng_trainer_model(straight)));
        free(p1);
        free(p2);
        eng_trainer_free(straight);
        eng_trainer_free(resumed);
        eng_backend_free(b);
        unlink(path);
    }
}

/* The kernels a run chose are part of its checkpoint, and a resumed run
 * takes them even where this process would choose others: a run on oneDNN
 * wherever it serves, resumed in a backend told to use our own kernels,
 * continues bit for bit - while a straight run on our own kernels gives
 * other bits, so the record is what made the difference. */
static void kernel_run(eng_precision prec, const char *kernels, eng_backend **b)
{
    setenv("EPOCHD_KERNELS", kernels, 1);
    assert_int_equal(eng_cpu_backend_open(2, prec, b), 0);
    unsetenv("EPOCHD_KERNELS");
}

static void test_kernel_record_survives_resume(void **state)
{
    (void)state;
    setenv("EPOCHD_KERNEL_FILE", "off", 1); /* only the record may carry the choice */
    for (size_t pi = 0; pi < sizeof precisions / sizeof precisions[0]; pi++) {
        const eng_precision prec = precisions[pi];
        eng_data_desc data;
        eng_model_desc model;
        eng_train_desc train;
        int64_t units[2], ch[3];
        resume_setting(&data, &model, &train, units, ch);
        train.precision = prec;
        eng_backend *dn = NULL, *own = NULL, *own2 = NULL;
        kernel_run(prec, "onednn", &dn);
        kernel_run(prec, "own", &own);
        kernel_run(prec, "own", &own2);
        char path[] = "/tmp/epochd-test-kernels-ckpt-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);

        eng_trainer *straight = NULL, *first = NULL, *resumed = NULL, *other = NULL;
        eng_epoch_stats a[2], r, o[2];
        assert_int_equal(eng_trainer_new(&data, &model, &train, dn, &straight), 0);
        for (int e = 0; e < 2; e++)
            assert_int_equal(eng_trainer_run_epoch(straight, NULL, &a[e]), 0);
        assert_int_equal(eng_trainer_new(&data, &model, &train, dn, &first), 0);
        assert_int_equal(eng_trainer_run_epoch(first, NULL, &r), 0);
        assert_int_equal(eng_trainer_save(first, path, NULL, 0), 0);
        eng_trainer_free(first);

        /* the record names the shapes and oneDNN */
        eng_st_file *f = NULL;
        assert_int_equal(eng_st_open(path, &f), 0);
        const char *rec = eng_st_metadata(f, "kernels");
        assert_non_null(rec);
        print_message("%s record: %.200s%s\n", precision_names[prec], rec, strlen(rec) > 200 ? "..." : "");
        assert_non_null(strstr(rec, prec == ENG_PREC_BF16 ? "bf16 conv_fwd" : "fp32 conv_fwd"));
        assert_non_null(strstr(rec, "=onednn"));
        char *saved = strdup(rec);
        assert_non_null(saved);
        eng_st_close(f);

        assert_int_equal(eng_trainer_new(&data, &model, &train, own, &resumed), 0);
        assert_int_equal(eng_trainer_load(resumed, path), 0);
        assert_int_equal(eng_trainer_run_epoch(resumed, NULL, &r), 0);
        assert_memory_equal(&r.train_loss, &a[1].train_loss, sizeof(double));
        assert_memory_equal(&r.test_loss, &a[1].test_loss, sizeof(double));
        /* and the resumed backend's record holds every saved choice */
        char *now = NULL;
        assert_int_equal(own->ops->kernels_record(own, &now), 0);
        for (char *tok = strtok(saved, ";"); tok; tok = strtok(NULL, ";"))
            assert_non_null(strstr(now, tok));
        free(now);
        free(saved);

        /* our own kernels give other bits: without the record the resume would differ */
        assert_int_equal(eng_trainer_new(&data, &model, &train, own2, &other), 0);
        for (int e = 0; e < 2; e++)
            assert_int_equal(eng_trainer_run_epoch(other, NULL, &o[e]), 0);
        assert_true(memcmp(&o[1].train_loss, &a[1].train_loss, sizeof(double)) != 0);
        print_message("%s: resumed on a backend told 'own': epoch 2 loss %.9f = oneDNN run's %.9f "
                      "(own kernels: %.9f)\n",
                      precision_names[prec], r.train_loss, a[1].train_loss, o[1].train_loss);

        /* a broken record is refused with its place */
        assert_int_equal(own->ops->kernels_restore(own, "fp32 gemm nn 1x2x3=fast"), ENG_EFORMAT);
        assert_non_null(strstr(eng_last_error(), "fp32 gemm nn 1x2x3=fast"));

        eng_trainer_free(straight);
        eng_trainer_free(resumed);
        eng_trainer_free(other);
        eng_backend_free(dn);
        eng_backend_free(own);
        eng_backend_free(own2);
        unlink(path);
    }
    unsetenv("EPOCHD_KERNEL_FILE");
}

/* init_from is strict: a file missing a parameter or with a wrong shape is
 * refused with the tensor's name, and nothing is loaded. */
static void test_weights_strict(void **state)
{
    (void)state;
    eng_data_desc data;
    eng_model_desc model;
    eng_train_desc train;
    int64_t units[2];
    tiny_setting(&data, &model, &train, units);
    eng_backend *b = NULL;
    assert_int_equal(eng_cpu_backend_new(1, &b), 0);
    eng_trainer *t = NULL;
    assert_int_equal(eng_trainer_new(&data, &model, &train, b, &t), 0);
    eng_model *m = eng_trainer_model(t);
    char path[] = "/tmp/epochd-test-weights-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(eng_model_save_weights(m, path, NULL, 0), 0);

    /* the same architecture loads it */
    assert_int_equal(eng_model_load_weights(m, path), 0);
    /* a wider one does not: every mismatch is named */
    int64_t wide[] = {48, 4};
    eng_model_desc other = model;
    other.units = wide;
    eng_shape in = eng_shape3(1, 8, 8);
    eng_model *m2 = NULL;
    assert_int_equal(eng_model_build(&other, &in, 4, NULL, NULL, &m2), 0);
    diag_log log = {0};
    /* 1.weight, 1.bias, 2.running_mean, 2.running_var, 4.weight */
    assert_int_equal(eng_model_check_weights(m2, path, log_diag, &log), 5);
    assert_string_equal(log.paths[0], "model.init_from");
    assert_non_null(strstr(log.msgs[0], "'1.weight': expected shape [48, 64], found [32, 64]"));
    eng_model_free(m2);
    eng_trainer_free(t);
    eng_backend_free(b);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_param_counts),
        cmocka_unit_test(test_names_and_layouts),
        cmocka_unit_test(test_fusion_changes_no_bit),
        cmocka_unit_test(test_blocked_chains_match_nchw),
        cmocka_unit_test(test_bf16_storage_changes_no_bit),
        cmocka_unit_test(test_profile_times_training_only),
        cmocka_unit_test(test_diagnostics),
        cmocka_unit_test(test_sizes_saturate),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_training_learns_and_is_deterministic),
        cmocka_unit_test(test_divergence),
        cmocka_unit_test(test_checkpoint_resume_is_exact),
        cmocka_unit_test(test_checkpoint_untrusted),
        cmocka_unit_test(test_kernel_record_survives_resume),
        cmocka_unit_test(test_weights_strict),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (kernel_file[0])
        unlink(kernel_file);
    return rc;
}
