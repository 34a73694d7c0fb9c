#!/usr/bin/env python3
"""epochd serve, the queue across edits and restarts: unchanged files never
run again (also after a restart), a changed file queues exactly one new run
(and cancels its superseded queued run), a deleted file cancels its queued
runs (also when deleted while no service ran), `epochd cancel` on a queued
and on a running run, priority-then-age order, specs asking for a device
this host lacks wait with a note instead of failing, SIGHUP reloads the
config; a bad config is refused with located messages, and a second
service on the same database is refused.

  test_serve_queue.py EPOCHD
"""
import os
import signal
import subprocess
import time

from serve_util import EPOCHD, Hold, Service, check, finish, gpu_count, slow_spec, spec, tempdir, wait_until, write


def epochd(*args):
    return subprocess.run([EPOCHD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# on a machine with GPUs they are switched off, so that `device: cuda` waits here too
n_gpus = gpu_count()
with tempdir() as tmp:
    hold = Hold(tmp)
    sv = Service(tmp, settle_ms=100, cpu_slots=1, env=hold.env())
    try:
        sv.start(*(['--devices', 'cpu'] if n_gpus else []))
        # a blocker keeps the single CPU slot busy so that the others stay queued:
        # held after its first epoch (EPOCHD_TEST_HOLD) for as long as this test needs
        hold.allow('blocker', 1)
        write(os.path.join(sv.exp, 'blocker.yaml'), slow_spec('blocker', epochs=4, seed=41))
        blk = wait_until(lambda: sv.q("SELECT id FROM runs WHERE name = 'blocker' AND status = 'running'"), 60,
                         'the blocker to run')
        blk = blk[0][0] if blk else 0
        hold.wait_held('blocker', 2)
        write(os.path.join(sv.exp, 'low.yaml'), spec('low', priority=0))
        time.sleep(0.3)
        write(os.path.join(sv.exp, 'high.yaml'), spec('high', priority=5))
        write(os.path.join(sv.exp, 'low2.yaml'), spec('low2', priority=0))
        write(os.path.join(sv.exp, 'gone.yaml'), spec('gone'))
        write(os.path.join(sv.exp, 'edit.yaml'), spec('edit', epochs=1))
        write(os.path.join(sv.exp, 'cancel_me.yaml'), spec('cancel_me'))
        write(os.path.join(sv.exp, 'gpu.yaml'), spec('gpu', device='cuda'))
        write(os.path.join(sv.exp, 'gpu3.yaml'), spec('gpu3', device='cuda:3'))
        names = ['low', 'high', 'low2', 'gone', 'edit', 'cancel_me', 'gpu', 'gpu3']
        wait_until(lambda: sv.q("SELECT count(*) FROM runs WHERE status = 'queued'")[0][0] == len(names), 30,
                   'eight queued runs')

        # devices this host lacks: a note, not a failure
        notes = dict(wait_until(lambda: (lambda r: r if all(n for _, n in r) else None)(
            sv.q("SELECT name, note FROM runs WHERE name IN ('gpu', 'gpu3')")), 30, 'notes on the GPU runs') or [])
        want_gpu = ('waiting: no cuda device is enabled (see devices and gpu_slots)' if n_gpus else
                    'waiting: no cuda device on this host')
        want_gpu3 = ('waiting: cuda:3 is not enabled (see devices and gpu_slots)' if n_gpus > 3 else
                     'waiting: no cuda device 3 on this host')
        check(notes.get('gpu') == want_gpu, f'note of gpu: {notes.get("gpu")}')
        check(notes.get('gpu3') == want_gpu3, f'note of gpu3: {notes.get("gpu3")}')

        # a change: one new run, the superseded queued one cancelled
        old_edit = sv.q("SELECT id FROM runs WHERE name = 'edit'")[0][0]
        write(os.path.join(sv.exp, 'edit.yaml'), spec('edit', epochs=2))
        wait_until(lambda: sv.q("SELECT count(*) FROM runs WHERE name = 'edit'")[0][0] == 2, 30, 'the edited run')
        r = sv.q("SELECT id, status, error FROM runs WHERE name = 'edit' ORDER BY id")
        check(r[0][0] == old_edit and r[0][1] == 'cancelled' and 'superseded' in (r[0][2] or ''),
              f'the old queued run is superseded: {r[0]}')
        check(r[1][1] == 'queued', f'the new version is queued: {r[1]}')
        # touching without changing the bytes queues nothing
        os.utime(os.path.join(sv.exp, 'low.yaml'))
        # a deletion cancels the queued run
        gone_id = sv.q("SELECT id FROM runs WHERE name = 'gone'")[0][0]
        os.unlink(os.path.join(sv.exp, 'gone.yaml'))
        wait_until(lambda: sv.status_of(gone_id) == 'cancelled', 30, 'the deleted file\'s run to be cancelled')
        check('deleted' in (sv.q('SELECT error FROM runs WHERE id = ?', (gone_id,))[0][0] or ''),
              'the reason says the file was deleted')
        # epochd cancel on a queued run
        cid = sv.q("SELECT id FROM runs WHERE name = 'cancel_me'")[0][0]
        p = epochd('cancel', str(cid), '--db', sv.db)
        check(p.returncode == 0, f'epochd cancel exit {p.returncode}: {p.stderr}')
        wait_until(lambda: sv.status_of(cid) == 'cancelled', 30, 'the queued run to be cancelled')
        p = epochd('cancel', str(cid), '--db', sv.db)
        check(p.returncode == 65 and 'already ended' in p.stderr, f'cancelling it again: {p.returncode} {p.stderr}')
        p = epochd('cancel', '99999', '--db', sv.db)
        check(p.returncode == 66, f'cancelling a run that does not exist: {p.returncode}')

        # a restart: nothing new; the deletion of a queued spec while stopped still cancels it
        check(sv.stop() == 0, 'service exit 0')
        check(sv.status_of(blk) == 'interrupted', 'the blocker was interrupted')
        low2 = sv.q("SELECT id FROM runs WHERE name = 'low2'")[0][0]
        os.unlink(os.path.join(sv.exp, 'low2.yaml'))
        n_before = sv.q('SELECT count(*) FROM runs')[0][0]
        sv.start(*(['--devices', 'cpu'] if n_gpus else []))
        wait_until(lambda: sv.status_of(low2) == 'cancelled', 30, 'low2 (deleted while stopped) to be cancelled')
        wait_until(lambda: sv.status_of(blk) == 'running', 30, 'the blocker to resume')
        time.sleep(1.0)
        check(sv.q('SELECT count(*) FROM runs')[0][0] == n_before, 'a restart queues nothing for unchanged files')

        # epochd cancel on a running run (by name); its checkpoint stays
        p = epochd('cancel', 'blocker', '--db', sv.db)
        check(p.returncode == 0, f'epochd cancel blocker: {p.returncode} {p.stderr}')
        wait_until(lambda: sv.status_of(blk) == 'cancelled', 30, 'the running run to be cancelled')
        check(os.path.exists(os.path.join(sv.state, 'runs', str(blk), 'last.safetensors')),
              'the cancelled run keeps its checkpoint')

        # now the queue drains in priority-then-age order
        wait_until(lambda: sv.q("SELECT count(*) FROM runs WHERE name IN ('high', 'low', 'edit')"
                                " AND status = 'done'")[0][0] == 3, 120, 'the queue to drain')
        order = [r[0] for r in sv.q("SELECT name FROM runs WHERE status = 'done' ORDER BY started_at, id")]
        check(order == ['high', 'low', 'edit'], f'priority, then age: {order}')
        check(sv.q("SELECT status FROM runs WHERE name IN ('gpu', 'gpu3')") == [('queued',), ('queued',)],
              'the GPU runs still wait')
        check(sv.alive(), 'the service is up')

        # SIGHUP: reload (more CPU slots) and rescan
        text = open(sv.cfg).read().replace('cpu_slots: 1', 'cpu_slots: 3')
        open(sv.cfg, 'w').write(text)
        sv.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: 'CPU with 3 slots' in sv.log_text(), 30, 'the reloaded config')
        # a bad config on SIGHUP is refused, the service stays up with the old one
        open(sv.cfg, 'w').write(text + 'cpu_slotz: 2\n')
        sv.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: 'keeping the previous ones' in sv.log_text(), 30, 'the bad config to be refused')
        check(sv.alive(), 'the service survives a bad config')
        open(sv.cfg, 'w').write(text)

        # a second service on the same database is refused
        p = subprocess.run([EPOCHD, 'serve', '--config', sv.cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        check(p.returncode == 75 and 'another epochd serve' in p.stderr, f'second service: {p.returncode} {p.stderr}')
        check(sv.stop() == 0, 'service exit 0')

        # a bad config at start: located messages, exit 64
        bad = os.path.join(tmp, 'bad.yaml')
        open(bad, 'w').write('experiments: exp\ncpu_slot: 2\nmax_attempts: zero\nlimits: {memory: 8 parsecs}\n')
        p = subprocess.run([EPOCHD, 'serve', '--config', bad], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        check(p.returncode == 64, f'bad config exit {p.returncode}')
        for frag in [f'{bad}:2:1: cpu_slot: unknown key (did you mean \'cpu_slots\'?)',
                     f'{bad}:3:15: max_attempts: expected an integer', f'{bad}:4:18: limits.memory: unknown unit \'parsecs\'']:
            check(frag in p.stderr, f'message {frag!r} in {p.stderr!r}')
        check(all(l.startswith('<3>') for l in p.stderr.splitlines()), 'errors carry the <3> priority prefix')
    finally:
        sv.cleanup()

# limits and data roots from the config judge specs; an invalid spec whose
# bytes do not change is read again on SIGHUP and runs once the new settings
# allow it
with tempdir() as tmp:
    sv = Service(tmp, settle_ms=100, extra='limits: {params: 1000}\ndata_roots: [data]\n')
    try:
        os.makedirs(os.path.join(tmp, 'data'))
        os.makedirs(os.path.join(tmp, 'elsewhere'))
        sv.start()
        write(os.path.join(sv.exp, 'big.yaml'), spec('big'))  # 2176 parameters
        write(os.path.join(sv.exp, 'outside.yaml'), spec('outside').replace(
            'dataset: synthetic', f'dataset: mnist\n  root: {tmp}/elsewhere'))
        wait_until(lambda: sv.q("SELECT count(*) FROM runs WHERE status = 'invalid'")[0][0] == 2, 30,
                   'two invalid runs')
        err = dict(sv.q('SELECT name, error FROM runs'))
        check('big.yaml:' in (err.get('big') or '') and '1000' in (err.get('big') or ''),
              f'the parameter limit is named: {err.get("big")}')
        check('outside.yaml:' in (err.get('outside') or '') and 'data.root' in (err.get('outside') or ''),
              f'the data root is refused: {err.get("outside")}')
        text = open(sv.cfg).read().replace('limits: {params: 1000}', 'limits: {params: 100000}')
        open(sv.cfg, 'w').write(text)
        sv.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: sv.q("SELECT 1 FROM runs WHERE name = 'big' AND status = 'done'"), 60,
                   'big to run after the limit was raised')
        time.sleep(0.5)
        rows = sv.q("SELECT status FROM runs WHERE name = 'big' ORDER BY id")
        check(rows == [('invalid',), ('done',)], f'big: the invalid row stays, one new run: {rows}')
        check(sv.q("SELECT status FROM runs WHERE name = 'outside'") == [('invalid',)],
              'outside stays invalid, recorded once')
        check(sv.stop() == 0, 'exit 0')
    finally:
        sv.cleanup()
finish()
