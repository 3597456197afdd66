// SGD with momentum, dampening, Nesterov and weight decay (torch.optim.SGD's single-tensor path).
// Contiguous float32/float64 parameters take the one-pass kernel sgd_step (src/core/cpu/optim.cpp,
// src/cuda/optim.cu), everything else the composite below, which the kernels match bitwise.
#include "ember/optim/sgd.hpp"

#include "core/dispatch.hpp"
#include "core/kernels.hpp"
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

void SGD::update(Tensor& param, const Tensor& grad, StateDict& state,
                 const OptimizerOptions& options) {
  const auto& o = detail::options_as<SGDOptions>(options, name());
  detail::sgd_update(param, grad, state, o.lr(), o.momentum(), o.dampening(), o.weight_decay(),
                     o.nesterov());
}

namespace detail {

namespace {

/// One SGD step of one parameter: the fused kernel when `fused` and fused_update_applies, else
/// the composite. Both keep the momentum buffer as the state tensor "momentum_buffer".
void sgd_update_with(Tensor& param, const Tensor& grad_in, StateDict& state, double lr,
                     double momentum, double dampening, double weight_decay, bool nesterov,
                     bool fused) {
  const Tensor* existing = momentum != 0 ? state.find("momentum_buffer") : nullptr;
  if (fused && fused_update_applies(param, grad_in, {existing ? *existing : Tensor()})) {
    const bool first_step = momentum != 0 && existing == nullptr;
    Tensor buf = existing ? *existing : Tensor();
    if (first_step)  // written, not read
      buf = empty(param.sizes(), TensorOptions(param.dtype()).device(param.device()));
    launch(param.device(), cpu::sgd_step, cuda::sgd_step, param, buf, grad_in, lr, momentum,
           dampening, weight_decay, nesterov, first_step);
    param.bump_version();
    if (existing) buf.bump_version();
    if (first_step) state.insert("momentum_buffer", buf);
    return;
  }
  Tensor grad = grad_in;
  if (weight_decay != 0) grad = grad.add(param, weight_decay);
  if (momentum != 0) {
    Tensor buf;
    if (existing) {
      buf = *existing;
      buf.mul_(momentum).add_(grad, 1 - dampening);
    } else {
      buf = grad.detach().clone();  // the first step takes the gradient as the buffer
      state.insert("momentum_buffer", buf);
    }
    grad = nesterov ? grad.add(buf, momentum) : buf;
  }
  param.add_(grad, -lr);
}

}  // namespace

void sgd_update(Tensor& param, const Tensor& grad, StateDict& state, double lr, double momentum,
                double dampening, double weight_decay, bool nesterov) {
  sgd_update_with(param, grad, state, lr, momentum, dampening, weight_decay, nesterov,
                  /*fused=*/true);
}

void sgd_update_reference(Tensor& param, const Tensor& grad, StateDict& state, double lr,
                          double momentum, double dampening, double weight_decay, bool nesterov) {
  sgd_update_with(param, grad, state, lr, momentum, dampening, weight_decay, nesterov,
                  /*fused=*/false);
}

}  // namespace detail

}  // namespace ember::optim
