#!/usr/bin/env python3
"""epochd serve: stopping and starting again, as docs/service.md promises.
- a worker SIGTERMed by someone else: its run is queued again and resumes
  from its checkpoint, ending with the uninterrupted run's values;
- stop_timeout_s: a worker that ignores SIGTERM is killed (SIGKILL) after
  that long when the service stops; a second SIGTERM kills it at once;
- `epochd cancel` with no service running is honoured at the next start: an
  interrupted run and an orphaned running run are cancelled, not resumed,
  and a queued one never starts;
- on restart, a run whose recorded worker pid now belongs to another program
  is resumed and that program is left alone; a live foreground `epochd run`
  on the same database is left alone, and finishes its run itself;
- a db or state_dir changed in the config on SIGHUP waits for the next start.
Runs are held between epochs (EPOCHD_TEST_HOLD) wherever a step must find
them running after epoch k.

  test_serve_stop.py EPOCHD
"""
import os
import signal
import subprocess
import time

from serve_util import (EPOCHD, Hold, Service, check, epochd, finish, process_gone, reference_epochs, spec,
                        tempdir, wait_until, write)

here = os.path.dirname(os.path.abspath(__file__))


def run_id(sv, name):
    r = wait_until(lambda: sv.q('SELECT id FROM runs WHERE name = ? ORDER BY id DESC LIMIT 1', (name,)), 30,
                   f'{name} to be queued')
    return r[0][0] if r else 0


# 1. SIGTERM from outside the service: queued again, resumed, exact
with tempdir() as tmp:
    hold = Hold(tmp)
    text = spec('outside', epochs=4, seed=71)
    ref, _, _ = reference_epochs(tmp, 'outside', text)
    sv = Service(tmp, settle_ms=100, env=hold.env())
    try:
        sv.start()
        hold.allow('outside', 1)
        write(os.path.join(sv.exp, 'outside.yaml'), text)
        rid = run_id(sv, 'outside')
        hold.wait_held('outside', 2)
        wait_until(lambda: len(sv.epochs(rid)) == 1, 30, 'epoch 1 to be recorded')
        pid = sv.q('SELECT worker_pid FROM runs WHERE id = ?', (rid,))[0][0]
        os.kill(pid, signal.SIGTERM)  # not the service's doing
        # the next attempt resumes from epoch 1 and holds before epoch 2 again
        wait_until(lambda: sv.q("SELECT 1 FROM runs WHERE id = ? AND attempts = 2 AND status = 'running'"
                                " AND worker_pid != ?", (rid, pid)), 60, 'a second attempt')
        wait_until(lambda: 'resumed after epoch 1 of 4' in sv.log_text(), 60, 'the second attempt to resume')
        log = sv.log_text()
        check('interrupted from outside the service; queued again' in log, 'the log says why it was queued again')
        hold.release('outside')
        wait_until(lambda: sv.status_of(rid) == 'done', 60, 'the run to finish')
        r = sv.q('SELECT status, attempts, error FROM runs WHERE id = ?', (rid,))[0]
        check(r == ('done', 2, None), f'done after 2 attempts, no error: {r}')
        check(sv.epochs(rid) == ref, 'epochs 1..4 once, equal to the uninterrupted run bit for bit')
        check(sv.stop() == 0, 'exit 0')
    finally:
        sv.cleanup()

# 2. stop_timeout_s: SIGTERM ignored, SIGKILL after the timeout; a second signal kills at once
with tempdir() as tmp:
    prefix = f'worker_prefix: [/usr/bin/python3, {here}/fault_worker.py]\n'
    sv = Service(tmp, settle_ms=100, extra=prefix)
    cfg = open(sv.cfg).read().replace('stop_timeout_s: 20', 'stop_timeout_s: 1')
    open(sv.cfg, 'w').write(cfg)
    try:
        sv.start()
        write(os.path.join(sv.exp, 'deaf.yaml'), spec('deaf'))
        rid = run_id(sv, 'deaf')
        # its `started` event comes after it has begun to ignore SIGTERM
        wait_until(lambda: ' started: 2 epochs' in sv.log_text(), 60, 'the deaf worker to start')
        pid = sv.q('SELECT worker_pid FROM runs WHERE id = ?', (rid,))[0][0]
        t0 = time.monotonic()
        rc = sv.stop(signal.SIGTERM, timeout=120)
        took = time.monotonic() - t0
        check(rc == 0, f'exit 0 after killing the deaf worker: {rc}')
        check(took >= 1.0, f'the worker had stop_timeout_s (1 s) to stop: the service exited after {took:.2f} s')
        log = sv.log_text()
        check('did not stop within 1 s; killing it' in log, 'the log says it was killed after stop_timeout_s')
        check(sv.status_of(rid) == 'interrupted', f'the run is interrupted: {sv.status_of(rid)}')
        check(process_gone(pid), 'the worker is gone')

        # the same with stop_timeout_s: 3600, and SIGTERM twice
        cfg = open(sv.cfg).read().replace('stop_timeout_s: 1', 'stop_timeout_s: 3600')
        open(sv.cfg, 'w').write(cfg)
        sv.start()
        wait_until(lambda: 'attempt 2 of 3' in sv.log_text() and ' started: 2 epochs' in sv.log_text(), 60,
                   'the deaf run to start again')
        sv.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: 'SIGTERM: stopping (1 running run become interrupted)' in sv.log_text(), 30,
                   'the service to start stopping')
        t0 = time.monotonic()
        rc = sv.stop(signal.SIGTERM, timeout=120)
        took = time.monotonic() - t0
        check(rc == 0, f'exit 0: {rc}')
        check(took < 60, f'the second SIGTERM did not wait for stop_timeout_s (3600 s): {took:.1f} s')
        check('SIGTERM again: killing 1 worker now' in sv.log_text(), 'the log says the second signal killed it')
        check(sv.status_of(rid) == 'interrupted', f'the run is interrupted: {sv.status_of(rid)}')
    finally:
        sv.cleanup()

