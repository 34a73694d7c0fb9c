/* One option parser for every command: getopt_long with the same behaviour
 * everywhere. `-h`/`--help` print the command's usage on stdout and stop
 * with status 0; an unknown option, a missing or bad value, or a wrong
 * argument count prints "epochd CMD: what is wrong" and the usage on stderr
 * and stops with status 64. Options and arguments may come in any order.
 *
 *   cli_parser p = cli_parser_start("status", usage, argc, argv, "", opts);
 *   for (int c; (c = cli_next(&p)) != -1;)
 *       switch (c) { case 'd': db = optarg; break; ... }
 *   if (p.done) return p.status;     // help, or a usage error
 *   ... p.args[0 .. p.n_args) are the arguments that are not options ...
 */
#ifndef CLI_OPTIONS_H
#define CLI_OPTIONS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct cli_parser {
    const char *cmd;        /* "status": messages say "epochd status: ..." */
    const char *usage;      /* the full usage text */
    int argc;
    char **argv;            /* argv[0] is the command's name */
    const struct option *opts;
    char shortopts[64];
    bool done;              /* stop parsing: status is the exit status (0 after --help, 64 after an error) */
    int status;
    char **args;            /* after the last cli_next: the non-option arguments */
    int n_args;
} cli_parser;

/* shortopts: the short options besides -h, in getopt's syntax ("o:" for
 * `-o FILE`); their letters are the `val` of the matching long options. */
cli_parser cli_parser_start(const char *cmd, const char *usage, int argc, char **argv, const char *shortopts,
                            const struct option *opts);

/* The next option's `val` (optarg holds its value), or -1 at the end and
 * whenever p->done is set. Handles -h/--help and usage errors itself. */
int cli_next(cli_parser *p);

/* A usage error: the message (printf-style) and the usage on stderr, status
 * 64, done. Returns 64. */
int cli_bad(cli_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* optarg as a number of the option being parsed; a usage error when it is
 * not one. True when *out was set. */
bool cli_positive_int(cli_parser *p, int *out);
bool cli_positive_i64(cli_parser *p, int64_t *out);
bool cli_count(cli_parser *p, long *out);   /* >= 0 */

/* optarg must be one of the NULL-terminated words; its index, or -1 after a usage error. */
int cli_choice(cli_parser *p, const char *const *words);

/* Requires between min and max (-1: any) non-option arguments; a usage error otherwise. */
bool cli_arg_count(cli_parser *p, int min, int max);

#endif
