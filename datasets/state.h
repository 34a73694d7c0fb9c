/* What is on disk for a manifest's dataset under a data root, for `epochd
 * data list` and for the fetch's "already there" test:
 *   absent    nothing (maybe nothing but an empty downloads/ folder)
 *   partial   no folder yet, but downloads/NAME holds an interrupted or
 *             unpacked-not-yet download (the next fetch resumes it)
 *   present   the folder is there and its loader accepts it, but epochd did
 *             not fetch it (no record): unpacked by hand, or another tool
 *   verified  fetched by epochd from this manifest's files; every file the
 *             record lists is there with its size (and, when hashing, its
 *             SHA-256), and the loader accepts the folder
 *   damaged   the folder is there but one of those fails (the detail says
 * which) */
#ifndef DS_STATE_H
#define DS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datasets/fsutil.h"
#include "datasets/manifest.h"

typedef enum ds_state_kind { DS_ABSENT = 0, DS_PARTIAL, DS_PRESENT, DS_VERIFIED, DS_DAMAGED } ds_state_kind;

typedef struct ds_state {
    ds_state_kind kind;
    char dir[DS_PATH_MAX]; /* root/DIR */
    int64_t bytes;         /* the folder's files */
    int64_t partial_bytes; /* in downloads/NAME */
    char fetched[32];      /* when (verified, damaged) */
    char detail[1024];     /* why damaged; what present / partial means */
} ds_state;

/* 0 with *out filled (whatever the state), or a negative code when the
 * root cannot be looked at. `hash`: check each file's SHA-256 too. */
int ds_state_of(const ds_entry *e, const ds_manifest *m, const char *root, bool hash, ds_state *out);
const char *ds_state_name(ds_state_kind k);

/* Whether the entry's loader accepts dir (its header and size checks; for
 * loader none, that the expected files exist): 0, or a code with the
 * reason in msg. */
int ds_loader_check(const ds_entry *e, const char *dir, char *msg, size_t len);

#endif