# 3. epochd cancel with no service running, honoured at the next start
with tempdir() as tmp:
    hold = Hold(tmp)
    sv = Service(tmp, settle_ms=100, cpu_slots=1, env=hold.env())
    try:
        sv.start()
        hold.allow('stopped', 1)
        write(os.path.join(sv.exp, 'stopped.yaml'), spec('stopped', epochs=3, seed=72))
        a = run_id(sv, 'stopped')
        hold.wait_held('stopped', 2)
        write(os.path.join(sv.exp, 'waiting.yaml'), spec('waiting', epochs=2, seed=73))
        b = run_id(sv, 'waiting')
        wait_until(lambda: len(sv.epochs(a)) == 1, 30, 'stopped to record epoch 1')
        check(sv.stop() == 0, 'exit 0')
        check((sv.status_of(a), sv.status_of(b)) == ('interrupted', 'queued'), 'one interrupted, one queued')
        for rid, status in ((a, 'interrupted'), (b, 'queued')):
            p = epochd('cancel', str(rid), '--db', sv.db)
            check(p.returncode == 0 and 'cancel requested' in p.stdout, f'cancel {rid} without a service: '
                                                                          f'{p.returncode} {p.stdout} {p.stderr}')
            check(sv.q('SELECT status, cancel_requested FROM runs WHERE id = ?', (rid,))[0] == (status, 1),
                  f'run {rid} waits for the service, its cancel recorded')
        # the next start cancels both: neither is started again
        hold.allow('orphan', 1)
        sv.start()
        for rid in (a, b):
            wait_until(lambda: sv.status_of(rid) == 'cancelled', 30, f'run {rid} to be cancelled at the start')
        log = sv.log_text()
        check(f'run {a}]: cancelled by request (it was interrupted)' in log, 'the interrupted run: cancelled')
        check(f'run {b}]: cancelled by request before it started' in log, 'the queued run: cancelled')
        check(f'run {a}]: starting' not in log and f'run {b}]: starting' not in log, 'no worker was started for them')
        # an orphaned running run (the service was killed) with a cancel request
        write(os.path.join(sv.exp, 'orphan.yaml'), spec('orphan', epochs=3, seed=74))
        c = run_id(sv, 'orphan')
        hold.wait_held('orphan', 2)
        pid = sv.q('SELECT worker_pid FROM runs WHERE id = ?', (c,))[0][0]
        sv.kill9()
        wait_until(lambda: process_gone(pid), 60, 'the orphaned worker to stop')
        p = epochd('cancel', 'orphan', '--db', sv.db)
        check(p.returncode == 0, f'cancel the orphan without a service: {p.returncode} {p.stderr}')
        check(sv.status_of(c) == 'running', 'the orphan is still recorded running')
        hold.release('orphan')
        sv.start()
        wait_until(lambda: sv.status_of(c) == 'cancelled', 30, 'the orphan to be cancelled at the start')
        log = sv.log_text()
        check(f'run {c}]: cancelled by request (it was running)' in log, 'the orphaned run: cancelled, not resumed')
        check(f'run {c}]: starting' not in log, 'no worker was started for it')
        rows = sv.q('SELECT id, status, attempts, error FROM runs WHERE id IN (?, ?, ?) ORDER BY id', (a, b, c))
        check(rows == [(a, 'cancelled', 1, 'cancelled by request'), (b, 'cancelled', 0, 'cancelled by request'),
                       (c, 'cancelled', 1, 'cancelled by request')], f'none was started again: {rows}')
        check([e[0] for e in sv.epochs(a)] == [1], 'the cancelled run keeps its recorded epoch')
        check(sv.stop() == 0, 'exit 0')
    finally:
        sv.cleanup()

