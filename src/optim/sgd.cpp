// SGD with momentum, dampening, Nesterov and weight decay (torch.optim.SGD's single-tensor
// formulas). Contiguous float32/float64 parameters take the one-pass multi-tensor kernel sgd_step
// (src/core/cpu/optim.cpp, src/cuda/optim.cu; one call per device and dtype for a whole group),
// everything else the composite below, which the kernels match bitwise.
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
  update_group({{&param, &grad, &state}}, options);
}

void SGD::update_group(const std::vector<ParamUpdate>& params, const OptimizerOptions& options) {
  const auto& o = detail::options_as<SGDOptions>(options, name());
  detail::sgd_update(params, {o.lr(), o.momentum(), o.dampening(), o.weight_decay(), o.nesterov()});
}

namespace detail {

void sgd_update(const std::vector<ParamUpdate>& params, const SgdHyper& h, bool fused) {
  SgdStepOptions step_options;
  step_options.lr = h.lr;
  step_options.momentum = h.momentum;
  step_options.dampening = h.dampening;
  step_options.weight_decay = h.weight_decay;
  step_options.nesterov = h.nesterov;
  FusedBatches<SgdStepTensors> batches;
  for (const ParamUpdate& u : params) {
    Tensor& param = *u.param;
    const Tensor& grad_in = *u.grad;
    StateDict& state = *u.state;
    const Tensor* existing = h.momentum != 0 ? state.find("momentum_buffer") : nullptr;
    if (fused && fused_update_applies(param, grad_in, {existing ? *existing : Tensor()})) {
      const bool first_step = h.momentum != 0 && existing == nullptr;
      Tensor buf = existing ? *existing : Tensor();
      if (first_step) {  // written, not read
        buf = empty_like(param);
        state.insert("momentum_buffer", buf);
      }
      batches.of(param).push_back({param, buf, grad_in, first_step});
      continue;
    }
    Tensor grad = grad_in;
    if (h.weight_decay != 0) grad = grad.add(param, h.weight_decay);
    if (h.momentum != 0) {
      Tensor buf;
      if (existing) {
        buf = *existing;
        buf.mul_(h.momentum).add_(grad, 1 - h.dampening);
      } else {
        buf = grad.detach().clone();  // the first step takes the gradient as the buffer
        state.insert("momentum_buffer", buf);
      }
      grad = h.nesterov ? grad.add(buf, h.momentum) : buf;
    }
    param.add_(grad, -h.lr);
  }
  for (const std::vector<SgdStepTensors>& batch : batches.lists()) {
    launch(batch.front().param.device(), cpu::sgd_step, cuda::sgd_step, batch, step_options);
    for (const SgdStepTensors& p : batch) {
      p.param.bump_version();
      if (p.momentum_buffer.defined() && !p.first_step) p.momentum_buffer.bump_version();
    }
  }
}

void sgd_update_reference(Tensor& param, const Tensor& grad, StateDict& state, double lr,
                          double momentum, double dampening, double weight_decay, bool nesterov) {
  sgd_update({{&param, &grad, &state}}, {lr, momentum, dampening, weight_decay, nesterov},
             /*fused=*/false);
}

}  // namespace detail

}  // namespace ember::optim
