// Optimizers: the first steps of every algorithm against its update formula written out here in
// double precision, option variants, parameter groups, zero_grad, state_dict round-trips, errors.
#include <cmath>
#include <functional>
#include <limits>

#include "ember/optim.hpp"
#include "test_util.hpp"

using namespace ember;
using ember::test::values;

namespace {

using Vec = std::vector<double>;

const Vec kParam = {0.5, -1.2, 2.0, 0.1};
const std::vector<Vec> kGrads = {
    {0.3, -0.7, 1.5, 0.0},
    {-0.2, 0.4, 1.1, 0.05},
    {0.9, -0.1, -0.6, 0.02},
};

/// One element's reference update: (param, grad, step t starting at 1, per-element state) -> param.
using RefStep = std::function<double(double p, double g, int t, Vec& s)>;

/// The reference trajectory: the parameter after each of the steps, element by element.
std::vector<Vec> reference(const RefStep& f, size_t n_steps = kGrads.size()) {
  std::vector<Vec> out;
  Vec p = kParam;
  std::vector<Vec> state(p.size(), Vec(8, 0.0));
  for (size_t t = 0; t < n_steps; ++t) {
    for (size_t i = 0; i < p.size(); ++i)
      p[i] = f(p[i], kGrads[t][i], static_cast<int>(t + 1), state[i]);
    out.push_back(p);
  }
  return out;
}

using MakeOpt = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

/// Runs the optimizer on kParam with kGrads in `dtype` and returns the parameter after each step.
std::vector<Vec> run(const MakeOpt& make, DType dtype, size_t n_steps = kGrads.size()) {
  Tensor p = tensor(kParam, dtype).requires_grad_();
  std::unique_ptr<optim::Optimizer> opt = make({p});
  std::vector<Vec> out;
  for (size_t t = 0; t < n_steps; ++t) {
    p.mutable_grad() = tensor(kGrads[t], dtype);
    opt->step();
    out.push_back(values(p));
  }
  return out;
}

/// float64 agrees with the double formula to a few ulps; float32 to float32 rounding (a few
/// float32 ulps of the values involved, accumulated over three steps).
void check_against_reference(const MakeOpt& make, const RefStep& f) {
  const std::vector<Vec> want = reference(f);
  const std::vector<Vec> got64 = run(make, kFloat64);
  const std::vector<Vec> got32 = run(make, kFloat32);
  for (size_t t = 0; t < want.size(); ++t) {
    for (size_t i = 0; i < want[t].size(); ++i) {
      INFO("step " << t + 1 << " element " << i << " expected " << want[t][i]);
      const double scale = std::max(1.0, std::abs(want[t][i]));
      CHECK(std::abs(got64[t][i] - want[t][i]) <=
            8 * std::numeric_limits<double>::epsilon() * scale);
      CHECK(std::abs(got32[t][i] - want[t][i]) <=
            8 * std::numeric_limits<float>::epsilon() * scale);
    }
  }
}

template <class Opt, class Options>
MakeOpt maker(Options o) {
  return [o](std::vector<Tensor> params) -> std::unique_ptr<optim::Optimizer> {
    return std::make_unique<Opt>(std::move(params), o);
  };
}

double sign(double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0; }

}  // namespace

// ---- update formulas ----

TEST_CASE("SGD: plain steps are p - lr * g") {
  check_against_reference(maker<optim::SGD>(optim::SGDOptions(0.1)),
                          [](double p, double g, int, Vec&) { return p - 0.1 * g; });
}

TEST_CASE("SGD: momentum, dampening and weight decay (first buffer is the gradient)") {
  const double lr = 0.1, mu = 0.9, damp = 0.1, wd = 0.01;
  check_against_reference(
      maker<optim::SGD>(optim::SGDOptions(lr).momentum(mu).dampening(damp).weight_decay(wd)),
      [=](double p, double g, int t, Vec& s) {
        g = g + wd * p;
        s[0] = t == 1 ? g : mu * s[0] + (1 - damp) * g;
        return p - lr * s[0];
      });
}

