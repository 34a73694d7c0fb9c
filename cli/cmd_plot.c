/* epochd plot: the seed's four panels (train/test loss and accuracy) for
 * the chosen runs, one colour per run, as a self-contained SVG. */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/commands.h"
#include "cli/curves.h"
#include "cli/options.h"

static const char usage_text[] =
    "usage: epochd plot [--db FILE] [NAME-or-glob...] -o FILE.svg\n"
    "                   [--metric train_loss|train_acc|test_loss|test_acc] [--x epoch|seconds]\n"
    "                   [--title TEXT]\n"
    "\n"
    "Draws train loss, train accuracy, test loss and test accuracy against the epoch\n"
    "(or, with --x seconds, the cumulative wall-clock seconds of the epochs) in a 2x2\n"
    "grid, one colour per run; --metric draws one panel. NAMEs are SQLite GLOB\n"
    "patterns; without any, every run with epochs is drawn. Only SVG is written\n"
    "(no PNG: convert with e.g. rsvg-convert). --db defaults to $EPOCHD_DB, else\n"
    "var/epochd.db. Exit: 0, 64 usage, 66 no database or no run to draw, 74 write error.\n";

typedef struct plot_args {
    const char *db_file, *out, *title;
    int metric; /* -1: all four panels */
    bool x_seconds;
    const char *const *names;
    size_t n_names;
} plot_args;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

static int parse(int argc, char **argv, plot_args *a)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},    {"output", required_argument, NULL, 'o'},
        {"metric", required_argument, NULL, 'm'}, {"x", required_argument, NULL, 'x'},
        {"title", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const x_words[] = {"epoch", "seconds", NULL};
    cli_parser p = cli_parser_start("plot", usage_text, argc, argv, "o:", opts);
    for (int c, i; (c = cli_next(&p)) != -1;) {
        switch (c) {
        case 'd': a->db_file = optarg; break;
        case 'o': a->out = optarg; break;
        case 'm': a->metric = cli_choice(&p, cli_curve_metrics); break;
        case 'x':
            if ((i = cli_choice(&p, x_words)) >= 0)
                a->x_seconds = i == 1;
            break;
        case 't': a->title = optarg; break;
        }
    }
    if (p.done)
        return p.status;
    if (a->db_file && !*a->db_file)
        return cli_bad(&p, "--db needs a file");
    if (!a->out || !*a->out)
        return cli_bad(&p, "no output file: give -o FILE.svg");
    if (ends_with(a->out, ".png")) {
        fprintf(stderr, "epochd plot: PNG not supported, use .svg (convert it with e.g. rsvg-convert)\n");
        return EX_USAGE;
    }
    if (!ends_with(a->out, ".svg"))
        return cli_bad(&p, "the output file must end in .svg: %s", a->out);
    a->names = (const char *const *)p.args;
    a->n_names = (size_t)p.n_args;
    return -1;
}

/* Writes beside the target and renames: a reader never sees half a file. */
static int write_file(const char *path, const cli_plot *p)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) {
        fputs("epochd plot: out of memory\n", stderr);
        return EX_SOFTWARE;
    }
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        perror(tmp);
        free(tmp);
        return EX_IOERR;
    }
    int bad = cli_plot_svg_write(f, p) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        fprintf(stderr, "epochd plot: cannot write %s\n", path);
        remove(tmp);
        free(tmp);
        return EX_IOERR;
    }
    free(tmp);
    return EX_OK;
}

int cli_cmd_plot(int argc, char **argv)
{
    setlocale(LC_NUMERIC, "C"); /* SVG numbers need '.' */
    plot_args a = {.metric = -1};
    int status = parse(argc, argv, &a);
    if (status >= 0)
        return status;
    const char *db_file = a.db_file ? a.db_file : db_default_path();
    db *d = NULL;
    cli_curves *c = NULL;
    int rc = db_open(db_file, 0, &d);
    if (rc == 0)
        rc = cli_curves_load(d, a.names, a.n_names, a.metric, a.x_seconds, stderr, &c);
    db_close(d);
    if (rc) {
        fprintf(stderr, "epochd plot: %s\n", db_last_error());
        return cli_exit_status_db(rc);
    }
    if (cli_curves_count(c) == 0) {
        fprintf(stderr, "epochd plot: no run %sin %s has epochs to draw\n",
                a.n_names ? "matching those names " : "", db_file);
        cli_curves_free(c);
        return EX_NOINPUT;
    }
    status = write_file(a.out, cli_curves_plot(c, a.title));
    cli_curves_free(c);
    return status;
}
