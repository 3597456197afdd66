// Normalization functionals, as torch.nn.functional: batch_norm, layer_norm, group_norm, rms_norm,
// normalize. Composites of differentiable ops (gradients of any order); float16 / bfloat16 inputs
// are normalized in float32 and the result rounded back.
//
// layer_norm, and batch_norm in training mode, run fused kernels on the CPU and on CUDA (one node,
// statistics kept for the backward; 16-bit inputs computed in float32), eval-mode batch_norm
// without gradients one fused pass; everything else runs the composites `layer_norm_reference` /
// `batch_norm_reference`, which the fused kernels are tested against. batch_norm_relu fuses the
// residual add and ReLU after a training-mode batch_norm on CUDA. The fused backward is
// first-order; under create_graph=true the node differentiates the composite instead, so
// higher-order gradients are exact either way.
#pragma once

#include <cstdint>
#include <optional>

#include "ember/tensor.hpp"

namespace ember::nn::functional {

/// Batch normalization over every dim but 1 of input (N, C), (N, C, L) or (N, C, H, W), ...:
/// y = (x - mean) / sqrt(var + eps) * weight + bias (weight, bias (C,) or undefined).
/// training: normalizes with the batch mean and biased variance, and when running_mean /
/// running_var (C,) are defined updates them in place (no gradient recorded):
/// running = (1 - momentum) * running + momentum * batch statistic, with the unbiased variance for
/// running_var (as PyTorch). Otherwise normalizes with the running statistics, which must then be
/// defined. ValueError when training with one value per channel.
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = {}, const Tensor& bias = {}, bool training = false,
                  double momentum = 0.1, double eps = 1e-5);

/// relu(batch_norm(input, ...) + residual), residual of input's shape or undefined (then
/// relu(batch_norm(...))): the BatchNorm, residual add and ReLU that end ResNet's blocks. On CUDA
/// in training mode one node of fused kernels (residual of input's dtype), whose forward writes
/// only the result and a bit per value for ReLU's gradient, and whose backward reads the output
/// gradient through that mask into batch_norm's; the same values as the three ops, bitwise.
/// Elsewhere the three ops. ShapeError for a residual of another shape.
Tensor batch_norm_relu(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight = {}, const Tensor& bias = {}, bool training = false,
                       double momentum = 0.1, double eps = 1e-5, const Tensor& residual = {});

/// batch_norm as a composite of differentiable ops: what batch_norm runs where the fused kernel
/// does not apply, and what the fused kernel is tested against. Same contract.
Tensor batch_norm_reference(const Tensor& input, const Tensor& running_mean,
                            const Tensor& running_var, const Tensor& weight = {},
                            const Tensor& bias = {}, bool training = false, double momentum = 0.1,
                            double eps = 1e-5);

/// Normalizes over the trailing dims given by normalized_shape (which must equal input's last
/// sizes) with the biased variance: (x - mean) / sqrt(var + eps) * weight + bias, weight and bias
/// of normalized_shape or undefined.
Tensor layer_norm(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

/// layer_norm as a composite of differentiable ops: what layer_norm runs where the fused kernel
/// does not apply, and what the fused kernel is tested against. Same contract.
Tensor layer_norm_reference(const Tensor& input, IntArrayRef normalized_shape,
                            const Tensor& weight = {}, const Tensor& bias = {}, double eps = 1e-5);

/// Splits the C channels of input (N, C, *) into num_groups groups (C divisible by num_groups)
/// and normalizes each (sample, group) over its channels and spatial positions; then applies the
/// per-channel weight, bias (C,).
Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

/// x / sqrt(mean(x^2 over the trailing normalized_shape dims) + eps) * weight. eps defaults to
/// the machine epsilon of input's dtype (torch.finfo(dtype).eps), as torch.nn.functional.rms_norm.
Tensor rms_norm(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight = {},
                std::optional<double> eps = std::nullopt);

/// x / max(||x||_p along dim, eps): unit p-norm vectors along dim.
Tensor normalize(const Tensor& input, double p = 2.0, int64_t dim = 1, double eps = 1e-12);

}  // namespace ember::nn::functional
