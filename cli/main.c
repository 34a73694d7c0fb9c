/* epochd: dispatches to the subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "epochd_config.h"
#include "cli/commands.h"

typedef struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
} cli_command;

static const cli_command commands[] = {
    {"check", cli_cmd_check, "validate spec files (and expand sweeps) without running them"},
    {"run", cli_cmd_run, "train a spec in the foreground, recording it in the database"},
    {"summary", cli_cmd_summary, "layers, output shapes, parameters and FLOPs of a spec's model"},
    {"export", cli_cmd_export, "write a run's trained weights as safetensors"},
    {"worker", cli_cmd_worker, "(internal) run one run for the service, JSON lines on stdout"},
    {"status", cli_cmd_status, "queued and running runs with progress and ETA, recent results"},
    {"compare", cli_cmd_compare, "best/final metrics of runs side by side (table, csv, json, markdown)"},
    {"plot", cli_cmd_plot, "train/test loss and accuracy curves of runs as an SVG"},
    {"serve", cli_cmd_serve, "the service: watch a folder of specs, queue and train them, record results"},
    {"ui", cli_cmd_ui, "the read-only web dashboard and /metrics for a database alone"},
    {"cancel", cli_cmd_cancel, "stop a queued or running run (the service acts on it)"},
    {"devices", cli_cmd_devices, "the CUDA devices of this machine (name, memory, compute capability); --json"},
    {"data", cli_cmd_data, "fetch the standard datasets (or a manifest's own) into a data root; list them"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: epochd COMMAND [ARGS]\n\ncommands:\n");
    for (const cli_command *c = commands; c->name; c++)
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
        return EX_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EX_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("epochd %s\n", EPOCHD_VERSION);
        return EX_OK;
    }
    for (const cli_command *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name))
            return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "epochd: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EX_USAGE;
}
