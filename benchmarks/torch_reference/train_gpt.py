#!/usr/bin/env python3
"""The PyTorch twin of ember-train-gpt: the same corpus, character tokenizer, 90/10 split, model
(GPT-2 layout, tied embedding, tanh GELU, init), AdamW groups, warmup + cosine schedule, gradient
clipping, batch and validation windows, so that anyone can compare the validation loss and the
speed with Ember's at the same step count.

    python3 benchmarks/torch_reference/train_gpt.py --steps 1500 --threads 2
    build/release/examples/ember-train-gpt --steps 1500 --threads 2

Needs torch (PyPI: pip install torch). Not used by `make test`.
"""
import argparse
import json
import math
import os
import subprocess
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def load_corpus(path, cache):
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read()
    if os.path.exists(cache):
        with open(cache, encoding="utf-8") as f:
            return f.read()
    text = subprocess.run(["bible", "-f", "gen1:1-rev22:21"], check=True, capture_output=True).stdout
    return text.decode("utf-8")


class Block(nn.Module):
    def __init__(self, c, n_head, dropout):
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.ln_1 = nn.LayerNorm(c)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(c, 3 * c)
        self.attn.c_proj = nn.Linear(c, c)
        self.attn.resid_dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(c)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(c, 4 * c)
        self.mlp.c_proj = nn.Linear(4 * c, c)
        self.mlp.dropout = nn.Dropout(dropout)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(C, dim=2)
        heads = lambda t: t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, C)
        x = x + self.attn.resid_dropout(self.attn.c_proj(y))
        h = self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))
        return x + self.mlp.dropout(h)


class GPT(nn.Module):
    def __init__(self, vocab, block, n_layer, n_head, n_embd, dropout):
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(vocab, n_embd)
        self.transformer.wpe = nn.Embedding(block, n_embd)
        self.transformer.drop = nn.Dropout(dropout)
        self.transformer.h = nn.ModuleList([Block(n_embd, n_head, dropout) for _ in range(n_layer)])
        self.transformer.ln_f = nn.LayerNorm(n_embd)
        proj_std = 0.02 / math.sqrt(2 * n_layer)
        for name, p in self.named_parameters():
            if ".ln_" in name:
                nn.init.zeros_(p) if name.endswith(".bias") else nn.init.ones_(p)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)
            elif "c_proj.weight" in name:
                nn.init.normal_(p, 0.0, proj_std)
            else:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, idx):
        t = self.transformer
        pos = torch.arange(idx.shape[1])
        x = t.drop(t.wte(idx) + t.wpe(pos))
        for block in t.h:
            x = block(x)
        return F.linear(t.ln_f(x), t.wte.weight)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="")
    ap.add_argument("--out", default="runs/gpt_torch")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--beta2", type=float, default=0.99)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-batches", type=int, default=20)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)

    text = load_corpus(a.data, os.path.join(a.out, "kjv.txt"))
    vocab = sorted(set(text))  # Ember's CharTokenizer: code points in increasing order
    stoi = {ch: i for i, ch in enumerate(vocab)}
    tokens = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n_val = int(len(tokens) * a.val_fraction)
    train, val = tokens[: len(tokens) - n_val], tokens[len(tokens) - n_val:]
    T = a.block_size

    model = GPT(len(vocab), T, a.n_layer, a.n_head, a.n_embd, a.dropout)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, a.beta2))
    floor = a.min_lr / a.lr

    def lr_lambda(s):
        if s < a.warmup:
            return (s + 1) / a.warmup
        t = min(1.0, (s - a.warmup) / max(a.steps - a.warmup, 1))
        return floor + 0.5 * (1 - floor) * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)

    # Validation windows: non-overlapping, up to eval_batches * batch_size spread evenly (Ember's).
    n_windows = (len(val) - T - 1) // T + 1
    n_eval = min(n_windows, a.eval_batches * a.batch_size)
    spacing = max(n_windows // max(n_eval, 1), 1)
    starts = [i * spacing * T for i in range(n_eval)]
    vx = torch.stack([val[s:s + T] for s in starts])
    vy = torch.stack([val[s + 1:s + T + 1] for s in starts])

    @torch.no_grad()
    def evaluate():
        model.eval()
        total = 0.0
        for i in range(0, n_eval, a.batch_size):
            logits = model(vx[i:i + a.batch_size])
            total += F.cross_entropy(logits.flatten(0, 1), vy[i:i + a.batch_size].flatten()).item() \
                * logits.shape[0]
        model.train()
        return total / n_eval

    # Training windows: every start position, shuffled each epoch, whole batches (Ember's loader).
    n_train = len(train) - T
    gen = torch.Generator().manual_seed(a.seed)
    perm, pos = torch.randperm(n_train, generator=gen), 0
    history = []
    t0 = time.time()
    step = 0
    while step < a.steps:
        if pos + a.batch_size > n_train:
            perm, pos = torch.randperm(n_train, generator=gen), 0
        idx = perm[pos:pos + a.batch_size]
        pos += a.batch_size
        x = torch.stack([train[i:i + T] for i in idx.tolist()])
        y = torch.stack([train[i + 1:i + T + 1] for i in idx.tolist()])
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        opt.step()
        sched.step()
        step += 1
        if step % a.log_every == 0:
            tps = step * a.batch_size * T / (time.time() - t0)
            print(f"step {step}/{a.steps} loss {loss.item():.4f} {tps:.0f} tok/s", flush=True)
        if step % a.eval_every == 0 or step == a.steps:
            v = evaluate()
            history.append({"step": step, "val_loss": v})
            print(f"step {step}: val loss {v:.4f} nats/token, {v / math.log(2):.4f} bits/char",
                  flush=True)
    secs = time.time() - t0
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "steps": a.steps,
              "val_loss": history[-1]["val_loss"], "history": history,
              "tokens_per_sec": a.steps * a.batch_size * T / secs, "seconds": secs}
    with open(os.path.join(a.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"summary: steps={a.steps} val_loss={result['val_loss']:.4f} "
          f"tokens_per_sec={result['tokens_per_sec']:.0f} time={secs:.0f}s torch={torch.__version__}")


if __name__ == "__main__":
    main()
