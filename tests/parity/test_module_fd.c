/* Whole-model central differences for what the PyTorch parity cannot check:
 * training with dropout p > 0 (PyTorch draws its masks from its own RNG).
 *
 * For each model, every parameter's gradient from eng_model_backward is
 * compared with (L(p + h) - L(p - h)) / 2h of the mean cross-entropy L,
 * each L a training-mode forward with the same dropout key (so the same
 * masks: the backward pass must regenerate exactly the forward's masks, per
 * layer stream, inside residuals too). The models are smooth (tanh, gelu,
 * sigmoid, average pooling) so that central differences are accurate.
 * Also: the masks change with the key, and evaluation mode is the identity. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/backend.h"
#include "engine/desc.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/rng.h"

#define FD_STEP 1e-2
#define FD_TOL 2e-4 /* of the model's largest gradient (float32 losses, h = 1e-2: about 1e-5 seen) */

typedef struct fixture {
    eng_backend *b;
    eng_model *m;
    float *x, *dlogits, *grads, *params;
    int32_t *labels;
    double *acc;
    int64_t batch, classes, n;
} fixture;

static void fixture_free(fixture *f)
{
    if (f->b) {
        f->b->ops->free(f->b, f->x);
        f->b->ops->free(f->b, f->dlogits);
        f->b->ops->free(f->b, f->labels);
        f->b->ops->free(f->b, f->acc);
    }
    free(f->grads);
    free(f->params);
    eng_model_free(f->m);
    eng_backend_free(f->b);
}

static void setup_model(fixture *f, const eng_model_desc *md, eng_shape in, int64_t classes, int64_t batch)
{
    memset(f, 0, sizeof *f);
    f->batch = batch;
    f->classes = classes;
    assert_int_equal(eng_model_build(md, &in, classes, NULL, NULL, &f->m), 0);
    assert_int_equal(eng_cpu_backend_new(2, &f->b), 0);
    assert_int_equal(eng_model_bind(f->m, f->b, batch), 0);
    assert_int_equal(eng_model_init_params(f->m, 7), 0);
    f->n = eng_model_param_count(f->m);
    int64_t nx = batch * eng_shape_numel(&in);
    assert_int_equal(eng_alloc_floats(f->b, nx, &f->x), 0);
    assert_int_equal(eng_alloc_floats(f->b, batch * classes, &f->dlogits), 0);
    assert_int_equal(f->b->ops->alloc(f->b, (size_t)batch * sizeof(int32_t), (void **)&f->labels), 0);
    assert_int_equal(f->b->ops->alloc(f->b, 2 * sizeof(double), (void **)&f->acc), 0);
    f->grads = malloc((size_t)f->n * sizeof(float));
    f->params = malloc((size_t)f->n * sizeof(float));
    assert_non_null(f->grads);
    assert_non_null(f->params);
    /* x ~ U(-1, 1) and labels from a fixed Philox stream */
    float *hx = malloc((size_t)nx * sizeof(float));
    int32_t hl[64];
    assert_non_null(hx);
    assert_true(batch <= 64);
    eng_rng r;
    eng_rng_init(&r, 12345, 1);
    for (int64_t i = 0; i < nx; i++)
        hx[i] = 2.0f * eng_rng_uniform(&r) - 1.0f;
    for (int64_t i = 0; i < batch; i++)
        hl[i] = (int32_t)eng_rng_below(&r, (uint64_t)classes);
    assert_int_equal(f->b->ops->upload(f->b, f->x, hx, (size_t)nx * sizeof(float)), 0);
    assert_int_equal(f->b->ops->upload(f->b, f->labels, hl, (size_t)batch * sizeof(int32_t)), 0);
    free(hx);
}

/* Mean loss of a training forward with dropout key `key`; dlogits too. */
static double loss(fixture *f, uint64_t key)
{
    const float *out;
    double zero[2] = {0.0, 0.0}, acc[2];
    assert_int_equal(eng_model_forward(f->m, f->x, f->batch, true, key, &out), 0);
    assert_int_equal(f->b->ops->upload(f->b, f->acc, zero, sizeof zero), 0);
    eng_xent_desc xd = {.rows = f->batch, .classes = f->classes, .k = 1, .scale = 1.0f / (float)f->batch};
    assert_int_equal(f->b->ops->xent(f->b, &xd, out, f->labels, f->dlogits, f->acc), 0);
    assert_int_equal(f->b->ops->download(f->b, acc, f->acc, sizeof acc), 0);
    return acc[0] / (double)f->batch;
}

