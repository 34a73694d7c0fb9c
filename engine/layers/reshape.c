/* Views of the input under another shape: flatten, and the seed's plain
 * reshape of NCHW memory into (S, D) tokens. No computation, no storage. */
#include <string.h>

#include "engine/error.h"
#include "engine/module.h"

typedef struct reshape_module {
    eng_module base;
    char type[24];
} reshape_module;

static int reshape_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    (void)c;
    m->y = (float *)x;
    return 0;
}

static int reshape_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    (void)x;
    if (!dx)
        return 0;
    return c->b->ops->copy(c->b, dx, dy, (size_t)(eng_shape_numel(&m->in) * c->batch) * sizeof(float));
}

static const eng_module_ops flatten_ops = {.type = "flatten", .forward = reshape_forward, .backward = reshape_backward};
static const eng_module_ops reshape_ops = {.type = "reshape", .forward = reshape_forward, .backward = reshape_backward};

eng_module *eng_reshape_new(const char *name, const char *type, const eng_shape *in, const eng_shape *out)
{
    const eng_module_ops *ops = !strcmp(type, "flatten") ? &flatten_ops : &reshape_ops;
    eng_module *m = eng_module_alloc(sizeof(reshape_module), ops, name, in);
    if (!m)
        return NULL;
    m->out = *out;
    m->y_alias = true;
    return m;
}
