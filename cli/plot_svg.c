/* SVG line charts: layout, nice ticks, series paths, legend, escaping. */
#include "cli/plot_svg.h"

#include <math.h>
#include <string.h>

/* Okabe & Ito's colour-blind-safe palette (yellow left out: too pale on
 * white). Past seven runs the colours repeat with a dash pattern. */
static const char *const palette[] = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                                      "#CC79A7", "#56B4E9", "#000000"};
#define N_COLOURS (sizeof palette / sizeof *palette)
static const char *const dashes[] = {NULL, "7 4", "2 3"};
#define N_DASHES (sizeof dashes / sizeof *dashes)

/* Geometry in SVG user units (px). */
enum {
    OUTER = 16,
    TITLE_H = 34,
    PAD_L = 70, /* room for y tick labels and the y label */
    PAD_R = 18,
    PAD_T = 30, /* panel title */
    PAD_B = 48, /* x tick labels and the x label */
    LEGEND_ROW = 20,
    LEGEND_SAMPLE = 28,
    CHAR_W = 7, /* a generous average width of a 12px sans-serif glyph */
    INSET = 8,
};
#define MARKER_MAX_POINTS 40 /* draw dots at the points of short series */

void cli_plot_nice_ticks(double lo, double hi, int target, int integer, cli_plot_ticks *t)
{
    if (!isfinite(lo) || !isfinite(hi)) {
        lo = 0.0;
        hi = 1.0;
    }
    if (hi < lo) {
        double s = lo;
        lo = hi;
        hi = s;
    }
    if (target < 1)
        target = 1;
    if (hi - lo <= 1e-12 * fmax(fabs(lo), fabs(hi))) {
        /* one value (a constant series, a single point): widen around it */
        double pad = lo != 0.0 ? fabs(lo) * 0.05 : 0.5;
        if (integer && pad < 1.0)
            pad = 1.0;
        lo -= pad;
        hi += pad;
    }
    double raw = (hi - lo) / target;
    double mag = pow(10.0, floor(log10(raw)));
    double norm = raw / mag;
    double step = (norm <= 1.0 ? 1.0 : norm <= 2.0 ? 2.0 : norm <= 5.0 ? 5.0 : 10.0) * mag;
    if (integer && step < 1.0)
        step = 1.0;
    double first = floor(lo / step) * step;
    if (first > lo)
        first -= step;
    double last = ceil(hi / step) * step;
    if (last < hi)
        last += step;
    t->first = first;
    t->step = step;
    t->count = (int)lround((last - first) / step) + 1;
    t->decimals = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (t->decimals > 12)
        t->decimals = 12;
}

static double tick_value(const cli_plot_ticks *t, int i)
{
    double v = t->first + i * t->step;
    return fabs(v) < t->step * 1e-9 ? 0.0 : v; /* no "-0.00" */
}

static double tick_last(const cli_plot_ticks *t) { return tick_value(t, t->count - 1); }

/* Length of one UTF-8 sequence at s (1..4), or 0 if it is not valid. */
static int utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
    if (n == 0 || (s[0] >= 0xf0 && n != 4))
        return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* overlong 3/4-byte forms, surrogates and code points past U+10FFFF */
    if (n == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0)))
        return 0;
    if (n == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90)))
        return 0;
    return n;
}

static void xml_escape(FILE *f, const char *text, int keep_lines);

void cli_plot_xml_escape(FILE *f, const char *text) { xml_escape(f, text, 0); }
void cli_plot_xml_escape_lines(FILE *f, const char *text) { xml_escape(f, text, 1); }

static void xml_escape(FILE *f, const char *text, int keep_lines)
{
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    while (*s) {
        switch (*s) {
        case '&': fputs("&amp;", f); s++; continue;
        case '<': fputs("&lt;", f); s++; continue;
        case '>': fputs("&gt;", f); s++; continue;
        case '"': fputs("&quot;", f); s++; continue;
        case '\'': fputs("&apos;", f); s++; continue;
        default: break;
        }
        if (*s < 0x20) { /* XML 1.0 allows no control characters but tab and newlines */
            fputc(*s == '\t' || *s == '\n' ? (keep_lines ? *s : ' ') : '?', f);
            s++;
            continue;
        }
        int n = utf8_len(s);
        if (n == 0) {
            fputc('?', f);
            s++;
        } else {
            fwrite(s, 1, (size_t)n, f);
            s += n;
        }
    }
}

