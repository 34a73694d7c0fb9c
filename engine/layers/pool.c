/* Max and average pooling over NCHW (PyTorch's MaxPool2d / AvgPool2d). */
#include "engine/checked.h"
#include "engine/error.h"
#include "engine/module.h"

typedef struct pool_module {
    eng_module base;
    eng_pool_mode mode;
    int64_t kernel, stride, pad;
} pool_module;

static eng_pool_desc pool_desc(const eng_module *m, int64_t batch)
{
    const pool_module *p = (const pool_module *)m;
    return (eng_pool_desc){.mode = p->mode, .count_include_pad = true, .n = batch, .c = m->in.d[0],
                           .h = m->in.d[1], .w = m->in.d[2], .kh = p->kernel, .kw = p->kernel,
                           .stride = p->stride, .pad = p->pad, .oh = m->out.d[1], .ow = m->out.d[2],
                           .blocked = m->in_blocked};
}

bool eng_pool_blocked(const eng_module *m, eng_backend *b)
{
    if (!b->ops->pool_blocked)
        return false;
    eng_pool_desc d = pool_desc(m, 1);
    d.blocked = true;
    return b->ops->pool_blocked(b, &d);
}

static int pool_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    eng_pool_desc d = pool_desc(m, c->batch);
    if (c->training) {
        d.keep = m->kept;
        d.keep_bytes = m->kept_bytes;
    }
    m->y = m->y_store;
    return c->b->ops->pool_forward(c->b, &d, x, m->y);
}

static int pool_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    if (!dx)
        return 0;
    eng_pool_desc d = pool_desc(m, c->batch);
    d.keep = m->kept;
    d.keep_bytes = m->kept_bytes;
    const eng_backend_ops *o = c->b->ops;
    if (!m->grad_relu)
        return o->pool_backward(c->b, &d, x, m->y, dy, dx);
    if (o->pool_relu_backward)
        return o->pool_relu_backward(c->b, &d, x, m->y, dy, dx);
    /* a backend without the fused pass: the relu's gradient here, in place
     * (x, the relu's output, is > 0 exactly where its input was) */
    ENG_TRY(o->pool_backward(c->b, &d, x, m->y, dy, dx));
    return o->act_backward(c->b, ENG_ACT_RELU, 0.0f, eng_shape_numel(&m->in) * c->batch, x, x, dx, dx);
}

/* b NULL: a byte per output (the largest a backend keeps: the CPU's
 * argmax) and room for its description. */
static size_t pool_keep(const eng_module *m, eng_backend *b, int64_t batch)
{
    eng_pool_desc d = pool_desc(m, batch);
    if (b)
        return b->ops->pool_keep ? b->ops->pool_keep(b, &d) : 0;
    return (size_t)eng_size_add(eng_size_mul(eng_shape_numel(&m->out), batch), 4096);
}

static const eng_module_ops maxpool_ops = {
    .type = "maxpool", .forward = pool_forward, .backward = pool_backward, .keep = pool_keep};
static const eng_module_ops avgpool_ops = {.type = "avgpool", .forward = pool_forward, .backward = pool_backward};

eng_module *eng_pool_new(const char *name, const eng_shape *in, eng_pool_mode mode, int64_t kernel, int64_t stride,
                         int64_t pad)
{
    const eng_module_ops *ops = mode == ENG_POOL_MAX ? &maxpool_ops : &avgpool_ops;
    pool_module *p = (pool_module *)eng_module_alloc(sizeof *p, ops, name, in);
    if (!p)
        return NULL;
    p->mode = mode;
    p->kernel = kernel;
    p->stride = stride;
    p->pad = pad;
    eng_module *m = &p->base;
    m->out = eng_shape3(in->d[0], eng_window_out(in->d[1], kernel, stride, pad),
                        eng_window_out(in->d[2], kernel, stride, pad));
    m->flops = eng_size_mul(eng_shape_numel(&m->out), eng_size_mul(kernel, kernel));
    return m;
}