TEST_CASE("SGD: Nesterov momentum") {
  const double lr = 0.1, mu = 0.9, wd = 0.01;
  check_against_reference(
      maker<optim::SGD>(optim::SGDOptions(lr).momentum(mu).nesterov(true).weight_decay(wd)),
      [=](double p, double g, int t, Vec& s) {
        g = g + wd * p;
        s[0] = t == 1 ? g : mu * s[0] + g;
        return p - lr * (g + mu * s[0]);
      });
}

namespace {
RefStep adam_ref(double lr, double b1, double b2, double eps, double wd, bool amsgrad,
                 bool decoupled) {
  return [=](double p, double g, int t, Vec& s) {
    if (decoupled)
      p = p * (1 - lr * wd);
    else
      g = g + wd * p;
    s[0] = s[0] + (1 - b1) * (g - s[0]);  // m
    s[1] = b2 * s[1] + (1 - b2) * g * g;  // v
    s[2] = std::max(s[2], s[1]);          // vmax
    const double v = amsgrad ? s[2] : s[1];
    const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
    return p - lr / bc1 * s[0] / (std::sqrt(v) / std::sqrt(bc2) + eps);
  };
}
}  // namespace

TEST_CASE("Adam: default options follow the bias-corrected update") {
  check_against_reference(maker<optim::Adam>(optim::AdamOptions(0.01)),
                          adam_ref(0.01, 0.9, 0.999, 1e-8, 0, false, false));
}

TEST_CASE("Adam: L2 weight decay, custom betas and AMSGrad") {
  check_against_reference(
      maker<optim::Adam>(
          optim::AdamOptions(0.01).betas({0.8, 0.9}).weight_decay(0.1).amsgrad(true).eps(1e-6)),
      adam_ref(0.01, 0.8, 0.9, 1e-6, 0.1, true, false));
}

TEST_CASE("AdamW: decoupled weight decay comes first") {
  check_against_reference(maker<optim::AdamW>(optim::AdamWOptions(0.01).weight_decay(0.1)),
                          adam_ref(0.01, 0.9, 0.999, 1e-8, 0.1, false, true));
}

TEST_CASE("AdamW: default weight decay is 1e-2, AMSGrad variant") {
  CHECK(optim::AdamWOptions().weight_decay() == 0.01);
  CHECK(optim::AdamOptions().weight_decay() == 0.0);
  check_against_reference(
      maker<optim::AdamW>(optim::AdamWOptions(0.01).betas({0.8, 0.9}).amsgrad(true)),
      adam_ref(0.01, 0.8, 0.9, 1e-8, 0.01, true, true));
}

TEST_CASE("RMSprop: plain") {
  const double lr = 0.01, a = 0.99, eps = 1e-8;
  check_against_reference(maker<optim::RMSprop>(optim::RMSpropOptions(lr)),
                          [=](double p, double g, int, Vec& s) {
                            s[0] = a * s[0] + (1 - a) * g * g;
                            return p - lr * g / (std::sqrt(s[0]) + eps);
                          });
}

TEST_CASE("RMSprop: centered with momentum and weight decay") {
  const double lr = 0.01, a = 0.9, eps = 1e-8, mu = 0.9, wd = 0.1;
  check_against_reference(
      maker<optim::RMSprop>(
          optim::RMSpropOptions(lr).alpha(a).momentum(mu).centered(true).weight_decay(wd)),
      [=](double p, double g, int, Vec& s) {
        g = g + wd * p;
        s[0] = a * s[0] + (1 - a) * g * g;   // square_avg
        s[1] = s[1] + (1 - a) * (g - s[1]);  // grad_avg
        const double avg = std::sqrt(s[0] - s[1] * s[1]) + eps;
        s[2] = mu * s[2] + g / avg;  // momentum buffer
        return p - lr * s[2];
      });
}

