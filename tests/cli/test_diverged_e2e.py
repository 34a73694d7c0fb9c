#!/usr/bin/env python3
"""A diverged run through `epochd run` and `epochd compare` (issue 10,
defect 4), read back with Python's own sqlite3 module.

A linear MLP under SGD with momentum at lr 0.3 trains for a few epochs, then
its loss explodes and turns NaN. With train.stop_on_nonfinite (the default)
the run ends `failed` with "diverged: train loss is NaN at epoch E step S",
exit 65, the epochs before stay recorded, and neither the leaderboard view
nor `compare` ranks it (before the fix such a run scored test accuracy
1.0000 and compare marked it best). With stop_on_nonfinite: false it trains
on, and the NaN epochs count every sample as a wrong prediction.

  test_diverged_e2e.py EPOCHD
"""
import csv
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile

EPOCHD = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what)


def epochd(*args):
    return subprocess.run([EPOCHD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=240)


SPEC = """name: {name}
seed: 3
device: cpu
data:
  dataset: synthetic
  synthetic: {{shape: [1, 8, 8], classes: 4, train: 256, test: 64}}
  batch_size: 32
model:
  template: mlp
  units: [64, 64, 4]
  activation: none
  batch_norm: false
train:
  epochs: 12
  optimizer: {{name: sgd, lr: {lr}, momentum: 0.9}}
{extra}"""

with tempfile.TemporaryDirectory() as tmp:
    db = os.path.join(tmp, 'd.db')
    state = os.path.join(tmp, 'state')
    runs = [('steady', '0.03', ''), ('wild', '0.3', ''), ('wild_on', '0.3', '  stop_on_nonfinite: false\n')]
    codes = {}
    for name, lr, extra in runs:
        path = os.path.join(tmp, name + '.yaml')
        with open(path, 'w') as f:
            f.write(SPEC.format(name=name, lr=lr, extra=extra))
        r = epochd('run', path, '--db', db, '--state-dir', state, '--threads', '2')
        codes[name] = r.returncode
        print(name, 'exit', r.returncode, r.stderr.strip().splitlines()[-1:] if r.stderr.strip() else '')
    check(codes['steady'] == 0, f"steady: exit {codes['steady']}")
    check(codes['wild'] == 65, f"wild: exit {codes['wild']}, expected 65 (diverged, not retryable)")
    check(codes['wild_on'] == 0, f"wild_on: exit {codes['wild_on']}")

    con = sqlite3.connect(db)
    status, error = con.execute("SELECT status, error FROM runs WHERE name = 'wild'").fetchone()
    check(status == 'failed', f'wild: status {status}')
    check(re.fullmatch(r'diverged: train loss is NaN at epoch [0-9]+ step [0-9]+', error or '') is not None,
          f'wild: error {error!r}')
    e = int(re.search(r'epoch ([0-9]+)', error).group(1)) if error else 0
    done = con.execute("SELECT count(*) FROM epochs e JOIN runs r ON r.id = e.run_id WHERE r.name = 'wild'").fetchone()[0]
    check(e >= 2 and done == e - 1, f'wild: {done} epochs recorded before diverging in epoch {e}')
    check(con.execute("SELECT count(*) FROM results WHERE name = 'wild' AND test_acc >= 0.99").fetchone()[0] == 0,
          'wild: an epoch with (near) perfect accuracy')
    board = {row[0]: row[1:] for row in con.execute(
        "SELECT name, diverged, best_test_acc, final_test_acc, epochs_done FROM leaderboard")}
    check(board['wild'][0] == 1 and board['wild'][1] is None and board['wild'][2] is None,
          f"leaderboard ranks the diverged run: {board['wild']}")
    check(board['steady'][0] == 0 and board['steady'][1] is not None, f"leaderboard steady: {board['steady']}")
    first = con.execute("SELECT name FROM leaderboard ORDER BY best_test_acc DESC LIMIT 1").fetchone()[0]
    check(first != 'wild', 'the diverged run ranks first')
    # trained on: honest accounting, every NaN epoch without a single hit
    nan_epochs = con.execute("SELECT count(*), max(test_acc), max(train_acc) FROM results"
                             " WHERE name = 'wild_on' AND train_loss IS NULL").fetchone()
    check(nan_epochs[0] >= 1 and nan_epochs[1] == 0.0 and nan_epochs[2] == 0.0,
          f'wild_on: NaN epochs (count, max test_acc, max train_acc) = {nan_epochs}')
    con.close()

    r = epochd('compare', '--db', db, '--format', 'csv')
    check(r.returncode == 0, f'compare: exit {r.returncode}: {r.stderr}')
    rows = {row['name']: row for row in csv.DictReader(io.StringIO(r.stdout))}
    check(rows['wild']['best_test_acc'] == '' and rows['wild']['status'] == 'failed',
          f"compare csv wild: {rows.get('wild')}")
    r = epochd('compare', '--db', db)
    line = [ln.split() for ln in r.stdout.splitlines() if ' wild ' in ln]
    # id name status template params epochs best_acc @epoch final_acc min_loss time img/s: the
    # result columns of the diverged run are empty and unmarked (its speed is a fact, and may be best)
    check(len(line) == 1 and line[0][6:10] == ['-', '-', '-', '-'], f'compare ranks the diverged run: {line}')
    r = epochd('compare', '--db', db, '--format', 'json')
    js = {o['name']: o for o in json.loads(r.stdout)}
    check(js['wild']['best_test_acc'] is None, f"compare json wild: {js['wild']}")

print('FAILED' if failures else 'ok', len(failures), 'problems')
sys.exit(1 if failures else 0)
