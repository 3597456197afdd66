// Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"):
//   c = beta1 * m + (1 - beta1) * g
//   p = p - lr * (sign(c) + weight_decay * p)     (computed as p * (1 - lr * wd) - lr * sign(c),
//                                                  the order of the authors' implementation)
//   m = beta2 * m + (1 - beta2) * g
// Lion's steps have unit size per coordinate: use an lr 3-10x smaller than AdamW's and a
// weight_decay 3-10x larger.
#pragma once

#include <tuple>

#include "ember/optim/optimizer.hpp"

namespace ember::optim {

class LionOptions : public OptimizerCloneableOptions<LionOptions> {
 public:
  using betas_t = std::tuple<double, double>;
  explicit LionOptions(double lr = 1e-4) : OptimizerCloneableOptions(lr) {}

  LionOptions& lr(double v) {
    lr_ = v;
    return *this;
  }
  LionOptions& betas(betas_t v) {
    betas_ = v;
    return *this;
  }
  LionOptions& weight_decay(double v) {
    weight_decay_ = v;
    return *this;
  }
  double lr() const { return lr_; }
  betas_t betas() const { return betas_; }
  double weight_decay() const { return weight_decay_; }

  void save(StateDict& sd, const std::string& prefix) const override;
  void load(const StateDict& sd, const std::string& prefix) override;
  /// lr, weight_decay >= 0; betas in [0, 1].
  void validate(const std::string& who) const override;
  /// beta1, which OneCycleLR cycles.
  std::optional<double> get_momentum() const override { return std::get<0>(betas_); }
  void set_momentum(double m) override { std::get<0>(betas_) = m; }

 private:
  betas_t betas_ = {0.9, 0.99};
  double weight_decay_ = 0;
};

/// State per parameter: "exp_avg".
class Lion : public Optimizer {
 public:
  explicit Lion(std::vector<Tensor> params, const LionOptions& defaults = LionOptions());
  explicit Lion(std::vector<OptimizerParamGroup> groups,
                const LionOptions& defaults = LionOptions());

 protected:
  void update(Tensor& param, const Tensor& grad, StateDict& state,
              const OptimizerOptions& options) override;
  std::vector<std::string> state_names() const override { return {"exp_avg"}; }
};

}  // namespace ember::optim
