#!/usr/bin/env python3
"""Registers, spills and ptxas performance warnings of Ember's CUDA kernels, per kernel instance.

Compiles the given CUDA sources (default: the tensor-core kernels gemm_tc.cu, attention.cu and
conv_implicit_gemm.cu) with the exact commands of a configured build's compile_commands.json plus
`-Xptxas -v`, into a temporary directory (the build's objects are not touched), and prints one row
per kernel instance and architecture: registers, spill stores and loads (bytes), and the ptxas
"Potential Performance Loss" notes (for example C7520: wgmma serialised because ptxas found it on
a path it cannot prove warpgroup-uniform). Exits 1 when any such note appears, 2 on a build error.

    tools/ptxas-report.py [--build build/release] [--filter REGEX] [sources...]

Needs nvcc (the CUDA toolkit), not a GPU. The figures in docs/kernels.md come from it.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

DEFAULT_SOURCES = ["src/cuda/gemm_tc.cu", "src/cuda/attention.cu", "src/cuda/conv_implicit_gemm.cu"]


def demangled(name):
    try:
        out = subprocess.run(["c++filt", name], capture_output=True, text=True, check=True).stdout
        return out.strip()
    except (OSError, subprocess.CalledProcessError):
        return name


def short(name):
    """The kernel's name and template arguments, without namespaces and the parameter list."""
    n = demangled(name).replace("(anonymous namespace)::", "")
    if n.endswith(")"):  # drop the parameter list: from its matching "(" on
        depth = 0
        for i in range(len(n) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(n[i], 0)
            if depth == 0:
                n = n[:i]
                break
    n = re.sub(r"^void ", "", n)
    for ns in ("ember::cuda::", "detail::"):
        n = n.replace(ns, "")
    return n


def report(command, directory, tmp):
    args = shlex.split(command)
    if "-o" in args:
        args[args.index("-o") + 1] = os.path.join(tmp, "out.o")
    args += ["-Xptxas", "-v"]
    proc = subprocess.run(args, cwd=directory, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        return None
    rows, notes, current = [], [], None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.search(r"Compiling entry function '([^']+)' for '(\w+)'", line)
        if m:
            current = {"kernel": short(m.group(1)), "arch": m.group(2), "regs": None,
                       "spill_st": 0, "spill_ld": 0}
            rows.append(current)
            continue
        m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and current is not None:
            current["spill_st"], current["spill_ld"] = int(m.group(1)), int(m.group(2))
        m = re.search(r"Used (\d+) registers", line)
        if m and current is not None:
            current["regs"] = int(m.group(1))
        m = re.search(r"\((C\d+)\) Potential Performance Loss: (.*?) (?:in|for) the function "
                      r"'([^']+)'", line)
        if m:
            notes.append((m.group(1), short(m.group(3)), m.group(2)))
    return rows, notes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build/release", help="a configured CUDA build directory")
    ap.add_argument("--filter", default="", help="only kernels whose name matches this regex")
    ap.add_argument("sources", nargs="*", default=DEFAULT_SOURCES)
    a = ap.parse_args()
    db_path = os.path.join(a.build, "compile_commands.json")
    if not os.path.exists(db_path):
        sys.exit(f"ptxas-report: {db_path} not found (configure a CUDA build first, e.g. "
                 "cmake --preset release)")
    db = json.load(open(db_path))
    status = 0
    for src in a.sources:
        full = os.path.abspath(src)
        entry = next((e for e in db if os.path.abspath(e["file"]) == full), None)
        if entry is None:
            print(f"{src}: not in {db_path}")
            status = 2
            continue
        with tempfile.TemporaryDirectory() as tmp:
            result = report(entry["command"], entry["directory"], tmp)
        if result is None:
            print(f"{src}: compile failed")
            status = 2
            continue
        rows, notes = result
        print(f"\n{src}\n")
        print("| kernel | arch | registers | spill stores | spill loads |")
        print("|---|---|---|---|---|")
        for r in rows:
            if a.filter and not re.search(a.filter, r["kernel"]):
                continue
            print(f"| `{r['kernel']}` | {r['arch']} | {r['regs']} | {r['spill_st']} | "
                  f"{r['spill_ld']} |")
        for code, kernel, what in notes:
            if a.filter and not re.search(a.filter, kernel):
                continue
            print(f"\nptxas {code} in `{kernel}`: {what}")
            status = max(status, 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