TEST_CASE("Adagrad: lr decay, weight decay and initial accumulator") {
  const double lr = 0.1, decay = 0.01, wd = 0.1, init = 0.5, eps = 1e-10;
  check_against_reference(
      maker<optim::Adagrad>(
          optim::AdagradOptions(lr).lr_decay(decay).weight_decay(wd).initial_accumulator_value(
              init)),
      [=](double p, double g, int t, Vec& s) {
        if (t == 1) s[0] = init;
        g = g + wd * p;
        const double clr = lr / (1 + (t - 1) * decay);
        s[0] = s[0] + g * g;
        return p - clr * g / (std::sqrt(s[0]) + eps);
      });
}

TEST_CASE("Adagrad: defaults") {
  const double lr = 0.01;
  check_against_reference(maker<optim::Adagrad>(optim::AdagradOptions()),
                          [=](double p, double g, int, Vec& s) {
                            s[0] = s[0] + g * g;
                            return p - lr * g / (std::sqrt(s[0]) + 1e-10);
                          });
}

TEST_CASE("Lion: sign update with decoupled weight decay (Chen et al. 2023)") {
  const double lr = 0.01, b1 = 0.9, b2 = 0.99, wd = 0.5;
  check_against_reference(maker<optim::Lion>(optim::LionOptions(lr).weight_decay(wd)),
                          [=](double p, double g, int, Vec& s) {
                            const double c = b1 * s[0] + (1 - b1) * g;
                            const double next = p - lr * (sign(c) + wd * p);
                            s[0] = b2 * s[0] + (1 - b2) * g;
                            return next;
                          });
}

TEST_CASE("Lion: default betas (0.9, 0.99) and lr 1e-4") {
  const optim::LionOptions o;
  CHECK(o.lr() == 1e-4);
  CHECK(std::get<0>(o.betas()) == 0.9);
  CHECK(std::get<1>(o.betas()) == 0.99);
  check_against_reference(maker<optim::Lion>(optim::LionOptions().betas({0.5, 0.7})),
                          [=](double p, double g, int, Vec& s) {
                            const double c = 0.5 * s[0] + 0.5 * g;
                            s[0] = 0.7 * s[0] + 0.3 * g;
                            return p - 1e-4 * sign(c);
                          });
}

// ---- groups, zero_grad, closures ----

TEST_CASE(
    "Optimizer: parameter groups have their own lr, a group without options takes the defaults") {
  Tensor a = tensor(Vec{1.0, 2.0}, kFloat64).requires_grad_();
  Tensor b = tensor(Vec{3.0}, kFloat64).requires_grad_();
  std::vector<optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<Tensor>{a});
  groups.emplace_back(std::vector<Tensor>{b}, std::make_unique<optim::SGDOptions>(0.01));
  optim::SGD opt(groups, optim::SGDOptions(0.1));
  REQUIRE(opt.param_groups().size() == 2);
  CHECK(opt.param_groups()[0].options().get_lr() == 0.1);
  CHECK(opt.param_groups()[1].options().lr() == 0.01);
  a.mutable_grad() = ones({2}, kFloat64);
  b.mutable_grad() = ones({1}, kFloat64);
  opt.step();
  CHECK(values(a) == Vec{1.0 - 0.1, 2.0 - 0.1});
  CHECK(values(b) == Vec{3.0 - 0.01});

  // Schedulers set lr through the base options; a third group added later.
  opt.param_groups()[0].options().set_lr(1.0);
  Tensor c = zeros({1}, kFloat64).requires_grad_();
  opt.add_param_group(optim::OptimizerParamGroup({c}));
  CHECK(opt.param_groups()[2].options().get_lr() == 0.1);
  CHECK(opt.size() == 3);
  c.mutable_grad() = ones({1}, kFloat64);
  opt.step();
  CHECK(values(a) == Vec{0.9 - 1.0, 1.9 - 1.0});
  CHECK(values(c) == Vec{-0.1});
}

