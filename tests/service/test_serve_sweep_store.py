#!/usr/bin/env python3
"""epochd serve, a large sweep (issue 10, defect 9): a sweep file whose
anchors expand ~40x is stored once, not once per combination. 16
combinations of an anchored `sequential` model must make a database far
smaller than 16 copies of one combination's effective spec; every
combination still trains with its own swept values (the worker got its
effective spec: lr and epoch count in the epochs table); the web API and
`epochd export` show each combination's effective spec, whose SHA-256 is the
identity the service recorded; and the file dropped again queues nothing.

The effective spec's size is bounded below by hand, independent of epochd:
the model has K*(1+M*R) `tanh` layers once aliases are expanded, and each is at
least the 10 bytes `- tanh: {}` in any YAML rendering."""
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

from serve_util import EPOCHD, Service, check, finish, tempdir, wait_until, write

K, M, R = 20, 20, 40  # tanh per block, blocks per group, groups
TANH = K * (1 + M * R)  # the first block, then R groups of M blocks: 16,020 tanh layers
LRS = (0.1, 0.05, 0.02, 0.01)
EPOCHS = (1, 2)
SEEDS = (1, 2)
N = len(LRS) * len(EPOCHS) * len(SEEDS)


def anchored_sweep(name):
    """A small file (a few KB) whose model expands to K*(1+M*R) layers. Residuals
    of bounded tanh blocks, each group followed by a layernorm, keep the
    activations finite so that every combination trains."""
    lines = [f'name: "{name}_lr{{train.optimizer.lr}}_e{{train.epochs}}_s{{seed}}"',
             'seed: 1', 'device: cpu', 'data:', '  dataset: synthetic', '  batch_size: 32',
             '  synthetic: {shape: [8], classes: 4, train: 64, test: 32}',
             'model:', '  template: sequential', '  layers:',
             '    - residual: &block', '        layers:']
    lines += ['          - tanh: {}'] * K
    lines += ['    - residual: &group', '        layers:']
    lines += ['          - residual: *block'] * M
    lines += ['    - residual: *group', '    - layernorm: {affine: false}'] * (R - 1)
    lines += ['    - linear: {out: 4}',
              'train:', '  epochs: 1', '  optimizer: {name: sgd, lr: 0.5}',
              'matrix:', f'  train.optimizer.lr: [{", ".join(map(str, LRS))}]',
              f'  train.epochs: [{", ".join(map(str, EPOCHS))}]', f'  seed: [{", ".join(map(str, SEEDS))}]', '']
    return '\n'.join(lines)


def f32(x):
    import struct
    return struct.unpack('f', struct.pack('f', x))[0]


def db_bytes(sv):
    """The database's size with its WAL folded in (the service has stopped)."""
    return os.path.getsize(sv.db) + (os.path.getsize(sv.db + '-wal') if os.path.exists(sv.db + '-wal') else 0)


def safetensors_metadata(path):
    with open(path, 'rb') as f:
        n = int.from_bytes(f.read(8), 'little')
        return json.loads(f.read(n)).get('__metadata__', {})


