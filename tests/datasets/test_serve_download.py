"""`data: {download: true}` through the service and the command line, against
the local HTTP server (data_server.py) serving archives in the real formats
(archives.py) through a manifest of the service's own (data_manifest), since
the built-in SHA-256 sums cannot match generated files:

  A. two specs needing the same missing dataset: one fetch (one request at the
     server, one `fetching` line in the log), both runs `waiting for data` in
     `epochd status` (table and --json) while the server holds the download
     back; the data comes from data_mirror (the manifest's own address
     answers 404); SIGTERM mid-download stops the fetch, keeps the partial
     file and leaves both runs queued; the next start resumes the download
     (a Range request) and both runs train to done.
  B. a server answering 500: the reason is on the waiting run's note while
     it fails; once the server recovers, the retry fetches it and the run
     trains to done.
  C. a server that always fails: after data_fetch_attempts attempts the run
     fails with the reason.
  D. `epochd check` (valid, says it will be fetched; a located error for
     download with a dataset it cannot fetch, and for a root not named as
     the fetch names it) and `epochd run` (fetches in the foreground, then
     trains).

Nothing here depends on timing: the server holds or fails until the test has
seen what it checks.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "service"))
import archives  # noqa: E402
import data_server  # noqa: E402
import serve_util as su  # noqa: E402
from serve_util import check, wait_until  # noqa: E402

EPOCHD = su.EPOCHD


def spec(name, dataset="mnist", extra=""):
    return f"""name: {name}
seed: 3
device: cpu
data: {{dataset: {dataset}, download: true, limit: {{train: 512, test: 256}}, batch_size: 64{extra}}}
model: {{template: mlp, units: [16, 10]}}
train: {{epochs: 1, optimizer: {{name: sgd, lr: 0.1}}}}
"""


def manifest(path, files, urls):
    """The built-in manifest's mnist and fashion_mnist with the generated files'
    sums and sizes; urls(name, file) gives each file's address."""
    m = yaml.safe_load(su.epochd("data", "manifest").stdout)
    m["datasets"] = [e for e in m["datasets"] if e["name"] in ("mnist", "fashion_mnist")]
    for e in m["datasets"]:
        for f in e["files"]:
            p = os.path.join(files, e["name"], f["name"])
            f["urls"] = [urls(e["name"], f["name"])]
            f["sha256"] = archives.sha256(p)
            f["size"] = os.path.getsize(p)
    with open(path, "w") as f:
        yaml.safe_dump(m, f)


def requests(state, name):
    with state.lock:
        return [x for x in state.log if x[1].startswith(name + "/")]


def status_text(sv):
    return su.epochd("status", "--db", sv.db).stdout


def status_json(sv):
    r = su.epochd("status", "--db", sv.db, "--json")
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {}


def queued_notes(sv):
    return {q["name"]: q["note"] or "" for q in status_json(sv).get("queued", [])}


def run_rows(sv):
    return {r[1]: r for r in sv.runs()}


def done(sv, names):
    rows = run_rows(sv)
    return all(n in rows and rows[n][2] in ("done", "failed", "invalid", "cancelled") for n in names)


