#!/usr/bin/env python3
"""Training on your own data, end to end through `epochd check`, `summary`
and `run`:

  dataset: folder  image trees written by Pillow (PNG and JPEG, RGB and
                   grayscale, odd sizes), a learnable task (where the bright
                   part of the picture is); the decoded cache read back with
                   numpy and compared with Pillow's own decode-and-fit; the
                   second run's wait for its cache; a changed image makes a
                   new cache; a single tree split by data.split; the bad
                   folders `check` refuses, naming the file and the reason
                   (a corrupt file, an empty class folder, a CMYK JPEG, a
                   text file called .jpg, ...), and one `run` refuses.
  dataset: npy     .npz and .npy written by numpy: uint8 NCHW, float32
                   NHWC, float32 (N, F) features, each a learnable task;
                   bad arrays refused at the key they concern.

Every run must reach a test accuracy well above chance.

  test_user_data.py EPOCHD
"""
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

EPOCHD = os.path.abspath(sys.argv[1])
failures = []
report = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def epochd(*args, cwd=None):
    t = time.monotonic()
    env = dict(os.environ, EPOCHD_THREADS="2")
    r = subprocess.run([EPOCHD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    r.seconds = time.monotonic() - t
    return r


rng = np.random.default_rng(2024)
KINDS = {"centre": 2, "left": 1, "top": 0}  # folder name -> where the bright part is


def picture(kind, h, w):
    y, x = np.mgrid[0:h, 0:w]
    if kind == 0:
        m = y < h / 2
    elif kind == 1:
        m = x < w / 2
    else:
        m = (abs(y - h / 2) < h / 4) & (abs(x - w / 2) < w / 4)
    return np.clip(40 + 160 * m + rng.normal(0, 25, (h, w)), 0, 255).astype(np.uint8)


def write_image(path, a, rgb, jpeg):
    im = Image.fromarray(a)
    if rgb:  # a tinted RGB picture: the channels differ
        im = Image.merge("RGB", (im, im.point(lambda v: v * 0.8), im.point(lambda v: min(255, v + 20))))
    if jpeg:
        im.save(path + ".jpg", quality=85)
    else:
        im.save(path + ".png")


def image_tree(root, counts, trees=True, sizes=(15, 50)):
    """root/{train,test}/<class>/NNN.{png,jpg} (or root/<class>/... when not trees)."""
    for split, n in counts.items():
        for name, kind in KINDS.items():
            d = os.path.join(root, split, name) if trees else os.path.join(root, name)
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                h, w = (int(v) for v in rng.integers(sizes[0], sizes[1], 2))
                write_image(os.path.join(d, "%s%03d" % (split[:2], i)), picture(kind, h, w), i % 3 == 0, i % 2 == 1)


def reference_fit(path, c, h, w):
    """Pillow's decode, channel conversion and antialiased bilinear resize of the centred box."""
    im = Image.open(path).convert("L" if c == 1 else "RGB")
    sw, sh = im.size
    s = max(h / sh, w / sw)
    bw, bh = w / s, h / s
    x0, y0 = (sw - bw) / 2, (sh - bh) / 2
    a = np.asarray(im.resize((w, h), Image.BILINEAR, box=(x0, y0, x0 + bw, y0 + bh)), np.int16)
    return a.reshape(h, w, c).transpose(2, 0, 1)


def spec(path, data, model, epochs=5, extra=""):
    with open(path, "w") as f:
        f.write(f"name: {os.path.basename(path)[:-5]}\nseed: 1\ndevice: cpu\ndata: {data}\nmodel: {model}\n"
                f"train: {{epochs: {epochs}, optimizer: {{name: adam, lr: 3.0e-3}}}}\n{extra}")
    return path


def best_acc(db, name):
    con = sqlite3.connect(db)
    row = con.execute("SELECT best_test_acc FROM leaderboard WHERE name = ? ORDER BY id DESC LIMIT 1",
                      (name,)).fetchone()
    con.close()
    return row[0] if row else None


def safetensors_meta(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


CNN = "{template: cnn, channels: [8, p, 16, p], pool: {kernel: 2, stride: 2}}"

with tempfile.TemporaryDirectory() as tmp:
    db, state = os.path.join(tmp, "e.db"), os.path.join(tmp, "state")

    # ---- folder: train/ and test/ trees ----
    img = os.path.join(tmp, "shapes")
    image_tree(img, {"train": 60, "test": 20})
    s = spec(os.path.join(tmp, "folder_rgb.yaml"), "{dataset: folder, root: shapes, size: [16, 16], batch_size: 16}",
             CNN)
    r = epochd("check", s)
    check(r.returncode == 0, f"check: a good folder is valid ({r.stdout.strip()} {r.stderr.strip()})")
    r = epochd("summary", "--json", s)
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    check(j.get("class_names") == ["centre", "left", "top"] and j.get("input_shape") == [3, 16, 16]
          and j.get("classes") == 3, f"summary: classes in sorted folder order, input [3, 16, 16] ({j.get('class_names')})")
    r = epochd("run", s, "--db", db, "--state-dir", state)
    print(r.stdout, r.stderr)
    acc = best_acc(db, "folder_rgb")
    check(r.returncode == 0 and acc is not None and acc >= 0.9, f"folder (RGB 16x16): test accuracy {acc} (chance 0.33)")
    report.append(("folder, 3 classes, RGB 16x16, cnn, 5 epochs", acc))
    m = re.search(r"decoded into (\S+) in ([0-9.]+) s", r.stderr)
    check(m is not None, "the first run decodes the folder into its cache")
    cache = m.group(1) if m else ""
    # the cache read back by numpy, against Pillow
    if cache:
        x = np.load(os.path.join(cache, "train_x.npy"))
        y = np.load(os.path.join(cache, "train_y.npy"))
        files = [line.rstrip("\n").split("\t") for line in open(os.path.join(cache, "files.tsv"))]
        classes = open(os.path.join(cache, "classes.txt")).read().split()
        check(x.dtype == np.uint8 and x.shape == (180, 3, 16, 16) and y.dtype == np.int32 and y.shape == (180,),
              f"cache: train_x {x.shape} uint8, train_y {y.shape} int32")
        check(classes == ["centre", "left", "top"], "cache: classes.txt in label order")
        check(len(set(y[:12].tolist())) > 1, f"cache: a split is in a shuffled order, not by class ({y[:12]})")
        labels_ok = all(int(f[1]) == classes.index(f[2].split("/")[1]) for f in files)
        check(labels_ok and [int(f[1]) for f in files if f[0] == "train"] == list(y),
              "cache: every label is its class folder's index")
        worst = 0
        for i in range(0, 180, 7):
            ref = reference_fit(os.path.join(img, files[i][2]), 3, 16, 16)
            worst = max(worst, int(np.abs(x[i].astype(np.int16) - ref).max()))
        check(worst <= 1, f"cache: the decoded, fitted images are within 1 of Pillow's (max {worst})")
    ck = os.path.join(state, "runs", "1", "last.safetensors")
    meta = safetensors_meta(ck) if os.path.exists(ck) else {}
    check(json.loads(meta.get("classes", "null") or "null") == ["centre", "left", "top"],
          f"the checkpoint's metadata carries the class names ({meta.get('classes')})")
    out = os.path.join(tmp, "export.safetensors")
    r = epochd("export", "1", "--db", db, "-o", out)
    meta = safetensors_meta(out) if r.returncode == 0 else {}
    check(json.loads(meta.get("classes", "null") or "null") == ["centre", "left", "top"],
          f"so does the export for PyTorch ({meta.get('classes')})")

    # the second run finds the cache; a changed image makes a new one
    r = epochd("run", s, "--db", db, "--state-dir", state)
    m = re.search(r"cache found at (\S+) in ([0-9.]+) s", r.stderr)
    check(r.returncode == 0 and m is not None and m.group(1) == cache, "the second run finds the same cache")
    victim = os.path.join(img, "train", "left", "tr004.png")
    write_image(victim[:-4], picture(1, 20, 20), False, False)
    r = epochd("run", s, "--db", db, "--state-dir", state, "--epochs", "1")
    m2 = re.search(r"decoded into (\S+) in", r.stderr)
    check(r.returncode == 0 and m2 is not None and m2.group(1) != cache, "an edited image: a new cache is built")

    # grayscale: the same folder as 1 x 20 x 12 (non-square: centre crop)
    s = spec(os.path.join(tmp, "folder_gray.yaml"),
             "{dataset: folder, root: shapes, size: [20, 12], channels: 1, batch_size: 16}", CNN)
    r = epochd("run", s, "--db", db, "--state-dir", state)
    acc = best_acc(db, "folder_gray")
    check(r.returncode == 0 and acc is not None and acc >= 0.9, f"folder (grayscale 20x12): test accuracy {acc}")
    report.append(("folder, grayscale 20x12, cnn, 5 epochs", acc))

    # a single tree, split per class
    one = os.path.join(tmp, "one_tree")
    image_tree(one, {"all": 40}, trees=False)
    s = spec(os.path.join(tmp, "folder_split.yaml"),
             "{dataset: folder, root: one_tree, size: [16, 16], split: {test: 0.25, seed: 5}, batch_size: 16}", CNN)
    r = epochd("run", s, "--db", db, "--state-dir", state)
    acc = best_acc(db, "folder_split")
    m = re.search(r"(?:decoded into|cache found at) (\S+) in", r.stderr)
    split_files = [line.split("\t") for line in open(os.path.join(m.group(1), "files.tsv"))] if m else []
    n_test = sum(1 for f in split_files if f[0] == "test")
    check(r.returncode == 0 and n_test == 30 and len(split_files) == 120 and acc is not None and acc >= 0.9,
          f"a single tree split {{test: 0.25}}: 10 of each class's 40 held out ({n_test} of {len(split_files)}), "
          f"test accuracy {acc}")
    report.append(("folder, single tree split 0.25", acc))

    # ---- the decode wait, first run against the second, on a larger folder ----
    big = os.path.join(tmp, "big")
    image_tree(big, {"train": 600, "test": 100}, sizes=(48, 96))
    s = spec(os.path.join(tmp, "folder_big.yaml"),
             "{dataset: folder, root: big, size: [32, 32], batch_size: 64, limit: {train: 128, test: 64}}", CNN,
             epochs=1)
    r1 = epochd("run", s, "--db", db, "--state-dir", state)
    r2 = epochd("run", s, "--db", db, "--state-dir", state)
    t1 = re.search(r"decoded into \S+ in ([0-9.]+) s", r1.stderr)
    t2 = re.search(r"cache found at \S+ in ([0-9.]+) s", r2.stderr)
    check(r1.returncode == 0 and r2.returncode == 0 and t1 and t2,
          "a 2100-image folder: decoded by the first run, found by the second")
    if t1 and t2:
        report.append(("2100 images (48-96 px, PNG/JPEG) -> 3x32x32: first run decodes", f"{t1.group(1)} s"))
        report.append(("  second run waits for its cached data", f"{t2.group(1)} s"))

    # ---- folders check refuses, naming the file and the reason ----
    def bad_folder(name, setup, data_extra=""):
        root = os.path.join(tmp, name)
        image_tree(root, {"train": 3, "test": 2})
        setup(root)
        p = spec(os.path.join(tmp, name + ".yaml"), "{dataset: folder, root: %s, size: [8, 8]%s}" % (name, data_extra),
                 CNN)
        return p, root

    cases = []
    p, root = bad_folder("corrupt", lambda r: open(os.path.join(r, "train", "left", "tr001.jpg"), "r+b").truncate(300))
    cases.append((p, f"data.root: {root}/train/left/tr001.jpg: damaged JPEG: "))
    p, root = bad_folder("empty_class", lambda r: os.makedirs(os.path.join(r, "train", "empty")))
    cases.append((p, f"data.root: {root}/train/empty: no images (.png, .jpg, .jpeg) in class empty"))
    p, root = bad_folder("text_jpg", lambda r: open(os.path.join(r, "train", "top", "tr000.jpg"), "w").write("hi"))
    cases.append((p, f"data.root: {root}/train/top/tr000.jpg: not an image (expected PNG or JPEG)"))
    p, root = bad_folder("cmyk", lambda r: Image.new("CMYK", (9, 9)).save(os.path.join(r, "test", "top", "a.jpg")))
    cases.append((p, f"data.root: {root}/test/top/a.jpg: CMYK JPEG (4 channels): expected grayscale or RGB"))
    p, root = bad_folder("new_test_class", lambda r: shutil.copytree(os.path.join(r, "test", "top"),
                                                                     os.path.join(r, "test", "zebra")))
    cases.append((p, f"data.root: {root}/test/zebra: class zebra is not in {root}/train"))
    p, root = bad_folder("split_on_trees", lambda r: None, ", split: {test: 0.2}")
    cases.append((p, f"data.split: {root} has train/ and test/ folders; data.split is only for a single tree"))
    p, root = bad_folder("no_test", lambda r: shutil.rmtree(os.path.join(r, "test")))
    cases.append((p, f"data.root: {root} has a train/ folder but no test/ (expected both, or class folders and "
                     "data.split)"))
    p, root = bad_folder("no_split", lambda r: [os.rename(os.path.join(r, "train", k), os.path.join(r, k))
                                                for k in KINDS] and shutil.rmtree(os.path.join(r, "train"))
                         or shutil.rmtree(os.path.join(r, "test")))
    cases.append((p, f"data.root: {root} has no train/ and test/ folders: add data.split (e.g. {{test: 0.2}})"))
    p, root = bad_folder("one_class", lambda r: [shutil.rmtree(os.path.join(r, t, k)) for t in ("train", "test")
                                                 for k in ("left", "top")])
    cases.append((p, f"data.root: {root}/train: 1 class folder (centre): at least 2 are needed"))
    p = spec(os.path.join(tmp, "missing.yaml"), "{dataset: folder, root: nowhere, size: [8, 8]}", CNN)
    cases.append((p, f"data.root: {tmp}/nowhere does not exist"))
    p = spec(os.path.join(tmp, "units.yaml"), "{dataset: folder, root: shapes, size: [8, 8]}",
             "{template: mlp, units: [16, 5]}")
    cases.append((p, "model.units[1]: expected the last entry to be the output size 3 (the dataset's class count), "
                     "found 5"))
    for p, want in cases:
        r = epochd("check", p)
        check(r.returncode == 65 and want in r.stderr, f"check {os.path.basename(p)}: exit 65, '{want}' "
              f"(got {r.returncode}: {r.stderr.strip()})")
    # a corrupt image outside check's sample: check passes, the run names it
    late = os.path.join(tmp, "late")
    image_tree(late, {"train": 30, "test": 5})
    open(os.path.join(late, "train", "left", "tr017.jpg"), "wb").write(b"\xff\xd8\xff\xe0 truncated")
    p = spec(os.path.join(tmp, "late.yaml"), "{dataset: folder, root: late, size: [8, 8]}", CNN)
    rc = epochd("check", p)
    r = epochd("run", p, "--db", db, "--state-dir", state)
    check(rc.returncode == 0 and r.returncode == 65 and
          f"cannot prepare the image folder: {late}/train/left/tr017.jpg: damaged JPEG" in r.stdout + r.stderr,
          f"a bad image check's sample missed: the run fails naming it (check {rc.returncode}, run {r.returncode})")
    check(not [d for d in os.listdir(os.path.join(state, "cache")) if ".tmp-" in d],
          "no half-built cache is left behind")

    # ---- npy ----
    prototypes = {}

    def separable(n, shape, classes, s):
        """Class k: its own random prototype (the same in both splits) times 2, plus unit noise."""
        yv = (np.arange(n) * 7 + s) % classes
        if shape not in prototypes:
            prototypes[shape] = rng.normal(0, 1, (classes,) + shape)
        x = prototypes[shape][yv] * 2 + rng.normal(0, 1, (n,) + shape)
        return x.astype(np.float32), yv

    arrays = os.path.join(tmp, "arrays")
    for sub in ("u8", "nhwc", "flat"):
        os.makedirs(os.path.join(arrays, sub))
    for si, split in enumerate(("train", "test")):
        n = 400 if split == "train" else 100
        x, y = separable(n, (1, 12, 12), 4, si)
        np.savez(os.path.join(arrays, "u8", split + ".npz"),
                 x=np.clip(x * 30 + 128, 0, 255).astype(np.uint8), y=y.astype(np.int64))
        x, y = separable(n, (3, 10, 10), 5, si)
        np.save(os.path.join(arrays, "nhwc", split + "_x.npy"), x.transpose(0, 2, 3, 1).copy())
        np.save(os.path.join(arrays, "nhwc", split + "_y.npy"), y.astype(np.uint8))
        x, y = separable(n, (20,), 3, si)
        np.savez_compressed(os.path.join(arrays, "flat", split + ".npz"), x=x, y=y.astype(np.int32).reshape(-1, 1))
    runs = [("npy_u8", "{dataset: npy, root: arrays/u8, batch_size: 32}", CNN, 4),
            ("npy_nhwc", "{dataset: npy, root: arrays/nhwc, layout: nhwc, batch_size: 32}", CNN, 5),
            ("npy_flat", "{dataset: npy, root: arrays/flat, batch_size: 32}", "{template: mlp, units: [32, 3]}", 3)]
    for name, data, model, classes in runs:
        p = spec(os.path.join(tmp, name + ".yaml"), data, model)
        r = epochd("run", p, "--db", db, "--state-dir", state)
        print(r.stdout[-400:], r.stderr[-400:])
        acc = best_acc(db, name)
        check(r.returncode == 0 and acc is not None and acc >= 0.8,
              f"{name}: test accuracy {acc} (chance {1 / classes:.2f})")
        report.append((f"{name}: {data}", acc))
    r = epochd("summary", "--json", os.path.join(tmp, "npy_nhwc.yaml"))
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    check(j.get("input_shape") == [3, 10, 10] and j.get("classes") == 5,
          f"summary: NHWC arrays read as [3, 10, 10], 5 classes ({j.get('input_shape')}, {j.get('classes')})")

    bad = os.path.join(tmp, "bad_arrays")
    os.makedirs(bad)
    for split in ("train", "test"):
        np.save(os.path.join(bad, split + "_x.npy"), rng.normal(0, 1, (10, 4)))  # float64
        np.save(os.path.join(bad, split + "_y.npy"), np.arange(10) % 3)
    p = spec(os.path.join(tmp, "npy_f64.yaml"), "{dataset: npy, root: bad_arrays}", "{template: mlp, units: [3]}")
    r = epochd("check", p)
    check(r.returncode == 65 and f"data.root: {bad}/train_x.npy: dtype '<f8', expected uint8 (pixels 0..255) or "
          "float32 (convert with x.astype(np.float32))" in r.stderr, f"float64 arrays: {r.stderr.strip()}")
    p = spec(os.path.join(tmp, "npy_classes.yaml"), "{dataset: npy, root: arrays/u8, classes: 3}", CNN)
    r = epochd("check", p)
    check(r.returncode == 65 and re.search(r"npy_classes.yaml:\d+:\d+: data.classes: .*train.npz: y: label "
                                           r"y\[\d+\] = 3, expected a class in \[0, 3\)", r.stderr) is not None,
          f"labels beyond data.classes, at data.classes: {r.stderr.strip()}")
    p = spec(os.path.join(tmp, "npy_layout.yaml"), "{dataset: npy, root: arrays/nhwc}", CNN)
    r = epochd("check", p)
    check(r.returncode == 65 and "set data.layout: nhwc" in r.stderr, f"NHWC arrays without layout: {r.stderr.strip()}")

print("\nresults (CPU, 2 threads, a machine shared with other builds):")
for what, v in report:
    print(f"  {what}: {v}")
if failures:
    print(f"\n{len(failures)} failure(s)")
    sys.exit(1)
print("\nall checks passed")
