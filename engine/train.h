/* The trainer: one run's dataset, model, optimizer and position, epoch by
 * epoch. Everything a resumed run needs is in its checkpoint, and every
 * random draw depends only on (seed, epoch, step), so a run resumed from the
 * checkpoint of epoch k produces bit for bit what an uninterrupted run does. */
#ifndef ENG_TRAIN_H
#define ENG_TRAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/desc.h"
#include "engine/model.h"
#include "engine/weights.h"

typedef struct eng_trainer eng_trainer;

/* What one epoch measured. Accuracies are fractions in [0, 1]. */
typedef struct eng_epoch_stats {
    int64_t epoch;          /* 1-based */
    double train_loss, train_acc;
    double test_loss, test_acc;
    double lr;              /* learning rate of the epoch's last step */
    double seconds;         /* wall time: training and evaluation */
    double train_seconds;
    double samples_per_sec; /* training images per second */
    int64_t train_samples, test_samples;
} eng_epoch_stats;

/* A progress report inside an epoch. */
typedef struct eng_progress {
    int64_t epoch, step, steps; /* step: batches done in this epoch */
    double loss;                /* mean training loss so far this epoch (NaN where reading it would
                                   wait for a GPU) */
    double acc;                 /* training accuracy so far this epoch (likewise) */
    double samples_per_sec;
    double elapsed;             /* seconds since the epoch started */
} eng_progress;

typedef struct eng_train_hooks {
    void *ctx;
    /* called about every `progress_interval` seconds and after the last step */
    void (*progress)(void *ctx, const eng_progress *p);
    double progress_interval;
    /* polled between steps (a signal handler sets it): non-zero stops the
     * epoch with ENG_EINTR */
    volatile sig_atomic_t *stop;
} eng_train_hooks;

/* Loads the data, builds and binds the model on b, creates the optimizer and
 * initialises the parameters (PyTorch's defaults from the seed, then
 * model.init_from when set). b must outlive the trainer. */
int eng_trainer_new(const eng_data_desc *data, const eng_model_desc *model, const eng_train_desc *train,
                    eng_backend *b, eng_trainer **out);
void eng_trainer_free(eng_trainer *t);

eng_model *eng_trainer_model(eng_trainer *t);
int64_t eng_trainer_epochs_done(const eng_trainer *t);
int64_t eng_trainer_steps_per_epoch(const eng_trainer *t);
int64_t eng_trainer_train_samples(const eng_trainer *t);
int64_t eng_trainer_test_samples(const eng_trainer *t);

/* Trains the next epoch and evaluates on the test split. ENG_EINTR when the
 * hooks asked to stop (the epoch is not counted and the trainer's state is
 * the one before it only if it is reloaded from the last checkpoint). */
int eng_trainer_run_epoch(eng_trainer *t, const eng_train_hooks *hooks, eng_epoch_stats *out);

/* Evaluates on the test split: mean loss and accuracy. */
int eng_trainer_evaluate(eng_trainer *t, double *loss, double *acc);

/* Checkpoints (safetensors): parameters and buffers under their summary
 * names, "<bn>.num_batches_tracked", the optimizer state as
 * "optimizer.<state>.<name>", and metadata (epoch, steps, seed, best
 * accuracy, the backend's kernel choices as "kernels", the caller's
 * key/value pairs). Written atomically. */
int eng_trainer_save(eng_trainer *t, const char *path, const eng_kv *extra, int nextra);
/* Restores a checkpoint written by eng_trainer_save for the same model and
 * data: afterwards the trainer continues exactly where the saved one was,
 * with the kernels the saved run chose. */
int eng_trainer_load(eng_trainer *t, const char *path);

/* How the training steps run. On a backend that can capture (the CUDA
 * backend's graphs), the full-batch training step - forward, loss, backward,
 * clipping, the optimizer update - is captured once, after one full step run
 * op by op, and replayed for every later full batch of every epoch; only
 * the batch gather (which points into the epoch's order) and the step's
 * optimizer scalars are queued per step, without host synchronisation. The
 * last partial batch, evaluation, and models with dropout (whose masks
 * change every step) run op by op; EPOCHD_NO_GRAPHS=1 in the environment
 * turns capture off. A failed capture is not an error: the trainer notes why
 * and goes on op by op. */
typedef struct eng_graph_stats {
    bool captured;        /* a captured step exists */
    int64_t replays;      /* training steps run as a replay (the captured step included) */
    int64_t eager_steps;  /* training steps run op by op */
    char off_reason[160]; /* why steps are not captured ("" when they are or still may be) */
} eng_graph_stats;
void eng_trainer_graph_stats(const eng_trainer *t, eng_graph_stats *out);

/* Best test accuracy so far and its epoch (0 if none). */
double eng_trainer_best_acc(const eng_trainer *t, int64_t *epoch);

#endif
