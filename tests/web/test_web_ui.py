"""`epochd ui` on a database filled by `epochd run` and by Python's sqlite3:
the JSON API against `epochd compare --format json` and the database, the
plot against `epochd plot`, /metrics through a strict parser and
prometheus_client's, escaping of names/errors/specs that are HTML and
JavaScript, the guard (methods, limits, Host, traversal, token), and that
nothing is ever written."""
import hashlib
import html
import html.parser
import json
import math
import os
import re
import socket
import subprocess
import sys

import web_util as w
from web_util import check
import fill_db
import prom_strict

SCRIPT_TAGS = ('<script>alert', '<img src=x', '<b>letters')


class Tags(html.parser.HTMLParser):
    """Every element and attribute the browser would build from a page."""

    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def elements(text):
    t = Tags()
    t.feed(text)
    return t.tags


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-13, abs_tol=1e-15)


def test_compare_api(ui, db):
    cases = [('', []), ('?names=tiny_*', ['tiny_*']), ('?names=tiny_a,sw_*&sort=final', ['tiny_a', 'sw_*', '--sort', 'final']),
             ('?names=tiny_a&names=tiny_b&sort=name', ['tiny_a', 'tiny_b', '--sort', 'name']),
             ('?names=sw_*&group=1', ['sw_*', '--group']), ('?group=1&sort=params', ['--group', '--sort', 'params']),
             ('?names=nothing_matches', ['nothing_matches'])]
    for query, args in cases:
        r = w.request(ui.host, ui.port, '/api/compare' + query)
        cli = w.compare_json(db, *args)
        check(r.status == 200 and r.body == cli,
              f'/api/compare{query} differs from compare --format json {args}:\n{r.body[:300]!r}\n{cli[:300]!r}')
        check(r.headers.get('content-type', '').startswith('application/json'), f'/api/compare{query}: content type')
    # the sweep picker: its runs grouped, the swept keys as columns
    r = w.request(ui.host, ui.port, '/api/compare?sweep=exp/sw.yaml')
    got = r.json()
    check([o['name'] for o in got] == ['sw_h32', 'sw_h16'] and all(o['group'] == 'exp/sw.yaml' for o in got),
          f'/api/compare?sweep: {got}')
    r = w.request(ui.host, ui.port, '/api/compare?sort=sideways')
    check(r.status == 400 and 'sort' in r.json().get('error', ''), f'/api/compare bad sort: {r.status} {r.body}')


def test_runs_api(ui, db):
    cli = {o['id']: o for o in json.loads(w.compare_json(db))}
    r = w.request(ui.host, ui.port, '/api/runs')
    runs = r.json()
    check([o['id'] for o in runs] == sorted(cli), f'/api/runs ids {[o["id"] for o in runs]} vs {sorted(cli)}')
    for o in runs:
        base = {k: v for k, v in o.items() if k in cli[o['id']]}
        check(base == cli[o['id']], f'/api/runs run {o["id"]}: {base} != compare {cli[o["id"]]}')
    rows = {r_[0]: r_ for r_ in fill_db.q(db, 'SELECT id, device, note, error, status FROM runs')}
    for o in runs:
        check((o['device'], o['note'], o['error']) == rows[o['id']][1:4], f'/api/runs run {o["id"]}: device/note/error')
    live = [o for o in runs if o['name'] == 'live_run'][0]
    p = live['progress']
    # by hand: 2 of 10 epochs done at 20 s each, 40 % into epoch 3 -> ETA (10 - 2 - 0.4) x 20 = 152 s, 24 %
    check(p['live'] and p['epoch'] == 3 and close(p['epoch_fraction'], 0.4) and close(p['fraction'], 0.24) and
          close(p['images_per_sec'], 1234.5) and close(p['eta_seconds'], 152.0), f'live progress: {p}')
    r = w.request(ui.host, ui.port, '/api/runs?status=running')
    check([o['name'] for o in r.json()] == ['live_run'], f'/api/runs?status=running: {r.body[:200]}')
    r = w.request(ui.host, ui.port, '/api/runs?name=tiny_*')
    check(sorted({o['name'] for o in r.json()}) == ['tiny_a', 'tiny_b'], '/api/runs?name=tiny_*')
    check(w.request(ui.host, ui.port, '/api/runs?status=zombie').status == 400, '/api/runs?status=zombie: 400')

    one = w.request(ui.host, ui.port, f'/api/runs/{live["id"]}').json()
    spec, sha, ckpt = fill_db.q(db, 'SELECT spec, spec_sha256, checkpoint FROM runs WHERE id = ?', (live['id'],))[0]
    check(one['spec'] == spec and one['spec_sha256'] == sha and one['checkpoint'] == ckpt and
          one['messages'] is None, f'/api/runs/ID: {one}')
    check({k: v for k, v in one.items() if k in cli[live['id']]} == cli[live['id']], '/api/runs/ID compare fields')
    r = w.request(ui.host, ui.port, '/api/runs/99999')
    check(r.status == 404 and r.json()['error'] == 'no such run', f'/api/runs/99999: {r.status}')

    for rid in cli:
        got = w.request(ui.host, ui.port, f'/api/runs/{rid}/epochs').json()
        want = fill_db.q(db, 'SELECT epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds,'
                             ' elapsed_seconds, samples_per_sec FROM results WHERE run_id = ? AND epoch IS NOT NULL'
                             ' ORDER BY epoch', (rid,))
        keys = ['epoch', 'train_loss', 'train_acc', 'test_loss', 'test_acc', 'lr', 'seconds', 'elapsed_seconds',
                'samples_per_sec']
        ok = len(got) == len(want) and all(all(close(g[k], row[i]) for i, k in enumerate(keys))
                                           for g, row in zip(got, want))
        check(ok, f'/api/runs/{rid}/epochs differs from the results view:\n{got}\n{want}')


