/* BatchNorm (PyTorch's BatchNorm1d/2d): statistics per channel over the batch
 * (and the spatial positions); running statistics with momentum 0.1. */
#include "engine/checked.h"
#include "engine/error.h"
#include "engine/module.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

typedef struct batchnorm_module {
    eng_module base;
    int64_t n, inner_per_sample; /* channels, positions per channel per sample */
    bool affine;
} batchnorm_module;

static eng_norm_desc bn_desc(const batchnorm_module *bn, int64_t batch)
{
    return (eng_norm_desc){.outer = batch, .n = bn->n, .inner = bn->inner_per_sample, .eps = BN_EPS,
                           .momentum = BN_MOMENTUM, .blocked = bn->base.in_blocked};
}

static int batchnorm_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    batchnorm_module *bn = (batchnorm_module *)m;
    eng_norm_desc d = bn_desc(bn, c->batch);
    const float *gamma = bn->affine ? m->w[0] : NULL, *beta = bn->affine ? m->w[1] : NULL;
    const eng_backend_ops *o = c->b->ops;
    m->y = m->y_store;
    if (m->out_relu && c->training && o->batchnorm_relu_forward_train)
        return o->batchnorm_relu_forward_train(c->b, &d, x, gamma, beta, m->y, m->buf[0], m->buf[1], m->saved,
                                               m->saved + bn->n, m->saved + 2 * bn->n);
    if (m->out_relu && !c->training && o->batchnorm_relu_forward_eval)
        return o->batchnorm_relu_forward_eval(c->b, &d, x, gamma, beta, m->buf[0], m->buf[1], m->y);
    if (c->training)
        ENG_TRY(o->batchnorm_forward_train(c->b, &d, x, gamma, beta, m->y, m->buf[0], m->buf[1], m->saved,
                                           m->saved + bn->n));
    else
        ENG_TRY(o->batchnorm_forward_eval(c->b, &d, x, gamma, beta, m->buf[0], m->buf[1], m->y));
    if (m->out_relu) /* a backend without the fused pass: the relu here, in place */
        return o->act_forward(c->b, ENG_ACT_RELU, 0.0f, eng_shape_numel(&m->out) * c->batch, m->y, m->y);
    return 0;
}

/* The relu's backward in this module's own pass (needs the fused forward's
 * saved constants too). */
static bool fused_relu_backward(const eng_module *m, const eng_backend *b)
{
    return m->grad_relu && b->ops->batchnorm_relu_backward && b->ops->batchnorm_relu_forward_train;
}

static int batchnorm_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    batchnorm_module *bn = (batchnorm_module *)m;
    eng_norm_desc d = bn_desc(bn, c->batch);
    const eng_backend_ops *o = c->b->ops;
    const float *gamma = bn->affine ? m->w[0] : NULL, *beta = bn->affine ? m->w[1] : NULL;
    float *dgamma = bn->affine ? m->dw[0] : NULL, *dbeta = bn->affine ? m->dw[1] : NULL;
    if (fused_relu_backward(m, c->b))
        return o->batchnorm_relu_backward(c->b, &d, x, dy, gamma, beta, m->saved, m->saved + bn->n,
                                          m->saved + 2 * bn->n, dx, dgamma, dbeta);
    if (m->grad_relu) { /* the relu's gradient first, into the workspace */
        float *g = (float *)m->ws;
        ENG_TRY(o->act_backward(c->b, ENG_ACT_RELU, 0.0f, eng_shape_numel(&m->out) * c->batch, m->y, m->y, dy, g));
        dy = g;
    }
    return o->batchnorm_backward(c->b, &d, x, dy, gamma, m->saved, m->saved + bn->n, dx, dgamma, dbeta);
}

/* Room for the relu's gradient where the backend has no fused pass (b NULL:
 * the estimate, which assumes none). */
static size_t batchnorm_workspace(const eng_module *m, eng_backend *b, int64_t batch)
{
    if (!m->grad_relu || (b && fused_relu_backward(m, b)))
        return 0;
    return (size_t)eng_size_mul(eng_size_mul(eng_shape_numel(&m->out), batch), sizeof(float));
}

static const eng_module_ops batchnorm_ops = {
    .type = "batchnorm",
    .forward = batchnorm_forward,
    .backward = batchnorm_backward,
    .workspace = batchnorm_workspace,
};

/* (F): BatchNorm1d over (B, F); (C, L): BatchNorm1d over (B, C, L);
 * (C, H, W): BatchNorm2d. The channel is always the first per-sample dim. */
eng_module *eng_batchnorm_new(const char *name, const eng_shape *in, bool affine)
{
    batchnorm_module *bn = (batchnorm_module *)eng_module_alloc(sizeof *bn, &batchnorm_ops, name, in);
    if (!bn)
        return NULL;
    eng_module *m = &bn->base;
    bn->n = in->d[0];
    bn->inner_per_sample = eng_shape_prod(in, 1, in->ndim);
    bn->affine = affine;
    if (affine) {
        eng_module_add_param(m, "weight", eng_shape1(bn->n), ENG_INIT_ONES, 0);
        eng_module_add_param(m, "bias", eng_shape1(bn->n), ENG_INIT_ZEROS, 0);
    }
    eng_module_add_buffer(m, "running_mean", eng_shape1(bn->n), ENG_INIT_ZEROS);
    eng_module_add_buffer(m, "running_var", eng_shape1(bn->n), ENG_INIT_ONES);
    /* batch mean and inverse std; what a fused relu's backward needs (see
     * batchnorm_relu_forward_train) */
    m->saved_fixed = eng_size_mul(4, bn->n);
    m->flops = eng_size_mul(2, eng_shape_numel(in));
    return m;
}
