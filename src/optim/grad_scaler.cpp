// GradScaler: dynamic loss scaling (torch.amp.GradScaler's rules).
#include "ember/optim/grad_scaler.hpp"

#include <cmath>

#include "core/foreach.hpp"
#include "core/kernels.hpp"
#include "ember/autograd.hpp"
#include "ember/ops.hpp"

namespace ember::optim {

GradScaler::GradScaler(GradScalerOptions o) : options_(o), scale_(o.init_scale) {
  EMBER_CHECK(o.init_scale > 0 && std::isfinite(o.init_scale), ValueError,
              "[GradScaler] init_scale must be positive and finite, got ", o.init_scale);
  EMBER_CHECK(o.growth_factor > 1.0, ValueError, "[GradScaler] growth_factor must be > 1, got ",
              o.growth_factor);
  EMBER_CHECK(o.backoff_factor > 0.0 && o.backoff_factor < 1.0, ValueError,
              "[GradScaler] backoff_factor must be in (0, 1), got ", o.backoff_factor);
  EMBER_CHECK(o.growth_interval > 0, ValueError,
              "[GradScaler] growth_interval must be positive, got ", o.growth_interval);
}

Tensor GradScaler::scale(const Tensor& loss) const {
  EMBER_CHECK(loss.defined() && loss.is_floating_point(), DTypeError,
              "[GradScaler.scale] expected a floating loss, got ",
              loss.defined() ? loss.dtype() : kFloat32);
  if (!options_.enabled) return loss;
  const DType dt = loss.dtype();
  // A half loss times 65536 overflows float16 exactly when the gradients would; compute the
  // product in float32 and let backward carry the scale.
  if (dt == kFloat16 || dt == kBFloat16) return (loss.to(kFloat32) * scale_).to(dt);
  return loss * scale_;
}

void GradScaler::unscale_(Optimizer& optimizer) {
  if (!options_.enabled) return;
  PerOptimizer& st = per_optimizer_[&optimizer];
  EMBER_CHECK(!st.unscaled, ValueError,
              "[GradScaler.unscale_] unscale_ was already called on this optimizer since the "
              "last update()");
  EMBER_CHECK(!st.stepped, ValueError,
              "[GradScaler.unscale_] unscale_ is called after step() in this iteration");
  NoGradGuard no_grad;
  const double inv = 1.0 / scale_;
  std::vector<Tensor> grads;
  for (OptimizerParamGroup& g : optimizer.param_groups())
    for (Tensor& p : g.params())
      if (p.mutable_grad().defined()) grads.push_back(p.mutable_grad());
  // Whether a gradient is non-finite stays on the gradients' devices (a float32 flag per
  // foreach call, one bool for the other gradients) until step() or update() reads it: no host
  // sync per gradient.
  st.found_inf_flags.clear();
  Tensor others_bad;  // on the first such gradient's device
  for (const ForeachGroup& group : foreach_groups(grads)) {
    if (group.foreach) {
      // One multi-tensor pass (PyTorch's _amp_foreach_non_finite_check_and_unscale_).
      Tensor flag = zeros({1}, TensorOptions(kFloat32).device(group.tensors[0].device()));
      cuda::foreach_unscale_(group.tensors, inv, flag);
      st.found_inf_flags.push_back(flag);
      continue;
    }
    for (const Tensor& grad : group.tensors) {
      // Unscale in float32 at least, as PyTorch's fused kernel does, then store in place.
      Tensor unscaled = grad.to(promote_types(grad.dtype(), kFloat32)) * inv;
      const Tensor bad = logical_not(isfinite(unscaled).all());
      Tensor(grad).copy_(unscaled);
      others_bad = others_bad.defined() ? logical_or(others_bad, bad.to(others_bad.device())) : bad;
    }
  }
  if (others_bad.defined()) st.found_inf_flags.push_back(others_bad);
  st.unscaled = true;
  st.found_inf.reset();
}

bool GradScaler::PerOptimizer::any_inf() {
  if (!found_inf) {
    bool any = false;
    for (const Tensor& f : found_inf_flags) any = any || f.to(kFloat32).item<float>() != 0.f;
    found_inf = any;
    found_inf_flags.clear();
  }
  return *found_inf;
}

bool GradScaler::step(Optimizer& optimizer) {
  if (!options_.enabled) {
    optimizer.step();
    return true;
  }
  PerOptimizer& st = per_optimizer_[&optimizer];
  EMBER_CHECK(!st.stepped, ValueError,
              "[GradScaler.step] step() was already called on this optimizer since the last "
              "update()");
  if (!st.unscaled) unscale_(optimizer);
  PerOptimizer& after = per_optimizer_[&optimizer];
  after.stepped = true;
  if (after.any_inf()) return false;
  optimizer.step();
  return true;
}

void GradScaler::update(std::optional<double> new_scale) {
  if (!options_.enabled) return;
  if (new_scale) {
    EMBER_CHECK(*new_scale > 0 && std::isfinite(*new_scale), ValueError,
                "[GradScaler.update] new_scale must be positive and finite, got ", *new_scale);
    scale_ = *new_scale;
    growth_tracker_ = 0;
  } else {
    EMBER_CHECK(!per_optimizer_.empty(), ValueError,
                "[GradScaler.update] no optimizer was unscaled or stepped since the last update");
    bool found_inf = false;
    for (auto& [opt, st] : per_optimizer_) found_inf = st.any_inf() || found_inf;
    if (found_inf) {
      scale_ *= options_.backoff_factor;
      growth_tracker_ = 0;
    } else if (++growth_tracker_ == options_.growth_interval) {
      scale_ *= options_.growth_factor;
      growth_tracker_ = 0;
    }
  }
  per_optimizer_.clear();
}

StateDict GradScaler::state_dict() const {
  StateDict sd;
  sd.set_double("scale", scale_);
  sd.set_double("growth_factor", options_.growth_factor);
  sd.set_double("backoff_factor", options_.backoff_factor);
  sd.set_int("growth_interval", options_.growth_interval);
  sd.set_int("_growth_tracker", growth_tracker_);
  return sd;
}

void GradScaler::load_state_dict(const StateDict& sd) {
  GradScalerOptions o = options_;
  o.init_scale = sd.get_double("scale");
  o.growth_factor = sd.get_double("growth_factor");
  o.backoff_factor = sd.get_double("backoff_factor");
  o.growth_interval = sd.get_int("growth_interval");
  const int64_t tracker = sd.get_int("_growth_tracker");
  GradScaler checked(o);  // validates every value before anything changes
  options_ = o;
  scale_ = o.init_scale;
  growth_tracker_ = tracker;
  per_optimizer_.clear();
}

}  // namespace ember::optim
