#!/usr/bin/env python3
"""The CUDA backend is a module (epochd-cuda.so) that epochd loads only when
it needs it (gpu/module.h):
- the executable does not link the CUDA libraries, so a command starts
  without their constructors;
- without an NVIDIA driver the device list is empty and nothing is loaded
  (a missing module goes unnoticed there);
- with a driver (here a stand-in that says CUDA 1.0, so that loading the
  module is observable: its error comes from inside it), the module is found
  beside the executable in the build tree and in ../lib/epochd/ of an
  install, or where $EPOCHD_CUDA_MODULE says;
- a missing module, a library that is not one, another build's module and
  a module of the same version built from other headers are each an exit
  70 with a message naming the path and the reason.

  test_gpu_module.py STUB_DIR EPOCHD MODULE OTHER_BUILD_MODULE OTHER_HEADERS_MODULE
"""
import os
import shutil
import subprocess
import sys
import tempfile

stub_dir, epochd, module, other_module, other_headers_module = sys.argv[1:6]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what, flush=True)


def no_driver_here():
    return not os.path.exists('/proc/driver/nvidia/version') and subprocess.run(
        ['/sbin/ldconfig', '-p'], stdout=subprocess.PIPE, text=True).stdout.find('libcuda.so.1') < 0


def environment(stub, module_env):
    """This environment with the stand-in driver first on the library path
    (or not at all), and $EPOCHD_CUDA_MODULE as given (None: unset)."""
    env = dict(os.environ)
    for k in ('CUDA_VISIBLE_DEVICES', 'EPOCHD_CUDA_MODULE', 'EPOCHD_TEST_DEVICES'):
        env.pop(k, None)
    keep = [d for d in env.get('LD_LIBRARY_PATH', '').split(':')
            if d and os.path.realpath(d) != os.path.realpath(stub_dir)]
    env['LD_LIBRARY_PATH'] = ':'.join(([stub_dir] if stub else []) + keep)
    if module_env is not None:
        env['EPOCHD_CUDA_MODULE'] = module_env
    return env