def test_plot_same_code(ui, db, tmp):
    rid = fill_db.q(db, "SELECT id FROM runs WHERE name = 'tiny_b'")[0][0]
    out = os.path.join(tmp, 'tiny_b.svg')
    p = subprocess.run([w.EPOCHD, 'plot', 'tiny_b', '--db', db, '-o', out], stderr=subprocess.PIPE)
    check(p.returncode == 0, f'epochd plot: {p.stderr}')
    r = w.request(ui.host, ui.port, f'/runs/{rid}/curves.svg')
    with open(out, 'rb') as f:
        check(r.status == 200 and r.body == f.read(), '/runs/ID/curves.svg differs from epochd plot')
    check(r.headers['content-type'].startswith('image/svg+xml'), 'curves.svg content type')
    page = w.request(ui.host, ui.port, f'/runs/{rid}').text
    # the page inlines the same <svg> element
    with open(out) as f:
        svg = f.read()
    check(svg[svg.index('<svg'):] in page, 'the run page does not inline the plot of epochd plot')


def test_metrics(ui, db):
    r = w.request(ui.host, ui.port, '/metrics')
    check(r.headers['content-type'] == 'text/plain; version=0.0.4; charset=utf-8', 'metrics content type')
    try:
        samples, types = prom_strict.parse(r.text)
    except ValueError as e:
        check(False, f'/metrics is not valid text format: {e}')
        return
    from prometheus_client.parser import text_string_to_metric_families
    fams = {f.name: f for f in text_string_to_metric_families(r.text)}
    check('epochd_runs' in fams and 'epochd_run_images_per_second' in fams, 'prometheus_client reads /metrics')
    for status, n in fill_db.q(db, 'SELECT status, count(*) FROM runs GROUP BY status'):
        check(prom_strict.get(samples, 'epochd_runs', status=status) == n, f'epochd_runs{{status={status}}}')
    check(prom_strict.get(samples, 'epochd_runs', status='interrupted') == 0, 'a status with no runs is 0')
    check(prom_strict.get(samples, 'epochd_database_epochs') == fill_db.q(db, 'SELECT count(*) FROM epochs')[0][0],
          'epochd_database_epochs')
    live = fill_db.q(db, "SELECT id FROM runs WHERE name = 'live_run'")[0][0]
    check(prom_strict.get(samples, 'epochd_run_images_per_second', run=live, name='live_run', device='cpu') == 1234.5,
          'per-run img/s')
    check(prom_strict.get(samples, 'epochd_run_epoch', run=live) == 3, 'per-run epoch')
    age = prom_strict.get(samples, 'epochd_queue_oldest_age_seconds')
    check(age is not None and age > 6 * 365 * 86400, f'queue age of a run queued in 2020: {age}')
    check(prom_strict.get(samples, 'epochd_info', mode='ui') == 1, 'epochd_info mode ui')
    check(not any(n.startswith('epochd_worker') for n, _ in samples), 'no service counters without a service')


