#!/usr/bin/env python3
"""The PyTorch peer of the GPU benchmarks bench_cuda_attention.cpp, bench_cuda_step.cpp and
bench_cuda_ops.cpp's batch_norm_relu case: the
same cases, timed the same way, by the framework the GPU machine ships (torch with CUDA, cuDNN,
torchvision). The C++ programs cannot link a GPU build of libtorch there, so this script runs as
a separate process in the same tools/gpu-check.sh run, and tools/gpu-table.py joins its JSON with
the programs' --ember_summary JSON by case key into one ratio table. torch is a peer only: no part
of the library, its build or `make test` needs it.

Cases (keys as the C++ programs name them, the implementation last):
  attn_{fwd,bwd}_bf16/B{B}_H{H}_T{T}_D{D}[_causal]/{torch_cudnn,torch_flash}
      (B, H, T, D) = (4, 16, 1024, 64), (2, 16, 4096, 128), (1, 16, 8192, 128); quick mode
      (1, 2, 128, 64), (1, 2, 200, 128). bfloat16 q, k, v from randn, (B, H, T, D) contiguous,
      F.scaled_dot_product_attention under sdpa_kernel(SDPBackend.CUDNN_ATTENTION) (cuDNN's fused
      SDPA) or sdpa_kernel(SDPBackend.FLASH_ATTENTION) (FlashAttention-2 as torch ships it).
      FLOP as the C++ counts them: 4 B H T T D per forward, halved when causal, backward 2.5x.
      Backward: torch.autograd.grad of one recorded forward (retain_graph), as the C++ times it.
      Each implementation's forward output is first checked against torch's math SDPA in float32
      (max error within 2e-2 of max |reference|, the C++ program's tolerance); a miss fails it.
  step/gpt2/{bf16,float32}/124m_b8_t1024/torch_eager (and torch_compile with --compile)
      GPT-2 124M as examples/gpt/model.cpp builds it: 12 layers, 768 wide, 12 heads, context
      1024, vocabulary padded to 50304 (targets from the 50257 real ids), learned position
      embedding, pre-LayerNorm blocks (LayerNorm and Linear with biases, eps 1e-5), GELU with the
      tanh approximation, no dropout, the output projection tied to the token embedding, GPT-2's
      initialisation; attention by F.scaled_dot_product_attention(is_causal=True) (torch picks
      the kernel). Batch 8 x 1024. AdamW (fused) with betas (0.9, 0.99), weight decay 0.1 on the
      matrices (dim >= 2: embeddings and Linear weights) only, lr 1e-5; gradient norm clipped to
      1.0. Quick mode: 2 layers, 128 wide, 2 heads, context 64, vocabulary 512 (ids < 500),
      batch 2 ("step/gpt2/<dtype>/l2_c128_b2_t64").
  step/resnet50/{bf16,float32}/b64_224px/torch_eager
      torchvision.models.resnet50(num_classes=1000) (the same network as examples/resnet's
      resnet50), batch 64 of randn 3x224x224 in NCHW, cross-entropy, SGD with Nesterov momentum
      0.9, weight decay 5e-4, lr 0.004. Quick mode: 4 images of 3x64x64, 10 classes
      ("step/resnet50/<dtype>/b4_64px").
  step/resnet50/bf16/b64_224px_nhwc/torch_eager
      The same in bf16 with the model and the images channels-last
      (net.to(memory_format=torch.channels_last)), as bench_cuda_step's _nhwc case.
  batch_norm_relu_bf16/64x256x56x56{_nhwc,}/torch_eager (quick: 2x16x6x6)
      A training-mode F.batch_norm of a bf16 channels-last (or NCHW) x with float32 weight, bias and
      running statistics, the residual added in place and relu_ (as torchvision's Bottleneck
      ends), forward and backward (torch.autograd.grad of x, weight, bias and the residual),
      timed as the attention cases; the rate is bench_cuda_ops's byte count (163/8 B per value)
      per second, so Ember / peer is the time ratio.
  Each step case in bf16 (torch.autocast around forward and loss; the weights and the optimizer
  stay float32; no grad scaler, as Ember's scaler passes bf16 through) and in float32 without
  autocast. float32 is exact float32 as Ember's default: TF32 is turned off for those cases
  (torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32, the latter True by
  default) and restored after. torch.backends.cudnn.benchmark is on (cuDNN picks its convolution
  algorithms by timing them during the warm-up steps).

Timing as benchmarks/cuda_bench.hpp: attention cases get 2 untimed warm-up runs, then per timed
run an L2 flush (a row sum over a 256 MiB float32 buffer into a preallocated output), the start
event, one run, the stop event; 20 timed runs per repetition, 5 repetitions. A repetition's time
is the mean of its runs; the rate reported is the median of the 5 repetitions' rates (= the rate
of the median repetition mean), which is what Google Benchmark's median aggregate of the manual
time gives the C++ programs. Step cases as bench_cuda_step.cpp: no flush, 2 untimed warm-up steps
(the first one's loss is kept), 5 timed steps in one repetition, rate = tokens or images per
mean step time; MFU for the GPT by nanoGPT's formula (6 N + 12 L T C FLOP per token, N the
parameters less the position embedding) against 990 TFLOP/s, the H200's dense bf16 peak; peak
memory is torch.cuda.max_memory_allocated, reset per case. Quick mode: attention 2 runs in 1
repetition, steps 1 warm-up and 1 timed step.

Outcomes: a case that raises a torch error (an SDPA backend that does not take a shape, out of
memory) is "skipped" with the reason; a wrong attention output, a non-finite loss or an error in
this script is "failed" and makes the exit status 1.

Usage: python3 benchmarks/peer_torch_cuda.py [--out FILE.json] [--quick] [--only attention|norm|step]
           [--compile] [--device cuda|cpu]
--device cpu only tests this script's logic on a machine without a GPU: times by
time.perf_counter, a small flush buffer, and attention on torch's default CPU SDPA under the
implementation names above (its figures say nothing about either peer). Without a CUDA GPU,
--device cuda prints "peer_torch_cuda: skipped (no CUDA GPU)", writes no rows and exits 0.

Output (--out, rewritten after every case, so a run cut short keeps what it measured):
  {"context": {"torch": ..., "cuda": ..., "cudnn": ..., "gpu": ..., ...},
   "rows": [{"case": "<key without impl>", "unit": "FLOP/s" | "items/s" | "B/s", "impl": "torch_cudnn",
             "rate": <float or null>, "status": "ok" | "skipped" | "failed",
             "extra": {"ms": ..., "reason": ..., ...}}, ...]}
"items/s" is the unit Ember's ratio table gives the step cases (its items_per_second counter);
extra.rate_unit says whether they are tokens or images.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings

PEAK_BF16 = 990e12  # H200 SXM dense bf16 tensor-core peak, FLOP/s
RUNS_PER_REPETITION = 20
REPETITIONS = 5
FLUSH_SHAPE_CUDA = (1024, 65536)  # 256 MiB of float32, as cuda_bench.hpp
FLUSH_SHAPE_CPU = (1024, 1024)  # 4 MiB: the cpu mode only exercises the logic


class CaseFailed(Exception):
    """A wrong result (not an unsupported shape): the case fails and the exit status is 1."""


# ---- timing ----


class Timer:
    """CUDA events with an L2 flush (cuda), or time.perf_counter (cpu)."""

    def __init__(self, torch, device):
        self.torch = torch
        self.cuda = device.type == "cuda"
        shape = FLUSH_SHAPE_CUDA if self.cuda else FLUSH_SHAPE_CPU
        self.buffer = torch.zeros(shape, dtype=torch.float32, device=device)
        self.sums = torch.empty((shape[0], 1), dtype=torch.float32, device=device)
        if self.cuda:
            self.start = torch.cuda.Event(enable_timing=True)
            self.stop = torch.cuda.Event(enable_timing=True)

    def flush(self):
        self.torch.sum(self.buffer, dim=1, keepdim=True, out=self.sums)

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def once(self, work, flush):
        """Seconds of one run of work (and its return value)."""
        if flush:
            self.flush()
        if self.cuda:  # both events on the current stream, as the work
            self.start.record()
            value = work()
            self.stop.record()
            self.stop.synchronize()
            return self.start.elapsed_time(self.stop) * 1e-3, value
        t0 = time.perf_counter()
        value = work()
        return time.perf_counter() - t0, value

    def repetitions(self, work, runs, reps):
        """2 warm-up runs, then `reps` repetitions of `runs` flushed runs: their mean times."""
        work()
        work()
        self.sync()
        means = []
        for _ in range(reps):
            times = [self.once(work, flush=True)[0] for _ in range(runs)]
            means.append(sum(times) / len(times))
        return means


# ---- results ----


class Results:
    def __init__(self, path, context):
        self.path = path
        self.context = context
        self.rows = []

    def add(self, case, unit, impl, rate, status, extra):
        self.rows.append({"case": case, "unit": unit, "impl": impl, "rate": rate,
                          "status": status, "extra": extra})
        self.write()
        shown = human(rate, unit) if rate is not None else status
        note = extra.get("reason", "")
        print(f"{case}/{impl}: {shown}" + (f" ({note})" if note else ""), flush=True)

    def write(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"context": self.context, "rows": self.rows}, f, indent=1)
            f.write("\n")
        os.replace(tmp, self.path)

    def failed(self):
        return any(r["status"] == "failed" for r in self.rows)


def human(v, unit):
    prefixes = ["", "k", "M", "G", "T", "P"]
    p = 0
    while abs(v) >= 1000 and p < len(prefixes) - 1:
        v /= 1000
        p += 1
    return f"{v:.3g} {prefixes[p]}{unit}"


def run_case(results, case, unit, impl, body):
    """Runs body() -> (rate, extra) and records the outcome: ok, skipped (a torch RuntimeError,
    with the warnings torch gave about it) or failed (CaseFailed or any other exception)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rate, extra = body()
            results.add(case, unit, impl, rate, "ok", extra)
        except CaseFailed as e:
            results.add(case, unit, impl, None, "failed", {"reason": str(e)})
        except RuntimeError as e:  # torch's errors, out of memory included
            reason = first_line(e)
            hints = sorted({first_line(w.message) for w in caught})
            if hints:
                reason += " [" + "; ".join(hints)[:600] + "]"
            results.add(case, unit, impl, None, "skipped", {"reason": reason})
        except Exception as e:  # a bug here, not a peer's limit
            results.add(case, unit, impl, None, "failed",
                        {"reason": f"{type(e).__name__}: {first_line(e)}"})


