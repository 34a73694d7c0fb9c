/* `epochd plot`: the seed's four panels (train/test loss and accuracy) for
 * the chosen runs, one colour per run, as a self-contained SVG. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/db.h"
#include "cli/options.h"
#include "cli/commands.h"
#include "cli/plot_svg.h"

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

static const struct {
    const char *key, *title, *y_label;
} metrics[CLI_PLOT_MAX_PANELS] = {
    {"train_loss", "train loss", "loss"},
    {"train_acc", "train accuracy", "accuracy"},
    {"test_loss", "test loss", "loss"},
    {"test_acc", "test accuracy", "accuracy"},
};

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

/* One run's data, owned here; cli_plot_series points into it. */
typedef struct series {
    db_epoch *epochs;
    size_t n;
    double *x, *y[CLI_PLOT_MAX_PANELS];
} series;

static int fill_series(series *s, int x_seconds, const int *panel_metric, size_t np)
{
    s->x = malloc(s->n * sizeof *s->x);
    if (!s->x)
        return -1;
    for (size_t k = 0; k < np; k++)
        if (!(s->y[k] = malloc(s->n * sizeof *s->y[k])))
            return -1;
    double elapsed = 0.0;
    for (size_t i = 0; i < s->n; i++) {
        const db_epoch *e = &s->epochs[i];
        if (x_seconds) {
            /* an epoch without its time has no x; later ones still add up the known times */
            if (isfinite(e->seconds)) {
                elapsed += e->seconds;
                s->x[i] = elapsed;
            } else {
                s->x[i] = NAN;
            }
        } else {
            s->x[i] = (double)e->epoch;
        }
        for (size_t k = 0; k < np; k++) {
            double v = NAN;
            switch (panel_metric[k]) {
            case 0: v = e->train_loss; break;
            case 1: v = e->train_acc; break;
            case 2: v = e->test_loss; break;
            case 3: v = e->test_acc; break;
            }
            s->y[k][i] = v;
        }
    }
    return 0;
}

