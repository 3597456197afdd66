// The GPT model of the GPT trainer: a decoder-only Transformer (Radford et al. 2019) with token and
// position embeddings, pre-LayerNorm blocks of causal multi-head attention and a GELU MLP, a final
// LayerNorm, and the output projection tied to the token embedding. Submodule and parameter names
// are those of Hugging Face's GPT-2 (`transformer.h.0.attn.c_attn.weight`, ...), so GPT-2's
// weights load by name (load_gpt2_weights).
//
//   gpt::GPT model(gpt::GPTConfig::preset("default", vocab_size));
//   Tensor logits = model->forward(idx);                      // idx (B, T) int64 -> (B, T, V)
//   Tensor out = gpt::generate(model, prompt, 200, 0.8, 40);  // (1, T0) -> (1, T0 + 200)
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "ember/ember.hpp"

namespace ember_examples::gpt {

namespace nn = ember::nn;
using ember::Tensor;

/// The model's shape. vocab_size comes from the tokenizer.
struct GPTConfig {
  int64_t vocab_size = 0;
  int64_t block_size = 128;  // the longest context
  int64_t n_layer = 4, n_head = 4, n_embd = 256;
  double dropout = 0.1;
  bool bias = true;  // biases in the Linear layers and LayerNorms (GPT-2 has them)

  /// "default" (4 layers, 256 wide, 4 heads, context 128, dropout 0.1), "tiny" (2 layers, 64
  /// wide, 4 heads, context 32; for tests) or "gpt2" (GPT-2 124M: 12 layers, 768 wide, 12 heads,
  /// context 1024, vocabulary 50257, no dropout). vocab_size overrides the preset's when > 0.
  /// ValueError for another name.
  static GPTConfig preset(const std::string& name, int64_t vocab_size = 0);
  /// ValueError naming the field when a size is not positive, n_embd is not divisible by n_head,
  /// or dropout is outside [0, 1).
  void validate() const;
};

/// Causal multi-head self-attention: c_attn projects x to q, k and v at once (C -> 3C), each split
/// into n_head heads of C / n_head; scaled_dot_product_attention with is_causal; c_proj (C -> C).
class CausalSelfAttentionImpl : public nn::Module {
 public:
  explicit CausalSelfAttentionImpl(const GPTConfig& config);
  /// x (B, T, C) -> (B, T, C).
  Tensor forward(const Tensor& x);
  /// residual + forward(x), the block's skip connection: without dropout at the output (eval, or
  /// dropout 0) one ember::linear_residual, which adds the residual in c_proj's GEMM epilogue.
  Tensor forward(const Tensor& x, const Tensor& residual);
  /// The heads' outputs merged, before c_proj: (B, T, C).
  Tensor attend(const Tensor& x);

  nn::Linear c_attn{nullptr}, c_proj{nullptr};
  nn::Dropout resid_dropout{nullptr};
  int64_t n_head;
  double dropout;
};
EMBER_MODULE(CausalSelfAttention);

/// c_fc (C -> 4C), GELU (tanh approximation, GPT-2's "gelu_new"), c_proj (4C -> C), dropout.
class MLPImpl : public nn::Module {
 public:
  explicit MLPImpl(const GPTConfig& config);
  Tensor forward(const Tensor& x);
  /// residual + forward(x), as CausalSelfAttention's.
  Tensor forward(const Tensor& x, const Tensor& residual);

  nn::Linear c_fc{nullptr}, c_proj{nullptr};
  nn::Dropout dropout{nullptr};
};
EMBER_MODULE(MLP);

/// Pre-norm block: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)).
class BlockImpl : public nn::Module {
 public:
  explicit BlockImpl(const GPTConfig& config);
  Tensor forward(const Tensor& x);

  nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  CausalSelfAttention attn{nullptr};
  MLP mlp{nullptr};
};
EMBER_MODULE(Block);

/// The embeddings, the blocks and the final norm, under GPT-2's names wte, wpe, drop, h, ln_f.
class TransformerImpl : public nn::Module {
 public:
  explicit TransformerImpl(const GPTConfig& config);

  nn::Embedding wte{nullptr}, wpe{nullptr};
  nn::Dropout drop{nullptr};
  nn::ModuleList h{nullptr};
  nn::LayerNorm ln_f{nullptr};
};
EMBER_MODULE(Transformer);

/// The language model. The output projection is transformer.wte.weight itself (weight tying), so
/// there is no separate lm_head parameter.
class GPTImpl : public nn::Module {
 public:
  /// Built and initialised as GPT-2 (and nanoGPT): Linear and Embedding weights N(0, 0.02), biases
  /// 0, the residual projections (c_proj) N(0, 0.02 / sqrt(2 n_layer)), LayerNorm 1 and 0. The
  /// draws come from the default generator (seed it first).
  explicit GPTImpl(const GPTConfig& config);
  /// idx (B, T) int64 token ids, T <= block_size -> logits (B, T, vocab_size). ShapeError
  /// otherwise.
  Tensor forward(const Tensor& idx);

  GPTConfig config;
  Transformer transformer{nullptr};
};
EMBER_MODULE(GPT);

/// Mean cross-entropy of next-token prediction: logits (B, T, V), targets (B, T) -> scalar.
Tensor lm_loss(const Tensor& logits, const Tensor& targets);

/// Extends idx (1, T0) by max_new_tokens tokens, each drawn from softmax(logits / temperature)
/// of the last position, keeping only the top_k most likely tokens when top_k > 0 (temperature 0:
/// the most likely token). The context is cropped to the last block_size tokens. Runs in eval mode
/// without autograd and restores the model's mode. `gen` draws the samples (the default generator
/// when absent).
Tensor generate(GPT& model, const Tensor& idx, int64_t max_new_tokens, double temperature = 1.0,
                int64_t top_k = 0, ember::Generator* gen = nullptr);

/// Loads GPT-2 weights as Hugging Face ships them (model.safetensors of `gpt2`): keys with or
/// without the `transformer.` prefix; the Conv1D weights (c_attn, c_proj, c_fc: stored (in, out))
/// transposed to Linear's (out, in); the attention-mask buffers (`attn.bias`, `attn.masked_bias`)
/// and a tied `lm_head.weight` skipped. With gpt2_byte_order, the first 256 rows of wte are
/// reordered from GPT-2's byte tokens (bytes_to_unicode order) to Ember's BPETokenizer, whose ids
/// 0..255 are the byte values. Errors as load_state_dict (strict).
void load_gpt2_weights(GPT& model, const std::string& path, bool gpt2_byte_order = true);

/// The GPT-2 id of each byte value: GPT-2 numbers its 256 byte tokens in the order of its
/// bytes_to_unicode table (the printable bytes 33..126, 161..172, 174..255 first, then the rest in
/// increasing order), so the space byte is token 220.
std::array<int64_t, 256> gpt2_byte_token_ids();

}  // namespace ember_examples::gpt
