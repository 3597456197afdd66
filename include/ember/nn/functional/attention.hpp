// Attention functionals, as torch.nn.functional: scaled_dot_product_attention.
//
//   namespace F = ember::nn::functional;
//   Tensor y = F::scaled_dot_product_attention(q, k, v);               // (B, H, L, D)
//   Tensor c = F::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
//
// The public function runs the fused FlashAttention-2 kernel
// (`scaled_dot_product_attention_flash`: no (L, S) score matrix, O(L) extra memory) when
//   - query, key and value are on the CPU, float32 or float64, or on CUDA, bfloat16 or float16
//     with head dims E == Ev in {64, 128} (the tensor-core kernels of src/cuda/attention.cu),
//   - there is no attn_mask (is_causal is fine) and 0 <= dropout_p < 1,
//   - the batch dims of query, key and value are equal (no broadcasting);
// everything else (masks, dropout_p == 1, broadcast batch dims, float16/bfloat16 on the CPU,
// float32/float64 or other head dims on CUDA) runs the
// composite `scaled_dot_product_attention_reference` (matmul, softmax, masked_fill, dropout:
// gradients of any order on any device the ops run on). The two agree to rounding (the tests
// compare them, forward and backward). The fused node's backward kernel is first-order only;
// under create_graph=true (double backward) the node differentiates the composite instead, so
// higher-order gradients are exact either way.
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

/// The composite the public function runs where the fused kernel does not apply (and the fused
/// kernel is tested against). Same contract.
Tensor scaled_dot_product_attention_reference(const Tensor& query, const Tensor& key,
                                              const Tensor& value, const Tensor& attn_mask = {},
                                              double dropout_p = 0.0, bool is_causal = false,
                                              std::optional<double> scale = std::nullopt);

/// The fused kernel the public function dispatches to (FlashAttention-2: tiles of queries and
/// keys, online softmax, the log-sum-exp kept for a tiled backward), for tests and benchmarks.
/// query (..., L, E), key (..., S, E), value (..., S, Ev) with equal batch dims (any strides),
/// float32 or float64 on the CPU, or bfloat16/float16 with E == Ev in {64, 128} on CUDA (float32
/// accumulation; bitwise repeatable); no mask; otherwise a typed error naming
/// [scaled_dot_product_attention_flash]. dropout_p in [0, 1) drops attention weights with the
/// default generator's Philox stream (the mask bernoulli(1 - p) over (..., L, S) would draw; it is
/// regenerated in backward, never stored). Results are bitwise independent of the thread count.
/// Backward: a fused first-order kernel; with create_graph=true the composite's gradient (with
/// the same dropout mask).
Tensor scaled_dot_product_attention_flash(const Tensor& query, const Tensor& key,
                                          const Tensor& value, bool is_causal = false,
                                          std::optional<double> scale = std::nullopt,
                                          double dropout_p = 0.0);

}  // namespace ember::nn::functional
