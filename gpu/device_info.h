/* What `epochd devices` says of one CUDA device. A plain struct without CUDA
 * types: the executable reads it from the module (gpu/module.h). */
#ifndef GPU_DEVICE_INFO_H
#define GPU_DEVICE_INFO_H

#include <stddef.h>

typedef struct gpu_device_info {
    int ordinal;
    char name[256];
    size_t total_memory; /* bytes */
    size_t free_memory;  /* bytes free when listed (0: could not be asked) */
    int cc_major, cc_minor;
    int multiprocessors;
} gpu_device_info;

#endif
