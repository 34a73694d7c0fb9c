#!/usr/bin/env python3
"""The service against faults of its own files (issue 10): one regression
check per defect found in the audit.

  5. a run whose last epoch the database missed is not `done`: it resumes
     and its epochs are all stored (the database locked during that epoch);
  6. a second service on the same database through a symlink exits 75;
  7. a database deleted while serving stops the service with exit 74 and
     says why; a read-only database is refused at start with exit 74;
     a full state disk holds runs with a note, a failure then spends no
     attempt, and the run finishes once space returns;
  9. an unreadable (mode 000) spec is recorded invalid with the reason, once;
     control characters in a spec's name reach `status` escaped; a symlink
     to another user's file outside the folder is not followed and none of
     the file's bytes reach the database.

  test_serve_guard.py EPOCHD
"""
import os
import shutil
import signal
import sqlite3
import subprocess
import time

from serve_util import EPOCHD, Hold, Service, check, finish, slow_spec, spec, tempdir, wait_until, write


def run_cli(*args, timeout=120):
    """The command's result; returncode None when it was still running after timeout s (then killed)."""
    try:
        return subprocess.run([EPOCHD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, None, e.stdout or '', e.stderr or '')


def as_nobody():
    """A preexec_fn dropping root (root ignores file permissions)."""
    if os.getuid() != 0:
        return None
    return lambda: (os.setgroups([]), os.setgid(65534), os.setuid(65534))


def locked_last_epoch(tmp):
    """5: the database is locked (past its busy timeout) while the last epoch arrives."""
    hold = Hold(os.path.join(tmp, 'locked'))
    sv = Service(os.path.join(tmp, 'locked'), settle_ms=100, env=hold.env())
    sv.start()
    try:
        # the run waits before epoch 3 until the lock is taken: epoch 3 ends
        # inside the lock by construction, however fast the epochs are
        hold.allow('three', 2)
        write(os.path.join(sv.exp, 'three.yaml'), slow_spec('three', epochs=3))
        rid = wait_until(lambda: (sv.q("SELECT id FROM runs WHERE name = 'three' AND status = 'running'") or
                                  [[None]])[0][0], 60, 'the run to start')
        hold.wait_held('three', 3)
        wait_until(lambda: sv.q('SELECT 1 FROM epochs WHERE run_id = ? AND epoch = 2', (rid,)), 60, 'epoch 2')
        con = sqlite3.connect(sv.db, timeout=10, isolation_level=None)
        # longer than two of the service's 5 s busy timeouts: a progress write may
        # use up the first before epoch 3's write waits out the second
        con.execute('BEGIN IMMEDIATE')
        hold.release('three')
        time.sleep(12)
        con.execute('ROLLBACK')
        con.close()
        wait_until(lambda: sv.status_of(rid) == 'done', 120, 'the run to be done after the lock')
        got = [e[0] for e in sv.epochs(rid)]
        check(got == [1, 2, 3], f'every epoch stored exactly once: {got}')
        r = sv.q('SELECT attempts, failures FROM runs WHERE id = ?', (rid,))[0]
        check(r[0] >= 2 and r[1] == 0, f'resumed without spending an attempt: attempts {r[0]}, failures {r[1]}')
        check('resuming from its checkpoint: cannot record epoch 3' in sv.log_text() or
              'cannot record' in sv.log_text(), 'the log says the epoch could not be recorded')
    finally:
        check(sv.stop() == 0, 'locked: exit 0')
        sv.cleanup()


def second_service_through_symlink(tmp):
    """6: the lock is on the database file, not on its path."""
    sv = Service(os.path.join(tmp, 'lock'))
    sv.start()
    try:
        link = os.path.join(sv.tmp, 'link.db')
        os.symlink(sv.db, link)
        os.makedirs(os.path.join(sv.tmp, 'exp2'))
        p = run_cli('serve', '--experiments', os.path.join(sv.tmp, 'exp2'), '--db', link, '--state-dir',
                    os.path.join(sv.tmp, 'st2'), timeout=20)
        check(p.returncode == 75, f'a second service through a symlink exits 75, not {p.returncode}')
        check('another epochd serve is using' in str(p.stderr), f'and says why: {str(p.stderr)[-300:]!r}')
        check(sv.alive(), 'the first service is untouched')
    finally:
        check(sv.stop() == 0, 'lock: exit 0')
        sv.cleanup()


def deleted_database(tmp):
    """7a: the database file disappears while serving."""
    sv = Service(os.path.join(tmp, 'deleted'))
    sv.start()
    try:
        os.unlink(sv.db)
        rc = None
        try:
            rc = sv.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        check(rc == 74, f'the service notices and exits 74: {rc}')
        log = sv.log_text()
        check('has disappeared' in log and 'takes no more work' in log, 'the log says what is wrong')
    finally:
        sv.stop()
        sv.cleanup()


def readonly_database(tmp):
    """7b: a database the service cannot write is refused at start."""
    d = os.path.join(tmp, 'ro')
    os.makedirs(os.path.join(d, 'exp'))
    db = os.path.join(d, 'ro.db')
    con = sqlite3.connect(db)
    con.execute('CREATE TABLE x(y)')
    con.commit()
    con.close()
    os.chmod(d, 0o777)
    os.chmod(db, 0o444)
    p = subprocess.run([EPOCHD, 'serve', '--experiments', os.path.join(d, 'exp'), '--db', db, '--state-dir',
                        os.path.join(d, 'state')], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=60, preexec_fn=as_nobody())
    check(p.returncode == 74, f'a read-only database: exit 74, not {p.returncode}')
    check('is read-only for this service' in p.stdout, f'and says why: {p.stdout[-400:]!r}')


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    return subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', path],
                          stderr=subprocess.DEVNULL).returncode == 0


