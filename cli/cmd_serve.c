/* epochd serve: the long-running service (docs/service.md; service/). */
#include <stdio.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "service/log.h"
#include "service/observe.h"
#include "service/service.h"
#include "web/web.h"

static const char usage_text[] =
    "usage: epochd serve [--config FILE] [--experiments DIR] [--db FILE] [--state-dir DIR]\n"
    "                    [--devices auto|cpu|0,1] [--http ADDR:PORT]\n"
    "Watches DIR for experiment specs (*.yaml), queues a run per new or changed spec and\n"
    "trains them on free devices, recording every epoch in the database. SIGHUP reloads the\n"
    "config and rescans; SIGTERM/SIGINT interrupt the runs (they resume at the next start).\n"
    "--http (or http.listen in the config) also serves the read-only dashboard and /metrics\n"
    "there, e.g. 127.0.0.1:8080 (docs/web.md).\n";

int cli_cmd_serve(int argc, char **argv)
{
    svc_overrides o = {0};
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"experiments", required_argument, NULL, 'x'},
        {"db", required_argument, NULL, 'd'},      {"state-dir", required_argument, NULL, 's'},
        {"devices", required_argument, NULL, 'D'}, {"http", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    cli_parser p = cli_parser_start("serve", usage_text, argc, argv, "", opts);
    for (int c; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case 'c': o.config = optarg; break;
        case 'x': o.experiments = optarg; break;
        case 'd': o.db_path = optarg; break;
        case 's': o.state_dir = optarg; break;
        case 'D': o.devices = optarg; break;
        case 'H': o.http_listen = optarg; break;
        }
    }
    cli_arg_count(&p, 0, 0);
    if (p.done)
        return p.status;
    svc_service *s = NULL;
    web_server *web = NULL;
    int rc = svc_service_new(&o, &s);
    if (rc == 0) {
        /* the dashboard, when configured, on threads of its own beside the loop */
        const svc_config *cfg = svc_service_config(s);
        if (cfg->http_listen) {
            web_options wo = {.listen = cfg->http_listen, .token_file = cfg->http_token_file,
                              .db_path = cfg->db_path, .service = s};
            rc = web_server_start(&wo, &web);
        }
    }
    if (rc == 0)
        rc = svc_service_run(s);
    if (rc < 0)
        svc_log(SVC_LOG_ERR, "%s", svc_last_error());
    web_server_stop(web);
    svc_service_free(s);
    return cli_exit_status(rc);
}
