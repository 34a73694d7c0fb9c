/* Schema migrations: an ordered list of SQL steps, applied by PRAGMA user_version.
 *
 * Step N takes a file at version N-1 to version N and ends by setting
 * user_version = N, inside one transaction with the step. Never edit a step
 * that has shipped: add the next one (docs/database.md describes the result). */
#include <stdio.h>

#include "db/internal.h"

/* Version 1: the first contract (docs/design-changes.md) - runs, epochs and the two views. */
static const char migration_1[] =
    "CREATE TABLE runs (\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  name TEXT NOT NULL,\n"
    "  spec_path TEXT,\n"
    "  spec_sha256 TEXT,\n"
    "  spec TEXT,\n"
    "  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed',\n"
    "                                         'invalid', 'cancelled', 'interrupted')),\n"
    "  device TEXT,\n"
    "  params INTEGER CHECK (params IS NULL OR params >= 0),\n"
    "  error TEXT,\n"
    "  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),\n"
    "  created_at TEXT NOT NULL,\n"
    "  started_at TEXT,\n"
    "  finished_at TEXT\n"
    ");\n"
    "CREATE INDEX runs_by_spec ON runs(spec_path, spec_sha256);\n"
    "CREATE INDEX runs_by_name ON runs(name);\n"
    "CREATE TABLE epochs (\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  epoch INTEGER NOT NULL CHECK (epoch >= 1),\n"
    "  train_loss REAL,\n"
    "  train_acc REAL CHECK (train_acc BETWEEN 0 AND 1),\n"
    "  test_loss REAL,\n"
    "  test_acc REAL CHECK (test_acc BETWEEN 0 AND 1),\n"
    "  lr REAL,\n"
    "  seconds REAL CHECK (seconds >= 0),\n"
    "  samples_per_sec REAL,\n"
    "  PRIMARY KEY (run_id, epoch)\n"
    ");\n"
    "CREATE VIEW results AS\n"
    "SELECT e.run_id AS run_id, r.name AS name, r.status AS status, e.epoch AS epoch,\n"
    "       e.train_loss AS train_loss, e.train_acc AS train_acc, e.test_loss AS test_loss,\n"
    "       e.test_acc AS test_acc, e.lr AS lr, e.seconds AS seconds,\n"
    "       e.samples_per_sec AS samples_per_sec\n"
    "FROM epochs e JOIN runs r ON r.id = e.run_id;\n"
    "CREATE VIEW leaderboard AS\n"
    "SELECT r.id AS id, r.name AS name, r.status AS status, r.params AS params,\n"
    "  (SELECT count(*) FROM epochs e WHERE e.run_id = r.id) AS epochs_done,\n"
    "  (SELECT max(e.test_acc) FROM epochs e WHERE e.run_id = r.id) AS best_test_acc,\n"
    "  (SELECT e.epoch FROM epochs e WHERE e.run_id = r.id AND e.test_acc IS NOT NULL\n"
    "    ORDER BY e.test_acc DESC, e.epoch ASC LIMIT 1) AS best_epoch,\n"
    "  (SELECT e.test_acc FROM epochs e WHERE e.run_id = r.id\n"
    "    ORDER BY e.epoch DESC LIMIT 1) AS final_test_acc,\n"
    "  (SELECT total(e.seconds) FROM epochs e WHERE e.run_id = r.id) AS train_seconds,\n"
    "  r.created_at AS created_at\n"
    "FROM runs r;\n"
    "PRAGMA user_version = 1;\n";

/* Version 2: what the service and the read commands need - priority,
 * template, sweep values, live progress, worker and checkpoint bookkeeping,
 * cancel requests; epochs get the time they were recorded; the views gain
 * the run's template/sweep, cumulative seconds and more leaderboard columns. */
