// Pooling and upsampling layers: MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d,
// AdaptiveMaxPool2d, Upsample. No parameters; options and semantics are PyTorch's (see the ops
// in ember/ops.hpp for the exact window and source-index rules).
//
//   nn::MaxPool2d pool(nn::MaxPool2dOptions(3).stride(2).padding(1));
//   nn::AdaptiveAvgPool2d gap(1);                          // (N, C, H, W) -> (N, C, 1, 1)
//   nn::Upsample up(nn::UpsampleOptions().scale_factor({2}).mode("bilinear"));
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "ember/nn/module.hpp"

namespace ember::nn {

/// Options of MaxPool1d/2d: kernel_size, stride (default: kernel_size), padding, dilation,
/// ceil_mode. One value applies to every spatial dim.
template <size_t D>
struct MaxPoolOptions {
  MaxPoolOptions(IntArrayRef kernel_size)  // NOLINT: implicit, as libtorch's
      : kernel_size_(kernel_size.vec()) {}
  MaxPoolOptions& stride(IntArrayRef s) {
    stride_ = s.vec();
    return *this;
  }
  MaxPoolOptions& padding(IntArrayRef p) {
    padding_ = p.vec();
    return *this;
  }
  MaxPoolOptions& dilation(IntArrayRef d) {
    dilation_ = d.vec();
    return *this;
  }
  MaxPoolOptions& ceil_mode(bool c) {
    ceil_mode_ = c;
    return *this;
  }
  std::vector<int64_t> kernel_size_;
  std::vector<int64_t> stride_;  // empty: kernel_size
  std::vector<int64_t> padding_ = {0};
  std::vector<int64_t> dilation_ = {1};
  bool ceil_mode_ = false;
};
using MaxPool1dOptions = MaxPoolOptions<1>;
using MaxPool2dOptions = MaxPoolOptions<2>;

/// Options of AvgPool1d/2d (divisor_override: AvgPool2d only).
template <size_t D>
struct AvgPoolOptions {
  AvgPoolOptions(IntArrayRef kernel_size)  // NOLINT: implicit, as libtorch's
      : kernel_size_(kernel_size.vec()) {}
  AvgPoolOptions& stride(IntArrayRef s) {
    stride_ = s.vec();
    return *this;
  }
  AvgPoolOptions& padding(IntArrayRef p) {
    padding_ = p.vec();
    return *this;
  }
  AvgPoolOptions& ceil_mode(bool c) {
    ceil_mode_ = c;
    return *this;
  }
  AvgPoolOptions& count_include_pad(bool c) {
    count_include_pad_ = c;
    return *this;
  }
  AvgPoolOptions& divisor_override(std::optional<int64_t> d) {
    divisor_override_ = d;
    return *this;
  }
  std::vector<int64_t> kernel_size_;
  std::vector<int64_t> stride_;  // empty: kernel_size
  std::vector<int64_t> padding_ = {0};
  bool ceil_mode_ = false;
  bool count_include_pad_ = true;
  std::optional<int64_t> divisor_override_;
};
using AvgPool1dOptions = AvgPoolOptions<1>;
using AvgPool2dOptions = AvgPoolOptions<2>;

/// Max pooling over (N, C, L) or (C, L).
class MaxPool1dImpl : public Module {
 public:
  explicit MaxPool1dImpl(const MaxPool1dOptions& o) : options(o) {}
  explicit MaxPool1dImpl(IntArrayRef kernel_size) : options(kernel_size) {}
  Tensor forward(const Tensor& x);
  /// (values, int64 indices into L), as return_indices=True.
  std::tuple<Tensor, Tensor> forward_with_indices(const Tensor& x);
  std::string extra_repr() const override;
  MaxPool1dOptions options;
};
EMBER_MODULE(MaxPool1d);

/// Max pooling over (N, C, H, W) or (C, H, W).
class MaxPool2dImpl : public Module {
 public:
  explicit MaxPool2dImpl(const MaxPool2dOptions& o) : options(o) {}
  explicit MaxPool2dImpl(IntArrayRef kernel_size) : options(kernel_size) {}
  Tensor forward(const Tensor& x);
  /// (values, int64 indices into H*W), as return_indices=True.
  std::tuple<Tensor, Tensor> forward_with_indices(const Tensor& x);
  std::string extra_repr() const override;
  MaxPool2dOptions options;
};
EMBER_MODULE(MaxPool2d);

class AvgPool1dImpl : public Module {
 public:
  explicit AvgPool1dImpl(const AvgPool1dOptions& o) : options(o) {}
  explicit AvgPool1dImpl(IntArrayRef kernel_size) : options(kernel_size) {}
  Tensor forward(const Tensor& x);
  std::string extra_repr() const override;
  AvgPool1dOptions options;
};
EMBER_MODULE(AvgPool1d);

class AvgPool2dImpl : public Module {
 public:
  explicit AvgPool2dImpl(const AvgPool2dOptions& o) : options(o) {}
  explicit AvgPool2dImpl(IntArrayRef kernel_size) : options(kernel_size) {}
  Tensor forward(const Tensor& x);
  std::string extra_repr() const override;
  AvgPool2dOptions options;
};
EMBER_MODULE(AvgPool2d);

/// Adaptive average pooling to output_size (one value: a square output).
class AdaptiveAvgPool1dImpl : public Module {
 public:
  explicit AdaptiveAvgPool1dImpl(IntArrayRef output_size) : output_size(output_size.vec()) {}
  Tensor forward(const Tensor& x);
  std::string extra_repr() const override;
  std::vector<int64_t> output_size;
};
EMBER_MODULE(AdaptiveAvgPool1d);

class AdaptiveAvgPool2dImpl : public Module {
 public:
  explicit AdaptiveAvgPool2dImpl(IntArrayRef output_size) : output_size(output_size.vec()) {}
  Tensor forward(const Tensor& x);
  std::string extra_repr() const override;
  std::vector<int64_t> output_size;
};
EMBER_MODULE(AdaptiveAvgPool2d);

class AdaptiveMaxPool2dImpl : public Module {
 public:
  explicit AdaptiveMaxPool2dImpl(IntArrayRef output_size) : output_size(output_size.vec()) {}
  Tensor forward(const Tensor& x);
  std::tuple<Tensor, Tensor> forward_with_indices(const Tensor& x);
  std::string extra_repr() const override;
  std::vector<int64_t> output_size;
};
EMBER_MODULE(AdaptiveMaxPool2d);

/// Options of Upsample: exactly one of size and scale_factor; mode "nearest", "linear" (3-D
/// input) or "bilinear" (4-D input); align_corners for the linear modes only.
struct UpsampleOptions {
  UpsampleOptions& size(std::vector<int64_t> s) {
    size_ = std::move(s);
    return *this;
  }
  UpsampleOptions& scale_factor(std::vector<double> s) {
    scale_factor_ = std::move(s);
    return *this;
  }
  UpsampleOptions& mode(std::string m) {
    mode_ = std::move(m);
    return *this;
  }
  UpsampleOptions& align_corners(bool a) {
    align_corners_ = a;
    return *this;
  }
  std::optional<std::vector<int64_t>> size_;
  std::optional<std::vector<double>> scale_factor_;
  std::string mode_ = "nearest";
  std::optional<bool> align_corners_;
};

/// interpolate(x, size, scale_factor, mode, align_corners) as a layer.
class UpsampleImpl : public Module {
 public:
  explicit UpsampleImpl(const UpsampleOptions& o);
  Tensor forward(const Tensor& x);
  std::string extra_repr() const override;
  UpsampleOptions options;
};
EMBER_MODULE(Upsample);

}  // namespace ember::nn
