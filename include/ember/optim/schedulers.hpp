// Learning-rate schedulers, following torch.optim.lr_scheduler. A scheduler holds a reference to
// its optimizer (which must outlive it) and writes each group's lr through
// `group.options().set_lr()`, so it works with every optimizer. Building one applies its epoch-0
// lr, as PyTorch does; call step() once per epoch (or per iteration for OneCycleLR), after
// optimizer.step().
//
// The updates use PyTorch's recursive ("chainable") forms, which read the group's current lr, so
// the printed values match torch's and two schedulers can be chained on one optimizer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ember/optim/optimizer.hpp"
#include "ember/state_dict.hpp"

namespace ember::optim {

class SequentialLR;

/// Base of the epoch-driven schedulers.
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  /// Advances one epoch and writes the new lr into every group.
  virtual void step();
  /// Jumps to `epoch` (PyTorch's deprecated step(epoch)), using the closed form where the
  /// scheduler has one.
  void step(int64_t epoch);

  /// The lr of every group after the last step.
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  /// Each group's lr when the first scheduler was built on the optimizer (its initial_lr).
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  Optimizer& optimizer() const { return optimizer_; }
  const std::string& name() const { return name_; }

  /// last_epoch, _step_count, base_lrs (float64 (G,)), _last_lr and the scheduler's own settings
  /// (step_size, gamma, T_max, ...), under PyTorch's names.
  virtual StateDict state_dict() const;
  /// Restores what state_dict() wrote; ValueError when the group count differs. The optimizer's
  /// lrs are restored by the optimizer's own load_state_dict.
  virtual void load_state_dict(const StateDict& sd);

 protected:
  /// Records each group's initial_lr (when no scheduler did yet) and takes it as base_lrs.
  LRScheduler(Optimizer& optimizer, std::string name);
  /// The first step (epoch 0); every derived constructor calls it last.
  void initial_step();
  /// The lrs for last_epoch_ from the groups' current lrs (PyTorch's get_lr()).
  virtual std::vector<double> get_lr() = 0;
  /// The lrs for last_epoch_ from base_lrs_, for schedulers that have a closed form.
  virtual std::optional<std::vector<double>> closed_form_lr() const { return std::nullopt; }
  /// The scheduler's own settings, written and read by state_dict()/load_state_dict().
  virtual void save_settings(StateDict&) const {}
  virtual void load_settings(const StateDict&) {}
  /// The groups' current lrs.
  std::vector<double> group_lrs() const;
  void apply_lrs(const std::vector<double>& lrs);

  Optimizer& optimizer_;
  std::string name_;
  std::vector<double> base_lrs_;
  std::vector<double> last_lr_;
  int64_t last_epoch_ = -1;
  int64_t step_count_ = 0;

  friend class SequentialLR;
};

/// lr = base_lr * gamma^(epoch / step_size) (integer division).
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  void save_settings(StateDict& sd) const override;
  void load_settings(const StateDict& sd) override;

 private:
  int64_t step_size_;
  double gamma_;
};

/// lr = base_lr * gamma^(number of milestones <= epoch). Milestones must be increasing.
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  void save_settings(StateDict& sd) const override;
  void load_settings(const StateDict& sd) override;

 private:
  std::vector<int64_t> milestones_;
  double gamma_;
};

/// lr = base_lr * gamma^epoch.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  void save_settings(StateDict& sd) const override;
  void load_settings(const StateDict& sd) override;

 private:
  double gamma_;
};

/// lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2 for an uninterrupted
/// schedule (computed with PyTorch's recursive form, which continues as a cosine past T_max).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  void save_settings(StateDict& sd) const override;
  void load_settings(const StateDict& sd) override;

 private:
  int64_t T_max_;
  double eta_min_;
};

/// lr = base_lr * (start_factor + (end_factor - start_factor) * min(epoch, total_iters) /
/// total_iters): a linear warmup (or decay) over total_iters epochs.
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0,
           int64_t total_iters = 5);

 protected:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  void save_settings(StateDict& sd) const override;
  void load_settings(const StateDict& sd) override;

 private:
  double start_factor_, end_factor_;
  int64_t total_iters_;
};

/// lr = base_lr * lr_lambda(epoch), one function for all groups or one per group.
class LambdaLR : public LRScheduler {
 public:
  using LambdaFn = std::function<double(int64_t)>;
  LambdaLR(Optimizer& optimizer, LambdaFn lr_lambda);
  LambdaLR(Optimizer& optimizer, std::vector<LambdaFn> lr_lambdas);

 protected:
  std::vector<double> get_lr() override;

