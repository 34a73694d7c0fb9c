#!/usr/bin/env python3
"""epochd serve and 100 specs dropped at once (written directly, not renamed
in, all within a few milliseconds): exactly 100 runs, none lost, none
duplicated, all done with their one epoch; a restart adds nothing.

  test_serve_many.py EPOCHD
"""
import os
import time

from serve_util import Service, check, finish, spec, tempdir, wait_until

N = 100
with tempdir() as tmp:
    sv = Service(tmp, settle_ms=200, cpu_slots=2)
    try:
        sv.start()
        wait_until(lambda: 'ready: watching' in sv.log_text(), 30, 'the service to be ready')
        t0 = time.monotonic()
        for i in range(N):
            d = os.path.join(sv.exp, f'batch{i % 4}')
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f'm{i:03d}.yaml'), 'w') as f:
                f.write(spec(f'm{i:03d}', epochs=1, seed=i, train=128, test=32))
        wait_until(lambda: sv.q("SELECT count(*) FROM runs WHERE status = 'done'")[0][0] >= N, 240,
                   f'{N} runs to finish')
        t = time.monotonic() - t0
        print(f'MEASURE {N} specs dropped at once: all done in {t:.1f} s (2 CPU slots)')
        time.sleep(1.0)
        rows = sv.q('SELECT name, status, spec_path FROM runs ORDER BY name')
        names = [r[0] for r in rows]
        check(len(rows) == N, f'{N} runs, found {len(rows)}')
        check(sorted(set(names)) == [f'm{i:03d}' for i in range(N)], 'every spec has its run, none twice')
        check(all(r[1] == 'done' for r in rows), 'all done')
        check(len(set(r[2] for r in rows)) == N, 'one run per file')
        n_epochs = sv.q('SELECT count(*), count(DISTINCT run_id) FROM epochs')[0]
        check(n_epochs == (N, N), f'one epoch row per run: {n_epochs}')
        check(sv.stop() == 0, 'service exit status 0')
        # a restart finds every file unchanged
        sv.start()
        wait_until(lambda: 'ready: watching' in sv.log_text(), 30, 'the restarted service to be ready')
        time.sleep(1.5)
        check(sv.q('SELECT count(*) FROM runs')[0][0] == N, 'a restart queues nothing new')
        check(sv.stop() == 0, 'service exit status 0')
    finally:
        sv.cleanup()
finish()
