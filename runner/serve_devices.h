/* Device slots of the service and where a queued run may go: the CPU's
 * slots and each usable GPU's slots, which the scheduler fills. Pure
 * bookkeeping (GPU discovery is serve_discover.c). */
#ifndef RUN_SERVE_DEVICES_H
#define RUN_SERVE_DEVICES_H

#include <stdbool.h>
#include <stddef.h>

#define RUN_MAX_GPUS 64

/* The --devices setting: auto (every GPU found), cpu (no GPU) or a list of
 * GPU ordinals. The CPU's own slots are cpu_slots, whatever this says. */
typedef struct run_device_filter {
    bool all;
    int n;                      /* with !all: GPUs in the list (0 for "cpu") */
    int ordinals[RUN_MAX_GPUS];
} run_device_filter;

/* "auto", "cpu", "0,1" (also "cpu,0" - the "cpu" adds nothing). 0, or -1
 * with a message in err. */
int run_devices_parse(const char *s, run_device_filter *f, char *err, size_t errlen);

typedef struct run_slots {
    int n_host_gpus;               /* GPUs found on the host */
    int n_gpus;                    /* GPUs this service uses */
    int gpu_ordinal[RUN_MAX_GPUS]; /* their host ordinals */
    int gpu_used[RUN_MAX_GPUS];
    int gpu_slots;                 /* per GPU */
    int cpu_slots, cpu_used;
} run_slots;

/* Builds the table; warns (into warn, "" if none) about listed GPUs the
 * host lacks. */
void run_slots_init(run_slots *s, int n_host_gpus, const run_device_filter *f, int cpu_slots, int gpu_slots,
                    char *warn, size_t warnlen);
/* Keeps the slots in use when the settings change (SIGHUP). */
void run_slots_reconfigure(run_slots *s, const run_device_filter *f, int cpu_slots, int gpu_slots, char *warn,
                           size_t warnlen);

typedef struct run_placement {
    int gpu;         /* index into gpu_ordinal, or -1 for the CPU */
    int ordinal;     /* host ordinal, -1 for the CPU */
    char device[32]; /* "cpu" or "cuda:N" (host numbering) */
} run_placement;

typedef enum run_place_result {
    RUN_PLACE_OK = 0,  /* *p says where */
    RUN_PLACE_BUSY,    /* a device could serve it once a slot is free */
    RUN_PLACE_NEVER,   /* no device here can serve it (until the settings change) */
} run_place_result;

/* Where a run asking for `requested` (auto | cpu | cuda | cuda:N; NULL or
 * "" is auto) can start now. `auto` takes a free GPU, else the CPU. When it
 * cannot start, note says why, e.g. "waiting: no cuda device 3 on this host". */
run_place_result run_slots_place(const run_slots *s, const char *requested, run_placement *p, char *note,
                                 size_t notelen);
void run_slots_take(run_slots *s, const run_placement *p);
void run_slots_release(run_slots *s, const run_placement *p);

#endif
