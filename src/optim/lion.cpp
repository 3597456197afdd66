// Lion (Chen et al., 2023): sign of an interpolated momentum, decoupled weight decay.
#include "ember/optim/lion.hpp"

#include "optim/util.hpp"

namespace ember::optim {

void LionOptions::save(StateDict& sd, const std::string& prefix) const {
  sd.set_double(prefix + ".lr", lr_);
  detail::save_betas(sd, prefix + ".betas", betas_);
  sd.set_double(prefix + ".weight_decay", weight_decay_);
}

void LionOptions::load(const StateDict& sd, const std::string& prefix) {
  lr_ = sd.get_double(prefix + ".lr");
  betas_ = detail::load_betas(sd, prefix + ".betas");
  weight_decay_ = sd.get_double(prefix + ".weight_decay");
}

void LionOptions::validate(const std::string& who) const {
  detail::check_nonnegative(who, "learning rate", lr_);
  detail::check_beta(who, 0, std::get<0>(betas_), /*allow_one=*/true);
  detail::check_beta(who, 1, std::get<1>(betas_), /*allow_one=*/true);
  detail::check_nonnegative(who, "weight_decay value", weight_decay_);
}

Lion::Lion(std::vector<Tensor> params, const LionOptions& defaults)
    : Lion(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

Lion::Lion(std::vector<OptimizerParamGroup> groups, const LionOptions& defaults)
    : Optimizer("Lion", std::move(groups), defaults.clone()) {}

void Lion::update(Tensor& param, const Tensor& grad, StateDict& state,
                  const OptimizerOptions& options) {
  const auto& o = detail::options_as<LionOptions>(options, name());
  const auto [beta1, beta2] = o.betas();
  Tensor exp_avg = detail::state_buffer(state, "exp_avg", param);
  if (o.weight_decay() != 0) param.mul_(1 - o.lr() * o.weight_decay());
  Tensor c = exp_avg.mul(beta1).add_(grad, 1 - beta1);
  param.add_(c.sign(), -o.lr());
  exp_avg.mul_(beta2).add_(grad, 1 - beta2);
}

}  // namespace ember::optim
