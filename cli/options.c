/* The commands' option parser (getopt_long) and its usage errors. */
#include "cli/options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

cli_parser cli_parser_start(const char *cmd, const char *usage, int argc, char **argv, const char *shortopts,
                            const struct option *opts)
{
    cli_parser p = {.cmd = cmd, .usage = usage, .argc = argc, .argv = argv, .opts = opts};
    /* '+' is not used: options may follow arguments ("compare 'x*' --group");
     * ':' makes a missing value its own case */
    snprintf(p.shortopts, sizeof p.shortopts, ":h%s", shortopts ? shortopts : "");
    optind = 0; /* a full reset of glibc's state: commands run more than once in tests */
    opterr = 0;
    return p;
}

int cli_bad(cli_parser *p, const char *fmt, ...)
{
    if (p->done)
        return p->status;
    fprintf(stderr, "epochd %s: ", p->cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", p->usage);
    p->done = true;
    p->status = EX_USAGE;
    return EX_USAGE;
}

/* The option as the user wrote it, for messages. */
static const char *written(const cli_parser *p)
{
    const char *a = optind > 0 && optind <= p->argc ? p->argv[optind - 1] : "?";
    return a ? a : "?";
}

int cli_next(cli_parser *p)
{
    if (p->done)
        return -1;
    int c = getopt_long(p->argc, p->argv, p->shortopts, p->opts, NULL);
    switch (c) {
    case -1:
        p->args = p->argv + optind;
        p->n_args = p->argc - optind;
        return -1;
    case 'h':
        fputs(p->usage, stdout);
        p->done = true;
        p->status = EX_OK;
        return -1;
    case ':': cli_bad(p, "option '%s' needs a value", written(p)); return -1;
    case '?':
        if (optopt && optopt != '?' && !strchr(written(p), '='))
            cli_bad(p, "unknown option '-%c'", optopt);
        else
            cli_bad(p, "unknown option '%s'", written(p));
        return -1;
    default: return c;
    }
}

static bool number(cli_parser *p, long long lo, long long *out, const char *what)
{
    char *end = NULL;
    errno = 0;
    long long v = optarg && *optarg ? strtoll(optarg, &end, 10) : 0;
    if (!optarg || !*optarg || *end || errno || v < lo) {
        cli_bad(p, "option '%s' expects %s, found '%s'", written(p), what, optarg ? optarg : "");
        return false;
    }
    *out = v;
    return true;
}

bool cli_positive_int(cli_parser *p, int *out)
{
    long long v;
    if (!number(p, 1, &v, "a positive integer"))
        return false;
    if (v > 1 << 30) {
        cli_bad(p, "option '%s': %s is too large", written(p), optarg);
        return false;
    }
    *out = (int)v;
    return true;
}

bool cli_positive_i64(cli_parser *p, int64_t *out)
{
    long long v;
    if (!number(p, 1, &v, "a positive integer"))
        return false;
    *out = v;
    return true;
}

bool cli_count(cli_parser *p, long *out)
{
    long long v;
    if (!number(p, 0, &v, "a count (0 or more)"))
        return false;
    *out = (long)v;
    return true;
}

int cli_choice(cli_parser *p, const char *const *words)
{
    for (int i = 0; words[i]; i++)
        if (!strcmp(optarg, words[i]))
            return i;
    char list[256] = "";
    for (int i = 0; words[i]; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i ? (words[i + 1] ? ", " : " or ") : "", words[i]);
    }
    cli_bad(p, "option '%s' expects %s, found '%s'", written(p), list, optarg);
    return -1;
}

bool cli_arg_count(cli_parser *p, int min, int max)
{
    if (p->done)
        return false;
    if (p->n_args < min) {
        if (min == max)
            cli_bad(p, "expected %d argument%s, found %d", min, min == 1 ? "" : "s", p->n_args);
        else
            cli_bad(p, "expected at least %d argument%s", min, min == 1 ? "" : "s");
        return false;
    }
    if (max >= 0 && p->n_args > max) {
        cli_bad(p, "unexpected argument '%s'", p->args[max]);
        return false;
    }
    return true;
}
