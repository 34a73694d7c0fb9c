#!/usr/bin/env python3
"""The seed's six models have PyTorch's parameter counts: the models that
torch_seed_models.py builds in PyTorch (the repository's copy in scripts/,
and ../shared/tools/torch_seed_models.py too where it is beside the
checkout) against `epochd summary --json` of each shipped seed spec
(experiments/seed/ and experiments/seed/corrected/) and against the table
of published counts in tests/common/seed_models.c. Skips (77) without
torch, fails instead with EPOCHD_TEST_REQUIRED=1 (-Dtorch_tests=enabled).

  test_seed_params.py EPOCHD SOURCE_ROOT   (run by Debian's /usr/bin/python3)
"""
import importlib.util
import json
import os
import re
import subprocess
import sys

EPOCHD, SRC = sys.argv[1], sys.argv[2]
try:
    import torch  # noqa: F401
except ImportError as e:
    if os.environ.get('EPOCHD_TEST_REQUIRED') == '1':
        print(f'FAIL: {e}, but the PyTorch tests are required (-Dtorch_tests=enabled)')
        sys.exit(1)
    print(f'skipped: {e}')
    sys.exit(77)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what, flush=True)


def torch_counts(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return {name: sum(p.numel() for p in m.parameters()) for name, m in mod.seed_models().items()}


refs = {'scripts/torch_seed_models.py': torch_counts(os.path.join(SRC, 'scripts', 'torch_seed_models.py'))}
shared = os.path.join(os.path.dirname(os.path.abspath(SRC)), 'shared', 'tools', 'torch_seed_models.py')
if os.path.exists(shared):
    refs['../shared/tools/torch_seed_models.py'] = torch_counts(shared)
else:
    print(f'({shared} is not beside this checkout: the repository\'s copy is the reference)')
ref = refs['scripts/torch_seed_models.py']
check(sorted(ref) == sorted(['normal_cnn', 'residual_cnn', 'mlp_mixer_S4', 'mlp_mixer_S2', 'mlp_mixer_B4',
                             'mlp_mixer_B2']), f'the six seed models: {sorted(ref)}')
for where, counts in refs.items():
    check(counts == ref, f'{where} builds the same models: {counts}')

# the published table the C tests use
table = dict((m.group(1), int(m.group(2))) for m in re.finditer(
    r'\{"(\w+)", ENG_TEMPLATE_\w+, [^}]*?, (\d+)\}', open(os.path.join(SRC, 'tests', 'common', 'seed_models.c')).read()))
check(table == ref, f'tests/common/seed_models.c\'s table equals PyTorch\'s counts:\n  table {table}\n  torch {ref}')

# the shipped specs, through the binary
for name, n in sorted(ref.items()):
    for sub in ('seed', os.path.join('seed', 'corrected')):
        path = os.path.join(SRC, 'experiments', sub, name + '.yaml')
        p = subprocess.run([EPOCHD, 'summary', '--json', path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        got = json.loads(p.stdout)['params'] if p.returncode == 0 else None
        print(f'{name:14s} PyTorch {n:>9,d}  epochd summary {os.path.relpath(path, SRC)}: {got}')
        check(got == n, f'{os.path.relpath(path, SRC)}: {got} parameters, PyTorch has {n} ({p.stderr.strip()})')

if failures:
    print(f'{len(failures)} check(s) failed')
    sys.exit(1)
print('all checks passed')
