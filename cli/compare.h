/* A comparison of runs (`epochd compare`): one leaderboard row per run,
 * sorted, optionally grouped by sweep with a column per swept key, rendered
 * as an aligned table, CSV, JSON or Markdown. Loading and rendering are
 * apart so that other front ends can render the same numbers. */
#ifndef CLI_COMPARE_H
#define CLI_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "db/db.h"

typedef enum cli_sort { CLI_SORT_BEST, CLI_SORT_FINAL, CLI_SORT_PARAMS, CLI_SORT_TIME, CLI_SORT_NAME } cli_sort;
typedef enum cli_format { CLI_FORMAT_TABLE, CLI_FORMAT_CSV, CLI_FORMAT_JSON, CLI_FORMAT_MARKDOWN } cli_format;

/* NULL-terminated option words, indexed by the enums above. */
extern const char *const cli_sort_names[];
extern const char *const cli_format_names[];

typedef struct cli_comparison cli_comparison;

/* The runs whose names match one of the GLOB patterns (all runs when
 * n_names is 0), in sort order; grouped: by sweep file. 0, or a DB_E*
 * code (db_last_error says why). */
int cli_comparison_load(db *d, const char *const *names, size_t n_names, cli_sort sort, bool grouped,
                        cli_comparison **out);
/* The same with any db_filter (names, statuses, one spec file). */
int cli_comparison_load_filter(db *d, const db_filter *f, cli_sort sort, bool grouped, cli_comparison **out);
size_t cli_comparison_count(const cli_comparison *c);
void cli_comparison_free(cli_comparison *c);

/* Renders it; bold marks the best values with terminal bold (tables only).
 * 0, or -1 when out of memory or the output failed. */
int cli_comparison_print(const cli_comparison *c, FILE *f, cli_format format, bool bold);

/* The rows as `--format json` prints them (a new reference; NULL when out of
 * memory), dumped with CLI_JSON_FLAGS. */
#define CLI_JSON_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(15))
json_t *cli_comparison_json(const cli_comparison *c);

/* The tables as HTML (cli_table_print_html), one per sweep group with a
 * heading; a run's name links to run_link_prefix followed by its id
 * (NULL: no links). 0, or -1 when the output failed. */
int cli_comparison_print_html(const cli_comparison *c, FILE *f, const char *run_link_prefix);

#endif