TEST_CASE("Optimizer: the optimizer updates the very tensors the model holds") {
  Tensor w = ones({2, 2}, kFloat32).requires_grad_();
  std::vector<Tensor> model_params = {w};
  optim::SGD opt(model_params, optim::SGDOptions(0.5));
  Tensor loss = (w * w).sum();
  loss.backward();
  opt.step();
  CHECK(values(model_params[0]) == Vec{0.0, 0.0, 0.0, 0.0});  // 1 - 0.5 * 2
  CHECK(opt.parameters()[0].is_same(w));
}

TEST_CASE("Optimizer: zero_grad sets grads to none or to zeros in place") {
  Tensor p = ones({3}).requires_grad_();
  optim::Adam opt({p});
  (p * 2).sum().backward();
  REQUIRE(p.grad().defined());
  Tensor g = p.grad();
  opt.zero_grad(/*set_to_none=*/false);
  REQUIRE(p.grad().defined());
  CHECK(p.grad().is_same(g));
  CHECK(values(p.grad()) == Vec{0, 0, 0});
  opt.zero_grad();
  CHECK_FALSE(p.grad().defined());
}

TEST_CASE("Optimizer: parameters without a grad are skipped and get no state") {
  Tensor a = ones({2}).requires_grad_();
  Tensor b = ones({2}).requires_grad_();
  optim::Adam opt({a, b}, optim::AdamOptions(0.1));
  a.mutable_grad() = ones({2});
  opt.step();
  CHECK(values(b) == Vec{1, 1});
  CHECK(opt.state(b) == nullptr);
  REQUIRE(opt.state(a) != nullptr);
  CHECK(opt.state(a)->get_int("step") == 1);
  const StateDict sd = opt.state_dict();
  CHECK(sd.contains("state.0.exp_avg"));
  CHECK_FALSE(sd.contains("state.1.exp_avg"));
}

TEST_CASE("Optimizer: step runs the closure with grad mode on and returns its loss") {
  Tensor p = tensor(Vec{2.0}, kFloat64).requires_grad_();
  optim::SGD opt({p}, optim::SGDOptions(0.25));
  NoGradGuard outer;  // the closure still records
  Tensor loss = opt.step([&] {
    opt.zero_grad();
    Tensor l = (p * p).sum();
    l.backward();
    return l;
  });
  CHECK(loss.item<double>() == 4.0);
  CHECK(values(p) == Vec{2.0 - 0.25 * 4.0});
}

TEST_CASE("Optimizer: each algorithm minimises a quadratic") {
  const std::vector<std::pair<std::string, MakeOpt>> cases = {
      {"SGD", maker<optim::SGD>(optim::SGDOptions(0.05).momentum(0.9).nesterov(true))},
      {"Adam", maker<optim::Adam>(optim::AdamOptions(0.05))},
      {"AdamW", maker<optim::AdamW>(optim::AdamWOptions(0.05))},
      {"RMSprop", maker<optim::RMSprop>(optim::RMSpropOptions(0.01).centered(true))},
      {"Adagrad", maker<optim::Adagrad>(optim::AdagradOptions(0.3))},
      {"Lion", maker<optim::Lion>(optim::LionOptions(0.03))},
  };
  for (const auto& [name, make] : cases) {
    INFO(name);
    Tensor target = tensor(Vec{1.0, -2.0, 0.5, 3.0});
    Tensor p = zeros({4}).requires_grad_();
    auto opt = make({p});
    double first = 0, last = 0;
    for (int it = 0; it < 200; ++it) {
      opt->zero_grad();
      Tensor loss = ((p - target) * (p - target)).sum();
      loss.backward();
      if (it == 0) first = loss.item<double>();
      last = loss.item<double>();
      opt->step();
    }
    CHECK(last < 0.05 * first);
  }
}

// ---- state_dict ----