static const char migration_2[] =
    "ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;\n"
    "ALTER TABLE runs ADD COLUMN template TEXT;\n"
    "ALTER TABLE runs ADD COLUMN requested_device TEXT;\n"
    "ALTER TABLE runs ADD COLUMN epochs_planned INTEGER CHECK (epochs_planned IS NULL OR epochs_planned >= 1);\n"
    "ALTER TABLE runs ADD COLUMN sweep TEXT;\n"
    "ALTER TABLE runs ADD COLUMN worker_pid INTEGER;\n"
    "ALTER TABLE runs ADD COLUMN checkpoint TEXT;\n"
    "ALTER TABLE runs ADD COLUMN best_checkpoint_epoch INTEGER;\n"
    "ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0\n"
    "  CHECK (cancel_requested IN (0, 1));\n"
    "ALTER TABLE runs ADD COLUMN note TEXT;\n"
    "ALTER TABLE runs ADD COLUMN progress_epoch INTEGER;\n"
    "ALTER TABLE runs ADD COLUMN progress_fraction REAL\n"
    "  CHECK (progress_fraction IS NULL OR progress_fraction BETWEEN 0 AND 1);\n"
    "ALTER TABLE runs ADD COLUMN progress_images_per_sec REAL;\n"
    "ALTER TABLE runs ADD COLUMN samples_per_epoch INTEGER;\n"
    "ALTER TABLE runs ADD COLUMN progress_updated_at TEXT;\n"
    "ALTER TABLE epochs ADD COLUMN recorded_at TEXT;\n"
    "CREATE INDEX runs_queue ON runs(status, priority DESC, created_at, id);\n"
    "DROP VIEW results;\n"
    "CREATE VIEW results AS\n"
    "SELECT e.run_id AS run_id, r.name AS name, r.status AS status, r.template AS template,\n"
    "       r.params AS params, r.sweep AS sweep, e.epoch AS epoch,\n"
    "       e.train_loss AS train_loss, e.train_acc AS train_acc, e.test_loss AS test_loss,\n"
    "       e.test_acc AS test_acc, e.lr AS lr, e.seconds AS seconds,\n"
    "       total(e.seconds) OVER (PARTITION BY e.run_id ORDER BY e.epoch) AS elapsed_seconds,\n"
    "       e.samples_per_sec AS samples_per_sec\n"
    "FROM epochs e JOIN runs r ON r.id = e.run_id;\n"
    "DROP VIEW leaderboard;\n"
    "CREATE VIEW leaderboard AS\n"
    "SELECT r.id AS id, r.name AS name, r.status AS status, r.template AS template,\n"
    "  r.params AS params,\n"
    "  (SELECT count(*) FROM epochs e WHERE e.run_id = r.id) AS epochs_done,\n"
    "  r.epochs_planned AS epochs_planned,\n"
    "  (SELECT max(e.test_acc) FROM epochs e WHERE e.run_id = r.id) AS best_test_acc,\n"
    "  (SELECT e.epoch FROM epochs e WHERE e.run_id = r.id AND e.test_acc IS NOT NULL\n"
    "    ORDER BY e.test_acc DESC, e.epoch ASC LIMIT 1) AS best_epoch,\n"
    "  (SELECT e.test_acc FROM epochs e WHERE e.run_id = r.id\n"
    "    ORDER BY e.epoch DESC LIMIT 1) AS final_test_acc,\n"
    "  (SELECT min(e.test_loss) FROM epochs e WHERE e.run_id = r.id) AS lowest_test_loss,\n"
    "  (SELECT total(e.seconds) FROM epochs e WHERE e.run_id = r.id) AS train_seconds,\n"
    "  (SELECT avg(e.samples_per_sec) FROM epochs e WHERE e.run_id = r.id) AS images_per_sec,\n"
    "  r.created_at AS created_at, r.finished_at AS finished_at, r.sweep AS sweep,\n"
    "  r.spec_path AS spec_path, r.device AS device, r.error AS error\n"
    "FROM runs r;\n"
    "PRAGMA user_version = 2;\n";

/* Version 3: failed attempts counted apart from starts, so that stops,
 * resumes and the service's own faults do not use up max_attempts. */
static const char migration_3[] =
    "ALTER TABLE runs ADD COLUMN failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0);\n"
    "PRAGMA user_version = 3;\n";

/* Version 4: a run that diverged (status failed, error "diverged: ...", as
 * the trainer reports a NaN or infinite training loss) is never ranked: the
 * leaderboard gains `diverged` and shows no metrics for such a run (its
 * epochs stay in `results`). */
