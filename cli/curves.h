/* The training curves of runs (`epochd plot`): each run's epochs from the
 * database as series of a cli_plot - train/test loss and accuracy against
 * the epoch or the cumulative seconds - ready for cli_plot_svg_write. */
#ifndef CLI_CURVES_H
#define CLI_CURVES_H

#include <stdbool.h>
#include <stdio.h>

#include "cli/plot_svg.h"
#include "db/db.h"

/* NULL-terminated metric keys, in panel order: train_loss train_acc test_loss test_acc. */
extern const char *const cli_curve_metrics[];

typedef struct cli_curves cli_curves;

/* The runs matching the GLOB patterns (all when n_names is 0) that have
 * epochs; metric: an index into cli_curve_metrics for one panel, or -1 for
 * all four. A run asked for by name that has no epochs is named in a note
 * on `notes` (NULL: none). 0, or a DB_E* code (db_last_error says why). */
int cli_curves_load(db *d, const char *const *names, size_t n_names, int metric, bool x_seconds, FILE *notes,
                    cli_curves **out);
/* The same with any db_filter (one run, one spec file); notes: NULL for none. */
int cli_curves_load_filter(db *d, const db_filter *f, int metric, bool x_seconds, FILE *notes, cli_curves **out);
/* The chart: its title is `title`, else "NAME (run ID)" or "N runs". */
const cli_plot *cli_curves_plot(cli_curves *c, const char *title);
size_t cli_curves_count(const cli_curves *c);
void cli_curves_free(cli_curves *c);

#endif
