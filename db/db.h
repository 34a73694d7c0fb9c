/* The SQLite store: runs, their epochs, and the views that compare them.
 *
 * One `db` handle is one SQLite connection (WAL, foreign keys on, a busy
 * timeout so readers and a writer can share the file). Every call that
 * changes the database is one short transaction of its own; wrap several in
 * db_begin()/db_commit() to make them one (calls nest as savepoints).
 *
 * Functions return DB_OK (0) or a negative DB_E* code; the reason, including
 * SQLite's own message, is in db_last_error() (per thread). Nothing here
 * prints, exits or aborts. Depends on SQLite and libc only.
 *
 * Schema, statuses and transitions: docs/database.md. */
#ifndef DB_DB_H
#define DB_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    DB_OK = 0,
    DB_ENOMEM = -1,    /* an allocation failed */
    DB_EINVAL = -2,    /* bad argument */
    DB_ESQL = -3,      /* SQLite reported an error (message in db_last_error) */
    DB_EBUSY = -4,     /* the database stayed locked past the busy timeout */
    DB_ENOTFOUND = -5, /* no such run (or no row matched) */
    DB_EVERSION = -6,  /* the file's schema is newer than this program knows */
    DB_ENOENT = -7,    /* the database file does not exist (opened without DB_OPEN_CREATE) */
    DB_ESTATE = -8,    /* the run's status does not allow this transition */
    DB_ECONSTRAINT = -9, /* a value broke a constraint (e.g. accuracy outside [0, 1]) */
    DB_EIO = -10,      /* the file or its folder could not be created, inspected, read or written
                          (SQLite's I/O errors, a read-only or damaged file) */
    DB_EFULL = -11,    /* the disk (or quota) is full: a write may succeed once space returns */
};

/* The schema version this program writes (PRAGMA user_version). */
#define DB_SCHEMA_VERSION 7

/* Timestamps: ISO-8601 UTC with milliseconds, "2026-11-28T03:04:05.123Z". */
#define DB_TIME_LEN 25 /* including the terminating NUL */

typedef struct db db;

/* Run statuses, stored as their names (db_status_name) in runs.status. */
typedef enum db_status {
    DB_QUEUED = 0,
    DB_RUNNING,
    DB_DONE,
    DB_FAILED,
    DB_INVALID,
    DB_CANCELLED,
    DB_INTERRUPTED,
    DB_STATUS_COUNT
} db_status;
#define DB_STATUS_BIT(s) (1u << (s))
#define DB_ACTIVE_STATUSES \
    (DB_STATUS_BIT(DB_QUEUED) | DB_STATUS_BIT(DB_RUNNING) | DB_STATUS_BIT(DB_INTERRUPTED))
#define DB_FINISHED_STATUSES                                                       \
    (DB_STATUS_BIT(DB_DONE) | DB_STATUS_BIT(DB_FAILED) | DB_STATUS_BIT(DB_INVALID) | \
     DB_STATUS_BIT(DB_CANCELLED))

const char *db_status_name(db_status s); /* "queued", ...; "?" if out of range */
int db_status_parse(const char *name, db_status *out); /* DB_EINVAL if unknown */

/* ---- errors, time, paths ---- */

const char *db_last_error(void);     /* "" if none */
const char *db_strerror(int code);   /* short name of a code */
void db_clear_error(void);

/* The current time as DB_TIME_LEN-1 characters of ISO-8601 UTC. */
int db_now(char out[DB_TIME_LEN]);

/* The database used when no --db is given: $EPOCHD_DB if set and not empty,
 * else "var/epochd.db" (relative to the current directory). */
const char *db_default_path(void);

/* ---- opening ---- */

enum {
    DB_OPEN_CREATE = 1u << 0, /* create the file (and its parent folders) if missing */
    /* A reader that can change nothing (SQLITE_OPEN_READONLY and query_only):
     * no migration, so the file must already have DB_SCHEMA_VERSION (an
     * older one is DB_EVERSION, saying how to migrate it). Not with CREATE. */
    DB_OPEN_READONLY = 1u << 1,
};

