// Gradient clipping by total norm and by value (torch.nn.utils semantics).
#include <cmath>

#include "ember/autograd.hpp"
#include "ember/nn/utils.hpp"
#include "ember/ops.hpp"

namespace ember::nn::utils {

Tensor clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  EMBER_CHECK(norm_type > 0, ValueError,
              "[clip_grad_norm_] norm_type must be positive or inf, got ", norm_type);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : parameters) {
    EMBER_CHECK(p.defined(), ValueError, "[clip_grad_norm_] a parameter is undefined");
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return scalar_tensor(0.0, kFloat32);

  // One norm per grad, then the norm of those norms (in the grads' promoted dtype).
  DType dt = grads[0].dtype();
  for (const Tensor& g : grads) dt = promote_types(dt, g.dtype());
  std::vector<Tensor> norms;
  for (const Tensor& g : grads) {
    if (g.numel() == 0) continue;
    norms.push_back(g.norm(norm_type).to(dt));
  }
  Tensor total = norms.empty() ? scalar_tensor(0.0, dt) : stack(norms).norm(norm_type);
  const double total_value = total.item<double>();
  EMBER_CHECK(!error_if_nonfinite || std::isfinite(total_value), ValueError,
              "[clip_grad_norm_] the total norm of order ", norm_type,
              " of the gradients is non-finite (", total_value,
              "), so it cannot be clipped; pass error_if_nonfinite = false to scale the gradients "
              "by the non-finite norm anyway");
  Tensor clip_coef = clamp_max(max_norm / (total + 1e-6), 1.0);
  for (Tensor& g : grads) g.mul_(clip_coef);
  return total;
}

Tensor clip_grad_norm_(const Tensor& parameter, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  return clip_grad_norm_(std::vector<Tensor>{parameter}, max_norm, norm_type, error_if_nonfinite);
}

void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value) {
  NoGradGuard no_grad;
  for (const Tensor& p : parameters) {
    EMBER_CHECK(p.defined(), ValueError, "[clip_grad_value_] a parameter is undefined");
    Tensor g = p.grad();
    if (g.defined()) g.clamp_(-clip_value, clip_value);
  }
}

void clip_grad_value_(const Tensor& parameter, double clip_value) {
  clip_grad_value_(std::vector<Tensor>{parameter}, clip_value);
}

}  // namespace ember::nn::utils
