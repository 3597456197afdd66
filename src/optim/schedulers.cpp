// Learning-rate schedulers (torch.optim.lr_scheduler's recursive forms and closed forms).
#include "ember/optim/schedulers.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "ember/ops.hpp"

// Python rounds every operation of torch's scheduler formulas; keep the compiler from fusing
// a * b + c into one fma, so that the lrs agree with torch's to the last bit.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace ember::optim {

namespace {

constexpr double kPi = std::numbers::pi;

Tensor doubles_tensor(const std::vector<double>& v) { return tensor(v, kFloat64); }

std::vector<double> tensor_doubles(const Tensor& t) {
  Tensor c = t.to(kFloat64).contiguous();
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

std::vector<int64_t> tensor_ints(const Tensor& t) {
  Tensor c = t.to(kInt64).contiguous();
  const int64_t* p = c.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + c.numel());
}

}  // namespace

// ---- LRScheduler ----

LRScheduler::LRScheduler(Optimizer& optimizer, std::string name)
    : optimizer_(optimizer), name_(std::move(name)) {
  for (OptimizerParamGroup& g : optimizer_.param_groups()) {
    if (!g.initial_lr) g.initial_lr = g.options().get_lr();  // PyTorch's setdefault
    base_lrs_.push_back(*g.initial_lr);
  }
}

void LRScheduler::initial_step() {
  step_count_ = 0;
  step();
}

void LRScheduler::step() {
  ++step_count_;
  ++last_epoch_;
  apply_lrs(get_lr());
}

void LRScheduler::step(int64_t epoch) {
  ++step_count_;
  last_epoch_ = epoch;
  std::optional<std::vector<double>> closed = closed_form_lr();
  apply_lrs(closed ? *closed : get_lr());
}

std::vector<double> LRScheduler::group_lrs() const {
  std::vector<double> lrs;
  for (const OptimizerParamGroup& g : optimizer_.param_groups())
    lrs.push_back(g.options().get_lr());
  return lrs;
}

void LRScheduler::apply_lrs(const std::vector<double>& lrs) {
  std::vector<OptimizerParamGroup>& groups = optimizer_.param_groups();
  EMBER_CHECK(lrs.size() == groups.size(), ValueError, "[", name_, "] the optimizer has ",
              groups.size(), " parameter groups, the scheduler was built for ", lrs.size());
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(lrs[i]);
  last_lr_ = lrs;
}

StateDict LRScheduler::state_dict() const {
  StateDict sd;
  sd.set_int("last_epoch", last_epoch_);
  sd.set_int("_step_count", step_count_);
  sd.insert("base_lrs", doubles_tensor(base_lrs_));
  sd.insert("_last_lr", doubles_tensor(last_lr_));
  save_settings(sd);
  return sd;
}

void LRScheduler::load_state_dict(const StateDict& sd) {
  std::vector<double> base = tensor_doubles(sd.at("base_lrs"));
  std::vector<double> last = tensor_doubles(sd.at("_last_lr"));
  const size_t groups = optimizer_.param_groups().size();
  EMBER_CHECK(base.size() == groups && last.size() == groups, ValueError, "[", name_,
              ".load_state_dict] the state dict has ", base.size(), " base_lrs, the optimizer has ",
              groups, " parameter groups");
  const int64_t last_epoch = sd.get_int("last_epoch");
  const int64_t step_count = sd.get_int("_step_count");
  load_settings(sd);
  base_lrs_ = std::move(base);
  last_lr_ = std::move(last);
  last_epoch_ = last_epoch;
  step_count_ = step_count;
}

// ---- StepLR ----

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
  EMBER_CHECK(step_size >= 1, ValueError, "[StepLR] step_size must be positive, got ", step_size);
  initial_step();
}

std::vector<double> StepLR::get_lr() {
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0 || last_epoch_ % step_size_ != 0) return lrs;
  for (double& lr : lrs) lr *= gamma_;
  return lrs;
}

