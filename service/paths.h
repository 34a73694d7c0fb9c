/* Default locations of the state folder and the run folders in it. */
#ifndef SVC_PATHS_H
#define SVC_PATHS_H

#include <stddef.h>

/* The state folder when none is given: $EPOCHD_STATE_DIR if set and not
 * empty, else "var/state" (beside the default database var/epochd.db). */
const char *svc_default_state_dir(void);

/* mkdir -p. 0, or SVC_EIO / SVC_EINVAL (path too long) with the message set. */
int svc_mkdirs(const char *path, unsigned mode);

/* A run's folder "<state_dir>/runs/<key>" into out (checkpoints, history,
 * the spec the worker reads). 0, or SVC_EINVAL when it does not fit. */
int svc_run_dir(const char *state_dir, const char *key, char *out, size_t len);

/* svc_run_dir, then creates it (mode 0750). */
int svc_run_dir_make(const char *state_dir, const char *key, char *out, size_t len);

#endif
