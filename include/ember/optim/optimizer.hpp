// The optimizer base: parameter groups with their own options, per-parameter state, step(),
// zero_grad() and a PyTorch-style flattened state_dict. The algorithms (SGD, Adam, AdamW,
// RMSprop, Adagrad, Lion) derive from it and implement one per-parameter update; Adam, AdamW and
// SGD also update a whole group at once (update_group: one multi-tensor kernel per device and
// dtype instead of one launch per parameter).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ember/state_dict.hpp"
#include "ember/tensor.hpp"

namespace ember::optim {

/// One parameter of a step: the parameter, its gradient (defined, checked against the parameter)
/// and its state.
struct ParamUpdate {
  Tensor* param;
  const Tensor* grad;
  StateDict* state;
};

/// Options of one parameter group (lr, weight_decay and the algorithm's others). Every
/// algorithm's options derive from this, so a scheduler reads and writes `get_lr()`/`set_lr()`
/// (also spelled `lr()`) on any optimizer's groups.
class OptimizerOptions {
 public:
  virtual ~OptimizerOptions() = default;
  virtual std::unique_ptr<OptimizerOptions> clone() const = 0;

  double get_lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  /// Same as get_lr(); the algorithm options also have a fluent setter `lr(double)`.
  double lr() const { return lr_; }

  /// Writes the options as `prefix.lr`, `prefix.betas`, ... (numbers as 0-d float64/int64).
  virtual void save(StateDict& sd, const std::string& prefix) const = 0;
  /// Reads the keys save() writes; IndexError naming a missing key. Unknown keys are ignored.
  virtual void load(const StateDict& sd, const std::string& prefix) = 0;
  /// ValueError "[Adam] invalid learning rate: -1" for values the algorithm rejects.
  virtual void validate(const std::string& who) const = 0;

  /// The momentum a scheduler may cycle (OneCycleLR): SGD's and RMSprop's momentum, beta1 of
  /// Adam, AdamW and Lion; nullopt for algorithms without one (Adagrad).
  virtual std::optional<double> get_momentum() const { return std::nullopt; }
  /// Sets that momentum; ValueError for algorithms without one.
  virtual void set_momentum(double momentum);

 protected:
  explicit OptimizerOptions(double lr) : lr_(lr) {}
  OptimizerOptions(const OptimizerOptions&) = default;
  OptimizerOptions& operator=(const OptimizerOptions&) = default;

  double lr_;
};

/// Implements clone() for an options class (libtorch's OptimizerCloneableOptions).
template <class Derived>
class OptimizerCloneableOptions : public OptimizerOptions {
 public:
  std::unique_ptr<OptimizerOptions> clone() const override {
    return std::make_unique<Derived>(static_cast<const Derived&>(*this));
  }

 protected:
  using OptimizerOptions::OptimizerOptions;
};

/// A list of parameters with their own options. Without options the group takes the optimizer's
/// defaults when it is added. The tensors are shared handles: the optimizer updates the very
/// tensors the model holds.
class OptimizerParamGroup {
 public:
  OptimizerParamGroup(std::vector<Tensor> params);  // NOLINT: implicit, as in libtorch
  OptimizerParamGroup(std::vector<Tensor> params, std::unique_ptr<OptimizerOptions> options);
  /// Copies the options (they are cloned).
  OptimizerParamGroup(const OptimizerParamGroup& other);
  OptimizerParamGroup& operator=(const OptimizerParamGroup& other);
  OptimizerParamGroup(OptimizerParamGroup&&) = default;
  OptimizerParamGroup& operator=(OptimizerParamGroup&&) = default;

  bool has_options() const { return options_ != nullptr; }
  /// The group's options; ValueError when the group has none yet.
  OptimizerOptions& options();
  const OptimizerOptions& options() const;
  void set_options(std::unique_ptr<OptimizerOptions> options);
  std::vector<Tensor>& params() { return params_; }
  const std::vector<Tensor>& params() const { return params_; }

