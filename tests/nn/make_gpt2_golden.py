"""Writes tests/nn/golden/gpt2_tiny.safetensors and gpt2_tiny_io.safetensors: a small GPT-2 made by
Hugging Face transformers (GPT2LMHeadModel, random weights with initializer_range 0.2 so the
logits are far from uniform), stored as the Hub's gpt2 model.safetensors is (keys without the
`transformer.` prefix, Conv1D weights as (in, out), the `h.N.attn.bias` causal-mask buffers, no
lm_head), and token ids with the model's eval-mode logits. tests/nn/test_gpt_model.cpp loads the
weights into the GPT trainer's model and compares the logits.

Run once with torch, transformers and safetensors installed (python3 tests/nn/make_gpt2_golden.py);
the small files it writes are committed, so the test suite itself never needs Python.
"""
import os

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

torch.manual_seed(0)
cfg = GPT2Config(vocab_size=300, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                 initializer_range=0.2, bos_token_id=0, eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
model = GPT2LMHeadModel(cfg).eval()
# Non-zero biases and LayerNorm parameters, so every parameter is checked.
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith("bias") or ".ln_" in name:
            p.add_(0.1 * torch.randn_like(p))

weights = {}
for k, v in model.transformer.state_dict().items():
    weights[k] = v.contiguous().clone()
for i in range(cfg.n_layer):  # the Hub file holds the causal mask as a buffer per layer
    weights[f"h.{i}.attn.bias"] = torch.tril(torch.ones(16, 16)).view(1, 1, 16, 16)

idx = torch.randint(0, cfg.vocab_size, (2, 16))
idx[0, :8] = torch.randint(0, 256, (8,))  # byte tokens, for the byte-order test
with torch.no_grad():
    logits = model(idx).logits

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
save_file(weights, os.path.join(here, "gpt2_tiny.safetensors"))
save_file({"idx": idx, "logits": logits.contiguous()}, os.path.join(here, "gpt2_tiny_io.safetensors"))
print("wrote", len(weights), "tensors; logits", tuple(logits.shape), "std", logits.std().item())