def test_escaping(ui, db):
    bad = fill_db.q(db, 'SELECT id FROM runs WHERE status = ?', ('invalid',))[0][0]
    pages = ['/', '/?part=live', f'/runs/{bad}', f'/runs/{bad}?part=live', '/compare',
             '/compare?names=' + '%3Cscript%3E*', '/?name=%3Cscript%3Ealert(1)%3C/script%3E', '/help']
    for path in pages:
        r = w.request(ui.host, ui.port, path)
        check(r.status == 200, f'{path}: {r.status}')
        for tag in SCRIPT_TAGS:
            check(tag not in r.text, f'{path} carries {tag!r} unescaped')
        els = elements(r.text)
        scripts = [a for t, a in els if t == 'script']
        check(scripts == ([] if 'part=' in path else [{'src': '/static/app.js', 'defer': None}]),
              f'{path}: scripts {scripts}')
        check(not any(t in ('img', 'b', 'iframe', 'object') for t, _ in els), f'{path}: an injected element')
        check(not any(k.startswith('on') for _, a in els for k in a), f'{path}: an event handler attribute')
    run_page = w.request(ui.host, ui.port, f'/runs/{bad}').text
    check('&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;' in run_page, 'the hostile name, escaped, on its page')
    check('&lt;/pre&gt;&lt;script&gt;alert(&quot;spec&quot;)' in run_page, 'the hostile spec, escaped')
    check('expected &lt;b&gt;letters&lt;/b&gt; &amp; &quot;digits&quot;' in run_page, 'the hostile error, escaped')
    runs_page = w.request(ui.host, ui.port, '/').text
    check('&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;' in runs_page, 'the hostile name on the runs page')
    check('<pre class="error">' + 'x.yaml:1:1: name: expected &lt;b&gt;' in runs_page, 'invalid spec messages listed')
    r = w.request(ui.host, ui.port, '/api/runs')
    check(any(o['name'] == fill_db.HOSTILE_NAME for o in r.json()), 'the JSON API keeps the name as it is')


def test_plan_everywhere(ui, db):
    # a queued run with a plan: the API, the run page and `status --json` say the same ETA and note
    rid = fill_db.q(db, "SELECT id FROM runs WHERE name = 'waiting'")[0][0]
    st = subprocess.run([w.EPOCHD, 'status', '--db', db, '--json'], stdout=subprocess.PIPE, text=True)
    want = [o for o in json.loads(st.stdout)['queued'] if o['id'] == rid][0]
    got = w.request(ui.host, ui.port, f'/api/runs/{rid}').json()['progress']
    check(want['note'] and 'cuda:3' in want['note'] and want['plan']['device'] == 'cuda:3',
          f'status --json shows the plan: {want}')
    check(abs(got['eta_seconds'] - want['eta_seconds']) < 5, f'ETA: API {got["eta_seconds"]}, status {want}')
    digits = lambda s: re.sub(r'[0-9]+', 'N', s or '')
    check(digits(got['note']) == digits(want['note']), f'note: API {got["note"]!r}, status {want["note"]!r}')
    page = w.request(ui.host, ui.port, f'/runs/{rid}').text
    check(html.escape(want['note'].split(',')[0]) in page, f'the run page shows the plan\'s note {want["note"]!r}')


def test_pages_numbers(ui, db):
    page = w.request(ui.host, ui.port, '/').text
    for rid, best, final, params in fill_db.q(db, 'SELECT id, best_test_acc, final_test_acc, params FROM leaderboard'):
        start = page.find(f'<tr data-run="{rid}"')
        check(start >= 0, f'run {rid} on the runs page')
        row = page[start:page.find('</tr>', start)]
        if best is not None:
            check(f'<td class="num best-acc">{best:.4f}</td>' in row, f'run {rid}: best acc {best:.4f} in {row}')
            check(f'<td class="num final-acc">{final:.4f}</td>' in row, f'run {rid}: final acc')
        if params is not None:
            check(f'{params:,}' in row, f'run {rid}: params {params:,}')
    live = page[page.find('<tr data-run', page.find('live_run') - 200):]
    check('24.0%' in live.split('</tr>')[0] and '2m32s' in live.split('</tr>')[0], 'live run: 24.0 % and ETA 2m32s')
    # filters and sorting without JavaScript
    f = w.request(ui.host, ui.port, '/?status=done&name=tiny_*').text
    rows = f.count('<tr data-run=')
    check(rows == 3, f'/?status=done&name=tiny_*: {rows} rows')
    s = w.request(ui.host, ui.port, '/?sort=best').text
    order = [int(x.split('"')[0]) for x in s.split('<tr data-run="')[1:]]
    bests = dict(fill_db.q(db, 'SELECT id, best_test_acc FROM leaderboard'))
    known = [bests[i] for i in order if bests[i] is not None]
    check(known == sorted(known, reverse=True) and all(bests[i] is None for i in order[len(known):]),
          f'/?sort=best order {order}')
    c = w.request(ui.host, ui.port, '/compare?names=sw_*&group=1').text
    check('<th>model.units</th>' in c and '<th>train.lr</th>' in c, 'compare page: a column per swept key')
    check('<td class="num best"><strong>0.7500</strong></td>' in c, 'compare page: best value marked')


