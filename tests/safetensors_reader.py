#!/usr/bin/env python3
"""A plain safetensors reader and writer, written from the format's spec with
nothing but json and numpy, to cross-check tapegrad's implementation in both
directions (tests/test_safetensors.c runs it):

    safetensors_reader.py verify FILE   read a file tapegrad wrote and check
                                        every value (exit 0 when all agree)
    safetensors_reader.py write FILE    write the file tapegrad then loads

Format: 8-byte little-endian u64 N; N bytes of UTF-8 JSON (an object, may be
padded with trailing spaces) mapping tensor names to {"dtype", "shape",
"data_offsets": [begin, end]} relative to the data buffer that follows, plus
an optional "__metadata__" object of strings; the byte ranges tile the buffer;
data little-endian, row-major. The expected contents are stated twice, here
and in test_safetensors.c, on purpose.
"""
import json
import struct
import sys

try:
    import numpy as np
except ImportError:
    sys.stderr.write("safetensors_reader.py: numpy is required "
                     "(Debian: python3-numpy, installed by scripts/deps.sh)\n")
    sys.exit(3)

DTYPES = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8", "F16": "<f2",
          "U8": "u1", "I8": "i1", "I16": "<i2", "U16": "<u2", "U32": "<u4",
          "U64": "<u8", "BOOL": "?"}


def reject_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate key {k!r}")
        d[k] = v
    return d


def read(path):
    """Return (tensors: name -> ndarray, metadata: dict, header_len)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError(f"header length {n} runs past the end")
    header = blob[8:8 + n].decode("utf-8")
    if not header.startswith("{"):
        raise ValueError("header does not start with '{'")
    obj = json.loads(header, object_pairs_hook=reject_duplicates)
    if not isinstance(obj, dict):
        raise ValueError("header is not an object")
    meta = obj.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise ValueError("metadata must map strings to strings")
    buf = blob[8 + n:]
    ranges = []
    tensors = {}
    for name, info in obj.items():
        dt = np.dtype(DTYPES[info["dtype"]])
        shape = info["shape"]
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError(f"{name}: bad shape {shape}")
        begin, end = info["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if end - begin != count * dt.itemsize or end > len(buf) or begin > end:
            raise ValueError(f"{name}: data_offsets {begin, end} do not fit")
        ranges.append((begin, end, name))
        tensors[name] = np.frombuffer(buf[begin:end], dtype=dt).reshape(shape)
    at = 0
    for begin, end, name in sorted(ranges):
        if begin != at:
            raise ValueError(f"{name}: hole or overlap at byte {at}")
        at = end
    if at != len(buf):
        raise ValueError(f"{len(buf) - at} bytes belong to no tensor")
    return tensors, meta, n


def expected_from_tapegrad():
    """What test_safetensors.c writes (same formulas there)."""
    i12 = np.arange(12)
    return {
        "dense1.weight": ("F32", ((i12 - 5) * 0.25).astype(np.float32).reshape(3, 4)),
        "dense1.bias": ("F64", 1.0 / (np.arange(4) + 1.0)),
        "labels": ("I32", (np.arange(5) ** 2 - 7).astype(np.int32)),
        "step": ("F64", np.array(3.5)),
        "empty": ("F32", np.zeros((0, 3), dtype=np.float32)),
    }, {"epoch": "7", "note": "tapegrad \u2713 \"quoted\"\n"}


def verify(path):
    tensors, meta, n = read(path)
    problems = []
    if n % 8 != 0:
        problems.append(f"header length {n} is not a multiple of 8")
    with open(path, "rb") as f:
        f.seek(8)
        raw = f.read(n).decode("utf-8")
    if raw.rstrip(" ") != raw.rstrip(" \t\r\n") or not raw.rstrip(" ").endswith("}"):
        problems.append("header padding is not trailing spaces")
    want, want_meta = expected_from_tapegrad()
    if list(tensors) != list(want):
        problems.append(f"tensor names/order {list(tensors)} != {list(want)}")
    header = json.loads(raw)
    for name, (dtype, arr) in want.items():
        if name not in tensors:
            continue
        got = tensors[name]
        if header[name]["dtype"] != dtype:
            problems.append(f"{name}: dtype {header[name]['dtype']} != {dtype}")
        if got.shape != arr.shape:
            problems.append(f"{name}: shape {got.shape} != {arr.shape}")
        elif not np.array_equal(got, arr):
            problems.append(f"{name}: values {got} != {arr}")
    if meta != want_meta:
        problems.append(f"metadata {meta} != {want_meta}")
    for p in problems:
        sys.stderr.write(f"safetensors_reader.py: {path}: {p}\n")
    return 1 if problems else 0


def write(path):
    """A file in a layout tapegrad does not produce itself: spaces in the JSON,
    header order unlike buffer order, an unpadded header length, a scalar, an
    empty tensor and a dtype tapegrad has no use for (F16)."""
    tensors = [  # (name, dtype, array), header order
        ("alpha", "F64", np.array([[1.5, -2.0], [1e-300, 3.25]])),
        ("beta", "F32", np.array([0.1, 0.2, 0.3], dtype=np.float32)),
        ("gamma", "I32", np.arange(-3, 3, dtype=np.int32).reshape(2, 3)),
        ("half", "F16", np.array([1.0, -0.5], dtype=np.float16)),
        ("s", "F32", np.array(42.0, dtype=np.float32)),
        ("z", "I32", np.zeros((0,), dtype=np.int32)),
    ]
    buffer_order = ["gamma", "half", "z", "beta", "s", "alpha"]
    by_name = {t[0]: t for t in tensors}
    chunks, offsets, at = [], {}, 0
    for name in buffer_order:
        b = by_name[name][2].astype(DTYPES[by_name[name][1]]).tobytes()
        offsets[name] = [at, at + len(b)]
        chunks.append(b)
        at += len(b)
    header = {"__metadata__": {"format": "pt", "source": "python \u00e9"}}
    for name, dtype, arr in tensors:
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": offsets[name]}
    text = json.dumps(header, ensure_ascii=False).encode("utf-8")
    if len(text) % 8 == 0:
        text += b" "          # keep it unaligned: readers must not assume padding
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
    return 0


def main(argv):
    if len(argv) != 3 or argv[1] not in ("verify", "write"):
        sys.stderr.write(__doc__)
        return 2
    try:
        return verify(argv[2]) if argv[1] == "verify" else write(argv[2])
    except (ValueError, KeyError, OSError, UnicodeDecodeError) as e:
        sys.stderr.write(f"safetensors_reader.py: {argv[2]}: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
