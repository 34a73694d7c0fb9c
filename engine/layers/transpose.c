/* Swap of the last two dimensions: (..., R, C) -> (..., C, R). Written by
 * hand, the seed's token mixing is transpose -> LayerNorm(S) -> Linear(S, S)
 * -> GELU -> Linear(S, S) -> transpose back on (S, C) tokens. */
#include "engine/error.h"
#include "engine/module.h"

/* (batch * leading, rows, cols) view of a sample batch */
static int64_t leading(const eng_module *m, int64_t batch)
{
    int64_t n = batch;
    for (int i = 0; i + 2 < m->in.ndim; i++)
        n *= m->in.d[i];
    return n;
}

static int transpose_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    int64_t rows = m->in.d[m->in.ndim - 2], cols = m->in.d[m->in.ndim - 1];
    m->y = m->y_store;
    return c->b->ops->transpose(c->b, leading(m, c->batch), rows, cols, x, m->y);
}

static int transpose_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    (void)x;
    if (!dx)
        return 0;
    int64_t rows = m->in.d[m->in.ndim - 2], cols = m->in.d[m->in.ndim - 1];
    /* dy is (..., cols, rows): transposing it back gives dx */
    return c->b->ops->transpose(c->b, leading(m, c->batch), cols, rows, dy, dx);
}

static const eng_module_ops transpose_ops = {
    .type = "transpose",
    .forward = transpose_forward,
    .backward = transpose_backward,
};

eng_module *eng_transpose_new(const char *name, const eng_shape *in)
{
    if (in->ndim < 2) {
        eng_error(ENG_EINVAL, "transpose needs at least 2 dimensions, found %d", in->ndim);
        return NULL;
    }
    eng_module *m = eng_module_alloc(sizeof(eng_module), &transpose_ops, name, in);
    if (!m)
        return NULL;
    m->out = *in;
    m->out.d[in->ndim - 2] = in->d[in->ndim - 1];
    m->out.d[in->ndim - 1] = in->d[in->ndim - 2];
    return m;
}