TEST_CASE("Optimizer: state_dict keys follow PyTorch's layout") {
  Tensor a = ones({2, 3}).requires_grad_();
  Tensor b = ones({4}).requires_grad_();
  Tensor c = ones({1}).requires_grad_();
  std::vector<optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<Tensor>{a, b});
  groups.emplace_back(std::vector<Tensor>{c},
                      std::make_unique<optim::AdamOptions>(optim::AdamOptions(0.5).amsgrad(true)));
  optim::Adam opt(groups, optim::AdamOptions(0.01).betas({0.8, 0.95}));
  for (Tensor t : {a, b, c}) t.mutable_grad() = ones_like(t);
  for (int i = 0; i < 3; ++i) opt.step();
  const StateDict sd = opt.state_dict();
  CHECK(sd.get_int("state.0.step") == 3);
  CHECK(sd.at("state.0.exp_avg").sizes() == IntArrayRef{2, 3});
  CHECK(sd.at("state.1.exp_avg_sq").sizes() == IntArrayRef{4});
  CHECK(sd.contains("state.2.max_exp_avg_sq"));
  CHECK_FALSE(sd.contains("state.0.max_exp_avg_sq"));
  CHECK(sd.get_double("param_groups.0.lr") == 0.01);
  CHECK(sd.get_double("param_groups.1.lr") == 0.5);
  CHECK(values(sd.at("param_groups.0.betas")) == Vec{0.8, 0.95});
  CHECK(sd.get_double("param_groups.1.amsgrad") == 1);
  CHECK(sd.at("param_groups.0.params").dtype() == kInt64);
  CHECK(values(sd.at("param_groups.0.params")) == Vec{0, 1});
  CHECK(values(sd.at("param_groups.1.params")) == Vec{2});
  // A snapshot: stepping on does not change it.
  const Tensor saved = sd.at("state.0.exp_avg").clone();
  opt.step();
  CHECK(test::bitwise_equal(sd.at("state.0.exp_avg"), saved));
}

namespace {

/// 3 steps, save, fresh optimizer, load, 2 more steps on both: bitwise equal parameters and state.
void check_resume(const MakeOpt& make, DType dtype) {
  Generator gen(7);
  auto new_params = [&] {
    Generator init(3);
    return std::vector<Tensor>{randn({3, 2}, init, dtype).requires_grad_(),
                               randn({5}, init, dtype).requires_grad_()};
  };
  std::vector<Tensor> pa = new_params();
  auto a = make(pa);
  std::vector<std::vector<Tensor>> grads;
  for (int s = 0; s < 5; ++s) grads.push_back({randn({3, 2}, gen, dtype), randn({5}, gen, dtype)});
  auto apply = [&](std::vector<Tensor>& ps, optim::Optimizer& opt, int s) {
    for (size_t i = 0; i < ps.size(); ++i) ps[i].mutable_grad() = grads[s][i].clone();
    opt.step();
  };
  for (int s = 0; s < 3; ++s) apply(pa, *a, s);
  const StateDict saved = a->state_dict();

  std::vector<Tensor> pb = new_params();
  {
    NoGradGuard ng;
    for (size_t i = 0; i < pb.size(); ++i) pb[i].copy_(pa[i]);
  }
  auto b = make(pb);
  b->load_state_dict(saved);
  for (int s = 3; s < 5; ++s) {
    apply(pa, *a, s);
    apply(pb, *b, s);
  }
  for (size_t i = 0; i < pa.size(); ++i) CHECK(test::bitwise_equal(pa[i], pb[i]));
  const StateDict sa = a->state_dict(), sb = b->state_dict();
  REQUIRE(sa.keys() == sb.keys());
  for (const auto& [k, v] : sa) {
    INFO(k);
    CHECK(test::bitwise_equal(v, sb.at(k)));
  }
}

}  // namespace

