#!/usr/bin/env python3
"""epochd serve, dropping files: valid and invalid specs (one at a time and
several at once), a sweep, a spec written slowly in pieces by a writer that
keeps it open, editor temporary files, a new subfolder. Every valid spec ends
`done` with all its epochs, every invalid one `invalid` with its located
message, nothing else runs, and the service stays up. Also measures the time
from a file appearing to its run starting.

  test_serve_drop.py EPOCHD
"""
import os
import statistics
import time

from serve_util import Service, check, finish, parse_utc, spec, tempdir, wait_until, write

# the timestamps are UTC whatever the local zone: meson runs this test under
# TZ=Europe/Berlin, where a July time is two hours ahead (daylight saving)
check(parse_utc('2026-07-01T12:00:00.250Z') == 1782907200.25, 'a summer UTC timestamp parses as UTC')
check(parse_utc('2026-12-06T12:00:00.000Z') == 1796558400.0, 'a winter UTC timestamp parses as UTC')
print(f'local zone: TZ={os.environ.get("TZ")} {time.tzname}')

with tempdir() as tmp:
    sv = Service(tmp, settle_ms=300, cpu_slots=2)
    try:
        sv.start()
        wait_until(lambda: 'ready: watching' in sv.log_text(), 30, 'the service to be ready')

        # one valid spec, and the time until its run starts
        latencies = []
        for i in range(3):
            path = os.path.join(sv.exp, f'first{i}.yaml')
            t0 = time.time()
            write(path, spec(f'first{i}', epochs=2, seed=i))
            row = wait_until(lambda: sv.q("SELECT started_at FROM runs WHERE name = ? AND started_at IS NOT NULL",
                                          (f'first{i}',)), 30, f'first{i} to start')
            if row:
                latencies.append(parse_utc(row[0][0]) - t0)  # started_at is ISO-8601 UTC with milliseconds
            wait_until(lambda: sv.q("SELECT 1 FROM runs WHERE name = ? AND status = 'done'", (f'first{i}',)), 60,
                       f'first{i} to finish')
        if latencies:
            print(f'MEASURE file appears -> run starts (settle 300 ms): '
                  f'{", ".join(f"{x * 1000:.0f}" for x in latencies)} ms, median {statistics.median(latencies) * 1000:.0f} ms')
            # never before the file has been unchanged for settle_ms; well before the
            # 60 s periodic rescan (the file was found by its inotify event)
            check(all(0.29 < x < 20 for x in latencies), f'start latencies {latencies}')

        # several at once, valid and invalid, in the root and in a new subfolder
        write(os.path.join(sv.exp, 'v1.yaml'), spec('v1', epochs=3, seed=11))
        write(os.path.join(sv.exp, 'v2.yml'), spec('v2', epochs=2, seed=12))
        write(os.path.join(sv.exp, 'bad_value.yaml'), spec('bad_value', epochs=0))
        write(os.path.join(sv.exp, 'bad_key.yaml'), spec('bad_key').replace('seed:', 'sede:'))
        write(os.path.join(sv.exp, 'not_yaml.yaml'), 'name: [unclosed\n  - {\n')
        os.makedirs(os.path.join(sv.exp, 'team', 'alice'))
        write(os.path.join(sv.exp, 'team', 'alice', 'v3.yaml'), spec('v3', epochs=2, seed=13))
        sweep = spec('sw_{train.epochs}', seed=14) + 'matrix:\n  train.epochs: [1, 2]\n'
        write(os.path.join(sv.exp, 'sweep.yaml'), sweep)

        # files that must be ignored
        for name in ['.hidden.yaml', '.#lock.yaml', 'backup.yaml~', '.v1.yaml.swp', '4913', 'notes.txt',
                     'x.yaml.tmp', '#auto.yaml#']:
            with open(os.path.join(sv.exp, name), 'w') as f:
                f.write(spec('ignored_' + name.strip('.#~')))
        os.makedirs(os.path.join(sv.exp, '.git'))
        write(os.path.join(sv.exp, '.git', 'hidden_dir.yaml'), spec('ignored_hidden_dir'))

        # a spec written slowly, in pieces, by a writer that keeps it open and
        # pauses longer than the settle interval
        slow = os.path.join(sv.exp, 'slow.yaml')
        text = spec('slow', epochs=2, seed=15)
        lines = text.splitlines(keepends=True)
        with open(slow, 'w') as f:
            for i, line in enumerate(lines):
                f.write(line)
                f.flush()
                time.sleep(0.6 if i < 6 else 0.1)

        expected_done = {'v1': 3, 'v2': 2, 'v3': 2, 'sw_1': 1, 'sw_2': 2, 'slow': 2}
        expected_invalid = {
            'bad_value': ['bad_value.yaml:', 'train.epochs'],
            'bad_key': ['bad_key.yaml:2:1', 'sede'],
            'not_yaml': ['not_yaml.yaml:'],
        }

        def settled():
            r = sv.q("SELECT count(*) FROM runs WHERE status IN ('done', 'invalid', 'failed', 'cancelled')")[0][0]
            return r >= 3 + len(expected_done) + len(expected_invalid)

        wait_until(settled, 120, 'every dropped spec to be done or invalid')
        time.sleep(1.0)  # anything that would wrongly run again has had its chance
        check(sv.alive(), 'the service is still running')

        runs = sv.q('SELECT id, name, status, error, spec_path FROM runs ORDER BY id')
        by_name = {}
        for rid, name, status, error, path in runs:
            check(name not in by_name, f'one run per spec: {name} appears twice')
            by_name[name] = (rid, status, error, path)
            check(not name.startswith('ignored'), f'an ignored file was read: {path}')
        for name, n in expected_done.items():
            if not check(name in by_name, f'{name} has a run'):
                continue
            rid, status, error, path = by_name[name]
            check(status == 'done', f'{name} is done (is {status}: {error})')
            ep = [e[0] for e in sv.epochs(rid)]
            check(ep == list(range(1, n + 1)), f'{name} has epochs 1..{n} exactly once: {ep}')
        for name, frags in expected_invalid.items():
            if not check(name in by_name, f'{name} has a run'):
                continue
            rid, status, error, path = by_name[name]
            check(status == 'invalid', f'{name} is invalid (is {status})')
            for frag in frags:
                check(error is not None and frag in error, f'{name}: the message names {frag!r}: {error!r}')
            check(error is not None and error.startswith(path), f'{name}: the message is located: {error!r}')
        # the slow file was not read half-way: no invalid run for it, and its stored spec is the whole file
        slow_rows = sv.q("SELECT status, spec FROM runs WHERE spec_path LIKE '%/slow.yaml'")
        check(len(slow_rows) == 1, f'slow.yaml gave exactly one run: {slow_rows}')
        if slow_rows:
            check(slow_rows[0][1] == text, 'slow.yaml was stored complete')
        check(by_name.get('v3', (0, 0, 0, ''))[3].endswith('/exp/team/alice/v3.yaml'),
              'a spec in a new subfolder is found with its path')
        # the located message also shows in the service's log
        check('bad_key.yaml:2:1' in sv.log_text(), 'the log has the invalid spec message')
        rc = sv.stop()
        check(rc == 0, f'service exit status {rc}')
    finally:
        sv.cleanup()
finish()
