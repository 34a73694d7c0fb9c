#!/usr/bin/env python3
"""An adversarial spec author against `epochd check` (issue 10): every path a
spec can name - data.root of each dataset kind, the files in it, and
model.init_from, plain and swept - pointed outside the data roots, at a
FIFO, at a device, at a symbolic link and at a directory. Each must be a
located problem (`file:line:col: key: ...`, exit 65), no byte of a file
outside the roots may appear in any message, and nothing may block: every
run has a timeout, and a FIFO whose open blocked would hit it.

  test_adversarial_paths.py EPOCHD
"""
import os
import re
import struct
import subprocess
import sys
import tempfile

EPOCHD = sys.argv[1]
TIMEOUT = 20
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what)


SECRET = b'SECRETS!do-not-leak-0123456789abcdef' * 4
# what a parser might print of the secret's first bytes: as text, as an IDX
# magic number or count (big-endian u32), as a safetensors header length
# (little-endian u64), as a CIFAR label byte
LEAKS = [SECRET[:6].decode(), 'do-not-leak',
         '0x%08x' % struct.unpack('>I', SECRET[:4])[0], str(struct.unpack('>I', SECRET[:4])[0]),
         str(struct.unpack('>I', SECRET[4:8])[0]), str(struct.unpack('<Q', SECRET[:8])[0]),
         'label %d' % SECRET[0], 'label %d' % SECRET[1]]

IDX_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']
CIFAR10_FILES = ['data_batch_%d.bin' % i for i in range(1, 6)] + ['test_batch.bin']

LOCATED = re.compile(r'^(?P<file>[^:]+):(?P<line>[0-9]+):(?P<col>[0-9]+): (?P<key>[a-z_.\[\]0-9]+): (?P<msg>.+)$')


def spec_text(dataset='synthetic', root=None, init_from=None, sweep_init=None):
    # a sweep's runs are named after the file and their values
    lines = (['name: adv'] if sweep_init is None else []) + ['data:', '  dataset: %s' % dataset]
    if dataset == 'synthetic':
        lines.append('  synthetic: {shape: [1, 4, 4], classes: 10, train: 8, test: 8}')
    if root is not None:
        lines.append('  root: "%s"' % root)
    lines += ['model:', '  template: mlp', '  units: [10]']
    if init_from is not None:
        lines.append('  init_from: "%s"' % init_from)
    lines += ['train: {epochs: 1}']
    if sweep_init is not None:
        lines += ['matrix:', '  model.init_from: [%s]' % ', '.join('"%s"' % p for p in sweep_init)]
    return '\n'.join(lines) + '\n'


def run_check(tmp, name, text, roots):
    path = os.path.join(tmp, name + '.yaml')
    with open(path, 'w') as f:
        f.write(text)
    args = [EPOCHD, 'check'] + [a for r in roots for a in ('--data-root', r)] + [path]
    try:
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        check(False, f'{name}: `epochd check` blocked (no answer in {TIMEOUT} s)')
        return None
    out, err = r.stdout.decode('utf-8', 'replace'), r.stderr.decode('utf-8', 'replace')
    return path, r.returncode, out, err


