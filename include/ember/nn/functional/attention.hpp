// Attention functionals, as torch.nn.functional: scaled_dot_product_attention.
//
//   namespace F = ember::nn::functional;
//   Tensor y = F::scaled_dot_product_attention(q, k, v);               // (B, H, L, D)
//   Tensor c = F::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
//
// Today the public function is the composite `scaled_dot_product_attention_reference` (matmul,
// softmax, masked_fill, dropout: gradients of any order on any device the ops run on); a fused
// kernel will take its place where one exists and is checked against the reference.
#pragma once

#include <optional>

#include "ember/tensor.hpp"

namespace ember::nn::functional {

/// softmax(q k^T * scale + bias) v, with PyTorch's semantics (its math path).
///
/// Shapes: query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); the leading
/// dims broadcast as in matmul. All three share one floating dtype and one device.
///
/// attn_mask (optional) broadcasts to (..., L, S), the shape of the scores, without enlarging it:
/// - bool: true = the key takes part (PyTorch's sdpa convention; nn::MultiheadAttention's bool
///   masks mean the opposite), false positions get -inf before the softmax;
/// - floating: added to the scores (converted to the query's dtype).
/// is_causal masks with tril(ones(L, S)): query i sees keys 0..i (upper-left aligned, also when
/// L != S). Giving both attn_mask and is_causal is a ValueError, as in PyTorch.
/// scale defaults to 1 / sqrt(E). dropout_p in [0, 1] drops attention weights (the default
/// generator; always applied when > 0, as the functional form has no training flag).
///
/// A query row whose scores are all -inf (every key masked) gives an output row of zeros and a
/// zero gradient, as PyTorch's math path does since 2.5 (its "safe softmax"); a plain softmax
/// would give NaN.
Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& attn_mask = {}, double dropout_p = 0.0,
                                    bool is_causal = false,
                                    std::optional<double> scale = std::nullopt);

/// The composite the public function runs (and a fused kernel is tested against). Same contract.
Tensor scaled_dot_product_attention_reference(const Tensor& query, const Tensor& key,
                                              const Tensor& value, const Tensor& attn_mask = {},
                                              double dropout_p = 0.0, bool is_causal = false,
                                              std::optional<double> scale = std::nullopt);

}  // namespace ember::nn::functional
