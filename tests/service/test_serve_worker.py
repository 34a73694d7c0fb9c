#!/usr/bin/env python3
"""`epochd worker`, the service's side of the protocol, run directly:
- the JSON lines: `started` first, `epoch` lines with exact values, one final
  `done`; every line parses; the exit status matches;
- the epoch history: a checkpoint that got ahead of the recorded epochs (the
  worker died between writing checkpoint k and recording epoch k) is rolled
  back to the last committed one, the recorded epochs are reported again
  (`replayed`), and the run ends with the same values, bit for bit, as an
  uninterrupted one;
- a checkpoint left by a run of another spec under the same key is not
  resumed from;
- a spec error is a `failed` event with code 65, not retryable;
- with EPOCHD_SERVICE_PID naming a process that no longer exists, the
  worker stops at once (the service has gone); a live one that is not its
  parent (a wrapper in between) is fine;
- the test-only hold (EPOCHD_TEST_HOLD): a run waits before each epoch its
  gate does not reach, stops there on SIGTERM (interrupted, its epochs kept),
  goes on when the gate is raised or removed, ends with the uninterrupted
  values; without the variable the same gate holds nothing.

  test_serve_worker.py EPOCHD
"""
import json
import os
import shutil
import signal
import subprocess
import time

from serve_util import EPOCHD, check, finish, spec, tempdir


