/* Mean over one dimension of the sample: (..., N, ...) -> (..., ...). The
 * mixer's head takes the mean over channels of its normalised (S, C) plane
 * (the last dimension). Another dimension is first moved last with the
 * backend's transpose, into workspace, so one reduction serves every case. */
#include "engine/checked.h"
#include "engine/error.h"
#include "engine/module.h"

typedef struct mean_module {
    eng_module base;
    int64_t outer, n, inner; /* the sample viewed as (outer, n, inner), n averaged */
} mean_module;

static int mean_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    mean_module *mm = (mean_module *)m;
    eng_backend *b = c->b;
    int64_t rows = mm->outer * mm->inner * c->batch;
    m->y = m->y_store;
    if (mm->inner == 1)
        return b->ops->mean_lastdim_forward(b, rows, mm->n, x, m->y);
    /* (B*outer, n, inner) -> (B*outer, inner, n), then the mean of each row */
    float *t = (float *)m->ws;
    int rc = b->ops->transpose(b, mm->outer * c->batch, mm->n, mm->inner, x, t);
    return rc ? rc : b->ops->mean_lastdim_forward(b, rows, mm->n, t, m->y);
}

static int mean_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    (void)x;
    mean_module *mm = (mean_module *)m;
    eng_backend *b = c->b;
    if (!dx)
        return 0;
    int64_t rows = mm->outer * mm->inner * c->batch;
    if (mm->inner == 1)
        return b->ops->mean_lastdim_backward(b, rows, mm->n, dy, dx);
    float *t = (float *)m->ws;
    int rc = b->ops->mean_lastdim_backward(b, rows, mm->n, dy, t);
    return rc ? rc : b->ops->transpose(b, mm->outer * c->batch, mm->inner, mm->n, t, dx);
}

static size_t mean_workspace(const eng_module *m, eng_backend *b, int64_t batch)
{
    (void)b;
    const mean_module *mm = (const mean_module *)m;
    if (mm->inner == 1)
        return 0;
    return (size_t)eng_size_align64(eng_size_mul(eng_size_mul(eng_shape_numel(&m->in), batch), sizeof(float)));
}

static const eng_module_ops mean_ops = {
    .type = "mean",
    .forward = mean_forward,
    .backward = mean_backward,
    .workspace = mean_workspace,
};

eng_module *eng_mean_new(const char *name, const eng_shape *in, int dim)
{
    if (dim < 0 || dim >= in->ndim) {
        eng_error(ENG_EINVAL, "mean over dimension %d of a %d-dimensional sample", dim, in->ndim);
        return NULL;
    }
    mean_module *mm = (mean_module *)eng_module_alloc(sizeof *mm, &mean_ops, name, in);
    if (!mm)
        return NULL;
    eng_module *m = &mm->base;
    mm->outer = eng_shape_prod(in, 0, dim);
    mm->inner = eng_shape_prod(in, dim + 1, in->ndim);
    mm->n = in->d[dim];
    m->out.ndim = 0;
    for (int i = 0; i < in->ndim; i++)
        if (i != dim)
            m->out.d[m->out.ndim++] = in->d[i];
    if (m->out.ndim == 0)
        m->out = eng_shape1(1);
    m->flops = eng_shape_numel(in);
    return m;
}

eng_module *eng_mean_lastdim_new(const char *name, const eng_shape *in)
{
    return eng_mean_new(name, in, in->ndim - 1);
}
