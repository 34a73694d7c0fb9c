/* The epochd subcommands. Each takes the arguments after its name
 * (argv[0] is the subcommand name) and returns a sysexits exit code. */
#ifndef RUN_COMMANDS_H
#define RUN_COMMANDS_H

/* sysexits(3) codes used as the command-line contract (DESIGN.md). */
enum {
    RUN_EX_OK = 0,
    RUN_EX_USAGE = 64,
    RUN_EX_DATAERR = 65,  /* bad spec */
    RUN_EX_NOINPUT = 66,  /* missing input file */
    RUN_EX_SOFTWARE = 70, /* internal error */
    RUN_EX_IOERR = 74,
    RUN_EX_INTERRUPTED = 130, /* stopped by SIGINT/SIGTERM (run was recorded as interrupted) */
};

int run_cmd_check(int argc, char **argv);
int run_cmd_summary(int argc, char **argv);
int run_cmd_run(int argc, char **argv);
int run_cmd_worker(int argc, char **argv);
int run_cmd_serve(int argc, char **argv);
int run_cmd_status(int argc, char **argv);
int run_cmd_cancel(int argc, char **argv);
int run_cmd_compare(int argc, char **argv);
int run_cmd_plot(int argc, char **argv);
int run_cmd_export(int argc, char **argv);
int run_cmd_devices(int argc, char **argv);
int run_cmd_data(int argc, char **argv);

#endif
