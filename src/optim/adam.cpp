// Adam and AdamW (torch.optim.Adam / AdamW single-tensor formulas, same operation order).
// Contiguous float32/float64 parameters take the one-pass multi-tensor kernel adam_step
// (src/core/cpu/optim.cpp, src/cuda/optim.cu; one call per device and dtype for a whole group),
// everything else the composite below, which the kernels match bitwise.
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

void adam_update(const std::vector<ParamUpdate>& params, const AdamHyper& h, bool fused) {
  const double decay_scale = 1 - h.lr * h.weight_decay;  // AdamW's decoupled decay
  AdamStepOptions step_options;
  step_options.beta1 = h.beta1;
  step_options.beta2 = h.beta2;
  step_options.eps = h.eps;
  step_options.weight_decay = h.decoupled ? 0.0 : h.weight_decay;
  step_options.decay_scale = h.decoupled ? decay_scale : 1.0;
  FusedBatches<AdamStepTensors> batches;
  for (const ParamUpdate& u : params) {
    Tensor& param = *u.param;
    const Tensor& grad_in = *u.grad;
    StateDict& state = *u.state;
    const int64_t step = advance_step(state);
    Tensor exp_avg = state_buffer(state, "exp_avg", param);
    Tensor exp_avg_sq = state_buffer(state, "exp_avg_sq", param);
    Tensor max_exp_avg_sq = h.amsgrad ? state_buffer(state, "max_exp_avg_sq", param) : Tensor();
    const double t = static_cast<double>(step);
    const double bias_correction1 = 1 - std::pow(h.beta1, t);
    const double bias_correction2 = 1 - std::pow(h.beta2, t);
    const double step_size = h.lr / bias_correction1;
    const double bias_correction2_sqrt = std::sqrt(bias_correction2);
    if (fused && fused_update_applies(param, grad_in, {exp_avg, exp_avg_sq, max_exp_avg_sq})) {
      batches.of(param).push_back({param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad_in, step_size,
                                   bias_correction2_sqrt});
      continue;
    }
    Tensor grad = grad_in;
    if (h.weight_decay != 0) {
      if (h.decoupled)
        param.mul_(decay_scale);
      else
        grad = grad.add(param, h.weight_decay);
    }
    exp_avg.add_(grad.sub(exp_avg), 1 - h.beta1);                     // lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(h.beta2).add_(grad.mul(1 - h.beta2).mul_(grad));  // addcmul_(grad, grad, 1 - beta2)
    Tensor denom;
    if (h.amsgrad) {
      max_exp_avg_sq.copy_(maximum(max_exp_avg_sq, exp_avg_sq));
      denom = max_exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(h.eps);
    } else {
      denom = exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(h.eps);
    }
    param.add_(exp_avg.div(denom), -step_size);  // addcdiv_(exp_avg, denom, -step_size)
  }
  for (const std::vector<AdamStepTensors>& batch : batches.lists()) {
    launch(batch.front().param.device(), cpu::adam_step, cuda::adam_step, batch, step_options);
    for (const AdamStepTensors& p : batch)
      for (const Tensor* written : {&p.param, &p.exp_avg, &p.exp_avg_sq, &p.max_exp_avg_sq})
        if (written->defined()) written->bump_version();
  }
}

void adam_update_reference(Tensor& param, const Tensor& grad, StateDict& state, double lr,
                           double beta1, double beta2, double eps, double weight_decay,
                           bool amsgrad, bool decoupled) {
  adam_update({{&param, &grad, &state}},
              {lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled}, /*fused=*/false);
}

namespace {
AdamHyper hyper_of(const OptimizerOptions& options, const std::string& who, bool decoupled) {
  const auto& o = options_as<AdamOptions>(options, who);  // AdamW or Adam options
  return {o.lr(),          std::get<0>(o.betas()), std::get<1>(o.betas()), o.eps(),
          o.weight_decay(), o.amsgrad(),            decoupled};
}
}  // namespace

}  // namespace detail

Adam::Adam(std::vector<Tensor> params, const AdamOptions& defaults)
    : Adam(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

Adam::Adam(std::vector<OptimizerParamGroup> groups, const AdamOptions& defaults)
    : Optimizer("Adam", std::move(groups), defaults.clone()) {}

void Adam::update(Tensor& param, const Tensor& grad, StateDict& state,
                  const OptimizerOptions& options) {
  update_group({{&param, &grad, &state}}, options);
}

void Adam::update_group(const std::vector<ParamUpdate>& params, const OptimizerOptions& options) {
  detail::adam_update(params, detail::hyper_of(options, name(), /*decoupled=*/false));
}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& defaults)
    : AdamW(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

AdamW::AdamW(std::vector<OptimizerParamGroup> groups, const AdamWOptions& defaults)
    : Optimizer("AdamW", std::move(groups), defaults.clone()) {}

void AdamW::update(Tensor& param, const Tensor& grad, StateDict& state,
                   const OptimizerOptions& options) {
  update_group({{&param, &grad, &state}}, options);
}

void AdamW::update_group(const std::vector<ParamUpdate>& params, const OptimizerOptions& options) {
  detail::adam_update(params, detail::hyper_of(options, name(), /*decoupled=*/true));
}

}  // namespace ember::optim
