#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_safetensors (tests/fuzz/corpus/safetensors/).

Valid files in the layouts of both writers (ours: compact header, insertion
order; the reference: sorted keys, ", " separators, data sorted by alignment),
every dtype, escapes and odd names, zero-size tensors, metadata; plus one
broken variant per validation rule. Standard library only. The committed
corpus is its output plus the fuzzer's finds (found-*, see README.md).

usage: make_corpus.py [OUTDIR]
"""
import json
import os
import struct
import sys

SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
         "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def frame(header_bytes, data=b"", pad=True):
    if pad:
        header_bytes += b" " * ((8 - (8 + len(header_bytes)) % 8) % 8)
    return struct.pack("<Q", len(header_bytes)) + header_bytes + data


def st(tensors, metadata=None, compact=True, sort_data=False):
    """tensors: list of (name, dtype, shape)."""
    order = list(tensors)
    if sort_data:
        order.sort(key=lambda t: (-SIZES[t[1]], t[0]))
    header, data, off = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dt, shape in order:
        n = SIZES[dt]
        for d in shape:
            n *= d
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        data += bytes((off + i) * 37 % 256 for i in range(n))
        off += n
    if compact:
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    else:
        text = json.dumps(header, sort_keys=True, ensure_ascii=True).encode()
    return frame(text, data)


def raw(text, data_len=0):
    return frame(text.encode("utf-8", "surrogatepass"), bytes(range(data_len % 256)) * (data_len // 256) +
                 bytes(range(data_len % 256)), pad=False)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "safetensors")
    os.makedirs(out, exist_ok=True)
    every = [("t_" + dt.lower(), dt, [2, 3]) for dt in SIZES]
    seeds = {
        "empty": st([]),
        "one_f32": st([("w", "F32", [4])]),
        "linear": st([("fc.weight", "F32", [3, 4]), ("fc.bias", "F32", [3])], {"format": "pt"}),
        "every_dtype_ours": st(every, {"k": "v"}),
        "every_dtype_reference": st(every, {"format": "pt"}, compact=False, sort_data=True),
        "scalar_and_empty": st([("s", "F64", []), ("e", "F32", [0, 5]), ("u", "U8", [3])]),
        "odd_names": st([('q"\\\t\u00f1\u2603\U0001d11e', "F32", [1]), ("a/b.c[0]", "I64", [2])],
                        {"n\u00f8te": "\u2713\n"}, compact=False),
        "metadata_only": st([], {"a": "1", "b": "2"}),
        "many": st([("p%d" % i, "F32", [i % 3 + 1]) for i in range(40)]),
        "bad_hole": raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                        '"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', 12),
        "bad_overlap": raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                           '"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8),
        "bad_size": raw('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', 8),
        "bad_trailing": raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 12),
        "bad_dtype": raw('{"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}}', 8),
        "bad_dup": raw('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                       '"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', 2),
        "bad_surrogate": raw('{"\\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1),
        "bad_meta": raw('{"__metadata__":{"k":[1]}}'),
        "bad_number": raw('{"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}', 1),
        "bad_deep": raw('{"a":[[[[[[[[[[1]]]]]]]]]]}'),
        "bad_json": raw('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],}}', 1),
        "bad_length": struct.pack("<Q", 1 << 40) + b"{}",
        "short": b"\x02\x00\x00",
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name + ".safetensors"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
