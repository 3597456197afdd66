// Gradient clipping, like torch.nn.utils.clip_grad_norm_ / clip_grad_value_.
#pragma once

#include <vector>

#include "ember/tensor.hpp"

namespace ember::nn::utils {

/// Scales the gradients of `parameters` in place so that their joint norm (the norm of the
/// vector of every gradient's norm) is at most max_norm: each grad is multiplied by
/// min(1, max_norm / (total_norm + 1e-6)). Parameters without a grad are skipped. norm_type may
/// be infinity (the largest |g|). Returns the total norm before clipping as a 0-d tensor (0 when
/// no parameter has a grad). A NaN or infinite total norm raises ValueError when
/// error_if_nonfinite; otherwise the grads are scaled by the resulting factor (NaN, or 0 for an
/// infinite norm), as PyTorch does.
Tensor clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm,
                       double norm_type = 2.0, bool error_if_nonfinite = false);
Tensor clip_grad_norm_(const Tensor& parameter, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

/// Clamps every gradient of `parameters` in place to [-clip_value, clip_value].
void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value);
void clip_grad_value_(const Tensor& parameter, double clip_value);

}  // namespace ember::nn::utils
