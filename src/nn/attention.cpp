// scaled_dot_product_attention (include/ember/nn/functional/attention.hpp) and MultiheadAttention
// (include/ember/nn/modules/attention.hpp). The public sdpa runs the fused CPU or CUDA kernel
// (src/core/ops/attention.cpp) where it applies and otherwise the composite reference of matmul,
// softmax, masked_fill and dropout, whose gradients of any order come from those ops.
#include "ember/nn/functional/attention.hpp"

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/autocast.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/nn/functional/dropout.hpp"
#include "ember/nn/init.hpp"
#include "ember/nn/modules/attention.hpp"
#include "ember/ops.hpp"
#include "nn/repr.hpp"

namespace ember::nn {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

/// softmax over the last dim, except that a row of all -inf gives zeros (and a zero gradient)
/// instead of NaN: PyTorch's _safe_softmax. The row is zeroed before the softmax too, so no NaN
/// reaches the backward pass.
Tensor safe_softmax(const Tensor& scores) {
  if (scores.size(-1) == 0) return scores;  // no keys: the output is zeros, as in PyTorch
  Tensor all_masked;
  {
    NoGradGuard no_grad;
    all_masked = eq(amax(scores, {-1}, /*keepdim=*/true), kNegInf);  // the row max is -inf
  }
  return softmax(masked_fill(scores, all_masked, 0.0), -1).masked_fill(all_masked, 0.0);
}

std::vector<int64_t> batch_dims(const Tensor& t) {
  std::vector<int64_t> s = t.sizes().vec();
  s.resize(s.size() - 2);
  return s;
}

}  // namespace

namespace functional {

Tensor scaled_dot_product_attention_reference(const Tensor& query, const Tensor& key,
                                              const Tensor& value, const Tensor& attn_mask,
                                              double dropout_p, bool is_causal,
                                              std::optional<double> scale) {
  constexpr const char* op = "[scaled_dot_product_attention]";
  // ---- check ----
  EMBER_CHECK(query.defined() && key.defined() && value.defined(), ValueError, op,
              " query, key and value must be defined tensors");
  EMBER_CHECK(query.dim() >= 2 && key.dim() >= 2 && value.dim() >= 2, ShapeError, op,
              " expected query (..., L, E), key (..., S, E) and value (..., S, Ev) of at least 2 "
              "dims, got query ",
              query.sizes(), ", key ", key.sizes(), ", value ", value.sizes());
  EMBER_CHECK(is_floating(query.dtype()), DTypeError, op, " expected a floating query, got ",
              query.dtype());
  EMBER_CHECK(key.dtype() == query.dtype() && value.dtype() == query.dtype(), DTypeError, op,
              " query, key and value must have one dtype, got ", query.dtype(), ", ", key.dtype(),
              " and ", value.dtype());
  EMBER_CHECK(key.device() == query.device() && value.device() == query.device(), DeviceError, op,
              " query, key and value must be on one device, got ", query.device(), ", ",
              key.device(), " and ", value.device());
  EMBER_CHECK(query.size(-1) == key.size(-1), ShapeError, op,
              " query and key embedding dims differ: query ", query.sizes(), " vs key ",
              key.sizes());
  EMBER_CHECK(key.size(-2) == value.size(-2), ShapeError, op,
              " key and value sequence lengths differ: key ", key.sizes(), " vs value ",
              value.sizes());
  EMBER_CHECK(dropout_p >= 0.0 && dropout_p <= 1.0, ValueError, op,
              " dropout_p must be in [0, 1], got ", dropout_p);
  EMBER_CHECK(!(is_causal && attn_mask.defined()), ValueError, op,
              " attn_mask and is_causal cannot both be set (is_causal is the mask)");
  // ---- shape rule ----
  const int64_t L = query.size(-2), S = key.size(-2), E = query.size(-1);
  std::vector<int64_t> batch = broadcast_shapes(
      broadcast_shapes(batch_dims(query), batch_dims(key), op), batch_dims(value), op);
  std::vector<int64_t> score_shape = batch;
  score_shape.push_back(L);
  score_shape.push_back(S);
  if (attn_mask.defined()) {
    EMBER_CHECK(attn_mask.dtype() == kBool || is_floating(attn_mask.dtype()), DTypeError, op,
                " attn_mask must be bool or floating, got ", attn_mask.dtype());
    EMBER_CHECK(attn_mask.device() == query.device(), DeviceError, op, " attn_mask is on ",
                attn_mask.device(), " but query is on ", query.device());
    bool fits = attn_mask.dim() <= static_cast<int64_t>(score_shape.size());
    for (int64_t i = 1; fits && i <= attn_mask.dim(); ++i) {
      const int64_t m = attn_mask.size(-i);
      fits = m == 1 || m == score_shape[score_shape.size() - static_cast<size_t>(i)];
    }
    EMBER_CHECK(fits, ShapeError, op, " attn_mask ", attn_mask.sizes(),
                " does not broadcast to the scores (..., L, S) = ", IntArrayRef(score_shape));
  }
  // ---- compute: softmax(q k^T * scale + mask) v ----
  const double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(E));
  Tensor scores = matmul(query * s, key.transpose(-2, -1));  // (..., L, S); scaling q is cheaper
  if (is_causal) {
    Tensor keep = ones({L, S}, TensorOptions(kBool).device(query.device())).tril();
    scores = masked_fill(scores, logical_not(keep), kNegInf);
  } else if (attn_mask.defined() && attn_mask.dtype() == kBool) {
    scores = masked_fill(scores, logical_not(attn_mask), kNegInf);
  } else if (attn_mask.defined()) {
    scores = scores + attn_mask.to(query.dtype());
  }
  Tensor weights = safe_softmax(scores);
  if (dropout_p > 0.0) weights = dropout(weights, dropout_p, /*training=*/true);
  return matmul(weights, value);
}

