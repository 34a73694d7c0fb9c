/* Terminal tables for the read commands (status, compare): aligned columns,
 * cells marked as the best of their column, and the same table as Markdown.
 * Also the number formats those tables share. */
#ifndef CLI_TEXT_TABLE_H
#define CLI_TEXT_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct cli_table cli_table;

cli_table *cli_table_new(size_t ncols); /* NULL if out of memory */
void cli_table_free(cli_table *t);      /* NULL is a no-op */

/* Column title and alignment (right for numbers). */
int cli_table_column(cli_table *t, size_t col, const char *title, int right);
/* Starts a new row; cells default to "". */
int cli_table_row(cli_table *t);
/* Sets a cell of the last row (a copy of text); marked cells are the best
 * of their column. Returns 0 or -1 (out of memory, bad column). */
/* A malloc'd copy of text with control characters written as \xNN (cells
 * are escaped this way themselves); NULL when out of memory. */
char *cli_escaped(const char *text);

int cli_table_set(cli_table *t, size_t col, const char *text, int marked);
int cli_table_setf(cli_table *t, size_t col, int marked, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
size_t cli_table_rows(const cli_table *t);

/* Aligned text; a marked cell gets a '*' after it (and is bold when `bold`,
 * for a terminal). Two spaces between columns. */
int cli_table_print(const cli_table *t, FILE *f, int bold);
/* A GitHub-style pipe table; marked cells are **bold**, '|' escaped. */
int cli_table_print_markdown(const cli_table *t, FILE *f);

/* An HTML table (thead, tbody), every text escaped; numeric columns get
 * class "num", marked cells class "best" and <strong>. href, if not NULL,
 * may give a cell a link: it returns buf holding the URL, or NULL. */
typedef const char *(*cli_table_href)(void *ctx, size_t row, size_t col, char *buf, size_t len);
int cli_table_print_html(const cli_table *t, FILE *f, cli_table_href href, void *ctx);

/* 1183322 -> "1,183,322" */
void cli_fmt_count(char *buf, size_t len, int64_t v);
/* seconds -> "42.0s", "4m12s", "3h07m", "2d04h" */
void cli_fmt_duration(char *buf, size_t len, double seconds);

#endif