def test_guard(ui, db):
    h, p = ui.host, ui.port
    for m in ('POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'):
        r = w.request(h, p, '/api/runs', method=m)
        check(r.status == 405 and r.headers.get('allow') == 'GET, HEAD', f'{m}: {r.status} {r.headers.get("allow")}')
    g = w.request(h, p, '/')
    r = w.request(h, p, '/', method='HEAD')
    check(r.status == 200 and r.body == b'', f'HEAD: {r.status} {len(r.body)} bytes')
    for path in ['/nope', '/runs/0', '/runs/-1', '/runs/01', '/runs/1x', '/runs/99999999999999999999',
                 '/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fetc%2fpasswd',
                 '/static/../../etc/passwd', '/static/..%2F..%2Fetc%2Fpasswd', '/static/%2e%2e/%2e%2e/etc/passwd',
                 '//etc/passwd', '/static/app.js/../../../etc/passwd', '/static/help.html', '/api/nope']:
        r = w.request(h, p, path)
        check(r.status in (400, 404) and b'root:' not in r.body, f'{path}: {r.status}')
    check(w.request(h, p, '/static/app.js').status == 200, 'app.js is served')
    for k, v in {'content-security-policy': "default-src 'none'", 'x-content-type-options': 'nosniff',
                 'x-frame-options': 'DENY', 'cache-control': 'no-store'}.items():
        check(v in g.headers.get(k, ''), f'header {k}: {g.headers.get(k)}')
    check(w.request(h, p, '/', headers={'Host': 'evil.example:80'}).status == 403, 'DNS rebinding: a foreign Host')
    check(w.request(h, p, '/', headers={'Host': f'localhost:{p}'}).status == 200, 'Host localhost')
    check(w.request(h, p, '/', headers={'Host': f'[::1]:{p}'}).status == 200, 'Host [::1]')
    many = {f'X-H{i}': 'x' for i in range(100)}
    check(w.request(h, p, '/', headers=many).status == 431, '100 header fields: 431')
    check(w.request(h, p, '/?' + 'a=1&' * 100).status == 414, '100 query arguments: 414')
    check(w.request(h, p, '/' + 'x' * 3000).status == 414, 'a 3000-byte address: 414')
    r = w.request(h, p, '/', headers={'Content-Length': '5'}, method='GET')
    check(r.status == 413, f'a GET with a body: {r.status}')
    big = w.request(h, p, '/', headers={'X-Big': 'y' * 100000})
    check(big.status in (413, 431), f'a 100 kB header: {big.status}')


def test_token(tmp, db):
    tok = os.path.join(tmp, 'token')
    with open(tok, 'w') as f:
        f.write('s3cret-token-0123456789abcdef\n')
    os.chmod(tok, 0o600)
    ui = w.Ui(db, tmp, '--token-file', tok)
    try:
        token_checks(ui)
    finally:
        check(ui.stop() == 0, 'ui exits 0 on SIGTERM')
    with open(tok, 'w') as f:
        f.write('short\n')
    r = subprocess.run([w.EPOCHD, 'ui', '--db', db, '--http', '127.0.0.1:0', '--token-file', tok],
                       stderr=subprocess.PIPE, text=True, timeout=30)
    check(r.returncode == 64 and 'at least 16' in r.stderr, f'a short token: {r.returncode} {r.stderr}')
    r = subprocess.run([w.EPOCHD, 'ui', '--db', db, '--http', '127.0.0.1:0', '--token-file', tok + '.missing'],
                       stderr=subprocess.PIPE, text=True, timeout=30)
    check(r.returncode == 64, f'a missing token file: {r.returncode}')


