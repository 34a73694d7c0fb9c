#!/usr/bin/env python3
"""A worker_prefix for the placement tests: run as `speed_worker.py EPOCHD
worker ARGS...`, it trains nothing and takes as long as a device of a given
speed would. It speaks the worker protocol (docs/worker-protocol.md) on
stdout.

An epoch's work is the engine's FLOPs per sample (from `EPOCHD summary
--json`) times 3 x training samples + test samples (the sizes from the
spec's `synthetic:` line); it sleeps work / speed + EPOCHD_TEST_EPOCH_OVERHEAD
seconds per epoch, where the speed (FLOP/s) is EPOCHD_TEST_SPEEDS's entry
for its device: a JSON object such as {"cpu": 5e9, "cuda:0": 4e10} (the GPU
is the host ordinal CUDA_VISIBLE_DEVICES names). EPOCHD_TEST_START_DELAY
seconds pass before it starts. It reports each epoch's measured wall time,
progress about every 0.2 s, keeps its epochs in <state>/runs/<key>/epochs.jsonl
so that a resumed attempt carries on, and stops at SIGTERM like the real
worker (an `interrupted` event, exit 130)."""
import json
import os
import re
import signal
import subprocess
import sys
import time

argv = sys.argv[1:]


def opt(name, default=None):
    return argv[argv.index(name) + 1] if name in argv else default


def out(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


spec_file = opt('--spec-file')
spec = open(spec_file).read()
state = os.path.join(opt('--state-dir'), 'runs', opt('--key'))
os.makedirs(state, exist_ok=True)
history = os.path.join(state, 'epochs.jsonl')
device = opt('--device', 'cpu')
if device.startswith('cuda'):
    device = 'cuda:' + (os.environ.get('CUDA_VISIBLE_DEVICES') or '0').split(',')[0]
speeds = json.loads(os.environ.get('EPOCHD_TEST_SPEEDS', '{}'))
speed = float(speeds.get(device, speeds.get('cpu' if device == 'cpu' else 'cuda', 1e9)))
overhead = float(os.environ.get('EPOCHD_TEST_EPOCH_OVERHEAD', '0'))

summary = json.loads(subprocess.run([argv[0], 'summary', '--json', spec_file], stdout=subprocess.PIPE,
                                    check=True, text=True).stdout)
m = re.search(r'train: (\d+), test: (\d+)', spec)
train, test = (int(m.group(1)), int(m.group(2))) if m else (50000, 10000)
m = re.search(r'^\s*epochs:\s*(\d+)', spec, re.M)
epochs = int(m.group(1)) if m else 1
work = summary['flops'] * (3 * train + test)
epoch_seconds = work / speed + overhead

stop = False


def on_term(sig, frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)
time.sleep(float(os.environ.get('EPOCHD_TEST_START_DELAY', '0')))

done = 0
if '--resume' in argv and os.path.exists(history):
    with open(history) as f:
        done = sum(1 for line in f if line.strip())
out({'event': 'started', 'pid': os.getpid(), 'device': device, 'params': summary['params'], 'epochs': epochs,
     'steps_per_epoch': 10, 'train_samples': train, 'test_samples': test, 'resumed_epoch': done, 'threads': 1})
for e in range(1, done + 1):
    out({'event': 'epoch', 'epoch': e, 'train_loss': 1.0, 'train_acc': 0.5, 'test_loss': 1.0, 'test_acc': 0.5,
         'lr': 1e-3, 'seconds': epoch_seconds, 'samples_per_sec': train / epoch_seconds, 'replayed': True})
for e in range(done + 1, epochs + 1):
    t0 = time.monotonic()
    end = t0 + epoch_seconds
    while True:
        now = time.monotonic()
        if stop:
            out({'event': 'interrupted', 'epochs': e - 1})
            sys.exit(130)
        if now >= end:
            break
        frac = (now - t0) / epoch_seconds
        out({'event': 'progress', 'epoch': e, 'step': int(10 * frac), 'steps': 10,
             'images_per_sec': train / epoch_seconds, 'elapsed': now - t0})
        time.sleep(min(0.2, end - now))
    secs = time.monotonic() - t0
    acc = min(0.99, 0.5 + 0.04 * e)
    with open(history, 'a') as f:
        f.write(json.dumps({'epoch': e}) + '\n')
    out({'event': 'epoch', 'epoch': e, 'train_loss': 1.0 / e, 'train_acc': acc, 'test_loss': 1.0 / e,
         'test_acc': acc, 'lr': 1e-3, 'seconds': secs, 'samples_per_sec': train / secs, 'best_epoch': e})
out({'event': 'done', 'epochs': epochs, 'best_test_acc': min(0.99, 0.5 + 0.04 * epochs), 'best_epoch': epochs})
