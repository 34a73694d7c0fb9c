#!/usr/bin/env python3
"""The service's throughput with many queued Slurm runs (not part of the test
suite: it measures, it does not check much). A throwaway cluster with more
(fake) CPUs than runs at once, N tiny specs dropped at once, `executor:
slurm`; prints how fast the service submits, how soon the runs are all done,
and how much CPU the service itself spent (load-independent beside the wall
times, which depend on the machine's load).

  bench_serve_slurm.py EPOCHD [N] [POLL_MS]      (root, slurm-wlm, munge)
"""
import os
import sys
import time

import slurm_cluster
from serve_util import Service, check, finish, spec, tempdir, wait_until, write

why_not = slurm_cluster.unavailable()
if why_not:
    print(f'skipped: {why_not}')
    sys.exit(77)
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
poll_ms = int(sys.argv[3]) if len(sys.argv) > 3 else 2000


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(') ', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


with tempdir() as tmp:
    c = slurm_cluster.Cluster(tmp, cpus=32, gpus=0)
    c.start()
    sv = Service(os.path.join(tmp, 'sv'), settle_ms=100, threads=1, env={'SLURM_CONF': c.conf},
                 extra=f'executor: slurm\nslurm:\n  poll_ms: {poll_ms}\n  max_jobs: {n}\n')
    try:
        sv.start()
        if not sv.alive():
            print(sv.log_text())
        cpu0 = cpu_seconds(sv.proc.pid)
        t0 = time.time()
        for i in range(n):
            write(os.path.join(sv.exp, f'b{i:03d}.yaml'),
                  spec(f'b{i:03d}', epochs=1, train=64, test=16, units='[4]', shape='[4]', batch=16, seed=i))
        wait_until(lambda: sv.q("SELECT count(*) FROM runs WHERE status = 'done'")[0][0] == n, 900,
                   f'{n} runs to be done', interval=0.2)
        t_done = time.time()
        cpu = cpu_seconds(sv.proc.pid) - cpu0
        subs = sorted(r[0] for r in sv.q('SELECT submitted_at FROM slurm_jobs'))
        queued = sorted(r[0] for r in sv.q('SELECT created_at FROM runs'))
        att = sv.q('SELECT sum(attempts), count(*) FROM runs')[0]
        check(att == (n, n), f'one attempt each: {att}')
        check(len(subs) == n, f'one job each: {len(subs)}')

        def ts(iso):
            import calendar
            return calendar.timegm(time.strptime(iso[:19], '%Y-%m-%dT%H:%M:%S')) + float(iso[19:23])
        span_q = ts(queued[-1]) - ts(queued[0])
        span_s = ts(subs[-1]) - ts(subs[0])
        print(f'MEASURE {n} queued Slurm runs (poll_ms {poll_ms}): ingested over {span_q:.1f} s; submitted over '
              f'{span_s:.1f} s ({n / max(span_s, 1e-3):.1f} sbatch/s, one sbatch per run, at most 4 at once); first '
              f'submission {ts(subs[0]) - t0:.1f} s and all done {t_done - t0:.1f} s after the drop '
              f'({n / (t_done - t0):.2f} runs/s end to end); the service used {cpu:.2f} s of CPU '
              f'({1000 * cpu / n:.1f} ms per run)')
        sv.stop()
    finally:
        sv.cleanup()
        c.stop()
finish()
