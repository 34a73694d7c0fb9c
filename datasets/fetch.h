/* Fetching a manifest's dataset into a data root, the whole way: download
 * each file (resuming what an earlier attempt left), verify its SHA-256,
 * unpack into a staging folder, check the loader accepts it, write the
 * fetch record, and rename the folder into place. Under ROOT:
 *
 *   ROOT/DIR/                       the dataset's folder (the loader reads it);
 * appears complete or not at all ROOT/downloads/NAME/FILE.part   a download in
 * progress or interrupted (resumed by the next fetch) ROOT/downloads/NAME/FILE
 * a verified download (kept with keep_downloads: a mirror's layout)
 *   ROOT/downloads/NAME/FILE.bad-XXXXXXXX   a download whose SHA-256 did not
 * match: kept aside, never used ROOT/.DIR.tmp-XXXXXX            the staging
 * folder while unpacking
 *
 * One fetch per dataset and root at a time (a lock in downloads/NAME):
 * a second waits for the first, then finds the dataset there.
 *
 * Threads: ds_fetch uses only its arguments and the thread's error message,
 * so a service can run it on a worker thread (uv_queue_work), after calling
 * ds_http_global_init() once. Progress and cancelling go through the
 * progress callback, called on the fetching thread. */
#ifndef DS_FETCH_H
#define DS_FETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "datasets/fsutil.h"
#include "datasets/manifest.h"

typedef enum ds_phase {
    DS_PHASE_WAIT = 0, /* waiting for another fetch of the same dataset */
    DS_PHASE_DOWNLOAD, /* done/total: bytes of the file */
    DS_PHASE_RETRY,    /* message: the failure; waiting before the next attempt */
    DS_PHASE_VERIFY,   /* done/total: bytes hashed */
    DS_PHASE_UNPACK,   /* done/total: archive bytes read */
    DS_PHASE_DONE,
} ds_phase;

typedef struct ds_progress {
    const char *dataset;
    ds_phase phase;
    const char *file;           /* the file concerned, "" for the dataset */
    int file_index, file_count; /* 1-based */
    int64_t done, total;        /* bytes; total -1 when unknown */
    double rate;                /* download: bytes per second lately (0 unknown) */
    const char *url;            /* download, retry */
    int attempt, attempts;      /* download, retry: the try of this URL, of how many */
    const char *message;        /* retry, wait: why */
} ds_progress;

typedef struct ds_fetch_opts {
    const char *root;          /* the data root (created if missing) */
    const char *mirror;        /* NULL, or a base URL tried first: MIRROR/NAME/FILE */
    const char *manifest_name; /* recorded; default the manifest's source */
    int retries;               /* more tries of a URL after a retryable failure (default 3) */
    double backoff_s;          /* wait before the first retry, doubled after each (default
                                  1) */
    double connect_timeout_s;  /* default 30 */
    double stall_timeout_s;    /* no byte for this long fails the attempt (default
                                  60) */
    bool force;                /* fetch again even when it is there */
    bool keep_downloads;       /* keep the verified downloads in ROOT/downloads/NAME */
    /* nonzero return cancels the fetch (DS_EINTR); may be NULL */
    int (*progress)(void *ctx, const ds_progress *p);
    void *ctx;
} ds_fetch_opts;

void ds_fetch_opts_default(ds_fetch_opts *o);

typedef struct ds_fetch_result {
    char dir[DS_PATH_MAX];   /* ROOT/DIR */
    bool already;            /* it was there (verified, or present and accepted): nothing
                                done */
    bool unverified;         /* already, but not fetched by epochd (no record) */
    int64_t downloaded;      /* bytes received in this call */
    int64_t resumed;         /* bytes partial downloads held when resumed */
    int attempts;            /* download attempts made */
    double download_seconds; /* of those attempts (not waits, verifying or
                                unpacking) */
} ds_fetch_result;

/* 0 when ROOT/DIR holds the dataset; else a code and the message: every URL
 * tried and why it failed; where a partial download is kept; for a
 * checksum mismatch, the expected and actual sums and where the bad file
 * was put aside. Nothing half-written is ever at ROOT/DIR. */
int ds_fetch(const ds_entry *e, const ds_manifest *m, const ds_fetch_opts *o, ds_fetch_result *r);

#endif