static const char migration_4[] =
    "DROP VIEW leaderboard;\n"
    "CREATE VIEW leaderboard AS\n"
    "SELECT r.id AS id, r.name AS name, r.status AS status, r.template AS template,\n"
    "  r.params AS params,\n"
    "  (SELECT count(*) FROM epochs e WHERE e.run_id = r.id) AS epochs_done,\n"
    "  r.epochs_planned AS epochs_planned,\n"
    "  CASE WHEN r.diverged THEN NULL ELSE\n"
    "    (SELECT max(e.test_acc) FROM epochs e WHERE e.run_id = r.id) END AS best_test_acc,\n"
    "  CASE WHEN r.diverged THEN NULL ELSE\n"
    "    (SELECT e.epoch FROM epochs e WHERE e.run_id = r.id AND e.test_acc IS NOT NULL\n"
    "     ORDER BY e.test_acc DESC, e.epoch ASC LIMIT 1) END AS best_epoch,\n"
    "  CASE WHEN r.diverged THEN NULL ELSE\n"
    "    (SELECT e.test_acc FROM epochs e WHERE e.run_id = r.id\n"
    "     ORDER BY e.epoch DESC LIMIT 1) END AS final_test_acc,\n"
    "  CASE WHEN r.diverged THEN NULL ELSE\n"
    "    (SELECT min(e.test_loss) FROM epochs e WHERE e.run_id = r.id) END AS lowest_test_loss,\n"
    "  (SELECT total(e.seconds) FROM epochs e WHERE e.run_id = r.id) AS train_seconds,\n"
    "  (SELECT avg(e.samples_per_sec) FROM epochs e WHERE e.run_id = r.id) AS images_per_sec,\n"
    "  r.created_at AS created_at, r.finished_at AS finished_at, r.sweep AS sweep,\n"
    "  r.spec_path AS spec_path, r.device AS device, r.error AS error,\n"
    "  r.diverged AS diverged\n"
    "FROM (SELECT *, (status = 'failed' AND substr(error, 1, 9) = 'diverged:') AS diverged FROM runs) r;\n"
    "PRAGMA user_version = 4;\n";

/* Version 5: runs as batch jobs of a cluster (executor slurm): the run's
 * current job (id, state and why it waits), the interruptions by the
 * cluster, and whether the next start continues the current attempt; one
 * row per submitted job in slurm_jobs (the history of a run's jobs). */
static const char migration_5[] =
    "ALTER TABLE runs ADD COLUMN slurm_job_id INTEGER;\n"
    "ALTER TABLE runs ADD COLUMN slurm_state TEXT;\n"
    "ALTER TABLE runs ADD COLUMN slurm_reason TEXT;\n"
    "ALTER TABLE runs ADD COLUMN preemptions INTEGER NOT NULL DEFAULT 0 CHECK (preemptions >= 0);\n"
    "ALTER TABLE runs ADD COLUMN resume_pending INTEGER NOT NULL DEFAULT 0\n"
    "  CHECK (resume_pending IN (0, 1));\n"
    "CREATE TABLE slurm_jobs (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  job_id INTEGER NOT NULL,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  submitted_at TEXT NOT NULL,\n"
    "  started_at TEXT,\n"
    "  ended_at TEXT,\n"
    "  state TEXT,\n"
    "  reason TEXT,\n"
    "  node TEXT,\n"
    "  exit_code TEXT,\n"
    "  restarts INTEGER NOT NULL DEFAULT 0 CHECK (restarts >= 0),\n"
    "  UNIQUE (run_id, job_id)\n"
    ");\n"
    "CREATE INDEX slurm_jobs_by_job ON slurm_jobs(job_id);\n"
    "PRAGMA user_version = 5;\n";

/* Version 6: the placement planner's table (issue 16) - what each run costs
 * (the engine's FLOPs per sample, the split sizes, the memory estimate) and
 * where and when the planner expects it to run, which `epochd status`
 * shows; one row per run, kept apart from `runs` so that the planner's
 * frequent writes never touch the run rows. */