def full_disk(tmp):
    """7c: the state folder's disk fills; the run waits, then finishes once space returns."""
    d = os.path.join(tmp, 'full')
    state = os.path.join(d, 'state')
    if not mount_tmpfs(state, '6m'):
        print('SKIP full disk: this machine does not let the test mount a tmpfs (needs CAP_SYS_ADMIN)')
        return
    try:
        sv = Service(d, settle_ms=100, extra='limits: {min_free_disk: 2MiB}\n')
        filler = os.path.join(state, 'filler')
        with open(filler, 'wb') as f:
            try:
                f.write(b'\0' * (5 << 20))
            except OSError:
                pass
        sv.start()
        try:
            write(os.path.join(sv.exp, 'waits.yaml'), spec('waits', epochs=2))
            rid = wait_until(lambda: (sv.q("SELECT id FROM runs WHERE name = 'waits'") or [[None]])[0][0], 30,
                             'the run to be queued')
            wait_until(lambda: 'disk is full' in ((sv.q('SELECT note FROM runs WHERE id = ?', (rid,)) or
                                                   [[None]])[0][0] or ''), 30, 'a note saying the disk is full')
            check(sv.status_of(rid) == 'queued', 'it waits in the queue')
            os.unlink(filler)
            wait_until(lambda: sv.status_of(rid) == 'done', 120, 'the run to finish once space returned')
            check([e[0] for e in sv.epochs(rid)] == [1, 2], 'with both epochs')
            check(sv.q('SELECT failures FROM runs WHERE id = ?', (rid,))[0][0] == 0, 'no attempt spent')
        finally:
            check(sv.stop() == 0, 'full: exit 0')
            sv.cleanup()
    finally:
        subprocess.run(['umount', '-l', state])