namespace {

/// True when the fused kernel computes this call (see the header): inputs with equal batch dims,
/// no mask, dropout_p in [0, 1), and either on the CPU in float32/float64 (any sizes) or on CUDA
/// in bfloat16/float16 with head dims E == Ev in {64, 128} (src/cuda/attention.cu). Anything else,
/// invalid arguments included, goes to the composite, which also raises the errors.
bool fused_applies(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                   double dropout_p) {
  if (!q.defined() || !k.defined() || !v.defined() || attn_mask.defined() ||
      !(dropout_p >= 0.0 && dropout_p < 1.0))
    return false;
  if (q.dim() < 2 || k.dim() != q.dim() || v.dim() != q.dim()) return false;
  if (k.dtype() != q.dtype() || v.dtype() != q.dtype()) return false;
  if (k.device() != q.device() || v.device() != q.device()) return false;
  if (q.is_cpu()) {
    if (q.dtype() != kFloat32 && q.dtype() != kFloat64) return false;
  } else if (q.is_cuda()) {
    // With the cuBLAS backend chosen (cuda::set_backend), attention is the composite over it.
    if (cuda::backend() != cuda::Backend::kEmber) return false;
    if (q.dtype() != kBFloat16 && q.dtype() != kFloat16) return false;
    if ((q.size(-1) != 64 && q.size(-1) != 128) || v.size(-1) != q.size(-1)) return false;
  } else {
    return false;
  }
  if (q.size(-1) != k.size(-1) || k.size(-2) != v.size(-2)) return false;
  for (int64_t d = 0; d < q.dim() - 2; ++d)
    if (k.size(d) != q.size(d) || v.size(d) != q.size(d)) return false;
  return true;
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& attn_mask, double dropout_p, bool is_causal,
                                    std::optional<double> scale) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, query, key, value))
    return autocast_call(*dt, &scaled_dot_product_attention, query, key, value, attn_mask,
                         dropout_p, is_causal, scale);
  if (fused_applies(query, key, value, attn_mask, dropout_p))
    return scaled_dot_product_attention_flash(query, key, value, is_causal, scale, dropout_p);
  return scaled_dot_product_attention_reference(query, key, value, attn_mask, dropout_p, is_causal,
                                                scale);
}

}  // namespace functional

// ---- MultiheadAttention ----

namespace {

using detail::repr;

/// PyTorch's _canonical_mask: a bool mask (true = excluded) becomes 0 / -inf in `dtype`; a
/// floating mask is converted to `dtype` and added as is.
Tensor canonical_mask(const Tensor& mask, const char* name, DType dtype) {
  if (!mask.defined()) return mask;
  if (mask.dtype() == kBool)
    return zeros(mask.sizes(), TensorOptions(dtype).device(mask.device()))
        .masked_fill(mask, kNegInf);
  EMBER_CHECK(is_floating(mask.dtype()), DTypeError, "[MultiheadAttention] ", name,
              " must be bool or floating, got ", mask.dtype());
  return mask.to(dtype);
}

}  // namespace

