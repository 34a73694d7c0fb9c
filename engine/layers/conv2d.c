/* 2-d convolution (NCHW), PyTorch's Conv2d with square kernel, stride, padding. */
#include "engine/checked.h"
#include "engine/error.h"
#include "engine/module.h"

typedef struct conv2d_module {
    eng_module base;
    int64_t k, kernel, stride, pad;
    bool bias;
} conv2d_module;

static eng_conv_desc conv_desc(const eng_module *m, int64_t batch)
{
    const conv2d_module *cv = (const conv2d_module *)m;
    return (eng_conv_desc){.n = batch, .c = m->in.d[0], .h = m->in.d[1], .w = m->in.d[2],
                           .k = cv->k, .kh = cv->kernel, .kw = cv->kernel, .stride = cv->stride, .pad = cv->pad,
                           .oh = m->out.d[1], .ow = m->out.d[2], .x_blocked = m->in_blocked,
                           .y_blocked = m->out_blocked};
}

static int conv2d_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    conv2d_module *cv = (conv2d_module *)m;
    eng_conv_desc d = conv_desc(m, c->batch);
    /* in evaluation too: the backend's reordered x then lives in memory the
     * model already holds, not in a scratch buffer of its own */
    d.keep = m->kept;
    d.keep_bytes = m->kept_bytes;
    m->y = m->y_store;
    return c->b->ops->conv2d_forward(c->b, &d, x, m->w[0], cv->bias ? m->w[1] : NULL, m->y, m->ws);
}

static int conv2d_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    conv2d_module *cv = (conv2d_module *)m;
    eng_conv_desc d = conv_desc(m, c->batch);
    d.keep = m->kept;
    d.keep_bytes = m->kept_bytes;
    return c->b->ops->conv2d_backward(c->b, &d, x, m->w[0], dy, dx, m->dw[0], cv->bias ? m->dw[1] : NULL, m->ws);
}

static size_t conv2d_workspace(const eng_module *m, eng_backend *b, int64_t batch)
{
    eng_conv_desc d = conv_desc(m, batch);
    return b->ops->conv2d_workspace(b, &d);
}

/* b NULL: the input in float32, channels padded to a multiple of 16 (the
 * largest layout a backend keeps), and room for its description. */
static size_t conv2d_keep(const eng_module *m, eng_backend *b, int64_t batch)
{
    eng_conv_desc d = conv_desc(m, batch);
    if (b)
        return b->ops->conv2d_keep ? b->ops->conv2d_keep(b, &d) : 0;
    const int64_t c16 = (d.c + 15) / 16 * 16;
    return (size_t)eng_size_add(eng_size_mul(eng_size_mul(c16, d.h * d.w), eng_size_mul(batch, sizeof(float))), 4096);
}

bool eng_conv2d_blocked(const eng_module *m, eng_backend *b, bool in, bool out)
{
    if (!b->ops->conv2d_blocked)
        return false;
    eng_conv_desc d = conv_desc(m, 1);
    d.x_blocked = in;
    d.y_blocked = out;
    return b->ops->conv2d_blocked(b, &d);
}

static const eng_module_ops conv2d_ops = {
    .type = "conv2d",
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .workspace = conv2d_workspace,
    .keep = conv2d_keep,
};

eng_module *eng_conv2d_new(const char *name, const eng_shape *in, int64_t out, int64_t kernel, int64_t stride,
                           int64_t pad, bool bias)
{
    conv2d_module *cv = (conv2d_module *)eng_module_alloc(sizeof *cv, &conv2d_ops, name, in);
    if (!cv)
        return NULL;
    eng_module *m = &cv->base;
    cv->k = out;
    cv->kernel = kernel;
    cv->stride = stride;
    cv->pad = pad;
    cv->bias = bias;
    int64_t cin = in->d[0];
    int64_t oh = eng_window_out(in->d[1], kernel, stride, pad);
    int64_t ow = eng_window_out(in->d[2], kernel, stride, pad);
    m->out = eng_shape3(out, oh, ow);
    int64_t fan_in = eng_size_mul(cin, eng_size_mul(kernel, kernel));
    eng_module_add_param(m, "weight", (eng_shape){4, {out, cin, kernel, kernel}}, ENG_INIT_FAN_IN_UNIFORM, fan_in);
    if (bias)
        eng_module_add_param(m, "bias", eng_shape1(out), ENG_INIT_FAN_IN_UNIFORM, fan_in);
    int64_t per_output = eng_size_add(eng_size_mul(2, fan_in), bias ? 1 : 0);
    m->flops = eng_size_mul(eng_size_mul(out, eng_size_mul(oh, ow)), per_output);
    return m;
}