def unreadable_spec(tmp):
    """9: a spec the service cannot read is recorded invalid with the reason, once."""
    d = os.path.join(tmp, 'unreadable')
    sv = Service(d, settle_ms=100, preexec=as_nobody())  # root reads any file: the service drops root
    for p in (d, sv.exp):
        os.chmod(p, 0o777)
    os.chmod(sv.cfg, 0o644)
    sv.start()
    try:
        closed = os.path.join(sv.exp, 'closed.yaml')
        write(closed, spec('closed'))
        os.chmod(closed, 0)
        wait_until(lambda: sv.q("SELECT 1 FROM runs WHERE spec_path LIKE '%closed.yaml'"), 30,
                   'the unreadable spec to be recorded')
        rows = sv.q("SELECT status, error FROM runs WHERE spec_path LIKE '%closed.yaml'")
        check(rows and rows[0][0] == 'invalid' and 'Permission denied' in (rows[0][1] or ''),
              f'an unreadable spec is invalid with the reason: {rows}')
        time.sleep(1.5)  # it must not be retried twenty times a second
        n = sv.q("SELECT count(*) FROM runs WHERE spec_path LIKE '%closed.yaml'")[0][0]
        check(n == 1, f'recorded once, not retried: {n} rows')
        reads = sv.log_text().count('closed.yaml')
        check(reads < 10, f'and not read over and over: {reads} log lines name it')
        os.chmod(closed, 0o644)  # readable now: it runs
        wait_until(lambda: sv.q("SELECT 1 FROM runs WHERE name = 'closed' AND status = 'done'"), 60,
                   'the spec to run once it is readable')
    finally:
        check(sv.stop() == 0, 'unreadable: exit 0')
        sv.cleanup()


def hostile_files(tmp):
    """9: control characters in file names, symlinks to other users' files."""
    sv = Service(os.path.join(tmp, 'files'), settle_ms=100)
    secret_dir = os.path.join(tmp, 'secret')
    os.makedirs(secret_dir)
    secret = os.path.join(secret_dir, 'secret.yaml')
    with open(secret, 'w') as f:
        f.write('name: TOPSECRET\n' + spec('x')[len('name: x\n'):])
    os.chmod(secret, 0o600)
    sv.start()
    try:
        link = os.path.join(sv.exp, 'link.yaml')
        os.symlink(secret, link)
        if os.getuid() == 0:
            os.lchown(link, 65534, 65534)  # dropped by another user
        ok_link = os.path.join(sv.exp, 'inside.yaml')
        write(os.path.join(sv.exp, 'sub', 'real.yaml'), spec('real'))
        os.symlink(os.path.join(sv.exp, 'sub', 'real.yaml'), ok_link)
        text = spec('x')[len('name: x\n'):]  # named by its file
        write(os.path.join(sv.exp, 'bad\x1b[31mname.yaml'), text)
        wait_until(lambda: sv.q("SELECT 1 FROM runs WHERE spec_path LIKE '%link.yaml'"), 30, 'the link')
        rows = sv.q("SELECT status, error FROM runs WHERE spec_path LIKE '%link.yaml'")
        if os.getuid() == 0:
            check(rows and rows[0][0] == 'invalid' and 'not followed' in rows[0][1],
                  f'a link to another user\'s file outside the folder is not followed: {rows}')
        leaked = sv.q("SELECT count(*) FROM runs WHERE spec LIKE '%TOPSECRET%' OR error LIKE '%TOPSECRET%'"
                      " OR name LIKE '%TOPSECRET%'")[0][0]
        check(leaked == 0, 'none of its bytes reach the database')
        wait_until(lambda: sv.q("SELECT 1 FROM runs WHERE spec_path LIKE '%inside.yaml' AND status = 'done'"), 60,
                   'a link to a spec inside the folder is followed')
        wait_until(lambda: sv.q("SELECT 1 FROM runs WHERE spec_path LIKE '%bad%name.yaml'"), 60, 'the name to be read')
        st = run_cli('status', '--db', sv.db)
        check('\x1b' not in st.stdout and 'bad\\x1b[31mname' in st.stdout,
              f'control characters reach status escaped: {st.stdout!r}'[:600])
        cmp = run_cli('compare', '--db', sv.db)
        check('\x1b' not in cmp.stdout, 'and compare')
    finally:
        check(sv.stop() == 0, 'files: exit 0')
        sv.cleanup()


with tempdir() as tmp:
    os.chmod(tmp, 0o755)
    for case in (second_service_through_symlink, deleted_database, readonly_database, unreadable_spec,
                 hostile_files, locked_last_epoch, full_disk):
        case(tmp)
finish()