std::optional<std::vector<double>> StepLR::closed_form_lr() const {
  std::vector<double> lrs;
  for (double b : base_lrs_)
    lrs.push_back(b * std::pow(gamma_, static_cast<double>(last_epoch_ / step_size_)));
  return lrs;
}

void StepLR::save_settings(StateDict& sd) const {
  sd.set_int("step_size", step_size_);
  sd.set_double("gamma", gamma_);
}

void StepLR::load_settings(const StateDict& sd) {
  step_size_ = sd.get_int("step_size");
  gamma_ = sd.get_double("gamma");
}

// ---- MultiStepLR ----

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma)
    : LRScheduler(optimizer, "MultiStepLR"), milestones_(std::move(milestones)), gamma_(gamma) {
  EMBER_CHECK(std::is_sorted(milestones_.begin(), milestones_.end()), ValueError,
              "[MultiStepLR] milestones must be increasing, got ", IntArrayRef(milestones_));
  initial_step();
}

std::vector<double> MultiStepLR::get_lr() {
  std::vector<double> lrs = group_lrs();
  const auto n = std::count(milestones_.begin(), milestones_.end(), last_epoch_);
  if (n == 0) return lrs;
  for (double& lr : lrs) lr *= std::pow(gamma_, static_cast<double>(n));
  return lrs;
}

std::optional<std::vector<double>> MultiStepLR::closed_form_lr() const {
  const auto passed =
      std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) - milestones_.begin();
  std::vector<double> lrs;
  for (double b : base_lrs_) lrs.push_back(b * std::pow(gamma_, static_cast<double>(passed)));
  return lrs;
}

void MultiStepLR::save_settings(StateDict& sd) const {
  sd.insert("milestones", tensor(milestones_, kInt64));
  sd.set_double("gamma", gamma_);
}

void MultiStepLR::load_settings(const StateDict& sd) {
  milestones_ = tensor_ints(sd.at("milestones"));
  gamma_ = sd.get_double("gamma");
}

// ---- ExponentialLR ----

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma)
    : LRScheduler(optimizer, "ExponentialLR"), gamma_(gamma) {
  initial_step();
}

std::vector<double> ExponentialLR::get_lr() {
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0) return lrs;
  for (double& lr : lrs) lr *= gamma_;
  return lrs;
}

std::optional<std::vector<double>> ExponentialLR::closed_form_lr() const {
  std::vector<double> lrs;
  for (double b : base_lrs_) lrs.push_back(b * std::pow(gamma_, static_cast<double>(last_epoch_)));
  return lrs;
}

void ExponentialLR::save_settings(StateDict& sd) const { sd.set_double("gamma", gamma_); }
void ExponentialLR::load_settings(const StateDict& sd) { gamma_ = sd.get_double("gamma"); }

// ---- CosineAnnealingLR ----

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer, "CosineAnnealingLR"), T_max_(T_max), eta_min_(eta_min) {
  EMBER_CHECK(T_max >= 1, ValueError, "[CosineAnnealingLR] T_max must be positive, got ", T_max);
  initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() {
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0) return lrs;
  if (step_count_ == 1 && last_epoch_ > 0) return *closed_form_lr();
  const double e = static_cast<double>(last_epoch_);
  const double T = static_cast<double>(T_max_);
  if ((last_epoch_ - 1 - T_max_) % (2 * T_max_) == 0) {
    // The restart point of the recursion (the cosine's trough): step back up.
    for (size_t i = 0; i < lrs.size(); ++i)
      lrs[i] = lrs[i] + (base_lrs_[i] - eta_min_) * (1 - std::cos(kPi / T)) / 2;
    return lrs;
  }
  const double ratio = (1 + std::cos(kPi * e / T)) / (1 + std::cos(kPi * (e - 1) / T));
  for (double& lr : lrs) lr = ratio * (lr - eta_min_) + eta_min_;
  return lrs;
}

