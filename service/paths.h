/* Default locations and small file-system helpers of the runner. */
#ifndef SVC_PATHS_H
#define SVC_PATHS_H

#include <stddef.h>

/* The state directory when no --state-dir is given: $EPOCHD_STATE_DIR if set
 * and not empty, else "var/state" (beside the default database var/epochd.db). */
const char *svc_default_state_dir(void);

/* mkdir -p; 0 or -errno. */
int svc_mkdirs(const char *path, unsigned mode);

/* "<state_dir>/runs/<key>" into out. */
int svc_run_dir(const char *state_dir, const char *key, char *out, size_t len);

#endif
