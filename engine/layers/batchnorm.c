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
                           .momentum = BN_MOMENTUM};
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
                                               m->saved + bn->n);
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

static int batchnorm_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    batchnorm_module *bn = (batchnorm_module *)m;
    eng_norm_desc d = bn_desc(bn, c->batch);
    return c->b->ops->batchnorm_backward(c->b, &d, x, dy, bn->affine ? m->w[0] : NULL, m->saved, m->saved + bn->n,
                                         dx, bn->affine ? m->dw[0] : NULL, bn->affine ? m->dw[1] : NULL);
}

static const eng_module_ops batchnorm_ops = {
    .type = "batchnorm",
    .forward = batchnorm_forward,
    .backward = batchnorm_backward,
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
    m->saved_fixed = eng_size_mul(2, bn->n); /* batch mean and inverse std */
    m->flops = eng_size_mul(2, eng_shape_numel(in));
    return m;
}
