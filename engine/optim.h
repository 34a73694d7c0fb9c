/* Optimisers over the model's flat parameter buffer: Adam (L2 weight decay
 * added to the gradient, as torch.optim.Adam), AdamW, SGD with momentum and
 * Nesterov; optional global-norm gradient clipping before each step. */
#ifndef ENG_OPTIM_H
#define ENG_OPTIM_H

#include <stdint.h>

#include "engine/backend.h"
#include "engine/desc.h"

typedef struct eng_optimizer eng_optimizer;

int eng_optimizer_new(const eng_train_desc *t, eng_backend *b, int64_t n, eng_optimizer **out);
void eng_optimizer_free(eng_optimizer *o);

/* Clips the gradients to t->grad_clip (if set) and applies one update with
 * learning rate lr. Everything stays on the backend. */
int eng_optimizer_step(eng_optimizer *o, float *params, float *grads, float lr);

/* eng_optimizer_step in two halves, for a step captured as a graph:
 * eng_optimizer_next counts the step and writes the scalars it uses
 * (learning rate lr, Adam's step count, SGD's first-step flag) into *s;
 * eng_optimizer_apply queues the clipping and the update with them. A
 * replayed graph gets *s at launch instead of a new apply.
 * eng_optimizer_step(o, p, g, lr) is next(o, lr, &s) then apply(o, p, g, &s). */
void eng_optimizer_next(eng_optimizer *o, float lr, eng_step_scalars *s);
int eng_optimizer_apply(eng_optimizer *o, float *params, float *grads, const eng_step_scalars *s);

/* Steps taken so far (Adam's bias correction uses it). */
int64_t eng_optimizer_steps(const eng_optimizer *o);
void eng_optimizer_set_steps(eng_optimizer *o, int64_t steps);

/* State buffers for checkpoints: Adam/AdamW "exp_avg", "exp_avg_sq";
 * SGD with momentum "momentum_buffer"; each n floats of backend memory. */
int eng_optimizer_state_count(const eng_optimizer *o);
float *eng_optimizer_state(eng_optimizer *o, int i, const char **name);

/* Learning rate of global step `step` (0-based): linear warm-up over
 * warmup_epochs * steps_per_epoch steps, factor (step + 1) / warmup_steps,
 * times the schedule: constant; cosine from lr to min_lr over the steps after
 * the warm-up; step: gamma ^ floor(epoch / step_epochs). */
float eng_schedule_lr(const eng_train_desc *t, int64_t step, int64_t steps_per_epoch);

#endif
