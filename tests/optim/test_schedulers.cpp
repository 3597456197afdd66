// Learning-rate schedulers: each curve against its closed form, OneCycleLR's start/peak/end,
// SequentialLR warmup then cosine, ReduceLROnPlateau patience/cooldown, state_dict round-trips.
#include <cmath>
#include <numbers>

#include "ember/optim.hpp"
#include "test_util.hpp"

using namespace ember;

namespace {

constexpr double kPi = std::numbers::pi;

struct Fixture {
  Tensor p = zeros({1}).requires_grad_();
  optim::SGD opt{std::vector<Tensor>{p}, optim::SGDOptions(0.1)};
  double lr() const { return opt.param_groups()[0].options().get_lr(); }
};

bool close(double a, double b) { return std::abs(a - b) <= 1e-13 * std::max(1.0, std::abs(b)); }

/// lr after construction (epoch 0) and after each of n steps.
template <class S>
std::vector<double> curve(Fixture& f, S& s, int n) {
  std::vector<double> lrs = {f.lr()};
  for (int i = 0; i < n; ++i) {
    s.step();
    lrs.push_back(f.lr());
    CHECK(s.get_last_lr()[0] == f.lr());
  }
  return lrs;
}

void check_curve(const std::vector<double>& got, const std::function<double(int)>& want) {
  for (size_t e = 0; e < got.size(); ++e) {
    INFO("epoch " << e << ": got " << got[e] << ", expected " << want(static_cast<int>(e)));
    CHECK(close(got[e], want(static_cast<int>(e))));
  }
}

}  // namespace

TEST_CASE("StepLR: base_lr * gamma^(epoch / step_size)") {
  Fixture f;
  optim::StepLR s(f.opt, 3, 0.5);
  check_curve(curve(f, s, 10), [](int e) { return 0.1 * std::pow(0.5, e / 3); });
  CHECK(s.last_epoch() == 10);
}

TEST_CASE("MultiStepLR: decays at each milestone") {
  Fixture f;
  optim::MultiStepLR s(f.opt, {2, 5, 8}, 0.1);
  check_curve(curve(f, s, 10),
              [](int e) { return 0.1 * std::pow(0.1, (e >= 2) + (e >= 5) + (e >= 8)); });
}

TEST_CASE("ExponentialLR: base_lr * gamma^epoch") {
  Fixture f;
  optim::ExponentialLR s(f.opt, 0.9);
  check_curve(curve(f, s, 10), [](int e) { return 0.1 * std::pow(0.9, e); });
}

TEST_CASE("CosineAnnealingLR: the closed form at every step") {
  Fixture f;
  const double eta_min = 0.001;
  optim::CosineAnnealingLR s(f.opt, 10, eta_min);
  check_curve(curve(f, s, 10),
              [&](int e) { return eta_min + (0.1 - eta_min) * (1 + std::cos(kPi * e / 10)) / 2; });
  CHECK(close(f.lr(), eta_min));
  // Past T_max the recursion continues as a cosine: back up to base_lr at 2 * T_max.
  for (int e = 11; e <= 20; ++e) {
    s.step();
    INFO("epoch " << e);
    CHECK(std::abs(f.lr() - (eta_min + (0.1 - eta_min) * (1 + std::cos(kPi * e / 10)) / 2)) <
          1e-12);
  }
}

TEST_CASE("LinearLR: a linear warmup from start_factor to end_factor") {
  Fixture f;
  optim::LinearLR s(f.opt, 0.25, 1.0, 4);
  check_curve(curve(f, s, 8), [](int e) { return 0.1 * (0.25 + 0.75 * std::min(e, 4) / 4.0); });
}

TEST_CASE("LambdaLR: base_lr * lambda(epoch), one function per group") {
  Tensor a = zeros({1}).requires_grad_(), b = zeros({1}).requires_grad_();
  std::vector<optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<Tensor>{a});
  groups.emplace_back(std::vector<Tensor>{b}, std::make_unique<optim::SGDOptions>(1.0));
  optim::SGD opt(groups, optim::SGDOptions(0.1));
  optim::LambdaLR s(opt, std::vector<optim::LambdaLR::LambdaFn>{
                             [](int64_t e) { return std::pow(0.95, static_cast<double>(e)); },
                             [](int64_t e) { return 1.0 / static_cast<double>(e + 1); }});
  for (int e = 1; e <= 5; ++e) {
    s.step();
    CHECK(close(opt.param_groups()[0].options().get_lr(), 0.1 * std::pow(0.95, e)));
    CHECK(close(opt.param_groups()[1].options().get_lr(), 1.0 / (e + 1)));
  }
  EMBER_CHECK_THROWS(
      optim::LambdaLR(opt, std::vector<optim::LambdaLR::LambdaFn>{[](int64_t) { return 1.0; }}),
      ValueError, "[LambdaLR]", "expected 2 lr_lambdas");
}