  /// The lr a scheduler started from (PyTorch's group["initial_lr"]); set by the first scheduler
  /// built on the optimizer and kept in the optimizer's state_dict.
  std::optional<double> initial_lr;

 private:
  std::vector<Tensor> params_;
  std::unique_ptr<OptimizerOptions> options_;
};

/// Base of every optimizer. Not copyable: it owns the per-parameter state.
class Optimizer {
 public:
  using LossClosure = std::function<Tensor()>;

  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Validates the group (floating leaf tensors, none already in another group, valid options),
  /// gives it a copy of the defaults when it has no options, and appends it.
  void add_param_group(const OptimizerParamGroup& group);

  /// One update of every parameter whose grad is defined, under NoGradGuard. `closure`, when
  /// given, runs first with grad mode on (it re-evaluates the model and returns the loss, which
  /// step returns). ShapeError/DTypeError/DeviceError when a grad does not match its parameter.
  Tensor step(const LossClosure& closure = nullptr);

  /// Sets every grad to undefined (set_to_none) or detaches it and fills it with zeros.
  void zero_grad(bool set_to_none = true);

  std::vector<OptimizerParamGroup>& param_groups() { return param_groups_; }
  const std::vector<OptimizerParamGroup>& param_groups() const { return param_groups_; }
  const OptimizerOptions& defaults() const { return *defaults_; }
  OptimizerOptions& defaults() { return *defaults_; }
  /// Every parameter of every group, in group order.
  std::vector<Tensor> parameters() const;
  /// Number of parameters over all groups.
  size_t size() const;

  /// The state of one parameter (e.g. "step", "exp_avg"); null before its first update.
  const StateDict* state(const Tensor& param) const;

  /// A snapshot (copies) of the state, flattened like PyTorch's optimizer.state_dict():
  ///   state.<i>.<name>         per-parameter state (i indexes parameters over all groups)
  ///   param_groups.<g>.<opt>   the group's options (lr, weight_decay, betas, ...)
  ///   param_groups.<g>.params  int64 (n,) indices of the group's parameters
  ///   param_groups.<g>.initial_lr  when a scheduler set it
  StateDict state_dict() const;
  /// Restores options and state from state_dict(): checks the group count and each group's
  /// parameter count (ValueError), that every state key names a known parameter and state
  /// (ValueError) and that each state tensor has its parameter's shape (ShapeError), then copies
  /// the values (converted to the parameter's dtype), so a resumed run continues bit-identically.
  /// Nothing changes when a check fails.
  void load_state_dict(const StateDict& sd);

  /// The algorithm's name as in error messages ("Adam").
  const std::string& name() const { return name_; }

 protected:
  Optimizer(std::string name, std::vector<OptimizerParamGroup> groups,
            std::unique_ptr<OptimizerOptions> defaults);

  /// Updates one parameter in place. `state` is the parameter's state, empty before its first
  /// update; `options` is its group's options (the algorithm's own options type).
  virtual void update(Tensor& param, const Tensor& grad, StateDict& state,
                      const OptimizerOptions& options) = 0;
  /// Updates the parameters of one group that have a gradient, in group order; `options` is the
  /// group's options. The default calls update() for each; an algorithm with a multi-tensor
  /// kernel overrides it (the results must not change).
  virtual void update_group(const std::vector<ParamUpdate>& params,
                            const OptimizerOptions& options);
  /// The state names the algorithm may keep for a parameter ("step" is a 0-d number; every
  /// other state has the parameter's shape).
  virtual std::vector<std::string> state_names() const = 0;

 private:
  std::string name_;
  std::unique_ptr<OptimizerOptions> defaults_;
  std::vector<OptimizerParamGroup> param_groups_;
  std::unordered_map<const TensorImpl*, StateDict> state_;
};

}  // namespace ember::optim
