/* A test-only backend that captures like the CUDA backend: it wraps the CPU
 * backend and implements eng_graph_ops (engine/backend.h) by recording
 * every operation called between begin and end (arguments and
 * descriptions copied by value, nothing run) and replaying the record on
 * launch, with the launch's step scalars in place of the recorded
 * optimiser arguments. As on the GPU, alloc, free, upload, download and sync
 * are refused while capturing and make end fail, and a failed
 * operation is carried to end. So the trainer's graph path runs, and
 * is checked bit for bit, on a machine without a GPU. */
#ifndef TEST_REC_BACKEND_H
#define TEST_REC_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/backend.h"

/* What the recording backend saw. */
typedef struct rec_stats {
    int64_t begins, ends, launches, frees; /* eng_graph_ops calls */
    int64_t graphs_live;                   /* made and not yet freed */
    int64_t failed_captures;               /* end calls that failed */
    int64_t refused;                       /* host operations refused while capturing */
    int64_t recorded;                      /* operations recorded in the last successful capture */
    int64_t optimiser_ops;                 /* adam/sgd steps in that capture */
    int64_t replayed_ops;                  /* operations run by replays, all together */
    int64_t dropouts_recorded;             /* dropout calls recorded, all captures together */
    /* The order of events: 'U' upload, 'D' download, 'S' sync, 'A' alloc,
     * 'F' free, 'g' batch_gather, 'o' another operation run op by op,
     * 'B' begin, 'E' end, 'L' launch (up to 1 MiB). */
    char *log;
    size_t log_len;
} rec_stats;

typedef struct rec_options {
    eng_device_kind kind;   /* reported as b->kind: ENG_DEVICE_CUDA to act as a GPU */
    int64_t fail_op_at;     /* > 0: the n-th operation recorded in a capture fails (1-based) */
    bool frozen_scalars;    /* a broken backend: replays keep the recorded optimiser arguments */
} rec_options;

/* A recording backend over a new CPU backend with `threads` threads. */
int rec_backend_new(int threads, const rec_options *opt, eng_backend **out);
/* The statistics so far (b must be a recording backend). */
const rec_stats *rec_backend_stats(eng_backend *b);

#endif
