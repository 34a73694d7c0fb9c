#!/usr/bin/env python3
"""datasets/image.c against Pillow and numpy, through image_tool: PNG (RGB,
gray, RGBA, palette with transparency, 16-bit, interlaced) and JPEG (RGB,
gray) decode to Pillow's pixels; fitting (channel conversion, cover-scale,
centre crop, antialiased bilinear) matches Pillow's resize(BILINEAR, box=)
of the same centred box within 1 level (Pillow rounds between its two
passes); the bad files are refused with their reason.

  test_image.py IMAGE_TOOL
"""
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

TOOL = sys.argv[1]
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def run(path, c, h, w, out):
    r = subprocess.run([TOOL, path, str(c), str(h), str(w), out], stdout=subprocess.PIPE, text=True)
    if r.returncode:
        return None, None, r.stdout.strip()
    raw = open(out + ".decoded", "rb").read()
    iw, ih, ic = struct.unpack("<iii", raw[:12])
    dec = np.frombuffer(raw[12:], np.uint8).reshape(ih, iw, ic)
    fit = np.frombuffer(open(out + ".fit", "rb").read(), np.uint8).reshape(c, h, w)
    return dec, fit, None


def reference_fit(im, c, h, w):
    im = im.convert("L" if c == 1 else "RGB")
    sw, sh = im.size
    s = max(h / sh, w / sw)
    bw, bh = w / s, h / s
    x0, y0 = (sw - bw) / 2, (sh - bh) / 2
    ref = np.asarray(im.resize((w, h), Image.BILINEAR, box=(x0, y0, x0 + bw, y0 + bh)), np.int16)
    return ref.reshape(h, w, c).transpose(2, 0, 1)


rng = np.random.default_rng(7)


def smooth(h, w, c):
    """A smooth picture (resampling differences stay small) plus some noise."""
    y, x = np.mgrid[0:h, 0:w]
    planes = [128 + 100 * np.sin(x / 5.0 + k) * np.cos(y / 7.0 - k) for k in range(c)]
    a = np.stack(planes, -1) + rng.integers(-10, 10, (h, w, c))
    return np.clip(a, 0, 255).astype(np.uint8)


with tempfile.TemporaryDirectory() as tmp:
    cases = []
    a = smooth(23, 37, 3)
    cases.append(("rgb.png", Image.fromarray(a), {}))
    cases.append(("gray.png", Image.fromarray(smooth(20, 50, 1)[:, :, 0]), {}))
    cases.append(("rgba.png", Image.fromarray(smooth(31, 29, 4)), {}))
    pal = Image.fromarray(a).quantize(16)
    pal.info["transparency"] = 3
    cases.append(("palette.png", pal, {"transparency": 3}))
    cases.append(("interlaced.png", Image.fromarray(smooth(40, 45, 3)), {"interlace": 1}))
    cases.append(("rgb.jpg", Image.fromarray(smooth(33, 41, 3)), {"quality": 90}))
    cases.append(("gray.jpg", Image.fromarray(smooth(64, 48, 1)[:, :, 0]), {"quality": 85}))
    cases.append(("tiny.png", Image.fromarray(smooth(5, 7, 3)), {}))        # upscaled
    cases.append(("exact.png", Image.fromarray(smooth(16, 16, 3)), {}))     # same size: unchanged
    cases.append(("big.jpg", Image.fromarray(smooth(600, 900, 3)), {"quality": 80}))
    for name, im, kw in cases:
        p = os.path.join(tmp, name)
        im.save(p, **kw)
        ref_dec = Image.open(p)
        for c in (1, 3):
            dec, fit, err = run(p, c, 16, 16, os.path.join(tmp, "out"))
            if err:
                check(False, f"{name}: decodes ({err})")
                continue
            want = np.asarray(ref_dec.convert({1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[dec.shape[2]]))
            check(np.array_equal(dec.reshape(want.shape), want), f"{name}: decoded pixels equal Pillow's "
                  f"({dec.shape[1]}x{dec.shape[0]}, {dec.shape[2]} channels)")
            ref = reference_fit(Image.open(p), c, 16, 16)
            diff = np.abs(fit.astype(np.int16) - ref)
            check(diff.max() <= 1, f"{name} -> {c}x16x16: within 1 of Pillow (max {diff.max()}, "
                  f"mean {diff.mean():.3f})")
            if name == "exact.png" and c == 3:
                check(np.array_equal(fit, np.asarray(Image.open(p)).transpose(2, 0, 1)),
                      "an image of the target size is unchanged")
    # a non-square target from a wide image: the centre is kept
    p = os.path.join(tmp, "wide.png")
    Image.fromarray(smooth(30, 90, 3)).save(p)
    dec, fit, err = run(p, 3, 12, 20, os.path.join(tmp, "out"))
    diff = np.abs(fit.astype(np.int16) - reference_fit(Image.open(p), 3, 12, 20))
    check(err is None and diff.max() <= 1, f"wide.png -> 3x12x20 (centre crop): within 1 (max {diff.max()})")
    # 16-bit gray: the high byte
    v = (np.arange(24 * 24, dtype=np.uint16).reshape(24, 24) * 113) % 65536
    p = os.path.join(tmp, "g16.png")
    Image.fromarray(v.astype(np.uint16), "I;16").save(p)
    dec, fit, err = run(p, 1, 24, 24, os.path.join(tmp, "out"))
    check(err is None and np.array_equal(dec[:, :, 0], (v >> 8).astype(np.uint8)),
          "16-bit gray PNG: the high byte of each value")

    # refused, with the reason
    bad = {}
    p = os.path.join(tmp, "text.png")
    open(p, "w").write("not an image\n")
    bad[p] = "not an image (expected PNG or JPEG)"
    p = os.path.join(tmp, "cut.png")
    data = open(os.path.join(tmp, "rgb.png"), "rb").read()
    open(p, "wb").write(data[:len(data) // 2])
    bad[p] = "damaged PNG: "
    p = os.path.join(tmp, "cut.jpg")
    data = open(os.path.join(tmp, "big.jpg"), "rb").read()
    open(p, "wb").write(data[:len(data) // 2])
    bad[p] = "damaged JPEG: "
    p = os.path.join(tmp, "cmyk.jpg")
    Image.new("CMYK", (8, 8), (10, 20, 30, 40)).save(p)
    bad[p] = "CMYK JPEG (4 channels): expected grayscale or RGB"
    p = os.path.join(tmp, "crc.png")
    data = bytearray(open(os.path.join(tmp, "rgb.png"), "rb").read())
    data[60] ^= 0xFF
    open(p, "wb").write(bytes(data))
    bad[p] = "damaged PNG: "
    bad[os.path.join(tmp, "missing.png")] = "unreadable: No such file or directory"
    for p, want in bad.items():
        dec, fit, err = run(p, 3, 8, 8, os.path.join(tmp, "out"))
        check(err is not None and err.startswith(p + ": ") and want in err, f"{os.path.basename(p)}: refused: {err}")

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("all checks passed")
