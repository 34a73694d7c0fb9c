/* A run's data step before training (session_data.c). */
#ifndef RUN_SESSION_DATA_H
#define RUN_SESSION_DATA_H

#include "engine/desc.h"
#include "runner/session.h"

/* For dataset: folder, finds or builds the decoded cache (under
 * $EPOCHD_CACHE_DIR, else <state_dir>/cache) and points d->cache at it;
 * other datasets: nothing. 0, or -1 with out filled (code, error, retryable). */
int run_prepare_data(const run_job *job, eng_data_desc *d, run_outcome *out);

/* The spec's class names (folder datasets) as a JSON list for the
 * checkpoint's metadata; NULL when there are none. The caller frees it. */
char *run_classes_json(const spec *sp);

#endif
