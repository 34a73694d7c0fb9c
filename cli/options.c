/* Option-value matching and usage errors shared by compare, plot and status. */
#include "cli/options.h"

#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

int cli_opt_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *out = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    *out = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

int cli_usage_error(const char *cmd, const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, "epochd %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fputs("\n", stderr);
    fputs(usage, stderr);
    return EX_USAGE;
}