TEST_CASE("Optimizer: a run resumed from state_dict continues bit-identically") {
  const std::vector<std::pair<std::string, MakeOpt>> cases = {
      {"SGD", maker<optim::SGD>(optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.01))},
      {"Adam", maker<optim::Adam>(optim::AdamOptions(0.01).amsgrad(true))},
      {"AdamW", maker<optim::AdamW>(optim::AdamWOptions(0.01))},
      {"RMSprop", maker<optim::RMSprop>(optim::RMSpropOptions(0.01).centered(true).momentum(0.5))},
      {"Adagrad", maker<optim::Adagrad>(optim::AdagradOptions(0.1).lr_decay(0.1))},
      {"Lion", maker<optim::Lion>(optim::LionOptions(0.01).weight_decay(0.1))},
  };
  for (const auto& [name, make] : cases) {
    for (DType dt : {kFloat32, kFloat64}) {
      INFO(name << " " << dt);
      check_resume(make, dt);
    }
  }
}

TEST_CASE("Optimizer: load_state_dict restores the group options") {
  Tensor p = ones({2}).requires_grad_();
  optim::SGD a({p}, optim::SGDOptions(0.3).momentum(0.7).nesterov(true));
  Tensor q = ones({2}).requires_grad_();
  optim::SGD b({q}, optim::SGDOptions(0.1));
  b.load_state_dict(a.state_dict());
  const auto& o = static_cast<const optim::SGDOptions&>(b.param_groups()[0].options());
  CHECK(o.lr() == 0.3);
  CHECK(o.momentum() == 0.7);
  CHECK(o.nesterov());
}

TEST_CASE("Optimizer: load_state_dict rejects mismatches and leaves the optimizer unchanged") {
  Tensor a = ones({2, 3}).requires_grad_();
  Tensor b = ones({4}).requires_grad_();
  optim::Adam src({a, b}, optim::AdamOptions(0.5));
  a.mutable_grad() = ones({2, 3});
  b.mutable_grad() = ones({4});
  src.step();
  const StateDict sd = src.state_dict();

  Tensor x = ones({2, 3}).requires_grad_();
  Tensor y = ones({4}).requires_grad_();
  SECTION("group count") {
    std::vector<optim::OptimizerParamGroup> groups;
    groups.emplace_back(std::vector<Tensor>{x});
    groups.emplace_back(std::vector<Tensor>{y});
    optim::Adam dst(groups);
    EMBER_CHECK_THROWS(dst.load_state_dict(sd), ValueError, "[Adam.load_state_dict]",
                       "1 parameter groups", "has 2");
  }
  SECTION("parameter count") {
    optim::Adam dst({x});
    EMBER_CHECK_THROWS(dst.load_state_dict(sd), ValueError, "has 2 parameters", "has 1");
  }
  SECTION("state shape") {
    Tensor z = ones({5}).requires_grad_();
    optim::Adam dst({x, z}, optim::AdamOptions(0.1));
    EMBER_CHECK_THROWS(dst.load_state_dict(sd), ShapeError, "state.1.exp_avg", "(4,)", "(5,)");
    CHECK(dst.param_groups()[0].options().get_lr() == 0.1);  // unchanged
    CHECK(dst.state(x) == nullptr);
  }
  SECTION("unknown state") {
    StateDict bad = sd;
    bad.insert("state.0.momentum_buffer", ones({2, 3}));
    optim::Adam dst({x, y});
    EMBER_CHECK_THROWS(dst.load_state_dict(bad), ValueError, "unknown state 'momentum_buffer'");
  }
  SECTION("state of a parameter no group holds") {
    StateDict bad = sd;
    bad.insert("state.9.exp_avg", ones({4}));
    optim::Adam dst({x, y});
    EMBER_CHECK_THROWS(dst.load_state_dict(bad), ValueError, "state.9.exp_avg", "parameter 9");
  }
  SECTION("missing option") {
    StateDict bad = sd;
    bad.erase("param_groups.0.eps");
    optim::Adam dst({x, y});
    EMBER_CHECK_THROWS(dst.load_state_dict(bad), IndexError, "param_groups.0.eps");
  }
  SECTION("invalid loaded option") {
    StateDict bad = sd;
    bad.set_double("param_groups.0.lr", -1.0);
    optim::Adam dst({x, y});
    EMBER_CHECK_THROWS(dst.load_state_dict(bad), ValueError, "[Adam] invalid learning rate");
  }
  SECTION("a float step count (PyTorch stores step as float32) loads") {
    StateDict f = sd;
    f.insert("state.0.step", scalar_tensor(1.0, kFloat32));
    optim::Adam dst({x, y});
    dst.load_state_dict(f);
    CHECK(dst.state(x)->get_int("step") == 1);
  }
}

