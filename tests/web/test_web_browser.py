"""The dashboard of a running `epochd serve --http` in headless Chromium
(driven over the DevTools protocol): each page's DOM holds the database's
runs and numbers, a running run updates without a reload, sorting works, a
run named with HTML stays text, and the three pages are saved as
screenshots in the build folder (argv[2]) for a person to look at."""
import json
import os
import sys
import time

import web_util as w
from web_util import check, wait_until
import serve_util as su

HOSTILE = '<script>alert(1)</script>'
SWEEP = """name: "sweep_{model.activation}_lr{train.optimizer.lr}"
seed: 3
device: cpu
data:
  dataset: synthetic
  batch_size: 32
  synthetic: {shape: [1, 8, 8], classes: 4, train: 512, test: 128}
model: {template: mlp, units: [32, 4]}
train:
  epochs: 4
  optimizer: {name: adam, lr: 1.0e-3}
matrix:
  model.activation: [relu, gelu]
  train.optimizer.lr: [1.0e-3, 3.0e-3]
"""


def rows(b):
    """The runs table as the browser shows it: {run id: {class: text}}."""
    return b.eval("""(() => { const out = {};
      document.querySelectorAll('#runs tbody tr').forEach(tr => {
        const r = {status: tr.dataset.status, name: tr.cells[1].textContent, epoch: tr.cells[4].textContent,
                   progress: tr.cells[5].getAttribute('data-v'), best: tr.cells[8].textContent,
                   final: tr.cells[10].textContent, params: tr.cells[11].textContent};
        out[tr.dataset.run] = r; });
      return out; })()""")


