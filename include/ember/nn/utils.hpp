// Gradient clipping, like torch.nn.utils.clip_grad_norm_ / clip_grad_value_, and folding an
// inference-mode BatchNorm into the layer before it, like torch.nn.utils.fusion.
#pragma once

#include <utility>
#include <vector>

#include "ember/nn/modules/conv.hpp"
#include "ember/nn/modules/linear.hpp"
#include "ember/nn/modules/normalization.hpp"
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

// ---- BatchNorm folding (inference) ----
// An eval-mode BatchNorm after a convolution or a linear layer is an affine map per output
// channel, y = (z - mean) * s + beta with s = gamma / sqrt(var + eps), so it folds into the
// layer: weight' = weight * s (per output channel), bias' = (bias - mean) * s + beta (bias 0 when
// the layer has none; gamma 1 and beta 0 when the norm is not affine). One op then does both, and
// with a ReLU after it conv2d_relu / linear_relu put all three in one kernel on CUDA. The results
// are the layer's dtype and device; s is computed in float64 and rounded once.

/// PyTorch's fuse_conv_bn_weights: the folded (weight, bias). transpose: a ConvTranspose weight
/// (C_in, C_out / groups, k...), whose output channels are dim 1 within each group (groups as
/// given). ShapeError when the per-channel sizes disagree.
std::pair<Tensor, Tensor> fuse_conv_bn_weights(const Tensor& conv_w, const Tensor& conv_b,
                                               const Tensor& bn_rm, const Tensor& bn_rv,
                                               double bn_eps, const Tensor& bn_w,
                                               const Tensor& bn_b, bool transpose = false,
                                               int64_t groups = 1);
/// PyTorch's fuse_linear_bn_weights: weight (out, in) scaled by row.
std::pair<Tensor, Tensor> fuse_linear_bn_weights(const Tensor& linear_w, const Tensor& linear_b,
                                                 const Tensor& bn_rm, const Tensor& bn_rv,
                                                 double bn_eps, const Tensor& bn_w,
                                                 const Tensor& bn_b);

/// PyTorch's fuse_conv_bn_eval: a new layer (the same options, with a bias; the parameters on
/// conv's device and dtype, in eval mode) computing bn(conv(x)) for eval-mode modules. The inputs
/// are untouched. ValueError when either module is training or bn keeps no running statistics;
/// ShapeError when bn's features are not conv's output channels.
Conv2d fuse_conv_bn_eval(const Conv2d& conv, const BatchNorm2d& bn);
ConvTranspose2d fuse_conv_bn_eval(const ConvTranspose2d& conv, const BatchNorm2d& bn);
Conv1d fuse_conv_bn_eval(const Conv1d& conv, const BatchNorm1d& bn);
/// PyTorch's fuse_linear_bn_eval: bn(linear(x)) for (N, out_features) batches.
Linear fuse_linear_bn_eval(const Linear& linear, const BatchNorm1d& bn);

}  // namespace ember::nn::utils