def run(exe, stub, module_env=None):
    p = subprocess.run([exe, 'devices', '--json'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=environment(stub, module_env), timeout=120)
    print(f'$ {exe} devices --json{"   (stand-in driver)" if stub else ""}'
          f'{f"   EPOCHD_CUDA_MODULE={module_env}" if module_env is not None else ""}\n'
          f'  exit {p.returncode}\n  stdout: {p.stdout.strip()[:300]!r}\n  stderr: {p.stderr.strip()[:400]!r}',
          flush=True)
    return p


def train_on_cuda(tmp, stub, module_env=None):
    """`epochd run --device cuda` of a tiny spec: the worker's path to the backend."""
    spec = os.path.join(tmp, 'tiny.yaml')
    with open(spec, 'w') as f:
        f.write('name: tiny\nseed: 1\ndata:\n  dataset: synthetic\n  batch_size: 8\n'
                '  synthetic: {shape: [1, 4, 4], classes: 2, train: 16, test: 8}\n'
                'model: {template: mlp, units: [8, 2]}\ntrain:\n  epochs: 1\n')
    db = os.path.join(tmp, f'runs-{len(os.listdir(tmp))}.db')
    p = subprocess.run([epochd, 'run', spec, '--device', 'cuda', '--db', db, '--state-dir', os.path.join(tmp, 'st')],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(stub, module_env),
                       timeout=120)
    print(f'$ epochd run tiny.yaml --device cuda{"   (stand-in driver)" if stub else ""}'
          f'{f"   EPOCHD_CUDA_MODULE={module_env}" if module_env is not None else ""}\n'
          f'  exit {p.returncode}\n  stderr: {p.stderr.strip()[-400:]!r}', flush=True)
    return p


def loaded(p):
    """The module was loaded and ran: only its CUDA runtime meets the stand-in."""
    return p.returncode == 70 and 'cudaErrorInsufficientDriver' in p.stderr


needed = subprocess.run(['readelf', '-d', epochd], stdout=subprocess.PIPE, text=True).stdout
needed = [l.split('[')[1].rstrip(']') for l in needed.splitlines() if '(NEEDED)' in l]
check(needed and not [n for n in needed if n.startswith(('libcuda', 'libcudart', 'libcublas', 'libcudnn'))],
      f'epochd itself needs no CUDA library: {needed}')
check(os.path.exists(module), f'the module is built: {module}')
check(os.path.dirname(os.path.realpath(module)) == os.path.dirname(os.path.realpath(epochd)),
      'the build puts it beside the executable')

check(loaded(run(epochd, True)), 'with a driver, the build tree\'s module is found and loaded')
check(loaded(run(epochd, True, os.path.realpath(module))), '$EPOCHD_CUDA_MODULE names it')

p = run(epochd, True, '/nonexistent/epochd-cuda.so')
check(p.returncode == 70 and 'not installed' in p.stderr and '/nonexistent/epochd-cuda.so' in p.stderr
      and '"devices"' not in p.stdout, 'a missing module, with a driver: exit 70 naming the path')
p = run(epochd, True, os.path.join(stub_dir, 'libcuda.so.1'))
check(p.returncode == 70 and 'not an epochd CUDA module' in p.stderr, 'a library without the entry is refused')
p = run(epochd, True, os.path.realpath(other_module))
check(p.returncode == 70 and 'another epochd build' in p.stderr and '0.0.0-other' in p.stderr,
      'another build\'s module is refused, with both versions')
p = run(epochd, True, os.path.realpath(other_headers_module))
check(p.returncode == 70 and 'another epochd build' in p.stderr and 'headers 0000000000000000' in p.stderr,
      'a module of the same version built from other headers is refused, with both hashes')

with tempfile.TemporaryDirectory() as tmp:
    # an install: bin/epochd and lib/epochd/epochd-cuda.so (packaging/install.sh)
    os.makedirs(os.path.join(tmp, 'inst', 'bin'))
    os.makedirs(os.path.join(tmp, 'inst', 'lib', 'epochd'))
    shutil.copy2(epochd, os.path.join(tmp, 'inst', 'bin', 'epochd'))
    shutil.copy2(module, os.path.join(tmp, 'inst', 'lib', 'epochd', 'epochd-cuda.so'))
    check(loaded(run(os.path.join(tmp, 'inst', 'bin', 'epochd'), True)), 'an install finds ../lib/epochd/')
    # the executable alone
    os.makedirs(os.path.join(tmp, 'alone'))
    alone = os.path.join(tmp, 'alone', 'epochd')
    shutil.copy2(epochd, alone)
    p = run(alone, True)
    check(p.returncode == 70 and 'not installed' in p.stderr and os.path.join(tmp, 'alone', 'epochd-cuda.so')
          in p.stderr, 'the executable alone, with a driver: exit 70 naming where it looked')
    # a run asking for a GPU says why it has none
    p = train_on_cuda(tmp, True)
    check(p.returncode != 0 and 'cudaErrorInsufficientDriver' in p.stderr,
          'a run on cuda with the broken driver fails naming CUDA\'s error')
    p = train_on_cuda(tmp, True, '/nonexistent/epochd-cuda.so')
    check(p.returncode != 0 and 'not installed' in p.stderr and '/nonexistent/epochd-cuda.so' in p.stderr,
          'a run on cuda with a driver and no module fails naming the missing module')
    if no_driver_here():
        p = train_on_cuda(tmp, False, '/nonexistent/epochd-cuda.so')
        check(p.returncode != 0 and 'no CUDA device on' in p.stderr, 'without a driver: no CUDA device here')
        p = run(alone, False)
        check(p.returncode == 0 and '"devices":[]' in p.stdout,
              f'the executable alone, without a driver: an empty list, exit 0 (nothing loaded): {p.returncode}')
        p = run(epochd, False, '/nonexistent/epochd-cuda.so')
        check(p.returncode == 0 and '"devices":[]' in p.stdout, 'no driver: the module is not even looked at')
    else:
        print('a driver is installed here: the checks without one were not made (they need a machine without)')

if failures:
    print(f'{len(failures)} check(s) failed')
    sys.exit(1)
print('all checks passed')