def expect(tmp, name, text, roots, key, why):
    """A located 65 at `key` whose message matches `why`, and no leak."""
    res = run_check(tmp, name, text, roots)
    if res is None:
        return
    path, code, out, err = res
    check(code == 65, f'{name}: exit {code}, expected 65 (stderr: {err.strip()!r})')
    lines = [ln for ln in err.splitlines() if ln]
    check(len(lines) >= 1, f'{name}: no message')
    for ln in lines:
        m = LOCATED.match(ln)
        check(m is not None and m.group('file') == path and int(m.group('line')) > 0,
              f'{name}: not a located problem: {ln!r}')
    hit = [ln for ln in lines if LOCATED.match(ln) and LOCATED.match(ln).group('key') == key
           and re.search(why, ln)]
    check(hit, f'{name}: expected a problem at {key} matching {why!r}, got {lines}')
    for leak in LEAKS:
        check(leak not in out and leak not in err, f'{name}: the message shows {leak!r} of a file outside the roots')


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = os.path.realpath(tmp)
        roots = os.path.join(tmp, 'roots')
        outside = os.path.join(tmp, 'outside')
        os.makedirs(roots)
        os.makedirs(outside)
        secret = os.path.join(outside, 'secret.bin')
        with open(secret, 'wb') as f:
            f.write(SECRET)
        # a dataset folder outside the roots, and the roots' own odd things
        out_mnist = os.path.join(outside, 'mnist')
        os.makedirs(out_mnist)
        for n in IDX_FILES:
            with open(os.path.join(out_mnist, n), 'wb') as f:
                f.write(SECRET)
        fifo = os.path.join(roots, 'fifo')
        os.mkfifo(fifo)
        adir = os.path.join(roots, 'adir')
        os.makedirs(adir)
        link_out = os.path.join(roots, 'link_out')
        os.symlink(secret, link_out)
        link_dev = os.path.join(roots, 'link_dev')
        os.symlink('/dev/zero', link_dev)
        link_dir_out = os.path.join(roots, 'link_dir_out')
        os.symlink(out_mnist, link_dir_out)
        # dataset folders inside the roots whose files are odd
        odd = {}
        for kind, maker in (('fifo', os.mkfifo), ('dir', os.makedirs),
                            ('link', lambda p: os.symlink(secret, p)), ('dev', lambda p: os.symlink('/dev/zero', p))):
            for ds, files in (('mnist', IDX_FILES), ('cifar10', CIFAR10_FILES)):
                d = os.path.join(roots, f'{ds}_{kind}')
                os.makedirs(d)
                for n in files:
                    maker(os.path.join(d, n))
                odd[(ds, kind)] = d
        R = [roots]

        # model.init_from, with the roots configured
        for name, target, why in (
                ('init_outside', secret, 'is not under the configured data roots'),
                ('init_dev', '/dev/zero', 'is not under the configured data roots'),
                ('init_fifo', fifo, 'is a FIFO, not a regular file'),
                ('init_dir', adir, 'is a directory, not a regular file'),
                ('init_link_out', link_out, 'is not under the configured data roots'),
                ('init_link_dev', link_dev, 'is not under the configured data roots'),
                ('init_dotdot', os.path.join(roots, '..', 'outside', 'secret.bin'), 'is not under the configured')):
            expect(tmp, name, spec_text(init_from=target), R, 'model.init_from', why)
        # and without roots (`epochd check` alone): the kinds of file still matter
        for name, target, why in (('noroot_init_dev', '/dev/zero', 'is a character device, not a regular file'),
                                  ('noroot_init_fifo', fifo, 'is a FIFO, not a regular file'),
                                  ('noroot_init_link_dev', link_dev, 'is a character device, not a regular file'),
                                  ('noroot_init_dir', adir, 'is a directory, not a regular file')):
            expect(tmp, name, spec_text(init_from=target), [], 'model.init_from', why)

        # data.root of every dataset kind
        for ds in ('mnist', 'fashion_mnist', 'cifar10', 'cifar100'):
            for name, target, why in (
                    ('outside', out_mnist, 'is not under the configured data roots'),
                    ('dev', '/dev', 'is not under the configured data roots'),
                    ('fifo', fifo, 'is not a directory'),
                    ('file', os.path.join(roots, 'nothing_here'), 'does not exist'),
                    ('link_dir_out', link_dir_out, 'is not under the configured data roots')):
                expect(tmp, f'root_{ds}_{name}', spec_text(dataset=ds, root=target), R, 'data.root', why)
        # the files inside a root inside the roots
        for (ds, kind), d in sorted(odd.items()):
            why = {'fifo': r'not a regular file \(a FIFO\)', 'dir': r'not a regular file \(a directory\)',
                   'link': r'not a regular file \(a symbolic link\)',
                   'dev': r'not a regular file \(a symbolic link\)'}[kind]
            expect(tmp, f'files_{ds}_{kind}', spec_text(dataset=ds, root=d), R, 'data.root', why)

        # a sweep: every combination on its own, each located, none blocking
        res = run_check(tmp, 'sweep_init', spec_text(sweep_init=[secret, fifo, adir, '/dev/zero', link_out]), R)
        if res:
            path, code, out, err = res
            check(code == 65, f'sweep_init: exit {code}')
            lines = [ln for ln in err.splitlines() if ln]
            check(len(lines) == 5 and all(LOCATED.match(ln) and 'model.init_from' in ln for ln in lines),
                  f'sweep_init: {lines}')
            check('0 of 5 combinations valid' in out, f'sweep_init: {out}')
            for leak in LEAKS:
                check(leak not in out and leak not in err, f'sweep_init: shows {leak!r}')

    print('FAILED' if failures else 'ok', len(failures), 'problems')
    return 1 if failures else 0


sys.exit(main())
