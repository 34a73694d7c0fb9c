/* Linear layer on the last dimension: y = x W^T + b, W is [out, in]. */
#include "engine/checked.h"
#include "engine/error.h"
#include "engine/module.h"

typedef struct linear_module {
    eng_module base;
    int64_t in_f, out_f, rows_per_sample;
    bool bias;
} linear_module;

static int linear_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    linear_module *l = (linear_module *)m;
    int64_t rows = l->rows_per_sample * c->batch;
    m->y = m->y_store;
    eng_gemm_desc g = {.ta = false, .tb = true, .m = rows, .n = l->out_f, .k = l->in_f,
                       .lda = l->in_f, .ldb = l->in_f, .ldc = l->out_f, .batch = 1, .alpha = 1.0f, .beta = 0.0f};
    int rc = c->b->ops->gemm(c->b, &g, x, m->w[0], m->y);
    if (rc == 0 && l->bias)
        rc = c->b->ops->bias_add(c->b, rows, l->out_f, 1, m->y, m->w[1]);
    return rc;
}

static int linear_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    linear_module *l = (linear_module *)m;
    int64_t rows = l->rows_per_sample * c->batch;
    /* dW[out, in] = dy^T x */
    eng_gemm_desc gw = {.ta = true, .tb = false, .m = l->out_f, .n = l->in_f, .k = rows,
                        .lda = l->out_f, .ldb = l->in_f, .ldc = l->in_f, .batch = 1, .alpha = 1.0f, .beta = 0.0f};
    int rc = c->b->ops->gemm(c->b, &gw, dy, x, m->dw[0]);
    if (rc == 0 && l->bias)
        rc = c->b->ops->bias_grad(c->b, rows, l->out_f, 1, dy, m->dw[1]);
    if (rc == 0 && dx) {
        /* dx[rows, in] = dy W */
        eng_gemm_desc gx = {.ta = false, .tb = false, .m = rows, .n = l->in_f, .k = l->out_f,
                            .lda = l->out_f, .ldb = l->in_f, .ldc = l->in_f, .batch = 1, .alpha = 1.0f, .beta = 0.0f};
        rc = c->b->ops->gemm(c->b, &gx, dy, m->w[0], dx);
    }
    return rc;
}

static const eng_module_ops linear_ops = {
    .type = "linear",
    .forward = linear_forward,
    .backward = linear_backward,
};

eng_module *eng_linear_new(const char *name, const eng_shape *in, int64_t out, bool bias)
{
    linear_module *l = (linear_module *)eng_module_alloc(sizeof *l, &linear_ops, name, in);
    if (!l)
        return NULL;
    eng_module *m = &l->base;
    l->in_f = in->d[in->ndim - 1];
    l->out_f = out;
    l->rows_per_sample = eng_shape_prod(in, 0, in->ndim - 1);
    l->bias = bias;
    m->out = *in;
    m->out.d[m->out.ndim - 1] = out;
    eng_module_add_param(m, "weight", eng_shape2(out, l->in_f), ENG_INIT_FAN_IN_UNIFORM, l->in_f);
    if (bias)
        eng_module_add_param(m, "bias", eng_shape1(out), ENG_INIT_FAN_IN_UNIFORM, l->in_f);
    int64_t per_output = eng_size_add(eng_size_mul(2, l->in_f), bias ? 1 : 0);
    m->flops = eng_size_mul(eng_size_mul(l->rows_per_sample, out), per_output);
    return m;
}
