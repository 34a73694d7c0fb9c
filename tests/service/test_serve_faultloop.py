#!/usr/bin/env python3
"""Fault injection along a short two-run session, in SQLite's manner: a
clean session counts the service's (and the workers') writes, syncs and
allocations; then, for each chosen N, a fresh session fails the Nth call of
one kind (ENOSPC or EIO for writes and syncs, ENOMEM for allocations,
faultinj.c as LD_PRELOAD), and a second service without faults finishes
what is left. After each: the service never died of a signal, both runs are
done, the database holds epochs 1..3 of each exactly once with the values
of the clean session, and the final weights are bit for bit the clean
session's.

  test_serve_faultloop.py EPOCHD FAULTINJ.so [--sanitized]

FAULTLOOP=all tries every N of every write and sync (an hour or so), and a
spread of FAULTLOOP_ALLOC (400) allocations out of the ~20,000 a session
makes, each session being a pair of processes rather than SQLite's
in-process loop; the default tries a spread of N per kind that a test run
can afford.
"""
import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time

from serve_util import EPOCHD, check, finish, spec, tempdir

SHIM = os.path.abspath(sys.argv[2])
SANITIZED = '--sanitized' in sys.argv[3:]
NAMES = ('alpha', 'beta')


def session_dir(root, tag):
    d = os.path.join(root, tag)
    os.makedirs(os.path.join(d, 'exp'))
    for i, name in enumerate(NAMES):
        with open(os.path.join(d, 'exp', name + '.yaml'), 'w') as f:
            f.write(spec(name, epochs=3, seed=11 + i, train=512))
    with open(os.path.join(d, 'epochd.yaml'), 'w') as f:
        f.write('experiments: exp\ndb: epochd.db\nstate_dir: state\nsettle_ms: 50\ncancel_poll_ms: 100\n'
                'cpu_slots: 2\nworker_threads: 1\nstop_timeout_s: 10\nlimits: {min_free_disk: 0}\n')
    return d


def q(d, sql, args=()):
    path = os.path.join(d, 'epochd.db')
    if not os.path.exists(path):
        return []
    for _ in range(100):
        try:
            con = sqlite3.connect(path, timeout=10)
            try:
                return con.execute(sql, args).fetchall()
            finally:
                con.close()
        except sqlite3.OperationalError:
            time.sleep(0.05)
    return []


def finished(d):
    rows = q(d, "SELECT count(*) FROM runs WHERE status IN ('done', 'failed', 'cancelled', 'invalid')")
    return rows and rows[0][0] == len(NAMES)


def ready(d):
    with open(os.path.join(d, 'serve.log')) as f:
        return 'ready: watching' in f.read()


def serve(d, env_extra, timeout):
    """One service until both runs ended, it exited, or timeout: its exit status."""
    env = dict(os.environ)
    env.pop('NOTIFY_SOCKET', None)
    env.update(env_extra)
    if SANITIZED and 'LD_PRELOAD' in env_extra:  # the shim comes before ASan's runtime, on purpose
        env['ASAN_OPTIONS'] = ':'.join(filter(None, [env.get('ASAN_OPTIONS'), 'verify_asan_link_order=0']))
    with open(os.path.join(d, 'serve.log'), 'a') as log:
        log.write(f'---- {env_extra.get("EPOCHD_FAULT", "no fault")}\n')
        log.flush()
        p = subprocess.Popen([EPOCHD, 'serve', '--config', os.path.join(d, 'epochd.yaml')], stdout=log,
                             stderr=subprocess.STDOUT, env=env)
        end = time.monotonic() + timeout
        # stopped only once it handles signals (after it is ready), unless it ended by itself
        while time.monotonic() < end and p.poll() is None and not (finished(d) and ready(d)):
            time.sleep(0.05)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            return p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait()


def tensors(path):
    """name -> raw bytes of each tensor of a safetensors file."""
    with open(path, 'rb') as f:
        data = f.read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    return {k: body[v['data_offsets'][0]:v['data_offsets'][1]] for k, v in header.items() if k != '__metadata__'}


