#!/usr/bin/env python3
"""epochd serve against misbehaving workers (through worker_prefix, which
puts tests/service/fault_worker.py in front of `epochd worker`): garbage on
stdout, a line over the limit, an unknown event, an exit without a final
report, an event after the final one - each fails its run with that reason
recorded, and the worker (with its whole process group) is killed; spec and
data errors (code or exit 65/66) are failed without a retry while a
machine failure is retried up to max_attempts; a worker whose child keeps
its pipes open is still recorded; and a normal run through the same prefix
finishes. The service stays up throughout. A worker that outlives a
killed service is found and stopped by the next one before its run resumes.

  test_serve_faults.py EPOCHD
"""
import os
import shutil
import sys
import time

from serve_util import Hold, Service, check, finish, spec, tempdir, wait_until, write

here = os.path.dirname(os.path.abspath(__file__))
with tempdir() as tmp:
    sv = Service(tmp, settle_ms=100, cpu_slots=4,
                 extra=f'max_attempts: 1\nworker_prefix: [/usr/bin/python3, {here}/fault_worker.py]\n')
    try:
        sv.start()
        cases = {
            'garbage': 'worker protocol error: not JSON',
            'longline': 'worker protocol error: a line longer than 65536 bytes',
            'unknown': 'worker protocol error: unknown event "exploded"',
            'silent': 'exited with status 0 without reporting how the run ended (after 1 attempts)',
            'late': 'worker protocol error: a "epoch" event after the final "done"',
            'nodata': 'data.root: /nowhere does not exist',
        }
        for name in list(cases) + ['child', 'fine']:
            write(os.path.join(sv.exp, name + '.yaml'), spec(name, epochs=2))
        t0 = time.monotonic()
        wait_until(lambda: sv.q("SELECT count(*) FROM runs WHERE status IN ('done', 'failed')")[0][0] == 8, 90,
                   'all eight runs to end')
        rows = {r[0]: r[1:] for r in sv.q('SELECT name, status, error, attempts FROM runs')}
        for name, frag in cases.items():
            st, err, att = rows.get(name, (None, None, None))
            check(st == 'failed' and err is not None and frag in err, f'{name}: failed with {frag!r}: {st} {err!r}')
        check(rows.get('child', (None,))[0] == 'done', f'child: done despite the lingering child: {rows.get("child")}')
        check(rows.get('fine', (None,))[0] == 'done', f'a normal run through the prefix: {rows.get("fine")}')
        fine_epochs = sv.q("SELECT count(*) FROM epochs e JOIN runs r ON r.id = e.run_id WHERE r.name = 'fine'")
        check(fine_epochs[0][0] == 2, 'the normal run has its epochs')
        # no misbehaving worker (or its sleeping child) is left behind: the
        # group was sent SIGKILL, which the kernel delivers without delay
        def leftovers():
            found = []
            for pid in os.listdir('/proc'):
                if pid.isdigit():
                    try:
                        cmd = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\0')
                    except OSError:
                        continue
                    if any(b'fault_worker.py' in c for c in cmd) and any(tmp.encode() in c for c in cmd):
                        found.append(pid)
            return found

        wait_until(lambda: not leftovers(), 10, 'no worker process to be left')
        check(sv.alive(), 'the service is up')

        # a worker that outlives a killed service is stopped by the next one
        # before its run resumes
        write(os.path.join(sv.exp, 'stubborn.yaml'), spec('stubborn', epochs=2))
        row = wait_until(lambda: sv.q("SELECT id, worker_pid FROM runs WHERE name = 'stubborn'"
                                      " AND status = 'running'"), 30, 'stubborn to run')
        rid, pid = row[0] if row else (0, 0)
        time.sleep(0.3)
        sv.kill9()
        time.sleep(0.3)
        check(os.path.exists(f'/proc/{pid}'), 'the stale worker outlived the service')
        sv.start()
        log = sv.log_text()
        check(f'a worker of the previous service (pid {pid}) is still running; stopping it' in log,
              'the restarted service stops the stale worker')
        wait_until(lambda: not os.path.exists(f'/proc/{pid}') or
                   open(f'/proc/{pid}/stat').read().rsplit(') ', 1)[1][0] in 'ZX', 10, 'the stale worker to be gone')
        wait_until(lambda: sv.status_of(rid) == 'done', 60, 'stubborn to finish on its second attempt')
        check(sv.q('SELECT attempts FROM runs WHERE id = ?', (rid,))[0][0] == 2, 'two attempts')
        check(sv.stop() == 0, 'exit 0')
    finally:
        sv.cleanup()

