#!/usr/bin/env python3
"""Safetensors files with PyTorch, for test_safetensors.c (torch mode).

The safetensors package is not in Debian 12, so the format is written and
read here by hand (struct + json) with tensor bytes from torch, the way the
reference implementation lays them out: header keys sorted by name (json
sort_keys, ASCII-escaped, ", " and ": " separators), data sorted by dtype
alignment then name, header padded with spaces to a multiple of 8.

  st_torch.py write PATH   write the tensors of expected() to PATH
  st_torch.py check PATH   read PATH (written by epochd) and compare it with expected()

Exit status: 0 ok, 1 mismatch (reason on stderr), 77 torch missing.
"""
import json
import struct
import sys

try:
    import torch
except ImportError:
    sys.exit(77)

DTYPES = {
    torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}
BY_NAME = {v: k for k, v in DTYPES.items()}

# A name that needs JSON escapes: quotes, backslash, tab, non-ASCII, and a
# character outside the BMP (a surrogate pair in ASCII-escaped JSON).
ODD_NAME = 'layer.0/"odd" \\ name\t\u00f1 \u2603 \U0001d11e'


def expected():
    g = torch.Generator().manual_seed(0)
    return {
        "f32": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) * 0.5 - 3,
        "f64": torch.arange(6, dtype=torch.float64).reshape(3, 2) / 3,
        "f16": (torch.arange(10, dtype=torch.float32) * 0.25 - 1).half(),
        "bf16": (torch.arange(8, dtype=torch.float32) * 1.5 - 4).bfloat16(),
        "i64": torch.tensor([-(2 ** 40), -1, 0, 7, 2 ** 62], dtype=torch.int64),
        "i32": torch.arange(-3, 3, dtype=torch.int32).reshape(2, 3),
        "i16": torch.arange(-5, 5, dtype=torch.int16) * 1000,
        "i8": torch.tensor([-128, -1, 0, 127], dtype=torch.int8),
        "u8": torch.arange(0, 250, 10, dtype=torch.uint8),
        "bool": torch.tensor([True, False, False, True, True]),
        "scalar": torch.tensor(3.25, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        "transposed": torch.arange(12, dtype=torch.float32).reshape(3, 4).t(),  # non-contiguous source
        "randn": torch.randn(4, 5, generator=g),
        ODD_NAME: torch.tensor([1.0, -2.0], dtype=torch.float32),
    }


def metadata(tensors):
    return {
        "format": "pt",
        "note": 'tab\there "quoted" \u2713',
        "randn_sum": repr(float(tensors["randn"].double().sum())),
    }


def tensor_bytes(t):
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def write(path):
    tensors = expected()
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header, blobs, off = {}, [], 0
    for name in order:
        t = tensors[name]
        b = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = metadata(tensors)
    text = json.dumps(header, sort_keys=True, ensure_ascii=True).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def fail(msg):
    print("st_torch.py check: " + msg, file=sys.stderr)
    sys.exit(1)


def check(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    if (8 + n) % 8:
        fail("header not padded to a multiple of 8")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    meta = header.pop("__metadata__", {})
    want = expected()
    if meta != metadata(want):
        fail("metadata %r != %r" % (meta, metadata(want)))
    if set(header) != set(want):
        fail("names %r != %r" % (sorted(header), sorted(want)))
    spans = sorted(tuple(e["data_offsets"]) for e in header.values())
    at = 0
    for b, e in spans:
        if b != at:
            fail("data offsets do not tile: %r" % (spans,))
        at = e
    if at != len(body):
        fail("data section has %d bytes, tensors cover %d" % (len(body), at))
    for name, e in header.items():
        t = want[name]
        if e["dtype"] != DTYPES[t.dtype] or e["shape"] != list(t.shape):
            fail("%r: %s %r, expected %s %r" % (name, e["dtype"], e["shape"], DTYPES[t.dtype], list(t.shape)))
        b, end = e["data_offsets"]
        raw = bytearray(body[b:end])
        if t.numel() == 0:
            if raw:
                fail("%r: empty tensor with %d bytes" % (name, len(raw)))
            continue
        got = torch.frombuffer(raw, dtype=BY_NAME[e["dtype"]]).reshape(e["shape"])
        if not torch.equal(got, t):
            fail("%r: values differ:\n%r\n%r" % (name, got, t))
    print("st_torch.py check: %d tensors and metadata match" % len(header))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    (write if sys.argv[1] == "write" else check)(sys.argv[2])


if __name__ == "__main__":
    main()
