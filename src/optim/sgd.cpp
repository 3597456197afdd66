// SGD with momentum, dampening, Nesterov and weight decay (torch.optim.SGD's single-tensor path).
#include "ember/optim/sgd.hpp"

#include "optim/util.hpp"

namespace ember::optim {

void SGDOptions::save(StateDict& sd, const std::string& prefix) const {
  sd.set_double(prefix + ".lr", lr_);
  sd.set_double(prefix + ".momentum", momentum_);
  sd.set_double(prefix + ".dampening", dampening_);
  sd.set_double(prefix + ".weight_decay", weight_decay_);
  detail::save_bool(sd, prefix + ".nesterov", nesterov_);
}

void SGDOptions::load(const StateDict& sd, const std::string& prefix) {
  lr_ = sd.get_double(prefix + ".lr");
  momentum_ = sd.get_double(prefix + ".momentum");
  dampening_ = sd.get_double(prefix + ".dampening");
  weight_decay_ = sd.get_double(prefix + ".weight_decay");
  nesterov_ = detail::load_bool(sd, prefix + ".nesterov");
}

void SGDOptions::validate(const std::string& who) const {
  detail::check_nonnegative(who, "learning rate", lr_);
  detail::check_nonnegative(who, "momentum value", momentum_);
  detail::check_nonnegative(who, "weight_decay value", weight_decay_);
  EMBER_CHECK(!nesterov_ || (momentum_ > 0 && dampening_ == 0), ValueError, "[", who,
              "] Nesterov momentum requires a momentum and zero dampening, got momentum ",
              momentum_, " and dampening ", dampening_);
}

SGD::SGD(std::vector<Tensor> params, const SGDOptions& defaults)
    : SGD(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

SGD::SGD(std::vector<OptimizerParamGroup> groups, const SGDOptions& defaults)
    : Optimizer("SGD", std::move(groups), defaults.clone()) {}

void SGD::update(Tensor& param, const Tensor& grad_in, StateDict& state,
                 const OptimizerOptions& options) {
  const auto& o = detail::options_as<SGDOptions>(options, name());
  Tensor grad = grad_in;
  if (o.weight_decay() != 0) grad = grad.add(param, o.weight_decay());
  if (o.momentum() != 0) {
    Tensor buf;
    if (const Tensor* b = state.find("momentum_buffer")) {
      buf = *b;
      buf.mul_(o.momentum()).add_(grad, 1 - o.dampening());
    } else {
      buf = grad.detach().clone();  // the first step takes the gradient as the buffer
      state.insert("momentum_buffer", buf);
    }
    grad = o.nesterov() ? grad.add(buf, o.momentum()) : buf;
  }
  param.add_(grad, -o.lr());
}

}  // namespace ember::optim