std::optional<std::vector<double>> CosineAnnealingLR::closed_form_lr() const {
  const double e = static_cast<double>(last_epoch_);
  const double T = static_cast<double>(T_max_);
  std::vector<double> lrs;
  for (double b : base_lrs_)
    lrs.push_back(eta_min_ + (b - eta_min_) * (1 + std::cos(kPi * e / T)) / 2);
  return lrs;
}

void CosineAnnealingLR::save_settings(StateDict& sd) const {
  sd.set_int("T_max", T_max_);
  sd.set_double("eta_min", eta_min_);
}

void CosineAnnealingLR::load_settings(const StateDict& sd) {
  T_max_ = sd.get_int("T_max");
  eta_min_ = sd.get_double("eta_min");
}

// ---- LinearLR ----

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor,
                   int64_t total_iters)
    : LRScheduler(optimizer, "LinearLR"),
      start_factor_(start_factor),
      end_factor_(end_factor),
      total_iters_(total_iters) {
  EMBER_CHECK(start_factor > 0 && start_factor <= 1, ValueError,
              "[LinearLR] start_factor must be in (0, 1], got ", start_factor);
  EMBER_CHECK(end_factor >= 0 && end_factor <= 1, ValueError,
              "[LinearLR] end_factor must be in [0, 1], got ", end_factor);
  EMBER_CHECK(total_iters >= 1, ValueError, "[LinearLR] total_iters must be positive, got ",
              total_iters);
  initial_step();
}

std::vector<double> LinearLR::get_lr() {
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0) {
    for (double& lr : lrs) lr *= start_factor_;
    return lrs;
  }
  if (last_epoch_ > total_iters_) return lrs;
  const double d = end_factor_ - start_factor_;
  const double f = 1.0 + d / (static_cast<double>(total_iters_) * start_factor_ +
                              static_cast<double>(last_epoch_ - 1) * d);
  for (double& lr : lrs) lr *= f;
  return lrs;
}

std::optional<std::vector<double>> LinearLR::closed_form_lr() const {
  const double n = static_cast<double>(std::min(total_iters_, last_epoch_));
  std::vector<double> lrs;
  for (double b : base_lrs_)
    lrs.push_back(b * (start_factor_ +
                       (end_factor_ - start_factor_) * n / static_cast<double>(total_iters_)));
  return lrs;
}

void LinearLR::save_settings(StateDict& sd) const {
  sd.set_double("start_factor", start_factor_);
  sd.set_double("end_factor", end_factor_);
  sd.set_int("total_iters", total_iters_);
}

void LinearLR::load_settings(const StateDict& sd) {
  start_factor_ = sd.get_double("start_factor");
  end_factor_ = sd.get_double("end_factor");
  total_iters_ = sd.get_int("total_iters");
}

// ---- LambdaLR ----

LambdaLR::LambdaLR(Optimizer& optimizer, LambdaFn lr_lambda)
    : LambdaLR(optimizer, std::vector<LambdaFn>(optimizer.param_groups().size(), lr_lambda)) {}

LambdaLR::LambdaLR(Optimizer& optimizer, std::vector<LambdaFn> lr_lambdas)
    : LRScheduler(optimizer, "LambdaLR"), lambdas_(std::move(lr_lambdas)) {
  EMBER_CHECK(lambdas_.size() == base_lrs_.size(), ValueError, "[LambdaLR] expected ",
              base_lrs_.size(), " lr_lambdas (one per parameter group), got ", lambdas_.size());
  for (size_t i = 0; i < lambdas_.size(); ++i)
    EMBER_CHECK(static_cast<bool>(lambdas_[i]), ValueError, "[LambdaLR] lr_lambda ", i,
                " is empty");
  initial_step();
}

std::vector<double> LambdaLR::get_lr() {
  std::vector<double> lrs;
  for (size_t i = 0; i < base_lrs_.size(); ++i)
    lrs.push_back(base_lrs_[i] * lambdas_[i](last_epoch_));
  return lrs;
}

// ---- OneCycleLR ----

