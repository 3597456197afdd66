#!/usr/bin/env python3
"""Golden safetensors files for tests/io/test_safetensors.cpp, written by the reference
implementation (Python's `safetensors` package), and a check that Python reads the files Ember
writes.

    python3 tests/io/make_golden.py            # (re)writes tests/io/golden/*.safetensors
    python3 tests/io/make_golden.py --check D  # loads Ember-written files from directory D

The C++ test suite never runs Python: it reads the committed files. The values below are spelled
out again in the C++ test (kept short and exactly representable in every dtype), so a change to
either side shows up as a failure. Needs: pip install safetensors numpy torch (and xxhash for --check's checksum).
"""
import argparse
import os
import struct
import sys

import numpy as np
from safetensors.numpy import save as np_save, load as np_load

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")

# name -> (safetensors dtype, shape, values in C order)
REFERENCE = {
    "weight.f64": ("F64", (2, 3), [0.0, -1.5, 2.25, 1e300, -0.0, 5e-324]),
    "weight.f32": ("F32", (3, 2), [0.5, -2.5, 3.25, float("inf"), float("-inf"), 1e-45]),
    "half": ("F16", (4,), [1.0, -0.5, 65504.0, 2.0**-24]),
    "bf16": ("BF16", (2, 2), [1.0, -3.0, 0.15625, 2.0**100]),
    "i64": ("I64", (3,), [-(2**63), 2**63 - 1, 0]),
    "i32": ("I32", (2, 2), [-(2**31), 2**31 - 1, -1, 7]),
    "i8": ("I8", (4,), [-128, 127, 0, -1]),
    "u8": ("U8", (2, 3), [0, 255, 1, 128, 7, 42]),
    "mask": ("BOOL", (3,), [True, False, True]),
    "scalar": ("F32", (), [3.5]),
    "empty": ("F32", (0, 3), []),
    "empty_i64": ("I64", (0,), []),
}
WIDEN = {
    "i16": ("I16", (4,), [-32768, 32767, 0, -2]),
    "u16": ("U16", (3,), [0, 65535, 1234]),
    "u32": ("U32", (3,), [0, 4294967295, 70000]),
}
UNSUPPORTED = {"u64": ("U64", (2,), [0, 2**64 - 1])}
# Names that exercise sorting and JSON escaping; all F32 (1,) except where noted.
NAMES = {
    "z": ("F32", (1,), [1.0]),
    "a": ("F32", (1,), [2.0]),
    "B": ("F32", (1,), [3.0]),
    "\u00e9t\u00e9": ("F32", (1,), [4.0]),
    'tab\tquote"back\\slash/': ("F32", (1,), [5.0]),
    "ctrl\x01\x7f": ("I32", (1,), [6]),
}
NAMES_METADATA = {"note": 'line\nquote" \u00fcnicode \\ \x1f'}

NP = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
      "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
      "U16": np.uint16, "U32": np.uint32, "U64": np.uint64}


def bf16_bits(values):
    """bfloat16 bit patterns (the values above are exact in bfloat16: truncation is exact)."""
    f = np.array(values, dtype=np.float32)
    return (f.view(np.uint32) >> 16).astype(np.uint16)


def to_torch(table):
    import torch
    out = {}
    for name, (dt, shape, vals) in table.items():
        if dt == "BF16":
            out[name] = torch.tensor(vals, dtype=torch.bfloat16).reshape(shape)
        else:
            out[name] = torch.from_numpy(np.array(vals, dtype=NP[dt]).reshape(shape))
    return out


def to_numpy(table):
    """Arrays for safetensors.numpy (no bfloat16 there: such tables go through torch)."""
    return {n: np.array(v, dtype=NP[dt]).reshape(s) for n, (dt, s, v) in table.items()}


def write(name, data, metadata=None):
    path = os.path.join(GOLDEN, name)
    with open(path, "wb") as f:
        f.write(data)
    n = struct.unpack("<Q", data[:8])[0]
    print(f"{name}: {len(data)} bytes, header {n} bytes")


