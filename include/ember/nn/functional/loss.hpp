// Loss functions, as torch.nn.functional: cross_entropy, nll_loss, mse_loss, l1_loss,
// smooth_l1_loss, huber_loss, binary_cross_entropy, binary_cross_entropy_with_logits, kl_div.
//
//   namespace F = ember::nn::functional;
//   Tensor loss = F::cross_entropy(logits, labels);              // logits (N, C), labels (N,)
//   int64 Tensor l = F::mse_loss(pred, y, /*reduction=*/"sum");
//
// Every loss is a composite of differentiable ember ops, so gradients of any order flow through
// it (and it runs on any device the ops run on). cross_entropy with class-index targets on CPU
// float32/float64 logits runs one fused kernel instead (log_softmax + NLL in one pass forward and
// one backward; create_graph recomputes the composite), checked against cross_entropy_reference. `reduction` is "none" (the per-element losses),
// "mean" or "sum"; anything else is a ValueError naming the loss. Formulas and stability notes:
// docs/nn_losses.md.
#pragma once

#include <cstdint>
#include <string>

#include "ember/tensor.hpp"

namespace ember::nn::functional {

/// Cross-entropy of unnormalized logits. input (N, C), (N, C, d1, ...) or unbatched (C); target
/// either int64 class indices of shape (N,), (N, d1, ...) or () — or class probabilities of the
/// input's shape (floating). weight (C,) rescales each class; targets equal to ignore_index add
/// nothing. With indices, "mean" divides by the sum of the weights of the non-ignored targets
/// (their count without weights); with probabilities, by the number of samples N * d1 * ...
/// label_smoothing in [0, 1] mixes the target with the uniform distribution:
/// (1 - ls) * nll + (ls / C) * sum_c w_c * (-log p_c). Computed from log_softmax, so equal
/// logits of any finite magnitude give log(C) and gradients stay finite.
Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                     int64_t ignore_index = -100, const std::string& reduction = "mean",
                     double label_smoothing = 0.0);
/// cross_entropy as the composite log_softmax + nll_loss on every device and dtype: the reference
/// the fused CPU kernel is tested against.
Tensor cross_entropy_reference(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                               int64_t ignore_index = -100, const std::string& reduction = "mean",
                               double label_smoothing = 0.0);

/// Negative log-likelihood of log-probabilities: loss_i = -weight[t_i] * input[i, t_i]. Shapes and
/// the weight / ignore_index / "mean" rules as cross_entropy with class indices.
Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                int64_t ignore_index = -100, const std::string& reduction = "mean");

/// (input - target)^2. input and target broadcast (as in PyTorch).
Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");

/// |input - target|.
Tensor l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");

/// 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target). beta >= 0; beta = 0
/// is l1_loss.
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target,
                      const std::string& reduction = "mean", double beta = 1.0);

/// 0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta). delta > 0.
Tensor huber_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean",
                  double delta = 1.0);

/// -weight * (t log(x) + (1 - t) log(1 - x)) for probabilities x in [0, 1], each log clamped at
/// -100 as PyTorch does (so x = 0 or 1 gives a finite loss). input and target have equal shapes;
/// weight broadcasts to them.
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                            const std::string& reduction = "mean");

/// Binary cross-entropy of logits x, in the stable form max(x, 0) - x t + log1p(exp(-|x|)).
/// pos_weight (broadcast along the last dim, e.g. (C,)) weights the positive term as PyTorch:
/// (1 - t) x + (1 + (pos_weight - 1) t) (log1p(exp(-|x|)) + max(-x, 0)). input and target have
/// equal shapes; weight broadcasts to them.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight = {},
                                        const std::string& reduction = "mean",
                                        const Tensor& pos_weight = {});

/// Pointwise KL divergence of log-probabilities `input` from `target`:
/// target (log(target) - input), 0 where target is 0; with log_target, exp(target) (target -
/// input). reduction also takes "batchmean" (the sum divided by input.size(0)), the true KL
/// divergence per sample; "mean" averages over every element, as in PyTorch.
Tensor kl_div(const Tensor& input, const Tensor& target, const std::string& reduction = "mean",
              bool log_target = false);

}  // namespace ember::nn::functional
