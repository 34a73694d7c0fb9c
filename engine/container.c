/* Containers: the sequential chain and the residual block. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/checked.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/module.h"

/* ---- sequential ---- */

/* Profiling: the backend's queue drained, then the clock (wall, or the
 * process's CPU time). */
static double prof_now(const eng_step_ctx *c)
{
    c->b->ops->sync(c->b);
    struct timespec ts;
    clock_gettime(c->profile == ENG_PROFILE_CPU_TIME ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int seq_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    const float *cur = x;
    for (int i = 0; i < m->nchild; i++) {
        eng_module *ch = m->child[i];
        const double t0 = c->profile ? prof_now(c) : 0.0;
        ENG_TRY(ch->ops->forward(ch, c, cur));
        if (c->profile)
            ch->prof_s[0] += prof_now(c) - t0;
        cur = ch->y;
    }
    m->y = (float *)cur;
    return 0;
}

/* Gradients between children ping-pong between two workspace buffers, each
 * sized for the largest intermediate output. */
static size_t seq_workspace(const eng_module *m, eng_backend *b, int64_t batch)
{
    (void)b;
    int64_t most = 0;
    for (int i = 0; i + 1 < m->nchild; i++) {
        int64_t n = eng_shape_numel(&m->child[i]->out);
        if (n > most)
            most = n;
    }
    int64_t one = eng_size_align64(eng_size_mul(eng_size_mul(most, batch), sizeof(float)));
    return (size_t)eng_size_mul(2, one);
}

static int seq_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    size_t one = seq_workspace(m, c->b, c->batch) / 2;
    float *pp[2] = {(float *)m->ws, (float *)((char *)m->ws + one)};
    const float *g = dy;
    for (int i = m->nchild - 1; i >= 0; i--) {
        eng_module *ch = m->child[i];
        const float *xin = i ? m->child[i - 1]->y : x;
        if ((ch->y_alias && ch->nparam == 0 && ch->nchild == 0) || ch->grad_passed) {
            /* a view (flatten, reshape), or a relu whose gradient the next
             * child took: the gradient passes through unchanged */
            if (i == 0 && dx)
                ENG_TRY(c->b->ops->copy(c->b, dx, g, (size_t)(eng_shape_numel(&ch->in) * c->batch) * sizeof(float)));
            continue;
        }
        float *target = i ? (g == pp[0] ? pp[1] : pp[0]) : dx;
        const double t0 = c->profile ? prof_now(c) : 0.0;
        ENG_TRY(ch->ops->backward(ch, c, xin, g, target));
        if (c->profile)
            ch->prof_s[1] += prof_now(c) - t0;
        g = target;
    }
    return 0;
}

static const eng_module_ops seq_ops = {
    .type = "sequential",
    .forward = seq_forward,
    .backward = seq_backward,
    .workspace = seq_workspace,
};

/* Chains that are a named building block of a template keep their own type
 * name in the summary. */
static const eng_module_ops chain_ops[] = {
    {"padding_block", seq_forward, seq_backward, seq_workspace, NULL, NULL},
    {"block", seq_forward, seq_backward, seq_workspace, NULL, NULL},
};

eng_module *eng_chain_new(const char *name, const char *type, const eng_shape *in)
{
    const eng_module_ops *ops = &seq_ops;
    for (size_t i = 0; i < sizeof chain_ops / sizeof chain_ops[0]; i++)
        if (!strcmp(chain_ops[i].type, type))
            ops = &chain_ops[i];
    eng_module *m = eng_module_alloc(sizeof(eng_module), ops, name, in);
    if (m)
        m->y_alias = true;
    return m;
}

eng_module *eng_sequential_new(const char *name, const eng_shape *in)
{
    return eng_chain_new(name, "sequential", in);
}

int eng_seq_append(eng_module *seq, eng_module *child)
{
    assert(!child || eng_shape_equal(&child->in, &seq->out)); /* each child takes the chain's output so far */
    int rc = eng_module_add_child(seq, child);
    if (rc == 0)
        seq->out = child->out;
    return rc;
}

/* ---- residual ---- */

typedef struct residual_module {
    eng_module base;
    eng_act post;
} residual_module;

static int res_forward(eng_module *m, const eng_step_ctx *c, const float *x)
{
    residual_module *r = (residual_module *)m;
    eng_module *inner = m->child[0];
    int64_t n = eng_shape_numel(&m->out) * c->batch;
    ENG_TRY(inner->ops->forward(inner, c, x));
    m->y = m->y_store;
    ENG_TRY(c->b->ops->add(c->b, n, x, inner->y, m->y));
    if (r->post != ENG_ACT_NONE)
        ENG_TRY(c->b->ops->act_forward(c->b, r->post, 0.0f, n, m->y, m->y));
    return 0;
}

static size_t res_workspace(const eng_module *m, eng_backend *b, int64_t batch)
{
    (void)b;
    const residual_module *r = (const residual_module *)m;
    if (r->post == ENG_ACT_NONE)
        return 0;
    return (size_t)eng_size_align64(eng_size_mul(eng_size_mul(eng_shape_numel(&m->out), batch), sizeof(float)));
}

static int res_backward(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx)
{
    residual_module *r = (residual_module *)m;
    eng_module *inner = m->child[0];
    int64_t n = eng_shape_numel(&m->out) * c->batch;
    const float *dsum = dy;
    if (r->post != ENG_ACT_NONE) {
        /* ReLU's derivative from its output: y > 0 exactly where the sum was */
        float *d = (float *)m->ws;
        ENG_TRY(c->b->ops->act_backward(c->b, r->post, 0.0f, n, m->y, m->y, dy, d));
        dsum = d;
    }
    ENG_TRY(inner->ops->backward(inner, c, x, dsum, dx));
    if (dx)
        ENG_TRY(c->b->ops->add(c->b, n, dx, dsum, dx));
    return 0;
}

static const eng_module_ops res_ops = {
    .type = "residual",
    .forward = res_forward,
    .backward = res_backward,
    .workspace = res_workspace,
};

eng_module *eng_residual_new(const char *name, eng_module *inner, eng_act post)
{
    if (!inner)
        return NULL;
    assert(eng_shape_equal(&inner->out, &inner->in));
    assert(post == ENG_ACT_NONE || post == ENG_ACT_RELU); /* res_backward takes ReLU's derivative from y */
    residual_module *r = (residual_module *)eng_module_alloc(sizeof *r, &res_ops, name, &inner->in);
    if (!r) {
        eng_module_free(inner);
        return NULL;
    }
    r->post = post;
    if (eng_module_add_child(&r->base, inner) < 0) {
        eng_module_free(&r->base);
        return NULL;
    }
    r->base.out = inner->in;
    r->base.flops = eng_size_mul(eng_shape_numel(&inner->in), post == ENG_ACT_NONE ? 1 : 2);
    return &r->base;
}