TEST_CASE("OneCycleLR: starts at max_lr / div_factor, peaks at max_lr, ends at the min lr") {
  const double max_lr = 1.0, div = 25, final_div = 1e4;
  const int total = 100;
  for (optim::AnnealStrategy a : {optim::AnnealStrategy::Cos, optim::AnnealStrategy::Linear}) {
    Fixture f;
    optim::OneCycleLR s(f.opt, max_lr, total, 0.3, a, div, final_div);
    std::vector<double> lrs = curve(f, s, total - 1);
    CHECK(close(lrs[0], max_lr / div));
    CHECK(close(lrs[29], max_lr));  // the peak at pct_start * total - 1
    CHECK(close(lrs[99], max_lr / div / final_div));
    for (int e = 1; e <= 29; ++e) CHECK(lrs[e] > lrs[e - 1]);
    for (int e = 30; e < total; ++e) CHECK(lrs[e] < lrs[e - 1]);
    // Mid-rise: the cosine (or linear) interpolation between the initial lr and max_lr.
    const double pct = 10.0 / 29.0;
    const double want = a == optim::AnnealStrategy::Cos
                            ? max_lr + (max_lr / div - max_lr) / 2 * (std::cos(kPi * pct) + 1)
                            : (max_lr - max_lr / div) * pct + max_lr / div;
    CHECK(close(lrs[10], want));
    s.step();  // step total_steps is still allowed, as in PyTorch
    EMBER_CHECK_THROWS(s.step(), ValueError, "[OneCycleLR]", "total steps is 100");
  }
}

TEST_CASE("OneCycleLR: three phases return to the initial lr before annealing") {
  Fixture f;
  optim::OneCycleLR s(f.opt, 1.0, 20, 0.25, optim::AnnealStrategy::Linear, 25, 1e4, true);
  std::vector<double> lrs = curve(f, s, 19);
  CHECK(close(lrs[0], 0.04));
  CHECK(close(lrs[4], 1.0));   // end of phase 1: 0.25 * 20 - 1
  CHECK(close(lrs[8], 0.04));  // end of phase 2: 2 * 0.25 * 20 - 2
  CHECK(close(lrs[19], 0.04 / 1e4));
  CHECK(close(lrs[6], 0.52));  // halfway down phase 2
}

TEST_CASE("OneCycleLR: momentum (or beta1) moves inversely to the lr") {
  Tensor p = zeros({1}).requires_grad_();
  optim::SGD sgd({p}, optim::SGDOptions(0.1).momentum(0.9));
  optim::OneCycleLR s(sgd, 1.0, 100);
  auto momentum = [&] { return *sgd.param_groups()[0].options().get_momentum(); };
  CHECK(momentum() == 0.95);  // max_momentum at the start
  for (int e = 1; e <= 29; ++e) s.step();
  CHECK(close(momentum(), 0.85));  // base_momentum at the lr peak
  for (int e = 30; e <= 99; ++e) s.step();
  CHECK(close(momentum(), 0.95));

  Tensor q = zeros({1}).requires_grad_();
  optim::Adam adam({q}, optim::AdamOptions(0.1).betas({0.9, 0.98}));
  optim::OneCycleLR sa(adam, 1.0, 10, 0.5, optim::AnnealStrategy::Linear, 25.0, 1e4, false, true,
                       0.8, 0.9);
  for (int e = 1; e <= 2; ++e) sa.step();
  const auto& o = static_cast<const optim::AdamOptions&>(adam.param_groups()[0].options());
  CHECK(close(std::get<0>(o.betas()), 0.9 - 0.1 * 2 / 4));
  CHECK(std::get<1>(o.betas()) == 0.98);  // beta2 untouched

  // Adagrad has no momentum: cycle_momentum must be turned off.
  Tensor r = zeros({1}).requires_grad_();
  optim::Adagrad adagrad({r});
  EMBER_CHECK_THROWS(optim::OneCycleLR(adagrad, 1.0, 10), ValueError, "[OneCycleLR]", "Adagrad",
                     "cycle_momentum");
  optim::OneCycleLR ok(adagrad, 1.0, 10, 0.3, optim::AnnealStrategy::Cos, 25.0, 1e4, false, false);
  CHECK(close(adagrad.param_groups()[0].options().get_lr(), 0.04));
  CHECK_FALSE(adagrad.param_groups()[0].options().get_momentum().has_value());
}

