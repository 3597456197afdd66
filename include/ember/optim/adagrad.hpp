// Adagrad (Duchi et al., 2011), following torch.optim.Adagrad:
//   t = t + 1;  g = grad + weight_decay * p
//   clr = lr / (1 + (t - 1) * lr_decay)
//   sum = sum + g * g                      (sum starts at initial_accumulator_value)
//   p = p - clr * g / (sqrt(sum) + eps)
#pragma once

#include "ember/optim/optimizer.hpp"

namespace ember::optim {

class AdagradOptions : public OptimizerCloneableOptions<AdagradOptions> {
 public:
  explicit AdagradOptions(double lr = 1e-2) : OptimizerCloneableOptions(lr) {}

  AdagradOptions& lr(double v) {
    lr_ = v;
    return *this;
  }
  AdagradOptions& lr_decay(double v) {
    lr_decay_ = v;
    return *this;
  }
  AdagradOptions& weight_decay(double v) {
    weight_decay_ = v;
    return *this;
  }
  AdagradOptions& initial_accumulator_value(double v) {
    initial_accumulator_value_ = v;
    return *this;
  }
  AdagradOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  double lr() const { return lr_; }
  double lr_decay() const { return lr_decay_; }
  double weight_decay() const { return weight_decay_; }
  double initial_accumulator_value() const { return initial_accumulator_value_; }
  double eps() const { return eps_; }

  void save(StateDict& sd, const std::string& prefix) const override;
  void load(const StateDict& sd, const std::string& prefix) override;
  /// lr, lr_decay, weight_decay, initial_accumulator_value, eps >= 0.
  void validate(const std::string& who) const override;

 private:
  double lr_decay_ = 0;
  double weight_decay_ = 0;
  double initial_accumulator_value_ = 0;
  double eps_ = 1e-10;
};

/// State per parameter: "step", "sum".
class Adagrad : public Optimizer {
 public:
  explicit Adagrad(std::vector<Tensor> params, const AdagradOptions& defaults = AdagradOptions());
  explicit Adagrad(std::vector<OptimizerParamGroup> groups,
                   const AdagradOptions& defaults = AdagradOptions());

 protected:
  void update(Tensor& param, const Tensor& grad, StateDict& state,
              const OptimizerOptions& options) override;
  std::vector<std::string> state_names() const override { return {"step", "sum"}; }
};

}  // namespace ember::optim
