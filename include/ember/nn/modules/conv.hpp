// Convolution layers: Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d. Parameter names, shapes,
// options and default initialisation are PyTorch's:
//   Conv:          weight (out_channels, in_channels / groups, k...), bias (out_channels)
//   ConvTranspose: weight (in_channels, out_channels / groups, k...), bias (out_channels)
//   weight ~ kaiming_uniform_(a = sqrt(5)), bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
//   fan_in = weight.size(1) * prod(k).
//
//   nn::Conv2d conv(nn::Conv2dOptions(3, 64, 3).stride(2).padding(1).bias(false));
//   nn::Conv2d same(nn::Conv2dOptions(16, 16, 5).padding("same").padding_mode("reflect"));
//   nn::Conv2d plain(3, 8, 3);   // in_channels, out_channels, kernel_size
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ember/nn/module.hpp"
#include "ember/ops.hpp"

namespace ember::nn {

/// Options of the D-dimensional convolution modules (libtorch's ConvOptions). Sizes given as one
/// value apply to every spatial dim. padding is numbers or "same"/"valid" (Conv only);
/// padding_mode is "zeros", "reflect", "replicate" or "circular" (ConvTranspose: "zeros").
template <size_t D>
struct ConvOptions {
  ConvOptions(int64_t in_channels, int64_t out_channels, IntArrayRef kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size.vec()) {}
  ConvOptions& stride(IntArrayRef s) {
    stride_ = s.vec();
    return *this;
  }
  ConvOptions& padding(IntArrayRef p) {
    padding_ = p.vec();
    padding_name_.reset();
    return *this;
  }
  ConvOptions& padding(ConvPadding p) {
    padding_name_ = p.mode();
    return *this;
  }
  ConvOptions& output_padding(IntArrayRef p) {
    output_padding_ = p.vec();
    return *this;
  }
  ConvOptions& dilation(IntArrayRef d) {
    dilation_ = d.vec();
    return *this;
  }
  ConvOptions& groups(int64_t g) {
    groups_ = g;
    return *this;
  }
  ConvOptions& bias(bool b) {
    bias_ = b;
    return *this;
  }
  ConvOptions& padding_mode(std::string m) {
    padding_mode_ = std::move(m);
    return *this;
  }

  int64_t in_channels_, out_channels_;
  std::vector<int64_t> kernel_size_;
  std::vector<int64_t> stride_ = {1};
  std::vector<int64_t> padding_ = {0};
  std::optional<std::string> padding_name_;  // "same" or "valid" instead of numbers
  std::vector<int64_t> output_padding_ = {0};
  std::vector<int64_t> dilation_ = {1};
  int64_t groups_ = 1;
  bool bias_ = true;
  std::string padding_mode_ = "zeros";
};
using Conv1dOptions = ConvOptions<1>;
using Conv2dOptions = ConvOptions<2>;
using ConvTranspose1dOptions = ConvOptions<1>;
using ConvTranspose2dOptions = ConvOptions<2>;

/// What the convolution modules share: the checked options (every size expanded to D values),
/// the parameters and their initialisation.
template <size_t D>
class ConvNdImpl : public Module {
 public:
  ConvNdImpl(const ConvOptions<D>& options, bool transposed, const char* name);
  /// PyTorch's initialisation (see the file comment).
  void reset_parameters();
  std::string extra_repr() const override;

  ConvOptions<D> options;  // sizes expanded to D values
  Tensor weight, bias;

 protected:
  /// input padded by padding_mode (non-zeros modes), and the padding left for the convolution.
  Tensor padded_input(const Tensor& x, std::vector<int64_t>& conv_padding) const;
  /// The output_padding that makes a transposed convolution of x produce output_size (the last
  /// D sizes, or all of them), as PyTorch's _output_padding: within [0, stride) of the smallest.
  std::vector<int64_t> output_padding_for(const Tensor& x, IntArrayRef output_size) const;
  bool transposed_;
  const char* name_;
};

/// Applies conv1d over (N, C_in, L) or (C_in, L).
class Conv1dImpl : public ConvNdImpl<1> {
 public:
  explicit Conv1dImpl(const Conv1dOptions& o) : ConvNdImpl<1>(o, false, "Conv1d") {}
  Conv1dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : Conv1dImpl(Conv1dOptions(in_channels, out_channels, kernel_size)) {}
  Tensor forward(const Tensor& x);
};
EMBER_MODULE(Conv1d);

/// Applies conv2d over (N, C_in, H, W) or (C_in, H, W).
class Conv2dImpl : public ConvNdImpl<2> {
 public:
  explicit Conv2dImpl(const Conv2dOptions& o) : ConvNdImpl<2>(o, false, "Conv2d") {}
  Conv2dImpl(int64_t in_channels, int64_t out_channels, IntArrayRef kernel_size)
      : Conv2dImpl(Conv2dOptions(in_channels, out_channels, kernel_size)) {}
  Tensor forward(const Tensor& x);
};
EMBER_MODULE(Conv2d);

/// Applies conv_transpose1d; output length (L - 1) stride - 2 padding + dilation (k - 1) +
/// output_padding + 1.
class ConvTranspose1dImpl : public ConvNdImpl<1> {
 public:
  explicit ConvTranspose1dImpl(const ConvTranspose1dOptions& o)
      : ConvNdImpl<1>(o, true, "ConvTranspose1d") {}
  ConvTranspose1dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : ConvTranspose1dImpl(ConvTranspose1dOptions(in_channels, out_channels, kernel_size)) {}
  Tensor forward(const Tensor& x);
  /// forward with the output length chosen among the ones the stride allows (PyTorch's
  /// forward(input, output_size)).
  Tensor forward_with_output_size(const Tensor& x, IntArrayRef output_size);
};
EMBER_MODULE(ConvTranspose1d);

/// Applies conv_transpose2d (e.g. the upsampling layers of a DCGAN generator).
class ConvTranspose2dImpl : public ConvNdImpl<2> {
 public:
  explicit ConvTranspose2dImpl(const ConvTranspose2dOptions& o)
      : ConvNdImpl<2>(o, true, "ConvTranspose2d") {}
  ConvTranspose2dImpl(int64_t in_channels, int64_t out_channels, IntArrayRef kernel_size)
      : ConvTranspose2dImpl(ConvTranspose2dOptions(in_channels, out_channels, kernel_size)) {}
  Tensor forward(const Tensor& x);
  /// forward with the output (H, W) chosen among the sizes the stride allows (PyTorch's
  /// forward(input, output_size)), e.g. to undo a strided Conv2d exactly.
  Tensor forward_with_output_size(const Tensor& x, IntArrayRef output_size);
};
EMBER_MODULE(ConvTranspose2d);

}  // namespace ember::nn
