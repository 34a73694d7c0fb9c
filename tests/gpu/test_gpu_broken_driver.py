#!/usr/bin/env python3
"""A CUDA driver that is installed but broken (here: a libcuda.so.1 that says
it is CUDA 1.0, found first through LD_LIBRARY_PATH) is a failure, never
"no device": `epochd devices` exits 70 naming CUDA's error, and the GPU
tests and the benchmark fail instead of skipping. Without it, on a machine
with no driver, `epochd devices` lists nothing and exits 0.

  test_gpu_broken_driver.py STUB_DIR EPOCHD GPU_OPS_TEST GPU_MODELS_TEST GPU_BENCH
"""
import os
import subprocess
import sys

stub_dir, epochd, ops_test, models_test, bench = sys.argv[1:6]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what, flush=True)


def run(args, stub):
    env = dict(os.environ)
    env.pop('CUDA_VISIBLE_DEVICES', None)
    # meson itself may put the stub's folder on LD_LIBRARY_PATH (it builds it)
    keep = [d for d in env.get('LD_LIBRARY_PATH', '').split(':')
            if d and os.path.realpath(d) != os.path.realpath(stub_dir)]
    env['LD_LIBRARY_PATH'] = ':'.join(keep)
    if stub:
        env['LD_LIBRARY_PATH'] = stub_dir + (':' + env['LD_LIBRARY_PATH'] if env.get('LD_LIBRARY_PATH') else '')
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    print(f'$ {" ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(args))}'
          f'{"   (with the broken driver)" if stub else ""}\n  exit {p.returncode}\n'
          f'  stdout: {p.stdout.strip()[:400]!r}\n  stderr: {p.stderr.strip()[:400]!r}', flush=True)
    return p


check(os.path.exists(os.path.join(stub_dir, 'libcuda.so.1')), f'the stub driver is built in {stub_dir}')
p = run([epochd, 'devices', '--json'], True)
check(p.returncode == 70, f'epochd devices exits 70 (internal error), not 0 with no device: {p.returncode}')
check('cudaErrorInsufficientDriver' in p.stderr and 'driver is installed' in p.stderr,
      f'and names CUDA\'s error and the installed driver: {p.stderr!r}')
check('"devices"' not in p.stdout, 'and prints no (empty) device list')
p = run([epochd, 'devices'], True)
check(p.returncode == 70 and 'no CUDA device' not in p.stdout, f'the plain listing too: {p.returncode}')
for args in ([ops_test], [models_test], [bench, 'ops', '--reps', '1'], [bench, 'models', '--steps', '1']):
    p = run(args, True)
    check(p.returncode not in (0, 77), f'{os.path.basename(args[0])} {" ".join(args[1:])} fails (exit '
          f'{p.returncode}), neither passes nor skips')
    check('cudaErrorInsufficientDriver' in p.stdout + p.stderr, f'{os.path.basename(args[0])}: says why')

# the same commands without the stub: where no driver is installed at all
# (this machine, if it has no GPU), there is simply no device
if not os.path.exists('/proc/driver/nvidia/version') and subprocess.run(
        ['/sbin/ldconfig', '-p'], stdout=subprocess.PIPE, text=True).stdout.find('libcuda.so.1') < 0:
    p = run([epochd, 'devices', '--json'], False)
    check(p.returncode == 0 and '"devices":[]' in p.stdout, f'no driver: an empty list, exit 0: {p.returncode}')
    p = run([ops_test], False)
    check(p.returncode == 77, f'no driver: the GPU operation tests skip (77): {p.returncode}')

if failures:
    print(f'{len(failures)} check(s) failed')
    sys.exit(1)
print('all checks passed')