static int write_file(const char *path, const cli_plot *p)
{
    /* write beside the target and rename: a reader never sees half a file */
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

static int usage_error_plot(const char *fmt, const char *arg)
{
    return cli_usage_error("plot", usage_text, fmt, arg);
}

int cli_cmd_plot(int argc, char **argv)
{
    setlocale(LC_NUMERIC, "C"); /* SVG numbers need '.' */
    const char *db_file = NULL, *out = NULL, *title = NULL, *v;
    int metric = -1, x_seconds = 0, only_names = 0;
    const char **names = calloc((size_t)(argc > 0 ? argc : 1), sizeof *names);
    size_t nnames = 0;
    if (!names) {
        fputs("epochd plot: out of memory\n", stderr);
        return EX_SOFTWARE;
    }
    int ret = EX_OK;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_names || a[0] != '-') {
            names[nnames++] = a;
        } else if (!strcmp(a, "--")) {
            only_names = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            free(names);
            return EX_OK;
        } else if (cli_opt_value(argc, argv, &i, "--db", &v)) {
            if (!v || !*v) {
                ret = usage_error_plot("%s needs a file", "--db");
                goto out;
            }
            db_file = v;
        } else if (cli_opt_value(argc, argv, &i, "-o", &v) || cli_opt_value(argc, argv, &i, "--output", &v)) {
            if (!v || !*v) {
                ret = usage_error_plot("%s needs a file name", "-o");
                goto out;
            }
            out = v;
        } else if (cli_opt_value(argc, argv, &i, "--metric", &v)) {
            metric = -1;
            for (int m = 0; m < CLI_PLOT_MAX_PANELS && v; m++)
                if (!strcmp(v, metrics[m].key))
                    metric = m;
            if (metric < 0) {
                ret = usage_error_plot("--metric: '%s' is not train_loss, train_acc, test_loss or test_acc",
                                  v ? v : "");
                goto out;
            }
        } else if (cli_opt_value(argc, argv, &i, "--x", &v)) {
            if (v && !strcmp(v, "epoch"))
                x_seconds = 0;
            else if (v && !strcmp(v, "seconds"))
                x_seconds = 1;
            else {
                ret = usage_error_plot("--x: '%s' is not epoch or seconds", v ? v : "");
                goto out;
            }
        } else if (cli_opt_value(argc, argv, &i, "--title", &v)) {
            if (!v) {
                ret = usage_error_plot("%s needs a text", "--title");
                goto out;
            }
            title = v;
        } else {
            ret = usage_error_plot("unknown option '%s'", a);
            goto out;
        }
    }
    if (!out) {
        ret = usage_error_plot("%s", "no output file: give -o FILE.svg");
        goto out;
    }
    if (ends_with(out, ".png")) {
        fprintf(stderr, "epochd plot: PNG not supported, use .svg (convert it with e.g. rsvg-convert)\n");
        ret = EX_USAGE;
        goto out;
    }
    if (!ends_with(out, ".svg")) {
        ret = usage_error_plot("the output file must end in .svg: %s", out);
        goto out;
    }

    if (!db_file)
        db_file = db_default_path();
    db *d = NULL;
    int rc = db_open(db_file, 0, &d);
    if (rc) {
        fprintf(stderr, "epochd plot: %s\n", db_last_error());
        ret = rc == DB_ENOENT ? EX_NOINPUT : rc == DB_EIO ? EX_IOERR : EX_SOFTWARE;
        goto out;
    }
    db_run_list *runs = NULL;
    db_filter f = {.names = names, .n_names = nnames};
    if ((rc = db_runs_list(d, &f, DB_ORDER_ID, &runs))) {
        fprintf(stderr, "epochd plot: %s\n", db_last_error());
        db_close(d);
        ret = EX_SOFTWARE;
        goto out;
    }
    series *ser = calloc(runs->n ? runs->n : 1, sizeof *ser);
    cli_plot_series *pr = calloc(runs->n ? runs->n : 1, sizeof *pr);
    size_t np = metric >= 0 ? 1 : CLI_PLOT_MAX_PANELS, nr = 0;
    int panel_metric[CLI_PLOT_MAX_PANELS];
    for (size_t k = 0; k < np; k++)
        panel_metric[k] = metric >= 0 ? metric : (int)k;
    if (!ser || !pr) {
        fputs("epochd plot: out of memory\n", stderr);
        ret = EX_SOFTWARE;
        goto done;
    }
    for (size_t i = 0; i < runs->n; i++) {
        series *s = &ser[nr];
        if ((rc = db_epochs_get(d, runs->runs[i].id, &s->epochs, &s->n))) {
            fprintf(stderr, "epochd plot: %s\n", db_last_error());
            ret = EX_SOFTWARE;
            goto done;
        }
        if (s->n == 0) {
            if (nnames) /* asked for by name: say why it is missing */
                fprintf(stderr, "epochd plot: run %lld (%s) has no epochs yet: left out\n",
                        (long long)runs->runs[i].id, runs->runs[i].name);
            continue;
        }
        if (fill_series(s, x_seconds, panel_metric, np)) {
            nr++; /* so that it is freed */
            fputs("epochd plot: out of memory\n", stderr);
            ret = EX_SOFTWARE;
            goto done;
        }
        pr[nr] = (cli_plot_series){.id = runs->runs[i].id, .label = runs->runs[i].name, .n = s->n, .x = s->x};
        for (size_t k = 0; k < np; k++)
            pr[nr].y[k] = s->y[k];
        nr++;
    }
    if (nr == 0) {
        fprintf(stderr, "epochd plot: no run %sin %s has epochs to draw\n", nnames ? "matching those names " : "",
                db_file);
        ret = EX_NOINPUT;
        goto done;
    }

    char auto_title[256];
    if (!title) {
        if (nr == 1)
            snprintf(auto_title, sizeof auto_title, "%s (run %lld)", pr[0].label, (long long)pr[0].id);
        else
            snprintf(auto_title, sizeof auto_title, "%zu runs", nr);
        title = auto_title;
    }
    cli_plot p = {.title = *title ? title : NULL,
                  .x_label = x_seconds ? "wall-clock time" : "epoch",
                  .x_integer = !x_seconds,
                  .x_seconds = x_seconds,
                  .n_panels = np,
                  .n_runs = nr,
                  .runs = pr};
    for (size_t k = 0; k < np; k++)
        p.panels[k] = (cli_plot_panel){metrics[panel_metric[k]].key, metrics[panel_metric[k]].title,
                                       metrics[panel_metric[k]].y_label};
    ret = write_file(out, &p);

done:
    for (size_t i = 0; ser && i < runs->n; i++) {
        free(ser[i].epochs);
        free(ser[i].x);
        for (size_t k = 0; k < CLI_PLOT_MAX_PANELS; k++)
            free(ser[i].y[k]);
    }
    free(ser);
    free(pr);
    db_run_list_free(runs);
    db_close(d);
out:
    free(names);
    return ret;
}
