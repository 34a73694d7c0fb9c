/* A run's data step before training: an image folder decoded into its
 * cache (datasets/prepare.h), and the class names its checkpoints carry. */
#ifndef SVC_DATA_PREP_H
#define SVC_DATA_PREP_H

#include "engine/desc.h"
#include "service/session.h"

/* For dataset: folder, finds or builds the decoded cache (under
 * $EPOCHD_CACHE_DIR, else <state_dir>/cache) and points d->cache at it;
 * other datasets: nothing. 0, or the SVC_E* code with *out filled (err,
 * error, retryable). */
int svc_prepare_data(const svc_session_job *job, eng_data_desc *d, svc_outcome *out);

/* The spec's class names (folder datasets) as a JSON list for the
 * checkpoint's metadata; NULL when there are none. The caller frees it. */
char *svc_classes_json(const spec *sp);

#endif
