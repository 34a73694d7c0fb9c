/* LayerNorm over the trailing 1 or 2 dimensions (PyTorch's LayerNorm with
 * normalized_shape = those dims, eps 1e-5, affine weight and bias). */
#include "engine/checked.h"
#include "engine/error.h"
#include "engine/module.h"

#define LN_EPS 1e-5f

typedef struct layernorm_module {
    eng_module base;
    int64_t n, rows_per_sample;
    bool affine;
} layernorm_module;

static eng_norm_desc ln_desc(const layernorm_module *ln, int64_t batch)
{
    return (eng_norm_desc){.outer = ln->rows_per_sample * batch, .n = ln->n, .inner = 1, .eps = LN_EPS};
}

static int layernorm_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    layernorm_module *ln = (layernorm_module *)m;
    eng_norm_desc d = ln_desc(ln, c->batch);
    int64_t rows = d.outer;
    m->y = m->y_store;
    return c->b->ops->layernorm_forward(c->b, &d, x, ln->affine ? m->w[0] : NULL, ln->affine ? m->w[1] : NULL,
                                        m->y, m->saved, m->saved + rows);
}

static int layernorm_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    layernorm_module *ln = (layernorm_module *)m;
    eng_norm_desc d = ln_desc(ln, c->batch);
    int64_t rows = d.outer;
    return c->b->ops->layernorm_backward(c->b, &d, x, dy, ln->affine ? m->w[0] : NULL, m->saved, m->saved + rows,
                                         dx, ln->affine ? m->dw[0] : NULL, ln->affine ? m->dw[1] : NULL);
}

static const eng_module_ops layernorm_ops = {
    .type = "layernorm",
    .forward = layernorm_forward,
    .backward = layernorm_backward,
};

eng_module *eng_layernorm_new(const char *name, const eng_shape *in, int dims, bool affine)
{
    layernorm_module *ln = (layernorm_module *)eng_module_alloc(sizeof *ln, &layernorm_ops, name, in);
    if (!ln)
        return NULL;
    eng_module *m = &ln->base;
    eng_shape norm = {0, {0}};
    for (int i = in->ndim - dims; i < in->ndim; i++)
        norm.d[norm.ndim++] = in->d[i];
    ln->n = eng_shape_numel(&norm);
    ln->rows_per_sample = eng_shape_prod(in, 0, in->ndim - dims);
    ln->affine = affine;
    if (affine) {
        eng_module_add_param(m, "weight", norm, ENG_INIT_ONES, 0);
        eng_module_add_param(m, "bias", norm, ENG_INIT_ZEROS, 0);
    }
    m->saved_per_sample = eng_size_mul(2, ln->rows_per_sample); /* mean and 1/std per row */
    m->flops = eng_size_mul(5, eng_shape_numel(in));
    return m;
}