def worker(tmp, text, key, *args, env=None):
    path = os.path.join(tmp, f'{key}.yaml')
    with open(path, 'w') as f:
        f.write(text)
    e = dict(os.environ)
    e.pop('EPOCHD_SERVICE_PID', None)
    e.update(env or {})
    p = subprocess.run([EPOCHD, 'worker', '--spec-file', path, '--key', key, '--state-dir',
                        os.path.join(tmp, 'state'), '--threads', '1', *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, env=e)
    events = []
    for line in p.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            check(False, f'a stdout line is not JSON: {line!r}')
    return p, events


def epochs_of(events, replayed=None):
    out = {}
    for e in events:
        if e['event'] == 'epoch' and (replayed is None or bool(e.get('replayed')) == replayed):
            out[e['epoch']] = {k: e[k] for k in ('train_loss', 'train_acc', 'test_loss', 'test_acc', 'lr')}
    return out


with tempdir() as tmp:
    text = spec('w', epochs=4, seed=61)
    # the uninterrupted reference
    p, ev = worker(tmp, text, 'ref')
    check(p.returncode == 0, f'exit 0: {p.returncode} {p.stderr}')
    check(ev and ev[0]['event'] == 'started' and ev[-1]['event'] == 'done', 'started first, done last')
    check([e['event'] for e in ev].count('done') == 1, 'exactly one final event')
    ref = epochs_of(ev)
    check(sorted(ref) == [1, 2, 3, 4], f'epochs 1..4: {sorted(ref)}')
    ck = [e.get('checkpoint') for e in ev if e['event'] == 'epoch']
    check(all(c and c.endswith('/state/runs/ref/last.safetensors') for c in ck), f'each epoch names its checkpoint')
    hist = open(os.path.join(tmp, 'state', 'runs', 'ref', 'epochs.jsonl')).read().splitlines()
    check(len(hist) == 4, f'the history has 4 lines: {len(hist)}')

    # build the torn state: checkpoint of epoch 3 as `last`, committed = epoch 2, history 1..2
    d = os.path.join(tmp, 'state', 'runs', 'torn')
    p, ev = worker(tmp, text, 'torn', '--epochs', '2')
    check(p.returncode == 0, 'two epochs')
    shutil.copy(os.path.join(d, 'last.safetensors'), os.path.join(tmp, 'epoch2.safetensors'))
    p, ev = worker(tmp, text, 'torn', '--epochs', '3', '--resume')
    check(p.returncode == 0 and epochs_of(ev, False).keys() == {3}, 'the third epoch')
    with open(os.path.join(d, 'epochs.jsonl')) as f:
        lines = f.read().splitlines()
    with open(os.path.join(d, 'epochs.jsonl'), 'w') as f:
        f.write('\n'.join(lines[:2]) + '\n' + lines[2][:25])  # epoch 3 torn mid-line
    os.unlink(os.path.join(d, 'committed.safetensors'))
    shutil.copy(os.path.join(tmp, 'epoch2.safetensors'), os.path.join(d, 'committed.safetensors'))
    p, ev = worker(tmp, text, 'torn', '--resume')
    check(p.returncode == 0, f'resumed run exit 0: {p.stderr}')
    check('ahead of the recorded epochs; resuming from epoch 2' in p.stderr, f'rolled back: {p.stderr!r}')
    started = [e for e in ev if e['event'] == 'started']
    check(started and started[0]['resumed_epoch'] == 2, f'resumed after epoch 2: {started}')
    check(sorted(epochs_of(ev, True)) == [1, 2], f'epochs 1 and 2 reported again: {sorted(epochs_of(ev, True))}')
    check(sorted(epochs_of(ev, False)) == [3, 4], 'epochs 3 and 4 trained')
    got = epochs_of(ev)
    for k in range(1, 5):
        check(got.get(k) == ref[k], f'epoch {k} equals the uninterrupted run bit for bit')

    # a checkpoint of another spec under the same key is not resumed from
    other = spec('w', epochs=4, seed=62)
    p, ev = worker(tmp, other, 'ref', '--resume')
    check(p.returncode == 0, 'the other spec runs')
    check('is not a checkpoint of this spec; starting afresh' in p.stderr, f'stale checkpoint refused: {p.stderr!r}')
    s = [e for e in ev if e['event'] == 'started']
    check(s and s[0]['resumed_epoch'] == 0, 'it starts from scratch')
    check(not epochs_of(ev, True), 'nothing is replayed')

    # a spec error: failed, code 65, not retryable
    p, ev = worker(tmp, spec('bad', epochs=0), 'bad')
    check(p.returncode == 65, f'exit 65: {p.returncode}')
    check(ev and ev[-1]['event'] == 'failed' and ev[-1]['code'] == 65 and ev[-1]['retryable'] is False,
          f'failed event: {ev}')

    # the service has gone: the named service process no longer exists
    gone = subprocess.Popen(['true'])
    gone.wait()
    p, ev = worker(tmp, text, 'orphan', env={'EPOCHD_SERVICE_PID': str(gone.pid)})
    check(p.returncode == 130 and not ev, f'stops at once: {p.returncode} {ev}')
    check('has gone' in p.stderr, f'and says why: {p.stderr!r}')
    # a live service that is not the parent (a wrapper such as srun in between): it runs
    p, ev = worker(tmp, spec('w2', epochs=1), 'wrapped', env={'EPOCHD_SERVICE_PID': '1'})
    check(p.returncode == 0 and ev and ev[-1]['event'] == 'done', f'runs under a wrapper: {p.returncode}')

# the test-only hold that the serve tests use to act between epochs
hold_dir = os.path.join(tmp, 'hold')
os.makedirs(hold_dir)


def gate(n):
    with open(os.path.join(hold_dir, 'w.gate.tmp'), 'w') as f:
        f.write(f'{n}\n')
    os.rename(os.path.join(hold_dir, 'w.gate.tmp'), os.path.join(hold_dir, 'w.gate'))


def held_at():
    try:
        return int(open(os.path.join(hold_dir, 'w.at')).read())
    except (OSError, ValueError):
        return None


def start_held(*args):
    path = os.path.join(tmp, 'held.yaml')
    with open(path, 'w') as f:
        f.write(text)
    e = dict(os.environ, EPOCHD_TEST_HOLD=hold_dir)
    e.pop('EPOCHD_SERVICE_PID', None)
    return subprocess.Popen([EPOCHD, 'worker', '--spec-file', path, '--key', 'held', '--state-dir',
                             os.path.join(tmp, 'state'), '--threads', '1', *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=e)


def wait_for(pred, what, proc):
    for _ in range(6000):  # 60 s
        if pred():
            return True
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    check(False, f'timed out or the worker ended ({proc.poll()}) waiting for {what}')
    return False


gate(1)
p = start_held()
wait_for(lambda: held_at() == 2, 'the worker to hold before epoch 2', p)
check(p.poll() is None, 'held: the worker is still running after epoch 1')
p.send_signal(signal.SIGTERM)
out, err = p.communicate(timeout=60)
ev = [json.loads(line) for line in out.splitlines()]
check(p.returncode == 130, f'SIGTERM while held: exit 130: {p.returncode} {err}')
check([e['event'] for e in ev if e['event'] != 'progress'] == ['started', 'epoch', 'interrupted'] and ev[-1]['epochs'] == 1,
      f'started, epoch 1, interrupted after 1 epoch: {ev}')
check('holds before epoch 2' in err, f'it says it holds: {err!r}')
# resumed: held again before epoch 2, then let through to 3, then released
p = start_held('--resume')
wait_for(lambda: held_at() == 2, 'the resumed worker to hold before epoch 2', p)
gate(3)
wait_for(lambda: held_at() == 4, 'the worker to hold before epoch 4', p)
check(p.poll() is None, 'held again after epoch 3')
os.unlink(os.path.join(hold_dir, 'w.gate'))
out, err = p.communicate(timeout=60)
ev = [json.loads(line) for line in out.splitlines()]
check(p.returncode == 0 and ev[-1]['event'] == 'done', f'released: done: {p.returncode} {err}')
got = epochs_of(ev)
check(sorted(got) == [1, 2, 3, 4] and all(got[k] == ref[k] for k in range(1, 5)),
      'held, stopped, resumed and held again: the uninterrupted run\'s values bit for bit')
# the gate alone holds nothing: only the environment variable turns the hook on
gate(0)
os.unlink(os.path.join(hold_dir, 'w.at'))
p, ev = worker(tmp, text, 'unheld')
check(p.returncode == 0 and ev[-1]['event'] == 'done' and held_at() is None,
      f'without EPOCHD_TEST_HOLD a gate holds nothing: {p.returncode}')
finish()
