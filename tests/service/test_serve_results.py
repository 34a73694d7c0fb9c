#!/usr/bin/env python3
"""What a user reads back through the epochd binary, against values computed
here from the database (Python's sqlite3) and the checkpoint files:
- live progress reaching `epochd status`: a worker in the middle of epoch 2
  (a scripted worker with known numbers) shows its epoch, epoch%, total%,
  images/s and ETA; a real run held after epoch 1 shows its images/s and
  the ETA from its epoch's seconds;
- `epochd status`, `epochd compare` (table and JSON) and `epochd plot` as
  commands on the service's database;
- train.keep_best: false keeps no best checkpoint (export --best refuses);
- best.safetensors is the checkpoint of the best epoch, and export --best
  holds the same weights as a run stopped at that epoch;
- train.checkpoint_every: 2, killed after epoch 3: the retry resumes from
  epoch 2's checkpoint and ends with the uninterrupted values.

  test_serve_results.py EPOCHD
"""
import json
import math
import os
import signal
import struct
import xml.etree.ElementTree as ET

from serve_util import (EPOCHD, Hold, Service, check, epochd, finish, reference_epochs, spec, tempdir, wait_until,
                        write)

here = os.path.dirname(os.path.abspath(__file__))


def fmt_duration(s):
    """cli_fmt_duration, written again."""
    if s < 60:
        return f'{s:.1f}s'
    t = int(math.floor(s + 0.5))
    return f'{t // 60}m{t % 60:02d}s' if t < 3600 else f'{t // 3600}h{t % 3600 // 60:02d}m'


def status_row(sv, rid):
    """The whitespace-separated cells of run rid's line in `epochd status`."""
    p = epochd('status', '--db', sv.db)
    check(p.returncode == 0, f'epochd status exits 0: {p.returncode} {p.stderr}')
    for line in p.stdout.splitlines():
        cells = line.split()
        if cells and cells[0] == str(rid):
            return cells, p.stdout
    check(False, f'run {rid} in epochd status:\n{p.stdout}')
    return [], p.stdout


