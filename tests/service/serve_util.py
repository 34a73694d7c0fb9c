"""Shared helpers of the `epochd serve` integration tests (suite 'serve'):
a service in a temporary folder, its database read with Python's own sqlite3
(independent of db/), tiny synthetic specs, checks that collect failures."""
import calendar
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

EPOCHD = os.path.abspath(sys.argv[1])
failures = []
services = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what, flush=True)
    return cond


def finish():
    if failures:
        for sv in services:
            for t in sv.logs:
                print(f'---- {t[0]} (last 60 lines) ----')
                print('\n'.join(t[1].splitlines()[-60:]))
        # again after the logs: a CI page that keeps only the output's tail still says what failed
        for what in failures:
            print('FAIL:', what)
        print(f'{len(failures)} check(s) failed', flush=True)
        sys.exit(1)
    print('all checks passed', flush=True)
    sys.exit(0)


def spec(name, epochs=2, seed=1, train=256, test=64, units='[32, 4]', shape='[1, 8, 8]', device='cpu',
         priority=0, batch=32, extra=''):
    return f"""name: {name}
seed: {seed}
device: {device}
priority: {priority}
data:
  dataset: synthetic
  batch_size: {batch}
  synthetic: {{shape: {shape}, classes: 4, train: {train}, test: {test}}}
model: {{template: mlp, units: {units}}}
train:
  epochs: {epochs}
{extra}"""


# A larger run (a fraction of a second per epoch on one core). Its size
# promises no time: a test that must act while a run is running holds it
# between epochs (Hold) instead of counting on its speed.
def slow_spec(name, epochs=6, seed=5, train=4096):
    return spec(name, epochs=epochs, seed=seed, train=train, test=256, units='[256, 256, 4]',
                shape='[1, 16, 16]', batch=64)


def write(path, text):
    """Writes a spec the way a careful tool does: elsewhere, then rename."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), '.' + os.path.basename(path) + '.part')
    with open(tmp, 'w') as f:
        f.write(text)
    os.rename(tmp, path)


class Hold:
    """The test-only hold between epochs (EPOCHD_TEST_HOLD, docs/worker-protocol.md):
    a run whose name has a gate here waits before each epoch the gate does not
    reach, so that a test acts "after epoch k with the run still running" by
    construction. Give env() to the service (its workers inherit it)."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, 'hold')
        os.makedirs(self.dir, exist_ok=True)

    def env(self):
        return {'EPOCHD_TEST_HOLD': self.dir}

    def allow(self, name, epochs):
        """Lets run `name` train up to `epochs` epochs, then hold (before the next)."""
        at = os.path.join(self.dir, name + '.at')
        if os.path.exists(at):
            os.unlink(at)
        tmp = os.path.join(self.dir, '.' + name + '.gate.tmp')
        with open(tmp, 'w') as f:
            f.write(f'{epochs}\n')
        os.rename(tmp, os.path.join(self.dir, name + '.gate'))

    def release(self, name):
        """Lets run `name` go on to its end."""
        for suffix in ('.gate', '.at'):
            p = os.path.join(self.dir, name + suffix)
            if os.path.exists(p):
                os.unlink(p)

    def at(self, name):
        """The epoch run `name` now waits before (None when it does not wait)."""
        try:
            with open(os.path.join(self.dir, name + '.at')) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def wait_held(self, name, epoch, timeout=120):
        """Waits until run `name` holds before `epoch` (epochs 1..epoch-1 reported)."""
        return wait_until(lambda: self.at(name) == epoch, timeout, f'{name} to hold before epoch {epoch}')


def parse_utc(ts):
    """Seconds since the epoch of the database's ISO-8601 UTC timestamps
    ("2026-07-01T12:00:00.250Z"), whatever the local time zone."""
    return calendar.timegm(time.strptime(ts[:19], '%Y-%m-%dT%H:%M:%S')) + float('0.' + (ts[20:23] or '0'))