TEST_CASE("SequentialLR: linear warmup, then cosine annealing") {
  Fixture f;
  const int warm = 5, T = 10;
  auto warmup = std::make_shared<optim::LinearLR>(f.opt, 0.1, 1.0, warm);
  auto cosine = std::make_shared<optim::CosineAnnealingLR>(f.opt, T);
  optim::SequentialLR s(f.opt, {warmup, cosine}, {warm});
  std::vector<double> lrs = curve(f, s, warm + T);
  check_curve(lrs, [&](int e) {
    if (e < warm) return 0.1 * (0.1 + 0.9 * e / warm);
    return 0.1 * (1 + std::cos(kPi * (e - warm) / T)) / 2;
  });
  CHECK(s.last_epoch() == warm + T);
}

TEST_CASE("ReduceLROnPlateau: patience, threshold and cooldown") {
  Fixture f;
  using R = optim::ReduceLROnPlateau;
  R s(f.opt, R::Mode::Min, 0.5, /*patience=*/2, /*threshold=*/0.1, R::ThresholdMode::Rel,
      /*cooldown=*/1);
  CHECK(f.lr() == 0.1);  // building it changes nothing
  // 1.0 is the best; 0.95, 0.92 are not 10% better: bad epochs 1, 2; 0.91: 3 > patience -> halve.
  const std::vector<std::pair<double, double>> steps = {
      {1.0, 0.1},   {0.95, 0.1},  {0.92, 0.1},  {0.91, 0.05},  // reduced, cooldown 1
      {0.93, 0.05},                                            // in cooldown: not counted
      {0.9, 0.05},  {0.89, 0.05}, {0.5, 0.05},                 // 0.5 is a new best
      {0.6, 0.05},  {0.6, 0.05},  {0.6, 0.025},                // three bad epochs -> halve
  };
  for (const auto& [metric, lr] : steps) {
    s.step(metric);
    INFO("metric " << metric);
    CHECK(close(f.lr(), lr));
  }
  CHECK(s.best() == 0.5);
}

TEST_CASE("ReduceLROnPlateau: max mode, absolute threshold and min_lr") {
  Fixture f;
  using R = optim::ReduceLROnPlateau;
  R s(f.opt, R::Mode::Max, 0.1, 0, 0.05, R::ThresholdMode::Abs, 0, {0.002});
  s.step(0.5);   // best
  s.step(0.54);  // not 0.05 better: reduce to 0.01
  CHECK(close(f.lr(), 0.01));
  s.step(0.6);  // better
  CHECK(close(f.lr(), 0.01));
  s.step(0.6);  // reduce, clamped at min_lr
  CHECK(close(f.lr(), 0.002));
  s.step(0.6);  // already at min_lr: unchanged
  CHECK(close(f.lr(), 0.002));
  EMBER_CHECK_THROWS(R(f.opt, R::Mode::Min, 1.0), ValueError, "[ReduceLROnPlateau]", "< 1.0");
  EMBER_CHECK_THROWS(R(f.opt, R::Mode::Min, 0.1, 10, 1e-4, R::ThresholdMode::Rel, 0, {0, 0}),
                     ValueError, "expected 1 min_lr");
}

TEST_CASE("Schedulers: work on every optimizer through the group options") {
  Tensor p = zeros({1}).requires_grad_();
  optim::Lion lion({p}, optim::LionOptions(0.01));
  optim::StepLR s(lion, 1, 0.5);
  s.step();
  CHECK(lion.param_groups()[0].options().get_lr() == 0.005);
  Tensor q = zeros({1}).requires_grad_();
  optim::AdamW adamw({q}, optim::AdamWOptions(0.01));
  optim::LinearLR w(adamw, 0.5, 1.0, 2);
  CHECK(adamw.param_groups()[0].options().get_lr() == 0.005);
  // The optimizer state dict keeps initial_lr for schedulers built after a resume.
  CHECK(adamw.state_dict().get_double("param_groups.0.initial_lr") == 0.01);
}

namespace {

/// Runs k steps, saves optimizer and scheduler, rebuilds both, loads, and continues both for n.
template <class Make>
void check_scheduler_resume(Make make, int k, int n) {
  Fixture a;
  auto sa = make(a.opt);
  for (int i = 0; i < k; ++i) sa->step();
  const StateDict opt_sd = a.opt.state_dict();
  const StateDict sched_sd = sa->state_dict();

  Fixture b;
  auto sb = make(b.opt);
  b.opt.load_state_dict(opt_sd);
  sb->load_state_dict(sched_sd);
  CHECK(sb->last_epoch() == sa->last_epoch());
  for (int i = 0; i < n; ++i) {
    sa->step();
    sb->step();
    CHECK(a.lr() == b.lr());
  }
}

}  // namespace