# 4. on restart: a pid reused by another program, and a live foreground `epochd run`
with tempdir() as tmp:
    hold = Hold(tmp)
    text = spec('reused', epochs=3, seed=75)
    ref, _, _ = reference_epochs(tmp, 'reused', text)
    sv = Service(tmp, settle_ms=100, cpu_slots=2, env=hold.env())
    other = None
    fg = None
    try:
        sv.start()
        hold.allow('reused', 1)
        write(os.path.join(sv.exp, 'reused.yaml'), text)
        rid = run_id(sv, 'reused')
        hold.wait_held('reused', 2)
        pid = sv.q('SELECT worker_pid FROM runs WHERE id = ?', (rid,))[0][0]
        sv.kill9()
        wait_until(lambda: process_gone(pid), 60, 'the orphaned worker to stop')
        # its pid now belongs to another program (the kernel may reuse it)
        other = subprocess.Popen(['sleep', '600'])
        sv.execute('UPDATE runs SET worker_pid = ? WHERE id = ?', (other.pid, rid))
        # a foreground `epochd run` on the same database, held after epoch 1
        fg_spec = os.path.join(tmp, 'fg.yaml')
        with open(fg_spec, 'w') as f:
            f.write(spec('fg', epochs=3, seed=76))
        hold.allow('fg', 1)
        fg = subprocess.Popen([EPOCHD, 'run', fg_spec, '--db', sv.db, '--state-dir', os.path.join(tmp, 'fgstate'),
                               '--threads', '1'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, **hold.env()))
        hold.wait_held('fg', 2)
        fid = sv.q("SELECT id FROM runs WHERE name = 'fg'")[0][0]
        check(sv.q('SELECT status, worker_pid FROM runs WHERE id = ?', (fid,))[0] == ('running', fg.pid),
              'the foreground run is recorded running with its pid')
        hold.release('reused')
        sv.start()
        wait_until(lambda: sv.status_of(rid) == 'done', 60, 'the orphaned run to resume and finish')
        check(other.poll() is None, 'the program that now has the old pid was left alone (still running)')
        log = sv.log_text()
        check(f'pid {other.pid}) is still running; stopping it' not in log, 'and not signalled')
        check(sv.q('SELECT attempts FROM runs WHERE id = ?', (rid,))[0][0] == 2, 'the orphan resumed (attempt 2)')
        check(sv.epochs(rid) == ref, 'and ended with the uninterrupted values')
        # the foreground run: untouched while the service ran
        check(fg.poll() is None, 'the foreground epochd run is still running')
        check(sv.q('SELECT status, worker_pid, attempts FROM runs WHERE id = ?', (fid,))[0][:2] == ('running', fg.pid),
              'its run is still running under its own pid')
        check(f'run {fid}]: running in process {fg.pid}' in log and 'left alone' in log,
              'the log says the foreground run was left alone')
        check('starting fg' not in log, 'the service started no worker for it')
        hold.release('fg')
        out, _ = fg.communicate(timeout=120)
        check(fg.returncode == 0, f'the foreground run finished by itself: {fg.returncode} {out[-300:]}')
        check(sv.status_of(fid) == 'done' and [e[0] for e in sv.epochs(fid)] == [1, 2, 3],
              'recorded done with its 3 epochs')
        check(sv.stop() == 0, 'exit 0')
    finally:
        if other:
            other.kill()
            other.wait()
        if fg and fg.poll() is None:
            fg.kill()
            fg.wait()
        sv.cleanup()

# 5. a db or state_dir changed on SIGHUP: taken at the next start only
with tempdir() as tmp:
    sv = Service(tmp, settle_ms=100)
    try:
        sv.start()
        write(os.path.join(sv.exp, 'before.yaml'), spec('before', epochs=1))
        wait_until(lambda: sv.status_of(run_id(sv, 'before')) == 'done', 60, 'before to finish')
        cfg = open(sv.cfg).read().replace('db: epochd.db', 'db: other.db').replace('state_dir: state',
                                                                                    'state_dir: state2')
        open(sv.cfg, 'w').write(cfg)
        sv.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: 'db changed to' in sv.log_text() and 'state_dir changed to' in sv.log_text(), 30,
                   'the reload')
        log = sv.log_text()
        check('other.db: takes effect at the next start' in log, 'the db change waits for the next start')
        check('state2: takes effect at the next start' in log, 'the state_dir change too')
        write(os.path.join(sv.exp, 'after.yaml'), spec('after', epochs=1))
        aid = run_id(sv, 'after')
        wait_until(lambda: sv.status_of(aid) == 'done', 60, 'after to finish in the first database')
        check(not os.path.exists(os.path.join(tmp, 'other.db')), 'the new database is not opened yet')
        check(os.path.exists(os.path.join(sv.state, 'runs', str(aid), 'last.safetensors')) and
              not os.path.exists(os.path.join(tmp, 'state2')), 'checkpoints still go to the first state folder')
        check(sv.stop() == 0, 'exit 0')
        sv.start()
        check('database' in sv.log_text() and 'other.db' in sv.log_text() and 'state2' in sv.log_text(),
              'the next start uses the new database and state folder')
        check(os.path.exists(os.path.join(tmp, 'other.db')) and os.path.isdir(os.path.join(tmp, 'state2')),
              'both exist now')
        check(sv.stop() == 0, 'exit 0')
    finally:
        sv.cleanup()
finish()
