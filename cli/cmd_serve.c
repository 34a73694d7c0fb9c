/* epochd serve: the long-running service (docs/service.md). */
#include <getopt.h>
#include <stdio.h>

#include "cli/commands.h"
#include "service/internal.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: epochd serve [--config FILE] [--experiments DIR] [--db FILE] [--state-dir DIR]\n"
               "                    [--devices auto|cpu|0,1]\n"
               "Watches DIR for experiment specs (*.yaml), queues a run per new or changed spec and\n"
               "trains them on free devices, recording every epoch in the database. SIGHUP reloads the\n"
               "config and rescans; SIGTERM/SIGINT interrupt the runs (they resume at the next start).\n");
}

int cli_cmd_serve(int argc, char **argv)
{
    svc_overrides o = {0};
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"experiments", required_argument, NULL, 'x'},
        {"db", required_argument, NULL, 'd'},      {"state-dir", required_argument, NULL, 's'},
        {"devices", required_argument, NULL, 'D'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': o.config = optarg; break;
        case 'x': o.experiments = optarg; break;
        case 'd': o.db_path = optarg; break;
        case 's': o.state_dir = optarg; break;
        case 'D': o.devices = optarg; break;
        case 'h': usage(stdout); return EX_OK;
        default: usage(stderr); return EX_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return EX_USAGE;
    }
    return svc_main(&o);
}
