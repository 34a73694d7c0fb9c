#!/usr/bin/env python3
"""A worker_prefix for test_serve_faults.py: run as `fault_worker.py EPOCHD
worker ARGS...`. It reads the run's spec name and misbehaves accordingly;
any other name runs the real worker (exec)."""
import os
import re
import signal
import sys
import time

argv = sys.argv[1:]
spec_file = argv[argv.index('--spec-file') + 1]
spec = open(spec_file).read()
name = re.search(r'^name: (\S+)', spec, re.M).group(1)


def out(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


parent = os.getppid()
started = '{"event":"started","pid":%d,"device":"cpu","epochs":2}' % os.getpid()
if name == 'garbage':
    out(started)
    out('this is not JSON')
    time.sleep(60)
elif name == 'longline':
    out(started)
    sys.stdout.write('{"event":"progress","pad":"' + 'x' * 100000)
    sys.stdout.flush()
    time.sleep(60)
elif name == 'unknown':
    out(started)
    out('{"event":"exploded"}')
    time.sleep(60)
elif name == 'silent':
    out(started)
    sys.exit(0)
elif name == 'late':
    out(started)
    out('{"event":"done","epochs":2}')
    out('{"event":"epoch","epoch":3}')
    time.sleep(60)
elif name == 'nodata':
    out(started)
    out('{"event":"failed","error":"data.root: /nowhere does not exist","code":66,"retryable":false}')
    sys.exit(66)
elif name == 'spec65':
    # a spec error that the worker (wrongly) calls retryable: code 65 decides
    out(started)
    out('{"event":"failed","error":"model.units: not a spec this worker can run","code":65,"retryable":true}')
    sys.exit(65)
elif name == 'exit65':
    out(started)
    sys.exit(65)  # a spec error, no final report
elif name == 'exit66':
    out(started)
    sys.exit(66)  # missing data, no final report
elif name == 'flaky':
    # a machine failure: retried up to max_attempts
    out(started)
    out('{"event":"failed","error":"cuda:0: an illegal memory access","code":70,"retryable":true}')
    sys.exit(70)
elif name == 'deaf':
    # ignores SIGTERM: only the service's SIGKILL ends it (or, if a test fails
    # half-way, the service's end: it must not outlive the test)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out(started)
    while os.getppid() == parent:
        time.sleep(0.1)
elif name == 'progress':
    # a known live state for `epochd status`: epoch 1 done (10 s), then 40 of
    # 128 steps of epoch 2 at 3325.1 images/s; ends once the test creates `go`
    out('{"event":"started","pid":%d,"device":"cpu","epochs":4,"steps_per_epoch":128,'
        '"train_samples":1000,"test_samples":100}' % os.getpid())
    out('{"event":"epoch","epoch":1,"train_loss":1.5,"train_acc":0.5,"test_loss":1.25,"test_acc":0.625,'
        '"lr":0.001,"seconds":10.0,"samples_per_sec":100.0}')
    out('{"event":"progress","epoch":2,"step":40,"steps":128,"loss":1.0,"acc":0.75,"images_per_sec":3325.1,'
        '"elapsed":3.0}')
    go = os.path.join(os.path.dirname(spec_file), 'go')
    while not os.path.exists(go):
        if os.getppid() != parent:  # the service has gone (a test that failed half-way)
            sys.exit(1)
        time.sleep(0.02)
    out('{"event":"done","epochs":1}')
elif name == 'child':
    # a child that keeps the pipes open after the worker exits
    if os.fork() == 0:
        time.sleep(60)
        os._exit(0)
    out(started)
    out('{"event":"epoch","epoch":1}')
    out('{"event":"epoch","epoch":2}')
    out('{"event":"done","epochs":2}')
    sys.exit(0)
elif name == 'stubborn' and not os.path.exists(os.path.join(os.path.dirname(spec_file), 'once')):
    # first attempt: outlives a killed service (no parent-death signal)
    open(os.path.join(os.path.dirname(spec_file), 'once'), 'w').close()
    out(started)
    time.sleep(120)
else:
    os.execv(argv[0], argv)