def token_checks(ui):
    h, p = ui.host, ui.port
    r = w.request(h, p, '/api/runs')
    check(r.status == 401 and 'Basic' in r.headers.get('www-authenticate', ''), f'no token: {r.status}')
    check(w.request(h, p, '/', headers={'Authorization': 'Bearer wrong-token-0123456789'}).status == 401, 'wrong')
    check(w.request(h, p, '/', headers={'Authorization': 'Bearer s3cret-token-0123456789abcde'}).status == 401,
          'a prefix of the token')
    check(w.request(h, p, '/', headers={'Authorization': 'Bearer s3cret-token-0123456789abcdef'}).status == 200,
          'Bearer')
    check(w.request(h, p, '/metrics', headers={'Authorization': w.basic('s3cret-token-0123456789abcdef')}).status
          == 200, 'Basic with the token as password')
    check(w.request(h, p, '/', headers={'Authorization': w.basic('nope')}).status == 401, 'Basic, wrong password')


def test_usage(tmp, db):
    def run(*args):
        return subprocess.run([w.EPOCHD, 'ui', *args], stderr=subprocess.PIPE, text=True, timeout=30)
    r = run('--db', os.path.join(tmp, 'missing.db'), '--http', '127.0.0.1:0')
    check(r.returncode == 66 and 'does not exist' in r.stderr, f'missing db: {r.returncode} {r.stderr}')
    for bad in ('example.com:80', '1.2.3.4.5:80', '127.0.0.1:99999', '::1:80', '127.0.0.1:', 'x'):
        r = run('--db', db, '--http', bad)
        check(r.returncode == 64, f'--http {bad}: exit {r.returncode}')
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    s.listen()
    r = run('--db', db, '--http', f'127.0.0.1:{s.getsockname()[1]}')
    s.close()
    check(r.returncode == 74 and 'cannot listen' in r.stderr, f'a port in use: {r.returncode} {r.stderr}')
    ui = w.Ui(db, tmp)  # non-loopback without a token: it serves, and says so
    ui.stop()
    ui = subprocess.Popen([w.EPOCHD, 'ui', '--db', db, '--http', '0.0.0.0:0'], stderr=subprocess.PIPE, text=True)
    line = ''
    while 'dashboard on' not in line and ui.poll() is None:
        line = ui.stderr.readline()
        if 'without a token' in line:
            warned = True
            break
    else:
        warned = False
    ui.terminate()
    ui.communicate(timeout=30)
    check(warned, 'listening on 0.0.0.0 without a token is warned about')


def test_serve_refuses(tmp):
    """A dashboard that cannot start stops the service from starting (and says why)."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    s.listen()
    busy = s.getsockname()[1]
    for extra, args, code, words in [('', ['--http', f'127.0.0.1:{busy}'], 74, 'cannot listen'),
                                     ('http: {listen: "example.com:80"}\n', [], 64, 'http.listen'),
                                     ('http: {listen: "127.0.0.1:0", token_file: nowhere}\n', [], 64, 'token_file')]:
        sv = w.serve_util.Service(os.path.join(tmp, f'refuse{code}{len(words)}'), extra=extra)
        p = sv.start(*args, ready=False)
        try:
            rc = p.wait(60)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == code and words in sv.log_text(), f'serve {args} {extra.strip()}: exit {rc}: {sv.log_text()[-500:]}')
        sv.stop()
        sv.cleanup()
    s.close()


def main():
    with w.serve_util.tempdir() as tmp:
        db = fill_db.fill(tmp)
        with open(db, 'rb') as f:
            before = hashlib.sha256(f.read()).hexdigest()
        ui = w.Ui(db, tmp)
        try:
            if ui.url:
                for t in (test_compare_api, test_runs_api, test_plan_everywhere, test_metrics, test_escaping,
                          test_pages_numbers, test_guard):
                    t(ui, db)
                test_plot_same_code(ui, db, tmp)
        finally:  # also when a test raised: no server is left behind
            check(ui.stop() == 0, 'ui exits 0 on SIGTERM')
        test_token(tmp, db)
        test_usage(tmp, db)
        test_serve_refuses(tmp)
        with open(db, 'rb') as f:
            check(hashlib.sha256(f.read()).hexdigest() == before, 'the database file changed under a read-only ui')
        check(not os.path.exists(db + '-wal') or os.path.getsize(db + '-wal') == 0, 'a WAL written by the ui')
    w.serve_util.finish()


if __name__ == '__main__':
    main()
