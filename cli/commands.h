/* The epochd subcommands. Each takes the arguments after its name (argv[0]
 * is the subcommand name) and returns an exit status: sysexits(3), the
 * command-line contract (docs/design-changes.md lists 130). */
#ifndef CLI_COMMANDS_H
#define CLI_COMMANDS_H

#include <sysexits.h>

/* `run` stopped by SIGINT/SIGTERM (the run was recorded as interrupted). */
#define EX_INTERRUPTED 130

/* The exit status for a library's error code: an SVC_E* code, or a DB_E*
 * code through svc_from_db (which keeps db_last_error as the message). */
int cli_exit_status(int svc_code);
int cli_exit_status_db(int db_code);

int cli_cmd_check(int argc, char **argv);
int cli_cmd_summary(int argc, char **argv);
int cli_cmd_run(int argc, char **argv);
/* `epochd data fetch NAME --root ROOT` in the foreground, for `epochd run` on a
 * spec with data.download whose dataset is missing ($EPOCHD_DATA_MIRROR and
 * $EPOCHD_DATA_MANIFEST apply); an exit status. */
int cli_data_fetch_for_run(const char *name, const char *root);
int cli_cmd_worker(int argc, char **argv);
int cli_cmd_serve(int argc, char **argv);
int cli_cmd_ui(int argc, char **argv);
int cli_cmd_status(int argc, char **argv);
int cli_cmd_cancel(int argc, char **argv);
int cli_cmd_compare(int argc, char **argv);
int cli_cmd_plot(int argc, char **argv);
int cli_cmd_export(int argc, char **argv);
int cli_cmd_devices(int argc, char **argv);
int cli_cmd_data(int argc, char **argv);

#endif