# spec and data errors are never retried, whatever max_attempts allows: a
# `failed` event with code 65 or 66 (even one that claims to be retryable),
# and exit 65 or 66 without a final report; a machine failure beside them is
# retried up to max_attempts, so the setting does allow retries here
with tempdir() as tmp:
    sv = Service(tmp, settle_ms=100, cpu_slots=4,
                 extra=f'max_attempts: 3\nworker_prefix: [/usr/bin/python3, {here}/fault_worker.py]\n')
    try:
        sv.start()
        names = ['nodata', 'spec65', 'exit65', 'exit66', 'flaky']
        for name in names:
            write(os.path.join(sv.exp, name + '.yaml'), spec(name, epochs=2))
        wait_until(lambda: sv.q("SELECT count(*) FROM runs WHERE status = 'failed'")[0][0] == len(names), 90,
                   'all five runs to fail for good')
        rows = {r[0]: r[1:] for r in sv.q('SELECT name, status, attempts, error FROM runs')}
        for name, frag in [('nodata', 'data.root: /nowhere does not exist'), ('spec65', 'model.units: not a spec'),
                           ('exit65', 'exited with status 65'), ('exit66', 'exited with status 66')]:
            st, att, err = rows.get(name, (None, None, None))
            check(st == 'failed' and att == 1, f'{name}: failed after one attempt, never retried: {st} {att}')
            check(err is not None and frag in err and 'attempts' not in err, f'{name}: the reason: {err!r}')
        st, att, err = rows.get('flaky', (None, None, None))
        check(st == 'failed' and att == 3 and err is not None and 'after 3 attempts' in err,
              f'flaky (retryable): tried max_attempts = 3 times: {st} {att} {err!r}')
        log = sv.log_text()
        check(log.count('attempt 1 of 3 failed') == 1 and log.count('attempt 2 of 3 failed') == 1,
              'only the retryable failure was retried (log)')
        check(sv.stop() == 0, 'service exit 0')
    finally:
        sv.cleanup()

# the real worker meets a data error: the dataset was there when the spec was
# read and is gone when its turn comes (a blocker held before its first epoch
# keeps it queued meanwhile); it fails once and is never retried
sys.path.insert(0, os.path.join(here, '..', 'engine'))
import gen_datasets  # noqa: E402  (an independent writer of the MNIST files)

with tempdir() as tmp:
    hold = Hold(tmp)
    data = os.path.join(tmp, 'mnist')
    os.makedirs(data)
    gen_datasets.idx_files(data, 0, 120, gz=True)
    gen_datasets.idx_files(data, 1, 45, gz=False)
    sv = Service(tmp, settle_ms=100, cpu_slots=1, env=hold.env(), extra='max_attempts: 3\n')
    try:
        sv.start()
        hold.allow('blocker', 0)
        write(os.path.join(sv.exp, 'blocker.yaml'), spec('blocker', epochs=1))
        hold.wait_held('blocker', 1)
        write(os.path.join(sv.exp, 'vanished.yaml'), f"""name: vanished
seed: 1
device: cpu
data: {{dataset: mnist, root: {data}, batch_size: 32}}
model: {{template: mlp, units: [16, 10]}}
train: {{epochs: 2}}
""")
        wait_until(lambda: sv.q("SELECT 1 FROM runs WHERE name = 'vanished' AND status = 'queued'"), 30,
                   'vanished to be queued (its data is there)')
        shutil.rmtree(data)
        hold.release('blocker')
        wait_until(lambda: sv.q("SELECT 1 FROM runs WHERE name = 'vanished' AND status = 'failed'"), 60,
                   'vanished to fail')
        st, att, err = sv.q("SELECT status, attempts, error FROM runs WHERE name = 'vanished'")[0]
        check(att == 1 and err is not None and 'data.root' in err and 'does not exist' in err and 'attempts' not in err,
              f'a data error of the real worker: failed after one attempt, never retried: {att} {err!r}')
        check(sv.stop() == 0, 'service exit 0')
    finally:
        sv.cleanup()
finish()
