/* epochd worker: runs one run for the service and reports it on stdout as
 * JSON lines (docs/worker-protocol.md; the work is service/worker.c). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "service/error.h"
#include "service/worker.h"

#define MAX_DATA_ROOTS 64

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static const char usage_text[] =
    "usage: epochd worker --spec-file FILE [--spec-path PATH] --key KEY --state-dir DIR\n"
    "                     [--device D] [--epochs N] [--threads N] [--resume] [--data-root DIR]...\n"
    "                     [--download-root DIR]\n"
    "Internal: runs one run and reports JSON lines on stdout (used by `epochd serve`).\n";

int cli_cmd_worker(int argc, char **argv)
{
    const char *roots[MAX_DATA_ROOTS];
    svc_worker_args a = {.data_roots = roots, .stop = &stop_flag, .out = stdout};
    static const struct option opts[] = {
        {"spec-file", required_argument, NULL, 'f'}, {"spec-path", required_argument, NULL, 'p'},
        {"key", required_argument, NULL, 'k'},       {"state-dir", required_argument, NULL, 's'},
        {"device", required_argument, NULL, 'D'},    {"epochs", required_argument, NULL, 'e'},
        {"threads", required_argument, NULL, 't'},   {"resume", no_argument, NULL, 'r'},
        {"data-root", required_argument, NULL, 'R'}, {"download-root", required_argument, NULL, 'W'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_parser p = cli_parser_start("worker", usage_text, argc, argv, "", opts);
    int c;
    while ((c = cli_next(&p)) != -1) {
        switch (c) {
        case 'f': a.spec_file = optarg; break;
        case 'p': a.spec_path = optarg; break;
        case 'k': a.key = optarg; break;
        case 's': a.state_dir = optarg; break;
        case 'D': a.device = optarg; break;
        case 'e': cli_positive_i64(&p, &a.epochs); break;
        case 't': cli_positive_int(&p, &a.threads); break;
        case 'r': a.resume = true; break;
        case 'W': a.download_root = optarg; break;
        case 'R':
            if (a.n_data_roots == MAX_DATA_ROOTS)
                cli_bad(&p, "at most %d --data-root", MAX_DATA_ROOTS);
            else
                roots[a.n_data_roots++] = optarg;
            break;
        }
    }
    if (!p.done && (!a.spec_file || !a.key || !a.state_dir || p.n_args))
        cli_bad(&p, "--spec-file, --key and --state-dir are required, and nothing else");
    if (p.done)
        return p.status;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    svc_outcome out;
    if (svc_worker_run(&a, &out) == SVC_EINTR)
        return EX_INTERRUPTED; /* the service has gone: nobody to report to */
    int status = cli_exit_status(out.err);
    if (svc_worker_report_end(stdout, &out, status) < 0)
        fprintf(stderr, "epochd worker %s: %s\n", a.key, svc_last_error());
    if (out.err)
        fprintf(stderr, "epochd worker %s: %s\n", a.key, out.error);
    return status;
}
