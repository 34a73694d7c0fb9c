/* epochd: dispatches to the subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "epochd_config.h"
#include "runner/commands.h"

typedef struct run_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
} run_command;

/* Each command appears here once its implementation exists. */
static const run_command commands[] = {
    {"check", run_cmd_check, "validate spec files (and expand sweeps) without running them"},
    {"run", run_cmd_run, "train a spec in the foreground, recording it in the database"},
    {"summary", run_cmd_summary, "layers, output shapes, parameters and FLOPs of a spec's model"},
    {"export", run_cmd_export, "write a run's trained weights as safetensors"},
    {"worker", run_cmd_worker, "(internal) run one run for the service, JSON lines on stdout"},
    {"status", run_cmd_status, "queued and running runs with progress and ETA, recent results"},
    {"compare", run_cmd_compare, "best/final metrics of runs side by side (table, csv, json, markdown)"},
    {"plot", run_cmd_plot, "train/test loss and accuracy curves of runs as an SVG"},
    {"serve", run_cmd_serve, "the service: watch a folder of specs, queue and train them, record results"},
    {"cancel", run_cmd_cancel, "stop a queued or running run (the service acts on it)"},
    {"data", run_cmd_data, "fetch the standard datasets (or a manifest's own) into a data root; list them"},
    {"devices", run_cmd_devices, "the CUDA devices of this machine (name, memory, compute capability); --json"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: epochd COMMAND [ARGS]\n\ncommands:\n");
    for (const run_command *c = commands; c->name; c++)
        fprintf(f, "  %-8s %s\n", c->name, c->usage);
    fprintf(f, "\nexit codes: 0 ok, 64 usage, 65 bad spec, 66 missing input, 70 internal error, 74 i/o error\n");
}

/* libgomp reads its spin policy once, when it loads, before main runs. Its
 * default (threads spin for a long time at every barrier) halves training
 * speed as soon as another process competes for the cores - another worker,
 * a compiler - so the commands that train restart themselves once with
 * GOMP_SPINCOUNT=10000 unless the user chose a policy. Workers of the
 * service inherit it from the service's environment. */
static void tune_openmp(char **argv)
{
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") && strcmp(cmd, "worker") && strcmp(cmd, "serve"))
        return;
    if (getenv("GOMP_SPINCOUNT") || getenv("OMP_WAIT_POLICY"))
        return;
    if (setenv("GOMP_SPINCOUNT", "10000", 1) < 0)
        return;
    execv("/proc/self/exe", argv); /* on failure, go on with the default */
}

int main(int argc, char **argv)
{
    if (argc >= 2)
        tune_openmp(argv);
    if (argc < 2) {
        usage(stderr);
        return RUN_EX_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return RUN_EX_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("epochd %s\n", EPOCHD_VERSION);
        return RUN_EX_OK;
    }
    for (const run_command *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name))
            return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "epochd: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return RUN_EX_USAGE;
}