 private:
  std::vector<LambdaFn> lambdas_;
};

enum class AnnealStrategy { Cos, Linear };

/// The 1cycle policy (Smith & Topin, 2017), stepped once per batch for total_steps steps:
/// lr rises from max_lr / div_factor to max_lr over pct_start of the steps, then anneals to
/// max_lr / (div_factor * final_div_factor); three_phase returns to the initial lr first.
/// With cycle_momentum (the default, as in PyTorch) the group's momentum (SGD, RMSprop) or beta1
/// (Adam, AdamW, Lion) moves inversely, between max_momentum and base_momentum; ValueError for an
/// optimizer without one (Adagrad: pass cycle_momentum = false). Stepping past total_steps raises
/// ValueError.
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, double max_lr, int64_t total_steps, double pct_start = 0.3,
             AnnealStrategy anneal_strategy = AnnealStrategy::Cos, double div_factor = 25.0,
             double final_div_factor = 1e4, bool three_phase = false, bool cycle_momentum = true,
             double base_momentum = 0.85, double max_momentum = 0.95);
  /// One max_lr per parameter group.
  OneCycleLR(Optimizer& optimizer, std::vector<double> max_lrs, int64_t total_steps,
             double pct_start = 0.3, AnnealStrategy anneal_strategy = AnnealStrategy::Cos,
             double div_factor = 25.0, double final_div_factor = 1e4, bool three_phase = false,
             bool cycle_momentum = true, double base_momentum = 0.85, double max_momentum = 0.95);

 protected:
  std::vector<double> get_lr() override;
  void save_settings(StateDict& sd) const override;
  void load_settings(const StateDict& sd) override;

 private:
  struct Phase {
    double end_step;
    int start, end;                    // lr: 0 initial, 1 max, 2 min
    int start_momentum, end_momentum;  // 0 max_momentum, 1 base_momentum
  };
  static std::vector<Phase> make_phases(const std::vector<double>& end_steps);
  int64_t total_steps_;
  AnnealStrategy anneal_;
  bool cycle_momentum_;
  std::vector<Phase> phases_;
  std::vector<double> initial_lrs_, max_lrs_, min_lrs_;
  double base_momentum_, max_momentum_;
};

/// Runs schedulers one after another: schedulers[i] from milestones[i - 1] on (warmup, then
/// cosine). The schedulers must be built on the same optimizer, just before this.
class SequentialLR : public LRScheduler {
 public:
  SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
               std::vector<int64_t> milestones);
  void step() override;

  /// Also holds each scheduler's state under `_schedulers.<i>.`.
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& sd) override;

 protected:
  std::vector<double> get_lr() override { return group_lrs(); }

 private:
  std::vector<std::shared_ptr<LRScheduler>> schedulers_;
  std::vector<int64_t> milestones_;
};

/// Reduces each group's lr by `factor` when a metric has stopped improving for `patience`
/// epochs, then waits `cooldown` epochs. Driven by step(metric), so it is not an LRScheduler;
/// building it leaves the lrs as they are.
class ReduceLROnPlateau {
 public:
  enum class Mode { Min, Max };
  enum class ThresholdMode { Rel, Abs };

  /// min_lr holds one value for all groups or one per group. ValueError for factor >= 1.
  explicit ReduceLROnPlateau(Optimizer& optimizer, Mode mode = Mode::Min, double factor = 0.1,
                             int64_t patience = 10, double threshold = 1e-4,
                             ThresholdMode threshold_mode = ThresholdMode::Rel,
                             int64_t cooldown = 0, std::vector<double> min_lr = {0.0},
                             double eps = 1e-8);

  /// Records one epoch's metric (a loss in Mode::Min, an accuracy in Mode::Max).
  void step(double metric);
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  double best() const { return best_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  int64_t cooldown_counter() const { return cooldown_counter_; }

  /// best, num_bad_epochs, cooldown_counter, last_epoch, _last_lr and the settings.
  StateDict state_dict() const;
  void load_state_dict(const StateDict& sd);

 private:
  bool is_better(double a, double best) const;

  Optimizer& optimizer_;
  Mode mode_;
  double factor_;
  int64_t patience_;
  double threshold_;
  ThresholdMode threshold_mode_;
  int64_t cooldown_;
  std::vector<double> min_lrs_;
  double eps_;
  double best_;
  int64_t num_bad_epochs_ = 0;
  int64_t cooldown_counter_ = 0;
  int64_t last_epoch_ = 0;
  std::vector<double> last_lr_;
};

}  // namespace ember::optim
