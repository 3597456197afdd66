// Adagrad with lr decay (torch.optim.Adagrad's dense single-tensor path).
#include "ember/optim/adagrad.hpp"

#include "optim/util.hpp"

namespace ember::optim {

void AdagradOptions::save(StateDict& sd, const std::string& prefix) const {
  sd.set_double(prefix + ".lr", lr_);
  sd.set_double(prefix + ".lr_decay", lr_decay_);
  sd.set_double(prefix + ".weight_decay", weight_decay_);
  sd.set_double(prefix + ".initial_accumulator_value", initial_accumulator_value_);
  sd.set_double(prefix + ".eps", eps_);
}

void AdagradOptions::load(const StateDict& sd, const std::string& prefix) {
  lr_ = sd.get_double(prefix + ".lr");
  lr_decay_ = sd.get_double(prefix + ".lr_decay");
  weight_decay_ = sd.get_double(prefix + ".weight_decay");
  initial_accumulator_value_ = sd.get_double(prefix + ".initial_accumulator_value");
  eps_ = sd.get_double(prefix + ".eps");
}

void AdagradOptions::validate(const std::string& who) const {
  detail::check_nonnegative(who, "learning rate", lr_);
  detail::check_nonnegative(who, "lr_decay value", lr_decay_);
  detail::check_nonnegative(who, "weight_decay value", weight_decay_);
  detail::check_nonnegative(who, "initial_accumulator_value value", initial_accumulator_value_);
  detail::check_nonnegative(who, "epsilon value", eps_);
}

Adagrad::Adagrad(std::vector<Tensor> params, const AdagradOptions& defaults)
    : Adagrad(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

Adagrad::Adagrad(std::vector<OptimizerParamGroup> groups, const AdagradOptions& defaults)
    : Optimizer("Adagrad", std::move(groups), defaults.clone()) {}

void Adagrad::update(Tensor& param, const Tensor& grad_in, StateDict& state,
                     const OptimizerOptions& options) {
  const auto& o = detail::options_as<AdagradOptions>(options, name());
  const int64_t step = detail::advance_step(state);
  Tensor sum = detail::state_buffer(state, "sum", param, o.initial_accumulator_value());
  Tensor grad = grad_in;
  if (o.weight_decay() != 0) grad = grad.add(param, o.weight_decay());
  const double clr = o.lr() / (1 + static_cast<double>(step - 1) * o.lr_decay());
  sum.add_(grad.mul(grad));  // addcmul_(grad, grad, 1)
  Tensor std = sum.sqrt().add_(o.eps());
  param.add_(grad.div(std), -clr);  // addcdiv_(grad, std, -clr)
}

}  // namespace ember::optim
