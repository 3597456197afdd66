// TransformerEncoderLayer, TransformerDecoderLayer, TransformerEncoder, TransformerDecoder,
// Transformer (include/ember/nn/modules/transformer.hpp), written as PyTorch's
// torch/nn/modules/transformer.py computes them (its math path).
#include "ember/nn/modules/transformer.hpp"

#include <limits>
#include <vector>

#include "ember/nn/init.hpp"
#include "ember/ops.hpp"

namespace ember::nn {

namespace {

void check_options(const TransformerLayerOptions& o, const char* op) {
  EMBER_CHECK(o.d_model_ > 0 && o.nhead_ > 0 && o.dim_feedforward_ > 0, ValueError, "[", op,
              "] expected positive sizes, got d_model=", o.d_model_, ", nhead=", o.nhead_,
              ", dim_feedforward=", o.dim_feedforward_);
  EMBER_CHECK(o.activation_ == "relu" || o.activation_ == "gelu", ValueError, "[", op,
              "] activation must be 'relu' or 'gelu', got '", o.activation_, "'");
}

/// residual + drop_out(linear2(drop_in(act(linear1(x))))), the feed-forward block and its skip
/// connection: the activation in linear1's GEMM (linear_gelu / linear_relu) and, when drop_out
/// drops nothing (eval, or dropout 0), the residual in linear2's (linear_residual). Exactly the
/// composite where they do not fuse (the CPU).
Tensor feed_forward_residual(Linear linear1, Linear linear2, Dropout drop_in, Dropout drop_out,
                             const std::string& activation, const Tensor& x,
                             const Tensor& residual) {
  const Tensor h = drop_in(activation == "gelu" ? linear_gelu(x, linear1->weight, linear1->bias)
                                                : linear_relu(x, linear1->weight, linear1->bias));
  if (drop_out->is_training() && drop_out->p > 0.0) return residual + drop_out(linear2(h));
  return linear_residual(h, linear2->weight, linear2->bias, residual);
}

MultiheadAttention make_attention(const TransformerLayerOptions& o) {
  return MultiheadAttention(MultiheadAttentionOptions(o.d_model_, o.nhead_)
                                .dropout(o.dropout_)
                                .bias(o.bias_)
                                .batch_first(o.batch_first_));
}

LayerNorm make_norm(const TransformerLayerOptions& o) {
  return LayerNorm(std::vector<int64_t>{o.d_model_}, o.layer_norm_eps_, true, o.bias_);
}

TransformerLayerOptions positional(int64_t d_model, int64_t nhead, int64_t dim_feedforward,
                                   double dropout, const std::string& activation,
                                   double layer_norm_eps, bool batch_first, bool norm_first,
                                   bool bias) {
  return TransformerLayerOptions(d_model, nhead)
      .dim_feedforward(dim_feedforward)
      .dropout(dropout)
      .activation(activation)
      .layer_norm_eps(layer_norm_eps)
      .batch_first(batch_first)
      .norm_first(norm_first)
      .bias(bias);
}

}  // namespace

// ---- TransformerEncoderLayer ----

TransformerEncoderLayerImpl::TransformerEncoderLayerImpl(int64_t d_model, int64_t nhead,
                                                         int64_t dim_feedforward, double dropout,
                                                         const std::string& activation,
                                                         double layer_norm_eps, bool batch_first,
                                                         bool norm_first, bool bias)
    : TransformerEncoderLayerImpl(positional(d_model, nhead, dim_feedforward, dropout, activation,
                                             layer_norm_eps, batch_first, norm_first, bias)) {}

TransformerEncoderLayerImpl::TransformerEncoderLayerImpl(const TransformerLayerOptions& o)
    : options(o) {
  check_options(o, "TransformerEncoderLayer");
  // PyTorch's construction order (and so its parameter order).
  self_attn = register_module("self_attn", make_attention(o));
  linear1 = register_module("linear1", Linear(o.d_model_, o.dim_feedforward_, o.bias_));
  dropout = register_module("dropout", Dropout(o.dropout_));
  linear2 = register_module("linear2", Linear(o.dim_feedforward_, o.d_model_, o.bias_));
  norm1 = register_module("norm1", make_norm(o));
  norm2 = register_module("norm2", make_norm(o));
  dropout1 = register_module("dropout1", Dropout(o.dropout_));
  dropout2 = register_module("dropout2", Dropout(o.dropout_));
}

Tensor TransformerEncoderLayerImpl::forward(const Tensor& src, const Tensor& src_mask,
                                            const Tensor& src_key_padding_mask, bool is_causal) {
  auto sa = [&](const Tensor& x) {
    return dropout1(std::get<0>(self_attn(x, x, x, src_key_padding_mask, /*need_weights=*/false,
                                          src_mask, true, is_causal)));
  };
  auto ff = [&](const Tensor& x, const Tensor& residual) {  // residual + ff(x)
    return feed_forward_residual(linear1, linear2, dropout, dropout2, options.activation_, x,
                                 residual);
  };
  Tensor x = src;
  if (options.norm_first_) {
    x = x + sa(norm1(x));
    x = ff(norm2(x), x);
  } else {
    x = norm1(x + sa(x));
    x = norm2(ff(x, x));
  }
  return x;
}

// ---- TransformerDecoderLayer ----

TransformerDecoderLayerImpl::TransformerDecoderLayerImpl(int64_t d_model, int64_t nhead,
                                                         int64_t dim_feedforward, double dropout,
                                                         const std::string& activation,
                                                         double layer_norm_eps, bool batch_first,
                                                         bool norm_first, bool bias)
    : TransformerDecoderLayerImpl(positional(d_model, nhead, dim_feedforward, dropout, activation,
                                             layer_norm_eps, batch_first, norm_first, bias)) {}

TransformerDecoderLayerImpl::TransformerDecoderLayerImpl(const TransformerLayerOptions& o)
    : options(o) {
  check_options(o, "TransformerDecoderLayer");
  self_attn = register_module("self_attn", make_attention(o));
  multihead_attn = register_module("multihead_attn", make_attention(o));
  linear1 = register_module("linear1", Linear(o.d_model_, o.dim_feedforward_, o.bias_));
  dropout = register_module("dropout", Dropout(o.dropout_));
  linear2 = register_module("linear2", Linear(o.dim_feedforward_, o.d_model_, o.bias_));
  norm1 = register_module("norm1", make_norm(o));
  norm2 = register_module("norm2", make_norm(o));
  norm3 = register_module("norm3", make_norm(o));
  dropout1 = register_module("dropout1", Dropout(o.dropout_));
  dropout2 = register_module("dropout2", Dropout(o.dropout_));
  dropout3 = register_module("dropout3", Dropout(o.dropout_));
}

Tensor TransformerDecoderLayerImpl::forward(const Tensor& tgt, const Tensor& memory,
                                            const Tensor& tgt_mask, const Tensor& memory_mask,
                                            const Tensor& tgt_key_padding_mask,
                                            const Tensor& memory_key_padding_mask,
                                            bool tgt_is_causal, bool memory_is_causal) {
  EMBER_CHECK(memory.defined(), ValueError, "[TransformerDecoderLayer] memory must be defined");
  auto sa = [&](const Tensor& x) {
    return dropout1(std::get<0>(self_attn(x, x, x, tgt_key_padding_mask, /*need_weights=*/false,
                                          tgt_mask, true, tgt_is_causal)));
  };
  auto mha = [&](const Tensor& x) {
    return dropout2(
        std::get<0>(multihead_attn(x, memory, memory, memory_key_padding_mask,
                                   /*need_weights=*/false, memory_mask, true, memory_is_causal)));
  };
  auto ff = [&](const Tensor& x, const Tensor& residual) {  // residual + ff(x)
    return feed_forward_residual(linear1, linear2, dropout, dropout3, options.activation_, x,
                                 residual);
  };
  Tensor x = tgt;
  if (options.norm_first_) {
    x = x + sa(norm1(x));
    x = x + mha(norm2(x));
    x = ff(norm3(x), x);
  } else {
    x = norm1(x + sa(x));
    x = norm2(x + mha(x));
    x = norm3(ff(x, x));
  }
  return x;
}

// ---- stacks ----

namespace {

/// A new layer with the prototype's options and a copy of its parameters (PyTorch deep-copies).
template <class Layer>
Layer copy_layer(const Layer& prototype) {
  Layer layer(prototype->options);
  layer->load_state_dict(prototype->state_dict());
  layer->train(prototype->is_training());
  return layer;
}

}  // namespace

TransformerEncoderImpl::TransformerEncoderImpl(const TransformerEncoderLayer& encoder_layer,
                                               int64_t n, LayerNorm final_norm)
    : num_layers(n) {
  EMBER_CHECK(!encoder_layer.is_empty() && n >= 1, ValueError,
              "[TransformerEncoder] expected a layer and num_layers >= 1, got num_layers=", n);
  layers = register_module("layers", ModuleList());
  for (int64_t i = 0; i < n; ++i) layers->push_back(copy_layer(encoder_layer));
  if (final_norm) norm = register_module("norm", final_norm);
}

Tensor TransformerEncoderImpl::forward(const Tensor& src, const Tensor& mask,
                                       const Tensor& src_key_padding_mask, bool is_causal) {
  Tensor x = src;
  for (size_t i = 0; i < layers->size(); ++i)
    x = layers->at<TransformerEncoderLayerImpl>(i)->forward(x, mask, src_key_padding_mask,
                                                            is_causal);
  return norm ? norm(x) : x;
}

TransformerDecoderImpl::TransformerDecoderImpl(const TransformerDecoderLayer& decoder_layer,
                                               int64_t n, LayerNorm final_norm)
    : num_layers(n) {
  EMBER_CHECK(!decoder_layer.is_empty() && n >= 1, ValueError,
              "[TransformerDecoder] expected a layer and num_layers >= 1, got num_layers=", n);
  layers = register_module("layers", ModuleList());
  for (int64_t i = 0; i < n; ++i) layers->push_back(copy_layer(decoder_layer));
  if (final_norm) norm = register_module("norm", final_norm);
}

Tensor TransformerDecoderImpl::forward(const Tensor& tgt, const Tensor& memory,
                                       const Tensor& tgt_mask, const Tensor& memory_mask,
                                       const Tensor& tgt_key_padding_mask,
                                       const Tensor& memory_key_padding_mask, bool tgt_is_causal,
                                       bool memory_is_causal) {
  Tensor x = tgt;
  for (size_t i = 0; i < layers->size(); ++i)
    x = layers->at<TransformerDecoderLayerImpl>(i)->forward(
        x, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask,
        tgt_is_causal, memory_is_causal);
  return norm ? norm(x) : x;
}

// ---- Transformer ----

TransformerImpl::TransformerImpl(const TransformerOptions& o) : options(o) {
  const TransformerLayerOptions& l = o.layer_;
  auto final_norm = [&] {
    return LayerNorm(std::vector<int64_t>{l.d_model_}, l.layer_norm_eps_, true, l.bias_);
  };
  encoder = register_module("encoder", TransformerEncoder(TransformerEncoderLayer(l),
                                                          o.num_encoder_layers_, final_norm()));
  decoder = register_module("decoder", TransformerDecoder(TransformerDecoderLayer(l),
                                                          o.num_decoder_layers_, final_norm()));
  for (Tensor& p : parameters())
    if (p.dim() > 1) init::xavier_uniform_(p);
}

Tensor TransformerImpl::forward(const Tensor& src, const Tensor& tgt, const Tensor& src_mask,
                                const Tensor& tgt_mask, const Tensor& memory_mask,
                                const Tensor& src_key_padding_mask,
                                const Tensor& tgt_key_padding_mask,
                                const Tensor& memory_key_padding_mask, bool src_is_causal,
                                bool tgt_is_causal, bool memory_is_causal) {
  EMBER_CHECK(src.defined() && tgt.defined(), ValueError,
              "[Transformer] src and tgt must be defined");
  EMBER_CHECK(src.dim() == tgt.dim(), ShapeError,
              "[Transformer] src and tgt must both be batched or unbatched, got src ", src.sizes(),
              ", tgt ", tgt.sizes());
  const int64_t d_model = options.layer_.d_model_;
  EMBER_CHECK(src.dim() >= 1 && src.size(-1) == d_model && tgt.size(-1) == d_model, ShapeError,
              "[Transformer] the feature size of src and tgt must be d_model=", d_model,
              ", got src ", src.sizes(), ", tgt ", tgt.sizes());
  if (src.dim() == 3) {
    const int64_t bd = options.layer_.batch_first_ ? 0 : 1;
    EMBER_CHECK(src.size(bd) == tgt.size(bd), ShapeError,
                "[Transformer] the batch sizes of src and tgt differ: src ", src.sizes(), ", tgt ",
                tgt.sizes());
  }
  Tensor memory = encoder(src, src_mask, src_key_padding_mask, src_is_causal);
  return decoder(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask,
                 tgt_is_causal, memory_is_causal);
}

Tensor generate_square_subsequent_mask(int64_t sz, TensorOptions options) {
  EMBER_CHECK(sz >= 0, ValueError, "[generate_square_subsequent_mask] expected sz >= 0, got ", sz);
  return triu(full({sz, sz}, -std::numeric_limits<double>::infinity(), options), 1);
}

}  // namespace ember::nn