/* Every gradient element against central differences. */
static void check_fd(fixture *f, const char *what)
{
    const uint64_t key = 99;
    loss(f, key);
    assert_int_equal(eng_model_backward(f->m, f->dlogits), 0);
    assert_int_equal(f->b->ops->download(f->b, f->grads, eng_model_grad_data(f->m), (size_t)f->n * sizeof(float)), 0);
    float *p = eng_model_param_data(f->m); /* host memory on the CPU backend */
    assert_int_equal(f->b->ops->download(f->b, f->params, p, (size_t)f->n * sizeof(float)), 0);
    double gmax = 0.0, worst = 0.0;
    int64_t worst_at = 0;
    double worst_fd = 0.0;
    for (int64_t i = 0; i < f->n; i++)
        gmax = fmax(gmax, fabs(f->grads[i]));
    for (int64_t i = 0; i < f->n; i++) {
        float v[2] = {f->params[i] + (float)FD_STEP, f->params[i] - (float)FD_STEP};
        double l[2];
        for (int s = 0; s < 2; s++) {
            assert_int_equal(f->b->ops->upload(f->b, p + i, &v[s], sizeof(float)), 0);
            l[s] = loss(f, key);
        }
        assert_int_equal(f->b->ops->upload(f->b, p + i, &f->params[i], sizeof(float)), 0);
        double fd = (l[0] - l[1]) / ((double)v[0] - (double)v[1]);
        double err = fabs(fd - f->grads[i]);
        if (err > worst) {
            worst = err;
            worst_at = i;
            worst_fd = fd;
        }
    }
    print_message("    %s: %lld parameters, largest |grad| %.3g, largest |fd - grad| %.3g (%.2g of it) at %lld "
                  "(grad %.6g, fd %.6g)\n",
                  what, (long long)f->n, gmax, worst, worst / gmax, (long long)worst_at, f->grads[worst_at], worst_fd);
    assert_true(gmax > 1e-3);
    assert_true(worst <= FD_TOL * gmax);
}

static eng_layer_desc L(eng_layer_kind k) { return (eng_layer_desc){.kind = k}; }
static eng_layer_desc Lin(int64_t out) { return (eng_layer_desc){.kind = ENG_LAYER_LINEAR, .out = out, .bias = true}; }
static eng_layer_desc Drop(float p) { return (eng_layer_desc){.kind = ENG_LAYER_DROPOUT, .p = p}; }

static void test_dropout_mlp(void **state)
{
    (void)state;
    eng_layer_desc inner[] = {Lin(8), L(ENG_LAYER_GELU), Drop(0.2f)};
    eng_layer_desc layers[] = {
        Lin(8), L(ENG_LAYER_TANH), Drop(0.3f), Lin(8), Drop(0.5f),
        {.kind = ENG_LAYER_RESIDUAL, .layers = inner, .n_layers = 3},
        L(ENG_LAYER_SIGMOID), Lin(4),
    };
    eng_model_desc md;
    eng_model_desc_default(&md);
    md.template_kind = ENG_TEMPLATE_SEQUENTIAL;
    md.layers = layers;
    md.n_layers = (int64_t)(sizeof layers / sizeof layers[0]);
    fixture f;
    setup_model(&f, &md, eng_shape1(6), 4, 8);
    check_fd(&f, "linear/tanh/dropout/residual(dropout)");

    /* the masks depend on the key; evaluation mode is the identity (no scaling) */
    const float *out;
    float a[32], b2[32], e1[32];
    assert_int_equal(eng_model_forward(f.m, f.x, f.batch, true, 1, &out), 0);
    memcpy(a, out, sizeof a);
    assert_int_equal(eng_model_forward(f.m, f.x, f.batch, true, 2, &out), 0);
    memcpy(b2, out, sizeof b2);
    assert_memory_not_equal(a, b2, sizeof a);
    assert_int_equal(eng_model_forward(f.m, f.x, f.batch, false, 1, &out), 0);
    memcpy(e1, out, sizeof e1);
    assert_int_equal(eng_model_forward(f.m, f.x, f.batch, false, 2, &out), 0);
    assert_memory_equal(e1, out, sizeof e1);
    assert_memory_not_equal(a, e1, sizeof a);
    fixture_free(&f);
}

static void test_dropout_conv(void **state)
{
    (void)state;
    eng_layer_desc layers[] = {
        {.kind = ENG_LAYER_CONV2D, .out = 4, .kernel = 3, .stride = 1, .padding = 1, .bias = true},
        L(ENG_LAYER_GELU),
        Drop(0.25f),
        {.kind = ENG_LAYER_AVGPOOL, .kernel = 2, .stride = 2, .padding = 0},
        L(ENG_LAYER_FLATTEN),
        Drop(0.4f),
        Lin(3),
    };
    eng_model_desc md;
    eng_model_desc_default(&md);
    md.template_kind = ENG_TEMPLATE_SEQUENTIAL;
    md.layers = layers;
    md.n_layers = (int64_t)(sizeof layers / sizeof layers[0]);
    fixture f;
    setup_model(&f, &md, eng_shape3(2, 6, 6), 3, 4);
    check_fd(&f, "conv/gelu/dropout/avgpool/flatten/dropout");
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dropout_mlp),
        cmocka_unit_test(test_dropout_conv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
