// The fused attention op: scaled_dot_product_attention_flash, softmax(q k^T * scale) v by the
// FlashAttention-2 kernels, recorded as one node: on the CPU (src/core/cpu/attention.cpp) for
// float32/float64 and any sizes, on CUDA (src/cuda/attention.cu) for bfloat16/float16 with
// D == Dv in {64, 128}; there lse is float32 whatever the input dtype.
//
// Dropout (dropout_p in (0, 1)) is applied inside the kernels with Philox words reserved from the
// default generator, the mask of bernoulli(1 - p) over the (..., L, S) weights; backward
// regenerates it, so nothing of size L x S is stored.
//
// Its backward is the fused backward kernel, which is first-order only. The engine runs a
// backward with grad mode on exactly when create_graph=true, so the node checks grad mode: when
// on, it recomputes the composite (scaled_dot_product_attention_reference) on the saved inputs and
// differentiates that with create_graph, as checkpoint does. Higher-order gradients through the
// fused op are therefore exact (the composite's), and only first-order ones take the fast path.
#include "ember/nn/functional/attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <vector>

#include "core/dispatch.hpp"
#include "core/kernels.hpp"
#include "core/record.hpp"
#include "ember/ops.hpp"

namespace ember::nn::functional {

using autograd::Grads;
using autograd::Saved;

namespace {

/// The composite with dropout's mask given: softmax(q k^T * scale [causal]) * keep_scaled v.
Tensor composite_with_mask(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                           bool is_causal, const Tensor& keep_scaled) {
  if (!keep_scaled.defined())
    return scaled_dot_product_attention_reference(q, k, v, {}, 0.0, is_causal, scale);
  Tensor scores = matmul(q * scale, k.transpose(-2, -1));
  if (is_causal) {
    const int64_t L = q.size(-2), S = k.size(-2);
    Tensor keep = ones({L, S}, TensorOptions(kBool).device(q.device())).tril();
    scores = masked_fill(scores, logical_not(keep), -std::numeric_limits<double>::infinity());
  }
  return matmul(softmax(scores, -1) * keep_scaled, v);
}

/// The (..., L, S) dropout factors keep / (1 - p) of the fused kernel's mask: bernoulli(1 - p)
/// at the same Philox state (see cpu::attention_forward_flash).
Tensor dropout_factors(const Tensor& q, const Tensor& k, double p, uint64_t seed,
                       uint64_t offset) {
  std::vector<int64_t> shape = q.sizes().vec();
  shape.back() = k.size(-2);
  Tensor keep = empty(shape, TensorOptions(q.dtype()).device(q.device()));
  launch(q.device(), cpu::bernoulli, cuda::bernoulli, keep,
         full({}, 1.0 - p, TensorOptions(kFloat64).device(q.device())), seed, offset);
  return keep.mul_(1.0 / (1.0 - p));
}

/// An empty tensor of `sizes` whose dims lie in memory in the order of like's strides, outermost
/// first (ties keep the dims' order), the last dim innermost. For the heads view (B, H, L, D) of
/// a projection's (B, L, H, D) memory that is (B, L, H, D) memory again, so a transformer's
/// out.transpose(1, 2).reshape(B, L, H D) is a view, not a copy, and the gradients reach the
/// projection as they lie. Contiguous when like is, when like's last dim is not unit-strided, or
/// past rank 4 (whose batch dims might then not collapse to the CUDA kernels' (B, H) strides).
Tensor empty_laid_out_as(const Tensor& like, IntArrayRef sizes, const TensorOptions& opts) {
  const int64_t n = like.dim();
  if (n > 4 || (like.stride(-1) != 1 && like.size(-1) != 1) || like.is_contiguous())
    return empty(sizes, opts);
  std::vector<int64_t> order(static_cast<size_t>(n - 1));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return like.stride(a) > like.stride(b); });
  std::vector<int64_t> strides(static_cast<size_t>(n));
  strides.back() = 1;
  int64_t running = std::max<int64_t>(sizes.back(), 1);
  for (auto d = order.rbegin(); d != order.rend(); ++d) {
    strides[static_cast<size_t>(*d)] = running;
    running *= std::max<int64_t>(sizes[static_cast<size_t>(*d)], 1);
  }
  return empty_strided(sizes, strides, opts);
}

}  // namespace