def first_line(e):
    text = str(e).strip()
    return text.splitlines()[0][:400] if text else type(e).__name__


def release(torch, device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


# ---- attention ----


def attention_shapes(quick):
    if quick:
        return [(1, 2, 128, 64), (1, 2, 200, 128)]
    return [(4, 16, 1024, 64), (2, 16, 4096, 128), (1, 16, 8192, 128)]


def run_attention(torch, device, timer, results, quick):
    for shape in attention_shapes(quick):
        attention_shape(torch, device, timer, results, shape, quick)
        release(torch, device)


def attention_shape(torch, device, timer, results, shape, quick):
    """The cases of one (B, H, T, D): forward and backward, causal and not, each implementation."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    impls = [("torch_cudnn", SDPBackend.CUDNN_ATTENTION),
             ("torch_flash", SDPBackend.FLASH_ATTENTION)]
    runs, reps = (2, 1) if quick else (RUNS_PER_REPETITION, REPETITIONS)
    B, H, T, D = shape

    def backend(b):
        # On the CPU neither backend exists: torch's default CPU SDPA stands in (logic test only).
        return sdpa_kernel(b) if device.type == "cuda" else contextlib.nullcontext()

    def randn(seed):
        g = torch.Generator(device=device)
        g.manual_seed(seed)
        return torch.randn(shape, generator=g, device=device, dtype=torch.bfloat16)

    q, k, v, dy = randn(1), randn(2), randn(3), randn(4)  # (B, H, T, D) each
    reference = {}  # causal -> float32 math SDPA of q, k, v
    checked = {}  # (causal, impl) -> None, or why the check failed

    def check(causal, impl, b):
        if (causal, impl) not in checked:
            if causal not in reference:
                with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), exact_float32(torch):
                    reference[causal] = F.scaled_dot_product_attention(
                        q.float(), k.float(), v.float(), is_causal=causal)
            ref = reference[causal]
            with torch.no_grad(), backend(b):
                y = F.scaled_dot_product_attention(q, k, v, is_causal=causal).float()
            err, mag = (y - ref).abs().max().item(), ref.abs().max().item()
            checked[(causal, impl)] = (
                None if err <= 2e-2 * mag else
                f"forward differs from float32 math SDPA by {err:.4g} (max |ref| {mag:.4g})")
        if checked[(causal, impl)]:
            raise CaseFailed(checked[(causal, impl)])

    def body(causal, backward, impl, b, flops):
        check(causal, impl, b)
        with backend(b):
            if not backward:
                with torch.no_grad():
                    means = timer.repetitions(
                        lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                        runs, reps)
            else:
                ql, kl, vl = (t.detach().requires_grad_() for t in (q, k, v))
                y = F.scaled_dot_product_attention(ql, kl, vl, is_causal=causal)
                means = timer.repetitions(
                    lambda: torch.autograd.grad(y, (ql, kl, vl), dy, retain_graph=True),
                    runs, reps)
        rates = [flops / m for m in means]
        extra = {"ms": statistics.median(means) * 1e3, "rep_ms": [m * 1e3 for m in means],
                 "fraction_of_bf16_peak": statistics.median(rates) / PEAK_BF16}
        if device.type != "cuda":
            extra["note"] = "cpu logic test: torch's default CPU SDPA"
        return statistics.median(rates), extra

    for backward in (False, True):
        for causal in (False, True):
            case = ("attn_bwd_bf16/" if backward else "attn_fwd_bf16/") + \
                f"B{B}_H{H}_T{T}_D{D}" + ("_causal" if causal else "")
            flops = 4.0 * B * H * T * T * D  # two products of (T, T, D) per head
            flops *= (0.5 if causal else 1.0) * (2.5 if backward else 1.0)
            for impl, b in impls:
                run_case(results, case, "FLOP/s", impl,
                         functools.partial(body, causal, backward, impl, b, flops))


# ---- BatchNorm + residual + ReLU ----


def norm_shape(quick):
    return (2, 16, 6, 6) if quick else (64, 256, 56, 56)


def run_norm(torch, device, timer, results, quick):
    """bench_cuda_ops.cpp's batch_norm_relu_bf16 case in eager PyTorch (see the header)."""
    import torch.nn.functional as F

    runs, reps = (2, 1) if quick else (RUNS_PER_REPETITION, REPETITIONS)
    N, C, H, W = norm_shape(quick)
    nbytes = N * C * H * W * 163 / 8

    def body(nhwc):
        layout = torch.channels_last if nhwc else torch.contiguous_format
        g = torch.Generator(device=device)
        g.manual_seed(13)

        def channels_last(scale):
            t = torch.randn((N, C, H, W), generator=g, device=device) * scale
            return t.to(torch.bfloat16).contiguous(memory_format=layout)

        x, r, dz = channels_last(2.0), channels_last(1.0), channels_last(1.0)
        x.requires_grad_()
        r.requires_grad_()
        w = torch.randn(C, generator=g, device=device).requires_grad_()
        b = torch.randn(C, generator=g, device=device).requires_grad_()
        rm, rv = torch.zeros(C, device=device), torch.ones(C, device=device)

        def work():
            y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
            y += r
            z = torch.relu_(y)
            return torch.autograd.grad(z, (x, w, b, r), dz)

        grads = work()
        if not all(bool(torch.isfinite(t).all()) for t in grads):
            raise CaseFailed("non-finite gradient")
        means = timer.repetitions(work, runs, reps)
        rates = [nbytes / m for m in means]
        extra = {"ms": statistics.median(means) * 1e3, "rep_ms": [m * 1e3 for m in means]}
        if device.type != "cuda":
            extra["note"] = "cpu logic test"
        return statistics.median(rates), extra

    for nhwc in (True, False):
        case = f"batch_norm_relu_bf16/{N}x{C}x{H}x{W}" + ("_nhwc" if nhwc else "")
        run_case(results, case, "B/s", "torch_eager", functools.partial(body, nhwc))


# ---- whole training steps ----


@contextlib.contextmanager
def exact_float32(torch, on=True):
    """TF32 off for cuBLAS and cuDNN while inside (when on), the previous settings restored."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    if on:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def gpt_shape(quick):
    # B, T, n_layer, n_embd, n_head, vocab, vocab_used: as bench_cuda_step.cpp's gpt_shape()
    if quick:
        return dict(B=2, T=64, n_layer=2, n_embd=128, n_head=2, vocab=512, vocab_used=500)
    return dict(B=8, T=1024, n_layer=12, n_embd=768, n_head=12, vocab=50304, vocab_used=50257)


def resnet_shape(quick):
    return dict(N=4, H=64, classes=10) if quick else dict(N=64, H=224, classes=1000)


def step_case(model, bf16, quick, nhwc=False):
    """The key as bench_cuda_step.cpp's case_name(), less the implementation."""
    if model == "gpt2":
        s = gpt_shape(quick)
        shape = (f"l{s['n_layer']}_c{s['n_embd']}_" if quick else "124m_") + f"b{s['B']}_t{s['T']}"
    else:
        s = resnet_shape(quick)
        shape = f"b{s['N']}_{s['H']}px" + ("_nhwc" if nhwc else "")
    return f"step/{model}/{'bf16' if bf16 else 'float32'}/{shape}"


def make_gpt(torch, s):
    """examples/gpt/model.cpp's GPT at the given shape, with its initialisation."""
    nn = torch.nn
    F = torch.nn.functional
    C, n_head = s["n_embd"], s["n_head"]

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(C, 3 * C)
            self.c_proj = nn.Linear(C, C)

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = self.c_attn(x).split(C, dim=2)
            q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, D)
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(C, 4 * C)
            self.c_proj = nn.Linear(4 * C, C)

        def forward(self, x):
            return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(C, eps=1e-5)
            self.attn = CausalSelfAttention()
            self.ln_2 = nn.LayerNorm(C, eps=1e-5)
            self.mlp = MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(s["vocab"], C)
            self.wpe = nn.Embedding(s["T"], C)
            self.h = nn.ModuleList([Block() for _ in range(s["n_layer"])])
            self.ln_f = nn.LayerNorm(C, eps=1e-5)
            proj_std = 0.02 / math.sqrt(2.0 * s["n_layer"])
            with torch.no_grad():
                for name, p in self.named_parameters():
                    if ".ln_" in name or name.startswith("ln_"):
                        (p.zero_() if name.endswith(".bias") else p.fill_(1.0))
                    elif name.endswith(".bias"):
                        p.zero_()
                    elif name.endswith("c_proj.weight"):
                        p.normal_(0.0, proj_std)
                    else:
                        p.normal_(0.0, 0.02)

        def forward(self, idx):
            pos = torch.arange(idx.shape[1], device=idx.device)
            x = self.wte(idx) + self.wpe(pos)
            for block in self.h:
                x = block(x)
            return F.linear(self.ln_f(x), self.wte.weight)  # tied to wte

    return GPT()


