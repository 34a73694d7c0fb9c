/* Elementwise activations: relu, leaky_relu, gelu (erf form), sigmoid, tanh. */
#include "engine/checked.h"
#include "engine/error.h"
#include "engine/module.h"

typedef struct activation_module {
    eng_module base;
    eng_act kind;
    float slope;
} activation_module;

static int activation_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    activation_module *a = (activation_module *)m;
    if (m->relu_done) { /* the batchnorm before it applied it */
        m->y = (float *)x;
        return 0;
    }
    m->y = m->y_store;
    return c->b->ops->act_forward(c->b, a->kind, a->slope, eng_shape_numel(&m->in) * c->batch, x, m->y);
}

static int activation_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    activation_module *a = (activation_module *)m;
    if (!dx)
        return 0;
    return c->b->ops->act_backward(c->b, a->kind, a->slope, eng_shape_numel(&m->in) * c->batch, x, m->y, dy, dx);
}

static const eng_module_ops activation_ops = {
    .type = "activation",
    .forward = activation_forward,
    .backward = activation_backward,
};

static const eng_module_ops *const typed_ops[] = {
    [ENG_ACT_RELU] = &(const eng_module_ops){"relu", activation_forward, activation_backward, NULL, NULL, NULL},
    [ENG_ACT_LEAKY_RELU] = &(const eng_module_ops){"leaky_relu", activation_forward, activation_backward, NULL, NULL, NULL},
    [ENG_ACT_GELU] = &(const eng_module_ops){"gelu", activation_forward, activation_backward, NULL, NULL, NULL},
    [ENG_ACT_SIGMOID] = &(const eng_module_ops){"sigmoid", activation_forward, activation_backward, NULL, NULL, NULL},
    [ENG_ACT_TANH] = &(const eng_module_ops){"tanh", activation_forward, activation_backward, NULL, NULL, NULL},
};

eng_module *eng_activation_new(const char *name, const eng_shape *in, eng_act kind, float slope)
{
    const eng_module_ops *ops = &activation_ops;
    if ((unsigned)kind < sizeof typed_ops / sizeof typed_ops[0] && typed_ops[kind])
        ops = typed_ops[kind];
    activation_module *a = (activation_module *)eng_module_alloc(sizeof *a, ops, name, in);
    if (!a)
        return NULL;
    a->kind = kind;
    a->slope = slope;
    a->base.flops = eng_size_mul(eng_shape_numel(in), kind == ENG_ACT_GELU ? 8 : kind == ENG_ACT_RELU ? 1 : 4);
    return &a->base;
}
