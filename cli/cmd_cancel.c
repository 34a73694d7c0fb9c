/* epochd cancel: asks the service to stop a run (by id, or the latest run
 * of a name). It sets cancel_requested; the service cancels a queued run,
 * or stops a running one's worker, and records `cancelled`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "cli/commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: epochd cancel RUN... [--db FILE]\n"
               "RUN is a run id or a run name (its latest run). The service stops it within a second or so.\n");
}

int cli_cmd_cancel(int argc, char **argv)
{
    const char *db_path = NULL;
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db_path = optarg; break;
        case 'h': usage(stdout); return EX_OK;
        default: usage(stderr); return EX_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EX_USAGE;
    }
    if (!db_path)
        db_path = db_default_path();
    db *d = NULL;
    if (db_open(db_path, 0, &d) < 0) {
        fprintf(stderr, "epochd cancel: cannot open the database %s: %s\n", db_path, db_last_error());
        return EX_NOINPUT;
    }
    int code = EX_OK;
    for (int i = optind; i < argc; i++) {
        const char *arg = argv[i];
        char *end = NULL;
        errno = 0;
        long long id = strtoll(arg, &end, 10);
        db_run *r = NULL;
        int rc;
        if (*arg && !*end && !errno && id > 0)
            rc = db_run_get(d, id, &r);
        else
            rc = db_run_latest_by_name(d, arg, &r);
        if (rc < 0) {
            fprintf(stderr, "epochd cancel: %s: %s\n", arg, db_last_error());
            code = EX_NOINPUT;
            continue;
        }
        rc = db_run_request_cancel(d, r->id);
        if (rc == DB_ESTATE) {
            fprintf(stderr, "epochd cancel: run %lld (%s) has already ended: %s\n", (long long)r->id, r->name,
                    db_status_name(r->status));
            code = EX_DATAERR;
        } else if (rc < 0) {
            fprintf(stderr, "epochd cancel: run %lld: %s\n", (long long)r->id, db_last_error());
            code = EX_IOERR;
        } else {
            printf("run %lld (%s, %s): cancel requested; the service %s\n", (long long)r->id, r->name,
                   db_status_name(r->status), r->status == DB_RUNNING ? "stops its worker" : "cancels it");
        }
        db_run_free(r);
    }
    db_close(d);
    return code;
}
