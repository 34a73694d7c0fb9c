/* The spec a run runs, as text, wherever it is stored: the run's own
 * `spec` (a plain spec file, or a sweep combination recorded before schema
 * version 7), or - for a sweep combination - derived from its sweep file's
 * text, stored once in spec_texts, and its `sweep` values. The one place
 * that derivation is made: the worker's spec (attempt.c), the placement's
 * cost, `epochd export` and the dashboard all read a run's spec here. */
#ifndef SVC_RUN_SPEC_H
#define SVC_RUN_SPEC_H

#include <stddef.h>

#include "db/db.h"
#include "schema/spec.h"

/* The run's spec text into *out (malloc'd, NUL-terminated, *len bytes;
 * len may be NULL). A derived combination's SHA-256 must be the run's
 * spec_sha256 (its identity), so what runs is exactly what was queued.
 * opt: the YAML limits to derive with (NULL: the defaults). 0, with *out
 * NULL when the run has no text (an unreadable file); SVC_EDB, SVC_EINVAL
 * (the stored file no longer gives the combination), SVC_ENOMEM, with
 * svc_last_error() saying why. */
int svc_run_spec_text(db *d, const db_run *r, const spec_options *opt, char **out, size_t *len);

#endif