def make():
    from safetensors.torch import save as torch_save
    import torch
    os.makedirs(GOLDEN, exist_ok=True)
    write("reference.safetensors", torch_save(to_torch(REFERENCE), metadata={"format": "pt"}))
    write("widen.safetensors", np_save(to_numpy(WIDEN)))
    write("unsupported_u64.safetensors", np_save(to_numpy(UNSUPPORTED)))
    write("names.safetensors", np_save(to_numpy(NAMES), metadata=NAMES_METADATA))
    write("empty.safetensors", np_save({}))
    # A small PyTorch model: the names, shapes and dtypes a module's state_dict has
    # (BatchNorm's num_batches_tracked is a 0-d int64).
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(8, 3))
    model[1].num_batches_tracked += 5
    write("torch_model.safetensors", torch_save(model.state_dict(), metadata={"format": "pt"}))
    # bf16 written as raw uint16 bits through numpy must give the same bytes as torch.
    raw = np.frombuffer(torch_save({"b": torch.tensor([1.0, -3.0], dtype=torch.bfloat16)}),
                        dtype=np.uint8)
    assert raw[-4:].view(np.uint16).tolist() == bf16_bits([1.0, -3.0]).tolist()


def expect(table, loaded, label):
    bad = 0
    for name, (dt, shape, vals) in table.items():
        a = loaded[name]
        if dt == "BF16":
            got = a.float().numpy() if hasattr(a, "float") else a
            want = np.array(vals, dtype=np.float32).reshape(shape)
        else:
            got = a.numpy() if hasattr(a, "numpy") else a
            want = np.array(vals, dtype=NP[dt]).reshape(shape)
        if tuple(got.shape) != tuple(shape) or got.tobytes() != want.tobytes():
            print(f"  MISMATCH {label} {name!r}: {got!r} vs {want!r}")
            bad += 1
    return bad


def check(directory):
    """Loads the files tests/io/test_safetensors.cpp exports (EMBER_IO_EXPORT_DIR)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
    bad = 0
    ref = os.path.join(directory, "ember_reference.safetensors")
    t = load_file(ref)
    bad += expect(REFERENCE, t, "torch")
    with safe_open(ref, framework="pt") as f:
        meta = f.metadata()
    print(f"ember_reference.safetensors: torch loaded {len(t)} tensors, metadata {meta}")
    golden = open(os.path.join(GOLDEN, "reference.safetensors"), "rb").read()
    same = open(ref, "rb").read() == golden
    print(f"  bytes identical to the reference writer's file: {same}")
    bad += not same
    n = np_load(open(os.path.join(directory, "ember_names.safetensors"), "rb").read())
    bad += expect(NAMES, n, "numpy")
    print(f"ember_names.safetensors: numpy loaded {sorted(n)}")
    ck = os.path.join(directory, "ember_checkpoint.safetensors")
    with safe_open(ck, framework="pt") as f:
        keys = list(f.keys())
        meta = f.metadata()
    print(f"ember_checkpoint.safetensors: safe_open sees {len(keys)} tensors {keys}")
    print(f"  metadata {meta}")
    # The checksum as docs/serialization.md defines it: XXH64 of the file with its 16 hex digits
    # read as '0'.
    try:
        import xxhash
        raw = bytearray(open(ck, "rb").read())
        needle = b'"ember.checksum":"xxh64:'
        at = raw.index(needle) + len(needle)
        stored = raw[at:at + 16].decode()
        raw[at:at + 16] = b"0" * 16
        ok = f"{xxhash.xxh64(bytes(raw)).intdigest():016x}" == stored
        print(f"  checksum recomputed with Python's xxhash matches: {ok}")
        bad += not ok
    except ImportError:
        print("  (pip install xxhash to recompute the checksum)")
    print("OK" if bad == 0 else f"FAILED: {bad} mismatches")
    return bad


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--check", metavar="DIR", help="load Ember-written files from DIR")
    args = p.parse_args()
    if args.check:
        sys.exit(1 if check(args.check) else 0)
    make()
