#!/usr/bin/env python3
"""Joins the GPU benchmarks' JSON into one Markdown ratio table (Python 3 standard library only).

  tools/gpu-table.py [--out table.md] FILE.json...

Inputs, told apart by their shape:
  Ember's --ember_summary files (bench::ratio_main in benchmarks/bench_common.hpp): a list of
    {"case", "unit", "ember", "peers": {impl: rate}, "fraction_of_ceiling"}; the peers there ran
    in the same process (cuBLAS, cuDNN, the composite, other Ember variants).
  The PyTorch peer's --out file (benchmarks/peer_torch_cuda.py): {"context": {...}, "rows":
    [{"case", "unit", "impl", "rate", "status", "extra"}]}; a bare list of such rows works too.
Rows are joined by case key (the benchmark name less its last path element, the implementation).
A case that a later Ember file repeats (bench_cuda_step_config3.json after bench_cuda_step.json)
adds that file's Ember rate as a column "ember[<file name>]", and its peers likewise when the
name is taken.

One table per case family (the key's first path element): Ember's rate, each peer's rate and
Ember / peer (above 1: Ember is faster), for FLOP/s cases Ember's fraction of the H200's dense
bf16 peak (990 TFLOP/s), Ember's fraction of its measured ceiling where its JSON gives one, and
for the GPT steps Ember's MFU by the peer's FLOP per token (nanoGPT's formula, the same as
bench_cuda_step's). Under a family with other Ember variants (columns named ember..., in-process
or from a rerun), a second table ranks them against the default by the geometric mean of variant
/ default over the cases both ran, the numbers to set the defaults from. Rates read as TFLOP/s,
GB/s, tokens/s (GPT steps), images/s (ResNet steps), items/s or 1/s. A missing or unreadable
file, a case without Ember or without a peer, a skipped or failed peer case: each is shown as
such, never an error; the exit status is 0 unless the arguments are wrong.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys

PEAK_BF16 = 990e12  # H200 SXM dense bf16 tensor-core peak, FLOP/s


class Case:
    def __init__(self, key, unit):
        self.key = key
        self.unit = unit
        self.ember = None  # rate, or None
        self.ceiling = None  # Ember's fraction of its measured ceiling
        self.peers = {}  # impl -> rate (float) or a status ("skipped", "failed")
        self.notes = []  # reasons of skipped or failed peers
        self.extra = {}  # impl -> the peer's extra
        self.unit_of = {}  # impl -> the unit of its rate


def natural_key(s):
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", s)]


def rate_or_none(v):
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) and v > 0 else None


def load(paths):
    cases = {}
    contexts = []
    warnings = []

    def case_of(key, unit):
        if key not in cases:
            cases[key] = Case(key, unit)
        return cases[key]

    def unique(c, impl, label):
        return impl if impl not in c.peers else f"{impl}[{label}]"

    for path in paths:
        label = os.path.splitext(os.path.basename(path))[0]
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            warnings.append(f"{path}: not read ({e})")
            continue
        if isinstance(data, dict):
            ctx = data.get("context") or {}
            if ctx:
                contexts.append((label, ctx))
            rows = data.get("rows") or []
        elif isinstance(data, list):
            rows = data
        else:
            warnings.append(f"{path}: neither a list of rows nor {{context, rows}}")
            continue
        for row in rows:
            if not isinstance(row, dict) or not isinstance(row.get("case"), str):
                continue
            key, unit = row["case"], str(row.get("unit", ""))
            c = case_of(key, unit)
            if "ember" in row:  # an Ember summary row
                rate = rate_or_none(row.get("ember"))
                if rate is not None and c.ember is None:
                    c.ember = rate
                    c.unit = unit
                    c.ceiling = rate_or_none(row.get("fraction_of_ceiling"))
                elif rate is not None:
                    impl = unique(c, f"ember[{label}]", label)
                    c.peers[impl] = rate
                    c.unit_of[impl] = unit
                for impl, r in (row.get("peers") or {}).items():
                    if rate_or_none(r) is None:
                        continue
                    if impl in c.peers and c.peers[impl] == r:
                        continue
                    impl = unique(c, impl, label)
                    c.peers[impl] = float(r)
                    c.unit_of[impl] = unit
            elif "impl" in row:  # a peer row
                impl = unique(c, str(row["impl"]), label)
                extra = row.get("extra") or {}
                status = row.get("status", "ok")
                rate = rate_or_none(row.get("rate"))
                if status == "ok" and rate is not None:
                    c.peers[impl] = rate
                else:
                    c.peers[impl] = status if status != "ok" else "no rate"
                    if extra.get("reason"):
                        c.notes.append(f"{impl}: {extra['reason']}")
                c.extra[impl] = extra
                c.unit_of[impl] = unit
    return cases, contexts, warnings


# ---- formatting ----


def rate_unit(key, unit):
    """The unit a rate of this case reads in, and its scale."""
    if unit == "FLOP/s":
        return "TFLOP/s", 1e-12
    if unit == "B/s":
        return "GB/s", 1e-9
    if unit == "items/s":
        if "/gpt" in "/" + key:
            return "tokens/s", 1.0
        if "/resnet" in "/" + key:
            return "images/s", 1.0
        return "items/s", 1.0
    return unit or "1/s", 1.0


def fmt_rate(v, key, unit, with_unit):
    name, scale = rate_unit(key, unit)
    x = v * scale
    text = f"{x:,.0f}" if x >= 1000 else f"{x:.1f}" if x >= 10 else f"{x:.3g}"
    return f"{text} {name}" if with_unit else text


def fmt_ratio(a, b):
    return f"{a / b:.2f}x"


def percent(fraction):
    return f"{100 * fraction:.1f}%" if fraction >= 0.001 else "<0.1%"


def family_of(key):
    return key.split("/", 1)[0]


def table(family, cases):
    """Markdown lines for one family's cases."""
    impls = []
    for c in cases:
        for impl in c.peers:
            if impl not in impls:
                impls.append(impl)
    units = {rate_unit(c.key, c.unit)[0] for c in cases}
    uniform = len(units) == 1
    flop = any(c.unit == "FLOP/s" for c in cases)
    ceiling = any(c.ceiling is not None for c in cases)
    mfu = any("flop_per_item" in e for c in cases for e in c.extra.values())
    head = ["case", "Ember" + (f" ({next(iter(units))})" if uniform else "")]
    for impl in impls:
        head += [impl, f"Ember / {impl}"]
    if flop:
        head.append("Ember / 990 TFLOP/s")
    if mfu:
        head.append("Ember MFU")
    if ceiling:
        head.append("Ember / ceiling")
    lines = [f"### {family}", "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for c in cases:
        rest = c.key.split("/", 1)[1] if "/" in c.key else c.key
        cells = [rest, fmt_rate(c.ember, c.key, c.unit, not uniform) if c.ember else "-"]
        for impl in impls:
            v = c.peers.get(impl)
            unit = c.unit_of.get(impl, c.unit)
            if isinstance(v, float):
                cells.append(fmt_rate(v, c.key, unit, not uniform or unit != c.unit))
                same = unit == c.unit
                cells.append(fmt_ratio(c.ember, v) if c.ember and same else "-")
            else:
                cells += [v or "-", "-"]
        if flop:
            ok = c.unit == "FLOP/s" and c.ember
            cells.append(percent(c.ember / PEAK_BF16) if ok else "-")
        if mfu:
            per = [e["flop_per_item"] for e in c.extra.values() if "flop_per_item" in e]
            ok = per and c.ember
            cells.append(percent(c.ember * per[0] / PEAK_BF16) if ok else "-")
        if ceiling:
            cells.append(percent(c.ceiling) if c.ceiling is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    details = step_details(cases)
    notes = [f"- `{c.key}` {n}" for c in cases for n in c.notes]
    return lines + ([""] + details if details else []) + ([""] + notes if notes else []) + [""]


def variants(family, cases):
    """Markdown lines that rank Ember's other variants in a family against its default: every
    column named ember... (an in-process variant such as ember_config5 or ember_fused, or a rerun
    such as ember[bench_cuda_step_config3]) over the cases where it and the default both have a
    rate in the same unit: the geometric mean of variant / default, how many cases it is faster
    in, and its worst and best ratio. Empty when the family has no such column."""
    ratios = {}
    for c in cases:
        for impl, v in c.peers.items():
            if impl.startswith("ember") and isinstance(v, float) and c.ember \
                    and c.unit_of.get(impl, c.unit) == c.unit:
                ratios.setdefault(impl, []).append(v / c.ember)
    if not ratios:
        return []
    rows = []
    for impl, rs in ratios.items():
        mean = math.exp(sum(math.log(r) for r in rs) / len(rs))
        rows.append((mean, impl, rs))
    rows.sort(key=lambda t: -t[0])
    lines = [f"Ember's variants in `{family}` against its default (variant / default, above 1: "
             "the variant is faster):", "",
             "| variant | cases | geometric mean | faster in | worst | best |",
             "|---|---:|---:|---:|---:|---:|"]
    for mean, impl, rs in rows:
        wins = sum(1 for r in rs if r > 1.0)
        lines.append(f"| {impl} | {len(rs)} | {mean:.2f}x | {wins} of {len(rs)} | "
                     f"{min(rs):.2f}x | {max(rs):.2f}x |")
    best_mean, best, rs = rows[0]
    if best_mean > 1.0:
        lines.append(f"\nFastest by geometric mean: `{best}`, {best_mean:.2f}x the default over "
                     f"{len(rs)} case{'s' if len(rs) != 1 else ''}.")
    else:
        lines.append("\nFastest by geometric mean: the default.")
    return lines + [""]


def step_details(cases):
    """The peers' own figures for whole training steps: ms, MFU, peak memory, losses."""
    lines = []
    for c in cases:
        for impl, e in c.extra.items():
            if "first_loss" not in e:
                continue
            parts = [f"{e['ms']:.2f} ms/step" if "ms" in e else None,
                     f"MFU {100 * e['mfu']:.2f}%" if "mfu" in e else None,
                     f"peak {e['peak_gib']:.2f} GiB" if "peak_gib" in e else None,
                     f"loss {e['first_loss']:.4f} -> {e['last_loss']:.4f}"]
            lines.append(f"- `{c.key}/{impl}`: " + ", ".join(p for p in parts if p))
    return lines


def render(cases, contexts, warnings, sources):
    out = ["## GPU benchmarks: Ember beside its peers", "",
           "Ember / peer above 1: Ember is faster. Inputs: " +
           (", ".join(f"`{os.path.basename(p)}`" for p in sources) or "none") + ".", ""]
    for label, ctx in contexts:
        shown = ", ".join(f"{k} {ctx[k]}" for k in
                          ("gpu", "torch", "cuda", "cudnn", "device", "quick", "skipped")
                          if ctx.get(k) is not None)
        out.append(f"- {label}: {shown}")
    for w in warnings:
        out.append(f"- {w}")
    if contexts or warnings:
        out.append("")
    families = {}
    for key in sorted(cases, key=natural_key):
        families.setdefault(family_of(key), []).append(cases[key])
    if not families:
        out += ["No cases.", ""]
    for family, members in families.items():
        out += table(family, members)
        out += variants(family, members)
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Join Ember's and the peers' GPU benchmark JSON "
                                 "into one Markdown ratio table.")
    ap.add_argument("--out", help="also write the table to this file")
    ap.add_argument("files", nargs="*", metavar="FILE.json")
    args = ap.parse_args(argv)
    cases, contexts, warnings = load(args.files)
    text = render(cases, contexts, warnings, args.files)
    print(text)
    if args.out:
        try:
            with open(args.out, "w") as f:
                f.write(text + "\n")
        except OSError as e:
            print(f"gpu-table: {args.out} not written ({e})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
