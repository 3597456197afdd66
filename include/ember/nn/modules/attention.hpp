// MultiheadAttention, as torch.nn.MultiheadAttention: parameter names, initialisation, masks and
// return values are PyTorch's, so a state_dict saved from PyTorch loads by name.
//
//   nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(64, 8).batch_first(true));
//   auto [y, w] = mha(x, x, x);                       // self-attention: y (N, L, 64), w (N, L, L)
//   auto [y2, none] = mha(x, mem, mem, pad_mask, /*need_weights=*/false);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>

#include "ember/nn/module.hpp"
#include "ember/nn/modules/linear.hpp"

namespace ember::nn {

/// Options of MultiheadAttention: MultiheadAttentionOptions(E, H).dropout(0.1).batch_first(true).
struct MultiheadAttentionOptions {
  MultiheadAttentionOptions(int64_t embed_dim, int64_t num_heads)
      : embed_dim_(embed_dim), num_heads_(num_heads) {}
  MultiheadAttentionOptions& dropout(double v) {
    dropout_ = v;
    return *this;
  }
  MultiheadAttentionOptions& bias(bool v) {
    bias_ = v;
    return *this;
  }
  MultiheadAttentionOptions& add_bias_kv(bool v) {
    add_bias_kv_ = v;
    return *this;
  }
  MultiheadAttentionOptions& add_zero_attn(bool v) {
    add_zero_attn_ = v;
    return *this;
  }
  MultiheadAttentionOptions& kdim(std::optional<int64_t> v) {
    kdim_ = v;
    return *this;
  }
  MultiheadAttentionOptions& vdim(std::optional<int64_t> v) {
    vdim_ = v;
    return *this;
  }
  MultiheadAttentionOptions& batch_first(bool v) {
    batch_first_ = v;
    return *this;
  }
  int64_t embed_dim_, num_heads_;
  double dropout_ = 0.0;
  bool bias_ = true;
  bool add_bias_kv_ = false;
  bool add_zero_attn_ = false;
  std::optional<int64_t> kdim_, vdim_;  // nullopt: embed_dim
  bool batch_first_ = false;
};

/// Multi-head attention: concat_h(softmax(q_h k_h^T / sqrt(D) + mask) v_h) W_o^T + b_o with
/// q = query W_q^T + b_q, k = key W_k^T + b_k, v = value W_v^T + b_v, D = embed_dim / num_heads.
///
/// Parameters (PyTorch's names and init): in_proj_weight (3E, E) = [W_q; W_k; W_v], xavier
/// uniform; in_proj_bias (3E), zeros; out_proj (a Linear E -> E: out_proj.weight with Linear's
/// default init, out_proj.bias zeros). When kdim or vdim differ from embed_dim, in_proj_weight is
/// replaced by q_proj_weight (E, E), k_proj_weight (E, kdim) and v_proj_weight (E, vdim), each
/// xavier uniform. add_bias_kv adds bias_k and bias_v (1, 1, E), xavier normal, appended to the
/// keys and values; add_zero_attn appends a zero key and value per head. bias = false drops
/// in_proj_bias and out_proj.bias.
class MultiheadAttentionImpl : public Module {
 public:
  explicit MultiheadAttentionImpl(const MultiheadAttentionOptions& options);
  MultiheadAttentionImpl(int64_t embed_dim, int64_t num_heads, double dropout = 0.0,
                         bool bias = true, bool add_bias_kv = false, bool add_zero_attn = false,
                         std::optional<int64_t> kdim = std::nullopt,
                         std::optional<int64_t> vdim = std::nullopt, bool batch_first = false);

  /// Shapes (seq-first; batch_first swaps the first two dims of query, key, value and output):
  /// query (L, N, E), key (S, N, kdim), value (S, N, vdim) -> output (L, N, E); unbatched
  /// query (L, E), key (S, kdim), value (S, vdim) -> (L, E).
  ///
  /// key_padding_mask (N, S) (unbatched (S)): bool, true = that key is ignored; or floating,
  /// added to the scores. attn_mask (L, S) or (N * num_heads, L, S) (unbatched (num_heads, L, S)):
  /// bool, true = that query may NOT attend to that key (the opposite of
  /// scaled_dot_product_attention's bool mask, as in PyTorch); or floating, added.
  /// is_causal is PyTorch's hint that attn_mask is the causal mask: it needs attn_mask
  /// (ValueError otherwise) and the given mask is applied.
  ///
  /// Returns (output, weights). weights (after dropout, as PyTorch returns them) are (N, L, S)
  /// averaged over heads, or (N, num_heads, L, S) with average_attn_weights = false (unbatched:
  /// without N); undefined when need_weights is false. With need_weights, a query whose keys are
  /// all masked gets NaN weights and output (PyTorch's plain softmax on that path); without,
  /// the output is computed by scaled_dot_product_attention and such rows are zero before
  /// out_proj, as in PyTorch. Dropout on the weights acts in training mode only.
  std::tuple<Tensor, Tensor> forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                     const Tensor& key_padding_mask = {}, bool need_weights = true,
                                     const Tensor& attn_mask = {}, bool average_attn_weights = true,
                                     bool is_causal = false);

  void reset_parameters();
  std::string extra_repr() const override;

  MultiheadAttentionOptions options;
  int64_t embed_dim, num_heads, head_dim, kdim, vdim;
  bool batch_first;
  Tensor in_proj_weight;                               // (3E, E), when kdim == vdim == E
  Tensor q_proj_weight, k_proj_weight, v_proj_weight;  // otherwise
  Tensor in_proj_bias;                                 // (3E) unless bias = false
  Tensor bias_k, bias_v;                               // (1, 1, E) with add_bias_kv
  Linear out_proj{nullptr};
};
EMBER_MODULE(MultiheadAttention);

}  // namespace ember::nn
