/* Estimates of how long a run takes on a device: the run's cost from the
 * engine (forward FLOPs per sample, samples per epoch, epochs) over the
 * device's speed, learned from the epochs already in the database.
 *
 * An epoch's work is flops x (3 x training samples + test samples): a
 * training step is about three forward passes (forward, and a backward
 * that costs two), evaluation one. A device's speed is work over wall
 * seconds, learned per device ("cpu", "cuda:0") for the same experiment
 * (run name and model FLOPs) where it ran before, else per model template
 * and size class (forward FLOPs per sample in half-decades: models of one
 * template and size run at similar efficiency), falling back - where that
 * has no epochs yet - to the device and template, the device kind (any
 * GPU) and template and size, the kind and template, the device, the kind,
 * and last to a first guess (svc_speed_guess). docs/service.md lists them. */
#ifndef SVC_ESTIMATE_H
#define SVC_ESTIMATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/plans.h"

/* First guesses, in FLOP/s of the work above, for a device never measured:
 * deliberately modest (effective training rates of the seed's models are
 * 0.6-3 TFLOP/s on one GPU and 30-60 GFLOP/s per core of a recent CPU). */
#define SVC_GUESS_CPU_FLOPS_PER_THREAD 20e9
#define SVC_GUESS_GPU_FLOPS_PER_SM 15e9
#define SVC_GUESS_GPU_FLOPS 1.5e12 /* when the multiprocessors are unknown */
/* What a worker needs on a GPU beside the engine's estimate: the CUDA
 * context, cuBLAS/cuDNN handles and workspaces. */
#define SVC_GPU_OVERHEAD_BYTES (768ll << 20)

/* The cost of one run from its spec text (one entry: a plain spec or a
 * sweep combination's effective spec, svc_run_spec_text), without reading its data:
 * FLOPs from the model the engine builds, sample counts from the dataset's
 * standard sizes (synthetic: as described; a limit applies), and the
 * memory on a GPU (the engine's estimate at the batch size, the dataset
 * resident on the device, SVC_GPU_OVERHEAD_BYTES). Unknown parts are -1
 * (a dataset kind whose size is only known from its files). 0, or SVC_EINVAL
 * (the spec does not validate or build; svc_last_error says why), SVC_ENOMEM. */
int svc_cost_of_spec(const char *spec_text, const char *spec_path, db_cost *out);

/* FLOPs of one epoch; < 0 when the cost is unknown. */
double svc_epoch_work(const db_cost *c);
/* The size class of a model (forward FLOPs per sample in half-decades). */
int svc_size_class(int64_t flops);

/* Learned speeds: the sums over the samples' epochs, per (device, run
 * name, model FLOPs) - the template and size class follow from the model. */
typedef struct svc_speed_cell {
    char device[32];
    char name[96];
    int64_t flops;
    char tmpl[24];
    int cls;
    double work, seconds;
    int64_t epochs;
    double overhead;     /* summed over runs_timed: a run's time beyond its epochs */
    int64_t runs_timed;
} svc_speed_cell;

typedef struct svc_speeds {
    svc_speed_cell *cells;
    size_t n, cap;
} svc_speeds;

void svc_speeds_clear(svc_speeds *t); /* frees the cells */
/* Replaces the table by what the samples say. 0 or SVC_ENOMEM. */
int svc_speeds_learn(svc_speeds *t, const db_speed_sample *v, size_t n);

/* How a speed was found, from the most specific to the first guess. */
typedef enum svc_speed_basis {
    SVC_SPEED_RUN = 0,       /* this device, the same experiment (name and FLOPs) */
    SVC_SPEED_SAME,          /* this device, template and size class */
    SVC_SPEED_TEMPLATE,      /* this device and template */
    SVC_SPEED_KIND_SAME,     /* another device of the kind, same template and size */
    SVC_SPEED_KIND_TEMPLATE, /* another device of the kind, same template */
    SVC_SPEED_DEVICE,        /* this device, any template */
    SVC_SPEED_KIND,          /* the kind, any template */
    SVC_SPEED_GUESS,         /* never measured */
} svc_speed_basis;

/* The speed (FLOP/s) of `device` ("cpu" or "cuda:N") for the run called
 * `name` (NULL: none) of a model of template `tmpl` (NULL: unknown) with
 * `flops` per sample; `guess` is the device's first guess. *basis (may be
 * NULL) says where it came from. */
double svc_speed_of(const svc_speeds *t, const char *device, const char *name, const char *tmpl, int64_t flops,
                    double guess, svc_speed_basis *basis);

/* The mean time a run on `device` took beyond its epochs (starting the
 * worker, loading data, building the model, ending): from runs done in one
 * attempt on that device, else on its kind, else 0. */
double svc_overhead_of(const svc_speeds *t, const char *device);

/* First guesses: the CPU with `threads` threads per run, a GPU with
 * `multiprocessors` (<= 0: unknown). */
double svc_speed_guess_cpu(int threads);
double svc_speed_guess_gpu(int multiprocessors);

/* Seconds for `epochs` epochs of a run of cost c at `speed`; NAN if unknown. */
double svc_estimate_seconds(const db_cost *c, double epochs, double speed);

#endif
