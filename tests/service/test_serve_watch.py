#!/usr/bin/env python3
"""epochd serve's watcher, as docs/service.md promises it:
- a symbolic link to a spec file is followed; a link to a folder is not
  (neither named like a folder nor like a spec);
- a file moved out of the folder cancels its queued run, like a deletion;
- a file changed back to earlier bytes does not run them again (its
  queued run is superseded, no new run), also when they ran to the end;
- rescan_interval_s: a change that no inotify event reports (the target of
  a link, outside the folder) is found by a SIGHUP rescan, and by the
  periodic rescan once rescan_interval_s is set, never with it off;
- with --no-lease (root only: a file of another user, the service without
  CAP_LEASE): read leases are refused, the service says so once and relies
  on the settle interval, and the specs still run.
A blocker held before its first epoch (EPOCHD_TEST_HOLD) keeps the one CPU
slot busy, so that runs stay queued for as long as a step needs.

  test_serve_watch.py EPOCHD [--no-lease]
"""
import os
import re
import signal
import sys
import time

from serve_util import Hold, Service, check, finish, spec, tempdir, wait_until, write


def runs_of(sv, name):
    return sv.q('SELECT id, status, error FROM runs WHERE name = ? ORDER BY id', (name,))


def last_rescan(sv):
    """(spec files, folders) of the last full rescan the log reports."""
    m = re.findall(r'rescan of \S+: (\d+) spec files, (\d+) folders', sv.log_text())
    return tuple(int(x) for x in m[-1]) if m else None


def no_lease_case():
    if os.geteuid() != 0:
        print('skipped: the no-lease case needs root (a spec owned by another user, CAP_LEASE dropped)')
        sys.exit(77)
    with tempdir() as tmp:
        sv = Service(tmp, settle_ms=300, prefix=['setpriv', '--bounding-set=-lease', '--'])
        try:
            sv.start()
            for i, name in enumerate(['first', 'second']):
                part = os.path.join(tmp, name + '.yaml')
                with open(part, 'w') as f:
                    f.write(spec(name, epochs=1, seed=80 + i))
                os.chown(part, 65534, 65534)  # nobody's: only CAP_LEASE would allow a lease
                os.rename(part, os.path.join(sv.exp, name + '.yaml'))
                wait_until(lambda: sv.q("SELECT 1 FROM runs WHERE name = ? AND status = 'done'", (name,)), 60,
                           f'{name} to run without a lease')
            log = sv.log_text()
            check(log.count('cannot take read leases on spec files (Permission denied)') == 1,
                  'the service says once that it has no leases')
            check('unchanged for 300 ms' in log, 'and that it relies on the settle interval')
            check(sv.stop() == 0, 'exit 0')
        finally:
            sv.cleanup()
    finish()


if '--no-lease' in sys.argv[2:]:
    no_lease_case()