Tensor scaled_dot_product_attention_flash(const Tensor& query, const Tensor& key,
                                          const Tensor& value, bool is_causal,
                                          std::optional<double> scale, double dropout_p) {
  constexpr const char* op = "[scaled_dot_product_attention_flash]";
  // ---- check ----
  EMBER_CHECK(query.defined() && key.defined() && value.defined(), ValueError, op,
              " query, key and value must be defined tensors");
  EMBER_CHECK(
      query.dim() >= 2 && key.dim() == query.dim() && value.dim() == query.dim(), ShapeError, op,
      " expected query (..., L, E), key (..., S, E) and value (..., S, Ev) of one rank >= 2, "
      "got query ",
      query.sizes(), ", key ", key.sizes(), ", value ", value.sizes());
  EMBER_CHECK(key.device() == query.device() && value.device() == query.device(), DeviceError, op,
              " query, key and value must be on one device, got query on ", query.device(),
              ", key on ", key.device(), " and value on ", value.device());
  const bool on_cuda = query.is_cuda();
  if (on_cuda)
    EMBER_CHECK(query.dtype() == kBFloat16 || query.dtype() == kFloat16, DTypeError, op,
                " expected a bfloat16 or float16 query on CUDA, got ", query.dtype());
  else
    EMBER_CHECK(query.dtype() == kFloat32 || query.dtype() == kFloat64, DTypeError, op,
                " expected a float32 or float64 query on the CPU, got ", query.dtype());
  EMBER_CHECK(key.dtype() == query.dtype() && value.dtype() == query.dtype(), DTypeError, op,
              " query, key and value must have one dtype, got ", query.dtype(), ", ", key.dtype(),
              " and ", value.dtype());
  EMBER_CHECK(query.size(-1) == key.size(-1), ShapeError, op,
              " query and key embedding dims differ: query ", query.sizes(), " vs key ",
              key.sizes());
  EMBER_CHECK(key.size(-2) == value.size(-2), ShapeError, op,
              " key and value sequence lengths differ: key ", key.sizes(), " vs value ",
              value.sizes());
  for (int64_t d = 0; d < query.dim() - 2; ++d)
    EMBER_CHECK(key.size(d) == query.size(d) && value.size(d) == query.size(d), ShapeError, op,
                " expects equal batch dims (no broadcasting), got query ", query.sizes(), ", key ",
                key.sizes(), ", value ", value.sizes());
  EMBER_CHECK(dropout_p >= 0.0 && dropout_p < 1.0, ValueError, op,
              " dropout_p must be in [0, 1), got ", dropout_p);
  if (on_cuda)
    EMBER_CHECK((query.size(-1) == 64 || query.size(-1) == 128) && value.size(-1) == query.size(-1),
                ShapeError, op, " on CUDA takes head dims E == Ev in {64, 128}, got query ",
                query.sizes(), ", value ", value.sizes());
  // ---- shape rule: out (..., L, Ev), lse (..., L) ----
  std::vector<int64_t> out_shape = query.sizes().vec();
  out_shape.back() = value.size(-1);
  std::vector<int64_t> lse_shape(query.sizes().begin(), query.sizes().end() - 1);
  const TensorOptions opts = TensorOptions(query.dtype()).device(query.device());
  Tensor out = empty_laid_out_as(query, out_shape, opts);
  Tensor lse = empty(lse_shape, on_cuda ? TensorOptions(kFloat32).device(query.device()) : opts);
  const double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(query.size(-1)));
  // ---- launch (dropout: reserve the Philox blocks of a (..., L, S) bernoulli draw) ----
  uint64_t seed = 0, offset = 0;
  if (dropout_p > 0.0) {
    const int64_t weights = lse.numel() * key.size(-2);
    Generator& gen = default_generator();
    seed = gen.current_seed();
    offset = gen.advance(static_cast<uint64_t>((weights + 3) / 4));
  }
  launch(query.device(), cpu::attention_forward_flash, cuda::attention_forward_flash, out, lse,
         query, key, value, s, is_causal, dropout_p, seed, offset);
  // ---- record: the fused backward (first order), the composite's under create_graph ----
  autograd::record(
      "scaled_dot_product_attention_flash", {query, key, value}, out, {query, key, value, out, lse},
      [s, is_causal, dropout_p, seed, offset](const Saved& saved, const Tensor& dy) {
        if (autograd::is_grad_enabled()) {
          Tensor keep;
          if (dropout_p > 0.0) {
            NoGradGuard no_grad;
            keep = dropout_factors(saved[0], saved[1], dropout_p, seed, offset);
          }
          return autograd::composite_grads(
              [&](const Saved& in) {
                return composite_with_mask(in[0], in[1], in[2], s, is_causal, keep);
              },
              saved, dy, 3);
        }
        const TensorOptions o = TensorOptions(saved[0].dtype()).device(saved[0].device());
        Tensor dq = empty_laid_out_as(saved[0], saved[0].sizes(), o);
        Tensor dk = empty_laid_out_as(saved[1], saved[1].sizes(), o);
        Tensor dv = empty_laid_out_as(saved[2], saved[2].sizes(), o);
        const Tensor g = dy.dtype() == saved[0].dtype() ? dy : dy.to(saved[0].dtype());
        launch(saved[0].device(), cpu::attention_backward_flash, cuda::attention_backward_flash, dq,
               dk, dv, g, saved[0], saved[1], saved[2], saved[3], saved[4], s, is_causal, dropout_p,
               seed, offset);
        return Grads{dq, dk, dv};
      });
  return out;
}

}  // namespace ember::nn::functional
