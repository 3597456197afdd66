#!/usr/bin/env python3
"""Writes tests/nn/attention_golden.txt: outputs of torch's MultiheadAttention,
TransformerEncoderLayer, TransformerDecoderLayer and TransformerEncoder / TransformerDecoder for
fixed float64 weights and inputs. test_attention.cpp and test_transformer.cpp load the state_dicts
by name into the ember modules and compare the outputs.

Run from the repository root: python3 tests/nn/make_attention_golden.py

Format: one tensor per line, `<name> <dtype f64|bool> <ndim> <sizes...> <values...>`; `#` lines are
comments. Modules run in training mode with dropout 0 and grad enabled, so PyTorch takes its
documented math path (its fused "fast path" needs eval mode or no grad).
"""
import os

import torch
import torch.nn as nn

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
LINES = []


def put(name, t):
    t = t.detach()
    if t.dtype == torch.bool:
        vals = " ".join("1" if x else "0" for x in t.flatten().tolist())
        kind = "bool"
    else:
        vals = " ".join(repr(float(x)) for x in t.flatten().tolist())
        kind = "f64"
    sizes = " ".join(str(s) for s in t.shape)
    LINES.append(f"{name} {kind} {t.dim()} {sizes} {vals}".replace("  ", " "))


def randomize(module):
    """Distinct, non-trivial values for every parameter (LayerNorm weights near 1)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            parts = name.split(".")
            if len(parts) >= 2 and parts[-2].startswith("norm") and parts[-1] == "weight":
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.4 * torch.randn_like(p))


def put_state(prefix, module):
    for k, v in module.state_dict().items():
        put(f"{prefix}.sd.{k}", v)


# ---- MultiheadAttention: cross-attention, float attn_mask, bool key_padding_mask ----
L, S, N, E, H = 3, 4, 2, 8, 2
mha = nn.MultiheadAttention(E, H, dropout=0.0)
randomize(mha)
q, k, v = torch.randn(L, N, E), torch.randn(S, N, E), torch.randn(S, N, E)
kpm = torch.tensor([[False, False, False, False], [False, True, False, True]])
am = torch.randn(L, S)
out, w = mha(q, k, v, key_padding_mask=kpm, attn_mask=am)
_, w_heads = mha(q, k, v, key_padding_mask=kpm, attn_mask=am, average_attn_weights=False)
out_nw, _ = mha(q, k, v, key_padding_mask=kpm, attn_mask=am, need_weights=False)
put_state("mha", mha)
for n, t in [("query", q), ("key", k), ("value", v), ("kpm", kpm), ("attn_mask", am),
             ("out", out), ("weights", w), ("weights_heads", w_heads), ("out_no_weights", out_nw)]:
    put(f"mha.{n}", t)

# ---- MultiheadAttention: kdim / vdim, add_bias_kv, add_zero_attn, batch_first, bool mask ----
mha2 = nn.MultiheadAttention(E, H, kdim=5, vdim=6, add_bias_kv=True, add_zero_attn=True,
                             batch_first=True)
randomize(mha2)
q, k, v = torch.randn(N, L, E), torch.randn(N, S, 5), torch.randn(N, S, 6)
am = torch.tensor([[False, True, False, False], [False, False, True, True],
                   [True, False, False, False]])
out, w = mha2(q, k, v, attn_mask=am)
put_state("mha2", mha2)
for n, t in [("query", q), ("key", k), ("value", v), ("attn_mask", am), ("out", out),
             ("weights", w)]:
    put(f"mha2.{n}", t)

# ---- TransformerEncoderLayer: post-norm relu (seq-first) and pre-norm gelu (batch_first) ----
Ls, D, FF = 5, 8, 16
causal = torch.triu(torch.ones(Ls, Ls, dtype=torch.bool), diagonal=1)  # true = masked
src_kpm = torch.tensor([[False] * Ls, [False, False, False, True, True]])
for name, kw in [("enc_post", dict(norm_first=False, activation="relu", batch_first=False)),
                 ("enc_pre", dict(norm_first=True, activation="gelu", batch_first=True))]:
    layer = nn.TransformerEncoderLayer(D, 2, dim_feedforward=FF, dropout=0.0, **kw)
    randomize(layer)
    src = torch.randn(N, Ls, D) if kw["batch_first"] else torch.randn(Ls, N, D)
    y = layer(src, src_mask=causal, src_key_padding_mask=src_kpm, is_causal=True)
    y_plain = layer(src)
    put_state(name, layer)
    for n, t in [("src", src), ("src_mask", causal), ("src_kpm", src_kpm), ("out", y),
                 ("out_plain", y_plain)]:
        put(f"{name}.{n}", t)

# ---- TransformerDecoderLayer: post-norm relu and pre-norm gelu (batch_first) ----
Lt, Lm = 4, 5
tgt_causal = torch.triu(torch.ones(Lt, Lt, dtype=torch.bool), diagonal=1)
mem_kpm = torch.tensor([[False] * Lm, [False, True, False, False, True]])
for name, kw in [("dec_post", dict(norm_first=False, activation="relu", batch_first=False)),
                 ("dec_pre", dict(norm_first=True, activation="gelu", batch_first=True))]:
    layer = nn.TransformerDecoderLayer(D, 2, dim_feedforward=FF, dropout=0.0, **kw)
    randomize(layer)
    if kw["batch_first"]:
        tgt, mem = torch.randn(N, Lt, D), torch.randn(N, Lm, D)
    else:
        tgt, mem = torch.randn(Lt, N, D), torch.randn(Lm, N, D)
    y = layer(tgt, mem, tgt_mask=tgt_causal, memory_key_padding_mask=mem_kpm, tgt_is_causal=True)
    put_state(name, layer)
    for n, t in [("tgt", tgt), ("memory", mem), ("tgt_mask", tgt_causal), ("mem_kpm", mem_kpm),
                 ("out", y)]:
        put(f"{name}.{n}", t)

# ---- TransformerEncoder / TransformerDecoder: 2 layers and a final LayerNorm ----
enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, 2, FF, 0.0), 2, norm=nn.LayerNorm(D),
                            enable_nested_tensor=False)
randomize(enc)
src = torch.randn(Ls, N, D)
y = enc(src, mask=causal)
put_state("enc_stack", enc)
put("enc_stack.src", src)
put("enc_stack.mask", causal)
put("enc_stack.out", y)
dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(D, 2, FF, 0.0), 2, norm=nn.LayerNorm(D))
randomize(dec)
tgt, mem = torch.randn(Lt, N, D), torch.randn(Lm, N, D)
y = dec(tgt, mem, tgt_mask=tgt_causal)
put_state("dec_stack", dec)
put("dec_stack.tgt", tgt)
put("dec_stack.memory", mem)
put("dec_stack.tgt_mask", tgt_causal)
put("dec_stack.out", y)

# ---- Transformer: 2 encoder layers, 1 decoder layer ----
tr = nn.Transformer(d_model=D, nhead=2, num_encoder_layers=2, num_decoder_layers=1,
                    dim_feedforward=FF, dropout=0.0)
randomize(tr)
src, tgt = torch.randn(Ls, N, D), torch.randn(Lt, N, D)
y = tr(src, tgt, tgt_mask=tgt_causal, src_key_padding_mask=src_kpm,
       memory_key_padding_mask=src_kpm)
put_state("transformer", tr)
put("transformer.src", src)
put("transformer.tgt", tgt)
put("transformer.tgt_mask", tgt_causal)
put("transformer.src_kpm", src_kpm)
put("transformer.out", y)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "attention_golden.txt")
with open(path, "w") as f:
    f.write(f"# written by tests/nn/make_attention_golden.py with torch {torch.__version__}\n")
    f.write("\n".join(LINES) + "\n")
print(f"wrote {len(LINES)} tensors to {path}")