def outcome(d):
    """Per run name: status, its epochs' exact values, its final weights."""
    out = {}
    for rid, name, status in q(d, 'SELECT id, name, status FROM runs'):
        epochs = q(d, 'SELECT epoch, quote(train_loss), quote(train_acc), quote(test_loss), quote(test_acc)'
                      ' FROM epochs WHERE run_id = ? ORDER BY epoch', (rid,))
        ck = os.path.join(d, 'state', 'runs', str(rid), 'last.safetensors')
        out[name] = (status, epochs, tensors(ck) if os.path.exists(ck) else None)
    return out


def count_calls(root):
    d = session_dir(root, 'count')
    counts_file = os.path.join(d, 'counts')
    rc = serve(d, {'LD_PRELOAD': SHIM, 'EPOCHD_FAULT_COUNT': counts_file}, 120)
    check(rc == 0, f'the clean session exits 0: {rc}')
    counts = {}
    with open(counts_file) as f:
        for line in f:
            who, kind, n = line.split()
            if who in ('serve', 'worker'):
                counts[(who, kind)] = max(counts.get((who, kind), 0), int(n))
    return outcome(d), counts


def choose(total, budget, kind):
    if os.environ.get('FAULTLOOP') == 'all':
        budget = int(os.environ.get('FAULTLOOP_ALLOC', '400')) if kind == 'alloc' else total
    if total <= budget:
        return list(range(1, total + 1))
    step = total / budget
    return sorted({1 + int(i * step) for i in range(budget)})


with tempdir() as root:
    ref, counts = count_calls(root)
    check(all(v[0] == 'done' and len(v[1]) == 3 for v in ref.values()) and len(ref) == 2,
          f'the clean session trains both runs: {ref.keys()}')
    print('calls in the clean session:', counts, flush=True)
    plans = [('serve', 'write', 'ENOSPC', 12), ('serve', 'write', 'EIO', 6), ('serve', 'sync', 'EIO', 6),
             ('worker', 'write', 'ENOSPC', 4), ('worker', 'sync', 'EIO', 2)]
    if not SANITIZED:  # ASan owns malloc: the shim must not replace it there
        plans.append(('serve', 'alloc', 'ENOMEM', 10))
    injected = 0
    per_kind = {}
    for who, kind, err, budget in plans:
        total = counts.get((who, kind), 0)
        check(total > 0, f'the clean session made {kind} calls in the {who}')
        for n in choose(total, budget, kind):
            tag = f'{who}-{kind}-{err}-{n}'
            d = session_dir(root, tag)
            rc1 = serve(d, {'LD_PRELOAD': SHIM, 'EPOCHD_FAULT': f'{kind}:{n}:{err}:once:{who}',
                            'EPOCHD_FAULT_FIRED': os.path.join(d, 'fired'),
                            'ASAN_OPTIONS': 'detect_leaks=0'}, 60)
            fired = os.path.exists(os.path.join(d, 'fired'))
            injected += fired
            per_kind[f'{who}-{kind}-{err}'] = per_kind.get(f'{who}-{kind}-{err}', 0) + fired
            if not check(rc1 is not None and rc1 >= 0 and rc1 in (0, 70, 74),
                         f'{tag}: the service ends with a documented status, not a signal: {rc1}'):
                with open(os.path.join(d, 'serve.log')) as f:
                    print(f.read()[-3000:])
            if not finished(d) or rc1 != 0:
                rc2 = serve(d, {}, 120)
                check(rc2 == 0, f'{tag}: the service without the fault finishes and exits 0: {rc2}')
            got = outcome(d)
            all_ok = True
            for name in NAMES:
                st, ep, w = got.get(name, (None, [], None))
                ok = st == 'done' and ep == ref[name][1] and w == ref[name][2]
                all_ok &= ok
                if not check(ok, f'{tag}: {name} done ({st}) with the clean epochs ({len(ep)} rows) and weights'):
                    with open(os.path.join(d, 'serve.log')) as f:
                        print(f.read()[-3000:])
            if all_ok:  # a long campaign keeps only the sessions that went wrong
                shutil.rmtree(d, ignore_errors=True)
    print(f'{injected} sessions with an injected fault, nothing lost', flush=True)
    print('injected per kind:', ', '.join(f'{k}={v}' for k, v in sorted(per_kind.items())), flush=True)
finish()