/* Opens (and with DB_OPEN_CREATE creates) the database and migrates its
 * schema to DB_SCHEMA_VERSION (DB_OPEN_READONLY: neither). Without DB_OPEN_CREATE a missing file is
 * DB_ENOENT. A file whose user_version is newer than DB_SCHEMA_VERSION is
 * DB_EVERSION. Busy timeout: 5000 ms. On error *out is NULL. */
int db_open(const char *path, unsigned flags, db **out);
void db_close(db *d); /* NULL is a no-op; rolls back an open transaction */
/* True when SQLite could open the file only for reading (its permissions,
 * or its folder's): every write would fail. */
bool db_readonly(const db *d);

/* Brings the schema to DB_SCHEMA_VERSION (db_open already does this). */
int db_migrate(db *d);
int db_schema_version(db *d, int *out);
int db_set_busy_timeout(db *d, int ms);
const char *db_path(const db *d);

/* Groups several calls into one transaction (BEGIN IMMEDIATE: it waits for
 * the write lock up front, so it cannot fail half-way on a busy database). */
int db_begin(db *d);
/* A read transaction (BEGIN DEFERRED): several reads see one snapshot and
 * take no write lock, so the service is never held up by a reader. */
int db_begin_read(db *d);
int db_commit(db *d);
int db_rollback(db *d);

/* ---- runs ---- */

/* What is known about a run when it is created. Strings may be NULL
 * (stored as NULL) except name. */
typedef struct db_run_new {
    const char *name;
    const char *spec_path;   /* the spec file as the service found it */
    const char *spec_sha256; /* identity of the spec (hex); see db_run_find_spec */
    const char *spec;        /* the spec's text; NULL for a sweep combination (below) */
    const char *spec_file_sha256; /* a sweep combination: its file's text, stored once with
                                     db_spec_text_put; NULL otherwise */
    const char *template_name; /* model template: mlp, cnn, resnet, mlp_mixer, sequential */
    const char *requested_device; /* the spec's device: auto, cpu, cuda, cuda:N */
    const char *sweep;       /* JSON object of this combination's swept keys, or NULL */
    int64_t params;          /* trainable parameters; < 0: unknown */
    int64_t epochs_planned;  /* <= 0: unknown */
    int64_t priority;        /* higher runs first */
} db_run_new;

/* A new run in status `queued`. */
int db_run_create(db *d, const db_run_new *r, int64_t *id);
/* A new run in status `invalid` with the validator's message (finished now). */
int db_run_create_invalid(db *d, const db_run_new *r, const char *error, int64_t *id);
/* A new run already `running` on `device` (the foreground `epochd run`):
 * started now, attempts 1. pid <= 0 stores NULL. */
int db_run_create_running(db *d, const db_run_new *r, const char *device, int64_t pid,
                          int64_t *id);

/* Transitions. Each is one UPDATE guarded by the statuses it may leave
 * from; any other current status is DB_ESTATE (the message says which).
 *
 *   start:   queued | interrupted | running(orphaned) -> running;
 *            sets device and worker pid, started_at if not yet set,
 *            attempts + 1, clears error and finished_at.
 *   finish:  running -> done | failed | cancelled | interrupted;
 *            queued | interrupted -> cancelled | failed;
 *            sets error (NULL clears it), clears the worker pid;
 *            finished_at = now except for interrupted (not finished).
 *   requeue: running | interrupted | failed -> queued (to resume); the
 *            reason goes into note, attempts and failures are kept.
 *   retry:   as requeue, and failures + 1 (an attempt that failed for a
 *            reason a retry may cure; max_attempts counts these). */
int db_run_start(db *d, int64_t id, const char *device, int64_t pid);
int db_run_finish(db *d, int64_t id, db_status to, const char *error);
int db_run_requeue(db *d, int64_t id, const char *note);
int db_run_retry(db *d, int64_t id, const char *note);

