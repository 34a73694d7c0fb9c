/* Global average pooling: (C, H, W) -> (C), the mean of each channel. */
#include "engine/error.h"
#include "engine/module.h"

static int gap_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    int64_t hw = m->in.d[1] * m->in.d[2];
    m->y = m->y_store;
    return c->b->ops->mean_lastdim_forward(c->b, m->in.d[0] * c->batch, hw, x, m->y);
}

static int gap_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    (void)x;
    if (!dx)
        return 0;
    return c->b->ops->mean_lastdim_backward(c->b, m->in.d[0] * c->batch, m->in.d[1] * m->in.d[2], dy, dx);
}

static const eng_module_ops gap_ops = {.type = "global_avgpool", .forward = gap_forward, .backward = gap_backward};

eng_module *eng_global_avgpool_new(const char *name, const eng_shape *in)
{
    eng_module *m = eng_module_alloc(sizeof(eng_module), &gap_ops, name, in);
    if (!m)
        return NULL;
    m->out = eng_shape1(in->d[0]);
    m->flops = eng_shape_numel(in);
    return m;
}
