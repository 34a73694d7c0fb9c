/* Device slots of the service and where a queued run may go: the CPU's
 * slots and each usable GPU's slots, which the scheduler fills. Pure
 * bookkeeping (GPU discovery is serve_discover.c). */
#ifndef SVC_SLOTS_H
#define SVC_SLOTS_H

#include <stdbool.h>
#include <stddef.h>

#define SVC_MAX_GPUS 64

/* The --devices setting: auto (every GPU found), cpu (no GPU) or a list of
 * GPU ordinals. The CPU's own slots are cpu_slots, whatever this says. */
typedef struct svc_device_filter {
    bool all;
    int n;                      /* with !all: GPUs in the list (0 for "cpu") */
    int ordinals[SVC_MAX_GPUS];
} svc_device_filter;

/* "auto", "cpu", "0,1" (also "cpu,0" - the "cpu" adds nothing). 0, or
 * SVC_EUSAGE with svc_last_error saying what is wrong. */
int svc_devices_parse(const char *s, svc_device_filter *f);

typedef struct svc_slots {
    int n_host_gpus;               /* GPUs found on the host */
    int n_gpus;                    /* GPUs this service uses */
    int gpu_ordinal[SVC_MAX_GPUS]; /* their host ordinals */
    int gpu_used[SVC_MAX_GPUS];
    int gpu_slots;                 /* per GPU */
    int cpu_slots, cpu_used;
} svc_slots;

/* Builds the table; warns (into warn, "" if none) about listed GPUs the
 * host lacks. */
void svc_slots_init(svc_slots *s, int n_host_gpus, const svc_device_filter *f, int cpu_slots, int gpu_slots,
                    char *warn, size_t warnlen);
/* Keeps the slots in use when the settings change (SIGHUP). */
void svc_slots_reconfigure(svc_slots *s, const svc_device_filter *f, int cpu_slots, int gpu_slots, char *warn,
                           size_t warnlen);

typedef struct svc_placement {
    int gpu;         /* index into gpu_ordinal, or -1 for the CPU */
    int ordinal;     /* host ordinal, -1 for the CPU */
    char device[32]; /* "cpu" or "cuda:N" (host numbering) */
} svc_placement;

typedef enum svc_place_result {
    SVC_PLACE_OK = 0,  /* *p says where */
    SVC_PLACE_BUSY,    /* a device could serve it once a slot is free */
    SVC_PLACE_NEVER,   /* no device here can serve it (until the settings change) */
} svc_place_result;

/* Where a run asking for `requested` (auto | cpu | cuda | cuda:N; NULL or
 * "" is auto) can start now. `auto` takes a free GPU, else the CPU. When it
 * cannot start, note says why, e.g. "waiting: no cuda device 3 on this host". */
svc_place_result svc_slots_place(const svc_slots *s, const char *requested, svc_placement *p, char *note,
                                 size_t notelen);
void svc_slots_take(svc_slots *s, const svc_placement *p);
void svc_slots_release(svc_slots *s, const svc_placement *p);

#endif
