/* epochd status: queued and running runs with progress and ETA, recent
 * results (cli/status.c). Reads only. */
#include <locale.h>
#include <stdio.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/status.h"

static const char usage_text[] =
    "usage: epochd status [--db FILE] [--all] [--recent N] [--json]\n"
    "\n"
    "Queued, running and interrupted runs (epoch, progress within the epoch and of\n"
    "the whole run, images/s, ETA, finish; for queued runs the service's plan: device,\n"
    "expected start and finish, the time on the CPU), then the N most recently\n"
    "finished runs (default 10; --all: every finished run) with their final metrics.\n"
    "--json prints the same as one JSON object. --db defaults to $EPOCHD_DB, else\n"
    "var/epochd.db. Exit: 0, 64 usage, 66 no database.\n";

int cli_cmd_status(int argc, char **argv)
{
    setlocale(LC_NUMERIC, "C");
    const char *db_file = NULL;
    bool all = false, json = false;
    long recent = 10;
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},     {"all", no_argument, NULL, 'a'},
        {"recent", required_argument, NULL, 'r'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_parser p = cli_parser_start("status", usage_text, argc, argv, "", opts);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case 'd': db_file = optarg; break;
        case 'a': all = true; break;
        case 'r': cli_count(&p, &recent); break;
        case 'j': json = true; break;
        }
    }
    if (!p.done && db_file && !*db_file)
        cli_bad(&p, "--db needs a file");
    cli_arg_count(&p, 0, 0);
    if (p.done)
        return p.status;
    if (!db_file)
        db_file = db_default_path();
    db *d = NULL;
    cli_status s;
    int rc = db_open(db_file, 0, &d);
    if (rc == 0)
        rc = cli_status_load(d, all, recent, &s);
    db_close(d);
    if (rc) {
        fprintf(stderr, "epochd status: %s\n", db_last_error());
        return cli_exit_status_db(rc);
    }
    rc = json ? cli_status_print_json(&s, db_file, stdout) : cli_status_print(&s, db_file, stdout);
    cli_status_free(&s);
    if (rc || fflush(stdout) != 0) {
        fputs("epochd status: cannot write the output\n", stderr);
        return EX_IOERR;
    }
    return EX_OK;
}
