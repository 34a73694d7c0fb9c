/* Convolution plans: for each convolution shape the algorithms and
 * workspace sizes are chosen once (from cuDNN's heuristics) and kept in a
 * small table. This file is the library-neutral part (the table, the shape
 * checks, the choice among candidate algorithms), testable without a GPU;
 * conv.c fills candidates from cuDNN and owns the descriptors. */
#ifndef GPU_CONV_PLAN_H
#define GPU_CONV_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "engine/backend.h"

#define GPU_CONV_PLANS_MAX 128

enum { GPU_CONV_FWD = 0, GPU_CONV_BWD_DATA = 1, GPU_CONV_BWD_FILTER = 2 };

/* One candidate algorithm, as cuDNN's *AlgoPerf_t reports it. */
typedef struct gpu_algo_perf {
    int algo;
    bool ok;            /* status == success */
    bool deterministic;
    int math;           /* cudnnMathType_t */
    size_t memory;      /* workspace bytes */
} gpu_algo_perf;

typedef struct gpu_algo_rules {
    bool require_deterministic;
    int required_math;      /* -1: any; else the only accepted math type */
    int refused_math;       /* -1: none; else a math type never accepted */
    unsigned excluded;      /* bit a set: algorithm a is avoided (dropped only if nothing else qualifies) */
    size_t ws_limit;        /* largest workspace accepted */
} gpu_algo_rules;

/* Index of the first candidate (cuDNN lists them best first) that meets the
 * rules, preferring ones not in `excluded`; -1 when none qualifies. */
int gpu_algo_pick(const gpu_algo_perf *p, int n, const gpu_algo_rules *r);

typedef struct gpu_conv_plan {
    eng_conv_desc key;
    bool sized;   /* planned through conv2d_workspace: the caller provides its workspace */
    int algo[3];  /* GPU_CONV_FWD, _BWD_DATA, _BWD_FILTER */
    int math[3];
    size_t ws[3];
    void *lib;    /* library objects (descriptors), owned by conv.c */
} gpu_conv_plan;

typedef struct gpu_conv_plans {
    gpu_conv_plan v[GPU_CONV_PLANS_MAX];
    int n;
} gpu_conv_plans;

/* 0 when d is a consistent convolution whose sizes fit cuDNN's int
 * dimensions; ENG_EINVAL with a message otherwise. */
int gpu_conv_desc_check(const eng_conv_desc *d);
bool gpu_conv_same(const eng_conv_desc *a, const eng_conv_desc *b);
bool gpu_conv_same_geometry(const eng_conv_desc *a, const eng_conv_desc *b); /* all but n */

gpu_conv_plan *gpu_conv_plans_find(gpu_conv_plans *t, const eng_conv_desc *d);
/* Appends an empty plan for d; ENG_ELIMIT when the table is full. */
int gpu_conv_plans_add(gpu_conv_plans *t, const eng_conv_desc *d, gpu_conv_plan **out);
/* Workspace one plan needs: the largest of its three algorithms'. */
size_t gpu_conv_plan_workspace(const gpu_conv_plan *p);
/* Workspace the caller is known to provide for d's geometry: the largest of
 * the sized plans with the same geometry (any batch size); 0 if none. A
 * shape first seen by an operation (say, a smaller last batch) is planned
 * within this budget. */
size_t gpu_conv_plans_budget(const gpu_conv_plans *t, const eng_conv_desc *d);

#ifdef __cplusplus
}
#endif

#endif
