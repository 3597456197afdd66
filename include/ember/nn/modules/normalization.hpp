// Normalization layers: BatchNorm1d, BatchNorm2d, LayerNorm, RMSNorm, GroupNorm. Each wraps the
// functional form in ember/nn/functional/normalization.hpp with PyTorch's parameters, buffers and
// defaults (weight ones, bias zeros, running_mean zeros, running_var ones).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ember/nn/module.hpp"

namespace ember::nn {

/// Shared by BatchNorm1d and BatchNorm2d: weight, bias (C); buffers running_mean, running_var (C)
/// and num_batches_tracked (int64 0-d). momentum nullopt means a cumulative moving average.
class BatchNormImplBase : public Module {
 public:
  BatchNormImplBase(int64_t num_features, double eps, std::optional<double> momentum, bool affine,
                    bool track_running_stats);
  Tensor forward(const Tensor& x);
  /// relu(forward(x) + residual) (residual of x's shape, or undefined: relu(forward(x))), the
  /// statistics kept as forward keeps them, by F::batch_norm_relu (one fused node on CUDA while
  /// training).
  Tensor forward_relu(const Tensor& x, const Tensor& residual = {});
  void reset_running_stats();
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t num_features;
  double eps;
  std::optional<double> momentum;
  bool affine, track_running_stats;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 protected:
  /// Raises ShapeError unless x has a dim count this layer accepts.
  virtual void check_input_dim(const Tensor& x) const = 0;

 private:
  /// forward (relu false) or forward_relu.
  Tensor normalize(const Tensor& x, bool relu, const Tensor& residual);
};

/// Input (N, C) or (N, C, L).
class BatchNorm1dImpl : public BatchNormImplBase {
 public:
  explicit BatchNorm1dImpl(int64_t num_features, double eps = 1e-5,
                           std::optional<double> momentum = 0.1, bool affine = true,
                           bool track_running_stats = true)
      : BatchNormImplBase(num_features, eps, momentum, affine, track_running_stats) {}

 protected:
  void check_input_dim(const Tensor& x) const override;
};
EMBER_MODULE(BatchNorm1d);

/// Input (N, C, H, W).
class BatchNorm2dImpl : public BatchNormImplBase {
 public:
  explicit BatchNorm2dImpl(int64_t num_features, double eps = 1e-5,
                           std::optional<double> momentum = 0.1, bool affine = true,
                           bool track_running_stats = true)
      : BatchNormImplBase(num_features, eps, momentum, affine, track_running_stats) {}

 protected:
  void check_input_dim(const Tensor& x) const override;
};
EMBER_MODULE(BatchNorm2d);

/// Normalizes over the trailing normalized_shape dims; weight and bias of that shape.
class LayerNormImpl : public Module {
 public:
  explicit LayerNormImpl(std::vector<int64_t> normalized_shape, double eps = 1e-5,
                         bool elementwise_affine = true, bool bias = true);
  Tensor forward(const Tensor& x);
  void reset_parameters();
  std::string extra_repr() const override;

  std::vector<int64_t> normalized_shape;
  double eps;
  bool elementwise_affine;
  Tensor weight, bias;
};
EMBER_MODULE(LayerNorm);

/// x / rms(x) * weight over the trailing normalized_shape dims (eps: the dtype's epsilon).
class RMSNormImpl : public Module {
 public:
  explicit RMSNormImpl(std::vector<int64_t> normalized_shape,
                       std::optional<double> eps = std::nullopt, bool elementwise_affine = true);
  Tensor forward(const Tensor& x);
  std::string extra_repr() const override;

  std::vector<int64_t> normalized_shape;
  std::optional<double> eps;
  bool elementwise_affine;
  Tensor weight;
};
EMBER_MODULE(RMSNorm);

/// Input (N, C, *), C divisible by num_groups; weight and bias (C).
class GroupNormImpl : public Module {
 public:
  GroupNormImpl(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x);
  std::string extra_repr() const override;

  int64_t num_groups, num_channels;
  double eps;
  bool affine;
  Tensor weight, bias;
};
EMBER_MODULE(GroupNorm);

}  // namespace ember::nn
