/* Learning-rate schedules with linear warm-up. */
#include <math.h>

#include "engine/optim.h"

float eng_schedule_lr(const eng_train_desc *t, int64_t step, int64_t steps_per_epoch)
{
    double lr = t->lr;
    int64_t warmup = (int64_t)llround((double)t->warmup_epochs * (double)steps_per_epoch);
    if (t->schedule == ENG_SCHED_COSINE) {
        int64_t total = t->epochs * steps_per_epoch - warmup;
        if (step >= warmup && total > 0) {
            double progress = (double)(step - warmup) / (double)total;
            lr = t->min_lr + (t->lr - t->min_lr) * 0.5 * (1.0 + cos(M_PI * progress));
        }
    } else if (t->schedule == ENG_SCHED_STEP && t->step_epochs > 0 && steps_per_epoch > 0) {
        int64_t epoch = step / steps_per_epoch;
        lr *= pow((double)t->gamma, (double)(epoch / t->step_epochs));
    }
    if (step < warmup)
        lr *= (double)(step + 1) / (double)warmup;
    return (float)lr;
}
