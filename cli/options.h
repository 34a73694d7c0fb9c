/* Small helpers for the subcommands that parse their options by hand. */
#ifndef CLI_OPTIONS_H
#define CLI_OPTIONS_H

/* Matches argv[*i] against option `name` written "--opt VALUE" or
 * "--opt=VALUE": returns 1 and sets *out (NULL when the value is missing),
 * advancing *i past what it used; 0 when argv[*i] is another option. */
int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **out);

/* Prints "epochd CMD: <fmt with arg>" and the usage text on stderr; returns
 * the usage exit code (64). */
int cli_usage_error(const char *cmd, const char *usage, const char *fmt, const char *arg);

#endif
