/* True p x p patches: (C, H, W) -> (H/p * W/p, C*p*p), features ordered
 * (c, py, px) like a Conv2d patch embedding's weight [out, C, p, p]. */
#include "engine/checked.h"
#include "engine/error.h"
#include "engine/module.h"

typedef struct patchify_module {
    eng_module base;
    int64_t p;
} patchify_module;

static int patchify_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    patchify_module *pm = (patchify_module *)m;
    m->y = m->y_store;
    return c->b->ops->patchify_forward(c->b, c->batch, m->in.d[0], m->in.d[1], m->in.d[2], pm->p, x, m->y);
}

static int patchify_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    (void)x;
    patchify_module *pm = (patchify_module *)m;
    if (!dx)
        return 0;
    return c->b->ops->patchify_backward(c->b, c->batch, m->in.d[0], m->in.d[1], m->in.d[2], pm->p, dy, dx);
}

static const eng_module_ops patchify_ops = {.type = "patchify", .forward = patchify_forward, .backward = patchify_backward};

eng_module *eng_patchify_new(const char *name, const eng_shape *in, int64_t p)
{
    patchify_module *pm = (patchify_module *)eng_module_alloc(sizeof *pm, &patchify_ops, name, in);
    if (!pm)
        return NULL;
    pm->p = p;
    pm->base.out = eng_shape2(eng_size_mul(in->d[1] / p, in->d[2] / p), eng_size_mul(in->d[0], eng_size_mul(p, p)));
    return &pm->base;
}
