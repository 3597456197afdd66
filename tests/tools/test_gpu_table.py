#!/usr/bin/env python3
"""tools/gpu-table.py on synthetic inputs (CTest "tools: ..."): an Ember --ember_summary file
with an in-process peer, the PyTorch peer's file with an ok, a skipped and a failed case, a rerun
of the Ember program (its rate becomes a column), and a missing file. Checks the joined rows and
ratios, and that nothing here makes it fail. Python 3 standard library only.

  test_gpu_table.py <source dir>
"""
import json
import os
import subprocess
import sys
import tempfile


def main():
    root = sys.argv[1]
    tool = os.path.join(root, "tools", "gpu-table.py")
    with tempfile.TemporaryDirectory() as d:
        def write(name, data):
            path = os.path.join(d, name)
            with open(path, "w") as f:
                json.dump(data, f)
            return path

        ember = write("bench_cuda_attention.json", [
            {"case": "attn_fwd_bf16/B1_H2_T128_D64", "unit": "FLOP/s", "ember": 2.0e14,
             "peers": {"composite": 1.0e14, "ember_ws": 4.0e14}, "fraction_of_ceiling": None},
            {"case": "attn_fwd_bf16/B1_H2_T200_D128", "unit": "FLOP/s", "ember": 3.0e14,
             "peers": {"ember_ws": 1.5e14}, "fraction_of_ceiling": None}])
        rerun = write("bench_cuda_attention_config3.json", [
            {"case": "attn_fwd_bf16/B1_H2_T128_D64", "unit": "FLOP/s", "ember": 5.0e14,
             "peers": {}, "fraction_of_ceiling": None}])
        peer = write("peer_torch_cuda.json", {
            "context": {"torch": "2.x", "gpu": "test"},
            "rows": [
                {"case": "attn_fwd_bf16/B1_H2_T128_D64", "unit": "FLOP/s", "impl": "torch_cudnn",
                 "rate": 4.0e14, "status": "ok", "extra": {}},
                {"case": "attn_fwd_bf16/B1_H2_T200_D128", "unit": "FLOP/s",
                 "impl": "torch_cudnn", "rate": None, "status": "skipped",
                 "extra": {"reason": "no kernel for this shape"}},
                {"case": "attn_fwd_bf16/B1_H2_T200_D128", "unit": "FLOP/s",
                 "impl": "torch_flash", "rate": None, "status": "failed",
                 "extra": {"reason": "forward differs"}}]})
        out = os.path.join(d, "table.md")
        r = subprocess.run([sys.executable, tool, "--out", out, ember, peer, rerun,
                            os.path.join(d, "missing.json")],
                           capture_output=True, text=True)
        text = r.stdout
        failures = []

        def expect(cond, what):
            if not cond:
                failures.append(what)

        expect(r.returncode == 0, f"exit status {r.returncode}: {r.stderr}")
        expect(os.path.exists(out) and open(out).read().strip() in text or text.strip()
               in open(out).read(), "--out holds the printed table")
        lines = text.splitlines()
        head = next((l for l in lines if l.startswith("| case |")), "")
        row = next((l for l in lines if l.startswith("| B1_H2_T128_D64 ")), "")
        expect(row != "", "a row for the joined case")
        cell = dict(zip([c.strip() for c in head.strip("|").split("|")],
                        [c.strip() for c in row.strip("|").split("|")]))
        expect(cell.get("Ember / torch_cudnn") == "0.50x", f"Ember / torch_cudnn 0.50x: {cell}")
        expect(cell.get("Ember / composite") == "2.00x", f"Ember / composite 2.00x: {cell}")
        expect(cell.get("Ember / 990 TFLOP/s") == "20.2%", f"Ember / 990 TFLOP/s 20.2%: {cell}")
        rerun_cols = [k for k in cell if k.startswith("ember[")]
        expect(rerun_cols and cell[rerun_cols[0]].startswith("500"),
               f"the rerun's rate (500 TFLOP/s) as a column: {cell}")
        row2 = next((l for l in text.splitlines() if l.startswith("| B1_H2_T200_D128 ")), "")
        expect("skipped" in row2 and "failed" in row2, "skipped and failed peers shown: " + row2)
        expect("missing.json" in text + r.stderr, "the missing file is reported")
        # The variants against the default: ember_ws 2.0x and 0.5x (geometric mean 1.00x, faster
        # in 1 of 2), the rerun 2.5x in its one case, so the rerun ranks first.
        vrows = [l for l in lines if l.startswith("| ember")]
        expect(len(vrows) == 2 and vrows[0].startswith("| ember[")
               and "| 1 | 2.50x | 1 of 1 |" in vrows[0], f"the rerun ranked first: {vrows}")
        expect(len(vrows) == 2 and vrows[1] == "| ember_ws | 2 | 1.00x | 1 of 2 | 0.50x | 2.00x |",
               f"ember_ws's row: {vrows}")
        expect(any(l.startswith("Fastest by geometric mean: `ember[") and "2.50x" in l
                   for l in lines), "the fastest variant named")
        if failures:
            print(text)
            print("\n".join("FAILED: " + f for f in failures))
            return 1
        print("gpu-table.py: all checks passed")
        return 0


if __name__ == "__main__":
    sys.exit(main())