TEST_CASE("Schedulers: state_dict round-trip continues the same curve") {
  check_scheduler_resume(
      [](optim::Optimizer& o) { return std::make_unique<optim::StepLR>(o, 3, 0.5); }, 4, 6);
  check_scheduler_resume(
      [](optim::Optimizer& o) {
        return std::make_unique<optim::MultiStepLR>(o, std::vector<int64_t>{2, 6}, 0.3);
      },
      3, 6);
  check_scheduler_resume(
      [](optim::Optimizer& o) { return std::make_unique<optim::ExponentialLR>(o, 0.9); }, 3, 3);
  check_scheduler_resume(
      [](optim::Optimizer& o) { return std::make_unique<optim::CosineAnnealingLR>(o, 10, 0.01); },
      4, 8);
  check_scheduler_resume(
      [](optim::Optimizer& o) { return std::make_unique<optim::LinearLR>(o, 0.2, 1.0, 6); }, 2, 6);
  check_scheduler_resume(
      [](optim::Optimizer& o) { return std::make_unique<optim::OneCycleLR>(o, 0.5, 30); }, 12, 10);
  check_scheduler_resume(
      [](optim::Optimizer& o) {
        auto w = std::make_shared<optim::LinearLR>(o, 0.1, 1.0, 3);
        auto c = std::make_shared<optim::CosineAnnealingLR>(o, 8);
        return std::make_unique<optim::SequentialLR>(
            o, std::vector<std::shared_ptr<optim::LRScheduler>>{w, c}, std::vector<int64_t>{3});
      },
      2, 8);
}

TEST_CASE("ReduceLROnPlateau: state_dict round-trip") {
  using R = optim::ReduceLROnPlateau;
  Fixture a;
  R sa(a.opt, R::Mode::Min, 0.5, 1, 0.0, R::ThresholdMode::Abs, 2);
  for (double m : {1.0, 0.9, 0.95, 0.95}) sa.step(m);
  Fixture b;
  R sb(b.opt);
  b.opt.load_state_dict(a.opt.state_dict());
  sb.load_state_dict(sa.state_dict());
  CHECK(sb.best() == sa.best());
  CHECK(sb.cooldown_counter() == sa.cooldown_counter());
  for (double m : {0.97, 0.98, 0.99, 0.99, 0.8, 0.85, 0.86}) {
    sa.step(m);
    sb.step(m);
    CHECK(a.lr() == b.lr());
  }
  CHECK(a.lr() < 0.1);
}

TEST_CASE("Schedulers: invalid arguments raise ValueError") {
  Fixture f;
  EMBER_CHECK_THROWS(optim::StepLR(f.opt, 0), ValueError, "[StepLR]", "step_size");
  EMBER_CHECK_THROWS(optim::CosineAnnealingLR(f.opt, 0), ValueError, "[CosineAnnealingLR]",
                     "T_max");
  EMBER_CHECK_THROWS(optim::LinearLR(f.opt, 0.0), ValueError, "[LinearLR]", "start_factor");
  EMBER_CHECK_THROWS(optim::LinearLR(f.opt, 0.5, 1.5), ValueError, "end_factor");
  EMBER_CHECK_THROWS(optim::MultiStepLR(f.opt, {5, 2}), ValueError, "increasing");
  EMBER_CHECK_THROWS(optim::OneCycleLR(f.opt, 1.0, 0), ValueError, "[OneCycleLR]", "total_steps");
  EMBER_CHECK_THROWS(optim::OneCycleLR(f.opt, 1.0, 10, 1.5), ValueError, "pct_start");
  auto a = std::make_shared<optim::StepLR>(f.opt, 2);
  auto b = std::make_shared<optim::StepLR>(f.opt, 3);
  EMBER_CHECK_THROWS(optim::SequentialLR(f.opt, {a, b}, {}), ValueError, "[SequentialLR]",
                     "expected 1 milestones");
  Fixture g;
  auto c = std::make_shared<optim::StepLR>(g.opt, 2);
  EMBER_CHECK_THROWS(optim::SequentialLR(f.opt, {a, c}, {3}), ValueError, "another optimizer");
  // A state dict for another number of groups.
  Tensor x = zeros({1}).requires_grad_(), y = zeros({1}).requires_grad_();
  std::vector<optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<Tensor>{x});
  groups.emplace_back(std::vector<Tensor>{y});
  optim::SGD two(groups, optim::SGDOptions(0.1));
  optim::StepLR s2(two, 2);
  EMBER_CHECK_THROWS(s2.load_state_dict(optim::StepLR(f.opt, 2).state_dict()), ValueError,
                     "[StepLR.load_state_dict]", "1 base_lrs", "2 parameter groups");
}