OneCycleLR::OneCycleLR(Optimizer& optimizer, double max_lr, int64_t total_steps, double pct_start,
                       AnnealStrategy anneal_strategy, double div_factor, double final_div_factor,
                       bool three_phase, bool cycle_momentum, double base_momentum,
                       double max_momentum)
    : OneCycleLR(optimizer, std::vector<double>(optimizer.param_groups().size(), max_lr),
                 total_steps, pct_start, anneal_strategy, div_factor, final_div_factor, three_phase,
                 cycle_momentum, base_momentum, max_momentum) {}

OneCycleLR::OneCycleLR(Optimizer& optimizer, std::vector<double> max_lrs, int64_t total_steps,
                       double pct_start, AnnealStrategy anneal_strategy, double div_factor,
                       double final_div_factor, bool three_phase, bool cycle_momentum,
                       double base_momentum, double max_momentum)
    : LRScheduler(optimizer, "OneCycleLR"),
      total_steps_(total_steps),
      anneal_(anneal_strategy),
      cycle_momentum_(cycle_momentum),
      max_lrs_(std::move(max_lrs)),
      base_momentum_(base_momentum),
      max_momentum_(max_momentum) {
  EMBER_CHECK(total_steps > 0, ValueError, "[OneCycleLR] expected a positive total_steps, got ",
              total_steps);
  EMBER_CHECK(pct_start >= 0 && pct_start <= 1, ValueError,
              "[OneCycleLR] expected pct_start in [0, 1], got ", pct_start);
  EMBER_CHECK(max_lrs_.size() == base_lrs_.size(), ValueError, "[OneCycleLR] expected ",
              base_lrs_.size(), " max_lr values (one per parameter group), got ", max_lrs_.size());
  EMBER_CHECK(div_factor > 0 && final_div_factor > 0, ValueError,
              "[OneCycleLR] div_factor and final_div_factor must be positive, got ", div_factor,
              " and ", final_div_factor);
  std::vector<OptimizerParamGroup>& groups = optimizer_.param_groups();
  if (cycle_momentum_) {
    for (OptimizerParamGroup& g : groups)
      EMBER_CHECK(g.options().get_momentum().has_value(), ValueError, "[OneCycleLR] ",
                  optimizer_.name(),
                  " has no momentum or beta1 to cycle; pass cycle_momentum = false");
  }
  const double T = static_cast<double>(total_steps);
  phases_ = three_phase ? make_phases({pct_start * T - 1, 2 * pct_start * T - 2, T - 1})
                        : make_phases({pct_start * T - 1, T - 1});
  for (size_t i = 0; i < groups.size(); ++i) {
    initial_lrs_.push_back(max_lrs_[i] / div_factor);
    min_lrs_.push_back(initial_lrs_[i] / final_div_factor);
    groups[i].initial_lr = initial_lrs_[i];  // OneCycleLR overrides it, as in PyTorch
    if (cycle_momentum_) groups[i].options().set_momentum(max_momentum_);
  }
  base_lrs_ = initial_lrs_;
  initial_step();
}

std::vector<OneCycleLR::Phase> OneCycleLR::make_phases(const std::vector<double>& end_steps) {
  if (end_steps.size() == 3)
    return {{end_steps[0], 0, 1, 0, 1}, {end_steps[1], 1, 0, 1, 0}, {end_steps[2], 0, 2, 0, 0}};
  return {{end_steps[0], 0, 1, 0, 1}, {end_steps[1], 1, 2, 1, 0}};
}

