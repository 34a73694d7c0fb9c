/* Dropout: zeroes each element with probability p while training and scales
 * the rest by 1/(1-p); the identity in evaluation. Masks come from Philox
 * keyed by (step key, this layer's stream), so backward regenerates the
 * forward mask instead of storing it. */
#include "engine/error.h"
#include "engine/module.h"
#include "engine/rng.h"

typedef struct dropout_module {
    eng_module base;
    float p;
    uint64_t stream;
} dropout_module;

static uint64_t mask_key(const dropout_module *d, const eng_step_ctx *c)
{
    return eng_rng_key(c->dropout_key, ENG_RNG_DROPOUT, d->stream);
}

static int dropout_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    dropout_module *d = (dropout_module *)m;
    if (!c->training || d->p == 0.0f) {
        m->y = (float *)x;
        return 0;
    }
    m->y = m->y_store;
    return c->b->ops->dropout(c->b, eng_shape_numel(&m->in) * c->batch, d->p, mask_key(d, c), 0, x, m->y);
}

static int dropout_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    (void)x;
    dropout_module *d = (dropout_module *)m;
    if (!dx)
        return 0;
    int64_t n = eng_shape_numel(&m->in) * c->batch;
    if (d->p == 0.0f)
        return c->b->ops->copy(c->b, dx, dy, (size_t)n * sizeof(float));
    return c->b->ops->dropout(c->b, n, d->p, mask_key(d, c), 0, dy, dx);
}

static const eng_module_ops dropout_ops = {.type = "dropout", .forward = dropout_forward, .backward = dropout_backward};

eng_module *eng_dropout_new(const char *name, const eng_shape *in, float p, uint64_t stream)
{
    dropout_module *d = (dropout_module *)eng_module_alloc(sizeof *d, &dropout_ops, name, in);
    if (!d)
        return NULL;
    d->p = p;
    d->stream = stream;
    d->base.flops = eng_shape_numel(in);
    return &d->base;
}
