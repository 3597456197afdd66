// Transformer layers, as torch.nn: TransformerEncoderLayer, TransformerDecoderLayer, the
// stacks TransformerEncoder, TransformerDecoder and the encoder-decoder Transformer. Submodule
// names, parameter init, the order of operations (post-norm by default, pre-norm with norm_first)
// and the masks are PyTorch's, so a state_dict saved from PyTorch loads by name.
//
//   nn::TransformerEncoderLayer layer(
//       nn::TransformerEncoderLayerOptions(512, 8).dim_feedforward(2048).batch_first(true));
//   Tensor y = layer(x);                                  // x (N, L, 512)
//   nn::TransformerEncoder enc(layer, /*num_layers=*/6);  // six copies of layer
//   Tensor z = enc(x, causal_mask, pad_mask);
#pragma once

#include <cstdint>
#include <string>

#include "ember/nn/module.hpp"
#include "ember/nn/modules/attention.hpp"
#include "ember/nn/modules/dropout.hpp"
#include "ember/nn/modules/linear.hpp"
#include "ember/nn/modules/normalization.hpp"

namespace ember::nn {

/// Options shared by TransformerEncoderLayer and TransformerDecoderLayer (PyTorch's defaults):
/// TransformerLayerOptions(d_model, nhead).dim_feedforward(1024).activation("gelu").
struct TransformerLayerOptions {
  TransformerLayerOptions(int64_t d_model, int64_t nhead) : d_model_(d_model), nhead_(nhead) {}
  TransformerLayerOptions& dim_feedforward(int64_t v) {
    dim_feedforward_ = v;
    return *this;
  }
  TransformerLayerOptions& dropout(double v) {
    dropout_ = v;
    return *this;
  }
  /// "relu" or "gelu" (the erf form).
  TransformerLayerOptions& activation(std::string v) {
    activation_ = std::move(v);
    return *this;
  }
  TransformerLayerOptions& layer_norm_eps(double v) {
    layer_norm_eps_ = v;
    return *this;
  }
  TransformerLayerOptions& batch_first(bool v) {
    batch_first_ = v;
    return *this;
  }
  TransformerLayerOptions& norm_first(bool v) {
    norm_first_ = v;
    return *this;
  }
  TransformerLayerOptions& bias(bool v) {
    bias_ = v;
    return *this;
  }
  int64_t d_model_, nhead_;
  int64_t dim_feedforward_ = 2048;
  double dropout_ = 0.1;
  std::string activation_ = "relu";
  double layer_norm_eps_ = 1e-5;
  bool batch_first_ = false;
  bool norm_first_ = false;
  bool bias_ = true;
};
using TransformerEncoderLayerOptions = TransformerLayerOptions;
using TransformerDecoderLayerOptions = TransformerLayerOptions;

/// Self-attention then a feed-forward block, each with a residual connection:
///   post-norm (default): x = norm1(x + sa(x)); x = norm2(x + ff(x))
///   norm_first:          x = x + sa(norm1(x)); x = x + ff(norm2(x))
/// with sa(x) = dropout1(self_attn(x, x, x)) and ff(x) =
/// dropout2(linear2(dropout(act(linear1(x))))). Submodules: self_attn, linear1, dropout, linear2,
/// norm1, norm2, dropout1, dropout2.
class TransformerEncoderLayerImpl : public Module {
 public:
  explicit TransformerEncoderLayerImpl(const TransformerLayerOptions& options);
  TransformerEncoderLayerImpl(int64_t d_model, int64_t nhead, int64_t dim_feedforward = 2048,
                              double dropout = 0.1, const std::string& activation = "relu",
                              double layer_norm_eps = 1e-5, bool batch_first = false,
                              bool norm_first = false, bool bias = true);

  /// src (L, N, E), (N, L, E) with batch_first, or unbatched (L, E). src_mask (L, S) or
  /// (N * nhead, L, S) and src_key_padding_mask (N, S) as MultiheadAttention's attn_mask and
  /// key_padding_mask (bool: true = excluded; or floating, added). is_causal: PyTorch's hint that
  /// src_mask is the causal mask (src_mask is still required and applied).
  Tensor forward(const Tensor& src, const Tensor& src_mask = {},
                 const Tensor& src_key_padding_mask = {}, bool is_causal = false);

  TransformerLayerOptions options;
  MultiheadAttention self_attn{nullptr};
  Linear linear1{nullptr}, linear2{nullptr};
  Dropout dropout{nullptr}, dropout1{nullptr}, dropout2{nullptr};
  LayerNorm norm1{nullptr}, norm2{nullptr};
};
EMBER_MODULE(TransformerEncoderLayer);

/// Self-attention, cross-attention over `memory`, then a feed-forward block:
///   post-norm: x = norm1(x + sa(x)); x = norm2(x + mha(x, memory)); x = norm3(x + ff(x))
///   norm_first: x = x + sa(norm1(x)); x = x + mha(norm2(x), memory); x = x + ff(norm3(x))
/// Submodules: self_attn, multihead_attn, linear1, dropout, linear2, norm1..3, dropout1..3.
class TransformerDecoderLayerImpl : public Module {
 public:
  explicit TransformerDecoderLayerImpl(const TransformerLayerOptions& options);
  TransformerDecoderLayerImpl(int64_t d_model, int64_t nhead, int64_t dim_feedforward = 2048,
                              double dropout = 0.1, const std::string& activation = "relu",
                              double layer_norm_eps = 1e-5, bool batch_first = false,
                              bool norm_first = false, bool bias = true);

