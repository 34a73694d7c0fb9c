/* Terminal tables for the read commands (status, compare): aligned columns,
 * cells marked as the best of their column, and the same table as Markdown.
 * Also the number formats those tables share. */
#ifndef RUN_TEXT_TABLE_H
#define RUN_TEXT_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct run_table run_table;

run_table *run_table_new(size_t ncols); /* NULL if out of memory */
void run_table_free(run_table *t);      /* NULL is a no-op */

/* Column title and alignment (right for numbers). */
int run_table_column(run_table *t, size_t col, const char *title, int right);
/* Starts a new row; cells default to "". */
int run_table_row(run_table *t);
/* Sets a cell of the last row (a copy of text); marked cells are the best
 * of their column. Returns 0 or -1 (out of memory, bad column). */
int run_table_set(run_table *t, size_t col, const char *text, int marked);
int run_table_setf(run_table *t, size_t col, int marked, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
size_t run_table_rows(const run_table *t);

/* Aligned text; a marked cell gets a '*' after it (and is bold when `bold`,
 * for a terminal). Two spaces between columns. */
int run_table_print(const run_table *t, FILE *f, int bold);
/* A GitHub-style pipe table; marked cells are **bold**, '|' escaped. */
int run_table_print_markdown(const run_table *t, FILE *f);

/* 1183322 -> "1,183,322" */
void run_fmt_count(char *buf, size_t len, int64_t v);
/* seconds -> "42.0s", "4m12s", "3h07m", "2d04h" */
void run_fmt_duration(char *buf, size_t len, double seconds);

#endif