def main():
    with tempdir() as tmp:
        sv = Service(tmp, cpu_slots=2)
        sv.start()
        text = anchored_sweep('big')
        path = os.path.join(sv.exp, 'big.yaml')
        write(path, text)
        expanded_lower = TANH * len('- tanh: {}')  # one combination's effective spec, at least
        check(len(text) * 40 < expanded_lower, f'the file ({len(text)} bytes) expands at least 40x')

        def finished():
            rows = sv.q("SELECT count(*) FROM runs WHERE status IN ('done', 'failed', 'invalid', 'cancelled')")
            return rows and rows[0][0] >= N
        wait_until(finished, 280, f'the {N} combinations to finish')
        sv.stop()
        size = db_bytes(sv)
        print(f'database: {size} bytes for {N} combinations; one effective spec >= {expanded_lower} bytes')
        check(size < 2 * expanded_lower,
              f'the database ({size} bytes) is far under {N} effective specs ({N} x >= {expanded_lower} bytes)')

        runs = sv.q('SELECT id, name, status, error, sweep, spec_sha256, spec, spec_file_sha256 FROM runs ORDER BY id')
        check(len(runs) == N, f'{N} runs, found {len(runs)}')
        # stored once: no combination holds its own text; one spec_texts row, the file's bytes
        stored = sv.q('SELECT sha256, text FROM spec_texts')
        check(len(stored) == 1 and stored[0][1] == text, 'the sweep file is stored once, as it was written')
        file_sha = hashlib.sha256(text.encode()).hexdigest()
        check(stored and stored[0][0] == file_sha, 'spec_texts is keyed by the file\'s SHA-256')
        check(all(r[6] is None and r[7] == file_sha for r in runs), 'every combination names the file, holds no text')

        # every combination trained with its own values (the worker's spec was the combination's)
        for rid, name, status, error, sweep, sha, _, _ in runs:
            v = json.loads(sweep)
            check(status == 'done', f'run {rid} {name} is done ({status}: {error})')
            eps = sv.q('SELECT epoch, lr FROM epochs WHERE run_id = ? ORDER BY epoch', (rid,))
            check([e[0] for e in eps] == list(range(1, v['train.epochs'] + 1)),
                  f'run {rid} trained {v["train.epochs"]} epochs, found {[e[0] for e in eps]}')
            check(all(e[1] == f32(v['train.optimizer.lr']) for e in eps),
                  f'run {rid} trained at lr {v["train.optimizer.lr"]}, found {[e[1] for e in eps]}')
            expect = f'big_lr{v["train.optimizer.lr"]}_e{v["train.epochs"]}_s{v["seed"]}'
            check(name == expect, f'run {rid} is named {expect}, found {name}')
        seeds = {}
        for rid, name, _, _, sweep, _, _, _ in runs:
            v = json.loads(sweep)
            seeds.setdefault((v['train.optimizer.lr'], v['train.epochs']), []).append(
                sv.q('SELECT quote(train_loss) FROM epochs WHERE run_id = ? AND epoch = 1', (rid,)))
        check(all(len(p) == 2 and p[0] != p[1] for p in seeds.values()), 'the two seeds train differently')

        # the web API shows each combination's effective spec: its SHA-256 is the identity recorded
        # when it was queued, and it holds the combination's values, aliases expanded
        ui_log = os.path.join(tmp, 'ui.log')
        with open(ui_log, 'w') as log:
            ui = subprocess.Popen([EPOCHD, 'ui', '--db', sv.db, '--http', '127.0.0.1:0'], stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            url = wait_until(lambda: re.search(r'dashboard on (http://[^ ]+/)', open(ui_log).read()), 60,
                             'the dashboard address')
            base = url.group(1) if url else None
            for rid, name, _, _, sweep, sha, _, _ in runs if base else []:
                with urllib.request.urlopen(f'{base}api/runs/{rid}', timeout=60) as resp:
                    got = json.loads(resp.read())
                eff = got.get('spec') or ''
                v = json.loads(sweep)
                check(hashlib.sha256(eff.encode()).hexdigest() == sha,
                      f'run {rid}: the API\'s spec is the combination\'s effective spec (SHA-256 {sha[:12]})')
                check(eff.count('tanh') == TANH and '*block' not in eff and 'matrix' not in eff,
                      f'run {rid}: the API\'s spec has every aliased layer expanded and no matrix')
                check(re.search(rf'\blr: {re.escape(str(v["train.optimizer.lr"]))}\b', eff) is not None and
                      re.search(rf'\bepochs: {v["train.epochs"]}\b', eff) is not None,
                      f'run {rid}: the API\'s spec holds lr {v["train.optimizer.lr"]} and epochs {v["train.epochs"]}')
            if base:
                with urllib.request.urlopen(f'{base}runs/{runs[5][0]}', timeout=60) as resp:
                    page = resp.read().decode()
                check('lr: 0.05' in page and page.count('tanh') >= TANH, 'the run page shows the effective spec')
        finally:
            ui.terminate()
            ui.wait(30)

        # epochd export writes the same effective spec into the weights' metadata
        out = os.path.join(tmp, 'w.safetensors')
        rid, sha = runs[3][0], runs[3][5]
        p = subprocess.run([EPOCHD, 'export', str(rid), '--db', sv.db, '-o', out], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        check(p.returncode == 0, f'epochd export {rid}: {p.stdout}')
        meta = safetensors_metadata(out) if p.returncode == 0 else {}
        check(hashlib.sha256(meta.get('spec', '').encode()).hexdigest() == sha,
              'the exported weights carry the combination\'s effective spec')

        # the effective spec is a plain spec of its own: `epochd check` takes it
        eff_path = os.path.join(tmp, 'effective.yaml')
        with open(eff_path, 'w') as f:
            f.write(meta.get('spec', ''))
        p = subprocess.run([EPOCHD, 'check', '--no-files', eff_path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        check(p.returncode == 0, f'epochd check takes the effective spec: {p.stdout[-500:]}')

        # started again on the same file: every combination is known, nothing is queued or stored again
        sv.start()
        time.sleep(1.0)
        wait_until(lambda: 'unchanged' in sv.log_text(), 60, 'the service to find the file unchanged')
        sv.stop()
        check(sv.q('SELECT count(*) FROM runs')[0][0] == N, 'nothing queued again')
        check(sv.q('SELECT count(*) FROM spec_texts')[0][0] == 1, 'the text is not stored twice')
        sv.cleanup()
    finish()


if __name__ == '__main__':
    sys.exit(main())
