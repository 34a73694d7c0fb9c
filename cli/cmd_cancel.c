/* epochd cancel: asks the service to stop a run (by id, or the latest run
 * of a name). It sets cancel_requested; the service cancels a queued run,
 * or stops a running one's worker, and records `cancelled`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "cli/commands.h"
#include "cli/options.h"

static const char usage_text[] =
    "usage: epochd cancel RUN... [--db FILE]\n"
    "RUN is a run id or a run name (its latest run). The service stops it within a second or so.\n";

int cli_cmd_cancel(int argc, char **argv)
{
    const char *db_path = NULL;
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    cli_parser p = cli_parser_start("cancel", usage_text, argc, argv, "", opts);
    for (int c; (c = cli_next(&p)) != -1;)
        if (c == 'd')
            db_path = optarg;
    cli_arg_count(&p, 1, -1);
    if (p.done)
        return p.status;
    if (!db_path)
        db_path = db_default_path();
    db *d = NULL;
    int rc = db_open(db_path, 0, &d);
    if (rc < 0) {
        fprintf(stderr, "epochd cancel: cannot open the database %s: %s\n", db_path, db_last_error());
        return cli_exit_status_db(rc);
    }
    int code = EX_OK;
    for (int i = 0; i < p.n_args; i++) {
        const char *arg = p.args[i];
        char *end = NULL;
        errno = 0;
        long long id = strtoll(arg, &end, 10);
        db_run *r = NULL;
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
