/* Aligned terminal and Markdown tables, and the shared number formats. */
#include "cli/text_table.h"

#include "cli/plot_svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cell {
    char *text;
    int marked;
} cell;

struct cli_table {
    size_t ncols, nrows, cap;
    char **titles;
    int *right;
    cell *cells; /* nrows x ncols */
};

cli_table *cli_table_new(size_t ncols)
{
    cli_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    t->titles = calloc(ncols, sizeof *t->titles);
    t->right = calloc(ncols, sizeof *t->right);
    if (!t->titles || !t->right) {
        cli_table_free(t);
        return NULL;
    }
    return t;
}

void cli_table_free(cli_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i].text);
    for (size_t c = 0; t->titles && c < t->ncols; c++)
        free(t->titles[c]);
    free(t->cells);
    free(t->titles);
    free(t->right);
    free(t);
}

int cli_table_column(cli_table *t, size_t col, const char *title, int right)
{
    if (col >= t->ncols)
        return -1;
    char *s = strdup(title);
    if (!s)
        return -1;
    free(t->titles[col]);
    t->titles[col] = s;
    t->right[col] = right;
    return 0;
}

int cli_table_row(cli_table *t)
{
    if (t->nrows == t->cap) {
        size_t ncap = t->cap ? 2 * t->cap : 16;
        cell *nc = realloc(t->cells, ncap * t->ncols * sizeof *nc);
        if (!nc)
            return -1;
        t->cells = nc;
        t->cap = ncap;
    }
    memset(&t->cells[t->nrows * t->ncols], 0, t->ncols * sizeof *t->cells);
    t->nrows++;
    return 0;
}

/* A copy of text with control characters written as \xNN: a run's name or
 * a file name is data, and must not move the cursor or recolour the
 * terminal of whoever reads the table. */
char *cli_escaped(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += (unsigned char)*p < 0x20 || *p == 0x7f ? 4 : 1;
    char *s = malloc(n + 1), *o = s;
    if (!s)
        return NULL;
    for (const char *p = text; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            o += sprintf(o, "\\x%02x", c);
        else
            *o++ = (char)c;
    }
    *o = '\0';
    return s;
}

int cli_table_set(cli_table *t, size_t col, const char *text, int marked)
{
    if (col >= t->ncols || t->nrows == 0)
        return -1;
    char *s = cli_escaped(text ? text : "");
    if (!s)
        return -1;
    cell *c = &t->cells[(t->nrows - 1) * t->ncols + col];
    free(c->text);
    c->text = s;
    c->marked = marked;
    return 0;
}

int cli_table_setf(cli_table *t, size_t col, int marked, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return cli_table_set(t, col, buf, marked);
}

size_t cli_table_rows(const cli_table *t) { return t->nrows; }

