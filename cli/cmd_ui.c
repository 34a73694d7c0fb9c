/* epochd ui: the dashboard of `epochd serve --http` for a database alone -
 * a results file copied off a cluster, or a service without http (web/). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "db/db.h"
#include "service/log.h"
#include "web/web.h"

static const char usage_text[] =
    "usage: epochd ui [--db FILE] [--http ADDR:PORT] [--token-file FILE]\n"
    "\n"
    "Serves the read-only web dashboard (runs, one run, compare; the JSON API and\n"
    "/metrics) for a database, until Ctrl-C. --http defaults to 127.0.0.1:8080 (a port\n"
    "alone is on loopback; any other address must be written out, e.g. 0.0.0.0:8080,\n"
    "and should have --token-file). --db defaults to $EPOCHD_DB, else var/epochd.db.\n"
    "Exit: 0 after SIGINT/SIGTERM, 64 usage, 66 no database, 74 cannot listen.\n";

int cli_cmd_ui(int argc, char **argv)
{
    const char *db_file = NULL, *listen = "127.0.0.1:8080", *token = NULL;
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},         {"http", required_argument, NULL, 'H'},
        {"token-file", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_parser p = cli_parser_start("ui", usage_text, argc, argv, "", opts);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case 'd': db_file = optarg; break;
        case 'H': listen = optarg; break;
        case 't': token = optarg; break;
        }
    }
    if (!p.done && db_file && !*db_file)
        cli_bad(&p, "--db needs a file");
    cli_arg_count(&p, 0, 0);
    if (p.done)
        return p.status;
    if (!db_file)
        db_file = db_default_path();

    /* the server's threads inherit this mask: only this thread takes the signals */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    web_options o = {.listen = listen, .token_file = token, .db_path = db_file};
    web_server *w = NULL;
    int rc = web_server_start(&o, &w);
    if (rc < 0) {
        fprintf(stderr, "epochd ui: %s\n", svc_last_error());
        return cli_exit_status(rc);
    }
    fprintf(stderr, "epochd ui: serving %s on %s (Ctrl-C stops)\n", db_file, web_server_url(w));
    int sig = 0;
    sigwait(&stop, &sig);
    web_server_stop(w);
    return EX_OK;
}
