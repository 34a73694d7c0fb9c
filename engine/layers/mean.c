/* Mean over the last dimension: (..., C) -> (...). The mixer's head takes
 * the mean over channels of its normalised (S, C) plane. */
#include "engine/error.h"
#include "engine/module.h"

static int mean_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    int64_t n = m->in.d[m->in.ndim - 1];
    m->y = m->y_store;
    return c->b->ops->mean_lastdim_forward(c->b, eng_shape_numel(&m->out) * c->batch, n, x, m->y);
}

static int mean_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    (void)x;
    if (!dx)
        return 0;
    int64_t n = m->in.d[m->in.ndim - 1];
    return c->b->ops->mean_lastdim_backward(c->b, eng_shape_numel(&m->out) * c->batch, n, dy, dx);
}

static const eng_module_ops mean_ops = {.type = "mean", .forward = mean_forward, .backward = mean_backward};

eng_module *eng_mean_lastdim_new(const char *name, const eng_shape *in)
{
    eng_module *m = eng_module_alloc(sizeof(eng_module), &mean_ops, name, in);
    if (!m)
        return NULL;
    m->out = *in;
    m->out.ndim--;
    if (m->out.ndim == 0)
        m->out = eng_shape1(1);
    m->flops = eng_shape_numel(in);
    return m;
}
