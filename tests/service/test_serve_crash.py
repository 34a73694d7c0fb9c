#!/usr/bin/env python3
"""epochd serve killed with SIGKILL in the middle of a run, then started
again: the run resumes from its checkpoint and finishes, epochs 1..N appear
exactly once, and every epoch's metrics equal bit for bit those of the same
spec trained without interruption by `epochd run` (same thread count). The
run is held after epoch 2 (EPOCHD_TEST_HOLD) while the service is killed, so
that it is still running then however fast or slow the machine is.
Measures how long the kill/restart cycle takes, and the throughput of a run
under the service against `epochd run` (images/s ratio).

  test_serve_crash.py EPOCHD
"""
import os
import signal
import time

from serve_util import Hold, Service, check, finish, reference_epochs, slow_spec, tempdir, wait_until, write

N = 10
with tempdir() as tmp:
    text = slow_spec('crashy', epochs=N, seed=21)
    ref, ref_ips, ref_wall = reference_epochs(tmp, 'crashy', text)
    check([r[0] for r in ref] == list(range(1, N + 1)), f'reference has {N} epochs: {ref}')

    hold = Hold(tmp)
    hold.allow('crashy', 2)
    sv = Service(tmp, settle_ms=100, env=hold.env())
    try:
        sv.start()
        write(os.path.join(sv.exp, 'crashy.yaml'), text)
        run = wait_until(lambda: sv.q("SELECT id FROM runs WHERE name = 'crashy'"), 30, 'the run to be queued')
        rid = run[0][0] if run else 0
        # kill the service after epoch 2, with the run still running (held before epoch 3)
        hold.wait_held('crashy', 3)
        wait_until(lambda: len(sv.epochs(rid)) >= 2, 60, 'two epochs to be recorded')
        check(len(sv.epochs(rid)) == 2, 'exactly two epochs recorded before the kill')
        pid = sv.q('SELECT worker_pid FROM runs WHERE id = ?', (rid,))[0][0]
        t_kill = time.monotonic()
        sv.kill9()
        check(sv.status_of(rid) == 'running', 'after SIGKILL the run is left running (orphaned)')
        # the orphaned worker stops by itself (parent-death signal), also while held
        wait_until(lambda: not os.path.exists(f'/proc/{pid}') or
                   open(f'/proc/{pid}/stat').read().rsplit(') ', 1)[1][0] in 'ZX', 60,
                   'the orphaned worker to stop')
        t_worker_gone = time.monotonic()
        hold.release('crashy')
        sv.start()
        wait_until(lambda: 'ready: watching' in sv.log_text(), 30, 'the restarted service to be ready')
        t_ready = time.monotonic()
        wait_until(lambda: sv.q("SELECT 1 FROM runs WHERE id = ? AND status = 'running' AND attempts = 2",
                                (rid,)), 30, 'the run to be resumed')
        t_resumed = time.monotonic()
        wait_until(lambda: sv.status_of(rid) == 'done', 180, 'the resumed run to finish')
        print(f'MEASURE kill -9 cycle: orphaned worker stopped {t_worker_gone - t_kill:.2f} s after the kill; '
              f'restarted service ready {t_ready - t_worker_gone:.2f} s after its start; '
              f'run resumed {t_resumed - t_worker_gone:.2f} s after the restart')
        check(f'resumed after epoch 2 of {N}' in sv.log_text(), 'the worker resumed from epoch 2\'s checkpoint, not from scratch')

        got = sv.epochs(rid)
        check([r[0] for r in got] == list(range(1, N + 1)), f'epochs 1..{N} exactly once: {[r[0] for r in got]}')
        check(sv.q('SELECT count(*) FROM epochs WHERE run_id = ?', (rid,))[0][0] == N, 'no duplicate epoch rows')
        for a, b in zip(got, ref):
            check(a == b, f'epoch {a[0]} equals the uninterrupted run bit for bit:\n  {a}\n  {b}')
        check(sv.q('SELECT count(*) FROM runs')[0][0] == 1, 'still exactly one run')

        # throughput: the same spec, once more, under the service vs `epochd run`
        write(os.path.join(sv.exp, 'bench.yaml'), slow_spec('bench', epochs=3, seed=22))
        b = wait_until(lambda: sv.q("SELECT id FROM runs WHERE name = 'bench' AND status = 'done'"), 180,
                       'the benchmark run')
        if b:
            ips = sv.q('SELECT avg(samples_per_sec) FROM epochs WHERE run_id = ?', (b[0][0],))[0][0]
            _, ref_b, _ = reference_epochs(tmp, 'bench', slow_spec('bench', epochs=3, seed=22))
            print(f'MEASURE throughput: service {ips:.0f} images/s, epochd run {ref_b:.0f} images/s, '
                  f'ratio {ips / ref_b:.3f}')
        rc = sv.stop(signal.SIGTERM)
        check(rc == 0, f'service exit status {rc}')
    finally:
        sv.cleanup()
finish()