std::vector<double> OneCycleLR::get_lr() {
  EMBER_CHECK(last_epoch_ <= total_steps_, ValueError, "[OneCycleLR] tried to step ", last_epoch_,
              " times; the specified number of total steps is ", total_steps_);
  const double step_num = static_cast<double>(last_epoch_);
  auto anneal = [this](double start, double end, double pct) {
    if (anneal_ == AnnealStrategy::Cos) {
      const double cos_out = std::cos(kPi * pct) + 1;
      return end + (start - end) / 2.0 * cos_out;
    }
    return (end - start) * pct + start;
  };
  const double momenta[2] = {max_momentum_, base_momentum_};
  std::vector<OptimizerParamGroup>& groups = optimizer_.param_groups();
  std::vector<double> lrs;
  for (size_t g = 0; g < max_lrs_.size(); ++g) {
    const double values[3] = {initial_lrs_[g], max_lrs_[g], min_lrs_[g]};
    double start_step = 0;
    for (size_t i = 0; i < phases_.size(); ++i) {
      const Phase& ph = phases_[i];
      if (step_num <= ph.end_step || i + 1 == phases_.size()) {
        const double pct = (step_num - start_step) / (ph.end_step - start_step);
        lrs.push_back(anneal(values[ph.start], values[ph.end], pct));
        if (cycle_momentum_)
          groups[g].options().set_momentum(
              anneal(momenta[ph.start_momentum], momenta[ph.end_momentum], pct));
        break;
      }
      start_step = ph.end_step;
    }
  }
  return lrs;
}

void OneCycleLR::save_settings(StateDict& sd) const {
  sd.set_int("total_steps", total_steps_);
  sd.set_int("anneal_strategy", anneal_ == AnnealStrategy::Cos ? 0 : 1);
  sd.set_int("cycle_momentum", cycle_momentum_ ? 1 : 0);
  sd.set_double("base_momentum", base_momentum_);
  sd.set_double("max_momentum", max_momentum_);
  std::vector<double> ends;
  for (const Phase& p : phases_) ends.push_back(p.end_step);
  sd.insert("_phase_end_steps", doubles_tensor(ends));
  sd.insert("initial_lrs", doubles_tensor(initial_lrs_));
  sd.insert("max_lrs", doubles_tensor(max_lrs_));
  sd.insert("min_lrs", doubles_tensor(min_lrs_));
}

void OneCycleLR::load_settings(const StateDict& sd) {
  std::vector<double> ends = tensor_doubles(sd.at("_phase_end_steps"));
  std::vector<double> initial = tensor_doubles(sd.at("initial_lrs"));
  std::vector<double> max = tensor_doubles(sd.at("max_lrs"));
  std::vector<double> min = tensor_doubles(sd.at("min_lrs"));
  const size_t groups = optimizer_.param_groups().size();
  EMBER_CHECK(ends.size() == 2 || ends.size() == 3, ValueError,
              "[OneCycleLR.load_state_dict] expected 2 or 3 phases, got ", ends.size());
  EMBER_CHECK(initial.size() == groups && max.size() == groups && min.size() == groups, ValueError,
              "[OneCycleLR.load_state_dict] expected ", groups,
              " values per lr list (one per parameter group)");
  const int64_t total_steps = sd.get_int("total_steps");
  const int64_t anneal = sd.get_int("anneal_strategy");
  const bool cycle = sd.get_int("cycle_momentum") != 0;
  const double base_m = sd.get_double("base_momentum"), max_m = sd.get_double("max_momentum");
  phases_ = make_phases(ends);
  total_steps_ = total_steps;
  anneal_ = anneal == 0 ? AnnealStrategy::Cos : AnnealStrategy::Linear;
  cycle_momentum_ = cycle;
  base_momentum_ = base_m;
  max_momentum_ = max_m;
  initial_lrs_ = std::move(initial);
  max_lrs_ = std::move(max);
  min_lrs_ = std::move(min);
}

// ---- SequentialLR ----