// ---- errors ----

TEST_CASE("Optimizer: invalid options raise ValueError naming the algorithm") {
  Tensor p = ones({2}).requires_grad_();
  EMBER_CHECK_THROWS(optim::SGD({p}, optim::SGDOptions(-0.1)), ValueError, "[SGD]",
                     "invalid learning rate: -0.1");
  EMBER_CHECK_THROWS(optim::SGD({p}, optim::SGDOptions(0.1).nesterov(true)), ValueError,
                     "Nesterov momentum requires a momentum and zero dampening");
  EMBER_CHECK_THROWS(
      optim::SGD({p}, optim::SGDOptions(0.1).momentum(0.9).dampening(0.1).nesterov(true)),
      ValueError, "Nesterov");
  EMBER_CHECK_THROWS(optim::SGD({p}, optim::SGDOptions(0.1).momentum(-1)), ValueError, "momentum");
  EMBER_CHECK_THROWS(optim::Adam({p}, optim::AdamOptions(-1)), ValueError, "[Adam]",
                     "learning rate");
  EMBER_CHECK_THROWS(optim::Adam({p}, optim::AdamOptions().betas({1.0, 0.9})), ValueError, "beta0");
  EMBER_CHECK_THROWS(optim::AdamW({p}, optim::AdamWOptions().betas({0.9, -0.1})), ValueError,
                     "[AdamW]", "beta1");
  EMBER_CHECK_THROWS(optim::Adam({p}, optim::AdamOptions().eps(-1)), ValueError, "epsilon");
  EMBER_CHECK_THROWS(optim::Adam({p}, optim::AdamOptions().weight_decay(-1)), ValueError,
                     "weight_decay");
  EMBER_CHECK_THROWS(optim::RMSprop({p}, optim::RMSpropOptions().alpha(-0.5)), ValueError,
                     "[RMSprop]", "alpha");
  EMBER_CHECK_THROWS(optim::Adagrad({p}, optim::AdagradOptions().lr_decay(-1)), ValueError,
                     "[Adagrad]", "lr_decay");
  EMBER_CHECK_THROWS(optim::Lion({p}, optim::LionOptions().betas({0.9, 1.5})), ValueError, "[Lion]",
                     "beta1");
  EMBER_CHECK_THROWS(optim::Lion({p}, optim::LionOptions(std::nan(""))), ValueError,
                     "learning rate");
  // A group's own options are validated when it is added.
  optim::SGD opt({p});
  Tensor q = ones({2}).requires_grad_();
  EMBER_CHECK_THROWS(
      opt.add_param_group(optim::OptimizerParamGroup({q}, std::make_unique<optim::SGDOptions>(-1))),
      ValueError, "[SGD] invalid learning rate");
  CHECK(opt.param_groups().size() == 1);
}

