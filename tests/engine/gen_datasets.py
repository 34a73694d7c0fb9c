#!/usr/bin/env python3
"""Writes dataset files in their published formats for test_dataset.c.

An implementation of the formats independent of the C loaders (standard
library only). Pixel and label values follow formulas that the C test
recomputes on its own:

  IDX (MNIST layout), split s (0 train, 1 test), item i, pixel j of 784:
      pixel = (7 i + 3 j + 11 s + 5 (j // 28)) % 256,  label = (3 i + s) % 10
      train: 120 items, gzipped (.gz); test: 45 items, plain.
  CIFAR-10 binary, global record i of the split, pixel j of 3072 (R, G, B planes):
      pixel = (3 i + 17 s + j + 85 (j // 1024)) % 256,  label = (i + s) % 10
  CIFAR-100 binary: as CIFAR-10 with 100 added inside the pixel formula;
      fine = (7 i + s) % 100, coarse = fine // 5 (the record holds coarse, fine).

usage: gen_datasets.py OUTDIR   (creates OUTDIR/mnist, OUTDIR/cifar10, OUTDIR/cifar100)
"""
import gzip
import os
import struct
import sys


def idx_files(out, split, count, gz):
    prefix = "train" if split == 0 else "t10k"
    images = bytearray(struct.pack(">IIII", 0x00000803, count, 28, 28))
    for i in range(count):
        images += bytes((7 * i + 3 * j + 11 * split + 5 * (j // 28)) % 256 for j in range(784))
    labels = bytearray(struct.pack(">II", 0x00000801, count))
    labels += bytes((3 * i + split) % 10 for i in range(count))
    for name, data in ((prefix + "-images-idx3-ubyte", images), (prefix + "-labels-idx1-ubyte", labels)):
        if gz:
            with gzip.open(os.path.join(out, name + ".gz"), "wb") as f:
                f.write(data)
        else:
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)


# seq[k : k + 1024] is one 32x32 plane whose first value is k (mod 256).
SEQ = bytes(k % 256 for k in range(1024 + 256))


def cifar_pixels(base):
    return b"".join(SEQ[(base + p * 1109) % 256:(base + p * 1109) % 256 + 1024] for p in range(3))


def cifar_file(path, first, records, split, c100):
    chunks = []
    for r in range(records):
        i = first + r
        if c100:
            fine = (7 * i + split) % 100
            chunks.append(bytes((fine // 5, fine)) + cifar_pixels(3 * i + 17 * split + 100))
        else:
            chunks.append(bytes(((i + split) % 10,)) + cifar_pixels(3 * i + 17 * split))
    with open(path, "wb") as f:
        f.write(b"".join(chunks))


def main():
    out = sys.argv[1]
    for sub in ("mnist", "cifar10", "cifar100"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    idx_files(os.path.join(out, "mnist"), 0, 120, gz=True)
    idx_files(os.path.join(out, "mnist"), 1, 45, gz=False)
    for b in range(5):
        cifar_file(os.path.join(out, "cifar10", "data_batch_%d.bin" % (b + 1)), b * 10000, 10000, 0, False)
    cifar_file(os.path.join(out, "cifar10", "test_batch.bin"), 0, 10000, 1, False)
    cifar_file(os.path.join(out, "cifar100", "train.bin"), 0, 50000, 0, True)
    cifar_file(os.path.join(out, "cifar100", "test.bin"), 0, 10000, 1, True)


if __name__ == "__main__":
    main()