MultiheadAttentionImpl::MultiheadAttentionImpl(int64_t embed_dim, int64_t num_heads, double dropout,
                                               bool bias, bool add_bias_kv, bool add_zero_attn,
                                               std::optional<int64_t> kdim,
                                               std::optional<int64_t> vdim, bool batch_first)
    : MultiheadAttentionImpl(MultiheadAttentionOptions(embed_dim, num_heads)
                                 .dropout(dropout)
                                 .bias(bias)
                                 .add_bias_kv(add_bias_kv)
                                 .add_zero_attn(add_zero_attn)
                                 .kdim(kdim)
                                 .vdim(vdim)
                                 .batch_first(batch_first)) {}

MultiheadAttentionImpl::MultiheadAttentionImpl(const MultiheadAttentionOptions& o)
    : options(o),
      embed_dim(o.embed_dim_),
      num_heads(o.num_heads_),
      head_dim(0),
      kdim(o.kdim_.value_or(o.embed_dim_)),
      vdim(o.vdim_.value_or(o.embed_dim_)),
      batch_first(o.batch_first_) {
  EMBER_CHECK(embed_dim > 0 && num_heads > 0 && kdim > 0 && vdim > 0, ValueError,
              "[MultiheadAttention] expected positive sizes, got embed_dim=", embed_dim,
              ", num_heads=", num_heads, ", kdim=", kdim, ", vdim=", vdim);
  EMBER_CHECK(embed_dim % num_heads == 0, ValueError,
              "[MultiheadAttention] embed_dim must be divisible by num_heads, got embed_dim=",
              embed_dim, ", num_heads=", num_heads);
  EMBER_CHECK(o.dropout_ >= 0.0 && o.dropout_ <= 1.0, ValueError,
              "[MultiheadAttention] dropout must be in [0, 1], got ", o.dropout_);
  head_dim = embed_dim / num_heads;
  // Registration order is PyTorch's, so named_parameters() and state_dict() list the same keys
  // in the same order.
  if (kdim == embed_dim && vdim == embed_dim) {
    in_proj_weight = register_parameter("in_proj_weight", empty({3 * embed_dim, embed_dim}));
  } else {
    q_proj_weight = register_parameter("q_proj_weight", empty({embed_dim, embed_dim}));
    k_proj_weight = register_parameter("k_proj_weight", empty({embed_dim, kdim}));
    v_proj_weight = register_parameter("v_proj_weight", empty({embed_dim, vdim}));
  }
  if (o.bias_) in_proj_bias = register_parameter("in_proj_bias", empty({3 * embed_dim}));
  out_proj = register_module("out_proj", Linear(embed_dim, embed_dim, o.bias_));
  if (o.add_bias_kv_) {
    bias_k = register_parameter("bias_k", empty({1, 1, embed_dim}));
    bias_v = register_parameter("bias_v", empty({1, 1, embed_dim}));
  }
  reset_parameters();
}

void MultiheadAttentionImpl::reset_parameters() {
  // PyTorch's _reset_parameters: out_proj.weight keeps Linear's init.
  if (in_proj_weight.defined()) {
    init::xavier_uniform_(in_proj_weight);
  } else {
    init::xavier_uniform_(q_proj_weight);
    init::xavier_uniform_(k_proj_weight);
    init::xavier_uniform_(v_proj_weight);
  }
  if (in_proj_bias.defined()) {
    init::zeros_(in_proj_bias);
    init::zeros_(out_proj->bias);
  }
  if (bias_k.defined()) {
    init::xavier_normal_(bias_k);
    init::xavier_normal_(bias_v);
  }
}

std::string MultiheadAttentionImpl::extra_repr() const {
  std::string s = repr("embed_dim=", embed_dim, ", num_heads=", num_heads);
  if (options.dropout_ != 0.0) s += repr(", dropout=", options.dropout_);
  if (!options.bias_) s += ", bias=false";
  if (options.add_bias_kv_) s += ", add_bias_kv=true";
  if (options.add_zero_attn_) s += ", add_zero_attn=true";
  if (kdim != embed_dim) s += repr(", kdim=", kdim);
  if (vdim != embed_dim) s += repr(", vdim=", vdim);
  if (batch_first) s += ", batch_first=true";
  return s;
}

