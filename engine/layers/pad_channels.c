/* Zero channel padding, (C, H, W) -> (C2, H, W): the seed's residual CNN
 * widens the network by appending zero channels after a pooling. */
#include "engine/error.h"
#include "engine/module.h"

static int pad_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    int64_t in = eng_shape_numel(&m->in), out = eng_shape_numel(&m->out);
    m->y = m->y_store;
    int rc = c->b->ops->fill(c->b, m->y, out * c->batch, 0.0f);
    return rc ? rc : c->b->ops->copy_2d(c->b, c->batch, in, x, in, m->y, out);
}

static int pad_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    (void)x;
    if (!dx)
        return 0;
    int64_t in = eng_shape_numel(&m->in), out = eng_shape_numel(&m->out);
    return c->b->ops->copy_2d(c->b, c->batch, in, dy, out, dx, in);
}

static const eng_module_ops pad_ops = {.type = "pad_channels", .forward = pad_forward, .backward = pad_backward};

eng_module *eng_pad_channels_new(const char *name, const eng_shape *in, int64_t channels)
{
    eng_module *m = eng_module_alloc(sizeof(eng_module), &pad_ops, name, in);
    if (m)
        m->out = eng_shape3(channels, in->d[1], in->d[2]);
    return m;
}