static const char migration_6[] =
    "CREATE TABLE plans (\n"
    "  run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  flops_per_sample INTEGER CHECK (flops_per_sample IS NULL OR flops_per_sample >= 0),\n"
    "  train_samples INTEGER CHECK (train_samples IS NULL OR train_samples >= 0),\n"
    "  test_samples INTEGER CHECK (test_samples IS NULL OR test_samples >= 0),\n"
    "  memory_bytes INTEGER CHECK (memory_bytes IS NULL OR memory_bytes >= 0),\n"
    "  device TEXT,\n"
    "  start_at TEXT,\n"
    "  finish_at TEXT,\n"
    "  seconds REAL CHECK (seconds IS NULL OR seconds >= 0),\n"
    "  cpu_seconds REAL CHECK (cpu_seconds IS NULL OR cpu_seconds >= 0),\n"
    "  planned_at TEXT\n"
    ");\n"
    "PRAGMA user_version = 6;\n";

/* Version 7: a sweep file's text stored once (issue 10), not one effective
 * spec per combination (a file with anchors expands up to the node limit:
 * 1,024 combinations of 4.95 MB each were 5 GB). A combination's row names
 * its file's text by SHA-256 and leaves `spec` NULL; its effective spec is
 * derived from (file text, sweep values). run_specs shows every run's text
 * in one place. Rows written before keep their `spec`. */
static const char migration_7[] =
    "CREATE TABLE spec_texts (\n"
    "  sha256 TEXT PRIMARY KEY,\n"
    "  text TEXT NOT NULL\n"
    ");\n"
    "ALTER TABLE runs ADD COLUMN spec_file_sha256 TEXT REFERENCES spec_texts(sha256);\n"
    "CREATE VIEW run_specs AS\n"
    "SELECT r.id AS run_id, r.name AS name, r.spec_path AS spec_path, r.sweep AS sweep,\n"
    "  r.spec_sha256 AS spec_sha256, coalesce(r.spec, t.text) AS text,\n"
    "  CASE WHEN r.spec IS NULL AND t.text IS NOT NULL THEN 'sweep_file' WHEN r.spec IS NOT NULL\n"
    "    THEN 'spec' END AS text_is\n"
    "FROM runs r LEFT JOIN spec_texts t ON t.sha256 = r.spec_file_sha256;\n"
    "PRAGMA user_version = 7;\n";

static const struct {
    int version;
    const char *sql;
} migrations[] = {
    {1, migration_1},
    {2, migration_2},
    {3, migration_3},
    {4, migration_4},
    {5, migration_5},
    {6, migration_6},
    {7, migration_7},
};
_Static_assert(sizeof migrations / sizeof *migrations == DB_SCHEMA_VERSION,
               "one migration step per schema version");

int db_schema_version(db *d, int *out)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(d->h, "PRAGMA user_version", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db__sqlite_error(d, rc, "read user_version");
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        int e = db__sqlite_error(d, rc == SQLITE_DONE ? SQLITE_ERROR : rc, "read user_version");
        sqlite3_finalize(s);
        return e;
    }
    *out = sqlite3_column_int(s, 0);
    sqlite3_finalize(s); /* the step succeeded: nothing to report */
    return DB_OK;
}

static int too_new(db *d, int v)
{
    return db__error(DB_EVERSION,
                     "%s has schema version %d, newer than this epochd knows (%d): "
                     "use the epochd that wrote it, or a newer one",
                     d->path, v, DB_SCHEMA_VERSION);
}

int db_migrate(db *d)
{
    int v, rc;
    if ((rc = db_schema_version(d, &v)))
        return rc;
    if (v > DB_SCHEMA_VERSION)
        return too_new(d, v);
    if (v == DB_SCHEMA_VERSION)
        return DB_OK; /* the common case writes nothing */
    if (d->txn_depth)
        return db__error(DB_EINVAL, "%s: cannot migrate inside a transaction", d->path);
    for (size_t i = 0; i < sizeof migrations / sizeof *migrations; i++) {
        if (migrations[i].version <= v)
            continue;
        if ((rc = db__txn_begin(d)))
            return rc;
        /* Another process may have migrated while we waited for the lock. */
        if ((rc = db_schema_version(d, &v)) == DB_OK && v > DB_SCHEMA_VERSION)
            rc = too_new(d, v);
        if (rc == DB_OK && v < migrations[i].version) {
            char what[64];
            snprintf(what, sizeof what, "migrate to schema version %d", migrations[i].version);
            rc = db__exec(d, migrations[i].sql, what);
        }
        if ((rc = db__txn_end(d, rc)))
            return rc;
        if ((rc = db_schema_version(d, &v)))
            return rc;
    }
    return DB_OK;
}
