/* Line charts as a self-contained SVG: panels in a grid, one colour per run,
 * a legend, "nice" 1-2-5 ticks. No plotting library: the output is plain
 * text that any browser or `rsvg-convert` shows. */
#ifndef CLI_PLOT_SVG_H
#define CLI_PLOT_SVG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_PLOT_MAX_PANELS 4

/* One run: n points with a shared x and one y series per panel. Non-finite
 * values are gaps; a point surrounded by gaps is drawn as a dot. */
typedef struct cli_plot_series {
    int64_t id;
    const char *label; /* legend text (escaped on output) */
    size_t n;
    const double *x;
    const double *y[CLI_PLOT_MAX_PANELS];
} cli_plot_series;

typedef struct cli_plot_panel {
    const char *key;     /* machine name, in data-panel attributes: "train_loss" */
    const char *title;   /* "train loss" */
    const char *y_label; /* "loss" */
} cli_plot_panel;

typedef struct cli_plot {
    const char *title;   /* NULL: none */
    const char *x_label; /* "epoch"; for x in seconds, see x_seconds */
    int x_integer;       /* ticks on whole numbers (epochs) */
    int x_seconds;       /* x is seconds: shown in s, min or h by its range */
    size_t n_panels;     /* 1..CLI_PLOT_MAX_PANELS; 4 makes a 2x2 grid */
    cli_plot_panel panels[CLI_PLOT_MAX_PANELS];
    size_t n_runs;
    const cli_plot_series *runs;
} cli_plot;

/* Axis ticks: first, step and count such that first <= lo and
 * first + (count-1)*step >= hi, step from {1, 2, 5} x 10^k, about `target`
 * intervals. integer forces whole-number steps. A degenerate range
 * (lo == hi) is widened around the value. */
typedef struct cli_plot_ticks {
    double first, step;
    int count;
    int decimals; /* digits after the point that label every tick exactly */
} cli_plot_ticks;
void cli_plot_nice_ticks(double lo, double hi, int target, int integer, cli_plot_ticks *t);

/* Writes `text` XML-escaped (&<>"'), replacing control characters and
 * invalid UTF-8 by '?'. */
void cli_plot_xml_escape(FILE *f, const char *text);
/* The same keeping tabs and newlines (text of an HTML <pre>). */
void cli_plot_xml_escape_lines(FILE *f, const char *text);

/* Writes the chart; returns 0, or -1 if the stream reported an error. */
int cli_plot_svg_write(FILE *f, const cli_plot *p);

#endif
