#!/usr/bin/env python3
"""`epochd data fetch|list` against a local HTTP server (data_server.py)
serving the four standard datasets' files generated in their real formats
(archives.py), through a manifest made from the built-in one (`epochd data
manifest`) with only the URLs, sums and sizes replaced - so the built-in
folders, archive layouts and loaders are what is tested.

Success and the loaders' acceptance, an unchanged second fetch, resume
after a cut (within one command and across two), a server that ignores
ranges, a checksum mismatch (kept aside, never used), 404, 500 with
retries, a stalled server, mirrors (http and file), the per-dataset lock,
Ctrl-C, a damaged folder found by `list --verify`, a bad manifest, an
archive that tries to leave its folder. After every failure: nothing at
the dataset's folder and no staging folder left.

  test_fetch.py EPOCHD
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import io
import tempfile
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import archives  # noqa: E402
import data_server  # noqa: E402

EPOCHD = sys.argv[1]
failures = []
timings = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    else:
        print("ok:", what)


def epochd(*args, **kw):
    t = time.monotonic()
    r = subprocess.run([EPOCHD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    r.seconds = time.monotonic() - t
    return r


def make_manifest(path, base, mode, made, sizes=True, only=None):
    m = yaml.safe_load(epochd("data", "manifest").stdout)
    for e in m["datasets"]:
        for f in e["files"]:
            p = os.path.join(os.path.dirname(made[e["name"]][0]), f["name"])
            f["urls"] = ["%s/%s/%s/%s" % (base, mode, e["name"], f["name"])]
            f["sha256"] = archives.sha256(p)
            if sizes:
                f["size"] = os.path.getsize(p)
            else:
                f.pop("size", None)
    if only:
        m["datasets"] = [e for e in m["datasets"] if e["name"] in only]
    with open(path, "w") as f:
        yaml.safe_dump(m, f)
    return m


def nothing_half_written(root, folder, what):
    check(not os.path.exists(os.path.join(root, folder)), f"{what}: no {folder} folder")
    stale = [n for n in os.listdir(root) if ".tmp-" in n] if os.path.isdir(root) else []
    check(not stale, f"{what}: no staging folder left ({stale})")


def requests(state, name):
    return [x for x in state.log if x[1].startswith(name)]


FOLDERS = {"cifar10": "cifar-10-batches-bin", "cifar100": "cifar-100-binary", "mnist": "mnist",
           "fashion_mnist": "fashion-mnist"}

with tempfile.TemporaryDirectory() as tmp:
    files = os.path.join(tmp, "files")
    made = archives.generate(files)
    server, state, base = data_server.start(files)

    # ---- 1. each dataset: fetched, unpacked as the loader wants, verified ----
    man = os.path.join(tmp, "ok.yaml")
    make_manifest(man, base, "ok", made)
    root = os.path.join(tmp, "root")
    for name in ("cifar10", "cifar100", "mnist", "fashion_mnist"):
        r = epochd("data", "fetch", "--manifest", man, "--root", root, name)
        print(r.stdout, r.stderr)
        check(r.returncode == 0, f"{name}: fetched (exit {r.returncode})")
        size = sum(os.path.getsize(p) for p in made[name])
        timings.append((name, size, r.seconds, r.stdout.strip()))
        d = os.path.join(root, FOLDERS[name])
        check(os.path.isfile(os.path.join(d, ".epochd-fetched")), f"{name}: the fetch record is in the folder")
        check(not [n for n in os.listdir(os.path.join(root, "downloads", name)) if not n.startswith(".")],
              f"{name}: downloads/{name} holds no archive or partial file afterwards")
    # the unpacked bytes are the archive's (read back with Python's tarfile)
    with tarfile.open(made["cifar10"][0]) as tar:
        want = tar.extractfile("cifar-10-batches-bin/data_batch_3.bin").read()
    check(open(os.path.join(root, "cifar-10-batches-bin", "data_batch_3.bin"), "rb").read() == want,
          "cifar10: data_batch_3.bin is the archive's member, byte for byte")
    check(open(os.path.join(root, "mnist", "t10k-images-idx3-ubyte.gz"), "rb").read() ==
          open(made["mnist"][2], "rb").read(), "mnist: the .gz files are placed as downloaded")
    r = epochd("data", "list", "--manifest", man, "--root", root, "--json")
    states = {j["name"]: j["state"] for j in map(json.loads, r.stdout.split("\n")[:-1])}
    check(states == {n: "verified" for n in FOLDERS}, f"data list --json: all four verified ({states})")
    r = epochd("data", "list", "--manifest", man, "--root", root, "--verify")
    print(r.stdout)
    check(r.returncode == 0 and r.stdout.count("verified") == 4 and "SHA-256 checked" in r.stdout,
          "data list --verify: every file's SHA-256 matches the record")
    n = len(state.log)
    r = epochd("data", "fetch", "--manifest", man, "--root", root, "cifar10")
    check(r.returncode == 0 and "already in" in r.stdout and "(verified)" in r.stdout and len(state.log) == n,
          f"a second fetch finds it verified and downloads nothing: {r.stdout.strip()}")

    # ---- 2. list finds a damaged folder ----
    p = os.path.join(root, "cifar-10-batches-bin", "test_batch.bin")
    data = bytearray(open(p, "rb").read())
    data[100] ^= 1
    open(p, "wb").write(bytes(data))
    r = epochd("data", "list", "--manifest", man, "--root", root, "--verify")
    check(r.returncode == 65 and "damaged" in r.stdout and "test_batch.bin: SHA-256 differs from the record" in r.stdout,
          f"list --verify: a changed byte makes it damaged (exit {r.returncode})")
    os.unlink(os.path.join(root, "mnist", "train-labels-idx1-ubyte.gz"))
    r = epochd("data", "list", "--manifest", man, "--root", root)
    check("missing train-labels-idx1-ubyte.gz" in r.stdout, "list: a deleted file makes it damaged")
    r = epochd("data", "fetch", "--manifest", man, "--root", root, "mnist")
    check(r.returncode == 65 and "damaged" in r.stderr and "--force" in r.stderr,
          f"fetch refuses to build over a damaged folder without --force: {r.stderr.strip()}")
    r = epochd("data", "fetch", "--manifest", man, "--root", root, "--force", "mnist")
    check(r.returncode == 0 and os.path.exists(os.path.join(root, "mnist", "train-labels-idx1-ubyte.gz")),
          "--force fetches it again and replaces the folder")

    # the record names the source each file came from; --json is one object a line
    rec = open(os.path.join(root, "mnist", ".epochd-fetched")).read()
    check(f"download\ttrain-images-idx3-ubyte.gz\t{os.path.getsize(made['mnist'][0])}\t"
          f"{archives.sha256(made['mnist'][0])}\t{base}/ok/mnist/train-images-idx3-ubyte.gz" in rec,
          "the fetch record: each download's name, size, SHA-256 and URL")
    r = epochd("data", "fetch", "--manifest", man, "--root", os.path.join(tmp, "rootj"), "--json", "fashion_mnist")
    events = [json.loads(line) for line in r.stdout.splitlines()]
    check(r.returncode == 0 and events and all(e["event"] == "progress" for e in events[:-1]) and
          events[-1]["event"] == "done" and events[-1]["verified"] and events[-1]["downloaded"] == sum(
              os.path.getsize(p) for p in made["fashion_mnist"]) and
          {e["phase"] for e in events[:-1]} >= {"download", "verify", "unpack", "done"},
          f"--json: progress objects, then done ({len(events)} lines)")

    # ---- 3. resume after a cut, within one command (a retry) ----
    cut = os.path.join(tmp, "cut.yaml")
    make_manifest(cut, base, "cut", made)
    root2 = os.path.join(tmp, "root2")
    r = epochd("data", "fetch", "--manifest", cut, "--root", root2, "--retries", "1", "cifar10")
    print(r.stdout, r.stderr)
    log = requests(state, "cifar10/")[-2:]
    size = os.path.getsize(made["cifar10"][0])
    check(r.returncode == 0 and "transfer closed with" in r.stderr and "resumed after" in r.stdout,
          f"cut halfway, then resumed in the same command (exit {r.returncode})")
    check(len(log) == 2 and log[0][2] is None and log[1][2] == "bytes=%d-" % log[0][4] and log[1][3] == 206
          and log[0][4] + log[1][4] == size, f"the retry asked for the rest only (HTTP range): {log}")
    timings.append(("cifar10 cut+resume", size, r.seconds, r.stdout.strip()))

    # ---- 4. resume across two commands ----
    state.cut_done.clear()
    root3 = os.path.join(tmp, "root3")
    r = epochd("data", "fetch", "--manifest", cut, "--root", root3, "--retries", "0", "fashion_mnist")
    print(r.stderr)
    part = os.path.join(root3, "downloads", "fashion_mnist", "train-images-idx3-ubyte.gz.part")
    check(r.returncode == 74 and "transfer closed with" in r.stderr and "is kept in" in r.stderr,
          f"a cut download fails with the reason and says the partial file is kept (exit {r.returncode})")
    check(os.path.exists(part) and os.path.getsize(part) > 0, "the partial download is kept")
    nothing_half_written(root3, "fashion-mnist", "after the cut")
    half = os.path.getsize(part)
    r = epochd("data", "fetch", "--manifest", cut, "--root", root3, "fashion_mnist")
    log = requests(state, "fashion_mnist/train-images")[-1]
    check(r.returncode == 0 and log[2] == "bytes=%d-" % half and "resumed after" in r.stdout,
          f"the next command resumes at byte {half}: {log}")
    timings.append(("fashion_mnist resumed by a second command", half, r.seconds, r.stdout.strip()))

    # ---- 5. a server that ignores the range request: the whole file again ----
    root4 = os.path.join(tmp, "root4")
    os.makedirs(os.path.join(root4, "downloads", "mnist"))
    src = made["mnist"][0]
    with open(os.path.join(root4, "downloads", "mnist", "train-images-idx3-ubyte.gz.part"), "wb") as f:
        f.write(open(src, "rb").read()[:5000])
    nr = os.path.join(tmp, "norange.yaml")
    make_manifest(nr, base, "norange", made)
    r = epochd("data", "fetch", "--manifest", nr, "--root", root4, "mnist")
    check(r.returncode == 0, f"a server without ranges: fetched from the start (exit {r.returncode} {r.stderr})")

    # ---- 6. checksum mismatch: kept aside, never used ----
    wrong = os.path.join(tmp, "wrong.yaml")
    make_manifest(wrong, base, "wrong", made)
    root5 = os.path.join(tmp, "root5")
    r = epochd("data", "fetch", "--manifest", wrong, "--root", root5, "cifar10")
    print(r.stderr)
    bad = [n for n in os.listdir(os.path.join(root5, "downloads", "cifar10")) if ".bad-" in n]
    check(r.returncode == 65 and "SHA-256 mismatch: expected " + archives.sha256(made["cifar10"][0]) in r.stderr
          and "kept aside as" in r.stderr and "and not used" in r.stderr,
          f"checksum mismatch: exit 65 with both sums and where the file went (exit {r.returncode})")
    check(len(bad) == 1 and not os.path.exists(os.path.join(root5, "downloads", "cifar10",
                                                            "cifar-10-binary.tar.gz.part")),
          f"the bad download is kept aside ({bad}) and no partial file is left to resume from")
    nothing_half_written(root5, "cifar-10-batches-bin", "after the mismatch")
    r = epochd("data", "fetch", "--manifest", man, "--root", root5, "cifar10")
    log = requests(state, "cifar10/")[-1]
    check(r.returncode == 0 and log[2] is None, "the next fetch starts from nothing, not from the bad bytes")

    # ---- 7. 404, 500 ----
    for code, retries, tries, text in (("404", "3", 1, "HTTP 404 Not Found"),
                                       ("500", "2", 3, "HTTP 500 Internal Server Error")):
        mf = os.path.join(tmp, code + ".yaml")
        make_manifest(mf, base, code, made)
        rootx = os.path.join(tmp, "root" + code)
        n = len(state.log)
        r = epochd("data", "fetch", "--manifest", mf, "--root", rootx, "--retries", retries, "mnist")
        print(r.stderr)
        check(r.returncode == 74 and text in r.stderr, f"{code}: exit 74 with '{text}' (exit {r.returncode})")
        check(len(state.log) - n == tries, f"{code}: {tries} request(s) ({len(state.log) - n})")
        nothing_half_written(rootx, "mnist", code)

    # ---- 8. a stalled server ----
    st = os.path.join(tmp, "stall.yaml")
    make_manifest(st, base, "stall", made)
    root6 = os.path.join(tmp, "root6")
    r = epochd("data", "fetch", "--manifest", st, "--root", root6, "--timeout", "2", "--retries", "0", "cifar10")
    print(r.stderr, r.seconds)
    check(r.returncode == 74 and "no data for 2 s, the server stalled" in r.stderr and r.seconds < 30,
          f"stall: gives up after --timeout (exit {r.returncode}, {r.seconds:.1f} s)")
    nothing_half_written(root6, "cifar-10-batches-bin", "after the stall")

    # ---- 9. mirrors: http, and file:// on a kept-downloads root ----
    nf = os.path.join(tmp, "404.yaml")
    root7 = os.path.join(tmp, "root7")
    r = epochd("data", "fetch", "--manifest", nf, "--root", root7, "--mirror", base + "/ok", "--keep-downloads",
               "mnist")
    log = requests(state, "mnist/")[-1]
    check(r.returncode == 0 and log[0] == "ok", f"--mirror URL is tried first (exit {r.returncode}, {log})")
    check(os.path.exists(os.path.join(root7, "downloads", "mnist", "train-images-idx3-ubyte.gz")),
          "--keep-downloads keeps the verified files in downloads/NAME")
    root8 = os.path.join(tmp, "root8")
    n = len(state.log)
    env = dict(os.environ, EPOCHD_DATA_MIRROR="file://" + os.path.join(root7, "downloads"))
    r = epochd("data", "fetch", "--manifest", nf, "--root", root8, "mnist", env=env)
    check(r.returncode == 0 and len(state.log) == n,
          f"$EPOCHD_DATA_MIRROR=file://ROOT/downloads: fetched with no HTTP request (exit {r.returncode} {r.stderr})")

    # ---- 10. one fetch at a time per dataset ----
    slow = os.path.join(tmp, "slow.yaml")
    make_manifest(slow, base, "slowok", made)
    root9 = os.path.join(tmp, "root9")
    n = len(requests(state, "cifar10/"))
    procs = [subprocess.Popen([EPOCHD, "data", "fetch", "--manifest", slow, "--root", root9, "cifar10"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate() + (p.returncode,) for p in procs]
    print(outs)
    check(all(o[2] == 0 for o in outs) and len(requests(state, "cifar10/")) - n == 1 and
          sum("already in" in o[0] for o in outs) == 1 and any("waiting: another fetch" in o[1] for o in outs),
          "two fetches at once: one downloads, the other waits and finds it there")

    # ---- 11. Ctrl-C: exit 130, the partial file resumes ----
    root10 = os.path.join(tmp, "root10")
    p = subprocess.Popen([EPOCHD, "data", "fetch", "--manifest", slow, "--root", root10, "cifar100"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = os.path.join(root10, "downloads", "cifar100", "cifar-100-binary.tar.gz.part")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (os.path.exists(part) and os.path.getsize(part) > 300000):
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate()
    check(p.returncode == 130 and "cancelled" in err and os.path.getsize(part) > 0,
          f"SIGINT: exit 130, the partial file kept (exit {p.returncode}: {err.strip()})")
    nothing_half_written(root10, "cifar-100-binary", "after Ctrl-C")
    r = epochd("data", "fetch", "--manifest", man, "--root", root10, "cifar100")
    check(r.returncode == 0 and "resumed after" in r.stdout, "and the next fetch resumes it")

    # ---- 12. a bad manifest, an unknown name, an archive that leaves its folder ----
    bm = os.path.join(tmp, "bad.yaml")
    open(bm, "w").write("datasets:\n  - name: x\n    dir: x\n    files:\n      - name: a.tar.gz\n"
                        "        urls: [http://127.0.0.1/a.tar.gz]\n        sha256: abc\n")
    r = epochd("data", "fetch", "--manifest", bm, "x")
    check(r.returncode == 65 and bm + ":7:17: datasets[0].files[0].sha256: expected 64 hexadecimal digits, found abc"
          in r.stderr, f"bad manifest: located error, exit 65: {r.stderr.strip()}")
    r = epochd("data", "fetch", "imagenet")
    check(r.returncode == 64 and "no dataset 'imagenet' in built-in (it has: cifar10, cifar100, mnist, fashion_mnist)"
          in r.stderr, f"unknown name: exit 64 with the known names: {r.stderr.strip()}")
    evil = os.path.join(files, "evil")
    os.makedirs(evil)
    with tarfile.open(os.path.join(evil, "evil.tar.gz"), "w:gz") as tar:
        for name in ("data/ok.txt", "data/../../escaped.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"hi\n"))
    em = os.path.join(tmp, "evil.yaml")
    yaml.safe_dump({"datasets": [{"name": "evil", "dir": "evil", "files": [{
        "name": "evil.tar.gz", "urls": [base + "/ok/evil/evil.tar.gz"],
        "sha256": archives.sha256(os.path.join(evil, "evil.tar.gz")), "strip": 1}]}]}, open(em, "w"))
    root11 = os.path.join(tmp, "root11")
    r = epochd("data", "fetch", "--manifest", em, "--root", root11, "evil")
    check(r.returncode == 65 and "leaves the folder" in r.stderr and not os.path.exists(os.path.join(tmp, "escaped.txt"))
          and not os.path.exists(os.path.join(root11, "escaped.txt")),
          f"an archive member with .. is refused (exit {r.returncode}: {r.stderr.strip()})")
    nothing_half_written(root11, "evil", "after the refused archive")
    server.shutdown()

print("\nfetch times against the local server (machine shared, times are indicative):")
for name, size, secs, out in timings:
    print(f"  {name:44s} {size / 1e6:8.2f} MB  {secs:6.2f} s   {out}")
if failures:
    print(f"\n{len(failures)} failure(s)")
    sys.exit(1)
print("\nall checks passed")
