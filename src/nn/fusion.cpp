// Folding an inference-mode BatchNorm into the convolution or linear layer before it
// (torch.nn.utils.fusion semantics): per output channel, weight * s and (bias - mean) * s + beta
// with s = gamma / sqrt(var + eps), computed in float64 and rounded once to the layer's dtype.
#include <string>

#include "ember/autograd.hpp"
#include "ember/nn/utils.hpp"
#include "ember/ops.hpp"
#include "ember/random.hpp"

namespace ember::nn::utils {

namespace {

/// The per-channel vectors of a BatchNorm as float64 on `device`: scale s = gamma / sqrt(var +
/// eps) and shift beta - mean * s (gamma 1 and beta 0 when undefined). ShapeError unless each
/// defined one holds `channels` values.
std::pair<Tensor, Tensor> bn_affine(const Tensor& rm, const Tensor& rv, double eps,
                                    const Tensor& gamma, const Tensor& beta, int64_t channels,
                                    Device device, const char* op) {
  EMBER_CHECK(rm.defined() && rv.defined(), ValueError, "[", op,
              "] the BatchNorm keeps no running statistics (track_running_stats=false)");
  for (const Tensor* t : {&rm, &rv, &gamma, &beta})
    EMBER_CHECK(!t->defined() || (t->dim() == 1 && t->size(0) == channels), ShapeError, "[", op,
                "] expected BatchNorm vectors of ", channels, " channels, got ", t->sizes());
  EMBER_CHECK(eps >= 0, ValueError, "[", op, "] eps must be non-negative, got ", eps);
  const auto f64 = [&](const Tensor& t) { return t.to(device).to(kFloat64); };
  Tensor s = rsqrt(f64(rv) + eps);
  if (gamma.defined()) s = s * f64(gamma);
  Tensor shift = -f64(rm) * s;
  if (beta.defined()) shift = shift + f64(beta);
  return {s, shift};
}

/// (bias - mean) * s + beta in bias' dtype (like's dtype when bias is undefined).
Tensor fused_bias(const Tensor& bias, const Tensor& s, const Tensor& shift, const Tensor& like) {
  Tensor b = bias.defined() ? bias.to(like.device()).to(kFloat64) * s + shift : shift;
  return b.to(bias.defined() ? bias.dtype() : like.dtype());
}

void check_eval(const Module& layer, const Module& bn, const char* op) {
  EMBER_CHECK(!layer.is_training() && !bn.is_training(), ValueError, "[", op,
              "] folds inference-mode modules only: call eval() on both (the ", layer.name(),
              " is ", layer.is_training() ? "training" : "in eval mode", ", the ", bn.name(),
              " is ", bn.is_training() ? "training" : "in eval mode", ")");
}

/// The new layer make() builds, moved to (w's device, dtype), its weight and bias set to the
/// folded ones, in eval mode. Its initial values are overwritten, so building it leaves the
/// default generator as it was (a caller's later draws stay those it would have had).
template <class Make>
auto finish(Make make, const std::pair<Tensor, Tensor>& wb) {
  Generator& gen = default_generator();
  const uint64_t seed = gen.current_seed(), offset = gen.offset();
  auto layer = make();
  gen.set_current_seed(seed);
  gen.set_offset(offset);
  layer->to(wb.first.device(), wb.first.dtype());
  NoGradGuard no_grad;
  layer->weight.copy_(wb.first);
  layer->bias.copy_(wb.second);
  layer->eval();
  return layer;
}

template <class Conv, class Norm>
Conv fuse_conv(const Conv& conv, const Norm& bn, bool transpose) {
  constexpr const char* op = "fuse_conv_bn_eval";
  EMBER_CHECK(!conv.is_empty() && !bn.is_empty(), ValueError, "[", op, "] a module is empty");
  check_eval(*conv, *bn, op);
  auto options = conv->options;
  options.bias(true);
  return finish(
      [&] { return Conv(options); },
      fuse_conv_bn_weights(conv->weight, conv->bias, bn->running_mean, bn->running_var, bn->eps,
                           bn->weight, bn->bias, transpose, conv->options.groups_));
}

}  // namespace

std::pair<Tensor, Tensor> fuse_conv_bn_weights(const Tensor& conv_w, const Tensor& conv_b,
                                               const Tensor& bn_rm, const Tensor& bn_rv,
                                               double bn_eps, const Tensor& bn_w,
                                               const Tensor& bn_b, bool transpose, int64_t groups) {
  constexpr const char* op = "fuse_conv_bn_weights";
  EMBER_CHECK(conv_w.defined() && conv_w.dim() >= 3, ShapeError, "[", op,
              "] expected a convolution weight of at least 3 dims, got ",
              conv_w.defined() ? conv_w.sizes() : IntArrayRef{});
  EMBER_CHECK(groups > 0 && (!transpose || conv_w.size(0) % groups == 0), ValueError, "[", op,
              "] groups ", groups, " must be positive and divide the weight's ", conv_w.sizes(),
              " input channels");
  const int64_t out = transpose ? conv_w.size(1) * groups : conv_w.size(0);
  auto [s, shift] = bn_affine(bn_rm, bn_rv, bn_eps, bn_w, bn_b, out, conv_w.device(), op);
  EMBER_CHECK(!conv_b.defined() || (conv_b.dim() == 1 && conv_b.size(0) == out), ShapeError, "[",
              op, "] expected a bias of ", out, " channels, got ", conv_b.sizes());
  NoGradGuard no_grad;
  const Tensor w = conv_w.to(kFloat64);
  std::vector<int64_t> view(static_cast<size_t>(w.dim()), 1);
  Tensor scaled;
  if (!transpose) {
    view[0] = out;
    scaled = w * s.reshape(view);
  } else {
    // (C_in, C_out / g, k...) as (g, C_in / g, C_out / g, k...): output channel grp * C_out / g
    // + j scales [grp, :, j].
    std::vector<int64_t> grouped = w.sizes().vec();
    grouped[0] = w.size(0) / groups;
    grouped.insert(grouped.begin(), groups);
    view.insert(view.begin(), 1);
    view[0] = groups, view[2] = out / groups;
    scaled = (w.reshape(grouped) * s.reshape(view)).reshape(w.sizes());
  }
  return {scaled.to(conv_w.dtype()), fused_bias(conv_b, s, shift, conv_w)};
}

std::pair<Tensor, Tensor> fuse_linear_bn_weights(const Tensor& linear_w, const Tensor& linear_b,
                                                 const Tensor& bn_rm, const Tensor& bn_rv,
                                                 double bn_eps, const Tensor& bn_w,
                                                 const Tensor& bn_b) {
  constexpr const char* op = "fuse_linear_bn_weights";
  EMBER_CHECK(linear_w.defined() && linear_w.dim() == 2, ShapeError, "[", op,
              "] expected a (out_features, in_features) weight, got ",
              linear_w.defined() ? linear_w.sizes() : IntArrayRef{});
  const int64_t out = linear_w.size(0);
  auto [s, shift] = bn_affine(bn_rm, bn_rv, bn_eps, bn_w, bn_b, out, linear_w.device(), op);
  EMBER_CHECK(!linear_b.defined() || (linear_b.dim() == 1 && linear_b.size(0) == out), ShapeError,
              "[", op, "] expected a bias of ", out, " features, got ", linear_b.sizes());
  NoGradGuard no_grad;
  const Tensor w = (linear_w.to(kFloat64) * s.unsqueeze(1)).to(linear_w.dtype());
  return {w, fused_bias(linear_b, s, shift, linear_w)};
}

Conv2d fuse_conv_bn_eval(const Conv2d& conv, const BatchNorm2d& bn) {
  return fuse_conv(conv, bn, false);
}
ConvTranspose2d fuse_conv_bn_eval(const ConvTranspose2d& conv, const BatchNorm2d& bn) {
  return fuse_conv(conv, bn, true);
}
Conv1d fuse_conv_bn_eval(const Conv1d& conv, const BatchNorm1d& bn) {
  return fuse_conv(conv, bn, false);
}

Linear fuse_linear_bn_eval(const Linear& linear, const BatchNorm1d& bn) {
  constexpr const char* op = "fuse_linear_bn_eval";
  EMBER_CHECK(!linear.is_empty() && !bn.is_empty(), ValueError, "[", op, "] a module is empty");
  check_eval(*linear, *bn, op);
  return finish([&] { return Linear(linear->in_features, linear->out_features, true); },
                fuse_linear_bn_weights(linear->weight, linear->bias, bn->running_mean,
                                       bn->running_var, bn->eps, bn->weight, bn->bias));
}

}  // namespace ember::nn::utils
