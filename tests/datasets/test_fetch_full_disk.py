#!/usr/bin/env python3
"""`epochd data fetch` into a data root on a full file system: a 24 MiB
tmpfs mounted in a private mount namespace (unshare -m as root, unshare
-rm otherwise). Skipped (77) where neither is allowed.

  (a) a download bigger than the free space, its size not in the manifest:
      the write fails (ENOSPC), exit 74, the partial file is kept
  (b) the same with the size in the manifest: refused before downloading
  (c) a download that fits but unpacks to more than the free space
      (CIFAR-10: 1.5 MB archive, 184 MB of batches): exit 74, the staging
      folder removed, the verified archive kept for the next try
  and after each: no dataset folder, no staging folder; then a dataset that
  fits (MNIST) still fetches into the same root.

  test_fetch_full_disk.py EPOCHD
"""
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import archives  # noqa: E402
import data_server  # noqa: E402

EPOCHD = os.path.abspath(sys.argv[1])
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def epochd(*args):
    return subprocess.run([EPOCHD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def inside(tmp):
    small = os.path.join(tmp, "small")
    os.makedirs(small)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", small], check=True)
    files = os.path.join(tmp, "files")
    made = archives.generate(files)
    big = os.path.join(files, "big")
    os.makedirs(big)
    with open(os.path.join(big, "blob.bin"), "wb") as f:
        f.write(os.urandom(40 << 20))
    server, state, base = data_server.start(files)
    blob_sha = archives.sha256(os.path.join(big, "blob.bin"))

    def manifest(path, with_size):
        m = yaml.safe_load(epochd("data", "manifest").stdout)
        m["datasets"] = [e for e in m["datasets"] if e["name"] in ("cifar10", "mnist")]
        for e in m["datasets"]:
            for f in e["files"]:
                p = os.path.join(files, e["name"], f["name"])
                f["urls"] = ["%s/ok/%s/%s" % (base, e["name"], f["name"])]
                f["sha256"] = archives.sha256(p)
                f["size"] = os.path.getsize(p)
        blob = {"name": "blob.bin", "urls": [base + "/ok/big/blob.bin"], "sha256": blob_sha, "unpack": "copy"}
        if with_size:
            blob["size"] = 40 << 20
        m["datasets"].append({"name": "big", "loader": "none", "dir": "big", "files": [blob]})
        yaml.safe_dump(m, open(path, "w"))

    def nothing_half_written(folder, what):
        check(not os.path.exists(os.path.join(small, folder)), f"{what}: no {folder} folder")
        stale = [n for n in os.listdir(small) if ".tmp-" in n]
        check(not stale, f"{what}: no staging folder left ({stale})")

    no_size, with_size = os.path.join(tmp, "a.yaml"), os.path.join(tmp, "b.yaml")
    manifest(no_size, False)
    manifest(with_size, True)

    # (a) the write fails
    r = epochd("data", "fetch", "--manifest", no_size, "--root", small, "big")
    print(r.stderr)
    part = os.path.join(small, "downloads", "big", "blob.bin.part")
    check(r.returncode == 74 and "cannot write: No space left on device" in r.stderr,
          f"(a) a full disk while downloading: exit 74, 'No space left on device' (exit {r.returncode})")
    check("the partial download" in r.stderr and os.path.exists(part), "(a) the partial download is kept and said so")
    nothing_half_written("big", "(a)")
    os.unlink(part)

    # (b) refused before downloading
    n = len(state.log)
    r = epochd("data", "fetch", "--manifest", with_size, "--root", small, "big")
    print(r.stderr)
    check(r.returncode == 74 and "blob.bin needs 41.9 MB more, only" in r.stderr and len(state.log) == n,
          f"(b) the manifest's size against the free space: refused with no request (exit {r.returncode})")
    nothing_half_written("big", "(b)")

    # (c) unpacking fails
    r = epochd("data", "fetch", "--manifest", with_size, "--root", small, "cifar10")
    print(r.stderr)
    check(r.returncode == 74 and "No space left on device" in r.stderr,
          f"(c) a full disk while unpacking: exit 74 (exit {r.returncode})")
    nothing_half_written("cifar-10-batches-bin", "(c)")
    check(os.path.exists(os.path.join(small, "downloads", "cifar10", "cifar-10-binary.tar.gz")),
          "(c) the verified archive stays in downloads/ for the next try")
    n = len(state.log)
    r = epochd("data", "fetch", "--manifest", with_size, "--root", small, "cifar10")
    check(r.returncode == 74 and len(state.log) == n, "(c) the next try unpacks the kept archive, downloads nothing")

    # what fits still fetches
    os.unlink(os.path.join(small, "downloads", "cifar10", "cifar-10-binary.tar.gz"))
    r = epochd("data", "fetch", "--manifest", with_size, "--root", small, "mnist")
    check(r.returncode == 0 and os.path.isdir(os.path.join(small, "mnist")),
          f"a dataset that fits still fetches into the same root (exit {r.returncode} {r.stderr})")
    server.shutdown()
    subprocess.run(["umount", small])
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "--inside":
        sys.exit(inside(sys.argv[3]))
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, os.path.abspath(__file__), EPOCHD, "--inside", tmp]
        for pre in (["unshare", "-m", "--propagation", "private"], ["unshare", "-rm", "--propagation", "private"]):
            probe = subprocess.run(pre + ["sh", "-c", "mkdir -p %s/p && mount -t tmpfs -o size=1m tmpfs %s/p" %
                                          (tmp, tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if probe.returncode == 0:
                r = subprocess.run(pre + cmd)
                sys.exit(r.returncode)
        print("skipped: no private mount namespace for a small tmpfs (unshare -m / -rm not allowed here)")
        sys.exit(77)
