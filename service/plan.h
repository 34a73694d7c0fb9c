/* The placement planner: a pure function from (the queue, the devices and
 * what they run, the estimates) to where each queued run goes - started
 * now on a device, waiting for one (with its expected start and finish), or
 * waiting for something no device here offers. No database, no clock, no
 * event loop: the service (placement.c) gathers the inputs, the simulator in
 * tests/service replays traces through the same function.
 *
 * Two policies (the `placement` setting, docs/service.md):
 *   first_free       the first free slot the run's `device` allows, in queue
 *                    order - exactly svc_slots_place (the decisions are
 *                    that function's); its plan is what would follow if
 *                    every later slot went the same way.
 *   earliest_finish  list scheduling by expected finish (the rule behind
 *                    HEFT): each run in queue order goes to the device where
 *                    it would finish first, counting the wait for a busy one,
 *                    so an `auto` run waits for a GPU when that is sooner
 *                    than a free CPU slot. The greedy plan is then improved
 *                    by moving one of the first runs to another device and
 *                    replanning the rest greedily, and compared with the
 *                    first_free plan and the previous pass's plan; the best
 *                    by the objective below is followed. GPU memory counts:
 *                    a run goes to a GPU only when the engine's memory
 *                    estimate fits beside the runs already there.
 *
 * Objective (smaller is better): the sum of expected finish times of the
 * highest priority's runs, then of the next priority's, ..., then the
 * makespan. Priorities come first (a plan never delays a higher priority's
 * runs to speed up lower ones); within a priority the queue's order (age)
 * decides who picks first on a device. */
#ifndef SVC_PLAN_H
#define SVC_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/slots.h"

typedef enum svc_policy {
    SVC_POLICY_EARLIEST_FINISH = 0,
    SVC_POLICY_FIRST_FREE,
} svc_policy;

const char *svc_policy_name(svc_policy p); /* "earliest_finish", "first_free" */
/* 0, or SVC_EUSAGE with svc_last_error naming the choices. */
int svc_policy_parse(const char *s, svc_policy *out);

/* Devices are numbered 0 .. n_gpus-1 for the GPUs of the slots table (in
 * its order: slots->gpu_ordinal[i]) and n_gpus for the CPU. */
static inline int svc_plan_cpu(const svc_slots *s) { return s->n_gpus; }

/* A run in flight. */
typedef struct svc_plan_busy {
    int device;        /* its device number */
    double remaining;  /* expected seconds left (>= 0) */
    int64_t memory;    /* bytes it holds on a GPU; <= 0: unknown (counted as 0) */
} svc_plan_busy;

/* A queued run; jobs are given in queue order (priority, then age). */
typedef struct svc_plan_job {
    int64_t id;
    const char *requested;  /* auto | cpu | cuda | cuda:N (NULL: auto) */
    int64_t priority;
    int64_t memory;         /* bytes it would need on a GPU; <= 0: unknown (fits anywhere) */
    const double *seconds;  /* its expected duration on each device (n_gpus + 1 values); NAN: unknown */
} svc_plan_job;

typedef struct svc_plan_input {
    svc_policy policy;
    const svc_slots *slots;
    /* Per GPU (n_gpus values): bytes the service's runs may use there in
     * all - free memory plus what its own runs hold; < 0 or a NULL array:
     * not limited. first_free ignores memory, as it always did. */
    const int64_t *gpu_memory;
    const svc_plan_busy *busy;
    size_t n_busy;
    const svc_plan_job *jobs;
    size_t n_jobs;
    /* Optional: the device each job was planned on by the previous pass
     * (-1: none), a candidate kept when it is still at least as good. */
    const int *previous;
    /* Optional: cap on placements simulated while improving the plan (a
     * job placed once is one unit); 0: the default (200,000). */
    long budget;
} svc_plan_input;

typedef enum svc_plan_action {
    SVC_PLAN_START = 0, /* start now: `place` says where */
    SVC_PLAN_WAIT,      /* a device can take it later (device >= 0), or memory may free up (device -1) */
    SVC_PLAN_NEVER,     /* no device here can take it until the settings change */
} svc_plan_action;

typedef struct svc_plan_out {
    svc_plan_action action;
    svc_placement place;  /* START: where (as svc_slots_place gives it) */
    int device;           /* the planned device, -1: none */
    double start, finish; /* expected, in seconds from now; NAN: unknown */
    double cpu_seconds;   /* its expected duration on the CPU when the CPU may take it, else NAN */
    char note[200];       /* why it waits ("" for START) */
} svc_plan_out;

/* Plans every job into out[0 .. n_jobs-1]. 0, or SVC_ENOMEM. */
int svc_plan_make(const svc_plan_input *in, svc_plan_out *out);

/* "cuda:0" / "cpu" for a device number. */
void svc_plan_device_name(const svc_slots *s, int device, char *buf, size_t len);

#endif