SequentialLR::SequentialLR(Optimizer& optimizer,
                           std::vector<std::shared_ptr<LRScheduler>> schedulers,
                           std::vector<int64_t> milestones)
    : LRScheduler(optimizer, "SequentialLR"),
      schedulers_(std::move(schedulers)),
      milestones_(std::move(milestones)) {
  EMBER_CHECK(!schedulers_.empty(), ValueError, "[SequentialLR] expected at least one scheduler");
  for (size_t i = 0; i < schedulers_.size(); ++i) {
    EMBER_CHECK(schedulers_[i] != nullptr, ValueError, "[SequentialLR] scheduler ", i, " is null");
    EMBER_CHECK(&schedulers_[i]->optimizer() == &optimizer_, ValueError,
                "[SequentialLR] scheduler ", i, " (", schedulers_[i]->name(),
                ") is built on another optimizer");
  }
  EMBER_CHECK(milestones_.size() + 1 == schedulers_.size(), ValueError, "[SequentialLR] expected ",
              schedulers_.size() - 1, " milestones for ", schedulers_.size(), " schedulers, got ",
              milestones_.size());
  EMBER_CHECK(std::is_sorted(milestones_.begin(), milestones_.end()), ValueError,
              "[SequentialLR] milestones must be increasing, got ", IntArrayRef(milestones_));
  last_epoch_ = 0;
  // Back to the initial lrs, undo the schedulers' construction steps, and start the first one.
  for (OptimizerParamGroup& g : optimizer_.param_groups()) g.options().set_lr(*g.initial_lr);
  for (const std::shared_ptr<LRScheduler>& s : schedulers_) s->last_epoch_ -= 1;
  schedulers_[0]->initial_step();
  last_lr_ = schedulers_[0]->get_last_lr();
}

void SequentialLR::step() {
  ++last_epoch_;
  const size_t idx = static_cast<size_t>(
      std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) - milestones_.begin());
  LRScheduler& s = *schedulers_[idx];
  if (idx > 0 && milestones_[idx - 1] == last_epoch_)
    s.step(int64_t{0});
  else
    s.step();
  last_lr_ = s.get_last_lr();
}

StateDict SequentialLR::state_dict() const {
  StateDict sd = LRScheduler::state_dict();
  sd.insert("_milestones", tensor(milestones_, kInt64));
  for (size_t i = 0; i < schedulers_.size(); ++i)
    sd.update(schedulers_[i]->state_dict(), "_schedulers." + std::to_string(i));
  return sd;
}

void SequentialLR::load_state_dict(const StateDict& sd) {
  std::vector<int64_t> milestones = tensor_ints(sd.at("_milestones"));
  EMBER_CHECK(milestones.size() == milestones_.size(), ValueError,
              "[SequentialLR.load_state_dict] the state dict has ", milestones.size(),
              " milestones, the scheduler has ", milestones_.size());
  LRScheduler::load_state_dict(sd);
  for (size_t i = 0; i < schedulers_.size(); ++i)
    schedulers_[i]->load_state_dict(sd.sub("_schedulers." + std::to_string(i)));
  milestones_ = std::move(milestones);
}

// ---- ReduceLROnPlateau ----

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, Mode mode, double factor,
                                     int64_t patience, double threshold,
                                     ThresholdMode threshold_mode, int64_t cooldown,
                                     std::vector<double> min_lr, double eps)
    : optimizer_(optimizer),
      mode_(mode),
      factor_(factor),
      patience_(patience),
      threshold_(threshold),
      threshold_mode_(threshold_mode),
      cooldown_(cooldown),
      min_lrs_(std::move(min_lr)),
      eps_(eps) {
  EMBER_CHECK(factor < 1.0, ValueError, "[ReduceLROnPlateau] factor should be < 1.0, got ", factor);
  EMBER_CHECK(patience >= 0 && cooldown >= 0, ValueError,
              "[ReduceLROnPlateau] patience and cooldown must be >= 0, got ", patience, " and ",
              cooldown);
  const size_t groups = optimizer_.param_groups().size();
  if (min_lrs_.size() == 1) min_lrs_.assign(groups, min_lrs_[0]);
  EMBER_CHECK(min_lrs_.size() == groups, ValueError, "[ReduceLROnPlateau] expected ", groups,
              " min_lr values (one per parameter group), got ", min_lrs_.size());
  best_ = mode_ == Mode::Min ? std::numeric_limits<double>::infinity()
                             : -std::numeric_limits<double>::infinity();
  for (const OptimizerParamGroup& g : optimizer_.param_groups())
    last_lr_.push_back(g.options().get_lr());
}

