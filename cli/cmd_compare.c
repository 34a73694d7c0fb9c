/* epochd compare: best/final metrics of runs side by side (cli/compare.c). */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/compare.h"
#include "cli/options.h"

static const char usage_text[] =
    "usage: epochd compare [--db FILE] [NAME-or-glob...] [--sort best|final|params|time|name]\n"
    "                      [--format table|csv|json|markdown] [--group]\n"
    "\n"
    "One row per run, from the leaderboard view: best test accuracy and the first\n"
    "epoch reaching it, final test accuracy, lowest test loss, training time, images/s.\n"
    "The best value of each metric column is marked with '*' (bold on a terminal).\n"
    "NAMEs are SQLite GLOB patterns (case-sensitive; quote them from the shell).\n"
    "--group groups the runs of one sweep with a column per swept key.\n"
    "--db defaults to $EPOCHD_DB, else var/epochd.db. Exit: 0 (also when no run\n"
    "matches: a note on stderr and an empty table), 64 usage, 66 no database.\n";

typedef struct compare_args {
    const char *db_file;
    cli_sort sort;
    cli_format format;
    bool grouped;
    const char *const *names;
    size_t n_names;
} compare_args;

static int parse(int argc, char **argv, compare_args *a)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},     {"sort", required_argument, NULL, 's'},
        {"format", required_argument, NULL, 'f'}, {"group", no_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    static const char *const format_words[] = {"table", "csv", "json", "markdown", "md", NULL};
    cli_parser p = cli_parser_start("compare", usage_text, argc, argv, "", opts);
    for (int c, i; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case 'd': a->db_file = optarg; break;
        case 's':
            if ((i = cli_choice(&p, cli_sort_names)) >= 0)
                a->sort = (cli_sort)i;
            break;
        case 'f':
            if ((i = cli_choice(&p, format_words)) >= 0)
                a->format = i == 4 ? CLI_FORMAT_MARKDOWN : (cli_format)i;
            break;
        case 'g': a->grouped = true; break;
        }
    }
    if (!p.done && a->db_file && !*a->db_file)
        cli_bad(&p, "--db needs a file");
    a->names = (const char *const *)p.args;
    a->n_names = (size_t)p.n_args;
    return p.done ? p.status : -1;
}

int cli_cmd_compare(int argc, char **argv)
{
    setlocale(LC_NUMERIC, "C"); /* '.' in CSV and JSON whatever the user's locale */
    compare_args a = {.sort = CLI_SORT_BEST, .format = CLI_FORMAT_TABLE};
    int status = parse(argc, argv, &a);
    if (status >= 0)
        return status;
    const char *db_file = a.db_file ? a.db_file : db_default_path();
    db *d = NULL;
    cli_comparison *c = NULL;
    int rc = db_open(db_file, 0, &d);
    if (rc == 0)
        rc = cli_comparison_load(d, a.names, a.n_names, a.sort, a.grouped, &c);
    db_close(d);
    if (rc) {
        fprintf(stderr, "epochd compare: %s\n", db_last_error());
        return cli_exit_status_db(rc);
    }
    if (cli_comparison_count(c) == 0)
        fprintf(stderr, "epochd compare: no runs%s in %s\n", a.n_names ? " match" : "", db_file);
    bool bold = a.format == CLI_FORMAT_TABLE && isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    rc = cli_comparison_print(c, stdout, a.format, bold);
    cli_comparison_free(c);
    if (fflush(stdout) != 0 || rc) {
        fputs("epochd compare: cannot write the output\n", stderr);
        return EX_IOERR;
    }
    return EX_OK;
}
