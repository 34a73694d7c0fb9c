/* epochd devices: the CPU (its instruction set as our kernels and oneDNN
 * use it, and whether bf16 runs on bf16 instructions) and the CUDA devices
 * this machine offers (name, memory, compute capability). The service runs `epochd devices --json` in a
 * short-lived child process, so the CUDA driver is never initialised in the
 * service itself. Without CUDA (a build without it, no driver, no device)
 * the list is empty and the exit status is still 0. */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/error.h"
#include "epochd_config.h"
#include "runner/commands.h"
#if EPOCHD_HAVE_CUDA
#include "gpu/gpu.h"
#endif

#define MAX_DEVICES 64

static void usage(FILE *f)
{
    fprintf(f, "usage: epochd devices [--json]\n"
               "Lists the CPU and the CUDA devices (ordinal, name, memory, compute capability, multiprocessors).\n"
               "--json prints {\"cuda_build\": BOOL, \"devices\": [{\"ordinal\", \"name\", \"memory_bytes\",\n"
               "\"compute_capability\", \"multiprocessors\"}, ...], \"cpu\": {\"model\", \"cores\", \"isa\",\n"
               "\"isa_max\", \"onednn\", \"onednn_isa\", \"bf16_native\", \"amx\"}}.\n");
}

int run_cmd_devices(int argc, char **argv)
{
    bool as_json = false;
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = true; break;
        case 'h': usage(stdout); return RUN_EX_OK;
        default: usage(stderr); return RUN_EX_USAGE;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return RUN_EX_USAGE;
    }

    int count = 0;
#if EPOCHD_HAVE_CUDA
    static gpu_device_info info[MAX_DEVICES];
    if (gpu_device_list(info, MAX_DEVICES, &count) < 0) {
        fprintf(stderr, "epochd devices: %s\n", eng_last_error());
        return RUN_EX_SOFTWARE;
    }
    if (count > MAX_DEVICES)
        count = MAX_DEVICES;
    const bool cuda_build = true;
#else
    const bool cuda_build = false;
#endif

    eng_cpu_info cpu;
    if (eng_cpu_info_get(&cpu) < 0) {
        fprintf(stderr, "epochd devices: %s\n", eng_last_error());
        return RUN_EX_SOFTWARE;
    }
    if (as_json) {
        json_t *root = json_object(), *list = json_array();
        if (!root || !list)
            goto oom;
        json_object_set_new(root, "cuda_build", json_boolean(cuda_build));
        json_object_set_new(root, "devices", list);
        json_t *c = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:b, s:b}", "model", cpu.model, "cores", cpu.cores, "isa",
                              cpu.isa, "isa_max", cpu.isa_max, "onednn", cpu.onednn_version, "onednn_isa",
                              cpu.onednn_isa, "bf16_native", cpu.bf16_native, "amx", cpu.amx);
        if (!c || json_object_set_new(root, "cpu", c) < 0) {
            json_decref(root);
            goto oom;
        }
#if EPOCHD_HAVE_CUDA
        for (int i = 0; i < count; i++) {
            char cc[16];
            snprintf(cc, sizeof cc, "%d.%d", info[i].cc_major, info[i].cc_minor);
            json_t *d = json_pack("{s:i, s:s, s:I, s:s, s:i}", "ordinal", info[i].ordinal, "name", info[i].name,
                                  "memory_bytes", (json_int_t)info[i].total_memory, "compute_capability", cc,
                                  "multiprocessors", info[i].multiprocessors);
            if (!d || json_array_append_new(list, d) < 0) {
                json_decref(root);
                goto oom;
            }
        }
#endif
        char *s = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        if (!s)
            goto oom;
        printf("%s\n", s);
        free(s);
        return fflush(stdout) == 0 ? RUN_EX_OK : RUN_EX_IOERR;
    }

    printf("cpu  %s  %d cores  kernels %s%s  oneDNN %s %s  bf16 %s%s\n", cpu.model, cpu.cores, cpu.isa,
           strcmp(cpu.isa, cpu.isa_max) ? " (EPOCHD_CPU_ISA; the CPU has more)" : "", cpu.onednn_version,
           cpu.onednn_isa[0] ? cpu.onednn_isa : "(unavailable)", cpu.bf16_native ? "native" : "emulated",
           cpu.amx ? ", AMX" : "");
    if (count == 0)
        printf("no CUDA device%s\n", cuda_build ? "" : " (this epochd was built without CUDA)");
#if EPOCHD_HAVE_CUDA
    for (int i = 0; i < count; i++)
        printf("cuda:%d  %s  %.1f GiB  compute capability %d.%d  %d multiprocessors\n", info[i].ordinal,
               info[i].name, (double)info[i].total_memory / (1024.0 * 1024.0 * 1024.0), info[i].cc_major,
               info[i].cc_minor, info[i].multiprocessors);
#endif
    return fflush(stdout) == 0 ? RUN_EX_OK : RUN_EX_IOERR;

oom:
    fprintf(stderr, "epochd devices: out of memory\n");
    return RUN_EX_SOFTWARE;
}