  /// tgt (T, N, E) and memory (S, N, E) (batch_first: (N, T, E), (N, S, E); unbatched without N).
  /// tgt_mask (T, T) / tgt_key_padding_mask (N, T) mask the self-attention, memory_mask (T, S) /
  /// memory_key_padding_mask (N, S) the cross-attention, as MultiheadAttention's masks.
  /// tgt_is_causal / memory_is_causal are hints about tgt_mask / memory_mask, as is_causal.
  Tensor forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask = {},
                 const Tensor& memory_mask = {}, const Tensor& tgt_key_padding_mask = {},
                 const Tensor& memory_key_padding_mask = {}, bool tgt_is_causal = false,
                 bool memory_is_causal = false);

  TransformerLayerOptions options;
  MultiheadAttention self_attn{nullptr}, multihead_attn{nullptr};
  Linear linear1{nullptr}, linear2{nullptr};
  Dropout dropout{nullptr}, dropout1{nullptr}, dropout2{nullptr}, dropout3{nullptr};
  LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
};
EMBER_MODULE(TransformerDecoderLayer);

/// num_layers copies of `encoder_layer` (same options and, as PyTorch's deepcopy, the same
/// initial parameter values) in a ModuleList `layers`, then the optional `norm`.
/// PyTorch's nested-tensor fast path (which returns zeros at padded positions in eval mode) is
/// not implemented: padded positions hold the computed values.
class TransformerEncoderImpl : public Module {
 public:
  TransformerEncoderImpl(const TransformerEncoderLayer& encoder_layer, int64_t num_layers,
                         LayerNorm norm = nullptr);
  /// Each layer's forward(src, mask, src_key_padding_mask, is_causal), then norm.
  Tensor forward(const Tensor& src, const Tensor& mask = {},
                 const Tensor& src_key_padding_mask = {}, bool is_causal = false);

  ModuleList layers{nullptr};
  LayerNorm norm{nullptr};
  int64_t num_layers;
};
EMBER_MODULE(TransformerEncoder);

/// num_layers copies of `decoder_layer` in `layers`, then the optional `norm`.
class TransformerDecoderImpl : public Module {
 public:
  TransformerDecoderImpl(const TransformerDecoderLayer& decoder_layer, int64_t num_layers,
                         LayerNorm norm = nullptr);
  /// Each layer's forward with the same arguments, then norm.
  Tensor forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask = {},
                 const Tensor& memory_mask = {}, const Tensor& tgt_key_padding_mask = {},
                 const Tensor& memory_key_padding_mask = {}, bool tgt_is_causal = false,
                 bool memory_is_causal = false);

  ModuleList layers{nullptr};
  LayerNorm norm{nullptr};
  int64_t num_layers;
};
EMBER_MODULE(TransformerDecoder);

/// Options of Transformer, PyTorch's arguments and defaults:
/// TransformerOptions(512, 8).num_encoder_layers(6).dim_feedforward(2048).batch_first(true).
struct TransformerOptions {
  TransformerOptions(int64_t d_model = 512, int64_t nhead = 8) : layer_(d_model, nhead) {}
  TransformerOptions& num_encoder_layers(int64_t v) {
    num_encoder_layers_ = v;
    return *this;
  }
  TransformerOptions& num_decoder_layers(int64_t v) {
    num_decoder_layers_ = v;
    return *this;
  }
  // The options of every encoder and decoder layer.
  TransformerOptions& dim_feedforward(int64_t v) {
    layer_.dim_feedforward(v);
    return *this;
  }
  TransformerOptions& dropout(double v) {
    layer_.dropout(v);
    return *this;
  }
  TransformerOptions& activation(std::string v) {
    layer_.activation(std::move(v));
    return *this;
  }
  TransformerOptions& layer_norm_eps(double v) {
    layer_.layer_norm_eps(v);
    return *this;
  }
  TransformerOptions& batch_first(bool v) {
    layer_.batch_first(v);
    return *this;
  }
  TransformerOptions& norm_first(bool v) {
    layer_.norm_first(v);
    return *this;
  }
  TransformerOptions& bias(bool v) {
    layer_.bias(v);
    return *this;
  }
  TransformerLayerOptions layer_;
  int64_t num_encoder_layers_ = 6;
  int64_t num_decoder_layers_ = 6;
};

/// The encoder-decoder model of "Attention Is All You Need", as torch.nn.Transformer:
/// encoder = TransformerEncoder(layer, num_encoder_layers, LayerNorm), decoder likewise; every
/// parameter of two or more dims is then re-initialised with xavier_uniform_, as PyTorch does.
class TransformerImpl : public Module {
 public:
  explicit TransformerImpl(const TransformerOptions& options = {});
  /// src (S, N, E), tgt (T, N, E) (batch_first: (N, S, E), (N, T, E); unbatched without N) ->
  /// (T, N, E). The masks are the layers'; memory_mask and memory_key_padding_mask mask the
  /// decoder's cross-attention.
  Tensor forward(const Tensor& src, const Tensor& tgt, const Tensor& src_mask = {},
                 const Tensor& tgt_mask = {}, const Tensor& memory_mask = {},
                 const Tensor& src_key_padding_mask = {}, const Tensor& tgt_key_padding_mask = {},
                 const Tensor& memory_key_padding_mask = {}, bool src_is_causal = false,
                 bool tgt_is_causal = false, bool memory_is_causal = false);

  TransformerOptions options;
  TransformerEncoder encoder{nullptr};
  TransformerDecoder decoder{nullptr};
};
EMBER_MODULE(Transformer);

/// The float causal mask of size (sz, sz): 0 on and below the diagonal, -inf above, as
/// torch.nn.Transformer.generate_square_subsequent_mask.
Tensor generate_square_subsequent_mask(int64_t sz, TensorOptions options = {});

}  // namespace ember::nn
