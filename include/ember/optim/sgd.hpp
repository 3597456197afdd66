// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay,
// following torch.optim.SGD:
//   g = grad + weight_decay * p
//   buf = g (first step), else buf = momentum * buf + (1 - dampening) * g
//   g = nesterov ? g + momentum * buf : buf          (when momentum != 0)
//   p = p - lr * g
#pragma once

#include "ember/optim/optimizer.hpp"

namespace ember::optim {

class SGDOptions : public OptimizerCloneableOptions<SGDOptions> {
 public:
  explicit SGDOptions(double lr = 1e-3) : OptimizerCloneableOptions(lr) {}

  SGDOptions& lr(double v) {
    lr_ = v;
    return *this;
  }
  SGDOptions& momentum(double v) {
    momentum_ = v;
    return *this;
  }
  SGDOptions& dampening(double v) {
    dampening_ = v;
    return *this;
  }
  SGDOptions& weight_decay(double v) {
    weight_decay_ = v;
    return *this;
  }
  SGDOptions& nesterov(bool v) {
    nesterov_ = v;
    return *this;
  }
  double lr() const { return lr_; }
  double momentum() const { return momentum_; }
  double dampening() const { return dampening_; }
  double weight_decay() const { return weight_decay_; }
  bool nesterov() const { return nesterov_; }

  void save(StateDict& sd, const std::string& prefix) const override;
  void load(const StateDict& sd, const std::string& prefix) override;
  /// lr, momentum, weight_decay >= 0; nesterov needs momentum > 0 and dampening == 0.
  void validate(const std::string& who) const override;
  std::optional<double> get_momentum() const override { return momentum_; }
  void set_momentum(double m) override { momentum_ = m; }

 private:
  double momentum_ = 0;
  double dampening_ = 0;
  double weight_decay_ = 0;
  bool nesterov_ = false;
};

/// State per parameter: "momentum_buffer" (when momentum != 0).
class SGD : public Optimizer {
 public:
  explicit SGD(std::vector<Tensor> params, const SGDOptions& defaults = SGDOptions());
  explicit SGD(std::vector<OptimizerParamGroup> groups, const SGDOptions& defaults = SGDOptions());

 protected:
  void update(Tensor& param, const Tensor& grad, StateDict& state,
              const OptimizerOptions& options) override;
  void update_group(const std::vector<ParamUpdate>& params,
                    const OptimizerOptions& options) override;
  std::vector<std::string> state_names() const override { return {"momentum_buffer"}; }
};

}  // namespace ember::optim