with tempdir() as tmp:
    hold = Hold(tmp)
    outside = os.path.join(tmp, 'outside')
    outside_dir = os.path.join(tmp, 'outside_dir')
    elsewhere = os.path.join(tmp, 'elsewhere')
    for d in (outside, outside_dir, elsewhere):
        os.makedirs(d)
    sv = Service(tmp, settle_ms=100, cpu_slots=1, env=hold.env(), extra='rescan_interval_s: 0\n')
    try:
        sv.start()
        hold.allow('blocker', 0)
        write(os.path.join(sv.exp, 'blocker.yaml'), spec('blocker', epochs=1))
        hold.wait_held('blocker', 1)

        # links: to a file (followed), to a folder (not followed, whatever its name)
        real = os.path.join(outside, 'real.yaml')
        write(real, spec('linked', epochs=1, seed=81))
        write(os.path.join(outside_dir, 'indir.yaml'), spec('via_dirlink', epochs=1, seed=82))
        os.symlink(real, os.path.join(sv.exp, 'link.yaml'))
        os.symlink(outside_dir, os.path.join(sv.exp, 'dirlink'))
        os.symlink(outside_dir, os.path.join(sv.exp, 'folder.yaml'))
        wait_until(lambda: runs_of(sv, 'linked'), 30, 'the linked spec to be queued')
        check([r[1] for r in runs_of(sv, 'linked')] == ['queued'], 'the link to a file was followed')
        check(sv.q('SELECT spec_path FROM runs WHERE name = ?', ('linked',))[0][0].endswith('/exp/link.yaml'),
              'under the link\'s own path')

        # a file moved out of the folder: its queued run is cancelled
        write(os.path.join(sv.exp, 'moved.yaml'), spec('moved', epochs=1, seed=83))
        wait_until(lambda: runs_of(sv, 'moved'), 30, 'moved to be queued')
        os.rename(os.path.join(sv.exp, 'moved.yaml'), os.path.join(elsewhere, 'moved.yaml'))
        wait_until(lambda: runs_of(sv, 'moved')[0][1] == 'cancelled', 30, 'the moved-out file\'s run to be cancelled')
        check('deleted' in (runs_of(sv, 'moved')[0][2] or ''), f'as deleted: {runs_of(sv, "moved")}')

        # a file changed, then back to its earlier bytes
        flip = os.path.join(sv.exp, 'flip.yaml')
        a_text, b_text = spec('flip', epochs=1, seed=84), spec('flip', epochs=1, seed=85)
        write(flip, a_text)
        wait_until(lambda: len(runs_of(sv, 'flip')) == 1, 30, 'flip A to be queued')
        write(flip, b_text)
        wait_until(lambda: len(runs_of(sv, 'flip')) == 2 and runs_of(sv, 'flip')[0][1] == 'cancelled', 30,
                   'flip B to supersede A')
        write(flip, a_text)
        # reading A again supersedes B's queued run (in the transaction that would add a new run)
        wait_until(lambda: runs_of(sv, 'flip')[1][1] == 'cancelled', 30, 'A again to supersede B')
        flips = runs_of(sv, 'flip')
        check([r[1] for r in flips] == ['cancelled', 'cancelled'] and all('superseded' in r[2] for r in flips),
              f'A back: no new run, A\'s old run stays cancelled: {flips}')

        # a change no event reports: the link's target, outside the folder
        write(real, spec('linked', epochs=2, seed=81))
        time.sleep(2.0)  # rescan_interval_s: 0, no event in the folder: nothing may notice
        check(len(runs_of(sv, 'linked')) == 1, 'with rescans off, a change to the link\'s target is not seen')
        cfg = open(sv.cfg).read().replace('rescan_interval_s: 0', 'rescan_interval_s: 1')
        open(sv.cfg, 'w').write(cfg)
        sv.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(runs_of(sv, 'linked')) == 2, 30, 'the SIGHUP rescan to find the change')
        write(real, spec('linked', epochs=3, seed=81))
        wait_until(lambda: len(runs_of(sv, 'linked')) == 3, 30, 'the periodic rescan (1 s) to find the next change')
        linked = runs_of(sv, 'linked')
        check([r[1] for r in linked] == ['cancelled', 'cancelled', 'queued'], f'each change superseded the last: '
                                                                              f'{linked}')

        # bytes that ran to the end, changed and changed back: not run again
        hold.release('blocker')
        wait_until(lambda: sv.status_of(linked[2][0]) == 'done', 60, 'the queue to drain')
        check(sv.q("SELECT epochs_done FROM leaderboard WHERE name = 'linked' AND status = 'done'") == [(3,)],
              'the link ran with its target\'s last bytes')
        again = os.path.join(sv.exp, 'again.yaml')
        c_text = spec('again', epochs=1, seed=86)
        write(again, c_text)
        wait_until(lambda: [r[1] for r in runs_of(sv, 'again')] == ['done'], 60, 'again C to run')
        hold.allow('blocker2', 0)
        write(os.path.join(sv.exp, 'blocker2.yaml'), spec('blocker2', epochs=1))
        hold.wait_held('blocker2', 1)
        write(again, spec('again', epochs=1, seed=87))
        wait_until(lambda: len(runs_of(sv, 'again')) == 2, 30, 'again D to be queued')
        write(again, c_text)
        wait_until(lambda: runs_of(sv, 'again')[1][1] == 'cancelled', 30, 'C again to supersede D')
        check([r[1] for r in runs_of(sv, 'again')] == ['done', 'cancelled'], f'C, which ran, does not run again: '
                                                                            f'{runs_of(sv, "again")}')
        hold.release('blocker2')

        # the folder links were never followed
        sv.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: sv.log_text().count('SIGHUP: reloading') == 2 and
                   sv.log_text().rfind('rescan of') > sv.log_text().rfind('SIGHUP: reloading'), 30,
                   'a full rescan after the second SIGHUP')
        check(last_rescan(sv) == (5, 1), f'the rescan counts blocker, link, flip, again, blocker2 and the folder '
                                         f'itself, nothing behind the folder links: {last_rescan(sv)}')
        wait_until(lambda: sv.status_of(runs_of(sv, 'blocker2')[0][0]) == 'done', 60, 'blocker2 to finish')
        check(not runs_of(sv, 'via_dirlink'), 'a spec behind a link to a folder never runs')
        check(sv.alive(), 'the service is up')
        check(sv.stop() == 0, 'exit 0')
    finally:
        sv.cleanup()
finish()
