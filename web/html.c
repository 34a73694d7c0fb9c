/* The page frame (header, navigation, footer), escaping and the number
 * formats the pages share with `epochd status` and `compare`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/plot_svg.h"
#include "cli/text_table.h"
#include "epochd_config.h"
#include "service/error.h"
#include "web/internal.h"

void web_esc(FILE *f, const char *s) { cli_plot_xml_escape(f, s); }
void web_esc_lines(FILE *f, const char *s) { cli_plot_xml_escape_lines(f, s); }

void web_url_esc(FILE *f, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_.~", *p))
            fputc(*p, f);
        else
            fprintf(f, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
    }
}

void web_page_begin(web_request *rq, const char *title, web_nav nav)
{
    FILE *f = rq->out;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    web_esc(f, title);
    fputs(" - epochd</title>\n<link rel=\"stylesheet\" href=\"/static/app.css\">\n"
          "<script src=\"/static/app.js\" defer></script>\n</head>\n<body>\n<header class=\"top\">\n"
          "<a class=\"brand\" href=\"/\">epochd</a>\n<nav>",
          f);
    static const char *const links[][2] = {{"/", "Runs"}, {"/compare", "Compare"}, {"/help", "Commands"}};
    for (int i = 0; i < 3; i++)
        fprintf(f, "<a href=\"%s\"%s>%s</a>", links[i][0], (int)nav == i ? " class=\"here\"" : "", links[i][1]);
    fputs("<a href=\"/metrics\">Metrics</a></nav>\n<span class=\"where\">", f);
    web_esc(f, rq->srv->db_path);
    fputs(rq->srv->service ? " &middot; service" : " &middot; database only", f);
    fputs("</span><span id=\"updated\"></span>\n</header>\n<main>\n", f);
}

void web_page_end(web_request *rq)
{
    fprintf(rq->out, "</main>\n<footer>epochd %s &middot; read-only: every change is an "
                     "<a href=\"/help\">epochd command</a></footer>\n</body>\n</html>\n",
            EPOCHD_VERSION);
}

void web_status_badge(FILE *f, db_status s)
{
    const char *n = db_status_name(s);
    fprintf(f, "<span class=\"st st-%s\">%s</span>", n, n); /* status names are fixed words */
}

void web_fmt_acc(char *buf, size_t len, double v)
{
    if (isfinite(v))
        snprintf(buf, len, "%.4f", v);
    else
        snprintf(buf, len, "-");
}

void web_fmt_count(char *buf, size_t len, double v)
{
    if (isfinite(v))
        cli_fmt_count(buf, len, llround(v));
    else
        snprintf(buf, len, "-");
}

void web_fmt_time(char *buf, size_t len, const char *iso)
{
    /* "2026-11-28T03:04:05.123Z" -> "2026-11-28 03:04:05" (UTC), as status shows it */
    snprintf(buf, len, "%.19s", iso ? iso : "-");
    if (strlen(buf) > 10 && buf[10] == 'T')
        buf[10] = ' ';
}

int web_error_page(web_request *rq, int status, const char *message)
{
    rq->status = status;
    rq->no_cache = true;
    char title[64];
    snprintf(title, sizeof title, "%d", status);
    web_page_begin(rq, title, WEB_NAV_NONE);
    fprintf(rq->out, "<h1>%d</h1>\n<p>", status);
    web_esc(rq->out, message);
    fputs("</p>\n<p><a href=\"/\">All runs</a></p>\n", rq->out);
    web_page_end(rq);
    return 0;
}

int web_inline_svg(FILE *f, const cli_plot *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return -1;
    int rc = cli_plot_svg_write(m, p);
    if (fclose(m) != 0 || rc) {
        free(buf);
        return -1;
    }
    const char *start = buf;
    if (!strncmp(start, "<?xml", 5)) { /* HTML takes the <svg> element alone */
        const char *e = strstr(start, "?>");
        start = e ? e + 2 : start;
        while (*start == '\n')
            start++;
    }
    fputs(start, f);
    free(buf);
    return ferror(f) ? -1 : 0;
}
