// Pooling and upsampling layers: thin modules over the ember pooling and interpolation ops.
#include "ember/nn/modules/pooling.hpp"

#include <sstream>

#include "ember/ops.hpp"
#include "nn/repr.hpp"

namespace ember::nn {

namespace {

using detail::repr;

/// A size as printed: one value per spatial dim.
std::vector<int64_t> dims(const std::vector<int64_t>& v, size_t D) {
  return v.size() == 1 ? std::vector<int64_t>(D, v[0]) : v;
}

/// The stride as printed: the kernel size when none was given.
std::vector<int64_t> shown_stride(const std::vector<int64_t>& stride,
                                  const std::vector<int64_t>& kernel, size_t D) {
  return dims(stride.empty() ? kernel : stride, D);
}

/// kernel_size, stride and padding as printed (avg pooling's repr, the start of max pooling's).
template <class Options>
std::string window_repr(const Options& o, size_t D) {
  return repr("kernel_size=", IntArrayRef(dims(o.kernel_size_, D)),
              ", stride=", IntArrayRef(shown_stride(o.stride_, o.kernel_size_, D)),
              ", padding=", IntArrayRef(dims(o.padding_, D)));
}

template <size_t D>
std::string max_pool_repr(const MaxPoolOptions<D>& o) {
  return repr(window_repr(o, D), ", dilation=", IntArrayRef(dims(o.dilation_, D)),
              ", ceil_mode=", o.ceil_mode_);
}

}  // namespace

Tensor MaxPool1dImpl::forward(const Tensor& x) {
  const MaxPool1dOptions& o = options;
  return max_pool1d(x, o.kernel_size_, o.stride_, o.padding_, o.dilation_, o.ceil_mode_);
}

std::tuple<Tensor, Tensor> MaxPool1dImpl::forward_with_indices(const Tensor& x) {
  const MaxPool1dOptions& o = options;
  return max_pool1d_with_indices(x, o.kernel_size_, o.stride_, o.padding_, o.dilation_,
                                 o.ceil_mode_);
}

std::string MaxPool1dImpl::extra_repr() const { return max_pool_repr(options); }

Tensor MaxPool2dImpl::forward(const Tensor& x) {
  const MaxPool2dOptions& o = options;
  return max_pool2d(x, o.kernel_size_, o.stride_, o.padding_, o.dilation_, o.ceil_mode_);
}

std::tuple<Tensor, Tensor> MaxPool2dImpl::forward_with_indices(const Tensor& x) {
  const MaxPool2dOptions& o = options;
  return max_pool2d_with_indices(x, o.kernel_size_, o.stride_, o.padding_, o.dilation_,
                                 o.ceil_mode_);
}

std::string MaxPool2dImpl::extra_repr() const { return max_pool_repr(options); }

Tensor AvgPool1dImpl::forward(const Tensor& x) {
  const AvgPool1dOptions& o = options;
  EMBER_CHECK(!o.divisor_override_, ValueError, "[AvgPool1d] divisor_override is only for 2-D");
  return avg_pool1d(x, o.kernel_size_, o.stride_, o.padding_, o.ceil_mode_, o.count_include_pad_);
}

std::string AvgPool1dImpl::extra_repr() const { return window_repr(options, 1); }

Tensor AvgPool2dImpl::forward(const Tensor& x) {
  const AvgPool2dOptions& o = options;
  return avg_pool2d(x, o.kernel_size_, o.stride_, o.padding_, o.ceil_mode_, o.count_include_pad_,
                    o.divisor_override_);
}

std::string AvgPool2dImpl::extra_repr() const { return window_repr(options, 2); }

Tensor AdaptiveAvgPool1dImpl::forward(const Tensor& x) {
  return adaptive_avg_pool1d(x, output_size);
}
std::string AdaptiveAvgPool1dImpl::extra_repr() const {
  return repr("output_size=", IntArrayRef(output_size));
}

Tensor AdaptiveAvgPool2dImpl::forward(const Tensor& x) {
  return adaptive_avg_pool2d(x, output_size);
}
std::string AdaptiveAvgPool2dImpl::extra_repr() const {
  return repr("output_size=", IntArrayRef(output_size));
}

Tensor AdaptiveMaxPool2dImpl::forward(const Tensor& x) {
  return std::get<0>(adaptive_max_pool2d(x, output_size));
}
std::tuple<Tensor, Tensor> AdaptiveMaxPool2dImpl::forward_with_indices(const Tensor& x) {
  return adaptive_max_pool2d(x, output_size);
}
std::string AdaptiveMaxPool2dImpl::extra_repr() const {
  return repr("output_size=", IntArrayRef(output_size));
}

UpsampleImpl::UpsampleImpl(const UpsampleOptions& o) : options(o) {
  EMBER_CHECK(o.size_.has_value() != o.scale_factor_.has_value(), ValueError,
              "[Upsample] exactly one of size and scale_factor must be given");
  EMBER_CHECK(o.mode_ == "nearest" || o.mode_ == "linear" || o.mode_ == "bilinear", ValueError,
              "[Upsample] mode must be nearest, linear or bilinear, got '", o.mode_, "'");
}

Tensor UpsampleImpl::forward(const Tensor& x) {
  const UpsampleOptions& o = options;
  return interpolate(x, o.size_, o.scale_factor_, o.mode_, o.align_corners_);
}

std::string UpsampleImpl::extra_repr() const {
  const UpsampleOptions& o = options;
  std::ostringstream os;
  if (o.size_) {
    os << "size=" << IntArrayRef(*o.size_);
  } else {
    os << "scale_factor=(";
    for (size_t i = 0; i < o.scale_factor_->size(); ++i)
      os << (i ? ", " : "") << (*o.scale_factor_)[i];
    os << ")";
  }
  os << ", mode='" << o.mode_ << "'";
  if (o.align_corners_) os << ", align_corners=" << std::boolalpha << *o.align_corners_;
  return os.str();
}

}  // namespace ember::nn
