"""A database for the dashboard's tests: real runs trained by `epochd run`,
then rows written with Python's sqlite3 as the docs describe the schema
(docs/database.md): a sweep, a running run with live progress, a queued
run, and runs whose name, error and spec are HTML and JavaScript."""
import json
import os
import sqlite3
import subprocess

from serve_util import EPOCHD, check, spec

HOSTILE_NAME = '<script>alert("name")</script>'
HOSTILE_ERROR = 'x.yaml:1:1: name: expected <b>letters</b> & "digits", found \'<img src=x onerror=alert(1)>\''
HOSTILE_SPEC = 'name: x\n# </pre><script>alert("spec")</script>\n'
HOSTILE_PATH = '/tmp/<img src=x onerror=alert(3)>.yaml'


def train(tmp, db, name, epochs, seed):
    path = os.path.join(tmp, name + '.yaml')
    with open(path, 'w') as f:
        f.write(spec(name, epochs=epochs, seed=seed))
    p = subprocess.run([EPOCHD, 'run', path, '--db', db, '--state-dir', os.path.join(tmp, 'state'),
                        '--threads', '1'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    check(p.returncode == 0, f'epochd run {name}: {p.stderr}')


def fill(tmp):
    db = os.path.join(tmp, 'web.db')
    train(tmp, db, 'tiny_a', 3, 1)
    train(tmp, db, 'tiny_b', 4, 2)
    train(tmp, db, 'tiny_a', 2, 3)  # a second run of one name
    con = sqlite3.connect(db)
    now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    # a sweep of two combinations, hand-made epochs
    for i, (hidden, accs) in enumerate([(16, [0.5, 0.625, 0.6]), (32, [0.55, 0.7, 0.75])]):
        cur = con.execute(
            "INSERT INTO runs (name, spec_path, spec_sha256, spec, status, device, params, template,"
            " epochs_planned, sweep, created_at, started_at, finished_at)"
            f" VALUES (?, 'exp/sw.yaml', ?, 'name: sw', 'done', 'cpu', ?, 'mlp', 3, ?, {now}, {now}, {now})",
            (f'sw_h{hidden}', f'{i:064x}', 1000 + hidden, json.dumps({'model.units': hidden, 'train.lr': 0.01})))
        rid = cur.lastrowid
        for e, acc in enumerate(accs, 1):
            con.execute('INSERT INTO epochs (run_id, epoch, train_loss, train_acc, test_loss, test_acc, lr,'
                        ' seconds, samples_per_sec) VALUES (?, ?, ?, ?, ?, ?, 0.01, ?, ?)',
                        (rid, e, 2.0 / e, acc - 0.05, 1.5 / e + i / 10, acc, 1.5 + e / 10, 1000.0 * (e + i)))
    # running, in epoch 3 of 10 at 40 %, 2 epochs done
    cur = con.execute(
        "INSERT INTO runs (name, spec_path, spec, status, device, params, template, epochs_planned, created_at,"
        " started_at, progress_epoch, progress_fraction, progress_images_per_sec, samples_per_epoch,"
        f" progress_updated_at, attempts) VALUES ('live_run', 'exp/live.yaml', 'name: live_run', 'running', 'cpu',"
        f" 5000, 'cnn', 10, {now}, {now}, 3, 0.4, 1234.5, 4096, {now}, 1)")
    live = cur.lastrowid
    for e in (1, 2):
        con.execute('INSERT INTO epochs (run_id, epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds,'
                    ' samples_per_sec) VALUES (?, ?, 1.0, 0.5, 1.1, ?, 0.001, 20.0, 1200.0)', (live, e, 0.4 + e / 10))
    cur = con.execute("INSERT INTO runs (name, spec_path, spec, status, requested_device, epochs_planned,"
                      " created_at) VALUES ('waiting', 'exp/w.yaml', 'name: waiting', 'queued', 'cuda:3', 5,"
                      " '2020-01-01T00:00:00.000Z')")
    # the planner's word on it (as service/placement.c writes it): every view's ETA and note come from it
    con.execute("INSERT INTO plans (run_id, device, start_at, finish_at, seconds, cpu_seconds, planned_at)"
                " VALUES (?, 'cuda:3', '2099-01-01T00:00:00.000Z', '2099-01-01T02:00:00.000Z', 7200, 36000,"
                f" {now})", (cur.lastrowid,))
    # hostile text everywhere a user's text goes
    con.execute(f"INSERT INTO runs (name, spec_path, spec, status, error, created_at, finished_at)"
                f" VALUES (?, ?, ?, 'invalid', ?, {now}, {now})", (HOSTILE_NAME, HOSTILE_PATH, HOSTILE_SPEC,
                                                                    HOSTILE_ERROR))
    con.execute(f"INSERT INTO runs (name, spec_path, spec, status, error, created_at, finished_at)"
                f" VALUES ('failed_one', 'exp/f.yaml', 'name: failed_one', 'failed', ?, {now}, {now})",
                ('the worker was killed by signal 9 (SIGKILL)\nsecond line',))
    con.commit()
    con.close()  # the last connection: the WAL is checkpointed into the file
    return db


def q(db, sql, args=()):
    con = sqlite3.connect(f'file:{db}?mode=ro', uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()
