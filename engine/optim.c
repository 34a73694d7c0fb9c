/* Optimiser state and steps (the arithmetic is the backend's adam/sgd ops). */
#include "engine/optim.h"

#include <stdlib.h>

#include "engine/error.h"

struct eng_optimizer {
    eng_train_desc t;
    eng_backend *b;
    int64_t n, steps;
    float *state[2];
    int nstate;
    double *sumsq; /* backend scalar for clipping */
};

int eng_optimizer_new(const eng_train_desc *t, eng_backend *b, int64_t n, eng_optimizer **out)
{
    *out = NULL;
    eng_optimizer *o = calloc(1, sizeof *o);
    if (!o)
        return eng_error(ENG_ENOMEM, "out of memory creating the optimizer");
    o->t = *t;
    o->b = b;
    o->n = n;
    o->nstate = t->optimizer == ENG_OPT_SGD ? (t->momentum != 0.0f ? 1 : 0) : 2;
    int rc = 0;
    for (int i = 0; rc == 0 && i < o->nstate; i++)
        rc = eng_alloc_floats(b, n ? n : 1, &o->state[i]);
    if (rc == 0)
        rc = b->ops->alloc(b, sizeof(double), (void **)&o->sumsq);
    if (rc < 0) {
        eng_optimizer_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

void eng_optimizer_free(eng_optimizer *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->nstate; i++)
        o->b->ops->free(o->b, o->state[i]);
    o->b->ops->free(o->b, o->sumsq);
    free(o);
}

void eng_optimizer_next(eng_optimizer *o, float lr, eng_step_scalars *s)
{
    o->steps++;
    *s = (eng_step_scalars){
        .adam = {.lr = lr, .beta1 = o->t.beta1, .beta2 = o->t.beta2, .eps = o->t.eps,
                 .weight_decay = o->t.weight_decay, .step = o->steps, .decoupled = o->t.optimizer == ENG_OPT_ADAMW},
        .sgd = {.lr = lr, .momentum = o->t.momentum, .weight_decay = o->t.weight_decay, .nesterov = o->t.nesterov,
                .first = o->steps == 1},
    };
}

int eng_optimizer_apply(eng_optimizer *o, float *params, float *grads, const eng_step_scalars *s)
{
    eng_backend *b = o->b;
    int rc;
    if (o->t.grad_clip > 0.0f) {
        if ((rc = b->ops->sumsq(b, o->n, grads, o->sumsq)) < 0)
            return rc;
        if ((rc = b->ops->clip_by_norm(b, o->n, grads, o->sumsq, o->t.grad_clip)) < 0)
            return rc;
    }
    if (o->t.optimizer == ENG_OPT_SGD)
        return b->ops->sgd_step(b, o->n, params, grads, o->nstate ? o->state[0] : NULL, &s->sgd);
    return b->ops->adam_step(b, o->n, params, grads, o->state[0], o->state[1], &s->adam);
}

int eng_optimizer_step(eng_optimizer *o, float *params, float *grads, float lr)
{
    eng_step_scalars s;
    eng_optimizer_next(o, lr, &s);
    return eng_optimizer_apply(o, params, grads, &s);
}

int64_t eng_optimizer_steps(const eng_optimizer *o) { return o->steps; }
void eng_optimizer_set_steps(eng_optimizer *o, int64_t steps) { o->steps = steps; }
int eng_optimizer_state_count(const eng_optimizer *o) { return o->nstate; }

float *eng_optimizer_state(eng_optimizer *o, int i, const char **name)
{
    static const char *const adam_names[] = {"exp_avg", "exp_avg_sq"};
    if (i < 0 || i >= o->nstate)
        return NULL;
    if (name)
        *name = o->t.optimizer == ENG_OPT_SGD ? "momentum_buffer" : adam_names[i];
    return o->state[i];
}
