// Ember's optimizers and schedulers against reference values printed by torch.optim
// (tests/optim/make_golden.py wrote tests/optim/golden_optim.txt).
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "ember/optim.hpp"
#include "test_util.hpp"

using namespace ember;
using Vec = std::vector<double>;

namespace {

const Vec kParam = {0.5, -1.2, 2.0, 0.1};
const std::vector<Vec> kGrads = {
    {0.3, -0.7, 1.5, 0.0},    {-0.2, 0.4, 1.1, 0.05}, {0.9, -0.1, -0.6, 0.02},
    {0.05, 0.3, -0.25, -0.4}, {-0.6, 0.2, 0.7, 0.1},
};

struct Golden {
  // opt: case -> dtype -> per step values; sched: case -> lrs
  std::map<std::string, std::map<std::string, std::vector<Vec>>> opt;
  std::map<std::string, Vec> sched;
  std::map<std::string, Vec> mom;
};

const Golden& golden() {
  static const Golden g = [] {
    Golden out;
    std::ifstream in(std::string(EMBER_SOURCE_DIR) + "/tests/optim/golden_optim.txt");
    REQUIRE(in.good());
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ss(line);
      std::string kind, name;
      ss >> kind >> name;
      if (kind == "opt") {
        std::string dtype;
        int step = 0;
        ss >> dtype >> step;
        Vec v;
        for (double x; ss >> x;) v.push_back(x);
        out.opt[name][dtype].push_back(v);
      } else if (kind == "sched" || kind == "mom") {
        Vec v;
        for (double x; ss >> x;) v.push_back(x);
        (kind == "sched" ? out.sched : out.mom)[name] = v;
      }
    }
    return out;
  }();
  return g;
}

using MakeOpt = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;
template <class Opt, class Options>
MakeOpt maker(Options o) {
  return [o](std::vector<Tensor> p) -> std::unique_ptr<optim::Optimizer> {
    return std::make_unique<Opt>(std::move(p), o);
  };
}

}  // namespace

TEST_CASE(
    "optimizers: five steps match torch.optim (float64 to 4 ulps, float32 to 4 float32 ulps)") {
  const std::vector<std::pair<std::string, MakeOpt>> cases = {
      {"sgd", maker<optim::SGD>(optim::SGDOptions(0.1))},
      {"sgd_momentum",
       maker<optim::SGD>(optim::SGDOptions(0.1).momentum(0.9).dampening(0.1).weight_decay(0.01))},
      {"sgd_nesterov",
       maker<optim::SGD>(optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.01))},
      {"adam", maker<optim::Adam>(optim::AdamOptions(0.01))},
      {"adam_wd_amsgrad",
       maker<optim::Adam>(
           optim::AdamOptions(0.01).betas({0.8, 0.9}).weight_decay(0.1).amsgrad(true))},
      {"adamw", maker<optim::AdamW>(optim::AdamWOptions(0.01).weight_decay(0.1))},
      {"adamw_amsgrad",
       maker<optim::AdamW>(
           optim::AdamWOptions(0.01).betas({0.8, 0.9}).weight_decay(0.1).amsgrad(true))},
      {"rmsprop", maker<optim::RMSprop>(optim::RMSpropOptions(0.01))},
      {"rmsprop_centered_momentum",
       maker<optim::RMSprop>(
           optim::RMSpropOptions(0.01).alpha(0.9).momentum(0.9).centered(true).weight_decay(0.1))},
      {"adagrad",
       maker<optim::Adagrad>(
           optim::AdagradOptions(0.1).lr_decay(0.01).weight_decay(0.1).initial_accumulator_value(
               0.5))},
  };
  int exact = 0, total = 0;
  for (const auto& [name, make] : cases) {
    for (const auto& [dtname, dt] :
         std::vector<std::pair<std::string, DType>>{{"float64", kFloat64}, {"float32", kFloat32}}) {
      const auto it = golden().opt.find(name);
      REQUIRE(it != golden().opt.end());
      const std::vector<Vec>& want = it->second.at(dtname);
      REQUIRE(want.size() == kGrads.size());
      Tensor p = tensor(kParam, dt).requires_grad_();
      auto opt = make({p});
      const double ulp = dt == kFloat64 ? std::numeric_limits<double>::epsilon()
                                        : std::numeric_limits<float>::epsilon();
      for (size_t s = 0; s < kGrads.size(); ++s) {
        p.mutable_grad() = tensor(kGrads[s], dt);
        opt->step();
        const Vec got = test::values(p);
        for (size_t i = 0; i < got.size(); ++i) {
          INFO(name << " " << dtname << " step " << s + 1 << " element " << i << ": got " << got[i]
                    << ", torch " << want[s][i]);
          CHECK(std::abs(got[i] - want[s][i]) <= 4 * ulp * std::max(1.0, std::abs(want[s][i])));
          exact += got[i] == want[s][i];
          if (got[i] != want[s][i] && std::getenv("EMBER_GOLDEN_VERBOSE"))
            WARN(name << " " << dtname << " step " << s + 1 << " element " << i << ": " << got[i]
                      << " vs torch " << want[s][i]);
          ++total;
        }
      }
    }
  }
  WARN("optimizer values bitwise equal to torch: " << exact << " of " << total);
}

namespace {
struct SchedFixture {
  Tensor p = zeros({1}).requires_grad_();
  optim::SGD opt{std::vector<Tensor>{p}, optim::SGDOptions(0.1)};
};
}  // namespace

