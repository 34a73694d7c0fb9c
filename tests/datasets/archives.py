"""The standard datasets' published files, generated in their real formats
(an implementation independent of epochd's loaders) with synthetic
content, at their real record counts:

  cifar10        cifar-10-binary.tar.gz: cifar-10-batches-bin/data_batch_1..5.bin,
                 test_batch.bin (10000 records of 1 label byte + 3072 pixels),
                 batches.meta.txt, readme.html
  cifar100       cifar-100-binary.tar.gz: cifar-100-binary/train.bin (50000 records
                 of coarse, fine label bytes + 3072), test.bin (10000), the label-name files
  mnist, fashion_mnist   train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
                 t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (IDX, gzipped)

Pixels repeat one pattern per class, so the archives are small (they
compress well) while unpacking to the real sizes.
"""
import gzip
import hashlib
import io
import os
import struct
import tarfile


def _pattern(k, n):
    return bytes((k * 37 + j * (k + 1)) % 256 for j in range(n))


def _tar_gz(path, members):
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1262304000
            tar.addfile(info, io.BytesIO(data))


def cifar10(out):
    recs = [bytes([c]) + _pattern(c, 3072) for c in range(10)]
    members = []
    for f in range(1, 6):
        members.append(("cifar-10-batches-bin/data_batch_%d.bin" % f,
                        b"".join(recs[(r * 7 + f) % 10] for r in range(10000))))
    members.append(("cifar-10-batches-bin/test_batch.bin", b"".join(recs[r % 10] for r in range(10000))))
    members.append(("cifar-10-batches-bin/batches.meta.txt", b"airplane\nautomobile\n"))
    members.append(("cifar-10-batches-bin/readme.html", b"<html></html>\n"))
    path = os.path.join(out, "cifar-10-binary.tar.gz")
    _tar_gz(path, members)
    return [path]


def cifar100(out):
    recs = [bytes([c // 5, c]) + _pattern(c, 3072) for c in range(100)]
    members = [
        ("cifar-100-binary/train.bin", b"".join(recs[(r * 13) % 100] for r in range(50000))),
        ("cifar-100-binary/test.bin", b"".join(recs[r % 100] for r in range(10000))),
        ("cifar-100-binary/fine_label_names.txt", b"apple\n"),
        ("cifar-100-binary/coarse_label_names.txt", b"aquatic_mammals\n"),
    ]
    path = os.path.join(out, "cifar-100-binary.tar.gz")
    _tar_gz(path, members)
    return [path]


def idx(out):
    paths = []
    imgs = [_pattern(c, 784) for c in range(10)]
    for prefix, n in (("train", 60000), ("t10k", 10000)):
        images = struct.pack(">IIII", 0x803, n, 28, 28) + b"".join(imgs[(i * 3) % 10] for i in range(n))
        labels = struct.pack(">II", 0x801, n) + bytes((i * 3) % 10 for i in range(n))
        for name, data in ((prefix + "-images-idx3-ubyte.gz", images), (prefix + "-labels-idx1-ubyte.gz", labels)):
            p = os.path.join(out, name)
            with open(p, "wb") as f:
                f.write(gzip.compress(data, compresslevel=1, mtime=0))
            paths.append(p)
    return paths


def generate(out):
    """out/NAME/FILE for each of the four; returns {name: [paths]}."""
    made = {}
    for name, fn in (("cifar10", cifar10), ("cifar100", cifar100), ("mnist", idx), ("fashion_mnist", idx)):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        made[name] = fn(d)
    return made


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
