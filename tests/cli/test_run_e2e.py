#!/usr/bin/env python3
"""End-to-end: `epochd run` on tiny synthetic specs, read back with Python's
own sqlite3 module (a reader independent of db/), plus `summary --json`,
`export` and Ctrl-C.

  test_run_e2e.py EPOCHD SOURCE_ROOT
"""
import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

EPOCHD, SRC = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what)


def epochd(*args, **kw):
    return subprocess.run([EPOCHD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


TINY = """name: {name}
seed: 3
device: cpu
data:
  dataset: synthetic
  synthetic: {{shape: [1, 8, 8], classes: 4, train: 256, test: 64}}
  batch_size: 32
model:
  template: {template}
{model}
train:
  epochs: {epochs}
  optimizer: {{name: adam, lr: 3.0e-3}}
  warmup_epochs: 1
  grad_clip: 1.0
"""
MLP = "  units: [32, 4]\n  bias: true\n"
CNN = "  channels: [4, p, 8]\n  pool: {kernel: 2, stride: 2}\n"


def read_safetensors_header(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        return json.loads(f.read(n))


with tempfile.TemporaryDirectory() as tmp:
    db = os.path.join(tmp, 'e.db')
    state = os.path.join(tmp, 'state')
    env = dict(os.environ, EPOCHD_THREADS='2')

    # 1. a run that finishes: rows, views, checkpoints
    spec = os.path.join(tmp, 'mlp.yaml')
    open(spec, 'w').write(TINY.format(name='tiny_mlp', template='mlp', model=MLP, epochs=4))
    r = epochd('run', spec, '--db', db, '--state-dir', state, env=env)
    print(r.stdout, r.stderr)
    check(r.returncode == 0, f'epochd run exits 0 (got {r.returncode})')
    check('epoch 4/4' in r.stdout, 'one plain line per epoch when not on a terminal')
    con = sqlite3.connect(db)
    check(con.execute('PRAGMA journal_mode').fetchone()[0] == 'wal', 'the database is in WAL mode')
    run = con.execute("SELECT id, name, status, params, device, spec_sha256, spec, attempts, started_at, finished_at, checkpoint "
                      "FROM runs").fetchone()
    check(run[1] == 'tiny_mlp' and run[2] == 'done', f'the run row says done: {run[:3]}')
    check(run[3] == 32 * 64 + 32 + 4 * 32 + 4, f'params recorded ({run[3]})')
    check(run[4] == 'cpu', 'device recorded')
    check(len(run[5]) == 64 and run[6] == open(spec).read(), 'spec text and sha256 recorded')
    check(run[8] and run[8].endswith('Z') and run[9] and run[9] >= run[8], 'ISO-8601 UTC start/finish times')
    rows = con.execute('SELECT epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds, samples_per_sec '
                       'FROM epochs WHERE run_id = ? ORDER BY epoch', (run[0],)).fetchall()
    check([e[0] for e in rows] == [1, 2, 3, 4], f'epochs 1..4 recorded once each: {[e[0] for e in rows]}')
    check(all(0 <= e[2] <= 1 and 0 <= e[4] <= 1 for e in rows), 'accuracies are fractions')
    check(rows[-1][1] < rows[0][1], 'the training loss falls')
    check(rows[-1][4] > 0.5, f'test accuracy well above chance (0.25): {rows[-1][4]}')
    check(all(e[6] > 0 and e[7] > 0 for e in rows), 'seconds and samples/s recorded')
    res = con.execute("SELECT COUNT(*) FROM results WHERE name = 'tiny_mlp' AND status = 'done'").fetchone()[0]
    check(res == 4, 'the results view has one row per epoch')
    board = con.execute("SELECT epochs_done, best_test_acc, best_epoch, final_test_acc FROM leaderboard WHERE id = ?",
                        (run[0],)).fetchone()
    best = max(e[4] for e in rows)
    check(board[0] == 4 and board[1] == best and rows[board[2] - 1][4] == best and board[3] == rows[-1][4],
          f'leaderboard: {board}')
    ck = run[10]
    check(ck and os.path.exists(ck) and os.path.exists(os.path.join(os.path.dirname(ck), 'best.safetensors')),
          f'last and best checkpoints exist: {ck}')

    # 2. export: the summary's parameter names, in PyTorch layouts, no optimizer state
    out = os.path.join(tmp, 'w.safetensors')
    r = epochd('export', str(run[0]), '--db', db, '-o', out)
    check(r.returncode == 0, f'export exits 0: {r.stderr}')
    hdr = read_safetensors_header(out)
    summ = json.loads(epochd('summary', '--json', spec).stdout)
    names = {p['name']: p['shape'] for p in summ['parameters']}
    names.update({b['name']: b['shape'] for b in summ['buffers']})
    tensors = {k: v for k, v in hdr.items() if k != '__metadata__'}
    check(all(tensors[k]['shape'] == v for k, v in names.items()), 'export holds every parameter and buffer')
    check(not any(k.startswith('optimizer.') for k in tensors), 'export has no optimizer state')
    check(hdr['__metadata__']['format'] == 'epochd-weights', 'export metadata')

    # 2b. init_from: the exported weights start a run of the same model; a file
    # that does not fit is a located spec error naming each tensor
    warm = os.path.join(tmp, 'warm.yaml')
    open(warm, 'w').write(TINY.format(name='warm', template='mlp', model=MLP + f"  init_from: {out}\n", epochs=1))
    r = epochd('check', warm)
    check(r.returncode == 0, f'init_from with the same model validates: {r.stderr}')
    r = epochd('run', warm, '--db', db, '--state-dir', state, env=env)
    first = con.execute("SELECT train_loss FROM epochs JOIN runs ON runs.id = run_id WHERE name = 'warm'").fetchone()
    check(r.returncode == 0 and first and first[0] < rows[0][1],
          f'a run from trained weights starts lower than one from scratch: {first} vs {rows[0][1]}')
    wide = os.path.join(tmp, 'wide.yaml')
    open(wide, 'w').write(TINY.format(name='wide', template='mlp',
                                      model="  units: [48, 4]\n  bias: true\n" + f"  init_from: {out}\n", epochs=1))
    r = epochd('check', wide)
    check(r.returncode == 65, f'a mismatching init_from is a spec error (exit {r.returncode})')
    check(f'{wide}:12:14: model.init_from:' in r.stderr and "'1.weight': expected shape [48, 64], found [32, 64]" in r.stderr and
          "'1.bias'" in r.stderr and "'4.weight'" in r.stderr, f'each mismatch located and named: {r.stderr}')

    # 3. summary of the seed's normal_cnn: exactly the seed's parameter count
    summ = json.loads(epochd('summary', '--json', os.path.join(SRC, 'experiments/seed/normal_cnn.yaml')).stdout)
    check(summ['params'] == 1183322, f"normal_cnn has 1,183,322 parameters ({summ['params']})")
    check(summ['parameters'][0] == {'name': '0.weight', 'shape': [16, 3, 3, 3], 'numel': 432},
          'PyTorch layout of the first convolution')

    # 4. an invalid spec: located messages, exit 65, an `invalid` row
    bad = os.path.join(tmp, 'bad.yaml')
    open(bad, 'w').write(TINY.format(name='bad', template='mlp', model="  units: [32, 5]\n", epochs=1))
    r = epochd('run', bad, '--db', db, '--state-dir', state, env=env)
    check(r.returncode == 65, f'invalid spec exits 65 (got {r.returncode})')
    check(f'{bad}:10:' in r.stderr and 'model.units[1]' in r.stderr, f'located message: {r.stderr.strip()}')
    st = con.execute("SELECT status, error FROM runs WHERE name = 'bad'").fetchone()
    check(st and st[0] == 'invalid' and 'model.units[1]' in st[1], f'invalid run recorded: {st}')

    # 5b. precision bf16 on the CPU: the same model trains to nearly run 1's losses (not the same bits),
    # the checkpoint records the kernels it chose; `devices` describes the CPU
    b16 = os.path.join(tmp, 'mlp_bf16.yaml')
    open(b16, 'w').write(TINY.format(name='tiny_mlp_bf16', template='mlp', model=MLP, epochs=4) + '  precision: bf16\n')
    r = epochd('run', b16, '--db', db, '--state-dir', state, env=env)
    check(r.returncode == 0, f'a bf16 run on the CPU exits 0 (got {r.returncode}): {r.stderr}')
    fp = [e[1] for e in rows]
    bf = [e[0] for e in con.execute("SELECT train_loss FROM epochs JOIN runs ON runs.id = run_id "
                                    "WHERE name = 'tiny_mlp_bf16' ORDER BY epoch")]
    check(len(bf) == 4 and all(abs(a - b) <= 2e-2 * a for a, b in zip(fp, bf)) and fp != bf,
          f'bf16 losses within 2% of fp32 and not the same bits: {fp} {bf}')
    ck16 = con.execute("SELECT checkpoint FROM runs WHERE name = 'tiny_mlp_bf16'").fetchone()[0]
    meta = read_safetensors_header(ck16).get('__metadata__', {}) if ck16 and os.path.exists(ck16) else {}
    check('bf16 gemm' in meta.get('kernels', ''), f'the checkpoint records the bf16 kernels: {meta.get("kernels")}')
    r = epochd('devices', '--json')
    cpu = json.loads(r.stdout).get('cpu', {}) if r.returncode == 0 else {}
    check(cpu.get('isa', '').startswith('x86-64-v') and isinstance(cpu.get('bf16_native'), bool) and cpu.get('cores', 0) > 0,
          f'devices --json describes the CPU: {cpu}')
    # OpenBLAS's kernel set: the one OPENBLAS_CORETYPE names, reported as held back exactly where
    # that is an AVX2 set on a CPU with AVX-512; without the variable, OpenBLAS's own choice
    r = epochd('devices', '--json', env=dict(env, OPENBLAS_CORETYPE='Haswell'))
    cpu_h = json.loads(r.stdout).get('cpu', {}) if r.returncode == 0 else {}
    check(cpu_h.get('openblas') == 'Haswell' and
          cpu_h.get('openblas_held_back') == (cpu_h.get('isa_max') == 'x86-64-v4'),
          f'devices --json reports OPENBLAS_CORETYPE=Haswell: {cpu_h}')
    r = epochd('devices', '--json', env={k: v for k, v in env.items() if k != 'OPENBLAS_CORETYPE'})
    cpu_a = json.loads(r.stdout).get('cpu', {}) if r.returncode == 0 else {}
    check(cpu_a.get('openblas', '') not in ('', 'unknown') and cpu_a.get('openblas_held_back') is False,
          f'devices --json reports OpenBLAS\'s own choice: {cpu_a}')

    # 5. Ctrl-C after epoch 1 (the run held there by the test-only EPOCHD_TEST_HOLD, so
    # that it is still running however fast the machine is): interrupted, exit 130
    slow = os.path.join(tmp, 'slow.yaml')
    open(slow, 'w').write(TINY.format(name='slow', template='cnn', model=CNN, epochs=3))
    hold = os.path.join(tmp, 'hold')
    os.makedirs(hold)
    open(os.path.join(hold, 'slow.gate'), 'w').write('1\n')
    p = subprocess.Popen([EPOCHD, 'run', slow, '--db', db, '--state-dir', state],
                         env=dict(env, EPOCHD_TEST_HOLD=hold), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None and not os.path.exists(os.path.join(hold, 'slow.at')):
        time.sleep(0.05)
    check(os.path.exists(os.path.join(hold, 'slow.at')) and p.poll() is None, 'the run is held after epoch 1')
    p.send_signal(signal.SIGINT)
    so, se = p.communicate(timeout=60)
    check(p.returncode == 130, f'interrupted run exits 130 (got {p.returncode}) {se}')
    check('interrupted after 1 epoch' in so, f'it says so: {so[-200:]!r}')
    st = con.execute("SELECT status, finished_at FROM runs WHERE name = 'slow'").fetchone()
    check(st[0] == 'interrupted', f'the run is marked interrupted: {st}')
    n = con.execute("SELECT COUNT(*) FROM epochs JOIN runs ON runs.id = run_id WHERE name = 'slow'").fetchone()[0]
    check(n == 1, f'with its one epoch: {n}')
    con.close()

if failures:
    print(f'{len(failures)} check(s) failed')
    sys.exit(1)
print('all end-to-end checks passed')
