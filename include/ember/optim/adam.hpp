// Adam (Kingma & Ba, 2015) with optional AMSGrad and L2 weight decay, following the
// single-tensor path of torch.optim.Adam:
//   t = t + 1;  g = grad + weight_decay * p
//   m = m + (1 - beta1) * (g - m)                     (lerp)
//   v = beta2 * v + (1 - beta2) * g * g
//   vmax = max(vmax, v)                               (amsgrad; used instead of v below)
//   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//   p = p - lr / (1 - beta1^t) * m / denom
#pragma once

#include <tuple>

#include "ember/optim/optimizer.hpp"

namespace ember::optim {

class AdamOptions : public OptimizerCloneableOptions<AdamOptions> {
 public:
  using betas_t = std::tuple<double, double>;
  explicit AdamOptions(double lr = 1e-3) : OptimizerCloneableOptions(lr) {}

  AdamOptions& lr(double v) {
    lr_ = v;
    return *this;
  }
  AdamOptions& betas(betas_t v) {
    betas_ = v;
    return *this;
  }
  AdamOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  AdamOptions& weight_decay(double v) {
    weight_decay_ = v;
    return *this;
  }
  AdamOptions& amsgrad(bool v) {
    amsgrad_ = v;
    return *this;
  }
  double lr() const { return lr_; }
  betas_t betas() const { return betas_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool amsgrad() const { return amsgrad_; }

  void save(StateDict& sd, const std::string& prefix) const override;
  void load(const StateDict& sd, const std::string& prefix) override;
  /// lr, eps, weight_decay >= 0; betas in [0, 1).
  void validate(const std::string& who) const override;
  /// beta1, which OneCycleLR cycles.
  std::optional<double> get_momentum() const override { return std::get<0>(betas_); }
  void set_momentum(double m) override { std::get<0>(betas_) = m; }

 protected:
  AdamOptions(double lr, double weight_decay)
      : OptimizerCloneableOptions(lr), weight_decay_(weight_decay) {}

  betas_t betas_ = {0.9, 0.999};
  double eps_ = 1e-8;
  double weight_decay_ = 0;
  bool amsgrad_ = false;
};

/// State per parameter: "step", "exp_avg", "exp_avg_sq" and "max_exp_avg_sq" (amsgrad).
class Adam : public Optimizer {
 public:
  explicit Adam(std::vector<Tensor> params, const AdamOptions& defaults = AdamOptions());
  explicit Adam(std::vector<OptimizerParamGroup> groups,
                const AdamOptions& defaults = AdamOptions());

 protected:
  void update(Tensor& param, const Tensor& grad, StateDict& state,
              const OptimizerOptions& options) override;
  void update_group(const std::vector<ParamUpdate>& params,
                    const OptimizerOptions& options) override;
  std::vector<std::string> state_names() const override {
    return {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  }
};

}  // namespace ember::optim