def header(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        return json.loads(f.read(n))


def tensors(path):
    """name -> raw bytes of each tensor of a safetensors file."""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    return {k: data[v['data_offsets'][0]:v['data_offsets'][1]] for k, v in h.items() if k != '__metadata__'}


# 1. live progress in the middle of an epoch: a scripted worker with known numbers
with tempdir() as tmp:
    sv = Service(tmp, settle_ms=100, extra=f'worker_prefix: [/usr/bin/python3, {here}/fault_worker.py]\n')
    try:
        sv.start()
        write(os.path.join(sv.exp, 'progress.yaml'), spec('progress', epochs=4))
        wait_until(lambda: sv.q("SELECT 1 FROM runs WHERE name = 'progress' AND progress_epoch = 2"), 60,
                   'the progress of epoch 2 to be recorded')
        rid = sv.q("SELECT id FROM runs WHERE name = 'progress'")[0][0]
        cells, out = status_row(sv, rid)
        # epoch 2 at 40/128 = 31.25 %; (1 + 0.3125) / 4 = 32.8 % of the run; 3325.1 images/s;
        # ETA (4 - 1 - 0.3125) epochs x 10 s (the seconds of epoch 1) = 26.875 s
        check(cells[:9] == [str(rid), 'progress', 'running', 'cpu', '2/4', '31%', '32.8%', '3,325', '26.9s'],
              f'the live row: {cells}\n{out}')
        check('1 running, 0 queued' in out, f'the summary line: {out.splitlines()[:1]}')
        open(os.path.join(sv.state, 'runs', str(rid), 'go'), 'w').close()
        wait_until(lambda: sv.status_of(rid) == 'done', 60, 'the scripted run to end')
        check(sv.stop() == 0, 'exit 0')
    finally:
        sv.cleanup()

with tempdir() as tmp:
    hold = Hold(tmp)
    sv = Service(tmp, settle_ms=100, env=hold.env())
    try:
        sv.start()
        # 2. a real run held after epoch 1 of 2: the ETA from its epoch's seconds (about
        # half a second here: a size that the ETA's tenths of a second resolve)
        hold.allow('live', 1)
        write(os.path.join(sv.exp, 'live.yaml'), spec('live', epochs=2, seed=91, train=32768, units='[64, 4]',
                                                      shape='[1, 16, 16]', batch=256))
        hold.wait_held('live', 2)
        lid = sv.q("SELECT id FROM runs WHERE name = 'live'")[0][0]
        wait_until(lambda: sv.q('SELECT 1 FROM runs WHERE id = ? AND progress_epoch = 1 AND progress_fraction = 1',
                                (lid,)) and sv.epochs(lid), 60, 'epoch 1 and its last progress to be recorded')
        secs, ips = sv.q('SELECT e.seconds, r.progress_images_per_sec FROM epochs e JOIN runs r ON r.id = e.run_id'
                         ' WHERE r.id = ?', (lid,))[0]
        cells, out = status_row(sv, lid)
        print(out)
        want = [str(lid), 'live', 'running', 'cpu', '1/2', '-', '50.0%', f'{int(math.floor(ips + 0.5)):,}',
                fmt_duration(secs)]
        check(cells[:9] == want, f'between epochs: {cells} (expected {want})\n{out}')
        hold.release('live')

        # 3. keep_best: false
        write(os.path.join(sv.exp, 'nobest.yaml'), spec('nobest', epochs=3, seed=92, extra='  keep_best: false\n'))
        # 4. best.safetensors and export --best: a spec whose best epoch is not its last
        best_text = None
        for seed in (3, 7, 8, 9, 10, 11):
            text = spec('best', epochs=5, seed=seed, extra='  optimizer: {name: adam, lr: 0.05}\n')
            rows, _, _ = reference_epochs(tmp, f'best{seed}', text)
            accs = [float(r[4]) for r in rows]
            if accs.index(max(accs)) + 1 < 5:
                best_text, best_epoch = text, accs.index(max(accs)) + 1
                print(f'seed {seed}: best test accuracy at epoch {best_epoch} of 5: {accs}')
                break
        check(best_text is not None, 'a seed whose best epoch is not the last (else the check below means nothing)')
        write(os.path.join(sv.exp, 'best.yaml'), best_text or '')
        # 5. checkpoint_every: 2, the worker killed after epoch 3 (checkpoint of epoch 2)
        sparse = spec('sparse', epochs=5, seed=93, extra='  checkpoint_every: 2\n')
        ref_sparse, _, _ = reference_epochs(tmp, 'sparse', sparse)
        hold.allow('sparse', 3)
        write(os.path.join(sv.exp, 'sparse.yaml'), sparse)
        hold.wait_held('sparse', 4)
        sid = sv.q("SELECT id FROM runs WHERE name = 'sparse'")[0][0]
        wait_until(lambda: len(sv.epochs(sid)) == 3, 60, 'sparse to record 3 epochs')
        last = os.path.join(sv.state, 'runs', str(sid), 'last.safetensors')
        check(header(last)['__metadata__']['epoch'] == '2', 'its last checkpoint is of epoch 2 (every 2 epochs)')
        pid = sv.q('SELECT worker_pid FROM runs WHERE id = ?', (sid,))[0][0]
        os.kill(pid, signal.SIGKILL)
        hold.release('sparse')
        wait_until(lambda: sv.q("SELECT count(*) FROM runs WHERE status = 'done'")[0][0] == 4, 120,
                   'live, nobest, best and sparse to finish')
        check('resumed after epoch 2 of 5' in sv.log_text(), 'sparse resumed from epoch 2\'s checkpoint')
        check(sv.q('SELECT attempts FROM runs WHERE id = ?', (sid,))[0][0] == 2, 'sparse: 2 attempts')
        check(sv.epochs(sid) == ref_sparse, 'sparse: epochs 1..5 once, the uninterrupted values bit for bit')

        ids = dict(sv.q('SELECT name, id FROM runs'))
        nb_dir = os.path.join(sv.state, 'runs', str(ids['nobest']))
        check(os.path.exists(os.path.join(nb_dir, 'last.safetensors')) and
              not os.path.exists(os.path.join(nb_dir, 'best.safetensors')), 'keep_best: false keeps no best.safetensors')
        p = epochd('export', str(ids['nobest']), '--db', sv.db, '--best', '-o', os.path.join(tmp, 'nb.safetensors'))
        check(p.returncode != 0 and not os.path.exists(os.path.join(tmp, 'nb.safetensors')),
              f'export --best refuses without a best checkpoint: {p.returncode} {p.stderr}')
        p = epochd('export', str(ids['nobest']), '--db', sv.db, '-o', os.path.join(tmp, 'nb.safetensors'))
        check(p.returncode == 0, f'export of the last checkpoint works: {p.stderr}')

        if best_text:
            bdir = os.path.join(sv.state, 'runs', str(ids['best']))
            check(header(os.path.join(bdir, 'best.safetensors'))['__metadata__']['epoch'] == str(best_epoch),
                  f'best.safetensors is the checkpoint of epoch {best_epoch}, the best test accuracy')
            check(os.stat(os.path.join(bdir, 'best.safetensors')).st_ino !=
                  os.stat(os.path.join(bdir, 'last.safetensors')).st_ino, 'and not the last one')
            out_best, out_last = os.path.join(tmp, 'best.safetensors'), os.path.join(tmp, 'last.safetensors')
            p = epochd('export', str(ids['best']), '--db', sv.db, '--best', '-o', out_best)
            check(p.returncode == 0, f'export --best: {p.stderr}')
            p = epochd('export', str(ids['best']), '--db', sv.db, '-o', out_last)
            check(p.returncode == 0, f'export: {p.stderr}')
            # the same spec stopped after the best epoch, by `epochd run --epochs`, exported
            short = os.path.join(tmp, 'short.yaml')
            with open(short, 'w') as f:
                f.write(best_text)
            sdb = os.path.join(tmp, 'short.db')
            p = epochd('run', short, '--db', sdb, '--state-dir', os.path.join(tmp, 'short'), '--threads', '1',
                       '--epochs', str(best_epoch))
            check(p.returncode == 0, f'epochd run --epochs {best_epoch}: {p.stderr}')
            out_short = os.path.join(tmp, 'short.safetensors')
            p = epochd('export', '1', '--db', sdb, '-o', out_short)
            check(p.returncode == 0, f'export of the short run: {p.stderr}')
            tb, tl, ts = tensors(out_best), tensors(out_last), tensors(out_short)
            check(tb and tb == ts, 'export --best holds the weights of the run stopped at the best epoch, bit for bit')
            check(tb != tl, 'and differs from the last epoch\'s export')

        # 6. status, compare and plot as commands
        epochs = {}
        for name, rid in ids.items():
            epochs[name] = [(r[0], float(r[4])) for r in sv.epochs(rid)]
        p = epochd('compare', '--db', sv.db, '--format', 'json')
        check(p.returncode == 0, f'compare --format json: {p.returncode} {p.stderr}')
        rows = {r['name']: r for r in json.loads(p.stdout)} if p.returncode == 0 else {}
        check(sorted(rows) == sorted(ids), f'one row per run: {sorted(rows)}')
        for name, ep in epochs.items():
            r = rows.get(name, {})
            accs = [a for _, a in ep]
            close = lambda a, b: a is not None and abs(a - b) <= 1e-12  # JSON has 15 significant digits
            check(close(r.get('best_test_acc'), max(accs)) and r.get('best_epoch') == accs.index(max(accs)) + 1 and
                  close(r.get('final_test_acc'), accs[-1]) and r.get('epochs_done') == len(accs),
                  f'compare {name}: best/final from its epochs: {r}')
        p = epochd('compare', '--db', sv.db, 'best')
        check(p.returncode == 0 and f'{max(a for _, a in epochs["best"]):.4f}' in p.stdout and 'sparse' not in p.stdout,
              f'compare NAME: the table has the run\'s best accuracy and only that run:\n{p.stdout}')
        svg = os.path.join(tmp, 'curves.svg')
        p = epochd('plot', '--db', sv.db, '-o', svg)
        check(p.returncode == 0, f'plot exits 0: {p.stderr}')
        if p.returncode == 0:
            root = ET.parse(svg).getroot()
            check(root.tag.endswith('svg'), 'plot writes an SVG document')
            text = ' '.join(t.text or '' for t in root.iter() if t.tag.endswith('text'))
            check(all(name in text for name in ids), f'the legend names every run: {text[:300]}')
        p = epochd('plot', '--db', sv.db, 'no_such_run', '-o', os.path.join(tmp, 'none.svg'))
        check(p.returncode == 66, f'plot of no run: exit 66: {p.returncode}')
        p = epochd('status', '--db', sv.db)
        check(p.returncode == 0 and '0 running, 0 queued' in p.stdout, f'status when all are done:\n{p.stdout}')
        for name in ids:
            check(any(line.split()[1:3] == [name, 'done'] for line in p.stdout.splitlines() if len(line.split()) > 2),
                  f'status lists {name} as done')
        check(sv.stop() == 0, 'exit 0')
    finally:
        sv.cleanup()
finish()
