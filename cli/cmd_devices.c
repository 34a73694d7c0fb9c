/* epochd devices: the CPU (its instruction set as our kernels and oneDNN
 * use it, and whether bf16 runs on bf16 instructions) and the CUDA devices
 * this machine offers (name, memory and free memory, compute capability). The service runs `epochd devices
 * --json` in a short-lived child process, so the CUDA driver is never
 * initialised in the service itself. Without CUDA (a build without it, no
 * driver, no device) the list is empty and the exit status is still 0; a
 * driver that is installed and fails is exit 70 with CUDA's error, never an
 * empty list.
 *
 * For tests: $EPOCHD_TEST_DEVICES names a JSON file in the --json format
 * whose devices are reported instead of asking CUDA (a service test can
 * fake GPUs, and change their free memory, on a machine without any). */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/error.h"
#include "epochd_config.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "gpu/module.h"

#define MAX_DEVICES 64

static const char usage_text[] =
    "usage: epochd devices [--json]\n"
    "Lists the CPU and the CUDA devices (ordinal, name, memory, free memory, compute\n"
    "capability, multiprocessors). --json prints {\"cuda_build\": BOOL, \"devices\": [{\"ordinal\",\n"
    "\"name\", \"memory_bytes\", \"memory_free_bytes\", \"compute_capability\", \"multiprocessors\"},\n"
    "...], \"cpu\": {\"model\", \"cores\", \"isa\", \"isa_max\", \"onednn\", \"onednn_isa\",\n"
    "\"bf16_native\", \"amx\", \"openblas\", \"openblas_held_back\"}} (memory_free_bytes is 0 where a\n"
    "device could not be asked; openblas: the kernel set OpenBLAS runs; openblas_held_back:\n"
    "OPENBLAS_CORETYPE keeps it to AVX2 kernels on a CPU with AVX-512).\n";

/* The test list of $EPOCHD_TEST_DEVICES, printed as --json would print
 * real devices, or one line per device. */
static int test_devices(const char *path, bool as_json)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    json_t *list = root ? json_object_get(root, "devices") : NULL;
    if (!json_is_array(list)) {
        fprintf(stderr, "epochd devices: %s (EPOCHD_TEST_DEVICES): %s\n", path,
                root ? "no \"devices\" list" : je.text);
        json_decref(root);
        return EX_DATAERR;
    }
    if (as_json) {
        char *s = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        if (!s) {
            fprintf(stderr, "epochd devices: out of memory\n");
            return EX_SOFTWARE;
        }
        printf("%s\n", s);
        free(s);
    } else {
        for (size_t i = 0; i < json_array_size(list); i++) {
            json_t *d = json_array_get(list, i);
            const char *name = json_string_value(json_object_get(d, "name"));
            printf("cuda:%zu  %s  %.1f GiB (test device)\n", i, name ? name : "?",
                   (double)json_integer_value(json_object_get(d, "memory_bytes")) / (1024.0 * 1024.0 * 1024.0));
        }
        json_decref(root);
    }
    return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
}

int cli_cmd_devices(int argc, char **argv)
{
    bool as_json = false;
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    cli_parser p = cli_parser_start("devices", usage_text, argc, argv, "", opts);
    for (int c; (c = cli_next(&p)) != -1;)
        if (c == 'j')
            as_json = true;
    cli_arg_count(&p, 0, 0);
    if (p.done)
        return p.status;
    const char *fake = getenv("EPOCHD_TEST_DEVICES");
    if (fake && *fake)
        return test_devices(fake, as_json);

    /* loads the CUDA module only where an NVIDIA driver is installed */
    int count = 0;
    static gpu_device_info info[MAX_DEVICES];
    if (gpu_module_device_list(info, MAX_DEVICES, &count) < 0) {
        fprintf(stderr, "epochd devices: %s\n", eng_last_error());
        return EX_SOFTWARE;
    }
    if (count > MAX_DEVICES)
        count = MAX_DEVICES;
    const bool cuda_build = EPOCHD_HAVE_CUDA;

    eng_cpu_info cpu;
    if (eng_cpu_info_get(&cpu) < 0) {
        fprintf(stderr, "epochd devices: %s\n", eng_last_error());
        return EX_SOFTWARE;
    }
    const bool blas_held_back = eng_cpu_blas_core_held_back();
    if (as_json) {
        json_t *root = json_object(), *list = json_array();
        if (!root || !list)
            goto oom;
        json_object_set_new(root, "cuda_build", json_boolean(cuda_build));
        json_object_set_new(root, "devices", list);
        json_t *c = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:b}", "model", cpu.model, "cores",
                              cpu.cores, "isa", cpu.isa, "isa_max", cpu.isa_max, "onednn", cpu.onednn_version,
                              "onednn_isa", cpu.onednn_isa, "bf16_native", cpu.bf16_native, "amx", cpu.amx,
                              "openblas", cpu.blas_core, "openblas_held_back", blas_held_back);
        if (!c || json_object_set_new(root, "cpu", c) < 0) {
            json_decref(root);
            goto oom;
        }
        for (int i = 0; i < count; i++) {
            char cc[16];
            snprintf(cc, sizeof cc, "%d.%d", info[i].cc_major, info[i].cc_minor);
            json_t *d = json_pack("{s:i, s:s, s:I, s:I, s:s, s:i}", "ordinal", info[i].ordinal, "name", info[i].name,
                                  "memory_bytes", (json_int_t)info[i].total_memory, "memory_free_bytes",
                                  (json_int_t)info[i].free_memory, "compute_capability", cc, "multiprocessors",
                                  info[i].multiprocessors);
            if (!d || json_array_append_new(list, d) < 0) {
                json_decref(root);
                goto oom;
            }
        }
        char *s = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        if (!s)
            goto oom;
        printf("%s\n", s);
        free(s);
        return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
    }

    char blas[96];
    snprintf(blas, sizeof blas, "%s%s", cpu.blas_core,
             blas_held_back ? " (OPENBLAS_CORETYPE; the CPU has AVX-512)" : "");
    printf("cpu  %s  %d cores  kernels %s%s  oneDNN %s %s  OpenBLAS %s  bf16 %s%s\n", cpu.model, cpu.cores, cpu.isa,
           strcmp(cpu.isa, cpu.isa_max) ? " (EPOCHD_CPU_ISA; the CPU has more)" : "", cpu.onednn_version,
           cpu.onednn_isa[0] ? cpu.onednn_isa : "(unavailable)", blas, cpu.bf16_native ? "native" : "emulated",
           cpu.amx ? ", AMX" : "");
    if (count == 0)
        printf("no CUDA device%s\n", cuda_build ? "" : " (this epochd was built without CUDA)");
    for (int i = 0; i < count; i++)
        printf("cuda:%d  %s  %.1f GiB (%.1f GiB free)  compute capability %d.%d  %d multiprocessors\n",
               info[i].ordinal, info[i].name, (double)info[i].total_memory / (1024.0 * 1024.0 * 1024.0),
               (double)info[i].free_memory / (1024.0 * 1024.0 * 1024.0), info[i].cc_major, info[i].cc_minor,
               info[i].multiprocessors);
    return fflush(stdout) == 0 ? EX_OK : EX_IOERR;

oom:
    fprintf(stderr, "epochd devices: out of memory\n");
    return EX_SOFTWARE;
}
