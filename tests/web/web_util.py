"""Shared helpers of the dashboard tests (suite 'web'): an `epochd ui` or an
`epochd serve` with http on a free loopback port, plain HTTP requests with
their timing, headless Chromium driven over the DevTools protocol, and a
database filled through Python's own sqlite3 (independent of db/)."""
import base64
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'service'))
import serve_util  # noqa: E402  (check, finish, spec, Service, ...)
from serve_util import check, wait_until  # noqa: E402,F401

EPOCHD = serve_util.EPOCHD
URL_RE = re.compile(r'dashboard on (http://[^ ]+/)')


def wait_for_url(log_path, proc, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(log_path) as f:
            m = URL_RE.search(f.read())
        if m:
            return m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with open(log_path) as f:
        check(False, f'no dashboard address in the log: {f.read()[-2000:]}')
    return None


class Ui:
    """`epochd ui --db DB --http 127.0.0.1:0` and its address."""

    def __init__(self, db, tmp, *args):
        self.log_path = os.path.join(tmp, f'ui-{time.monotonic_ns()}.log')
        self.log = open(self.log_path, 'w')
        self.proc = subprocess.Popen([EPOCHD, 'ui', '--db', db, '--http', '127.0.0.1:0', *args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.url = wait_for_url(self.log_path, self.proc)
        u = urllib.request.urlparse(self.url) if self.url else None
        self.host, self.port = (u.hostname, u.port) if u else (None, None)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()


class Reply:
    def __init__(self, status, headers, body, seconds):
        self.status, self.headers, self.body, self.seconds = status, headers, body, seconds

    @property
    def text(self):
        return self.body.decode('utf-8')

    def json(self):
        return json.loads(self.body)


def request(host, port, path, method='GET', headers=None, timeout=30):
    """One request on a new connection; the reply and how long it took."""
    t0 = time.monotonic()
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, body, time.monotonic() - t0)
    finally:
        c.close()


def basic(token, user='me'):
    return 'Basic ' + base64.b64encode(f'{user}:{token}'.encode()).decode()


def compare_json(db, *args):
    p = subprocess.run([EPOCHD, 'compare', '--db', db, '--format', 'json', *args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    check(p.returncode == 0, f'epochd compare {args}: exit {p.returncode}: {p.stderr.decode()}')
    return p.stdout


# ---- headless Chromium over the DevTools protocol ----

CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--disable-dev-shm-usage', '--hide-scrollbars', '--mute-audio']


class Browser:
    """One headless Chromium with one page, driven through its DevTools
    websocket (python3-websocket): navigate, evaluate, screenshot."""

    def __init__(self, tmp, width=1400, height=1000):
        import websocket  # python3-websocket
        exe = shutil.which('chromium') or shutil.which('chromium-browser')
        if not exe:
            raise RuntimeError('chromium is not installed (scripts/setup-deps --test installs it)')
        self.profile = tempfile.mkdtemp(prefix='chromium-', dir=tmp)
        self.err_path = os.path.join(tmp, 'chromium.log')
        self.err = open(self.err_path, 'w')
        self.proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f'--user-data-dir={self.profile}',
                                      f'--window-size={width},{height}', '--remote-debugging-port=0',
                                      'about:blank'], stdout=subprocess.DEVNULL, stderr=self.err)
        port_file = os.path.join(self.profile, 'DevToolsActivePort')
        wait_until(lambda: os.path.exists(port_file) and open(port_file).read().count('\n') >= 1, 90,
                   'chromium to open its DevTools port')
        port = int(open(port_file).read().split('\n')[0])
        pages = []
        end = time.monotonic() + 60
        while not pages and time.monotonic() < end:
            with urllib.request.urlopen(f'http://127.0.0.1:{port}/json/list', timeout=10) as r:
                pages = [p for p in json.load(r) if p.get('type') == 'page']
            time.sleep(0.1)
        self.ws = websocket.create_connection(pages[0]['webSocketDebuggerUrl'], timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events = []
        self.call('Page.enable')
        self.call('Runtime.enable')
        self.call('Emulation.setDeviceMetricsOverride', width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({'id': my, 'method': method, 'params': params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get('id') == my:
                if 'error' in m:
                    raise RuntimeError(f'{method}: {m["error"]}')
                return m.get('result', {})
            self.events.append(m)

    def wait_event(self, name, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for i, e in enumerate(self.events):
                if e.get('method') == name:
                    return self.events.pop(i)
            self.ws.settimeout(max(0.1, end - time.monotonic()))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except Exception:  # a timeout: look again
                pass
        raise RuntimeError(f'no {name} within {timeout} s')

    def navigate(self, url, timeout=60):
        self.events = [e for e in self.events if e.get('method') != 'Page.loadEventFired']
        self.call('Page.navigate', url=url)
        self.wait_event('Page.loadEventFired', timeout)

    def eval(self, expr):
        r = self.call('Runtime.evaluate', expression=expr, returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in r:
            raise RuntimeError(f'{expr}: {r["exceptionDetails"]}')
        return r['result'].get('value')

    def screenshot(self, path, full_page=True):
        params = {'format': 'png'}
        if full_page:
            m = self.call('Page.getLayoutMetrics')
            size = m.get('cssContentSize') or m['contentSize']
            params['clip'] = {'x': 0, 'y': 0, 'width': size['width'], 'height': min(size['height'], 4000), 'scale': 1}
            params['captureBeyondViewport'] = True
        data = self.call('Page.captureScreenshot', **params)['data']
        with open(path, 'wb') as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def free_fds_ok(n):
    """Raises this process's open-file limit so that it can hold n sockets."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= want


def connect(host, port, timeout=10):
    s = socket.create_connection((host, port), timeout=timeout)
    return s
