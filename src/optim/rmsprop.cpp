// RMSprop, plain and centered, with momentum (torch.optim.RMSprop's single-tensor path).
#include "ember/optim/rmsprop.hpp"

#include "optim/util.hpp"

namespace ember::optim {

void RMSpropOptions::save(StateDict& sd, const std::string& prefix) const {
  sd.set_double(prefix + ".lr", lr_);
  sd.set_double(prefix + ".alpha", alpha_);
  sd.set_double(prefix + ".eps", eps_);
  sd.set_double(prefix + ".weight_decay", weight_decay_);
  sd.set_double(prefix + ".momentum", momentum_);
  detail::save_bool(sd, prefix + ".centered", centered_);
}

void RMSpropOptions::load(const StateDict& sd, const std::string& prefix) {
  lr_ = sd.get_double(prefix + ".lr");
  alpha_ = sd.get_double(prefix + ".alpha");
  eps_ = sd.get_double(prefix + ".eps");
  weight_decay_ = sd.get_double(prefix + ".weight_decay");
  momentum_ = sd.get_double(prefix + ".momentum");
  centered_ = detail::load_bool(sd, prefix + ".centered");
}

void RMSpropOptions::validate(const std::string& who) const {
  detail::check_nonnegative(who, "learning rate", lr_);
  detail::check_nonnegative(who, "epsilon value", eps_);
  detail::check_nonnegative(who, "momentum value", momentum_);
  detail::check_nonnegative(who, "weight_decay value", weight_decay_);
  detail::check_nonnegative(who, "alpha value", alpha_);
}

RMSprop::RMSprop(std::vector<Tensor> params, const RMSpropOptions& defaults)
    : RMSprop(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

RMSprop::RMSprop(std::vector<OptimizerParamGroup> groups, const RMSpropOptions& defaults)
    : Optimizer("RMSprop", std::move(groups), defaults.clone()) {}

void RMSprop::update(Tensor& param, const Tensor& grad_in, StateDict& state,
                     const OptimizerOptions& options) {
  const auto& o = detail::options_as<RMSpropOptions>(options, name());
  detail::advance_step(state);
  Tensor square_avg = detail::state_buffer(state, "square_avg", param);
  Tensor grad = grad_in;
  if (o.weight_decay() != 0) grad = grad.add(param, o.weight_decay());
  const double alpha = o.alpha();
  square_avg.mul_(alpha).add_(grad.mul(1 - alpha).mul_(grad));  // addcmul_(g, g, 1 - alpha)
  Tensor avg;
  if (o.centered()) {
    Tensor grad_avg = detail::state_buffer(state, "grad_avg", param);
    grad_avg.add_(grad.sub(grad_avg), 1 - alpha);  // lerp_(grad, 1 - alpha)
    avg = square_avg.sub(grad_avg.mul(grad_avg)).sqrt();
  } else {
    avg = square_avg.sqrt();
  }
  avg.add_(o.eps());
  if (o.momentum() > 0) {
    Tensor buf = detail::state_buffer(state, "momentum_buffer", param);
    buf.mul_(o.momentum()).add_(grad.div(avg));  // addcdiv_(grad, avg)
    param.add_(buf, -o.lr());
  } else {
    param.add_(grad.div(avg), -o.lr());  // addcdiv_(grad, avg, -lr)
  }
}

}  // namespace ember::optim
