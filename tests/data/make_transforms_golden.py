#!/usr/bin/env python3
"""Writes tests/data/golden/transforms.txt: torchvision outputs for deterministic transform
parameters, read by tests/data/test_transforms.cpp (which never needs Python).

Usage: python3 tests/data/make_transforms_golden.py   (needs torch and torchvision)

Format: each input image once, then one case per two lines:
  input <id> <dtype> <dims...> : <values...>
  case <name> <op> in=<id> key=value ...
  out <dtype> <dims...> : <values...>
Images are stored in Ember's layout: uint8 HWC, float CHW.
"""
import os

import torch
import torchvision
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "transforms.txt")


def to_ember(img):  # torchvision CHW -> Ember layout
    return img.permute(1, 2, 0).contiguous() if img.dtype == torch.uint8 else img


def fmt(tag, t):
    t = to_ember(t)
    dt = {torch.uint8: "uint8", torch.float32: "float32", torch.float64: "float64"}[t.dtype]
    vals = t.flatten().tolist()
    body = " ".join(str(v) for v in vals) if dt == "uint8" else " ".join(f"{v:.7g}" for v in vals)
    return f"{tag} {dt} {' '.join(str(s) for s in t.shape)} : {body}"


lines = [f"# torch {torch.__version__}, torchvision {torchvision.__version__}"]


inputs = {}  # id(tensor) -> input id


def case(name, op, params, img, out):
    key = (img.data_ptr(), tuple(img.shape), img.dtype)
    if key not in inputs:
        inputs[key] = f"i{len(inputs)}"
        lines.append(fmt(f"input {inputs[key]}", img))
    kv = " ".join(f"{k}={v}" for k, v in params.items())
    lines.append(f"case {name} {op} in={inputs[key]} {kv}".rstrip())
    lines.append(fmt("out", out))


g = torch.Generator().manual_seed(1234)
u8 = torch.randint(0, 256, (3, 9, 11), dtype=torch.uint8, generator=g)  # CHW for torchvision
# Float inputs are multiples of 1/64, exact in a few decimal digits.
f32 = torch.randint(0, 65, (3, 9, 11), generator=g).float() / 64
f64 = torch.randint(0, 65, (2, 8, 8), generator=g).double() / 64
big_u8 = torch.randint(0, 256, (3, 12, 16), dtype=torch.uint8, generator=g)
big_f32 = torch.randint(0, 65, (3, 12, 16), generator=g).float() / 64
small = torch.arange(12, dtype=torch.uint8).reshape(1, 3, 4) * 10 + 5

NEAREST, BILINEAR = InterpolationMode.NEAREST, InterpolationMode.BILINEAR
modes = {"nearest": NEAREST, "bilinear": BILINEAR}

# ---- rotate (RandomRotation with a degenerate range; fill=0 as RandomRotation passes it) ----
for img, tag in [(u8, "u8"), (f32, "f32"), (f64, "f64")]:
    for angle in ([30.0, 90.0, -45.0, 137.5] if tag != "f64" else [30.0, 90.0]):
        for mname, mode in modes.items():
            out = F.rotate(img, angle, interpolation=mode, fill=[0.0] * img.shape[0])
            case(f"rotate_{tag}_{angle}_{mname}", "rotate",
                 dict(angle=angle, interp=mname, expand=0), img, out)
for img, tag in [(u8, "u8"), (f32, "f32")]:
    for mname, mode in modes.items():
        out = F.rotate(img, 30.0, interpolation=mode, expand=True, fill=[0.0] * img.shape[0])
        case(f"rotate_expand_{tag}_{mname}", "rotate", dict(angle=30.0, interp=mname, expand=1),
             img, out)
        out = F.rotate(img, 20.0, interpolation=mode, center=[2, 3], fill=[7.0] * img.shape[0])
        case(f"rotate_center_{tag}_{mname}", "rotate",
             dict(angle=20.0, interp=mname, expand=0, cx=2, cy=3, fill=7.0), img, out)

# ---- resize ----
for img, tag in [(big_u8, "u8"), (big_f32, "f32"), (f64, "f64")]:
    for size in ([(5, 7), (15, 19), (12, 9), (3, 16)] if tag != "f64" else [(5, 3), (11, 13)]):
        for mname, mode in modes.items():
            for aa in ([True, False] if mname == "bilinear" else [False]):
                out = F.resize(img, list(size), interpolation=mode, antialias=aa)
                case(f"resize_{tag}_{size[0]}x{size[1]}_{mname}_aa{int(aa)}", "resize",
                     dict(h=size[0], w=size[1], interp=mname, antialias=int(aa)), img, out)
    out = F.resize(img, [6])  # smaller edge
    case(f"resize_{tag}_short6", "resize", dict(h=6, w=0, interp="bilinear", antialias=1), img,
         out)

# ---- center crop ----
for img, tag in [(u8, "u8"), (f32, "f32")]:
    for size in [(4, 5), (12, 6), (9, 14), (13, 15), (8, 10)]:
        out = F.center_crop(img, list(size))
        case(f"center_crop_{tag}_{size[0]}x{size[1]}", "center_crop", dict(h=size[0], w=size[1]),
             img, out)

# ---- pad (RandomCrop whose crop size equals the padded size draws nothing) ----
small_f32 = small.float() / 256
for img, tag in [(small, "u8"), (small_f32, "f32")]:
    for pmode in ["constant", "edge", "reflect", "symmetric"]:
        ltrb = [2, 1, 3, 2]
        out = F.pad(img, ltrb, fill=9 if tag == "u8" else 0.5, padding_mode=pmode)
        case(f"pad_{tag}_{pmode}", "pad",
             dict(l=2, t=1, r=3, b=2, mode=pmode, fill=9 if tag == "u8" else 0.5), img, out)

# ---- color ----
u8_gray, f32_gray = u8[:1].clone(), f32[:1].clone()
for img, tag in [(u8, "u8"), (f32, "f32"), (u8_gray, "u8gray"), (f32_gray, "f32gray")]:
    for factor in [0.3, 1.5]:
        case(f"brightness_{tag}_{factor}", "brightness", dict(factor=factor), img,
             F.adjust_brightness(img, factor))
        case(f"contrast_{tag}_{factor}", "contrast", dict(factor=factor), img,
             F.adjust_contrast(img, factor))
        case(f"saturation_{tag}_{factor}", "saturation", dict(factor=factor), img,
             F.adjust_saturation(img, factor))

# ---- ToTensor + Normalize ----
case("to_tensor_normalize", "to_tensor_normalize", {}, u8,
     F.normalize(F.to_tensor(u8.permute(1, 2, 0).numpy()), [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]))

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"wrote {OUT}: {sum(l.startswith('case') for l in lines)} cases, {os.path.getsize(OUT)} bytes")