/* Live progress of the epoch in flight: epoch (1-based) and the fraction of
 * it done, the current training rate, and the training samples per epoch
 * (<= 0: unknown); `epochd status` computes the ETA from these. Outside a
 * caller's transaction its commit skips the fsync (progress is ephemeral;
 * ~0.1 ms instead of ~6 ms): call it as often as once a second. */
typedef struct db_progress {
    int64_t epoch;
    double fraction;
    double images_per_sec;
    int64_t samples_per_epoch;
} db_progress;
int db_run_progress(db *d, int64_t id, const db_progress *p);

/* The latest checkpoint file, and the epoch of the best one (<= 0 leaves
 * best_checkpoint_epoch as it is). */
int db_run_set_checkpoint(db *d, int64_t id, const char *path, int64_t best_epoch);
int db_run_set_params(db *d, int64_t id, int64_t params);
/* A short human note shown by `epochd status` ("waiting for cuda:1"); NULL clears. */
int db_run_set_note(db *d, int64_t id, const char *note);
/* Sets cancel_requested on a queued, running or interrupted run (the
 * service acts on it); DB_ESTATE if the run already ended. */
int db_run_request_cancel(db *d, int64_t id);

/* A run row. Strings are NULL where the column is NULL; numbers use the
 * sentinel said beside them. */
typedef struct db_run {
    int64_t id;
    char *name;
    char *spec_path;
    char *spec_sha256;
    char *spec;             /* NULL for a sweep combination recorded since version 7: */
    char *spec_file_sha256; /* its sweep file's text in spec_texts (db_spec_text_get); the
                               combination's spec is that file with `sweep` applied */
    db_status status;
    char *device;           /* where it runs or ran */
    int64_t params;         /* -1: unknown */
    char *error;
    int64_t attempts;       /* starts */
    int64_t failures;       /* starts that failed and were retried (not stops, not the service's faults) */
    char *created_at, *started_at, *finished_at;
    int64_t priority;
    char *template_name;
    char *requested_device;
    int64_t epochs_planned; /* -1: unknown */
    char *sweep;            /* JSON object text or NULL */
    int64_t worker_pid;     /* 0: none */
    char *checkpoint;
    int64_t best_checkpoint_epoch; /* 0: none */
    int cancel_requested;
    char *note;
    int64_t progress_epoch; /* 0: no progress reported */
    double progress_fraction;       /* NAN: unknown */
    double progress_images_per_sec; /* NAN: unknown */
    int64_t samples_per_epoch;      /* -1: unknown */
    char *progress_updated_at;
    /* executor slurm (db/jobs.h): the run's current batch job */
    int64_t slurm_job_id;   /* 0: none */
    char *slurm_state;      /* PENDING, RUNNING, ... as Slurm says; NULL: none */
    char *slurm_reason;     /* why it is pending (Resources, Priority, ...); NULL: none */
    int64_t preemptions;    /* times the cluster interrupted it (not an attempt each) */
    int resume_pending;     /* 1: the last start was interrupted; the next one continues that attempt */
} db_run;

typedef struct db_run_list {
    size_t n;
    db_run *runs;
} db_run_list;

void db_run_free(db_run *r);           /* NULL is a no-op */
void db_run_list_free(db_run_list *l); /* NULL is a no-op */

int db_run_get(db *d, int64_t id, db_run **out); /* DB_ENOTFOUND if none */
/* The newest run (highest id) whose spec_path, spec_sha256 and sweep are
 * all equal (NULL matches NULL): this is a spec's identity (docs/database.md),
 * with sweep telling the combinations of one sweep file apart.
 * DB_ENOTFOUND if none. */
int db_run_find_spec(db *d, const char *spec_path, const char *spec_sha256, const char *sweep,
                     int64_t *id);
int db_run_latest_by_name(db *d, const char *name, db_run **out); /* DB_ENOTFOUND if none */

