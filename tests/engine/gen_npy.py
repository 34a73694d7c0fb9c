#!/usr/bin/env python3
"""Writes NumPy array datasets with numpy itself for test_npy.c: the files
the npy loader must read, and the ones it must refuse.

Values follow formulas that the C test recomputes on its own. Sample i of
split s (0 train, 1 test), channel c, row y, column x:
    uint8    v = (7 i + 31 c + 3 y + 5 x + 11 s) % 256
    float32  v_f = v / 4 - 10           (exact in float32)
    flat feature j (N, F arrays): c = 0, y = 0, x = j
    label    (3 i + s) % 4

usage: gen_npy.py OUTDIR
"""
import os
import sys

import numpy as np

K = 4


def images(n, c, h, w, s):
    i, ch, y, x = np.meshgrid(np.arange(n), np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return ((7 * i + 31 * ch + 3 * y + 5 * x + 11 * s) % 256).astype(np.uint8)


def labels(n, s):
    return (3 * np.arange(n) + s) % K


def as_f32(u8):
    return (u8.astype(np.float32) / 4 - 10).astype(np.float32)


def case(out, name):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    return d


def main(out):
    n = {0: 50, 1: 13}
    # good: uint8 NCHW in an uncompressed npz, int64 labels
    d = case(out, "u8_nchw_npz")
    for s, sn in ((0, "train"), (1, "test")):
        np.savez(os.path.join(d, sn + ".npz"), x=images(n[s], 3, 5, 7, s), y=labels(n[s], s).astype(np.int64))
    # good: float32 NHWC in a compressed npz, uint8 labels of shape (N, 1)
    d = case(out, "f32_nhwc_npzc")
    for s, sn in ((0, "train"), (1, "test")):
        x = as_f32(images(n[s], 2, 5, 7, s)).transpose(0, 2, 3, 1).copy()
        np.savez_compressed(os.path.join(d, sn + ".npz"), x=x, y=labels(n[s], s).astype(np.uint8).reshape(-1, 1))
    # good: uint8 (N, H, W) in .npy pairs, int32 labels
    d = case(out, "u8_nhw_npy")
    for s, sn in ((0, "train"), (1, "test")):
        np.save(os.path.join(d, sn + "_x.npy"), images(n[s], 1, 6, 4, s)[:, 0])
        np.save(os.path.join(d, sn + "_y.npy"), labels(n[s], s).astype(np.int32))
    # good: float32 flat features (N, F), int16 labels
    d = case(out, "f32_flat_npy")
    for s, sn in ((0, "train"), (1, "test")):
        np.save(os.path.join(d, sn + "_x.npy"), as_f32(images(n[s], 1, 1, 9, s)[:, 0, 0]))
        np.save(os.path.join(d, sn + "_y.npy"), labels(n[s], s).astype(np.int16))

    def pair(name, x_train, y_train, x_test=None, y_test=None, npz=False):
        d = case(out, name)
        x_test = x_train if x_test is None else x_test
        y_test = y_train if y_test is None else y_test
        for sn, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            if npz:
                np.savez(os.path.join(d, sn + ".npz"), x=x, y=y)
            else:
                np.save(os.path.join(d, sn + "_x.npy"), x, allow_pickle=True)
                np.save(os.path.join(d, sn + "_y.npy"), y)
        return d

    x = images(8, 1, 4, 4, 0)
    y = labels(8, 0)
    pair("bad_f64", x.astype(np.float64), y)
    pair("bad_be", x.astype(">f4"), y)
    pair("bad_fortran", np.asfortranarray(x.astype(np.float32)), y)
    pair("bad_count", x, y[:-1])
    yn = y.copy()
    yn[5] = -1
    pair("bad_neg", x, yn)
    pair("bad_float_labels", x, y.astype(np.float32))
    pair("bad_channels", images(8, 32, 32, 3, 0), y)
    pair("bad_object", np.array([object()] * 8, dtype=object), y)
    pair("bad_test_shape", x, y, images(8, 1, 4, 5, 1), y)
    pair("bad_one_class", x, np.zeros(8, np.int64))
    d = pair("bad_trunc", x, y)
    path = os.path.join(d, "train_x.npy")
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-7])
    d = case(out, "bad_missing_y")
    for sn in ("train", "test"):
        np.savez(os.path.join(d, sn + ".npz"), x=x, labels=y)
    d = case(out, "bad_crc")
    big = images(40, 3, 16, 16, 0)
    for sn in ("train", "test"):
        np.savez_compressed(os.path.join(d, sn + ".npz"), x=big, y=labels(40, 0))
    path = os.path.join(d, "train.npz")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 3] ^= 0x55
    open(path, "wb").write(bytes(data))
    case(out, "missing")


if __name__ == "__main__":
    main(sys.argv[1])