TEST_CASE("schedulers: lr curves match torch.optim.lr_scheduler") {
  using Step = std::function<void(int)>;
  using Make = std::function<Step(optim::Optimizer&, std::vector<std::shared_ptr<void>>&)>;
  auto plain = [](auto make) -> Make {
    return [make](optim::Optimizer& o, std::vector<std::shared_ptr<void>>& keep) -> Step {
      auto s = make(o);
      keep.push_back(s);
      return [s](int) { s->step(); };
    };
  };
  const Vec metrics = {1.0, 0.95, 0.92, 0.91, 0.93, 0.9, 0.89, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6};
  const std::vector<std::pair<std::string, Make>> cases = {
      {"step",
       plain([](optim::Optimizer& o) { return std::make_shared<optim::StepLR>(o, 3, 0.5); })},
      {"multistep", plain([](optim::Optimizer& o) {
         return std::make_shared<optim::MultiStepLR>(o, std::vector<int64_t>{2, 5, 8}, 0.1);
       })},
      {"exponential",
       plain([](optim::Optimizer& o) { return std::make_shared<optim::ExponentialLR>(o, 0.9); })},
      {"cosine", plain([](optim::Optimizer& o) {
         return std::make_shared<optim::CosineAnnealingLR>(o, 10, 0.001);
       })},
      {"linear", plain([](optim::Optimizer& o) {
         return std::make_shared<optim::LinearLR>(o, 0.25, 1.0, 4);
       })},
      {"lambda", plain([](optim::Optimizer& o) {
         return std::make_shared<optim::LambdaLR>(
             o, [](int64_t e) { return std::pow(0.95, static_cast<double>(e)); });
       })},
      {"onecycle_cos",
       plain([](optim::Optimizer& o) { return std::make_shared<optim::OneCycleLR>(o, 1.0, 20); })},
      {"onecycle_linear", plain([](optim::Optimizer& o) {
         return std::make_shared<optim::OneCycleLR>(o, 1.0, 20, 0.3, optim::AnnealStrategy::Linear);
       })},
      {"onecycle_three_phase", plain([](optim::Optimizer& o) {
         return std::make_shared<optim::OneCycleLR>(o, 1.0, 20, 0.25, optim::AnnealStrategy::Cos,
                                                    25.0, 1e4, true);
       })},
      {"sequential", plain([](optim::Optimizer& o) {
         auto w = std::make_shared<optim::LinearLR>(o, 0.1, 1.0, 5);
         auto c = std::make_shared<optim::CosineAnnealingLR>(o, 10);
         return std::make_shared<optim::SequentialLR>(
             o, std::vector<std::shared_ptr<optim::LRScheduler>>{w, c}, std::vector<int64_t>{5});
       })},
      {"plateau",
       [&](optim::Optimizer& o, std::vector<std::shared_ptr<void>>& keep) -> Step {
         using R = optim::ReduceLROnPlateau;
         auto s = std::make_shared<R>(o, R::Mode::Min, 0.5, 2, 0.1, R::ThresholdMode::Rel, 1);
         keep.push_back(s);
         return [s, &metrics](int i) { s->step(metrics[static_cast<size_t>(i)]); };
       }},
  };
  int exact = 0, total = 0;
  for (const auto& [name, make] : cases) {
    const auto it = golden().sched.find(name);
    REQUIRE(it != golden().sched.end());
    const Vec& want = it->second;
    SchedFixture f;
    std::vector<std::shared_ptr<void>> keep;
    Step step = make(f.opt, keep);
    for (size_t e = 0; e < want.size(); ++e) {
      if (e > 0) step(static_cast<int>(e - 1));
      const double got = f.opt.param_groups()[0].options().get_lr();
      INFO(name << " epoch " << e << ": got " << got << ", torch " << want[e]);
      CHECK(std::abs(got - want[e]) <= 4 * std::numeric_limits<double>::epsilon() * want[e]);
      exact += got == want[e];
      if (got != want[e] && std::getenv("EMBER_GOLDEN_VERBOSE"))
        WARN(name << " epoch " << e << ": " << got << " vs torch " << want[e]);
      ++total;
    }
  }
  WARN("scheduler lrs bitwise equal to torch: " << exact << " of " << total);
}

TEST_CASE("schedulers: OneCycleLR cycles momentum (SGD) and beta1 (Adam) like torch") {
  for (const std::string name : {"onecycle_momentum_sgd", "onecycle_momentum_adam"}) {
    const bool sgd = name == "onecycle_momentum_sgd";
    const Vec& want_lr = golden().sched.at(name);
    const Vec& want_m = golden().mom.at(name);
    Tensor p = zeros({1}).requires_grad_();
    std::unique_ptr<optim::Optimizer> opt;
    if (sgd)
      opt = std::make_unique<optim::SGD>(std::vector<Tensor>{p},
                                         optim::SGDOptions(0.1).momentum(0.9));
    else
      opt = std::make_unique<optim::Adam>(std::vector<Tensor>{p}, optim::AdamOptions(0.1));
    std::unique_ptr<optim::OneCycleLR> s =
        sgd ? std::make_unique<optim::OneCycleLR>(*opt, 1.0, 20)
            : std::make_unique<optim::OneCycleLR>(*opt, 1.0, 20, 0.3, optim::AnnealStrategy::Linear,
                                                  25.0, 1e4, /*three_phase=*/true);
    for (size_t e = 0; e < want_lr.size(); ++e) {
      if (e > 0) s->step();
      const optim::OptimizerOptions& o = opt->param_groups()[0].options();
      INFO(name << " epoch " << e);
      CHECK(o.get_lr() == want_lr[e]);
      CHECK(*o.get_momentum() == want_m[e]);
    }
  }
}
