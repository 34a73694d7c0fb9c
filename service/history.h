/* The worker's record of its finished epochs, kept beside its checkpoints
 * (<state>/runs/<key>/epochs.jsonl, one epoch event per line, fsync'ed).
 *
 * Why: the worker writes epoch k's checkpoint before it reports epoch k. If
 * the service (or the worker) dies in between, a resumed worker starts after
 * epoch k and would never report it again: the database would lack it. So
 * the worker appends each epoch to this history before reporting it, keeps
 * `committed.safetensors` as a hard link to the newest checkpoint whose
 * epoch the history holds, and on resume (a) rolls back to that checkpoint
 * if the last one got ahead of the history and (b) reports every recorded
 * epoch up to the resume point again (the service's upsert makes that
 * idempotent). */
#ifndef SVC_HISTORY_H
#define SVC_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/protocol.h"

typedef struct svc_history {
    char dir[1024];
    int fd;          /* epochs.jsonl, opened for appending */
    char **replay;   /* recorded epoch lines to report again, ascending by epoch */
    size_t n_replay;
} svc_history;

/* Prepares the run folder before training. Without resume everything of an
 * earlier run with this key is removed (a fresh start). With resume, a
 * last.safetensors of another spec (spec_sha256 differs) is removed, a
 * checkpoint ahead of the history is rolled back to committed.safetensors
 * (or dropped), and the recorded epochs up to the checkpoint are kept for
 * svc_history_replay. Notes go to stderr. 0, or SVC_EIO (svc_last_error says why). */
int svc_history_open(svc_history *h, const char *dir, const char *spec_sha256, bool resume);
/* Appends one epoch event (its checkpoint member is not kept) and syncs it
 * to disk; then, when this epoch wrote checkpoint `ck`, points
 * committed.safetensors at it. 0, or SVC_EIO / SVC_ENOMEM. */
int svc_history_append(svc_history *h, const svc_event *epoch, const char *ck);
/* How many recorded epochs lie in 1..upto; svc_history_replayed reads the
 * i-th of them (0-based, ascending) into *e, marked replayed, without a
 * checkpoint. */
size_t svc_history_replay_count(const svc_history *h, int64_t upto);
int svc_history_replayed(const svc_history *h, size_t i, svc_event *e);
void svc_history_close(svc_history *h);

/* Epoch and spec_sha256 from a checkpoint's metadata without reading its
 * tensors. 0, or -1 (missing or unreadable). sha may be NULL. */
int svc_checkpoint_meta(const char *path, int64_t *epoch, char sha[65]);

#endif
