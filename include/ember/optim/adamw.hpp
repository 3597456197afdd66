// AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay, following torch.optim.AdamW.
// The decay comes first, p = p * (1 - lr * weight_decay), then the Adam update on the raw
// gradient (see adam.hpp).
#pragma once

#include "ember/optim/adam.hpp"

namespace ember::optim {

/// Adam's options with weight_decay defaulting to 1e-2, as in PyTorch.
class AdamWOptions : public AdamOptions {
 public:
  explicit AdamWOptions(double lr = 1e-3) : AdamOptions(lr, 1e-2) {}

  std::unique_ptr<OptimizerOptions> clone() const override {
    return std::make_unique<AdamWOptions>(*this);
  }
  AdamWOptions& lr(double v) {
    lr_ = v;
    return *this;
  }
  AdamWOptions& betas(betas_t v) {
    betas_ = v;
    return *this;
  }
  AdamWOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  AdamWOptions& weight_decay(double v) {
    weight_decay_ = v;
    return *this;
  }
  AdamWOptions& amsgrad(bool v) {
    amsgrad_ = v;
    return *this;
  }
  double lr() const { return lr_; }
  betas_t betas() const { return betas_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool amsgrad() const { return amsgrad_; }
};

/// State per parameter: "step", "exp_avg", "exp_avg_sq" and "max_exp_avg_sq" (amsgrad).
class AdamW : public Optimizer {
 public:
  explicit AdamW(std::vector<Tensor> params, const AdamWOptions& defaults = AdamWOptions());
  explicit AdamW(std::vector<OptimizerParamGroup> groups,
                 const AdamWOptions& defaults = AdamWOptions());

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
