#!/usr/bin/env python3
"""Seed corpora and crafted bad files for the libFuzzer targets in fuzz/.

    python3 tools/make_fuzz_corpus.py          # rewrites fuzz/corpus/<format>/ and fuzz/crafted/<format>/

fuzz/corpus/<format>/ holds small valid files (each loads without error); fuzz/crafted/<format>/
holds malformed files, each breaking one validation rule, named after it. tools/fuzz.sh replays
both before fuzzing and tests/io/test_crafted_files.cpp requires every crafted file to raise a typed
Ember error (IOError) and every seed to load. Where one folder serves two loaders the file name's
prefix picks the loader: cifar10_/cifar100_ and bpe_/char_.

Python's standard library only (struct, zlib, json, math); the output is deterministic, so
re-running the script on a clean tree changes nothing.
"""
import json
import math
import os
import shutil
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "fuzz")
FORMATS = ["safetensors", "checkpoint", "idx", "cifar", "image", "tokenizer", "tensorboard"]

_written = {}


def out(kind, fmt, name, data):
    """Records fuzz/<kind>/<fmt>/<name> = data (bytes or str)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    key = (kind, fmt, name)
    assert key not in _written, "duplicate file name %s" % (key,)
    _written[key] = bytes(data)


def seed(fmt, name, data):
    out("corpus", fmt, name, data)


def bad(fmt, name, data):
    out("crafted", fmt, name, data)


class Rng:
    """SplitMix64: deterministic pseudo-random bytes."""

    def __init__(self, s):
        self.state = (s * 0x9E3779B97F4A7C15 + 1) & 0xFFFFFFFFFFFFFFFF

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        x = self.state
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return x ^ (x >> 31)

    def bytes(self, n):
        return bytes(self.next() & 0xFF for _ in range(n))


# ---------------------------------------------------------------------------------------------
# ---- safetensors ----

DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4,
               "U32": 4, "F32": 4, "I64": 8, "F64": 8, "U64": 8}
DTYPE_ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
               "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
               "C64", "F64", "I64", "U64"]


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def st_file(header, data=b"", pad=True):
    """A safetensors file from a header (dict or raw JSON text/bytes) and the data buffer."""
    if isinstance(header, dict):
        header = compact(header)
    if isinstance(header, str):
        header = header.encode("utf-8")
    if pad:
        header += b" " * ((8 - len(header) % 8) % 8)
    return struct.pack("<Q", len(header)) + header + data


def st_tensors(tensors, metadata=None):
    """(header dict, data) for tensors {name: (dtype, shape, raw bytes)}, laid out like the
    reference writer (dtype order descending, then name)."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    items = sorted(tensors.items(), key=lambda kv: (-DTYPE_ORDER.index(kv[1][0]), kv[0]))
    data = b""
    for name, (dtype, shape, raw) in items:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    return header, data


def st_make(tensors, metadata=None, pad=True):
    h, d = st_tensors(tensors, metadata)
    return st_file(h, d, pad)


def f32(*vals):
    return struct.pack("<%df" % len(vals), *vals)