/* A tick label: value with the tick's decimals, in the unit's scale. */
static void put_num(FILE *f, double v, int decimals) { fprintf(f, "%.*f", decimals, v); }

typedef struct axis {
    cli_plot_ticks t;
    double lo, hi; /* the axis range: first and last tick */
} axis;

static void axis_init(axis *a, double lo, double hi, int target, int integer)
{
    cli_plot_nice_ticks(lo, hi, target, integer, &a->t);
    a->lo = tick_value(&a->t, 0);
    a->hi = tick_last(&a->t);
    if (!(a->hi > a->lo))
        a->hi = a->lo + 1.0;
}

/* Pixel position of v on an axis mapped to [p0, p1]. */
static double map(const axis *a, double v, double p0, double p1)
{
    return p0 + (v - a->lo) / (a->hi - a->lo) * (p1 - p0);
}

static void legend_text(FILE *f, const cli_plot *p, size_t i)
{
    const cli_plot_series *r = &p->runs[i];
    cli_plot_xml_escape(f, r->label);
    /* two runs of one name: tell them apart by id */
    for (size_t j = 0; j < p->n_runs; j++) {
        if (j != i && r->label && p->runs[j].label && !strcmp(r->label, p->runs[j].label)) {
            fprintf(f, " (#%lld)", (long long)r->id);
            break;
        }
    }
}

static void stroke_style(FILE *f, size_t i)
{
    fprintf(f, " stroke=\"%s\"", palette[i % N_COLOURS]);
    const char *dash = dashes[(i / N_COLOURS) % N_DASHES];
    if (dash)
        fprintf(f, " stroke-dasharray=\"%s\"", dash);
}

/* A panel's frame (fx0..fx1, fy1..fy0) and inside it, by INSET, where data
 * and ticks go, so that points on the range's ends do not sit on the frame. */
typedef struct box {
    double fx0, fx1, fy0, fy1;
    double x0, x1, y0, y1;
} box;

/* The y range over every run's finite values in panel k; the count of points. */
static size_t y_range(const cli_plot *p, size_t k, double *lo, double *hi)
{
    size_t points = 0;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t r = 0; r < p->n_runs; r++) {
        const cli_plot_series *run = &p->runs[r];
        for (size_t i = 0; i < run->n; i++) {
            double y = run->y[k] ? run->y[k][i] : NAN;
            if (isfinite(y) && isfinite(run->x[i])) {
                *lo = fmin(*lo, y);
                *hi = fmax(*hi, y);
                points++;
            }
        }
    }
    return points;
}

/* Grid lines with their tick labels, the frame and the axis labels. */
static void draw_axes(FILE *f, const cli_plot_panel *pn, const box *b, double cx, const axis *ax, const axis *ay,
                      const char *x_label)
{
    for (int i = 0; i < ay->t.count; i++) {
        double v = tick_value(&ay->t, i), y = map(ay, v, b->y0, b->y1);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#e3e3e3\"/>\n", b->fx0, y,
                b->fx1, y);
        fprintf(f, "<text class=\"tick-y\" data-panel=\"");
        cli_plot_xml_escape(f, pn->key);
        fprintf(f, "\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" dominant-baseline=\"middle\" "
                   "fill=\"#333\">",
                b->fx0 - 6, y);
        put_num(f, v, ay->t.decimals);
        fputs("</text>\n", f);
    }
    for (int i = 0; i < ax->t.count; i++) {
        double v = tick_value(&ax->t, i), x = map(ax, v, b->x0, b->x1);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#e3e3e3\"/>\n", x, b->fy0,
                x, b->fy1);
        fprintf(f, "<text class=\"tick-x\" data-panel=\"");
        cli_plot_xml_escape(f, pn->key);
        fprintf(f, "\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" fill=\"#333\">", x, b->fy0 + 17);
        put_num(f, v, ax->t.decimals);
        fputs("</text>\n", f);
    }
    fprintf(f, "<rect class=\"frame\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
               "fill=\"none\" stroke=\"#555\"/>\n",
            b->fx0, b->fy1, b->fx1 - b->fx0, b->fy0 - b->fy1);
    fprintf(f, "<text class=\"x-label\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">", (b->x0 + b->x1) / 2,
            b->fy0 + 38);
    cli_plot_xml_escape(f, x_label);
    fprintf(f, "</text>\n<text class=\"y-label\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" "
               "transform=\"rotate(-90 %.2f %.2f)\">",
            cx + 16, (b->y0 + b->y1) / 2, cx + 16, (b->y0 + b->y1) / 2);
    cli_plot_xml_escape(f, pn->y_label);
    fputs("</text>\n", f);
}

