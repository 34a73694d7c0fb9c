-- A database as epochd schema version 1 wrote it, recreated here by the
-- sqlite3 command-line tool (a different writer than our library), with
-- two runs and hand-checked epochs. test_db.c migrates it forward.
PRAGMA journal_mode = DELETE;
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  spec_path TEXT,
  spec_sha256 TEXT,
  spec TEXT,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed',
                                         'invalid', 'cancelled', 'interrupted')),
  device TEXT,
  params INTEGER CHECK (params IS NULL OR params >= 0),
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  created_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT
);
CREATE INDEX runs_by_spec ON runs(spec_path, spec_sha256);
CREATE INDEX runs_by_name ON runs(name);
CREATE TABLE epochs (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  epoch INTEGER NOT NULL CHECK (epoch >= 1),
  train_loss REAL,
  train_acc REAL CHECK (train_acc BETWEEN 0 AND 1),
  test_loss REAL,
  test_acc REAL CHECK (test_acc BETWEEN 0 AND 1),
  lr REAL,
  seconds REAL CHECK (seconds >= 0),
  samples_per_sec REAL,
  PRIMARY KEY (run_id, epoch)
);
CREATE VIEW results AS
SELECT e.run_id AS run_id, r.name AS name, r.status AS status, e.epoch AS epoch,
       e.train_loss AS train_loss, e.train_acc AS train_acc, e.test_loss AS test_loss,
       e.test_acc AS test_acc, e.lr AS lr, e.seconds AS seconds,
       e.samples_per_sec AS samples_per_sec
FROM epochs e JOIN runs r ON r.id = e.run_id;
CREATE VIEW leaderboard AS
SELECT r.id AS id, r.name AS name, r.status AS status, r.params AS params,
  (SELECT count(*) FROM epochs e WHERE e.run_id = r.id) AS epochs_done,
  (SELECT max(e.test_acc) FROM epochs e WHERE e.run_id = r.id) AS best_test_acc,
  (SELECT e.epoch FROM epochs e WHERE e.run_id = r.id AND e.test_acc IS NOT NULL
    ORDER BY e.test_acc DESC, e.epoch ASC LIMIT 1) AS best_epoch,
  (SELECT e.test_acc FROM epochs e WHERE e.run_id = r.id
    ORDER BY e.epoch DESC LIMIT 1) AS final_test_acc,
  (SELECT total(e.seconds) FROM epochs e WHERE e.run_id = r.id) AS train_seconds,
  r.created_at AS created_at
FROM runs r;
PRAGMA user_version = 1;

INSERT INTO runs (name, spec_path, spec_sha256, spec, status, device, params, attempts,
                  created_at, started_at, finished_at)
VALUES ('old_mlp', 'experiments/old_mlp.yaml', 'aa11', 'name: old_mlp', 'done', 'cpu', 1234, 1,
        '2026-01-02T03:04:05.000Z', '2026-01-02T03:04:06.000Z', '2026-01-02T03:10:00.000Z');
INSERT INTO runs (name, status, created_at) VALUES ('old_queued', 'queued', '2026-01-03T00:00:00.000Z');
INSERT INTO epochs VALUES (1, 1, 1.50, 0.40, 1.40, 0.45, 0.001, 10.0, 600.0);
INSERT INTO epochs VALUES (1, 2, 1.00, 0.60, 1.10, 0.62, 0.001, 12.0, 500.0);
INSERT INTO epochs VALUES (1, 3, 0.80, 0.70, 1.20, 0.60, 0.001, 11.0, 550.0);