def safetensors_files():
    fmt = "safetensors"
    r = Rng(1)
    seed(fmt, "f32_2x3.safetensors", st_make({"weight": ("F32", [2, 3], f32(0, 1, -2, 3.5, 1e30, -0.0))}))
    seed(fmt, "empty_header.safetensors", st_file("{}"))
    seed(fmt, "all_dtypes.safetensors", st_make({
        "mask": ("BOOL", [3], bytes([1, 0, 1])),
        "u8": ("U8", [2, 2], bytes([0, 255, 7, 128])),
        "i8": ("I8", [2], struct.pack("<2b", -128, 127)),
        "i16": ("I16", [2], struct.pack("<2h", -32768, 32767)),
        "u16": ("U16", [2], struct.pack("<2H", 0, 65535)),
        "f16": ("F16", [2], struct.pack("<2e", 1.0, -2.5)),
        "bf16": ("BF16", [2], bytes([0x80, 0x3F, 0x40, 0xC0])),
        "i32": ("I32", [2], struct.pack("<2i", -(2**31), 2**31 - 1)),
        "u32": ("U32", [2], struct.pack("<2I", 0, 2**32 - 1)),
        "f32": ("F32", [1, 2], f32(0.5, -0.5)),
        "f64": ("F64", [2], struct.pack("<2d", math.pi, -1e300)),
        "i64": ("I64", [2], struct.pack("<2q", -(2**63), 2**63 - 1)),
    }))
    seed(fmt, "metadata.safetensors", st_make({"b": ("F32", [1], f32(1))},
                                              {"format": "pt", "note": "h\u00e9llo \"quoted\"\n"}))
    seed(fmt, "metadata_null.safetensors", st_file('{"__metadata__":null,"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\x05"))
    seed(fmt, "zero_size_and_scalar.safetensors", st_make({
        "empty": ("F32", [0, 3], b""), "scalar": ("F64", [], struct.pack("<d", 2.0)),
        "empty_i64": ("I64", [0], b"")}))
    seed(fmt, "unpadded_misaligned.safetensors",
         st_make({"x": ("F64", [3], struct.pack("<3d", 1, 2, 3)), "y": ("I32", [2], struct.pack("<2i", 4, 5))},
                 pad=False))
    seed(fmt, "escaped_names.safetensors", st_file(
        '{"\\u00e9t\\u00e9":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
        '"tab\\there\\\\\\/\\"":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},'
        '"\\ud83d\\ude00":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}', b"\x01\x02\x03"))
    seed(fmt, "unknown_fields.safetensors", st_file(
        '{ "a" : { "extra" : [1, -2.5e3, {"k": [true, false, null]}, "s"], "dtype" : "I8",'
        ' "shape" : [ 2 ], "data_offsets" : [ 0 , 2 ] } }\n\t\r', b"\x01\xff"))
    seed(fmt, "many_tensors.safetensors",
         st_make({"layer.%02d" % i: ("F32", [i % 3 + 1], r.bytes(4 * (i % 3 + 1))) for i in range(24)}))

    def entry(dtype="F32", shape=(1,), offsets=(0, 4)):
        return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}

    ok = compact({"a": entry()})
    four = f32(1.0)
    bad(fmt, "empty_file.safetensors", b"")
    bad(fmt, "size_prefix_truncated_5_bytes.safetensors", b"\x08\x00\x00\x00\x00")
    bad(fmt, "header_len_2pow60.safetensors", struct.pack("<Q", 2**60) + b"{}      ")
    bad(fmt, "header_len_2pow64_minus_1.safetensors", struct.pack("<Q", 2**64 - 1) + b"{}      ")
    bad(fmt, "header_len_over_100MB_limit.safetensors", struct.pack("<Q", 100_000_001) + b"{}      ")
    bad(fmt, "header_len_past_end_of_file.safetensors", struct.pack("<Q", 64) + b"{}      ")
    bad(fmt, "header_len_zero.safetensors", struct.pack("<Q", 0) + b"{}      ")
    bad(fmt, "header_truncated_json.safetensors", st_file(ok[: len(ok) // 2], pad=False))
    bad(fmt, "header_not_object_array.safetensors", st_file("[]"))
    bad(fmt, "header_not_object_string.safetensors", st_file('"a"'))
    bad(fmt, "header_invalid_utf8_0xff.safetensors", st_file(b'{"\xff":' + compact(entry()).encode() + b"}", four))
    bad(fmt, "header_overlong_utf8_c0af.safetensors", st_file(b'{"\xc0\xaf":' + compact(entry()).encode() + b"}", four))
    bad(fmt, "header_utf8_surrogate_eda080.safetensors", st_file(b'{"\xed\xa0\x80":' + compact(entry()).encode() + b"}", four))
    bad(fmt, "header_utf8_truncated_sequence.safetensors", st_file(b'{"a":' + compact(entry()).encode() + b"}\xe2\x82"))
    bad(fmt, "header_padding_nul_bytes.safetensors", struct.pack("<Q", len(ok) + 3) + ok.encode() + b"\0\0\0" + four)
    bad(fmt, "header_trailing_second_object.safetensors", st_file(ok + "{}", four))
    bad(fmt, "string_unterminated.safetensors", st_file('{"abc'))
    bad(fmt, "string_control_character.safetensors", st_file('{"a\x01b":' + compact(entry()) + "}", four))
    bad(fmt, "string_bad_escape_x.safetensors", st_file('{"a\\xb":' + compact(entry()) + "}", four))
    bad(fmt, "string_bad_hex_escape.safetensors", st_file('{"a\\u12G4":' + compact(entry()) + "}", four))
    bad(fmt, "string_truncated_hex_escape.safetensors", st_file('{"a\\u12', pad=False))
    bad(fmt, "string_lone_low_surrogate.safetensors", st_file('{"\\udc00":' + compact(entry()) + "}", four))
    bad(fmt, "string_lone_high_surrogate.safetensors", st_file('{"\\ud800x":' + compact(entry()) + "}", four))
    bad(fmt, "string_bad_low_surrogate.safetensors", st_file('{"\\ud800\\u0041":' + compact(entry()) + "}", four))
    bad(fmt, "name_not_a_string.safetensors", st_file('{1:' + compact(entry()) + "}", four))
    bad(fmt, "missing_comma_between_entries.safetensors",
        st_file('{"a":' + compact(entry()) + ' "b":' + compact(entry(offsets=(4, 8))) + "}", four * 2))
    bad(fmt, "duplicate_tensor_name.safetensors",
        st_file('{"a":' + compact(entry()) + ',"a":' + compact(entry(offsets=(4, 8))) + "}", four * 2))
    bad(fmt, "name_reserved_metadata_twice.safetensors",
        st_file('{"__metadata__":{},"__metadata__":{},"a":' + compact(entry()) + "}", four))
    bad(fmt, "metadata_duplicate_key.safetensors",
        st_file('{"__metadata__":{"k":"1","k":"2"},"a":' + compact(entry()) + "}", four))
    bad(fmt, "metadata_not_object.safetensors", st_file('{"__metadata__":["k"],"a":' + compact(entry()) + "}", four))
    bad(fmt, "metadata_value_number.safetensors", st_file('{"__metadata__":{"k":1},"a":' + compact(entry()) + "}", four))
    bad(fmt, "metadata_value_nested_object.safetensors", st_file('{"__metadata__":{"k":{}},"a":' + compact(entry()) + "}", four))
    bad(fmt, "entry_not_object.safetensors", st_file('{"a":[1,2]}'))
    bad(fmt, "entry_empty_object.safetensors", st_file('{"a":{}}'))
    bad(fmt, "entry_missing_dtype.safetensors", st_file(compact({"a": {"shape": [1], "data_offsets": [0, 4]}}), four))
    bad(fmt, "entry_missing_shape.safetensors", st_file(compact({"a": {"dtype": "F32", "data_offsets": [0, 4]}}), four))
    bad(fmt, "entry_missing_data_offsets.safetensors", st_file(compact({"a": {"dtype": "F32", "shape": [1]}}), four))
    bad(fmt, "dtype_not_string.safetensors", st_file(compact({"a": {"dtype": 7, "shape": [1], "data_offsets": [0, 4]}}), four))
    bad(fmt, "dtype_unknown_F33.safetensors", st_file(compact({"a": entry("F33")}), four))
    bad(fmt, "dtype_lowercase_f32.safetensors", st_file(compact({"a": entry("f32")}), four))
    bad(fmt, "dtype_duplicate_field.safetensors",
        st_file('{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four))
    bad(fmt, "dtype_u64_unsupported_by_ember.safetensors", st_file(compact({"a": entry("U64", [1], [0, 8])}), bytes(8)))
    bad(fmt, "dtype_f8_unsupported_by_ember.safetensors", st_file(compact({"a": entry("F8_E4M3", [2], [0, 2])}), bytes(2)))
    bad(fmt, "dtype_f4_odd_count_partial_byte.safetensors", st_file(compact({"a": entry("F4", [3], [0, 2])}), bytes(2)))
    bad(fmt, "shape_not_array.safetensors", st_file('{"a":{"dtype":"F32","shape":4,"data_offsets":[0,4]}}', four))
    bad(fmt, "shape_negative.safetensors", st_file('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', four))
    bad(fmt, "shape_float.safetensors", st_file('{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', four))
    bad(fmt, "shape_exponent.safetensors", st_file('{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}', four))
    bad(fmt, "shape_leading_zero.safetensors", st_file('{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}', four))
    bad(fmt, "shape_string.safetensors", st_file('{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}', four))
    bad(fmt, "shape_entry_2pow63_exceeds_int64.safetensors", st_file(compact({"a": entry(shape=[2**63])}), four))
    bad(fmt, "shape_entry_2pow64_overflows_u64.safetensors", st_file('{"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}}', four))
    bad(fmt, "shape_rank_65.safetensors", st_file(compact({"a": entry(shape=[1] * 65)}), four))
    bad(fmt, "shape_numel_overflows_2pow96.safetensors", st_file(compact({"a": entry(shape=[2**32, 2**32, 2**32])}), four))
    bad(fmt, "shape_zero_but_strides_overflow.safetensors", st_file(compact({"a": entry(shape=[0, 2**62, 4], offsets=[0, 0])})))
    bad(fmt, "shape_bytes_overflow_f64.safetensors", st_file(compact({"a": entry("F64", [2**61 + 1], [0, 8])}), bytes(8)))
    bad(fmt, "shape_unterminated_array.safetensors", st_file('{"a":{"dtype":"F32","shape":[1,', pad=False))
    bad(fmt, "offsets_one_element.safetensors", st_file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', four))
    bad(fmt, "offsets_three_elements.safetensors", st_file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}', four))
    bad(fmt, "offsets_not_array.safetensors", st_file('{"a":{"dtype":"F32","shape":[1],"data_offsets":"0,4"}}', four))
    bad(fmt, "offsets_negative.safetensors", st_file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', four))
    bad(fmt, "offsets_end_before_begin.safetensors", st_file(compact({"a": entry(offsets=[4, 0])}), four))
    bad(fmt, "offsets_gap_at_start.safetensors", st_file(compact({"a": entry(offsets=[4, 8])}), four * 2))
    bad(fmt, "offsets_overlap.safetensors",
        st_file(compact({"a": entry(offsets=[0, 4]), "b": entry(shape=[2], offsets=[2, 10])}), bytes(10)))
    bad(fmt, "offsets_duplicate_range.safetensors",
        st_file(compact({"a": entry(offsets=[0, 4]), "b": entry(offsets=[0, 4])}), four))
    bad(fmt, "offsets_past_end_of_buffer.safetensors", st_file(compact({"a": entry(shape=[2], offsets=[0, 8])}), four))
    bad(fmt, "offsets_end_2pow64_minus_1.safetensors", st_file(compact({"a": entry(offsets=[0, 2**64 - 1])}), four))
    bad(fmt, "offsets_size_mismatch_shape.safetensors", st_file(compact({"a": entry(shape=[2], offsets=[0, 4])}), four))
    bad(fmt, "data_trailing_bytes.safetensors", st_file(compact({"a": entry()}), four + b"\0"))
    bad(fmt, "data_truncated.safetensors", st_make({"a": ("F32", [4], f32(1, 2, 3, 4))})[:-3])
    bad(fmt, "no_tensors_but_data.safetensors", st_file("{}", b"abcd"))
    bad(fmt, "bool_byte_2.safetensors", st_make({"m": ("BOOL", [3], bytes([1, 2, 0]))}))
    bad(fmt, "unknown_field_nested_200_deep.safetensors",
        st_file('{"a":{"x":' + "[" * 200 + "]" * 200 + ',"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four))
    bad(fmt, "unknown_field_bad_literal.safetensors",
        st_file('{"a":{"x":tru,"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four))
    bad(fmt, "unknown_field_bad_number.safetensors",
        st_file('{"a":{"x":1.e5,"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four))


# ---------------------------------------------------------------------------------------------
# ---- checkpoint (safetensors + ember.* metadata + XXH64) ----

M64 = 0xFFFFFFFFFFFFFFFF
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, v):
    acc = (acc + v * P2) & M64
    return (_rotl(acc, 31) * P1) & M64


def xxh64(b):
    """XXH64 with seed 0 (the xxHash specification), as src/io/xxh64.cpp."""
    n = len(b)
    p = 0
    if n >= 32:
        acc = [(P1 + P2) & M64, P2, 0, (-P1) & M64]
        while p + 32 <= n:
            for i in range(4):
                acc[i] = _round(acc[i], struct.unpack_from("<Q", b, p + 8 * i)[0])
            p += 32
        h = (_rotl(acc[0], 1) + _rotl(acc[1], 7) + _rotl(acc[2], 12) + _rotl(acc[3], 18)) & M64
        for a in acc:
            h = ((h ^ _round(0, a)) * P1 + P4) & M64
    else:
        h = P5
    h = (h + n) & M64
    while p + 8 <= n:
        h ^= _round(0, struct.unpack_from("<Q", b, p)[0])
        h = (_rotl(h, 27) * P1 + P4) & M64
        p += 8
    if p + 4 <= n:
        h ^= (struct.unpack_from("<I", b, p)[0] * P1) & M64
        h = (_rotl(h, 23) * P2 + P3) & M64
        p += 4
    while p < n:
        h ^= (b[p] * P5) & M64
        h = (_rotl(h, 11) * P1) & M64
        p += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    h ^= h >> 32
    return h


NEEDLE = b'"ember.checksum":"xxh64:'


def ckpt_fix_checksum(b):
    """Patches the 16 hex digits after the checksum needle with the file's XXH64 (digits as '0')."""
    at = b.index(NEEDLE) + len(NEEDLE)
    z = b[:at] + b"0" * 16 + b[at + 16:]
    return b[:at] + b"%016x" % xxh64(z) + b[at + 16:]


def rng_state(seed_, offset):
    return ("I64", [2], struct.pack("<QQ", seed_, offset))


def ckpt(tensors, step="0", extra_meta=None, version="1", fmt_value="ember.checkpoint",
         checksum="xxh64:0000000000000000", drop=(), fix=True):
    meta = {"ember.checksum": checksum, "ember.format": fmt_value, "ember.format_version": version,
            "ember.step": step}
    meta.update(extra_meta or {})
    for k in drop:
        del meta[k]
    meta = dict(sorted(meta.items()))
    b = st_make(tensors, meta)
    return ckpt_fix_checksum(b) if fix and NEEDLE in b else b


def ckpt_edit(b, old, new):
    """The checkpoint with `old` replaced by `new` in its header (re-padded, size prefix updated)
    and the checksum recomputed when the field is still there in canonical form."""
    n = struct.unpack("<Q", b[:8])[0]
    header = b[8:8 + n].rstrip(b" ")
    assert old in header
    out = st_file(header.replace(old, new, 1), b[8 + n:])
    return ckpt_fix_checksum(out) if NEEDLE in out else out


def checkpoint_files():
    fmt = "checkpoint"
    r = Rng(2)
    minimal = {"model.w": ("F32", [2], f32(1, 2)), "rng.default": rng_state(42, 0)}
    seed(fmt, "minimal.safetensors", ckpt(minimal, step="7"))
    seed(fmt, "no_tensors.safetensors", ckpt({}, step="0"))
    seed(fmt, "full.safetensors", ckpt({
        "model.conv.weight": ("F32", [2, 1, 3, 3], r.bytes(72)),
        "model.conv.bias": ("F32", [2], f32(0.5, -0.5)),
        "model.bn.num_batches_tracked": ("I64", [], struct.pack("<q", 12)),
        "optimizer.state.0.exp_avg": ("F32", [2], f32(0.1, 0.2)),
        "optimizer.param_groups.0.lr": ("F64", [], struct.pack("<d", 1e-3)),
        "scheduler.last_epoch": ("I64", [], struct.pack("<q", 3)),
        "rng.default": rng_state(2**64 - 1, 123456789),
        "rng.dropout": rng_state(7, 2**63),
    }, step="-5", extra_meta={"run": "r\u00e9sum\u00e9", "epoch": "3"}))
    seed(fmt, "mixed_dtypes.safetensors", ckpt({
        "model.h": ("F16", [3], struct.pack("<3e", 1, 2, 3)),
        "model.b": ("BF16", [1], bytes([0x80, 0x3F])),
        "model.m": ("BOOL", [2], bytes([0, 1])),
        "model.u": ("U8", [0], b""),
        "model.i16": ("I16", [1], struct.pack("<h", -7)),
        "rng.default": ("U32", [2], struct.pack("<II", 1, 2)),
    }, step="9223372036854775807"))

    good = ckpt(minimal, step="7")
    bad(fmt, "empty_file.safetensors", b"")
    bad(fmt, "not_safetensors_text.safetensors", b"this is not a checkpoint\n")
    bad(fmt, "header_len_2pow60.safetensors", struct.pack("<Q", 2**60) + good[8:])
    bad(fmt, "truncated_in_size_prefix.safetensors", good[:6])
    bad(fmt, "truncated_in_header.safetensors", good[:40])
    bad(fmt, "truncated_in_data.safetensors", good[:-3])
    bad(fmt, "trailing_byte_after_data.safetensors", good + b"\0")
    bad(fmt, "plain_safetensors_no_metadata.safetensors", st_make(minimal))
    bad(fmt, "format_key_missing.safetensors", ckpt(minimal, drop=["ember.format"]))
    bad(fmt, "format_value_wrong.safetensors", ckpt(minimal, fmt_value="ember.model"))
    bad(fmt, "version_missing.safetensors", ckpt(minimal, drop=["ember.format_version"]))
    bad(fmt, "version_2_newer.safetensors", ckpt(minimal, version="2"))
    bad(fmt, "version_0.safetensors", ckpt(minimal, version="0"))
    bad(fmt, "version_negative.safetensors", ckpt(minimal, version="-1"))
    bad(fmt, "version_not_integer.safetensors", ckpt(minimal, version="one"))
    bad(fmt, "version_trailing_garbage.safetensors", ckpt(minimal, version="1x"))
    bad(fmt, "version_empty.safetensors", ckpt(minimal, version=""))
    bad(fmt, "version_overflows_int64.safetensors", ckpt(minimal, version="99999999999999999999"))
    bad(fmt, "checksum_key_missing.safetensors", ckpt(minimal, drop=["ember.checksum"]))
    bad(fmt, "checksum_mismatch_data_byte.safetensors", good[:-1] + bytes([good[-1] ^ 1]))
    pad_at = good.index(b"}}") + 2  # a space of the header padding, if any; else a data byte
    flipped = good[:pad_at] + (b"\t" if good[pad_at:pad_at + 1] == b" " else bytes([good[pad_at] ^ 1])) + good[pad_at + 1:]
    bad(fmt, "checksum_mismatch_padding_space_to_tab.safetensors", flipped)
    n = struct.unpack("<Q", good[:8])[0]
    bad(fmt, "checksum_mismatch_eight_more_padding_spaces.safetensors",
        struct.pack("<Q", n + 8) + good[8:8 + n] + b" " * 8 + good[8 + n:])
    bad(fmt, "checksum_all_zero.safetensors", ckpt(minimal, fix=False))
    at = good.index(NEEDLE) + len(NEEDLE)
    upper = good[:at] + good[at:at + 16].upper() + good[at + 16:]
    assert upper != good, "the checksum has no hex letter to capitalize"
    bad(fmt, "checksum_uppercase_hex.safetensors", upper)
    bad(fmt, "checksum_wrong_algorithm.safetensors", ckpt(minimal, checksum="crc32:0000000000000000"))
    bad(fmt, "checksum_too_short.safetensors", ckpt(minimal, checksum="xxh64:abc", fix=False))
    bad(fmt, "checksum_too_long.safetensors", ckpt(minimal, checksum="xxh64:00000000000000000"))
    bad(fmt, "checksum_field_not_canonical_whitespace.safetensors",
        ckpt_edit(good, b'"ember.checksum":"', b'"ember.checksum": "'))
    bad(fmt, "step_missing.safetensors", ckpt(minimal, drop=["ember.step"]))
    bad(fmt, "step_not_integer.safetensors", ckpt(minimal, step="1.5"))
    bad(fmt, "step_overflows_int64.safetensors", ckpt(minimal, step="9223372036854775808"))
    bad(fmt, "rng_state_float32.safetensors", ckpt({"rng.default": ("F32", [2], f32(1, 2))}))
    bad(fmt, "rng_state_three_elements.safetensors", ckpt({"rng.default": ("I64", [3], bytes(24))}))
    bad(fmt, "rng_state_2d.safetensors", ckpt({"rng.default": ("I64", [1, 2], bytes(16))}))
    bad(fmt, "rng_state_scalar.safetensors", ckpt({"rng.default": ("I64", [], bytes(8))}))
    bad(fmt, "tensor_outside_sections.safetensors", ckpt({"weights.w": ("F32", [1], f32(1))}))
    bad(fmt, "tensor_named_model_without_dot.safetensors", ckpt({"model": ("F32", [1], f32(1))}))
    bad(fmt, "tensor_bool_byte_2.safetensors", ckpt({"model.m": ("BOOL", [1], b"\x02")}))
    bad(fmt, "tensor_u64_unsupported.safetensors", ckpt({"model.u": ("U64", [1], bytes(8))}))
    bad(fmt, "metadata_value_not_string.safetensors", ckpt_edit(good, b'"ember.step":"7"', b'"ember.step":7'))


# ---------------------------------------------------------------------------------------------
# ---- IDX ----

IDX_FMT = {0x08: "B", 0x09: "b", 0x0B: ">h", 0x0C: ">i", 0x0D: ">f", 0x0E: ">d"}


def idx(code, dims, values=None, raw=None):
    head = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    if raw is not None:
        return head + raw
    f = IDX_FMT[code]
    if f in ("B", "b"):
        return head + struct.pack("%d%s" % (len(values), f), *values)
    return head + struct.pack(">%d%s" % (len(values), f[1]), *values)


def gz(b, mtime=0):
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    # a fixed mtime (0) in the header keeps the output deterministic
    return c.compress(b) + c.flush()


def idx_files():
    fmt = "idx"
    r = Rng(3)
    imgs = idx(0x08, [3, 4, 5], list(r.bytes(60)))
    seed(fmt, "uint8_images_3x4x5.idx", imgs)
    seed(fmt, "uint8_labels_8.idx", idx(0x08, [8], [0, 1, 2, 3, 4, 5, 6, 9]))
    seed(fmt, "int8_2x3.idx", idx(0x09, [2, 3], [-128, -1, 0, 1, 2, 127]))
    seed(fmt, "int16_4.idx", idx(0x0B, [4], [-32768, -2, 0, 32767]))
    seed(fmt, "int32_2x2.idx", idx(0x0C, [2, 2], [-(2**31), -1, 7, 2**31 - 1]))
    seed(fmt, "float32_3.idx", idx(0x0D, [3], [0.5, -1e30, float("inf")]))
    seed(fmt, "float64_2.idx", idx(0x0E, [2], [math.pi, -0.0]))
    seed(fmt, "zero_dim_0.idx", idx(0x08, [0], []))
    seed(fmt, "zero_middle_dim_2x0x3.idx", idx(0x0D, [2, 0, 3], []))
    seed(fmt, "eight_dims.idx", idx(0x08, [1, 2, 1, 2, 1, 2, 1, 2], list(range(16))))
    seed(fmt, "uint8_images_gzip.idx.gz", gz(imgs))
    seed(fmt, "float32_gzip.idx.gz", gz(idx(0x0D, [2, 2], [1, 2, 3, 4])))
    seed(fmt, "gzip_two_members.idx.gz", gz(imgs[:10]) + gz(imgs[10:]))

    bad(fmt, "empty_file.idx", b"")
    bad(fmt, "magic_truncated_3_bytes.idx", b"\0\0\x08")
    bad(fmt, "magic_first_byte_nonzero.idx", b"\x01\0\x08\x01" + struct.pack(">I", 1) + b"\0")
    bad(fmt, "magic_second_byte_nonzero.idx", b"\0\x01\x08\x01" + struct.pack(">I", 1) + b"\0")
    bad(fmt, "type_code_0x0a_unknown.idx", idx(0x0A, [1], raw=b"\0"))
    bad(fmt, "type_code_0xff_unknown.idx", idx(0xFF, [1], raw=b"\0"))
    bad(fmt, "type_code_0x0f_uint64_unknown.idx", idx(0x0F, [1], raw=bytes(8)))
    bad(fmt, "ndim_0.idx", b"\0\0\x08\x00")
    bad(fmt, "ndim_9.idx", idx(0x08, [1] * 9, raw=b"\0"))
    bad(fmt, "ndim_255.idx", b"\0\0\x08\xff" + bytes(4 * 255 + 1))
    bad(fmt, "dims_truncated.idx", b"\0\0\x08\x03" + struct.pack(">I", 2) + b"\0\0")
    bad(fmt, "dims_u32_max_x4_overflow_u64.idx", idx(0x08, [2**32 - 1] * 4, raw=b"\0"))
    bad(fmt, "dims_over_2pow33_bytes.idx", idx(0x08, [65536, 65536, 3], raw=b"\0" * 16))
    bad(fmt, "dims_float64_2pow32_elements.idx", idx(0x0E, [2**32 - 1], raw=b"\0" * 8))
    bad(fmt, "dims_zero_with_int64_stride_overflow.idx", idx(0x08, [0, 2**32 - 1, 2**32 - 1, 2**32 - 1], raw=b""))
    bad(fmt, "dims_zero_with_stride_2pow64.idx", idx(0x0D, [2**32 - 1, 0, 2**32 - 1, 2], raw=b""))
    bad(fmt, "data_truncated_by_one.idx", imgs[:-1])
    bad(fmt, "data_missing.idx", imgs[:16])
    bad(fmt, "data_int16_odd_length.idx", idx(0x0B, [2], raw=b"\0\1\2"))
    bad(fmt, "data_claims_2pow33_holds_16_bytes.idx", idx(0x08, [2, 2**31, 2], raw=bytes(16)))
    bad(fmt, "data_trailing_byte.idx", imgs + b"\0")
    bad(fmt, "data_trailing_8KiB.idx", imgs + bytes(8192))
    gimgs = gz(imgs)
    bad(fmt, "gzip_header_only.idx.gz", gimgs[:10])
    bad(fmt, "gzip_truncated_deflate.idx.gz", gimgs[: len(gimgs) // 2])
    bad(fmt, "gzip_missing_trailer.idx.gz", gimgs[:-8])
    bad(fmt, "gzip_crc_mismatch.idx.gz", gimgs[:-8] + bytes([gimgs[-8] ^ 0xFF]) + gimgs[-7:])
    bad(fmt, "gzip_isize_mismatch.idx.gz", gimgs[:-4] + struct.pack("<I", len(imgs) + 1))
    bad(fmt, "gzip_bad_block_type.idx.gz", gimgs[:10] + b"\x07" + gimgs[11:])
    bad(fmt, "gzip_bad_method.idx.gz", gimgs[:2] + b"\x07" + gimgs[3:])
    bad(fmt, "gzip_reserved_flag_bits.idx.gz", gimgs[:3] + b"\xe0" + gimgs[4:])
    bad(fmt, "gzip_of_truncated_idx.idx.gz", gz(imgs[:-5]))
    bad(fmt, "gzip_of_bad_magic.idx.gz", gz(b"\x01\x02" + imgs[2:]))
    bad(fmt, "gzip_second_member_corrupt.idx.gz", gz(imgs[:10]) + gz(imgs[10:])[:-6])
    bad(fmt, "gzip_zeros_4MiB_claims_8GiB.idx.gz", gz(idx(0x08, [2, 2**31, 2], raw=bytes(4 << 20))))


# ---------------------------------------------------------------------------------------------
# ---- CIFAR binary ----

def cifar_record(labels, r):
    return bytes(labels) + r.bytes(3072)


def cifar_files():
    fmt = "cifar"
    r = Rng(4)
    c10 = [cifar_record([k], r) for k in (3, 0, 9)]
    c100 = [cifar_record(l, r) for l in ([19, 99], [0, 0], [7, 42])]
    seed(fmt, "cifar10_one_record.bin", c10[0])
    seed(fmt, "cifar10_three_records.bin", b"".join(c10))
    seed(fmt, "cifar100_one_record.bin", c100[0])
    seed(fmt, "cifar100_three_records.bin", b"".join(c100))

    one10, one100 = c10[0], c100[0]
    bad(fmt, "cifar10_empty_file.bin", b"")
    bad(fmt, "cifar10_label_only.bin", one10[:1])
    bad(fmt, "cifar10_truncated_in_red_plane.bin", one10[:1 + 512])
    bad(fmt, "cifar10_truncated_in_green_plane.bin", one10[:1 + 1024 + 512])
    bad(fmt, "cifar10_truncated_in_blue_plane.bin", one10[:1 + 2048 + 512])
    bad(fmt, "cifar10_one_byte_short.bin", one10[:-1])
    bad(fmt, "cifar10_one_byte_extra.bin", one10 + b"\0")
    bad(fmt, "cifar10_second_record_label_only.bin", one10 + b"\x01")
    bad(fmt, "cifar10_second_record_truncated.bin", one10 + c10[1][:2000])
    bad(fmt, "cifar10_label_10.bin", bytes([10]) + one10[1:])
    bad(fmt, "cifar10_label_255.bin", bytes([255]) + one10[1:])
    bad(fmt, "cifar10_third_record_label_10.bin", c10[0] + c10[1] + bytes([10]) + c10[2][1:])
    bad(fmt, "cifar10_cifar100_record_size.bin", one100)
    bad(fmt, "cifar10_size_3072_multiple.bin", r.bytes(3072 * 2))
    bad(fmt, "cifar100_empty_file.bin", b"")
    bad(fmt, "cifar100_labels_only.bin", one100[:2])
    bad(fmt, "cifar100_truncated_in_red_plane.bin", one100[:2 + 700])
    bad(fmt, "cifar100_truncated_in_green_plane.bin", one100[:2 + 1024 + 700])
    bad(fmt, "cifar100_truncated_in_blue_plane.bin", one100[:2 + 2048 + 700])
    bad(fmt, "cifar100_one_byte_short.bin", one100[:-1])
    bad(fmt, "cifar100_one_byte_extra.bin", one100 + b"\0")
    bad(fmt, "cifar100_cifar10_record_size.bin", one10)
    bad(fmt, "cifar100_coarse_label_20.bin", bytes([20, 5]) + one100[2:])
    bad(fmt, "cifar100_coarse_label_255.bin", bytes([255, 5]) + one100[2:])
    bad(fmt, "cifar100_fine_label_100.bin", bytes([5, 100]) + one100[2:])
    bad(fmt, "cifar100_fine_label_255.bin", bytes([5, 255]) + one100[2:])
    bad(fmt, "cifar100_second_record_fine_label_100.bin", one100 + bytes([1, 100]) + c100[1][2:])
    bad(fmt, "cifar100_second_record_truncated.bin", one100 + c100[1][:3000])


# ---------------------------------------------------------------------------------------------
# ---- images (stb_image through ImageFolder) ----

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def ihdr(w, h, depth=8, color=2, comp=0, filt=0, interlace=0):
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, comp, filt, interlace))


PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png(w, h, rows, depth=8, color=2, extra=b"", interlace=0, filters=None):
    """rows: list of raw scanline bytes (without filter bytes), or for interlace=1 a function
    (x, y) -> pixel bytes."""
    if interlace:
        raw = b""
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                  (0, 1, 1, 2)]
        for x0, y0, dx, dy in passes:
            xs = range(x0, w, dx)
            ys = range(y0, h, dy)
            if len(xs) == 0 or len(ys) == 0:
                continue
            for y in ys:
                raw += b"\0" + b"".join(rows(x, y) for x in xs)
    else:
        raw = b""
        for i, row in enumerate(rows):
            f = filters[i % len(filters)] if filters else 0
            raw += bytes([f]) + png_filter(row, f, rows[i - 1] if i else bytes(len(row)), depth, color)
    return (PNG_SIG + ihdr(w, h, depth, color, interlace=interlace) + extra +
            png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b""))


def png_filter(row, f, prev, depth, color):
    """Applies PNG filter type f (0-4) to a scanline."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    bpp = max(1, channels * depth // 8)
    outb = bytearray()
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if f == 0:
            p = 0
        elif f == 1:
            p = a
        elif f == 2:
            p = b
        elif f == 3:
            p = (a + b) // 2
        else:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        outb.append((x - p) & 0xFF)
    return bytes(outb)


def bmp(w, h, bpp, pixel_rows, palette=b"", height_sign=1, compression=0):
    row_bytes = ((w * bpp + 31) // 32) * 4
    data = b"".join(row + bytes(row_bytes - len(row)) for row in pixel_rows)
    off = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, w, height_sign * h, 1, bpp, compression, len(data), 2835, 2835,
                       len(palette) // 4, 0)
    return b"BM" + struct.pack("<IHHI", off + len(data), 0, 0, off) + info + palette + data


def gif(w, h, pixels, palette):
    """A GIF87a with a 4-colour global palette and LZW codes kept at 3 bits by a clear code
    after every two pixels."""
    codes = []
    for i, p in enumerate(pixels):
        if i % 2 == 0:
            codes.append(4)  # clear
        codes.append(p)
    codes.append(5)  # end of information
    bits, nbits, data = 0, 0, bytearray()
    for c in codes:
        bits |= c << nbits
        nbits += 3
        while nbits >= 8:
            data.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8
    if nbits:
        data.append(bits & 0xFF)
    blocks = b"".join(bytes([len(data[i:i + 255])]) + bytes(data[i:i + 255]) for i in range(0, len(data), 255))
    return (b"GIF87a" + struct.pack("<HHBBB", w, h, 0x81, 0, 0) + palette +
            b"," + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02" + blocks + b"\x00;")


def tga(w, h, pixels_bgr, rle=False):
    head = struct.pack("<BBBHHBHHHHBB", 0, 0, 10 if rle else 2, 0, 0, 0, 0, 0, w, h, 24, 0)
    if not rle:
        return head + pixels_bgr
    body = b""
    for i in range(0, len(pixels_bgr), 3):  # raw packets of one pixel each
        body += b"\x00" + pixels_bgr[i:i + 3]
    return head + body


# A baseline JPEG encoder (8x8 DCT, one quantization table, one Huffman table pair in which every
# symbol has an 8-bit code), enough for valid seeds of stb_image's JPEG decoder.
ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27,
          20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
          58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63]
DC_SYMBOLS = list(range(12))
AC_SYMBOLS = [0x00, 0xF0] + [(run << 4) | size for run in range(16) for size in range(1, 11)]


def jpeg(w, h, planes, quant=8):
    """planes: 1 or 3 lists of h*w samples (Y or Y, Cb, Cr), 4:4:4."""
    def marker(m, payload):
        return b"\xff" + bytes([m]) + struct.pack(">H", len(payload) + 2) + payload

    def dht(cls, symbols):
        counts = [0] * 16
        counts[7] = len(symbols)
        return bytes([cls << 4]) + bytes(counts) + bytes(symbols)

    dc_code = {s: i for i, s in enumerate(DC_SYMBOLS)}
    ac_code = {s: i for i, s in enumerate(AC_SYMBOLS)}
    bits = []

    def put(v, n):
        for k in range(n - 1, -1, -1):
            bits.append((v >> k) & 1)

    def category(v):
        s = abs(v).bit_length()
        return s, (v if v >= 0 else v + (1 << s) - 1)

    cos = [[math.cos((2 * x + 1) * u * math.pi / 16) for x in range(8)] for u in range(8)]
    pred = [0] * len(planes)
    for by in range(0, h, 8):
        for bx in range(0, w, 8):
            for ci, plane in enumerate(planes):
                blk = [[plane[min(by + y, h - 1) * w + min(bx + x, w - 1)] - 128 for x in range(8)] for y in range(8)]
                coef = [0] * 64
                for v in range(8):
                    for u in range(8):
                        s = sum(blk[y][x] * cos[u][x] * cos[v][y] for y in range(8) for x in range(8))
                        cu = 1 / math.sqrt(2) if u == 0 else 1
                        cv = 1 / math.sqrt(2) if v == 0 else 1
                        coef[v * 8 + u] = int(round(0.25 * cu * cv * s / quant))
                zz = [coef[ZIGZAG[k]] for k in range(64)]
                size, val = category(zz[0] - pred[ci])
                pred[ci] = zz[0]
                put(dc_code[size], 8)
                put(val, size)
                run = 0
                last = max([k for k in range(1, 64) if zz[k] != 0], default=0)
                for k in range(1, last + 1):
                    if zz[k] == 0:
                        run += 1
                        continue
                    while run > 15:
                        put(ac_code[0xF0], 8)
                        run -= 16
                    size, val = category(zz[k])
                    put(ac_code[(run << 4) | size], 8)
                    put(val, size)
                    run = 0
                if last < 63:
                    put(ac_code[0x00], 8)
    while len(bits) % 8:
        bits.append(1)
    scan = bytearray()
    for i in range(0, len(bits), 8):
        b = int("".join(map(str, bits[i:i + 8])), 2)
        scan.append(b)
        if b == 0xFF:
            scan.append(0)
    nc = len(planes)
    sof = struct.pack(">BHHB", 8, h, w, nc) + b"".join(bytes([i + 1, 0x11, 0]) for i in range(nc))
    sos = bytes([nc]) + b"".join(bytes([i + 1, 0x00]) for i in range(nc)) + b"\x00\x3f\x00"
    return (b"\xff\xd8" + marker(0xDB, b"\x00" + bytes([quant]) * 64) + marker(0xC0, sof) +
            marker(0xC4, dht(0, DC_SYMBOLS)) + marker(0xC4, dht(1, AC_SYMBOLS)) +
            marker(0xDA, sos) + bytes(scan) + b"\xff\xd9")


def image_files():
    fmt = "image"
    r = Rng(5)
    w, h = 5, 4
    rgb_rows = [r.bytes(3 * w) for _ in range(h)]
    seed(fmt, "png_rgb8_5x4.png", png(w, h, rgb_rows))
    seed(fmt, "png_rgb8_all_filters.png", png(w, h, rgb_rows, filters=[1, 2, 3, 4]))
    seed(fmt, "png_gray8.png", png(w, h, [r.bytes(w) for _ in range(h)], color=0))
    seed(fmt, "png_gray1.png", png(16, 2, [b"\xa5\x0f", b"\xf0\x5a"], depth=1, color=0))
    seed(fmt, "png_gray_alpha8.png", png(w, h, [r.bytes(2 * w) for _ in range(h)], color=4))
    seed(fmt, "png_rgba8.png", png(w, h, [r.bytes(4 * w) for _ in range(h)], color=6))
    seed(fmt, "png_rgb16.png", png(w, h, [r.bytes(6 * w) for _ in range(h)], depth=16))
    seed(fmt, "png_palette_trns.png",
         png(w, h, [bytes(r.next() % 4 for _ in range(w)) for _ in range(h)], color=3,
             extra=png_chunk(b"PLTE", r.bytes(12)) + png_chunk(b"tRNS", b"\xff\x80\x00")))
    seed(fmt, "png_adam7_interlaced.png", png(9, 9, lambda x, y: bytes([x * 20, y * 20, (x * y) & 255]), interlace=1))
    bmp_rows = [r.bytes(3 * w) for _ in range(h)]
    seed(fmt, "bmp_24bit.bmp", bmp(w, h, 24, bmp_rows))
    seed(fmt, "bmp_24bit_top_down.bmp", bmp(w, h, 24, bmp_rows, height_sign=-1))
    seed(fmt, "bmp_8bit_palette.bmp", bmp(w, h, 8, [bytes(r.next() % 4 for _ in range(w)) for _ in range(h)],
                                          palette=b"".join(r.bytes(3) + b"\0" for _ in range(4))))
    seed(fmt, "gif87a_4_colours.gif", gif(w, h, [r.next() % 4 for _ in range(w * h)], r.bytes(12)))
    seed(fmt, "ppm_p6.ppm", b"P6\n# comment\n%d %d\n255\n" % (w, h) + r.bytes(3 * w * h))
    seed(fmt, "pgm_p5.pgm", b"P5 %d %d 255\n" % (w, h) + r.bytes(w * h))
    seed(fmt, "tga_24bit.tga", tga(w, h, r.bytes(3 * w * h)))
    seed(fmt, "tga_24bit_rle.tga", tga(w, h, r.bytes(3 * w * h), rle=True))
    seed(fmt, "hdr_rgbe_flat.hdr", b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2 +X 3\n" + r.bytes(4 * 6))
    # Truncated pixel data: stb 2.27 left these pixels uninitialized (an unchecked stbi__getn);
    # Ember's reader makes them 0. tests/io/test_crafted_files.cpp checks the decoded bytes.
    seed(fmt, "ppm_truncated_pixels_zero_filled.ppm", b"P6\n4 4\n255\n" + b"\x80" * 10)
    seed(fmt, "tga_truncated_rows_zero_filled.tga", tga(4, 4, b"\x80" * 9))
    seed(fmt, "hdr_flat_truncated_zero_filled.hdr",
         b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2 +X 2\n" + bytes([128, 128, 128, 129]))
    jw, jh = 12, 10
    seed(fmt, "jpeg_gray_12x10.jpg", jpeg(jw, jh, [[(x * 20 + y * 5) & 255 for y in range(jh) for x in range(jw)]]))
    seed(fmt, "jpeg_ycbcr_12x10.jpg", jpeg(jw, jh, [[(x * 20) & 255 for y in range(jh) for x in range(jw)],
                                                    [128 + (y * 3) for y in range(jh) for x in range(jw)],
                                                    [100 for _ in range(jw * jh)]]))

    good = png(w, h, rgb_rows)
    ihdr_end = 8 + 8 + 13 + 4

    def png_with(header, body=None):
        return PNG_SIG + header + (body if body is not None else good[ihdr_end:])

    def empty_idat(w_, h_, depth=8, color=2):
        return PNG_SIG + ihdr(w_, h_, depth, color) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b"")

    bad(fmt, "empty_file.png", b"")
    bad(fmt, "text_not_an_image.png", b"not an image, just some text\n")
    bad(fmt, "png_signature_only.png", PNG_SIG)
    bad(fmt, "png_truncated_in_ihdr.png", good[:20])
    bad(fmt, "png_truncated_in_idat.png", good[:ihdr_end + 20])
    bad(fmt, "png_first_chunk_not_ihdr.png", PNG_SIG + png_chunk(b"IDAT", b"") + good[8:])
    bad(fmt, "png_width_0.png", png_with(ihdr(0, h)))
    bad(fmt, "png_height_0.png", png_with(ihdr(w, 0)))
    bad(fmt, "png_width_2pow31.png", png_with(ihdr(2**31, 1)))
    bad(fmt, "png_width_2pow24_plus_1.png", png_with(ihdr(2**24 + 1, 1)))
    bad(fmt, "png_width_70000_over_side_limit.png", empty_idat(70000, 1))
    bad(fmt, "png_65535x65535_over_pixel_limit.png", empty_idat(65535, 65535))
    bad(fmt, "png_16385x16384_over_pixel_limit.png", empty_idat(16385, 16384))
    bad(fmt, "png_16384x16384_rgba16_tiny_idat.png", empty_idat(16384, 16384, depth=16, color=6))
    bad(fmt, "png_8192x8192_rgb8_tiny_idat.png", empty_idat(8192, 8192))
    bad(fmt, "png_bit_depth_3.png", png_with(ihdr(w, h, depth=3)))
    bad(fmt, "png_rgb_bit_depth_4.png", png_with(ihdr(w, h, depth=4)))
    bad(fmt, "png_color_type_5.png", png_with(ihdr(w, h, color=5)))
    bad(fmt, "png_compression_method_1.png", png_with(ihdr(w, h, comp=1)))
    bad(fmt, "png_filter_method_1.png", png_with(ihdr(w, h, filt=1)))
    bad(fmt, "png_interlace_method_2.png", png_with(ihdr(w, h, interlace=2)))
    bad(fmt, "png_no_idat.png", PNG_SIG + ihdr(w, h) + png_chunk(b"IEND", b""))
    bad(fmt, "png_idat_not_zlib.png", PNG_SIG + ihdr(w, h) + png_chunk(b"IDAT", b"\xff" * 40) + png_chunk(b"IEND", b""))
    bad(fmt, "png_idat_truncated_zlib.png",
        PNG_SIG + ihdr(w, h) + png_chunk(b"IDAT", zlib.compress(b"".join(b"\0" + x for x in rgb_rows))[:12]) + png_chunk(b"IEND", b""))
    bad(fmt, "png_not_enough_pixels.png", png(w, h, rgb_rows)[:ihdr_end] +
        png_chunk(b"IDAT", zlib.compress(b"".join(b"\0" + x for x in rgb_rows[:2]))) + png_chunk(b"IEND", b""))
    bad(fmt, "png_bad_filter_type_5.png", PNG_SIG + ihdr(w, h) +
        png_chunk(b"IDAT", zlib.compress(b"".join(b"\x05" + x for x in rgb_rows))) + png_chunk(b"IEND", b""))
    bad(fmt, "png_palette_without_plte.png", png(w, h, [bytes(w) for _ in range(h)], color=3))
    bad(fmt, "png_plte_not_multiple_of_3.png", png(w, h, [bytes(w) for _ in range(h)], color=3, extra=png_chunk(b"PLTE", b"\0" * 10)))
    bad(fmt, "png_chunk_length_2pow31.png", PNG_SIG + ihdr(w, h) + struct.pack(">I", 2**31) + b"IDAT" + b"\0" * 16)
    bad(fmt, "png_idat_length_2pow30.png", PNG_SIG + ihdr(w, h) + struct.pack(">I", 2**30) + b"IDAT" + b"\0" * 16)
    bad(fmt, "png_idat_length_past_end_of_file.png", PNG_SIG + ihdr(w, h) + struct.pack(">I", 1000) + b"IDAT" + b"\0" * 16)
    bad(fmt, "png_critical_unknown_chunk.png", PNG_SIG + ihdr(w, h) + png_chunk(b"ABCD", b"x") + good[ihdr_end:])
    bad(fmt, "bmp_truncated_header.bmp", bmp(w, h, 24, bmp_rows)[:30])
    bad(fmt, "bmp_bpp_7.bmp", bmp(w, h, 24, bmp_rows)[:28] + struct.pack("<H", 7) + bmp(w, h, 24, bmp_rows)[30:])
    bad(fmt, "bmp_100000x100000.bmp", bmp(1, 1, 24, [b"\0\0\0"])[:18] + struct.pack("<ii", 100000, 100000) + bmp(1, 1, 24, [b"\0\0\0"])[26:])
    bad(fmt, "bmp_width_0.bmp", bmp(1, 1, 24, [b"\0\0\0"])[:18] + struct.pack("<ii", 0, 1) + bmp(1, 1, 24, [b"\0\0\0"])[26:])
    bad(fmt, "bmp_rle8_compression_unsupported.bmp", bmp(w, h, 8, [bytes(w)] * h, palette=bytes(16), compression=1))
    bad(fmt, "gif_truncated_header.gif", b"GIF89a\x05\x00")
    bad(fmt, "gif_65535x65535.gif", b"GIF87a" + struct.pack("<HHBBB", 65535, 65535, 0x81, 0, 0) + bytes(12) + b";")
    bad(fmt, "gif_no_image_descriptor.gif", b"GIF87a" + struct.pack("<HHBBB", 2, 2, 0x81, 0, 0) + bytes(12) + b";")
    bad(fmt, "gif_lzw_code_size_13.gif",
        b"GIF87a" + struct.pack("<HHBBB", 2, 2, 0x81, 0, 0) + bytes(12) + b"," + struct.pack("<HHHHB", 0, 0, 2, 2, 0) + b"\x0d\x02\xff\xff\x00;")
    bad(fmt, "ppm_100000x100000.ppm", b"P6\n100000 100000\n255\n" + bytes(16))
    bad(fmt, "ppm_maxval_65536.ppm", b"P6\n2 2\n65536\n" + bytes(24))
    bad(fmt, "ppm_non_numeric_size.ppm", b"P6\nab cd\n255\n" + bytes(12))
    bad(fmt, "jpeg_soi_only.jpg", b"\xff\xd8")
    jgood = jpeg(8, 8, [[128] * 64])
    sof_at = jgood.index(b"\xff\xc0")
    bad(fmt, "jpeg_truncated_after_sof.jpg", jgood[: sof_at + 19])
    bad(fmt, "jpeg_width_0.jpg", jgood[: sof_at + 7] + b"\0\0" + jgood[sof_at + 9:])
    bad(fmt, "jpeg_65500x65500.jpg", jgood[: sof_at + 5] + struct.pack(">HH", 65500, 65500) + jgood[sof_at + 9:])
    bad(fmt, "jpeg_no_huffman_tables.jpg",
        b"".join(part for part in [jgood[:jgood.index(b"\xff\xc4")], jgood[jgood.index(b"\xff\xda"):]]))
    bad(fmt, "jpeg_progressive_sof2_truncated.jpg", jgood[:sof_at] + b"\xff\xc2" + jgood[sof_at + 2: sof_at + 40])
    bad(fmt, "hdr_32768x32768_flat.hdr", b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 32768 +X 32768\n" + bytes(16))
    bad(fmt, "hdr_8192x8192_tiny.hdr", b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 8192 +X 8192\n" + bytes(16))
    bad(fmt, "hdr_bad_format.hdr", b"#?RADIANCE\nFORMAT=32-bit_rle_xyze\n\n-Y 2 +X 2\n" + bytes(16))
    bad(fmt, "psd_30000x30000.psd", b"8BPS" + struct.pack(">HxxxxxxHIIHH", 1, 3, 30000, 30000, 8, 3) + bytes(64))


# ---------------------------------------------------------------------------------------------
# ---- tokenizer JSON ----

def tokenizer_files():
    fmt = "tokenizer"
    seed(fmt, "bpe_bytes_only.json", '{"type":"bpe","version":1,"merges":[]}\n')
    seed(fmt, "bpe_merges_and_specials.json", compact({
        "type": "bpe", "version": 1,
        "merges": [[104, 101], [108, 108], [256, 257], [32, 119], [111, 114], [260, 108]],
        "special_tokens": {"<|endoftext|>": 262, "<pad>": 263}}) + "\n")
    seed(fmt, "bpe_pretty_printed_unicode_special.json", json.dumps({
        "version": 1, "type": "bpe", "merges": [[195, 169]], "special_tokens": {"\u00e9\u00e9": 257}}, indent=2))
    seed(fmt, "char_ascii.json", compact({"type": "char", "version": 1, "vocab": [10, 32] + list(range(97, 123))}))
    seed(fmt, "char_unicode.json", compact({"type": "char", "version": 1, "vocab": [0, 65, 233, 0x4E2D, 0x1F600, 0x10FFFF]}))
    seed(fmt, "char_empty_vocab.json", '{"type": "char", "version": 1, "vocab": []}')

    b = lambda **kw: compact(dict({"type": "bpe", "version": 1, "merges": [[104, 101]]}, **kw))
    c = lambda **kw: compact(dict({"type": "char", "version": 1, "vocab": [97, 98]}, **kw))
    deep = "[" * 30000 + "]" * 30000
    for prefix in ("bpe", "char"):
        bad(fmt, prefix + "_empty_file.json", b"")
        bad(fmt, prefix + "_not_json.json", "hello")
        bad(fmt, prefix + "_truncated_json.json", b()[:20] if prefix == "bpe" else c()[:20])
        bad(fmt, prefix + "_invalid_utf8_in_string.json", ('{"type":"%s","version":1,"x":"' % prefix).encode() + b"\xff\xfe\"}")
        bad(fmt, prefix + "_top_level_array.json", "[1, 2]")
        bad(fmt, prefix + "_top_level_nested_30000_deep.json", deep)
        bad(fmt, prefix + "_missing_type.json", '{"version":1}')
        bad(fmt, prefix + "_type_number.json", '{"type":1,"version":1}')
        bad(fmt, prefix + "_wrong_type.json", '{"type":"%s","version":1,"merges":[],"vocab":[]}' % ("char" if prefix == "bpe" else "bpe"))
        bad(fmt, prefix + "_missing_version.json", '{"type":"%s"}' % prefix)
        bad(fmt, prefix + "_version_2.json", '{"type":"%s","version":2,"merges":[],"vocab":[]}' % prefix)
        bad(fmt, prefix + "_version_string.json", '{"type":"%s","version":"1","merges":[],"vocab":[]}' % prefix)
        bad(fmt, prefix + "_version_float.json", '{"type":"%s","version":1.0,"merges":[],"vocab":[]}' % prefix)
        bad(fmt, prefix + "_version_nested_30000_deep.json", '{"type":"%s","version":%s}' % (prefix, deep))
        bad(fmt, prefix + "_trailing_garbage.json", '{"type":"%s","version":1,"merges":[],"vocab":[]} x' % prefix)
        bad(fmt, prefix + "_comment.json", '{"type":"%s", /* c */ "version":1,"merges":[],"vocab":[]}' % prefix)
        bad(fmt, prefix + "_nan_literal.json", '{"type":"%s","version":NaN}' % prefix)
    bad(fmt, "bpe_missing_merges.json", '{"type":"bpe","version":1}')
    bad(fmt, "bpe_merges_object.json", b(merges={"a": 1}))
    bad(fmt, "bpe_merge_single_id.json", b(merges=[[104]]))
    bad(fmt, "bpe_merge_triple.json", b(merges=[[104, 101, 108]]))
    bad(fmt, "bpe_merge_not_array.json", b(merges=[104]))
    bad(fmt, "bpe_merge_id_string.json", b(merges=[["h", "e"]]))
    bad(fmt, "bpe_merge_id_float.json", '{"type":"bpe","version":1,"merges":[[104.5,101]]}')
    bad(fmt, "bpe_merge_id_negative.json", b(merges=[[-1, 101]]))
    bad(fmt, "bpe_merge_id_forward_reference.json", b(merges=[[104, 256]]))
    bad(fmt, "bpe_merge_id_2pow63.json", b(merges=[[2**63, 101]]))
    bad(fmt, "bpe_merge_id_2pow64.json", '{"type":"bpe","version":1,"merges":[[18446744073709551616,101]]}')
    bad(fmt, "bpe_merge_id_nested_30000_deep.json", '{"type":"bpe","version":1,"merges":[[%s,1]]}' % deep)
    bad(fmt, "bpe_merge_nested_30000_deep.json", '{"type":"bpe","version":1,"merges":[%s]}' % deep)
    # merge r joins token 255 + r with itself: token 256 + r is 2^(r+1) bytes long
    bad(fmt, "bpe_token_length_doubles_40_times.json", b(merges=[[97, 97]] + [[256 + r, 256 + r] for r in range(39)]))
    bad(fmt, "bpe_duplicate_merge.json", b(merges=[[104, 101], [108, 108], [104, 101]]))
    bad(fmt, "bpe_special_tokens_array.json", b(special_tokens=["<eos>"]))
    bad(fmt, "bpe_special_token_id_string.json", b(special_tokens={"<eos>": "257"}))
    bad(fmt, "bpe_special_token_id_nested_30000_deep.json",
        '{"type":"bpe","version":1,"merges":[],"special_tokens":{"<eos>":%s}}' % deep)
    bad(fmt, "bpe_special_token_id_too_small.json", b(special_tokens={"<eos>": 256}))
    bad(fmt, "bpe_special_token_id_too_large.json", b(special_tokens={"<eos>": 258}))
    bad(fmt, "bpe_special_token_id_negative.json", b(special_tokens={"<eos>": -1}))
    bad(fmt, "bpe_special_token_id_2pow63_minus_1.json", b(special_tokens={"<eos>": 2**63 - 1}))
    bad(fmt, "bpe_special_tokens_share_id.json", b(special_tokens={"<a>": 257, "<b>": 257}))
    bad(fmt, "bpe_special_token_empty.json", b(special_tokens={"": 257}))
    bad(fmt, "char_missing_vocab.json", '{"type":"char","version":1}')
    bad(fmt, "char_vocab_object.json", c(vocab={"a": 97}))
    bad(fmt, "char_vocab_string_entry.json", c(vocab=["a", "b"]))
    bad(fmt, "char_vocab_float_entry.json", '{"type":"char","version":1,"vocab":[97.0]}')
    bad(fmt, "char_vocab_negative.json", c(vocab=[-1, 97]))
    bad(fmt, "char_vocab_surrogate_d800.json", c(vocab=[97, 0xD800]))
    bad(fmt, "char_vocab_over_10ffff.json", c(vocab=[97, 0x110000]))
    bad(fmt, "char_vocab_2pow63.json", c(vocab=[2**63]))
    bad(fmt, "char_vocab_2pow32_plus_97.json", c(vocab=[2**32 + 97]))
    bad(fmt, "char_vocab_not_increasing.json", c(vocab=[98, 97]))
    bad(fmt, "char_vocab_duplicate.json", c(vocab=[97, 97]))
    bad(fmt, "char_vocab_entry_nested_30000_deep.json", '{"type":"char","version":1,"vocab":[%s]}' % deep)


# ---------------------------------------------------------------------------------------------
# ---- TensorBoard event files ----

def crc32c(b):
    crc = 0xFFFFFFFF
    for x in b:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(b):
    c = crc32c(b)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(data, len_crc=None, data_crc=None):
    n = struct.pack("<Q", len(data))
    return (n + struct.pack("<I", masked(n) if len_crc is None else len_crc) + data +
            struct.pack("<I", masked(data) if data_crc is None else data_crc))


def varint(v):
    o = bytearray()
    while v >= 0x80:
        o.append((v & 0x7F) | 0x80)
        v >>= 7
    o.append(v)
    return bytes(o)


def key(field, wire):
    return varint((field << 3) | wire)


def ld(field, payload):
    return key(field, 2) + varint(len(payload)) + payload


def event(wall_time=1.5, step=None, file_version=None, values=()):
    e = key(1, 1) + struct.pack("<d", wall_time)
    if step is not None:
        e += key(2, 0) + varint(step & 0xFFFFFFFFFFFFFFFF)
    if file_version is not None:
        e += ld(3, file_version)
    if values:
        e += ld(5, b"".join(ld(1, v) for v in values))
    return e


def scalar_value(tag, x):
    return ld(1, tag) + key(2, 5) + struct.pack("<f", x)


def tensorboard_files():
    fmt = "tensorboard"
    first = record(event(file_version=b"brain.Event:2"))
    scalar = record(event(step=3, values=[scalar_value(b"train/loss", 0.25)]))
    img_png = png(2, 2, [b"\xff\0\0\0\xff\0", b"\0\0\xff\xff\xff\xff"])
    image = record(event(step=1, values=[ld(1, b"samples") + ld(4, key(1, 0) + varint(2) + key(2, 0) + varint(2) +
                                                             key(3, 0) + varint(3) + ld(4, img_png))]))
    hist = ld(1, b"weights") + ld(5, key(1, 1) + struct.pack("<d", -1) + key(2, 1) + struct.pack("<d", 2) +
                                   key(3, 1) + struct.pack("<d", 4) + key(4, 1) + struct.pack("<d", 3) +
                                   key(5, 1) + struct.pack("<d", 6) +
                                   ld(6, struct.pack("<3d", 0, 1, 2)) + ld(7, struct.pack("<3d", 1, 2, 1)) +
                                   key(6, 1) + struct.pack("<d", 3) + key(7, 1) + struct.pack("<d", 0))
    histogram = record(event(step=2, values=[hist]))
    seed(fmt, "empty_file.tfevents", b"")
    seed(fmt, "file_version_only.tfevents", first)
    seed(fmt, "scalars.tfevents", first + scalar + record(event(step=-1, values=[scalar_value(b"a", -1.0), scalar_value(b"b", 1e30)])))
    seed(fmt, "image.tfevents", first + image)
    seed(fmt, "histogram.tfevents", first + histogram)
    seed(fmt, "unknown_fields.tfevents", record(event(step=5) + key(9, 0) + varint(300) + key(10, 5) + b"abcd" +
                                                ld(11, b"xyz") + key(12, 1) + bytes(8)))
    seed(fmt, "empty_record.tfevents", record(b""))
    # An empty packed field is valid protobuf: read_tensorboard_events once passed the null data()
    # of an empty vector to memcpy here (UBSan: nonnull argument), found by fuzz_tensorboard.
    seed(fmt, "histogram_empty_packed_buckets.tfevents",
         first + record(event(step=4, values=[ld(1, b"h") + ld(5, ld(6, b"") + ld(7, b""))])))

    ev = event(step=3, values=[scalar_value(b"loss", 0.5)])
    good = record(ev)
    n = len(ev)
    bad(fmt, "header_truncated_5_bytes.tfevents", good[:5])
    bad(fmt, "header_truncated_11_bytes.tfevents", good[:11])
    bad(fmt, "length_crc_mismatch.tfevents", record(ev, len_crc=masked(struct.pack("<Q", n)) ^ 1))
    bad(fmt, "length_crc_unmasked.tfevents", record(ev, len_crc=crc32c(struct.pack("<Q", n))))
    bad(fmt, "length_2pow60_valid_crc.tfevents", struct.pack("<Q", 2**60) + struct.pack("<I", masked(struct.pack("<Q", 2**60))) + ev + bytes(4))
    bad(fmt, "length_2pow64_minus_1_valid_crc.tfevents",
        struct.pack("<Q", 2**64 - 1) + struct.pack("<I", masked(struct.pack("<Q", 2**64 - 1))) + ev + bytes(4))
    bad(fmt, "data_crc_truncated_to_3_bytes.tfevents", good[:-4] + good[-4:-1])
    bad(fmt, "data_crc_missing.tfevents", good[:-4])
    bad(fmt, "data_crc_mismatch.tfevents", record(ev, data_crc=masked(ev) ^ 0x80000000))
    bad(fmt, "data_crc_of_other_data.tfevents", record(ev, data_crc=masked(b"other")))
    bad(fmt, "data_byte_flipped.tfevents", good[:14] + bytes([good[14] ^ 0x10]) + good[15:])
    bad(fmt, "second_record_truncated_header.tfevents", good + good[:7])
    bad(fmt, "second_record_data_crc_mismatch.tfevents", good + record(ev, data_crc=0))
    bad(fmt, "trailing_byte.tfevents", good + b"\0")
    bad(fmt, "varint_11_bytes.tfevents", record(key(2, 0) + b"\xff" * 10 + b"\x01"))
    bad(fmt, "varint_truncated.tfevents", record(key(2, 0) + b"\xff\xff"))
    bad(fmt, "key_varint_truncated.tfevents", record(b"\x80"))
    bad(fmt, "wire_type_3_start_group.tfevents", record(key(9, 3) + b"\0"))
    bad(fmt, "wire_type_4_end_group.tfevents", record(key(9, 4)))
    bad(fmt, "wire_type_6.tfevents", record(key(9, 6) + b"\0"))
    bad(fmt, "wire_type_7.tfevents", record(key(9, 7) + b"\0"))
    bad(fmt, "wall_time_truncated_fixed64.tfevents", record(key(1, 1) + b"\0\0\0\0"))
    bad(fmt, "unknown_fixed32_truncated.tfevents", record(key(9, 5) + b"\0\0"))
    bad(fmt, "file_version_length_past_end.tfevents", record(key(3, 2) + varint(100) + b"brain"))
    bad(fmt, "file_version_length_2pow63.tfevents", record(key(3, 2) + varint(2**63) + b"brain"))
    bad(fmt, "file_version_length_2pow64_minus_1.tfevents", record(key(3, 2) + varint(2**64 - 1) + b"brain"))
    bad(fmt, "summary_length_past_end.tfevents", record(key(5, 2) + varint(50) + ld(1, b"x")))
    bad(fmt, "summary_value_length_past_end.tfevents", record(ld(5, key(1, 2) + varint(30) + ld(1, b"tag"))))
    bad(fmt, "value_tag_length_past_end.tfevents", record(ld(5, ld(1, key(1, 2) + varint(9) + b"ta"))))
    bad(fmt, "simple_value_truncated.tfevents", record(ld(5, ld(1, ld(1, b"t") + key(2, 5) + b"\0\0"))))
    bad(fmt, "image_height_varint_truncated.tfevents", record(ld(5, ld(1, ld(4, key(1, 0) + b"\x80")))))
    bad(fmt, "image_encoded_length_past_end.tfevents", record(ld(5, ld(1, ld(4, key(4, 2) + varint(1000) + b"\x89PNG")))))
    bad(fmt, "image_unknown_wire_type.tfevents", record(ld(5, ld(1, ld(4, key(9, 3))))))
    bad(fmt, "histogram_packed_not_multiple_of_8.tfevents", record(ld(5, ld(1, ld(5, ld(6, bytes(12)))))))
    bad(fmt, "histogram_bucket_varint_wire_type.tfevents", record(ld(5, ld(1, ld(5, key(7, 0) + varint(3))))))
    bad(fmt, "histogram_min_truncated.tfevents", record(ld(5, ld(1, ld(5, key(1, 1) + b"\0\0\0")))))
    bad(fmt, "histogram_unpacked_bucket_truncated.tfevents", record(ld(5, ld(1, ld(5, key(6, 1) + b"\0")))))
    bad(fmt, "histogram_packed_length_past_end.tfevents", record(ld(5, ld(1, ld(5, key(6, 2) + varint(800) + bytes(8))))))


# ---------------------------------------------------------------------------------------------

def main():
    safetensors_files()
    checkpoint_files()
    idx_files()
    cifar_files()
    image_files()
    tokenizer_files()
    tensorboard_files()
    for kind in ("corpus", "crafted"):
        for fmt in FORMATS:
            d = os.path.join(FUZZ, kind, fmt)
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
    total = {"corpus": 0, "crafted": 0}
    for (kind, fmt, name), data in sorted(_written.items()):
        with open(os.path.join(FUZZ, kind, fmt, name), "wb") as f:
            f.write(data)
        total[kind] += len(data)
    for fmt in FORMATS:
        ns = sum(1 for k in _written if k[0] == "corpus" and k[1] == fmt)
        nc = sum(1 for k in _written if k[0] == "crafted" and k[1] == fmt)
        print("%-12s %3d seeds  %3d crafted" % (fmt, ns, nc))
    print("bytes: corpus %d, crafted %d" % (total["corpus"], total["crafted"]))


if __name__ == "__main__":
    main()