def wait_until(pred, timeout, what, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    check(False, f'timed out after {timeout} s waiting for {what}')
    return None


class Service:
    """One `epochd serve` on a temporary experiments folder, database and state folder."""

    def __init__(self, tmp, settle_ms=150, cpu_slots=1, threads=1, extra='', env=None, prefix=(), preexec=None):
        self.tmp = tmp
        self.exp = os.path.join(tmp, 'exp')
        self.db = os.path.join(tmp, 'epochd.db')
        self.state = os.path.join(tmp, 'state')
        self.cfg = os.path.join(tmp, 'epochd.yaml')
        os.makedirs(self.exp, exist_ok=True)
        with open(self.cfg, 'w') as f:
            f.write(f"""experiments: exp
db: epochd.db
state_dir: state
settle_ms: {settle_ms}
cpu_slots: {cpu_slots}
worker_threads: {threads}
cancel_poll_ms: 100
stop_timeout_s: 20
log_level: debug
{extra}""")
        self.env = env
        self.preexec = preexec  # e.g. dropping root for a test of file permissions
        self.prefix = list(prefix)  # words in front of `epochd serve` (setpriv ...)
        self.proc = None
        self.n_starts = 0
        self.logs = []
        services.append(self)

    def start(self, *args, ready=True):
        """Starts the service; with ready, waits for its first scan to be done."""
        p = self._start(*args)
        if ready:
            wait_until(lambda: 'ready: watching' in self.log_text() or p.poll() is not None, 60,
                       'the service to be ready')
            check(p.poll() is None, f'the service started (it exited with {p.poll()})')
        return p

    def _start(self, *args):
        self.n_starts += 1
        self.log_path = os.path.join(self.tmp, f'serve{self.n_starts}.log')
        self.log = open(self.log_path, 'w')
        env = dict(os.environ)
        env.pop('NOTIFY_SOCKET', None)
        env.pop('WATCHDOG_USEC', None)
        if self.env:
            env.update(self.env)
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen([*self.prefix, EPOCHD, 'serve', '--config', self.cfg, *args], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, preexec_fn=self.preexec)
        return self.proc

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            check(False, f'service did not exit within {timeout} s of signal {sig}')
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        self.proc = None
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.proc = None

    def q(self, sql, args=()):
        if not os.path.exists(self.db):
            return []
        for _ in range(50):
            try:
                con = sqlite3.connect(self.db, timeout=10)
                try:
                    return con.execute(sql, args).fetchall()
                finally:
                    con.close()
            except sqlite3.OperationalError as e:  # schema not there yet, or busy
                last = e
                time.sleep(0.05)
        raise last

    def execute(self, sql, args=()):
        """A write to the database as another program would make it (committed)."""
        con = sqlite3.connect(self.db, timeout=30)
        try:
            with con:
                con.execute(sql, args)
        finally:
            con.close()

    def runs(self):
        return self.q('SELECT id, name, status, spec_path, attempts, error, note FROM runs ORDER BY id')

    def status_of(self, run_id):
        r = self.q('SELECT status FROM runs WHERE id = ?', (run_id,))
        return r[0][0] if r else None

    def epochs(self, run_id):
        """Each epoch's exact values (quote() keeps every bit of the REAL)."""
        return self.q('SELECT epoch, quote(train_loss), quote(train_acc), quote(test_loss), quote(test_acc),'
                      ' quote(lr) FROM epochs WHERE run_id = ? ORDER BY epoch', (run_id,))

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        # keep the logs for finish() (the folder is about to go); SERVE_LOG_DIR keeps copies
        keep = os.environ.get('SERVE_LOG_DIR')
        for i in range(1, self.n_starts + 1):
            p = os.path.join(self.tmp, f'serve{i}.log')
            if os.path.exists(p):
                with open(p) as f:
                    text = f.read()
                tag = f'{os.path.basename(sys.argv[0])}.{services.index(self)}.serve{i}.log'
                self.logs.append((tag, text))
                if keep:
                    os.makedirs(keep, exist_ok=True)
                    with open(os.path.join(keep, tag), 'w') as f:
                        f.write(text)


def epochd(*args, env=None):
    """An epochd command as a user runs it; its CompletedProcess (text)."""
    return subprocess.run([EPOCHD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          timeout=300)


def process_gone(pid):
    """The process no longer runs (gone, or a zombie)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(') ', 1)[1][0] in 'ZX'
    except OSError:
        return True


def gpu_count():
    """CUDA devices `epochd devices --json` sees (0 in a build without CUDA)."""
    import json
    p = subprocess.run([EPOCHD, 'devices', '--json'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        return len(json.loads(p.stdout)['devices']) if p.returncode == 0 else 0
    except (ValueError, KeyError):
        return 0


def tempdir():
    return tempfile.TemporaryDirectory(prefix='epochd-serve-')


def reference_epochs(tmp, name, text, threads=1):
    """The same spec trained by `epochd run` without interruption."""
    d = os.path.join(tmp, 'ref-' + name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name + '.yaml')
    with open(path, 'w') as f:
        f.write(text)
    db = os.path.join(d, 'ref.db')
    t0 = time.monotonic()
    p = subprocess.run([EPOCHD, 'run', path, '--db', db, '--state-dir', os.path.join(d, 'state'),
                        '--threads', str(threads)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    check(p.returncode == 0, f'epochd run {name}: exit {p.returncode}: {p.stderr}')
    con = sqlite3.connect(db)
    rows = con.execute('SELECT epoch, quote(train_loss), quote(train_acc), quote(test_loss), quote(test_acc),'
                       ' quote(lr) FROM epochs ORDER BY epoch').fetchall()
    ips = con.execute('SELECT avg(samples_per_sec) FROM epochs').fetchone()[0]
    con.close()
    return rows, ips, wall
