// Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d: checked options, PyTorch's parameters and
// initialisation, padding modes, and forward through the ember convolution ops.
#include "ember/nn/modules/conv.hpp"

#include <cmath>
#include <sstream>

#include "ember/nn/init.hpp"
#include "ember/ops.hpp"

namespace ember::nn {

namespace {

/// v with D values: one value applies to every dim.
std::vector<int64_t> expand(const std::vector<int64_t>& v, size_t D, const char* name,
                            const char* what) {
  EMBER_CHECK(v.size() == 1 || v.size() == D, ValueError, "[", name, "] ", what, " must have 1 or ",
              D, " values, got ", IntArrayRef(v));
  return v.size() == D ? v : std::vector<int64_t>(D, v[0]);
}

bool all_equal(const std::vector<int64_t>& v, int64_t x) {
  for (int64_t e : v)
    if (e != x) return false;
  return true;
}

/// Pads dim d of x circularly by (left, right) (wrap-around), as padding_mode "circular".
Tensor circular_pad_dim(const Tensor& x, int64_t d, int64_t left, int64_t right) {
  const int64_t n = x.size(d);
  EMBER_CHECK(left <= n && right <= n, ValueError, "[Conv] circular padding (", left, ", ", right,
              ") must not exceed the input size ", n, " of input ", x.sizes());
  std::vector<Tensor> parts;
  if (left > 0) parts.push_back(x.narrow(d, n - left, left));
  parts.push_back(x);
  if (right > 0) parts.push_back(x.narrow(d, 0, right));
  return parts.size() == 1 ? x : cat(parts, d);
}

}  // namespace

template <size_t D>
ConvNdImpl<D>::ConvNdImpl(const ConvOptions<D>& o, bool transposed, const char* name)
    : options(o), transposed_(transposed), name_(name) {
  ConvOptions<D>& p = options;
  EMBER_CHECK(p.in_channels_ > 0 && p.out_channels_ > 0, ValueError, "[", name,
              "] expected positive channel counts, got in_channels=", p.in_channels_,
              ", out_channels=", p.out_channels_);
  EMBER_CHECK(p.groups_ > 0, ValueError, "[", name, "] groups must be positive, got ", p.groups_);
  EMBER_CHECK(p.in_channels_ % p.groups_ == 0, ValueError, "[", name, "] in_channels ",
              p.in_channels_, " must be divisible by groups ", p.groups_);
  EMBER_CHECK(p.out_channels_ % p.groups_ == 0, ValueError, "[", name, "] out_channels ",
              p.out_channels_, " must be divisible by groups ", p.groups_);
  p.kernel_size_ = expand(p.kernel_size_, D, name, "kernel_size");
  p.stride_ = expand(p.stride_, D, name, "stride");
  p.padding_ = expand(p.padding_, D, name, "padding");
  p.dilation_ = expand(p.dilation_, D, name, "dilation");
  p.output_padding_ = expand(p.output_padding_, D, name, "output_padding");
  for (size_t i = 0; i < D; ++i) {
    EMBER_CHECK(p.kernel_size_[i] > 0 && p.stride_[i] > 0 && p.dilation_[i] > 0 &&
                    p.padding_[i] >= 0 && p.output_padding_[i] >= 0,
                ValueError, "[", name, "] expected positive kernel_size ",
                IntArrayRef(p.kernel_size_), ", stride ", IntArrayRef(p.stride_), " and dilation ",
                IntArrayRef(p.dilation_), ", non-negative padding ", IntArrayRef(p.padding_));
  }
  const std::string& mode = p.padding_mode_;
  EMBER_CHECK(mode == "zeros" || mode == "reflect" || mode == "replicate" || mode == "circular",
              ValueError, "[", name, "] padding_mode must be zeros, reflect, replicate or ",
              "circular, got '", mode, "'");
  if (transposed) {
    EMBER_CHECK(mode == "zeros", ValueError, "[", name,
                "] only padding_mode 'zeros' is supported, got '", mode, "'");
    EMBER_CHECK(!p.padding_name_, ValueError, "[", name, "] padding must be numbers, got '",
                *p.padding_name_, "'");
  } else {
    EMBER_CHECK(all_equal(p.output_padding_, 0), ValueError, "[", name,
                "] output_padding is only for transposed convolutions");
  }
  if (p.padding_name_) {
    EMBER_CHECK(*p.padding_name_ == "same" || *p.padding_name_ == "valid", ValueError, "[", name,
                "] padding must be 'same', 'valid' or numbers, got '", *p.padding_name_, "'");
    EMBER_CHECK(*p.padding_name_ != "same" || all_equal(p.stride_, 1), ValueError, "[", name,
                "] padding 'same' needs stride 1, got ", IntArrayRef(p.stride_));
  }
  std::vector<int64_t> shape =
      transposed ? std::vector<int64_t>{p.in_channels_, p.out_channels_ / p.groups_}
                 : std::vector<int64_t>{p.out_channels_, p.in_channels_ / p.groups_};
  shape.insert(shape.end(), p.kernel_size_.begin(), p.kernel_size_.end());
  weight = register_parameter("weight", ember::empty(shape));
  if (p.bias_) bias = register_parameter("bias", empty({p.out_channels_}));
  reset_parameters();
}

template <size_t D>
void ConvNdImpl<D>::reset_parameters() {
  // PyTorch: kaiming_uniform_(w, a=sqrt(5)), a bound of 1/sqrt(fan_in); the bias uses it too.
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const int64_t fan_in = init::calculate_fan_in_and_fan_out(weight).first;
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

template <size_t D>
Tensor ConvNdImpl<D>::padded_input(const Tensor& x, std::vector<int64_t>& conv_padding) const {
  const ConvOptions<D>& p = options;
  if (p.padding_mode_ == "zeros") {
    conv_padding = p.padding_;
    return x;
  }
  // (left, right) per spatial dim, as PyTorch's _reversed_padding_repeated_twice.
  std::vector<int64_t> left(D), right(D);
  for (size_t i = 0; i < D; ++i) {
    if (p.padding_name_ && *p.padding_name_ == "same") {
      const int64_t total = p.dilation_[i] * (p.kernel_size_[i] - 1);
      left[i] = total / 2;
      right[i] = total - left[i];
    } else if (p.padding_name_) {  // valid
      left[i] = right[i] = 0;
    } else {
      left[i] = right[i] = p.padding_[i];
    }
  }
  conv_padding = std::vector<int64_t>(D, 0);
  EMBER_CHECK(x.dim() >= static_cast<int64_t>(D) + 1, ShapeError, "[", name_, "] expected a ",
              D + 1, "-D or ", D + 2, "-D input, got ", x.sizes());
  if (p.padding_mode_ == "circular") {
    Tensor y = x;
    for (size_t i = 0; i < D; ++i)
      y = circular_pad_dim(y, x.dim() - static_cast<int64_t>(D) + static_cast<int64_t>(i), left[i],
                           right[i]);
    return y;
  }
  std::vector<int64_t> pads;  // pad(): (left, right) from the last dim backwards
  for (size_t i = D; i-- > 0;) {
    pads.push_back(left[i]);
    pads.push_back(right[i]);
  }
  return pad(x, pads, p.padding_mode_);
}

template <size_t D>
std::vector<int64_t> ConvNdImpl<D>::output_padding_for(const Tensor& x,
                                                       IntArrayRef output_size) const {
  const ConvOptions<D>& p = options;
  EMBER_CHECK(x.defined() && x.dim() >= static_cast<int64_t>(D) + 1, ShapeError, "[", name_,
              "] expected a ", D + 1, "-D or ", D + 2, "-D input");
  EMBER_CHECK(output_size.size() >= D, ValueError, "[", name_, "] output_size ", output_size,
              " needs at least ", D, " values");
  std::vector<int64_t> op(D);
  for (size_t i = 0; i < D; ++i) {
    const int64_t in = x.size(x.dim() - static_cast<int64_t>(D) + static_cast<int64_t>(i));
    const int64_t want = output_size[output_size.size() - D + i];
    const int64_t smallest =
        (in - 1) * p.stride_[i] - 2 * p.padding_[i] + p.dilation_[i] * (p.kernel_size_[i] - 1) + 1;
    EMBER_CHECK(want >= smallest && want < smallest + p.stride_[i], ValueError, "[", name_,
                "] output_size ", output_size, " is not reachable from input ", x.sizes(), ": dim ",
                i, " must lie in [", smallest, ", ", smallest + p.stride_[i] - 1, "]");
    op[i] = want - smallest;
  }
  return op;
}

template <size_t D>
std::string ConvNdImpl<D>::extra_repr() const {
  const ConvOptions<D>& p = options;
  std::ostringstream os;
  os << p.in_channels_ << ", " << p.out_channels_ << ", kernel_size=" << IntArrayRef(p.kernel_size_)
     << ", stride=" << IntArrayRef(p.stride_);
  if (p.padding_name_)
    os << ", padding=" << *p.padding_name_;
  else if (!all_equal(p.padding_, 0))
    os << ", padding=" << IntArrayRef(p.padding_);
  if (!all_equal(p.dilation_, 1)) os << ", dilation=" << IntArrayRef(p.dilation_);
  if (!all_equal(p.output_padding_, 0)) os << ", output_padding=" << IntArrayRef(p.output_padding_);
  if (p.groups_ != 1) os << ", groups=" << p.groups_;
  if (!bias.defined()) os << ", bias=false";
  if (p.padding_mode_ != "zeros") os << ", padding_mode=" << p.padding_mode_;
  return os.str();
}

template class ConvNdImpl<1>;
template class ConvNdImpl<2>;

// ---- forwards ----

Tensor Conv1dImpl::forward(const Tensor& x) {
  const Conv1dOptions& p = options;
  std::vector<int64_t> conv_padding;
  const Tensor xp = padded_input(x, conv_padding);
  if (p.padding_name_ && p.padding_mode_ == "zeros")
    return conv1d(xp, weight, bias, p.stride_, *p.padding_name_, p.dilation_, p.groups_);
  return conv1d(xp, weight, bias, p.stride_, conv_padding, p.dilation_, p.groups_);
}

Tensor Conv2dImpl::forward(const Tensor& x) {
  const Conv2dOptions& p = options;
  std::vector<int64_t> conv_padding;
  const Tensor xp = padded_input(x, conv_padding);
  if (p.padding_name_ && p.padding_mode_ == "zeros")
    return conv2d(xp, weight, bias, p.stride_, *p.padding_name_, p.dilation_, p.groups_);
  return conv2d(xp, weight, bias, p.stride_, conv_padding, p.dilation_, p.groups_);
}

Tensor ConvTranspose1dImpl::forward(const Tensor& x) {
  const ConvTranspose1dOptions& p = options;
  return conv_transpose1d(x, weight, bias, p.stride_, p.padding_, p.output_padding_, p.groups_,
                          p.dilation_);
}

Tensor ConvTranspose2dImpl::forward(const Tensor& x) {
  const ConvTranspose2dOptions& p = options;
  return conv_transpose2d(x, weight, bias, p.stride_, p.padding_, p.output_padding_, p.groups_,
                          p.dilation_);
}

Tensor ConvTranspose1dImpl::forward_with_output_size(const Tensor& x, IntArrayRef output_size) {
  const ConvTranspose1dOptions& p = options;
  return conv_transpose1d(x, weight, bias, p.stride_, p.padding_,
                          output_padding_for(x, output_size), p.groups_, p.dilation_);
}

Tensor ConvTranspose2dImpl::forward_with_output_size(const Tensor& x, IntArrayRef output_size) {
  const ConvTranspose2dOptions& p = options;
  return conv_transpose2d(x, weight, bias, p.stride_, p.padding_,
                          output_padding_for(x, output_size), p.groups_, p.dilation_);
}

}  // namespace ember::nn