TEST_CASE("Optimizer: bad parameters raise typed errors") {
  Tensor p = ones({2}).requires_grad_();
  EMBER_CHECK_THROWS(optim::SGD(std::vector<Tensor>{}), ValueError, "[SGD]",
                     "empty parameter list");
  EMBER_CHECK_THROWS(optim::SGD({p * 2}), ValueError, "non-leaf");
  EMBER_CHECK_THROWS(optim::SGD({p, p}), ValueError, "more than once");
  EMBER_CHECK_THROWS(optim::Adam({zeros({2}, kInt64)}), DTypeError, "floating", "int64");
  EMBER_CHECK_THROWS(optim::SGD({Tensor()}), ValueError, "undefined");
  optim::SGD opt({p});
  EMBER_CHECK_THROWS(opt.add_param_group(optim::OptimizerParamGroup({p})), ValueError,
                     "more than once");
  // Another optimizer's options in a group.
  Tensor q = ones({2}).requires_grad_();
  opt.add_param_group(optim::OptimizerParamGroup({q}, std::make_unique<optim::AdamOptions>()));
  q.mutable_grad() = ones({2});
  EMBER_CHECK_THROWS(opt.step(), ValueError, "[SGD]", "options of another optimizer");
}

TEST_CASE("Optimizer: a grad that does not match its parameter raises on step") {
  Tensor p = ones({2, 3}).requires_grad_();
  optim::Adam opt({p});
  p.mutable_grad() = ones({3, 2});
  EMBER_CHECK_THROWS(opt.step(), ShapeError, "[Adam.step]", "(3, 2)", "(2, 3)");
  p.mutable_grad() = ones({2, 3}, kFloat64);
  EMBER_CHECK_THROWS(opt.step(), DTypeError, "[Adam.step]", "float64", "float32");
  CHECK(values(p) == Vec(6, 1.0));
  CHECK(opt.state(p) == nullptr);
}

TEST_CASE("Optimizer: float16 and bfloat16 parameters keep their state in their own dtype") {
  const std::vector<std::pair<std::string, MakeOpt>> cases = {
      {"SGD", maker<optim::SGD>(optim::SGDOptions(0.1).momentum(0.9))},
      // eps large enough for float16: 1e-8 rounds to 0 there (see the next test).
      {"Adam", maker<optim::Adam>(optim::AdamOptions(0.01).amsgrad(true).eps(1e-4))},
      {"AdamW", maker<optim::AdamW>(optim::AdamWOptions(0.01).eps(1e-4))},
      {"RMSprop",
       maker<optim::RMSprop>(optim::RMSpropOptions(0.01).centered(true).momentum(0.5).eps(1e-4))},
      {"Adagrad", maker<optim::Adagrad>(optim::AdagradOptions(0.1).eps(1e-4))},
      {"Lion", maker<optim::Lion>(optim::LionOptions(0.01).weight_decay(0.1))},
  };
  for (const auto& [name, make] : cases) {
    const std::vector<Vec> want = run(make, kFloat64);
    for (DType dt : {kFloat16, kBFloat16}) {
      INFO(name << " " << dt);
      Tensor p = tensor(kParam, dt).requires_grad_();
      auto opt = make({p});
      for (const Vec& g : kGrads) {
        p.mutable_grad() = tensor(g, dt);
        opt->step();
      }
      for (const auto& [key, value] : opt->state_dict())
        if (key.find(".step") == std::string::npos && key.rfind("state.", 0) == 0)
          CHECK(value.dtype() == dt);
      const Vec got = values(p);
      for (size_t i = 0; i < got.size(); ++i) CHECK(std::abs(got[i] - want.back()[i]) < 0.05);
    }
  }
}

TEST_CASE("Adam: with the default eps a float16 zero gradient gives NaN, as in PyTorch") {
  // eps = 1e-8 rounds to 0 in float16, so m / (sqrt(v) + eps) is 0 / 0 where the grad is 0;
  // torch.optim.Adam gives the same NaN (use a larger eps or float32 master weights).
  Tensor p = tensor(kParam, kFloat16).requires_grad_();
  optim::Adam opt({p}, optim::AdamOptions(0.01));
  p.mutable_grad() = tensor(kGrads[0], kFloat16);
  opt.step();
  const Vec got = values(p);
  CHECK(std::abs(got[0] - 0.49) < 1e-3);
  CHECK(std::isnan(got[3]));
}
