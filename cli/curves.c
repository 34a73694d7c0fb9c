/* Runs' epochs as plot series. */
#include "cli/curves.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const cli_curve_metrics[] = {"train_loss", "train_acc", "test_loss", "test_acc", NULL};

static const struct {
    const char *title, *y_label;
} metric_text[CLI_PLOT_MAX_PANELS] = {
    {"train loss", "loss"},
    {"train accuracy", "accuracy"},
    {"test loss", "loss"},
    {"test accuracy", "accuracy"},
};

/* One run's data, owned here; its cli_plot_series points into it. */
typedef struct series {
    db_epoch *epochs;
    size_t n;
    double *x, *y[CLI_PLOT_MAX_PANELS];
} series;

struct cli_curves {
    db_run_list *runs;
    series *ser;              /* one per run with epochs */
    cli_plot_series *plotted; /* views of ser for the chart */
    size_t n;
    int panel_metric[CLI_PLOT_MAX_PANELS];
    size_t n_panels;
    bool x_seconds;
    char title[256];
    cli_plot plot;
};

static double metric_of(const db_epoch *e, int metric)
{
    switch (metric) {
    case 0: return e->train_loss;
    case 1: return e->train_acc;
    case 2: return e->test_loss;
    case 3: return e->test_acc;
    }
    return NAN;
}

static int fill_series(series *s, bool x_seconds, const int *panel_metric, size_t np)
{
    s->x = malloc(s->n * sizeof *s->x);
    if (!s->x)
        return DB_ENOMEM;
    for (size_t k = 0; k < np; k++)
        if (!(s->y[k] = malloc(s->n * sizeof *s->y[k])))
            return DB_ENOMEM;
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
        for (size_t k = 0; k < np; k++)
            s->y[k][i] = metric_of(e, panel_metric[k]);
    }
    return 0;
}

void cli_curves_free(cli_curves *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->ser && i < c->runs->n; i++) {
        free(c->ser[i].epochs);
        free(c->ser[i].x);
        for (size_t k = 0; k < CLI_PLOT_MAX_PANELS; k++)
            free(c->ser[i].y[k]);
    }
    free(c->ser);
    free(c->plotted);
    db_run_list_free(c->runs);
    free(c);
}

int cli_curves_load(db *d, const char *const *names, size_t n_names, int metric, bool x_seconds, FILE *notes,
                    cli_curves **out)
{
    db_filter f = {.names = (const char **)names, .n_names = n_names};
    return cli_curves_load_filter(d, &f, metric, x_seconds, n_names ? notes : NULL, out);
}

int cli_curves_load_filter(db *d, const db_filter *f, int metric, bool x_seconds, FILE *notes, cli_curves **out)
{
    *out = NULL;
    cli_curves *c = calloc(1, sizeof *c);
    if (!c)
        return DB_ENOMEM;
    c->x_seconds = x_seconds;
    c->n_panels = metric >= 0 ? 1 : CLI_PLOT_MAX_PANELS;
    for (size_t k = 0; k < c->n_panels; k++)
        c->panel_metric[k] = metric >= 0 ? metric : (int)k;
    int rc = db_runs_list(d, f, DB_ORDER_ID, &c->runs);
    if (rc) {
        free(c);
        return rc;
    }
    size_t nr = c->runs->n ? c->runs->n : 1;
    c->ser = calloc(nr, sizeof *c->ser);
    c->plotted = calloc(nr, sizeof *c->plotted);
    rc = c->ser && c->plotted ? 0 : DB_ENOMEM;
    for (size_t i = 0; i < c->runs->n && rc == 0; i++) {
        const db_run *r = &c->runs->runs[i];
        series *s = &c->ser[i];
        if ((rc = db_epochs_get(d, r->id, &s->epochs, &s->n)))
            break;
        if (s->n == 0) {
            if (notes) /* asked for by name: say why it is missing */
                fprintf(notes, "epochd plot: run %lld (%s) has no epochs yet: left out\n", (long long)r->id,
                        r->name);
            continue;
        }
        if ((rc = fill_series(s, x_seconds, c->panel_metric, c->n_panels)))
            break;
        cli_plot_series *p = &c->plotted[c->n++];
        *p = (cli_plot_series){.id = r->id, .label = r->name, .n = s->n, .x = s->x};
        for (size_t k = 0; k < c->n_panels; k++)
            p->y[k] = s->y[k];
    }
    if (rc) {
        cli_curves_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

size_t cli_curves_count(const cli_curves *c) { return c->n; }

const cli_plot *cli_curves_plot(cli_curves *c, const char *title)
{
    if (!title) {
        if (c->n == 1)
            snprintf(c->title, sizeof c->title, "%s (run %lld)", c->plotted[0].label, (long long)c->plotted[0].id);
        else
            snprintf(c->title, sizeof c->title, "%zu runs", c->n);
        title = c->title;
    }
    c->plot = (cli_plot){.title = *title ? title : NULL,
                         .x_label = c->x_seconds ? "wall-clock time" : "epoch",
                         .x_integer = !c->x_seconds,
                         .x_seconds = c->x_seconds,
                         .n_panels = c->n_panels,
                         .n_runs = c->n,
                         .runs = c->plotted};
    for (size_t k = 0; k < c->n_panels; k++) {
        int m = c->panel_metric[k];
        c->plot.panels[k] = (cli_plot_panel){cli_curve_metrics[m], metric_text[m].title, metric_text[m].y_label};
    }
    return &c->plot;
}
