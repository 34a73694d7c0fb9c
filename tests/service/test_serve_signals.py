#!/usr/bin/env python3
"""epochd serve and signals: a worker killed with SIGKILL has its run
retried (resuming from its checkpoint) until it finishes, with the same
epochs as an uninterrupted run; SIGTERM to the service makes running runs
`interrupted` and the service exit 0, and the next start resumes and
finishes them; a worker that keeps failing is given up after max_attempts.
Runs are held between epochs (EPOCHD_TEST_HOLD) where a signal must find
them running after epoch k, so that no step races the trainer.

  test_serve_signals.py EPOCHD
"""
import os
import signal
import time

from serve_util import Hold, Service, check, finish, reference_epochs, slow_spec, tempdir, wait_until, write

N = 8
with tempdir() as tmp:
    hold = Hold(tmp)
    sv = Service(tmp, settle_ms=100, cpu_slots=2, extra='max_attempts: 3\n', env=hold.env())
    try:
        sv.start()
        # 1. SIGKILL to a worker after epoch 1, the run still running
        text = slow_spec('victim', epochs=N, seed=31)
        hold.allow('victim', 1)
        write(os.path.join(sv.exp, 'victim.yaml'), text)
        row = wait_until(lambda: sv.q("SELECT id FROM runs WHERE name = 'victim'"), 30, 'victim queued')
        rid = row[0][0] if row else 0
        hold.wait_held('victim', 2)
        wait_until(lambda: len(sv.epochs(rid)) >= 1, 60, 'victim to record an epoch')
        pid = sv.q('SELECT worker_pid FROM runs WHERE id = ?', (rid,))[0][0]
        check(pid and pid > 0, f'the running run has its worker pid: {pid}')
        os.kill(pid, signal.SIGKILL)
        hold.release('victim')
        wait_until(lambda: sv.q("SELECT 1 FROM runs WHERE id = ? AND attempts >= 2", (rid,)), 30,
                   'the run to be retried')
        wait_until(lambda: sv.status_of(rid) == 'done', 180, 'the retried run to finish')
        r = sv.q('SELECT status, attempts, error FROM runs WHERE id = ?', (rid,))[0]
        check(r[0] == 'done' and r[1] == 2, f'victim done after 2 attempts: {r}')
        log = sv.log_text()
        check('killed by signal 9' in log, 'the log gives the reason (signal 9)')
        check('attempt 1 of 3 failed' in log, 'the log says it is retried')
        got = sv.epochs(rid)
        check([e[0] for e in got] == list(range(1, N + 1)), f'epochs 1..{N} once: {[e[0] for e in got]}')
        ref, _, _ = reference_epochs(tmp, 'victim', text)
        check(got == ref, 'the retried run has the uninterrupted run\'s metrics bit for bit')

        # 2. a run whose worker always dies is given up after max_attempts (3);
        # held before its first epoch, it can never finish by itself
        hold.allow('doomed', 0)
        write(os.path.join(sv.exp, 'doomed.yaml'), slow_spec('doomed', epochs=3, seed=32))
        row = wait_until(lambda: sv.q("SELECT id FROM runs WHERE name = 'doomed'"), 30, 'doomed queued')
        did = row[0][0] if row else 0
        for attempt in range(1, 4):
            p = wait_until(lambda: sv.q("SELECT worker_pid FROM runs WHERE id = ? AND status = 'running'"
                                        " AND attempts = ? AND worker_pid > 0", (did, attempt)), 60,
                           f'doomed attempt {attempt}')
            if p:
                try:
                    os.kill(p[0][0], signal.SIGABRT)  # a crash (abort); sanitizers leave it alone
                except ProcessLookupError:
                    pass
        wait_until(lambda: sv.status_of(did) == 'failed', 60, 'doomed to fail for good')
        r = sv.q('SELECT status, attempts, error FROM runs WHERE id = ?', (did,))[0]
        check(r[0] == 'failed' and r[1] == 3, f'doomed failed after 3 attempts: {r}')
        check(r[2] is not None and 'SIGABRT' in r[2] and 'after 3 attempts' in r[2], f'the reason is kept: {r[2]}')

        # 3. SIGTERM after epoch 1 of each: running runs become interrupted, exit status 0
        hold.allow('a', 1)
        hold.allow('b', 1)
        write(os.path.join(sv.exp, 'a.yaml'), slow_spec('a', epochs=N, seed=33))
        write(os.path.join(sv.exp, 'b.yaml'), slow_spec('b', epochs=N, seed=34))
        hold.wait_held('a', 2)
        hold.wait_held('b', 2)
        ids = [x[0] for x in sv.q("SELECT id FROM runs WHERE name IN ('a', 'b') AND status = 'running' ORDER BY id")]
        check(len(ids) == 2, f'a and b run side by side: {ids}')
        wait_until(lambda: all(len(sv.epochs(i)) >= 1 for i in ids), 60, 'a and b to record an epoch')
        t0 = time.monotonic()
        rc = sv.stop(signal.SIGTERM)
        t_stop = time.monotonic() - t0
        check(rc == 0, f'service exit status after SIGTERM: {rc}')
        print(f'MEASURE SIGTERM -> service exited: {t_stop:.2f} s with 2 running workers')
        for i in ids:
            st = sv.q('SELECT status, worker_pid, finished_at FROM runs WHERE id = ?', (i,))[0]
            check(st[0] == 'interrupted' and st[1] is None and st[2] is None, f'run {i} is interrupted: {st}')
            check(os.path.exists(os.path.join(sv.state, 'runs', str(i), 'last.safetensors')),
                  f'run {i} has its checkpoint')
        done_before = {i: len(sv.epochs(i)) for i in ids}
        check(done_before == {i: 1 for i in ids}, f'one epoch each before SIGTERM: {done_before}')
        hold.release('a')
        hold.release('b')
        sv.start()
        wait_until(lambda: all(sv.status_of(i) == 'done' for i in ids), 180, 'a and b to resume and finish')
        for i in ids:
            got = sv.epochs(i)
            check([e[0] for e in got] == list(range(1, N + 1)), f'run {i}: epochs 1..{N} once')
        check(sv.log_text().count(f'resumed after epoch 1 of {N}') == 2, 'both runs resumed from epoch 1\'s checkpoint')
        ref_a, _, _ = reference_epochs(tmp, 'a', slow_spec('a', epochs=N, seed=33))
        aid = sv.q("SELECT id FROM runs WHERE name = 'a'")[0][0]
        check(sv.epochs(aid) == ref_a, 'the resumed run equals an uninterrupted one bit for bit')
        check(sv.stop(signal.SIGINT) == 0, 'SIGINT also exits 0')
    finally:
        sv.cleanup()
finish()
