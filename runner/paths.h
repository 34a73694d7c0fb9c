/* Default locations and small file-system helpers of the runner. */
#ifndef RUN_PATHS_H
#define RUN_PATHS_H

#include <stddef.h>

/* The state directory when no --state-dir is given: $EPOCHD_STATE_DIR if set
 * and not empty, else "var/state" (beside the default database var/epochd.db). */
const char *run_default_state_dir(void);

/* mkdir -p; 0 or -errno. */
int run_mkdirs(const char *path, unsigned mode);

/* "<state_dir>/runs/<key>" into out. */
int run_checkpoint_dir(const char *state_dir, const char *key, char *out, size_t len);

#endif
