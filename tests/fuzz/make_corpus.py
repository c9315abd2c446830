#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (corpus/<target>/): small valid
inputs and a catalogue of broken ones. Deterministic (gzip mtime 0); rerun it
after changing it and commit the files. Inputs found by fuzzing are committed
beside these under their own names (crash-*, found-*), not written here.

    python3 tests/fuzz/make_corpus.py
"""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(b):
    return gzip.compress(b, compresslevel=6, mtime=0)


# ---- IDX --------------------------------------------------------------------
def idx(type_code, dims, payload):
    h = bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return h + payload


u8_2x3 = idx(0x08, [2, 3], bytes([0, 51, 102, 153, 204, 255]))
img = idx(0x08, [3, 2, 2], bytes(range(0, 240, 20)))
put("idx", "u8_2x3.idx", u8_2x3)
put("idx", "u8_2x3.idx.gz", gz(u8_2x3))
put("idx", "u8_3x2x2_images.idx.gz", gz(img))
put("idx", "u8_labels.idx", idx(0x08, [3], bytes([4, 0, 7])))
put("idx", "i8.idx", idx(0x09, [3], bytes([1, 0xFF, 2])))
put("idx", "i16.idx", idx(0x0B, [2], struct.pack(">hh", -2, 258)))
put("idx", "i32_1x2.idx.gz", gz(idx(0x0C, [1, 2], struct.pack(">ii", -2**31, 65536))))
put("idx", "f32.idx", idx(0x0D, [2, 1], struct.pack(">ff", 1.5, -2.0)))
put("idx", "f64_4d.idx", idx(0x0E, [1, 1, 1, 2], struct.pack(">dd", -0.25, 1e300)))
put("idx", "two_members.idx.gz", gz(u8_2x3[:12]) + gz(u8_2x3[12:]))
put("idx", "trailing_junk_after_gzip.idx.gz", gz(u8_2x3) + b"junk")
# broken
put("idx", "bad_truncated_data.idx", u8_2x3[:-1])
put("idx", "bad_trailing_bytes.idx", u8_2x3 + b"\x01\x02")
put("idx", "bad_truncated_header.idx", u8_2x3[:9])
put("idx", "bad_empty.idx", b"")
put("idx", "bad_magic.idx", b"\x12\x34" + u8_2x3[2:])
put("idx", "bad_type.idx", u8_2x3[:2] + b"\x07" + u8_2x3[3:])
put("idx", "bad_ndims0.idx", u8_2x3[:3] + b"\x00" + u8_2x3[4:])
put("idx", "bad_ndims5.idx", u8_2x3[:3] + b"\x05" + u8_2x3[4:])
put("idx", "bad_zero_dim.idx", idx(0x08, [2, 0], b""))
put("idx", "bad_huge_dims.idx", idx(0x08, [0xFFFFFFFF, 0xFFFFFFFF], b"\0" * 16))
put("idx", "bad_near_cap.idx.gz", gz(idx(0x08, [0x7FFFFFFF], b"\x07" * 100)))
g = gz(u8_2x3)
put("idx", "bad_gzip_cut.idx.gz", g[:-4])
put("idx", "bad_gzip_cut_header.idx.gz", g[:14])
crc = bytearray(g)
crc[-6] ^= 0x40
put("idx", "bad_gzip_crc.idx.gz", bytes(crc))
put("idx", "bad_gzip_junk.idx.gz", b"\x1f\x8b\x08\x00garbage-not-deflate")


# ---- safetensors ------------------------------------------------------------
def safetensors(header, data, pad=True):
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-(8 + len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + data


def tensors(specs, meta=None):
    """specs: (name, dtype, shape, bytes) in order; offsets tile the buffer."""
    hdr, data = {}, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dt, shape, raw in specs:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    return hdr, data


mixed = [
    ("dense1.weight", "F32", [2, 3], struct.pack("<6f", 1, -2, 0.5, 3, 4, -0.25)),
    ("dense1.bias", "F64", [3], struct.pack("<3d", 0.1, 0.2, 0.3)),
    ("labels", "I32", [4], struct.pack("<4i", 0, 1, -1, 7)),
    ("scalar", "F32", [], struct.pack("<f", 42.0)),
    ("half", "F16", [2], b"\x00\x3c\x00\xc0"),
    ("bf", "BF16", [1, 2], b"\x80\x3f\x00\x40"),
    ("mask", "BOOL", [3], b"\x01\x00\x01"),
    ("big", "I64", [1], struct.pack("<q", -5)),
    ("empty", "U8", [0, 4], b""),
]
meta = {"format": "tapegrad-checkpoint-1", "spec": "784-128relu-10", "epoch": "3"}
h, d = tensors(mixed, meta)
put("safetensors", "mixed_dtypes_meta.safetensors", safetensors(h, d))
h, d = tensors(mixed[:2])
put("safetensors", "two_f32_f64.safetensors", safetensors(h, d, pad=False))
put("safetensors", "empty_header.safetensors", safetensors({}, b""))
put("safetensors", "only_metadata.safetensors", safetensors({"__metadata__": {"k": "v"}}, b""))
put("safetensors", "all_dtypes.safetensors", safetensors(*tensors(
    [(dt, dt, [1], b"\x01" * sz) for dt, sz in
     [("U8", 1), ("I8", 1), ("F8_E5M2", 1), ("F8_E4M3", 1), ("I16", 2), ("U16", 2),
      ("U32", 4), ("U64", 8), ("F64", 8), ("I32", 4)]])))
# broken
w = mixed[0]
put("safetensors", "bad_short.safetensors", b"\x10\x00\x00")
put("safetensors", "bad_hlen_past_end.safetensors", struct.pack("<Q", 1000) + b"{}")
put("safetensors", "bad_hlen_huge.safetensors", struct.pack("<Q", 2**63) + b"{}")
put("safetensors", "bad_not_json.safetensors", struct.pack("<Q", 6) + b"{nope}")
put("safetensors", "bad_not_object.safetensors", struct.pack("<Q", 2) + b"[]")
dup = b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'
put("safetensors", "bad_duplicate_key.safetensors", struct.pack("<Q", len(dup)) + dup + b"\x00")
put("safetensors", "bad_dtype.safetensors", safetensors(
    {"x": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, b"\0" * 16))
put("safetensors", "bad_negative_shape.safetensors", safetensors(
    {"x": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}}, b"\0"))
put("safetensors", "bad_shape_overflow.safetensors", safetensors(
    {"x": {"dtype": "F64", "shape": [2**31, 2**31, 4], "data_offsets": [0, 8]}}, b"\0" * 8))
put("safetensors", "bad_span_mismatch.safetensors", safetensors(
    {"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4))
put("safetensors", "bad_offsets_past_end.safetensors", safetensors(
    {"x": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}, b"\0" * 2))
put("safetensors", "bad_offsets_reversed.safetensors", safetensors(
    {"x": {"dtype": "U8", "shape": [0], "data_offsets": [2, 1]}}, b"\0" * 2))
put("safetensors", "bad_overlap.safetensors", safetensors(
    {"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
     "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}, b"\0" * 3))
put("safetensors", "bad_hole.safetensors", safetensors(
    {"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
     "b": {"dtype": "U8", "shape": [1], "data_offsets": [2, 3]}}, b"\0" * 3))
put("safetensors", "bad_trailing_data.safetensors", safetensors(*tensors([w])) + b"\0\0\0\0")
put("safetensors", "bad_meta_not_string.safetensors", safetensors({"__metadata__": {"k": 1}}, b""))
put("safetensors", "bad_meta_not_object.safetensors", safetensors({"__metadata__": "x"}, b""))
put("safetensors", "bad_entry_not_object.safetensors", safetensors({"x": [1, 2]}, b""))
put("safetensors", "bad_missing_fields.safetensors", safetensors({"x": {"dtype": "U8"}}, b""))
put("safetensors", "bad_float_offsets.safetensors", safetensors(
    {"x": {"dtype": "U8", "shape": [1], "data_offsets": [0.0, 1.5]}}, b"\0"))

# ---- model specs --------------------------------------------------------------
specs = {
    "classic": "784-128relu-10",
    "bn_dropout_res": "6-5relu_bn_d0.2-5tanh_res-3",
    "ln_res_softmax": "4-4gelu_ln_res-4silu_res_d0.5-2softmax",
    "every_act": "3-3relu-3sigmoid-3tanh-3leaky_relu-3leaky-3gelu-3elu-3silu-3softplus-2softmax",
    "bn_ln_res": "5-5_bn_ln_res-5elu_bn-1",
    "linear": "2-1",
    # edge cases, all refused
    "empty": "",
    "dash": "-",
    "no_layers": "784",
    "trailing_dash": "784-",
    "double_dash": "5--3",
    "zero_in": "0-1",
    "zero_width": "1-0",
    "neg_width": "3-+-2",
    "in_too_big": "16777217-1",
    "res_width_change": "5-3relu_res",
    "dropout_one": "5-5relu_d1",
    "dropout_neg": "5-5relu_d-0.1",
    "dropout_nan": "5-5relu_dnan",
    "unknown_act": "5-5bogus",
    "unknown_mod": "5-5relu_xx",
    "long_token": "5-" + "5" * 100,
    "long_act": "5-5" + "r" * 40,
    "garbage": "5-5relu\x01_bn",
    # accepted but over the harness's allocation budget
    "huge": "1-16777216-16777216",
}
for name, s in specs.items():
    put("spec", name, s)
# with the option byte after a NUL: f64 / eval / no backward / batch size
put("spec", "opt_f64_eval_batch4", b"6-5relu_bn_d0.2-5tanh_res-3\x00\x1b")
put("spec", "opt_f32_eval_batch1", b"4-4gelu_ln_res-3\x00\x02")
put("spec", "opt_f64_no_backward", b"784-128relu-10\x00\x05")