def gpt_workload(torch, device, bf16, quick, compiled):
    F = torch.nn.functional
    s = gpt_shape(quick)
    torch.manual_seed(1)
    net = make_gpt(torch, s).to(device)
    net.train()
    decay = [p for p in net.parameters() if p.dim() >= 2]
    no_decay = [p for p in net.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-5, betas=(0.9, 0.99), fused=True)
    g = torch.Generator(device=device)
    g.manual_seed(2)
    idx = torch.randint(0, s["vocab_used"], (s["B"], s["T"]), generator=g, device=device)
    tgt = torch.randint(0, s["vocab_used"], (s["B"], s["T"]), generator=g, device=device)
    forward = torch.compile(net) if compiled else net
    V = s["vocab"]

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(forward(idx).reshape(-1, V), tgt.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        return loss.detach()

    n = sum(p.numel() for p in net.parameters()) - s["T"] * s["n_embd"]  # less wpe; wte once
    flop_per_token = 6.0 * n + 12.0 * s["n_layer"] * s["T"] * s["n_embd"]
    tokens = s["B"] * s["T"]
    return step, tokens, flop_per_token * tokens, "tokens/s"


def resnet_workload(torch, device, bf16, quick, nhwc=False):
    import torchvision  # absent: the case is skipped with this ImportError's text

    F = torch.nn.functional
    s = resnet_shape(quick)
    torch.manual_seed(1)
    net = torchvision.models.resnet50(num_classes=s["classes"]).to(device)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.004, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    g = torch.Generator(device=device)
    g.manual_seed(2)
    x = torch.randn((s["N"], 3, s["H"], s["H"]), generator=g, device=device)
    y = torch.randint(0, s["classes"], (s["N"],), generator=g, device=device)
    if nhwc:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return step, s["N"], 0.0, "images/s"


def run_steps(torch, device, timer, results, quick, with_compile):
    cases = [("gpt2", bf16, "torch_eager", False) for bf16 in (True, False)]
    if with_compile:
        cases += [("gpt2", bf16, "torch_compile", False) for bf16 in (True, False)]
    cases += [("resnet50", bf16, "torch_eager", False) for bf16 in (True, False)]
    cases += [("resnet50", True, "torch_eager", True)]  # channels-last, as bench_cuda_step's
    for model, bf16, impl, nhwc in cases:
        run_case(results, step_case(model, bf16, quick, nhwc), "items/s", impl,
                 functools.partial(time_steps, torch, device, timer, model, bf16, impl, quick,
                                   nhwc))
    release(torch, device)


def time_steps(torch, device, timer, model, bf16, impl, quick, nhwc=False):
    """One step case: (items/s, extra)."""
    warmup, timed = (1, 1) if quick else (2, 5)
    release(torch, device)
    with exact_float32(torch, on=not bf16):
        if model == "gpt2":
            work = gpt_workload(torch, device, bf16, quick, impl == "torch_compile")
        else:
            try:
                work = resnet_workload(torch, device, bf16, quick, nhwc)
            except ImportError as e:
                raise RuntimeError(f"torchvision is not installed ({e})") from e
        step, samples, flops, rate_unit = work
        first_loss = step().item()
        for _ in range(warmup - 1):
            step()
        timer.sync()
        times, loss = [], None
        for _ in range(timed):
            t, loss = timer.once(step, flush=False)
            times.append(t)
        last_loss = loss.item()
        tf32 = [torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32]
    if not (math.isfinite(first_loss) and math.isfinite(last_loss)):
        raise CaseFailed(f"non-finite loss (first {first_loss}, last {last_loss})")
    step_s = sum(times) / len(times)
    extra = {"ms": step_s * 1e3, "rate_unit": rate_unit,
             "first_loss": first_loss, "last_loss": last_loss,
             "tf32_matmul_cudnn": tf32, "warmup_steps": warmup, "timed_steps": timed}
    if flops > 0:
        extra["mfu"] = flops / step_s / PEAK_BF16
        extra["flop_per_item"] = flops / samples
    if device.type == "cuda":
        extra["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return samples / step_s, extra


# ---- main ----


def print_table(rows):
    print(f"\n{'case':<48} {'impl':<14} {'rate':>16} {'ms':>10}  note")
    for r in rows:
        e = r["extra"]
        rate = human(r["rate"], r["unit"]) if r["rate"] is not None else r["status"]
        ms = f"{e['ms']:.3f}" if "ms" in e else "-"
        notes = []
        if "mfu" in e:
            notes.append(f"MFU {100 * e['mfu']:.2f}%")
        if "rate_unit" in e:
            notes.append(f"{r['rate']:.4g} {e['rate_unit']}")
        if "peak_gib" in e:
            notes.append(f"peak {e['peak_gib']:.2f} GiB")
        if "first_loss" in e:
            notes.append(f"loss {e['first_loss']:.4f} -> {e['last_loss']:.4f}")
        if "reason" in e:
            notes.append(e["reason"])
        print(f"{r['case']:<48} {r['impl']:<14} {rate:>16} {ms:>10}  {'; '.join(notes)}")


def main(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch peer of bench_cuda_attention and "
                                 "bench_cuda_step (see the header of this file)")
    ap.add_argument("--out", help="write the rows as JSON here")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one repetition")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                    help="cpu: tests this script's logic only")
    ap.add_argument("--only", choices=["attention", "norm", "step"], help="run one family only")
    ap.add_argument("--compile", action="store_true",
                    help="also time the torch.compile'd GPT step (compiling takes about a minute)")
    args = ap.parse_args(argv)

    context = {"device": args.device, "quick": args.quick, "python": platform.python_version()}
    results = Results(args.out, context)
    try:
        import torch
    except ImportError:
        print("peer_torch_cuda: skipped (no torch)")
        context["skipped"] = "no torch"
        results.write()
        return 0
    context["torch"] = torch.__version__
    if args.device == "cuda" and not torch.cuda.is_available():
        print("peer_torch_cuda: skipped (no CUDA GPU)")
        context["skipped"] = "no CUDA GPU"
        results.write()
        return 0
    device = torch.device(args.device)
    context["cuda"] = torch.version.cuda
    context["cudnn"] = torch.backends.cudnn.version()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        context["gpu"] = torch.cuda.get_device_name()
        context["cudnn_benchmark"] = True
    else:
        context["gpu"] = None
        context["threads"] = torch.get_num_threads()
    context["peak_bf16_flops"] = PEAK_BF16
    print("peer_torch_cuda: " + ", ".join(f"{k} {v}" for k, v in context.items()), flush=True)
    timer = Timer(torch, device)
    if args.only in (None, "attention"):
        run_attention(torch, device, timer, results, args.quick)
    if args.only in (None, "norm"):
        run_norm(torch, device, timer, results, args.quick)
        release(torch, device)
    if args.only in (None, "step"):
        del timer.buffer  # steps take no flush: the 256 MiB go back for the models
        release(torch, device)
        run_steps(torch, device, timer, results, args.quick, args.compile)
    print_table(results.rows)
    failed = results.failed()
    skipped = sum(r["status"] == "skipped" for r in results.rows)
    print(f"peer_torch_cuda: {len(results.rows)} cases, {skipped} skipped, "
          f"{sum(r['status'] == 'failed' for r in results.rows)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
