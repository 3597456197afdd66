// RMSprop (Hinton's lecture notes; centered form of Graves, 2013), following torch.optim.RMSprop:
//   t = t + 1;  g = grad + weight_decay * p
//   v = alpha * v + (1 - alpha) * g * g
//   centered: ga = ga + (1 - alpha) * (g - ga);  avg = sqrt(v - ga * ga) + eps
//   else:     avg = sqrt(v) + eps
//   momentum > 0: buf = momentum * buf + g / avg;  p = p - lr * buf
//   else:         p = p - lr * g / avg
#pragma once

#include "ember/optim/optimizer.hpp"

namespace ember::optim {

class RMSpropOptions : public OptimizerCloneableOptions<RMSpropOptions> {
 public:
  explicit RMSpropOptions(double lr = 1e-2) : OptimizerCloneableOptions(lr) {}

  RMSpropOptions& lr(double v) {
    lr_ = v;
    return *this;
  }
  RMSpropOptions& alpha(double v) {
    alpha_ = v;
    return *this;
  }
  RMSpropOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  RMSpropOptions& weight_decay(double v) {
    weight_decay_ = v;
    return *this;
  }
  RMSpropOptions& momentum(double v) {
    momentum_ = v;
    return *this;
  }
  RMSpropOptions& centered(bool v) {
    centered_ = v;
    return *this;
  }
  double lr() const { return lr_; }
  double alpha() const { return alpha_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  double momentum() const { return momentum_; }
  bool centered() const { return centered_; }

  void save(StateDict& sd, const std::string& prefix) const override;
  void load(const StateDict& sd, const std::string& prefix) override;
  /// lr, eps, weight_decay, momentum, alpha >= 0.
  void validate(const std::string& who) const override;
  std::optional<double> get_momentum() const override { return momentum_; }
  void set_momentum(double m) override { momentum_ = m; }

 private:
  double alpha_ = 0.99;
  double eps_ = 1e-8;
  double weight_decay_ = 0;
  double momentum_ = 0;
  bool centered_ = false;
};

/// State per parameter: "step", "square_avg", "momentum_buffer" (momentum > 0) and "grad_avg"
/// (centered).
class RMSprop : public Optimizer {
 public:
  explicit RMSprop(std::vector<Tensor> params, const RMSpropOptions& defaults = RMSpropOptions());
  explicit RMSprop(std::vector<OptimizerParamGroup> groups,
                   const RMSpropOptions& defaults = RMSpropOptions());

 protected:
  void update(Tensor& param, const Tensor& grad, StateDict& state,
              const OptimizerOptions& options) override;
  std::vector<std::string> state_names() const override {
    return {"step", "square_avg", "momentum_buffer", "grad_avg"};
  }
};

}  // namespace ember::optim
