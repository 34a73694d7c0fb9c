/* Softmax over the last dimension (the seed's heads end in one). */
#include "engine/checked.h"
#include "engine/error.h"
#include "engine/module.h"

static int softmax_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    int64_t n = m->in.d[m->in.ndim - 1];
    m->y = m->y_store;
    return c->b->ops->softmax_forward(c->b, eng_shape_numel(&m->in) / n * c->batch, n, x, m->y);
}

static int softmax_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    (void)x;
    int64_t n = m->in.d[m->in.ndim - 1];
    if (!dx)
        return 0;
    return c->b->ops->softmax_backward(c->b, eng_shape_numel(&m->in) / n * c->batch, n, m->y, dy, dx);
}

static const eng_module_ops softmax_ops = {
    .type = "softmax",
    .forward = softmax_forward,
    .backward = softmax_backward,
};

eng_module *eng_softmax_new(const char *name, const eng_shape *in)
{
    eng_module *m = eng_module_alloc(sizeof(eng_module), &softmax_ops, name, in);
    if (m)
        m->flops = eng_size_mul(4, eng_shape_numel(in));
    return m;
}