bool ReduceLROnPlateau::is_better(double a, double best) const {
  if (mode_ == Mode::Min)
    return threshold_mode_ == ThresholdMode::Rel ? a < best * (1 - threshold_)
                                                 : a < best - threshold_;
  return threshold_mode_ == ThresholdMode::Rel ? a > best * (threshold_ + 1)
                                               : a > best + threshold_;
}

void ReduceLROnPlateau::step(double metric) {
  last_epoch_ += 1;
  if (is_better(metric, best_)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    num_bad_epochs_ += 1;
  }
  if (cooldown_counter_ > 0) {  // in cooldown: bad epochs do not count
    cooldown_counter_ -= 1;
    num_bad_epochs_ = 0;
  }
  std::vector<OptimizerParamGroup>& groups = optimizer_.param_groups();
  if (num_bad_epochs_ > patience_) {
    for (size_t i = 0; i < groups.size(); ++i) {
      const double old_lr = groups[i].options().get_lr();
      const double new_lr = std::max(old_lr * factor_, min_lrs_[i]);
      if (old_lr - new_lr > eps_) groups[i].options().set_lr(new_lr);
    }
    cooldown_counter_ = cooldown_;
    num_bad_epochs_ = 0;
  }
  last_lr_.clear();
  for (const OptimizerParamGroup& g : groups) last_lr_.push_back(g.options().get_lr());
}

StateDict ReduceLROnPlateau::state_dict() const {
  StateDict sd;
  sd.set_int("mode", mode_ == Mode::Min ? 0 : 1);
  sd.set_double("factor", factor_);
  sd.set_int("patience", patience_);
  sd.set_double("threshold", threshold_);
  sd.set_int("threshold_mode", threshold_mode_ == ThresholdMode::Rel ? 0 : 1);
  sd.set_int("cooldown", cooldown_);
  sd.insert("min_lrs", doubles_tensor(min_lrs_));
  sd.set_double("eps", eps_);
  sd.set_double("best", best_);
  sd.set_int("num_bad_epochs", num_bad_epochs_);
  sd.set_int("cooldown_counter", cooldown_counter_);
  sd.set_int("last_epoch", last_epoch_);
  sd.insert("_last_lr", doubles_tensor(last_lr_));
  return sd;
}

void ReduceLROnPlateau::load_state_dict(const StateDict& sd) {
  std::vector<double> min_lrs = tensor_doubles(sd.at("min_lrs"));
  std::vector<double> last = tensor_doubles(sd.at("_last_lr"));
  const size_t groups = optimizer_.param_groups().size();
  EMBER_CHECK(min_lrs.size() == groups && last.size() == groups, ValueError,
              "[ReduceLROnPlateau.load_state_dict] the state dict has ", min_lrs.size(),
              " min_lrs, the optimizer has ", groups, " parameter groups");
  const double factor = sd.get_double("factor");
  EMBER_CHECK(factor < 1.0, ValueError,
              "[ReduceLROnPlateau.load_state_dict] factor should be < 1.0, got ", factor);
  mode_ = sd.get_int("mode") == 0 ? Mode::Min : Mode::Max;
  factor_ = factor;
  patience_ = sd.get_int("patience");
  threshold_ = sd.get_double("threshold");
  threshold_mode_ = sd.get_int("threshold_mode") == 0 ? ThresholdMode::Rel : ThresholdMode::Abs;
  cooldown_ = sd.get_int("cooldown");
  eps_ = sd.get_double("eps");
  best_ = sd.get_double("best");
  num_bad_epochs_ = sd.get_int("num_bad_epochs");
  cooldown_counter_ = sd.get_int("cooldown_counter");
  last_epoch_ = sd.get_int("last_epoch");
  min_lrs_ = std::move(min_lrs);
  last_lr_ = std::move(last);
}

}  // namespace ember::optim
