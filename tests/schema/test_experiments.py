#!/usr/bin/env python3
"""Every spec shipped under experiments/ passes `epochd check`: first without
looking at the datasets (--no-files), then with them - the seed's CIFAR-10
specs against a CIFAR-10 folder laid out here (sparse files of the binary
version's exact sizes, where the specs' relative data.root expects it), the
quickstart's against Debian's Fashion-MNIST. Without Fashion-MNIST that part
skips (exit 77) unless EPOCHD_TEST_REQUIRED=1 (-Dfashion_mnist_tests=enabled).

  test_experiments.py EPOCHD SOURCE_ROOT
"""
import os
import shutil
import subprocess
import sys
import tempfile

EPOCHD, SRC = sys.argv[1], sys.argv[2]
FASHION = '/usr/share/datasets/fashion-mnist'
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what, flush=True)


def specs_under(root):
    found = []
    for d, _, files in os.walk(root):
        found += [os.path.join(d, f) for f in files if f.endswith(('.yaml', '.yml'))]
    return sorted(found)


def epochd_check(*args):
    p = subprocess.run([EPOCHD, 'check', *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    print(p.stdout, p.stderr, sep='', flush=True)
    return p


shipped = specs_under(os.path.join(SRC, 'experiments'))
rel = [os.path.relpath(p, os.path.join(SRC, 'experiments')) for p in shipped]
check(any(r.startswith('quickstart/') for r in rel) and any(r.startswith('seed/') for r in rel),
      f'the quickstart and seed specs are found: {rel}')
p = epochd_check('--no-files', *shipped)
check(p.returncode == 0, f'every shipped spec is valid without its files: exit {p.returncode}')

fashion = os.path.isdir(FASHION)
with tempfile.TemporaryDirectory(prefix='epochd-experiments-') as tmp:
    shutil.copytree(os.path.join(SRC, 'experiments'), os.path.join(tmp, 'experiments'))
    # <checkout>/data/cifar-10-batches-bin, as the seed specs' relative roots say
    cifar = os.path.join(tmp, 'data', 'cifar-10-batches-bin')
    os.makedirs(cifar)
    for name in [f'data_batch_{i}.bin' for i in range(1, 6)] + ['test_batch.bin']:
        with open(os.path.join(cifar, name), 'wb') as f:
            f.truncate(10000 * 3073)  # 10000 records of label + 3x32x32 bytes
    copies = specs_under(os.path.join(tmp, 'experiments'))
    seed = [s for s in copies if '/experiments/seed/' in s]
    p = epochd_check(*seed)
    check(p.returncode == 0, f'the seed specs pass with CIFAR-10 in place: exit {p.returncode}')
    quick = [s for s in copies if '/experiments/quickstart/' in s]
    if fashion:
        p = epochd_check(*quick)
        check(p.returncode == 0, f'the quickstart specs pass with Debian\'s Fashion-MNIST: exit {p.returncode}')
    # and without CIFAR-10 the seed specs say where it should be
    shutil.rmtree(cifar)
    p = epochd_check(seed[0])
    check(p.returncode == 65 and 'cifar-10-batches-bin does not exist' in p.stderr,
          f'without CIFAR-10: invalid, with the missing folder named: {p.returncode}')

if failures:
    print(f'{len(failures)} check(s) failed')
    sys.exit(1)
if not fashion:
    if os.environ.get('EPOCHD_TEST_REQUIRED') == '1':
        print(f'FAIL: {FASHION} is absent but required (-Dfashion_mnist_tests=enabled)')
        sys.exit(1)
    print(f'skipped: the quickstart specs with their files ({FASHION} is absent); the rest passed')
    sys.exit(77)
print('all checks passed')