std::tuple<Tensor, Tensor> MultiheadAttentionImpl::forward(
    const Tensor& query_in, const Tensor& key_in, const Tensor& value_in,
    const Tensor& key_padding_mask_in, bool need_weights, const Tensor& attn_mask_in,
    bool average_attn_weights, bool is_causal) {
  constexpr const char* op = "[MultiheadAttention]";
  // ---- check (PyTorch's _mha_shape_check) ----
  EMBER_CHECK(query_in.defined() && key_in.defined() && value_in.defined(), ValueError, op,
              " query, key and value must be defined tensors");
  const bool batched = query_in.dim() == 3;
  EMBER_CHECK(query_in.dim() == 2 || query_in.dim() == 3, ShapeError, op,
              " expected query (L, N, E), (N, L, E) with batch_first, or unbatched (L, E), got ",
              query_in.sizes());
  EMBER_CHECK(key_in.dim() == query_in.dim() && value_in.dim() == query_in.dim(), ShapeError, op,
              " key and value must have the query's number of dims, got query ", query_in.sizes(),
              ", key ", key_in.sizes(), ", value ", value_in.sizes());
  if (key_padding_mask_in.defined())
    EMBER_CHECK(key_padding_mask_in.dim() == query_in.dim() - 1, ShapeError, op,
                " expected key_padding_mask ", batched ? "(N, S)" : "(S)", ", got ",
                key_padding_mask_in.sizes());
  if (attn_mask_in.defined())
    EMBER_CHECK(attn_mask_in.dim() == 2 || attn_mask_in.dim() == 3, ShapeError, op,
                " expected attn_mask (L, S) or ",
                batched ? "(N * num_heads, L, S)" : "(num_heads, L, S)", ", got ",
                attn_mask_in.sizes());
  EMBER_CHECK(!is_causal || attn_mask_in.defined(), ValueError, op,
              " is_causal is a hint that attn_mask is the causal mask: pass attn_mask too");
  EMBER_CHECK(is_floating(query_in.dtype()), DTypeError, op, " expected a floating query, got ",
              query_in.dtype());

  // ---- to seq-first, batched: (L, N, E) ----
  Tensor query = query_in, key = key_in, value = value_in, kpm = key_padding_mask_in;
  if (batched && batch_first) {
    query = query.transpose(0, 1);
    key = key.transpose(0, 1);
    value = value.transpose(0, 1);
  }
  if (!batched) {
    query = query.unsqueeze(1);
    key = key.unsqueeze(1);
    value = value.unsqueeze(1);
    if (kpm.defined()) kpm = kpm.unsqueeze(0);
  }
  const int64_t L = query.size(0), N = query.size(1), E = embed_dim, H = num_heads, D = head_dim;
  EMBER_CHECK(query.size(2) == E, ShapeError, op, " expected query embedding dim ", E,
              ", got query ", query_in.sizes());
  EMBER_CHECK(key.size(2) == kdim && value.size(2) == vdim, ShapeError, op, " expected key (..., ",
              kdim, ") and value (..., ", vdim, "), got key ", key_in.sizes(), ", value ",
              value_in.sizes());
  EMBER_CHECK(
      key.size(0) == value.size(0) && key.size(1) == N && value.size(1) == N, ShapeError, op,
      " key and value must match in sequence length and the query in batch size, got query ",
      query_in.sizes(), ", key ", key_in.sizes(), ", value ", value_in.sizes());
  int64_t S = key.size(0);
  const DType dt = query.dtype();
  Tensor attn_mask = canonical_mask(attn_mask_in, "attn_mask", dt);
  kpm = canonical_mask(kpm, "key_padding_mask", dt);

  // ---- in-projection: q (L, N, E), k and v (S, N, E) ----
  Tensor w_q, w_k, w_v, b_q, b_k, b_v;
  if (in_proj_weight.defined()) {
    w_q = in_proj_weight.narrow(0, 0, E);
    w_k = in_proj_weight.narrow(0, E, E);
    w_v = in_proj_weight.narrow(0, 2 * E, E);
  } else {
    w_q = q_proj_weight;
    w_k = k_proj_weight;
    w_v = v_proj_weight;
  }
  if (in_proj_bias.defined()) {
    b_q = in_proj_bias.narrow(0, 0, E);
    b_k = in_proj_bias.narrow(0, E, E);
    b_v = in_proj_bias.narrow(0, 2 * E, E);
  }
  Tensor q = linear(query, w_q, b_q), k = linear(key, w_k, b_k), v = linear(value, w_v, b_v);

  // ---- attn_mask: (1, L, S) or (N * H, L, S) ----
  if (attn_mask.defined()) {
    if (attn_mask.dim() == 2) {
      EMBER_CHECK(attn_mask.size(0) == L && attn_mask.size(1) == S, ShapeError, op,
                  " the 2-D attn_mask is ", attn_mask.sizes(), " but should be (L, S) = (", L, ", ",
                  S, ")");
      attn_mask = attn_mask.unsqueeze(0);
    } else {
      EMBER_CHECK(attn_mask.size(0) == N * H && attn_mask.size(1) == L && attn_mask.size(2) == S,
                  ShapeError, op, " the 3-D attn_mask is ", attn_mask.sizes(),
                  " but should be (N * num_heads, L, S) = (", N * H, ", ", L, ", ", S, ")");
    }
  }
  if (kpm.defined())
    EMBER_CHECK(kpm.size(0) == N && kpm.size(1) == S, ShapeError, op, " key_padding_mask is ",
                key_padding_mask_in.sizes(), " but should be (N, S) = (", N, ", ", S, ")");

  // ---- bias_k / bias_v: one more key and value ----
  if (bias_k.defined()) {
    k = cat({k, bias_k.expand({1, N, E})}, 0);
    v = cat({v, bias_v.expand({1, N, E})}, 0);
    if (attn_mask.defined()) attn_mask = pad(attn_mask, {0, 1});
    if (kpm.defined()) kpm = pad(kpm, {0, 1});
    ++S;
  }

  // ---- split heads: (N * H, L, D), (N * H, S, D) ----
  q = q.reshape({L, N * H, D}).transpose(0, 1);
  k = k.reshape({S, N * H, D}).transpose(0, 1);
  v = v.reshape({S, N * H, D}).transpose(0, 1);
  if (options.add_zero_attn_) {
    Tensor zero = zeros({N * H, 1, D}, TensorOptions(dt).device(q.device()));
    k = cat({k, zero}, 1);
    v = cat({v, zero}, 1);
    if (attn_mask.defined()) attn_mask = pad(attn_mask, {0, 1});
    if (kpm.defined()) kpm = pad(kpm, {0, 1});
    ++S;
  }

  // ---- merge key_padding_mask into attn_mask: (N * H, 1, S) ----
  if (kpm.defined()) {
    Tensor m = kpm.view({N, 1, 1, S}).expand({N, H, 1, S}).reshape({N * H, 1, S});
    attn_mask = attn_mask.defined() ? attn_mask + m : m;
  }
  const double p = is_training() ? options.dropout_ : 0.0;

  // ---- attention: (N * H, L, D) -> output (L, N, E) ----
  Tensor out, weights;
  if (need_weights) {
    // PyTorch's explicit path: plain softmax (fully masked rows are NaN), weights returned.
    Tensor scores = matmul(q * (1.0 / std::sqrt(static_cast<double>(D))), k.transpose(1, 2));
    if (attn_mask.defined()) scores = scores + attn_mask;
    weights = softmax(scores, -1);
    if (p > 0.0) weights = functional::dropout(weights, p, /*training=*/true);
    out = matmul(weights, v);
  } else {
    out = functional::scaled_dot_product_attention(q, k, v, attn_mask, p);
  }
  out = out.transpose(0, 1).reshape({L, N, E});
  out = out_proj(out);
  if (weights.defined()) {
    weights = weights.view({N, H, L, S});
    if (average_attn_weights) weights = weights.mean({1});
  }
  if (!batched) {
    out = out.squeeze(1);
    if (weights.defined()) weights = weights.squeeze(0);
  } else if (batch_first) {
    out = out.transpose(0, 1);
  }
  return {out, weights};
}

}  // namespace ember::nn
