// Adam and AdamW (torch.optim.Adam / AdamW single-tensor path, same operation order). Contiguous
// float32/float64 parameters take the one-pass kernel adam_step (src/core/cpu/optim.cpp,
// src/cuda/optim.cu), everything else the composite below, which the kernels match bitwise.
#include "ember/optim/adam.hpp"

#include <cmath>

#include "core/dispatch.hpp"
#include "core/kernels.hpp"
#include "ember/optim/adamw.hpp"
#include "optim/util.hpp"

namespace ember::optim {

void AdamOptions::save(StateDict& sd, const std::string& prefix) const {
  sd.set_double(prefix + ".lr", lr_);
  detail::save_betas(sd, prefix + ".betas", betas_);
  sd.set_double(prefix + ".eps", eps_);
  sd.set_double(prefix + ".weight_decay", weight_decay_);
  detail::save_bool(sd, prefix + ".amsgrad", amsgrad_);
}

void AdamOptions::load(const StateDict& sd, const std::string& prefix) {
  lr_ = sd.get_double(prefix + ".lr");
  betas_ = detail::load_betas(sd, prefix + ".betas");
  eps_ = sd.get_double(prefix + ".eps");
  weight_decay_ = sd.get_double(prefix + ".weight_decay");
  amsgrad_ = detail::load_bool(sd, prefix + ".amsgrad");
}

void AdamOptions::validate(const std::string& who) const {
  detail::check_nonnegative(who, "learning rate", lr_);
  detail::check_nonnegative(who, "epsilon value", eps_);
  detail::check_beta(who, 0, std::get<0>(betas_), /*allow_one=*/false);
  detail::check_beta(who, 1, std::get<1>(betas_), /*allow_one=*/false);
  detail::check_nonnegative(who, "weight_decay value", weight_decay_);
}

namespace detail {

namespace {

/// One Adam step of one parameter: the fused kernel when `fused` and fused_update_applies, else
/// the composite. Both see the same state tensors and the same double scalars.
void adam_update_with(Tensor& param, const Tensor& grad_in, StateDict& state, double lr,
                      double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
                      bool decoupled, bool fused) {
  const int64_t step = advance_step(state);
  Tensor exp_avg = state_buffer(state, "exp_avg", param);
  Tensor exp_avg_sq = state_buffer(state, "exp_avg_sq", param);
  Tensor max_exp_avg_sq = amsgrad ? state_buffer(state, "max_exp_avg_sq", param) : Tensor();
  const double t = static_cast<double>(step);
  const double bias_correction1 = 1 - std::pow(beta1, t);
  const double bias_correction2 = 1 - std::pow(beta2, t);
  const double step_size = lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  const double decay_scale = 1 - lr * weight_decay;  // AdamW's decoupled decay
  if (fused && fused_update_applies(param, grad_in, {exp_avg, exp_avg_sq, max_exp_avg_sq})) {
    launch(param.device(), cpu::adam_step, cuda::adam_step, param, exp_avg, exp_avg_sq,
           max_exp_avg_sq, grad_in, beta1, beta2, eps, decoupled ? 0.0 : weight_decay,
           decoupled ? decay_scale : 1.0, step_size, bias_correction2_sqrt);
    for (const Tensor* written : {&param, &exp_avg, &exp_avg_sq, &max_exp_avg_sq})
      if (written->defined()) written->bump_version();
    return;
  }
  Tensor grad = grad_in;
  if (weight_decay != 0) {
    if (decoupled)
      param.mul_(decay_scale);
    else
      grad = grad.add(param, weight_decay);
  }
  exp_avg.add_(grad.sub(exp_avg), 1 - beta1);                   // lerp_(grad, 1 - beta1)
  exp_avg_sq.mul_(beta2).add_(grad.mul(1 - beta2).mul_(grad));  // addcmul_(grad, grad, 1 - beta2)
  Tensor denom;
  if (amsgrad) {
    max_exp_avg_sq.copy_(maximum(max_exp_avg_sq, exp_avg_sq));
    denom = max_exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(eps);
  } else {
    denom = exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(eps);
  }
  param.add_(exp_avg.div(denom), -step_size);  // addcdiv_(exp_avg, denom, -step_size)
}

}  // namespace

void adam_update(Tensor& param, const Tensor& grad, StateDict& state, double lr, double beta1,
                 double beta2, double eps, double weight_decay, bool amsgrad, bool decoupled) {
  adam_update_with(param, grad, state, lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled,
                   /*fused=*/true);
}

void adam_update_reference(Tensor& param, const Tensor& grad, StateDict& state, double lr,
                           double beta1, double beta2, double eps, double weight_decay,
                           bool amsgrad, bool decoupled) {
  adam_update_with(param, grad, state, lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled,
                   /*fused=*/false);
}

}  // namespace detail

Adam::Adam(std::vector<Tensor> params, const AdamOptions& defaults)
    : Adam(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

Adam::Adam(std::vector<OptimizerParamGroup> groups, const AdamOptions& defaults)
    : Optimizer("Adam", std::move(groups), defaults.clone()) {}

void Adam::update(Tensor& param, const Tensor& grad, StateDict& state,
                  const OptimizerOptions& options) {
  const auto& o = detail::options_as<AdamOptions>(options, name());
  detail::adam_update(param, grad, state, o.lr(), std::get<0>(o.betas()), std::get<1>(o.betas()),
                      o.eps(), o.weight_decay(), o.amsgrad(), /*decoupled=*/false);
}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& defaults)
    : AdamW(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

AdamW::AdamW(std::vector<OptimizerParamGroup> groups, const AdamWOptions& defaults)
    : Optimizer("AdamW", std::move(groups), defaults.clone()) {}

void AdamW::update(Tensor& param, const Tensor& grad, StateDict& state,
                   const OptimizerOptions& options) {
  const auto& o = detail::options_as<AdamOptions>(options, name());  // AdamW or Adam options
  detail::adam_update(param, grad, state, o.lr(), std::get<0>(o.betas()), std::get<1>(o.betas()),
                      o.eps(), o.weight_decay(), o.amsgrad(), /*decoupled=*/true);
}

}  // namespace ember::optim
