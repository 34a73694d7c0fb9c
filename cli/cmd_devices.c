/* epochd devices: the CUDA devices this machine offers (name, memory,
 * compute capability). The service runs `epochd devices --json` in a
 * short-lived child process, so the CUDA driver is never initialised in the
 * service itself. Without CUDA (a build without it, no driver, no device)
 * the list is empty and the exit status is still 0; a driver that is
 * installed and fails is exit 70 with CUDA's error, never an empty list. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/error.h"
#include "epochd_config.h"
#include "cli/commands.h"
#include "cli/options.h"
#if EPOCHD_HAVE_CUDA
#include "gpu/gpu.h"
#endif

#define MAX_DEVICES 64

static const char usage_text[] =
    "usage: epochd devices [--json]\n"
    "Lists the CUDA devices (ordinal, name, memory, compute capability, multiprocessors).\n"
    "--json prints {\"cuda_build\": BOOL, \"devices\": [{\"ordinal\", \"name\", \"memory_bytes\",\n"
    "\"compute_capability\", \"multiprocessors\"}, ...]}.\n";

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

    int count = 0;
#if EPOCHD_HAVE_CUDA
    static gpu_device_info info[MAX_DEVICES];
    if (gpu_device_list(info, MAX_DEVICES, &count) < 0) {
        fprintf(stderr, "epochd devices: %s\n", eng_last_error());
        return EX_SOFTWARE;
    }
    if (count > MAX_DEVICES)
        count = MAX_DEVICES;
    const bool cuda_build = true;
#else
    const bool cuda_build = false;
#endif

    if (as_json) {
        json_t *root = json_object(), *list = json_array();
        if (!root || !list)
            goto oom;
        json_object_set_new(root, "cuda_build", json_boolean(cuda_build));
        json_object_set_new(root, "devices", list);
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
        return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
    }

    if (count == 0)
        printf("no CUDA device%s\n", cuda_build ? "" : " (this epochd was built without CUDA)");
#if EPOCHD_HAVE_CUDA
    for (int i = 0; i < count; i++)
        printf("cuda:%d  %s  %.1f GiB  compute capability %d.%d  %d multiprocessors\n", info[i].ordinal,
               info[i].name, (double)info[i].total_memory / (1024.0 * 1024.0 * 1024.0), info[i].cc_major,
               info[i].cc_minor, info[i].multiprocessors);
#endif
    return fflush(stdout) == 0 ? EX_OK : EX_IOERR;

oom:
    fprintf(stderr, "epochd devices: out of memory\n");
    return EX_SOFTWARE;
}
