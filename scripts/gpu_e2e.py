#!/usr/bin/env python3
"""epochd itself on a GPU, through its CUDA module (gpu/module.h): what
scripts/gpu-check runs after the backend's own test programs, which link the
backend statically and so never load epochd-cuda.so.

  gpu_e2e.py EPOCHD

- `epochd devices --json` lists at least one CUDA device (the module loads);
- tiny synthetic runs of a batch-norm CNN and of an MLP-Mixer on `cuda` and
  on `cpu` finish, record their device, and their losses agree: the first
  epoch's training loss within 1 % (float32 on both; only the order of
  sums differs), the last within 10 %, the training loss falling on both;
- `precision: bf16` on `cuda` finishes with finite losses;
- `--device auto` picks the GPU.

The database is read with Python's sqlite3 module, a reader independent of
db/. Exit 0 when every check holds, 1 otherwise, 77 on a machine without
an NVIDIA driver (nothing to check).
"""
import json
import math
import os
import sqlite3
import subprocess
import sys
import tempfile

EPOCHD = sys.argv[1]
failures = []


def check(cond, what):
    print(('ok:   ' if cond else 'FAIL: ') + what, flush=True)
    if not cond:
        failures.append(what)


SPEC = """name: {name}
seed: 5
data:
  dataset: synthetic
  synthetic: {{shape: [3, 16, 16], classes: 10, train: 1024, test: 256}}
  batch_size: 64
model:
  template: {template}
{model}
train:
  epochs: 4
  precision: {precision}
  optimizer: {{name: adam, lr: 3.0e-4}}
"""
MODELS = {
    'cnn': "  channels: [16, p, 32, p]\n  batch_norm: true\n  pool: {kernel: 2, stride: 2}\n",
    'mlp_mixer': "  patch_size: 4\n  hidden: 32\n  depth: 2\n",
}


def run(tmp, name, template, device, precision='fp32'):
    spec = os.path.join(tmp, f'{name}.yaml')
    with open(spec, 'w') as f:
        f.write(SPEC.format(name=name, template=template, model=MODELS[template], precision=precision))
    db = os.path.join(tmp, 'e2e.db')
    p = subprocess.run([EPOCHD, 'run', spec, '--db', db, '--state-dir', os.path.join(tmp, 'state'),
                        '--device', device], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=600)
    print(f'$ epochd run {name}.yaml --device {device}: exit {p.returncode}\n{p.stdout.strip()}\n{p.stderr.strip()}',
          flush=True)
    con = sqlite3.connect(db)
    row = con.execute('SELECT id, status, device FROM runs WHERE name = ? ORDER BY id DESC', (name,)).fetchone()
    losses = [] if not row else [r[0] for r in con.execute(
        'SELECT train_loss FROM epochs WHERE run_id = ? ORDER BY epoch', (row[0],))]
    con.close()
    return p.returncode, row, losses, p.stdout


with tempfile.TemporaryDirectory() as tmp:
    p = subprocess.run([EPOCHD, 'devices', '--json'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=120)
    print(f'$ epochd devices --json: exit {p.returncode}\n{p.stdout.strip()}\n{p.stderr.strip()}', flush=True)
    devices = []
    try:
        devices = json.loads(p.stdout).get('devices', [])
    except ValueError:
        pass
    if p.returncode == 0 and not devices and not os.path.exists('/proc/driver/nvidia/version') \
            and subprocess.run(['sh', '-c', 'command -v nvidia-smi'], stdout=subprocess.DEVNULL).returncode != 0:
        print('gpu_e2e: no NVIDIA driver here: skipped (exit 77)', flush=True)
        sys.exit(77)
    check(p.returncode == 0 and len(devices) > 0, 'epochd devices lists a CUDA device (the module loaded)')

    for template in MODELS:
        got = {}
        for device in ('cuda', 'cpu'):
            rc, row, losses, _ = run(tmp, f'{template}_{device}', template, device)
            check(rc == 0 and row is not None and row[1] == 'done',
                  f'{template} on {device}: exit {rc}, run {row}')
            check(row is not None and row[2].startswith(device), f'{template} on {device}: device recorded {row}')
            check(len(losses) == 4 and all(math.isfinite(x) for x in losses) and losses[-1] < losses[0],
                  f'{template} on {device}: 4 finite epochs, loss falling: {losses}')
            got[device] = losses
        g, c = got['cuda'], got['cpu']
        if len(g) == 4 and len(c) == 4:
            check(abs(g[0] - c[0]) <= 0.01 * abs(c[0]),
                  f'{template}: epoch 1 training loss, cuda {g[0]:.6f} against cpu {c[0]:.6f} (1 %)')
            check(abs(g[-1] - c[-1]) <= 0.10 * abs(c[-1]),
                  f'{template}: epoch 4 training loss, cuda {g[-1]:.6f} against cpu {c[-1]:.6f} (10 %)')

    rc, row, losses, _ = run(tmp, 'cnn_bf16', 'cnn', 'cuda', precision='bf16')
    check(rc == 0 and row is not None and row[1] == 'done' and len(losses) == 4 and
          all(math.isfinite(x) for x in losses), f'cnn in bf16 on cuda: exit {rc}, run {row}, losses {losses}')

    rc, row, losses, out = run(tmp, 'mixer_auto', 'mlp_mixer', 'auto')
    check(rc == 0 and ' on cuda' in out, f'--device auto trains on the GPU: {row}')

print('gpu_e2e: ' + ('all checks passed' if not failures else f'{len(failures)} FAILED'), flush=True)
sys.exit(1 if failures else 0)
