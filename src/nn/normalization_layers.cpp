// The normalization and dropout modules over their functional forms.
#include <sstream>
#include <typeinfo>

#include "ember/nn/functional/dropout.hpp"
#include "ember/nn/functional/normalization.hpp"
#include "ember/nn/init.hpp"
#include "ember/nn/modules/activation.hpp"
#include "ember/nn/modules/dropout.hpp"
#include "ember/nn/modules/normalization.hpp"
#include "ember/ops.hpp"
#include "nn/fused_stages.hpp"
#include "nn/repr.hpp"

namespace ember::nn {

namespace F = ember::nn::functional;

namespace {
using detail::repr;

void check_probability(double p, const char* op) {
  EMBER_CHECK(p >= 0.0 && p <= 1.0, ValueError, "[", op,
              "] dropout probability must be in [0, 1], got ", p);
}
}  // namespace

// ---- BatchNorm ----

BatchNormImplBase::BatchNormImplBase(int64_t n, double eps, std::optional<double> momentum,
                                     bool affine, bool track)
    : num_features(n), eps(eps), momentum(momentum), affine(affine), track_running_stats(track) {
  EMBER_CHECK(n > 0, ValueError, "[BatchNorm] num_features must be positive, got ", n);
  if (affine) {
    weight = register_parameter("weight", empty({n}));
    bias = register_parameter("bias", empty({n}));
  }
  if (track) {
    running_mean = register_buffer("running_mean", zeros({n}));
    running_var = register_buffer("running_var", ones({n}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
  }
  reset_parameters();
}

void BatchNormImplBase::reset_running_stats() {
  if (!track_running_stats) return;
  NoGradGuard no_grad;
  running_mean.zero_();
  running_var.fill_(1.0);
  num_batches_tracked.zero_();
}

void BatchNormImplBase::reset_parameters() {
  reset_running_stats();
  if (affine) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}

Tensor BatchNormImplBase::forward(const Tensor& x) { return normalize(x, false, Tensor()); }

Tensor BatchNormImplBase::forward_relu(const Tensor& x, const Tensor& residual) {
  return normalize(x, true, residual);
}

Tensor BatchNormImplBase::normalize(const Tensor& x, bool relu, const Tensor& residual) {
  check_input_dim(x);
  EMBER_CHECK(x.size(1) == num_features, ShapeError, "[", name(), "] expected ", num_features,
              " channels in dim 1, got input ", x.sizes());
  double factor = momentum.value_or(0.0);
  if (is_training() && track_running_stats) {
    {
      NoGradGuard no_grad;
      num_batches_tracked.add_(1);
    }
    if (!momentum) factor = 1.0 / static_cast<double>(num_batches_tracked.item<int64_t>());
  }
  // Batch statistics while training, or always when no running statistics are kept.
  const bool use_batch_stats = is_training() || !track_running_stats;
  const bool update = !is_training() || track_running_stats;
  const Tensor rm = update ? running_mean : Tensor(), rv = update ? running_var : Tensor();
  if (relu)
    return F::batch_norm_relu(x, rm, rv, weight, bias, use_batch_stats, factor, eps, residual);
  return F::batch_norm(x, rm, rv, weight, bias, use_batch_stats, factor, eps);
}

bool stages::batch_norm_relu(Module& a, Module& b, Tensor& y) {
  const std::type_info& t = typeid(a);
  if ((t != typeid(BatchNorm1dImpl) && t != typeid(BatchNorm2dImpl)) ||
      typeid(b) != typeid(ReLUImpl))
    return false;
  y = static_cast<BatchNormImplBase&>(a).forward_relu(y);
  return true;
}

std::string BatchNormImplBase::extra_repr() const {
  std::string m = momentum ? repr(*momentum) : "None";
  return repr(num_features, ", eps=", eps, ", momentum=", m, ", affine=", affine,
              ", track_running_stats=", track_running_stats);
}

void BatchNorm1dImpl::check_input_dim(const Tensor& x) const {
  EMBER_CHECK(x.dim() == 2 || x.dim() == 3, ShapeError,
              "[BatchNorm1d] expected 2-D or 3-D input (N, C) or (N, C, L), got ", x.sizes());
}

void BatchNorm2dImpl::check_input_dim(const Tensor& x) const {
  EMBER_CHECK(x.dim() == 4, ShapeError, "[BatchNorm2d] expected 4-D input (N, C, H, W), got ",
              x.sizes());
}

// ---- LayerNorm / RMSNorm / GroupNorm ----

LayerNormImpl::LayerNormImpl(std::vector<int64_t> shape, double eps, bool affine, bool with_bias)
    : normalized_shape(std::move(shape)), eps(eps), elementwise_affine(affine) {
  if (affine) {
    weight = register_parameter("weight", ember::empty(IntArrayRef(normalized_shape)));
    if (with_bias) bias = register_parameter("bias", ember::empty(IntArrayRef(normalized_shape)));
  }
  reset_parameters();
}

void LayerNormImpl::reset_parameters() {
  if (weight.defined()) init::ones_(weight);
  if (bias.defined()) init::zeros_(bias);
}

Tensor LayerNormImpl::forward(const Tensor& x) {
  return F::layer_norm(x, normalized_shape, weight, bias, eps);
}

std::string LayerNormImpl::extra_repr() const {
  return repr(IntArrayRef(normalized_shape), ", eps=", eps,
              ", elementwise_affine=", elementwise_affine);
}

RMSNormImpl::RMSNormImpl(std::vector<int64_t> shape, std::optional<double> eps, bool affine)
    : normalized_shape(std::move(shape)), eps(eps), elementwise_affine(affine) {
  if (affine) weight = register_parameter("weight", ember::ones(IntArrayRef(normalized_shape)));
}

Tensor RMSNormImpl::forward(const Tensor& x) {
  return F::rms_norm(x, normalized_shape, weight, eps);
}

std::string RMSNormImpl::extra_repr() const {
  return repr(IntArrayRef(normalized_shape), ", eps=", eps ? repr(*eps) : "None",
              ", elementwise_affine=", elementwise_affine);
}

GroupNormImpl::GroupNormImpl(int64_t groups, int64_t channels, double eps, bool affine)
    : num_groups(groups), num_channels(channels), eps(eps), affine(affine) {
  EMBER_CHECK(groups > 0 && channels % groups == 0, ValueError,
              "[GroupNorm] num_channels must be divisible by num_groups, got ", channels, " and ",
              groups);
  if (affine) {
    weight = register_parameter("weight", ones({channels}));
    bias = register_parameter("bias", zeros({channels}));
  }
}

Tensor GroupNormImpl::forward(const Tensor& x) {
  return F::group_norm(x, num_groups, weight, bias, eps);
}

std::string GroupNormImpl::extra_repr() const {
  return repr(num_groups, ", ", num_channels, ", eps=", eps, ", affine=", affine);
}

// ---- Dropout ----

DropoutImpl::DropoutImpl(double p) : p(p) { check_probability(p, "Dropout"); }
Tensor DropoutImpl::forward(const Tensor& x) { return F::dropout(x, p, is_training()); }
std::string DropoutImpl::extra_repr() const { return repr("p=", p); }

Dropout2dImpl::Dropout2dImpl(double p) : p(p) { check_probability(p, "Dropout2d"); }
Tensor Dropout2dImpl::forward(const Tensor& x) { return F::dropout2d(x, p, is_training()); }
std::string Dropout2dImpl::extra_repr() const { return repr("p=", p); }

}  // namespace ember::nn