def main():
    shots = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.getcwd()
    os.makedirs(shots, exist_ok=True)
    with su.tempdir() as tmp:
        # every worker says something on stderr first, for the page's "last messages"
        prefix = 'worker_prefix: [sh, -c, \'echo "hello <b>from</b> the worker $$" >&2; exec "$@"\', sh]\n'
        # the live run is held between epochs, so the pages see it change by construction
        hold = su.Hold(tmp)
        sv = su.Service(tmp, threads=1, extra='http: {listen: "127.0.0.1:0"}\n' + prefix, env=hold.env())
        sv.start()
        url = w.wait_for_url(sv.log_path, sv.proc)
        b = None
        try:
            if not url:
                return
            su.write(os.path.join(sv.exp, 'quick_a.yaml'), su.spec('quick_a', epochs=3, seed=1, train=512))
            su.write(os.path.join(sv.exp, 'sweep.yaml'), SWEEP)
            su.write(os.path.join(sv.exp, 'hostile.yaml'), f'name: "{HOSTILE}"\nseed: 1\nmodel: {{template: mlp}}\n')
            wait_until(lambda: len([r for r in sv.runs() if r[2] == 'done']) == 5, 300, 'the quick runs to finish')
            hold.allow('slow_live', 1)
            su.write(os.path.join(sv.exp, 'slow_live.yaml'), su.slow_spec('slow_live', epochs=8, train=2048))
            hold.wait_held('slow_live', 2)
            slow = [r[0] for r in sv.runs() if r[1] == 'slow_live' and r[2] == 'running']
            if not slow:
                return
            slow = slow[0]
            bad = [r for r in sv.runs() if r[2] == 'invalid']
            check(len(bad) == 1 and bad[0][1] == HOSTILE, f'the hostile spec is an invalid run named as written: {bad}')

            b = w.Browser(tmp)
            # ---- the runs page ----
            b.navigate(url)
            b.eval('window.__marker = 42')
            got = rows(b)
            board = {r[0]: r for r in sv.q('SELECT id, name, status, best_test_acc, final_test_acc, params,'
                                           ' epochs_done, epochs_planned FROM leaderboard')}
            check(sorted(int(k) for k in got) == sorted(board), f'runs on the page {sorted(got)} vs {sorted(board)}')
            for rid, (_, name, status, best, final, params, done, planned) in board.items():
                g = got.get(str(rid), {})
                check(g.get('name') == name, f'run {rid}: name {g.get("name")!r} vs {name!r}')
                if status in ('done',):
                    check(g.get('status') == status and g.get('best') == f'{best:.4f}' and
                          g.get('final') == f'{final:.4f}' and g.get('params') == f'{params:,}' and
                          g.get('epoch') == f'{done}/{planned}', f'run {rid}: {g} vs db {board[rid]}')
            check(b.eval('document.querySelectorAll("script").length') == 1, 'one script element (app.js)')
            check(b.eval(f'[...document.querySelectorAll("#runs a")].some(a => a.textContent === {json.dumps(HOSTILE)})'),
                  'the hostile name is text on the runs page')
            check(b.eval('document.querySelector("#invalid pre.error").textContent.includes("name")'),
                  'the invalid spec shows its located message')
            # live: the running run's progress changes without a reload
            before = got.get(str(slow), {}).get('progress')
            t0 = time.monotonic()
            hold.allow('slow_live', 2)
            changed = wait_until(lambda: b.eval('+document.body.dataset.refreshes || 0') >= 1 and
                                 rows(b).get(str(slow), {}).get('progress') != before, 90,
                                 'a live update of the running run on the runs page')
            check(changed and b.eval('window.__marker') == 42, 'the runs page updated without a reload')
            print(f'runs page: live update after {time.monotonic() - t0:.1f} s ({before} -> '
                  f'{rows(b).get(str(slow), {}).get("progress")})', flush=True)
            # sorting in the browser: by name
            b.eval('document.querySelectorAll("#runs thead th")[1].click()')
            names = b.eval('[...document.querySelectorAll("#runs tbody tr")].map(tr => tr.cells[1].textContent)')
            check(names == sorted(names), f'sorted by name: {names}')
            b.eval('document.querySelectorAll("#runs thead th")[1].click()')
            names = b.eval('[...document.querySelectorAll("#runs tbody tr")].map(tr => tr.cells[1].textContent)')
            check(names == sorted(names, reverse=True), f'sorted by name, descending: {names}')
            b.eval('document.querySelectorAll("#runs thead th")[0].click()')
            b.screenshot(os.path.join(shots, 'runs.png'))

            # ---- the run page, while it runs ----
            hold.wait_held('slow_live', 3)
            b.navigate(f'{url}runs/{slow}')
            b.eval('window.__marker = 43')
            n0 = b.eval('document.querySelectorAll("#epochs tbody tr").length')
            check(b.eval('document.querySelectorAll("#curves svg g.panel").length') == 4, 'four panels on the run page')
            msg = b.eval('(document.querySelector("#messages") || {}).textContent || ""')
            check('hello <b>from</b> the worker' in msg, f'the worker\'s stderr line, as text: {msg!r}')
            port = int(url.rsplit(':', 1)[1].strip('/'))
            api = w.request('127.0.0.1', port, f'/api/runs/{slow}').json()
            check(any(m.startswith('hello <b>from</b> the worker') for m in api.get('messages') or []),
                  f'/api/runs/ID messages: {api.get("messages")}')
            hold.allow('slow_live', 3)
            grew = wait_until(lambda: b.eval('document.querySelectorAll("#epochs tbody tr").length') > n0, 60,
                              'a new epoch on the run page without a reload')
            check(grew and b.eval('window.__marker') == 43, 'the run page updated without a reload')
            n = b.eval('document.querySelectorAll("#epochs tbody tr").length')
            db_n = sv.q('SELECT count(*) FROM epochs WHERE run_id = ?', (slow,))[0][0]
            check(n <= db_n, f'epochs on the page {n} vs the database {db_n}')
            paths = b.eval('document.querySelectorAll("#curves svg path.series").length')
            check(paths == 4, f'one series per panel: {paths}')
            b.screenshot(os.path.join(shots, 'run.png'))

            # ---- compare: the sweep, a column per swept key ----
            b.navigate(url + 'compare?sweep=' + os.path.join(sv.exp, 'sweep.yaml').replace('/', '%2F'))
            heads = b.eval('[...document.querySelectorAll("#compare thead th")].map(th => th.textContent)')
            check('model.activation' in heads and 'train.optimizer.lr' in heads, f'swept keys as columns: {heads}')
            cli = json.loads(w.compare_json(sv.db, 'sweep_*', '--group'))
            names = b.eval('[...document.querySelectorAll("#compare tbody tr")].map(tr => tr.cells[1].textContent)')
            check(names == [o['name'] for o in cli], f'compare page order {names} vs compare {[o["name"] for o in cli]}')
            best = b.eval('[...document.querySelectorAll("#compare tbody tr")].map(tr => tr.cells[8].textContent)')
            check(best == [f'{o["best_test_acc"]:.4f}' for o in cli], f'best acc {best}')
            check(b.eval('document.querySelectorAll("#curves svg path.series").length') == 16, '4 runs x 4 panels')
            b.screenshot(os.path.join(shots, 'compare.png'))
            check(not any(e.get('method') == 'Page.javascriptDialogOpening' for e in b.events), 'no alert() ran')
            print(f'screenshots: {shots}/runs.png run.png compare.png', flush=True)
        finally:
            if b:
                b.close()
            rc = sv.stop()
            check(rc == 0, f'service exit {rc}')
            sv.cleanup()
    su.finish()


if __name__ == '__main__':
    main()