with tempfile.TemporaryDirectory(prefix="epochd-download-") as tmp:
    files = os.path.join(tmp, "files")
    for name in ("mnist", "fashion_mnist"):
        os.makedirs(os.path.join(files, name))
        archives.idx(os.path.join(files, name))
    server, state, base = data_server.start(files)
    IMAGES = "train-images-idx3-ubyte.gz"

    # ---- A. one fetch for two runs, waiting for data, SIGTERM mid-download, resume ----
    a = os.path.join(tmp, "a")
    os.makedirs(a)
    manifest(os.path.join(a, "lab.yaml"), files, lambda n, f: f"{base}/404/{n}/{f}")
    sv = su.Service(a, extra=f"""data_root: data
data_manifest: lab.yaml
data_mirror: {base}/hold
data_retry_s: 1
""")
    sv.start()
    su.write(os.path.join(sv.exp, "one.yaml"), spec("one"))
    su.write(os.path.join(sv.exp, "two.yaml"), spec("two"))
    notes = wait_until(lambda: (lambda n: n if len(n) == 2 and all(v.startswith("waiting for data") for v in n.values())
                                else None)(queued_notes(sv)), 60, "both runs to wait for data")
    print("notes while held:", notes)
    wait_until(lambda: requests(state, "mnist"), 60, "the held request")
    text = status_text(sv)
    print(text)
    check(text.count("waiting for data") == 2, "A: epochd status shows both runs waiting for data")
    log = sv.log_text()
    check(log.count("epochd: data: fetching mnist into") == 1, "A: one fetch of mnist for two runs (log)")
    reqs = requests(state, "mnist")
    check(len(reqs) == 1 and reqs[0][0] == "hold" and reqs[0][1] == "mnist/" + IMAGES,
          f"A: one request at the server, from the mirror ({reqs})")
    check(all(r[2] == "queued" for r in sv.runs()), "A: both runs queued while their data is fetched")
    rc = sv.stop()
    check(rc == 0, f"A: SIGTERM mid-download: the service exits 0 ({rc})")
    check("the fetch of mnist" in sv.log_text() and "stopped" in sv.log_text(), "A: the log says the fetch stopped")
    part = os.path.join(a, "data", "downloads", "mnist", IMAGES + ".part")
    check(os.path.exists(part) and os.path.getsize(part) > 0, "A: the partial download is kept")
    check(not os.path.exists(os.path.join(a, "data", "mnist")), "A: no half-written dataset folder")
    check(all(r[2] == "queued" for r in sv.runs()), "A: both runs still queued after the stop")
    check(not any(r[4] for r in sv.runs()), "A: no worker was started for them")
    state.release.set()
    sv.start()
    wait_until(lambda: done(sv, ("one", "two")), 300, "both runs to end after the restart")
    rows = run_rows(sv)
    for n in ("one", "two"):
        check(rows[n][2] == "done", f"A: {n} trained to done ({rows[n]})")
        check(len(sv.epochs(rows[n][0])) == 1, f"A: {n} has its epoch")
    check(os.path.isdir(os.path.join(a, "data", "mnist")), "A: data_root/mnist is there")
    imgs = [r for r in requests(state, "mnist") if r[1] == "mnist/" + IMAGES]
    check(len(imgs) == 2 and imgs[1][2] and imgs[1][3] == 206,
          f"A: the restart resumed the download with a Range request ({imgs})")
    check(len(requests(state, "mnist")) == 5, f"A: each file downloaded once, one resumed ({requests(state, 'mnist')})")
    check(sv.log_text().count("epochd: data: fetching mnist into") == 1, "A: one fetch after the restart")
    sv.stop()
    sv.cleanup()

    # ---- B. HTTP 500: the reason on the run, then the retry succeeds ----
    b = os.path.join(tmp, "b")
    os.makedirs(b)
    manifest(os.path.join(b, "lab.yaml"), files, lambda n, f: f"{base}/fail/{n}/{f}")
    state.failing.set()
    sv = su.Service(b, extra="""data_root: data
data_manifest: lab.yaml
data_retry_s: 1
data_fetch_attempts: 100
""")
    sv.start()
    su.write(os.path.join(sv.exp, "fm.yaml"), spec("fm", dataset="fashion_mnist"))
    note = wait_until(lambda: (lambda n: n if "HTTP 500" in n else None)(queued_notes(sv).get("fm", "")), 60,
                      "the 500 to show on the run")
    print("note:", note)
    check(note and note.startswith("waiting for data") and "fashion_mnist" in note,
          f"B: the waiting run's note gives the reason ({note})")
    db_note = [r[6] for r in sv.runs() if r[1] == "fm"]
    check(db_note and "HTTP 500" in (db_note[0] or ""), f"B: the reason is in the run's row ({db_note})")
    state.failing.clear()
    wait_until(lambda: done(sv, ("fm",)), 300, "fm to end once the server recovers")
    rows = run_rows(sv)
    check(rows["fm"][2] == "done", f"B: the retry fetched it and the run trained ({rows['fm']})")
    check("fetching fashion_mnist failed (attempt 1 of 100)" in sv.log_text(), "B: the log has the failed attempt")
    sv.stop()
    sv.cleanup()

    # ---- C. always failing: the run fails with the reason after data_fetch_attempts ----
    c = os.path.join(tmp, "c")
    os.makedirs(c)
    manifest(os.path.join(c, "lab.yaml"), files, lambda n, f: f"{base}/500/{n}/{f}")
    sv = su.Service(c, extra="""data_root: data
data_manifest: lab.yaml
data_retry_s: 1
data_fetch_attempts: 2
""")
    sv.start()
    su.write(os.path.join(sv.exp, "bad.yaml"), spec("bad"))
    wait_until(lambda: done(sv, ("bad",)), 120, "bad to end")
    rows = run_rows(sv)
    err = rows["bad"][5] or ""
    check(rows["bad"][2] == "failed" and "cannot fetch mnist" in err and "HTTP 500" in err and "after 2 attempts" in err,
          f"C: the run failed with the fetch's reason ({rows['bad']})")
    check(rows["bad"][4] == 0, "C: no worker was started")
    check(len([r for r in requests(state, "mnist") if r[0] == "500"]) == 2, "C: two attempts at the server")
    sv.stop()
    sv.cleanup()

    # ---- D. epochd check and epochd run ----
    d = os.path.join(tmp, "d")
    os.makedirs(d)
    manifest(os.path.join(d, "lab.yaml"), files, lambda n, f: f"{base}/ok/{n}/{f}")
    env = dict(os.environ, EPOCHD_DATA_ROOT=os.path.join(d, "data"), EPOCHD_DATA_MANIFEST=os.path.join(d, "lab.yaml"))
    sp = os.path.join(d, "run.yaml")
    with open(sp, "w") as f:
        f.write(spec("fg"))
    r = subprocess.run([EPOCHD, "check", sp], capture_output=True, text=True, env=env)
    check(r.returncode == 0 and "will be fetched" in r.stdout,
          f"D: check: valid, says the data will be fetched ({r.returncode}: {r.stdout} {r.stderr})")
    bad = os.path.join(d, "bad.yaml")
    with open(bad, "w") as f:
        f.write("data: {dataset: synthetic, download: true}\nmodel: {template: mlp, units: [8, 10]}\n")
    r = subprocess.run([EPOCHD, "check", bad], capture_output=True, text=True, env=env)
    check(r.returncode == 65 and "bad.yaml:1:" in r.stderr and "data.download: only for the standard datasets" in r.stderr,
          f"D: download with synthetic: a located error ({r.stderr})")
    with open(bad, "w") as f:
        f.write(spec("x", extra=", root: stuff/digits"))
    r = subprocess.run([EPOCHD, "check", bad], capture_output=True, text=True, env=env)
    check(r.returncode == 65 and "data.root: with download: true the folder must be named mnist" in r.stderr,
          f"D: a root the fetch would not fill: a located error ({r.stderr})")
    n_before = len(requests(state, "mnist"))
    r = subprocess.run([EPOCHD, "run", sp, "--db", os.path.join(d, "run.db"), "--state-dir",
                        os.path.join(d, "state"), "--threads", "1"], capture_output=True, text=True, env=env)
    print(r.stdout, r.stderr)
    check(r.returncode == 0, f"D: epochd run fetched and trained (exit {r.returncode})")
    check("fetching it (data.download)" in r.stderr and "fetched into" in r.stdout and "epoch 1/1" in r.stdout,
          "D: epochd run says it fetches, then trains")
    check(os.path.isdir(os.path.join(d, "data", "mnist")), "D: the data root's mnist folder is there")
    check(len(requests(state, "mnist")) - n_before == 4, "D: four files downloaded")
    r = subprocess.run([EPOCHD, "check", sp], capture_output=True, text=True, env=env)
    check(r.returncode == 0 and "will be fetched" not in r.stdout, "D: check once it is there: no fetch mentioned")

    # ---- E. the data_* config keys: bad values are located errors (exit 64) ----
    cfg = os.path.join(d, "bad-config.yaml")
    with open(cfg, "w") as f:
        f.write("experiments: exp\ndb: x.db\nstate_dir: st\ndata_mirror: nourl\ndata_manifest: nothere.yaml\n"
                "data_fetch_attempts: 0\ndata_retry: 3\n")
    r = subprocess.run([EPOCHD, "serve", "--config", cfg], capture_output=True, text=True, timeout=60)
    check(r.returncode == 64, f"E: a bad data_* setting: exit 64 ({r.returncode})")
    for want in ("bad-config.yaml:4:14: data_mirror: expected a URL", "bad-config.yaml:5:16: data_manifest:",
                 "bad-config.yaml:6:22: data_fetch_attempts: expected an integer from 1",
                 "data_retry: unknown key (did you mean 'data_retry_s'?)"):
        check(want in r.stderr, f"E: located: {want} ({r.stderr.strip()})")
    state.release.set()
    server.shutdown()

su.finish()
