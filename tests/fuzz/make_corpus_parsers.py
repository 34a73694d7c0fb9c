#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_idx, fuzz_cifar and fuzz_sweep
(tests/fuzz/corpus/{idx,cifar,sweep}/): valid inputs of every shape the
parsers accept, and one broken variant per rule they check. Standard
library only. The committed corpora are its output plus the fuzzers' finds
(found-*, see README.md).

Input layouts (see the targets): fuzz_idx and fuzz_cifar take one selector
byte (idx: odd = an image file, even = a label file; cifar: odd =
CIFAR-100) followed by the file; fuzz_sweep takes the sweep part of a spec,
appended to a fixed base.

usage: make_corpus_parsers.py [CORPUS_DIR]
"""
import gzip
import os
import struct
import sys


def idx_images(n, magic=0x803, rows=28, cols=28):
    return struct.pack(">IIII", magic, n, rows, cols) + bytes((i * 7) % 256 for i in range(n * rows * cols))


def idx_labels(n, magic=0x801, top=10):
    return struct.pack(">II", magic, n) + bytes(i % top for i in range(n))


def gz(data, level=9):
    return gzip.compress(data, compresslevel=level, mtime=0)


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def idx(out):
    IMG, LAB = b"\x01", b"\x00"
    seeds = {
        "labels_0": LAB + idx_labels(0),
        "labels_3": LAB + idx_labels(3),
        "labels_3_gz": LAB + gz(idx_labels(3)),
        "images_1": IMG + idx_images(1),
        "images_2_gz": IMG + gz(idx_images(2)),
        "images_2_gz_fast": IMG + gz(idx_images(2), 1),
        "images_two_members": IMG + gz(idx_images(2)[:500]) + gz(idx_images(2)[500:]),
        "labels_empty_member": LAB + gz(b"") + gz(idx_labels(2)),
        # one broken variant per rule
        "bad_magic": LAB + idx_labels(2, magic=0x803),
        "bad_dims": IMG + idx_images(1, rows=32, cols=32),
        "bad_label": LAB + idx_labels(12, top=12),
        "truncated": IMG + idx_images(2)[:-10],
        "truncated_gz": IMG + gz(idx_images(2))[:-12],
        "trailing_plain": LAB + idx_labels(3) + b"x",
        "trailing_gz_garbage": LAB + gz(idx_labels(3)) + b"garbage",
        "trailing_gz_zeros": LAB + gz(idx_labels(3)) + b"\0\0\0\0",
        "trailing_gz_half_magic": LAB + gz(idx_labels(3)) + b"\x1f",
        "bad_crc": LAB + gz(idx_labels(3))[:-8] + b"\0\0\0\0" + gz(idx_labels(3))[-4:],
        "huge_count_gz": IMG + gz(struct.pack(">IIII", 0x803, 1 << 24, 28, 28)),
        "huge_count_plain": LAB + struct.pack(">II", 0x801, 0xFFFFFFFF),
        "header_only": IMG + struct.pack(">III", 0x803, 1, 28),
        "empty": IMG,
    }
    for name, data in seeds.items():
        write(out, name, data)


def cifar(out):
    def rec(label, fine=None, fill=0):
        head = bytes([label]) if fine is None else bytes([label, fine])
        return head + bytes((fill + i) % 256 for i in range(3072))

    seeds = {
        "c10_empty": b"\x00",
        "c10_one": b"\x00" + rec(3),
        "c10_two": b"\x00" + rec(0) + rec(9, fill=5),
        "c100_one": b"\x01" + rec(19, 99),
        "c100_two": b"\x01" + rec(0, 0) + rec(7, 42, fill=3),
        "c10_bad_label": b"\x00" + rec(10),
        "c100_bad_coarse": b"\x01" + rec(20, 5),
        "c100_bad_fine": b"\x01" + rec(5, 100),
        "c10_partial": b"\x00" + rec(1)[:-1],
        "c100_as_c10": b"\x00" + rec(1, 2),
    }
    for name, data in seeds.items():
        write(out, name, data)


def sweep(out):
    seeds = {
        "matrix_seed": "matrix:\n  seed: [1, 2, 3]\n",
        "matrix_two": "matrix:\n  seed: [1, 2]\n  train.optimizer.lr: [0.1, 0.01]\n",
        "matrix_nested": "matrix:\n  model.units: [[8, 3], [16, 3], [3]]\n  train.epochs: [1, 2]\n",
        "matrix_maps": "matrix:\n  train.schedule: [cosine, {name: step, step_epochs: 1, gamma: 0.5}]\n",
        "include": "include:\n  - {seed: 7}\n  - {seed: 8, name: explicit}\n",
        "matrix_include": "matrix:\n  seed: [1, 2]\ninclude:\n  - {seed: 3, train.optimizer.name: sgd}\n",
        "new_maps": "matrix:\n  data.augment.hflip: [true, false]\n  seed: [4]\n",
        "bad_overlap": "matrix:\n  model: [{template: mlp, units: [3]}]\n  model.units: [[3]]\n",
        "bad_through_scalar": "matrix:\n  train.epochs.x: [1]\n",
        "bad_empty_list": "matrix:\n  seed: []\n",
        "bad_not_map": "matrix: [1, 2]\n",
        "bad_value": "matrix:\n  seed: [1, -1]\n",
        "duplicate_combination": "matrix:\n  seed: [1, 1]\n",
        "name_placeholder": "matrix:\n  train.epochs: [1, 2]\nname: \"e{train.epochs}_{seed}\"\n",
        "unknown_placeholder": "matrix:\n  seed: [1]\nname: \"x{nope}\"\n",
        "aliases": "matrix:\n  seed: &s [1, 2]\n  priority: *s\n",
        "many": "matrix:\n  seed: [1, 2, 3, 4, 5, 6, 7, 8]\n  priority: [1, 2, 3, 4, 5, 6, 7, 8]\n  train.epochs: [1, 2]\n",
    }
    for name, text in seeds.items():
        write(out, name + ".yaml", text.encode())


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    for name, fn in (("idx", idx), ("cifar", cifar), ("sweep", sweep)):
        d = os.path.join(root, name)
        os.makedirs(d, exist_ok=True)
        fn(d)


if __name__ == "__main__":
    main()