/* Which runs a listing returns. Zero fields do not filter. */
typedef struct db_filter {
    const char *const *names; /* SQLite GLOB patterns on the name (case-sensitive, * ? [...]);
                                 a run matches if any pattern does */
    size_t n_names;
    unsigned statuses;        /* mask of DB_STATUS_BIT(); 0: any */
    int64_t run_id;           /* > 0: only this run */
    const char *spec_path;    /* only runs of this spec file */
    size_t limit;             /* at most this many rows; 0: all */
} db_filter;

typedef enum db_order {
    DB_ORDER_ID = 0,  /* id ascending */
    DB_ORDER_QUEUE,   /* priority descending, then created_at, then id ascending */
    DB_ORDER_RECENT,  /* newest first: finished_at (else created_at) descending, id descending */
} db_order;

int db_runs_list(db *d, const db_filter *f, db_order order, db_run_list **out);
/* Queued runs in the order the scheduler takes them. */
int db_runs_queued(db *d, db_run_list **out);
/* Runs to resume after a restart: running (orphaned) and interrupted, in queue order. */
int db_runs_to_resume(db *d, db_run_list **out);

/* ---- spec texts (a sweep file's text, stored once for its combinations) ---- */

/* Stores text (len bytes) under sha256, its SHA-256 as the caller computed
 * it (64 hex digits); a text already stored is left as it is. */
int db_spec_text_put(db *d, const char *sha256, const char *text, size_t len);
/* The text stored under sha256 (malloc'd, NUL-terminated); DB_ENOTFOUND if none. */
int db_spec_text_get(db *d, const char *sha256, char **text, size_t *len);

/* ---- epochs ---- */

/* One finished epoch. NAN stores NULL. Accuracies are fractions in [0, 1];
 * seconds is the wall time of the epoch (train + eval). */
typedef struct db_epoch {
    int64_t run_id;
    int64_t epoch; /* from 1 */
    double train_loss, train_acc, test_loss, test_acc;
    double lr, seconds, samples_per_sec;
} db_epoch;

/* Records an epoch. Idempotent: reporting the same (run_id, epoch) again
 * (a resumed run re-reporting) updates that row in place - never a second
 * row; the last report wins. It is an UPSERT (INSERT ... ON CONFLICT DO
 * UPDATE), not INSERT OR REPLACE, so the row is never deleted in between. */
int db_epoch_put(db *d, const db_epoch *e);
/* All epochs of a run in epoch order (*n may be 0, *out then NULL); free() them. */
int db_epochs_get(db *d, int64_t run_id, db_epoch **out, size_t *n);
/* How many of epochs 1..upto the run has rows for. */
int db_epochs_count(db *d, int64_t run_id, int64_t upto, int64_t *n);

/* ---- leaderboard (the view of the same name, one row per run) ---- */

typedef struct db_board_row {
    int64_t id;
    char *name;
    db_status status;
    char *template_name;     /* NULL: unknown */
    int64_t params;          /* -1: unknown */
    int64_t epochs_done;
    int64_t epochs_planned;  /* -1: unknown */
    double best_test_acc;    /* NAN: no epoch has a test accuracy */
    int64_t best_epoch;      /* first epoch reaching best_test_acc; 0: none */
    double final_test_acc;   /* test accuracy of the last epoch; NAN: none */
    double lowest_test_loss; /* NAN: none */
    double train_seconds;    /* sum of the epochs' seconds; 0 with no epochs */
    double images_per_sec;   /* mean of the epochs' samples_per_sec; NAN: none */
    char *created_at, *finished_at;
    char *sweep, *spec_path, *device, *error;
    bool diverged;           /* failed with "diverged: ...": never ranked (no metrics above) */
} db_board_row;

typedef struct db_board {
    size_t n;
    db_board_row *rows;
} db_board;

/* Rows of the leaderboard view matching the filter, by id ascending
 * (order by the caller's own criteria). */
int db_leaderboard(db *d, const db_filter *f, db_board **out);
void db_board_free(db_board *b); /* NULL is a no-op */

#endif