/* One path per run; gaps at missing values start a new subpath. */
static void draw_series(FILE *f, const cli_plot *p, size_t k, const box *b, const axis *ax, const axis *ay,
                        double x_scale)
{
    for (size_t r = 0; r < p->n_runs; r++) {
        const cli_plot_series *run = &p->runs[r];
        fprintf(f, "<path class=\"series\" data-run=\"%lld\" data-panel=\"", (long long)run->id);
        cli_plot_xml_escape(f, p->panels[k].key);
        fputs("\" fill=\"none\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"", f);
        stroke_style(f, r);
        if (run->n <= MARKER_MAX_POINTS)
            fprintf(f, " marker-start=\"url(#m%zu)\" marker-mid=\"url(#m%zu)\" marker-end=\"url(#m%zu)\"",
                    r, r, r);
        fputs(" d=\"", f);
        int pen = 0;
        for (size_t i = 0; i < run->n; i++) {
            double y = run->y[k] ? run->y[k][i] : NAN, x = run->x[i] * x_scale;
            if (!isfinite(y) || !isfinite(x)) {
                pen = 0;
                continue;
            }
            double px = map(ax, x, b->x0, b->x1), py = map(ay, y, b->y0, b->y1);
            int next_ok = i + 1 < run->n && run->y[k] && isfinite(run->y[k][i + 1]) &&
                          isfinite(run->x[i + 1]);
            if (!pen) {
                fprintf(f, "M%.2f %.2f", px, py);
                if (!next_ok)
                    fputs("l0 0", f); /* an isolated point: a dot from the round cap */
                pen = 1;
            } else {
                fprintf(f, "L%.2f %.2f", px, py);
            }
        }
        fputs("\"/>\n", f);
    }
}

static void draw_panel(FILE *f, const cli_plot *p, size_t k, double cx, double cy, double cw,
                       double ch, const axis *ax, double x_scale, const char *x_label)
{
    const cli_plot_panel *pn = &p->panels[k];
    box b = {.fx0 = cx + PAD_L, .fx1 = cx + cw - PAD_R, .fy0 = cy + ch - PAD_B, .fy1 = cy + PAD_T};
    b.x0 = b.fx0 + INSET;
    b.x1 = b.fx1 - INSET;
    b.y0 = b.fy0 - INSET;
    b.y1 = b.fy1 + INSET;
    double lo, hi;
    size_t points = y_range(p, k, &lo, &hi);
    axis ay;
    axis_init(&ay, points ? lo : 0.0, points ? hi : 1.0, 5, 0);

    fprintf(f, "<g class=\"panel\" data-panel=\"");
    cli_plot_xml_escape(f, pn->key);
    fprintf(f, "\">\n<text class=\"panel-title\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
               "font-size=\"14\" font-weight=\"bold\">",
            (b.x0 + b.x1) / 2, cy + 20.0);
    cli_plot_xml_escape(f, pn->title);
    fputs("</text>\n", f);
    draw_axes(f, pn, &b, cx, ax, &ay, x_label);
    if (!points)
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n",
                (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2);
    draw_series(f, p, k, &b, ax, &ay, x_scale);
    fputs("</g>\n", f);
}

/* The x axis, shared by all panels so they line up: seconds are shown in
 * s, min or h by their range (x_scale converts), epochs on whole numbers. */
static void x_axis(const cli_plot *p, size_t np, axis *ax, double *x_scale, char *x_label, size_t len)
{
    double xlo = INFINITY, xhi = -INFINITY;
    for (size_t r = 0; r < p->n_runs; r++)
        for (size_t i = 0; i < p->runs[r].n; i++)
            if (isfinite(p->runs[r].x[i])) {
                xlo = fmin(xlo, p->runs[r].x[i]);
                xhi = fmax(xhi, p->runs[r].x[i]);
            }
    if (!(xlo <= xhi)) {
        xlo = 0.0;
        xhi = 1.0;
    }
    *x_scale = 1.0;
    snprintf(x_label, len, "%s", p->x_label ? p->x_label : "");
    if (p->x_seconds) {
        const char *unit = "s";
        if (xhi > 7200.0) {
            *x_scale = 1.0 / 3600.0;
            unit = "h";
        } else if (xhi > 300.0) {
            *x_scale = 1.0 / 60.0;
            unit = "min";
        }
        snprintf(x_label, len, "%s (%s)", p->x_label ? p->x_label : "time", unit);
    }
    axis_init(ax, xlo * *x_scale, xhi * *x_scale, np == 1 ? 10 : 6, p->x_integer);
}

/* The legend's grid: as many columns as the longest label allows. */
static void legend_layout(const cli_plot *p, double width, double *colw, int *lcols, int *lrows)
{
    size_t longest = 8;
    for (size_t r = 0; r < p->n_runs; r++) {
        size_t len = p->runs[r].label ? strlen(p->runs[r].label) + 8 : 8;
        if (len > longest)
            longest = len;
    }
    *colw = LEGEND_SAMPLE + 8 + (double)longest * CHAR_W + 20;
    *lcols = (int)((width - 2 * OUTER) / *colw);
    if (*lcols < 1)
        *lcols = 1;
    if ((size_t)*lcols > p->n_runs && p->n_runs > 0)
        *lcols = (int)p->n_runs;
    *lrows = (int)((p->n_runs + (size_t)*lcols - 1) / (size_t)*lcols);
}

static void draw_legend(FILE *f, const cli_plot *p, double legend_y, double colw, int lcols)
{
    fputs("<g class=\"legend\">\n", f);
    for (size_t r = 0; r < p->n_runs; r++) {
        double lx = OUTER + (double)(r % (size_t)lcols) * colw;
        double ly = legend_y + (double)(r / (size_t)lcols) * LEGEND_ROW + LEGEND_ROW / 2.0;
        fprintf(f, "<g class=\"legend-item\" data-run=\"%lld\"><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                   "y2=\"%.1f\" stroke-width=\"3\"",
                (long long)p->runs[r].id, lx, ly, lx + LEGEND_SAMPLE, ly);
        stroke_style(f, r);
        fprintf(f, "/><text class=\"legend-label\" data-run=\"%lld\" x=\"%.1f\" y=\"%.1f\" "
                   "dominant-baseline=\"middle\">",
                (long long)p->runs[r].id, lx + LEGEND_SAMPLE + 8, ly);
        legend_text(f, p, r);
        fputs("</text></g>\n", f);
    }
    fputs("</g>\n", f);
}

int cli_plot_svg_write(FILE *f, const cli_plot *p)
{
    size_t np = p->n_panels < 1 ? 1 : p->n_panels > CLI_PLOT_MAX_PANELS ? CLI_PLOT_MAX_PANELS : p->n_panels;
    int cols = np == 1 ? 1 : 2, rows = (int)((np + (size_t)cols - 1) / (size_t)cols);
    double cw = np == 1 ? 880.0 : 480.0, ch = np == 1 ? 520.0 : 340.0;
    double width = 2.0 * OUTER + cols * cw;
    double top = OUTER + (p->title ? TITLE_H : 0);
    double colw;
    int lcols, lrows;
    legend_layout(p, width, &colw, &lcols, &lrows);
    double legend_y = top + rows * ch + 10;
    double height = legend_y + lrows * LEGEND_ROW + OUTER;
    axis ax;
    double x_scale;
    char x_label[128];
    x_axis(p, np, &ax, &x_scale, x_label, sizeof x_label);

    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
               "font-size=\"12\">\n",
            width, height, width, height);
    fputs("<title>", f);
    cli_plot_xml_escape(f, p->title ? p->title : "epochd plot");
    fputs("</title>\n<defs>\n", f);
    for (size_t r = 0; r < p->n_runs; r++)
        fprintf(f, "<marker id=\"m%zu\" viewBox=\"0 0 6 6\" refX=\"3\" refY=\"3\" markerWidth=\"6\" "
                   "markerHeight=\"6\" markerUnits=\"userSpaceOnUse\"><circle cx=\"3\" cy=\"3\" r=\"2.6\" "
                   "fill=\"%s\"/></marker>\n",
                r, palette[r % N_COLOURS]);
    fprintf(f, "</defs>\n<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
    if (p->title) {
        fprintf(f, "<text class=\"title\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"17\" "
                   "font-weight=\"bold\">",
                width / 2, OUTER + 18.0);
        cli_plot_xml_escape(f, p->title);
        fputs("</text>\n", f);
    }
    for (size_t k = 0; k < np; k++) {
        double cx = OUTER + (double)(k % (size_t)cols) * cw, cy = top + (double)(k / (size_t)cols) * ch;
        draw_panel(f, p, k, cx, cy, cw, ch, &ax, x_scale, x_label);
    }
    draw_legend(f, p, legend_y, colw, lcols);
    fputs("</svg>\n", f);
    return ferror(f) ? -1 : 0;
}
