/* The trainer's state, shared by train.c and checkpoint.c (engine-internal). */
#ifndef ENG_TRAIN_INTERNAL_H
#define ENG_TRAIN_INTERNAL_H

#include "engine/optim.h"
#include "engine/train.h"

typedef struct eng_split_dev {
    int64_t n;
    bool f32;         /* images holds float32 values */
    uint8_t *images;  /* backend memory, n * numel bytes (floats when f32) */
    int32_t *labels;  /* backend memory */
} eng_split_dev;

struct eng_trainer {
    eng_data_desc data;
    eng_model_desc model_desc;
    eng_train_desc train;
    eng_backend *b;

    eng_shape shape;
    int64_t classes;
    eng_split_dev train_dev, test_dev;
    int64_t batch, eval_batch, steps_per_epoch;

    eng_model *model;
    eng_optimizer *opt;

    int64_t epochs_done;
    double best_acc;
    int64_t best_epoch;

    /* the epoch's plan, on the host and on the backend */
    int32_t *order;        /* host: this epoch's permutation */
    int16_t *aug_host;     /* host: this epoch's augmentation draws, 3 per sample in order */
    int32_t *order_dev;    /* backend copies */
    int16_t *aug_dev;
    int32_t *eval_idx_dev; /* 0..n_test-1 */
    /* per-step buffers */
    int32_t *labels_dev;
    float *x_dev, *dlogits_dev;
    double *acc_dev;    /* [loss sum, hits] */
    double *loss_trace_dev; /* the running loss sum after each step of the epoch (stop_on_nonfinite) */

    /* the captured full-batch training step (backends with eng_graph_ops) */
    bool graph_allowed;  /* the backend can capture and nothing rules it out */
    bool graph_warm;     /* one full step ran op by op: the libraries have planned its shapes */
    void *graph;         /* the captured step, replayed for every later full batch */
    int64_t graph_replays, eager_steps;
    char graph_off[160]; /* why steps are not captured */
};

#endif
