// Loss scaling for half-precision training, as torch.amp.GradScaler:
//
//   ember::optim::GradScaler scaler;
//   for (...) {
//     opt.zero_grad();
//     scaler.scale(loss).backward();   // gradients of loss * scale
//     scaler.unscale_(opt);            // optional: to clip the true gradients
//     ember::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
//     scaler.step(opt);                // skipped when a gradient is Inf or NaN
//     scaler.update();                 // backs off after an overflow, grows after a clean run
//   }
//
// The scale starts at init_scale; an overflowing step multiplies it by backoff_factor, and
// growth_interval clean steps in a row multiply it by growth_factor.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "ember/optim/optimizer.hpp"
#include "ember/state_dict.hpp"
#include "ember/tensor.hpp"

namespace ember::optim {

struct GradScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  /// false: scale() returns the loss as is, step() just steps, update() does nothing.
  bool enabled = true;
};

class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {});

  /// loss * scale (in loss's dtype; the product is computed in float32 for half losses).
  Tensor scale(const Tensor& loss) const;
  /// Divides the optimizer's gradients by the scale in place and records whether any is Inf or
  /// NaN. ValueError when called twice for one optimizer before update().
  void unscale_(Optimizer& optimizer);
  /// Unscales (unless unscale_ already ran) and calls optimizer.step() unless a gradient was
  /// non-finite. Returns whether the optimizer stepped.
  bool step(Optimizer& optimizer);
  /// Adjusts the scale from this iteration's steps and forgets them. `new_scale` sets it directly.
  void update(std::optional<double> new_scale = std::nullopt);

  double get_scale() const { return scale_; }
  int64_t growth_tracker() const { return growth_tracker_; }
  bool is_enabled() const { return options_.enabled; }
  /// scale, growth_factor, backoff_factor, growth_interval, _growth_tracker (PyTorch's keys).
  StateDict state_dict() const;
  void load_state_dict(const StateDict& sd);

 private:
  struct PerOptimizer {
    bool unscaled = false;
    bool stepped = false;
    /// unscale_'s non-finite flags, on the gradients' devices until any_inf() reads them.
    std::vector<Tensor> found_inf_flags;
    std::optional<bool> found_inf;
    /// Whether a gradient was non-finite (reads the flags once: one host sync per device).
    bool any_inf();
  };
  GradScalerOptions options_;
  double scale_;
  int64_t growth_tracker_ = 0;
  std::map<const Optimizer*, PerOptimizer> per_optimizer_;
};

}  // namespace ember::optim

namespace ember::amp {
/// torch.amp's names for the loss scaler.
using GradScaler = optim::GradScaler;
using GradScalerOptions = optim::GradScalerOptions;
}  // namespace ember::amp