/* Display width: code points, not bytes (names may be UTF-8). */
static size_t width_of(const char *s)
{
    size_t w = 0;
    for (; s && *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

static const char *text_at(const cli_table *t, size_t r, size_t c)
{
    const char *s = t->cells[r * t->ncols + c].text;
    return s ? s : "";
}

static void pad(FILE *f, size_t n)
{
    while (n--)
        fputc(' ', f);
}

/* A cell as shown: its text, then '*' if marked, or a blank in a column
 * that has marks, so that the digits of all rows line up. */
static size_t shown_width(const cli_table *t, size_t r, size_t c, int mark_room)
{
    return width_of(text_at(t, r, c)) + (size_t)mark_room;
}

int cli_table_print(const cli_table *t, FILE *f, int bold)
{
    size_t *w = calloc(t->ncols ? t->ncols : 1, sizeof *w);
    int *room = calloc(t->ncols ? t->ncols : 1, sizeof *room);
    if (!w || !room) {
        free(w);
        free(room);
        return -1;
    }
    for (size_t c = 0; c < t->ncols; c++)
        for (size_t r = 0; r < t->nrows; r++)
            room[c] |= t->cells[r * t->ncols + c].marked;
    for (size_t c = 0; c < t->ncols; c++) {
        w[c] = width_of(t->titles[c]) + (size_t)room[c];
        for (size_t r = 0; r < t->nrows; r++)
            if (shown_width(t, r, c, room[c]) > w[c])
                w[c] = shown_width(t, r, c, room[c]);
    }
    for (size_t c = 0; c < t->ncols; c++) {
        size_t tw = width_of(t->titles[c]) + (size_t)room[c];
        if (c)
            fputs("  ", f);
        if (t->right[c])
            pad(f, w[c] - tw);
        fputs(t->titles[c] ? t->titles[c] : "", f);
        if (c + 1 < t->ncols)
            pad(f, (size_t)room[c] + (t->right[c] ? 0 : w[c] - tw));
    }
    fputc('\n', f);
    for (size_t r = 0; r < t->nrows; r++) {
        /* empty cells at the end of a row print nothing: no trailing blanks */
        size_t last = t->ncols;
        while (last > 1 && !*text_at(t, r, last - 1) && !t->cells[r * t->ncols + last - 1].marked)
            last--;
        for (size_t c = 0; c < last; c++) {
            const cell *ce = &t->cells[r * t->ncols + c];
            size_t sw = shown_width(t, r, c, room[c]);
            if (c)
                fputs("  ", f);
            if (t->right[c])
                pad(f, w[c] - sw);
            if (ce->marked && bold)
                fputs("\033[1m", f);
            fputs(text_at(t, r, c), f);
            if (ce->marked)
                fputc('*', f);
            if (ce->marked && bold)
                fputs("\033[0m", f);
            if (c + 1 < last)
                pad(f, (size_t)(room[c] && !ce->marked) + (t->right[c] ? 0 : w[c] - sw));
        }
        fputc('\n', f);
    }
    free(w);
    free(room);
    return ferror(f) ? -1 : 0;
}

static void md_cell(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '\n' || *s == '\r')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

int cli_table_print_markdown(const cli_table *t, FILE *f)
{
    fputc('|', f);
    for (size_t c = 0; c < t->ncols; c++) {
        fputc(' ', f);
        md_cell(f, t->titles[c] ? t->titles[c] : "");
        fputs(" |", f);
    }
    fputs("\n|", f);
    for (size_t c = 0; c < t->ncols; c++)
        fputs(t->right[c] ? " ---: |" : " :--- |", f);
    fputc('\n', f);
    for (size_t r = 0; r < t->nrows; r++) {
        fputc('|', f);
        for (size_t c = 0; c < t->ncols; c++) {
            const cell *ce = &t->cells[r * t->ncols + c];
            fputc(' ', f);
            if (ce->marked)
                fputs("**", f);
            md_cell(f, text_at(t, r, c));
            if (ce->marked)
                fputs("**", f);
            fputs(" |", f);
        }
        fputc('\n', f);
    }
    return ferror(f) ? -1 : 0;
}

int cli_table_print_html(const cli_table *t, FILE *f, cli_table_href href, void *ctx)
{
    fputs("<table class=\"data sortable\">\n<thead><tr>", f);
    for (size_t c = 0; c < t->ncols; c++) {
        fputs(t->right[c] ? "<th class=\"num\">" : "<th>", f);
        cli_plot_xml_escape(f, t->titles[c] ? t->titles[c] : "");
        fputs("</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    char url[512];
    for (size_t r = 0; r < t->nrows; r++) {
        fputs("<tr>", f);
        for (size_t c = 0; c < t->ncols; c++) {
            const cell *ce = &t->cells[r * t->ncols + c];
            const char *cls = t->right[c] ? (ce->marked ? "num best" : "num") : (ce->marked ? "best" : NULL);
            if (cls)
                fprintf(f, "<td class=\"%s\">", cls);
            else
                fputs("<td>", f);
            const char *link = href ? href(ctx, r, c, url, sizeof url) : NULL;
            if (link) {
                fputs("<a href=\"", f);
                cli_plot_xml_escape(f, link);
                fputs("\">", f);
            }
            if (ce->marked)
                fputs("<strong>", f);
            cli_plot_xml_escape(f, text_at(t, r, c));
            if (ce->marked)
                fputs("</strong>", f);
            fputs(link ? "</a></td>" : "</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody>\n</table>\n", f);
    return ferror(f) ? -1 : 0;
}

void cli_fmt_count(char *buf, size_t len, int64_t v)
{
    char digits[32];
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    int n = snprintf(digits, sizeof digits, "%llu", u);
    char out[48];
    size_t o = 0;
    if (v < 0)
        out[o++] = '-';
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    snprintf(buf, len, "%s", out);
}

void cli_fmt_duration(char *buf, size_t len, double s)
{
    if (!isfinite(s) || s < 0) {
        snprintf(buf, len, "-");
        return;
    }
    if (s < 60.0) {
        snprintf(buf, len, "%.1fs", s);
        return;
    }
    long long t = llround(s);
    if (t < 3600)
        snprintf(buf, len, "%lldm%02llds", t / 60, t % 60);
    else if (t < 86400)
        snprintf(buf, len, "%lldh%02lldm", t / 3600, (t % 3600) / 60);
    else
        snprintf(buf, len, "%lldd%02lldh", t / 86400, (t % 86400) / 3600);
}
