// Numerical stability (docs/reliability.md): softmax, log_softmax, logsumexp, cross_entropy and
// binary_cross_entropy_with_logits on logits up to 1e30 in magnitude and with -inf masks, in
// float32 and float64: a table of cases with the exact expected values (worked out by hand), and
// the gradients finite wherever the forward result is. An infinity in the expectation must be
// matched exactly; finite values to 1e-6 relative.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ember/ember.hpp"
#include "ember/nn/functional/loss.hpp"
#include "test_util.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using test::values;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
const double kLog2 = std::log(2.0);

bool close(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isinf(want[i]) || std::isnan(want[i])) {
      if (!(got[i] == want[i])) return false;
      continue;
    }
    if (!(std::abs(got[i] - want[i]) <= 1e-6 * std::max(1.0, std::abs(want[i])))) return false;
  }
  return true;
}

bool all_finite(const Tensor& t) {
  for (double v : values(t))
    if (!std::isfinite(v)) return false;
  return true;
}

struct RowCase {
  std::vector<double> x, want;
};

}  // namespace

TEST_CASE("stability: softmax and log_softmax of huge logits and -inf masks") {
  const std::vector<RowCase> softmax_cases = {
      {{1e30, 0, -1e30}, {1, 0, 0}},
      {{-kInf, 0, 0}, {0, 0.5, 0.5}},
      {{-kInf, -kInf, 3}, {0, 0, 1}},
      {{1e30, 1e30, -kInf}, {0.5, 0.5, 0}},
      {{-1e30, -1e30, -1e30}, {1.0 / 3, 1.0 / 3, 1.0 / 3}},
      {{1e30, -1e30, 1e30}, {0.5, 0, 0.5}},
  };
  const std::vector<RowCase> log_softmax_cases = {
      {{1e30, 0, -1e30}, {0, -1e30, -2e30}},
      {{-kInf, 0, 0}, {-kInf, -kLog2, -kLog2}},
      {{1e30, 1e30}, {-kLog2, -kLog2}},
      {{-1e30, -1e30}, {-kLog2, -kLog2}},
      {{-kInf, 5}, {-kInf, 0}},
  };
  for (DType dt : {kFloat32, kFloat64}) {
    for (const RowCase& c : softmax_cases) {
      INFO(dt << " softmax of " << Catch::Detail::stringify(c.x));
      Tensor x = tensor(c.x).to(dt).requires_grad_();
      Tensor y = x.softmax(0);
      CHECK(close(values(y), c.want));
      (y * tensor(std::vector<double>(c.x.size(), 1.0)).to(dt).cumsum(0)).sum().backward();
      CHECK(all_finite(x.grad()));
    }
    for (const RowCase& c : log_softmax_cases) {
      INFO(dt << " log_softmax of " << Catch::Detail::stringify(c.x));
      Tensor x = tensor(c.x).to(dt).requires_grad_();
      Tensor y = x.log_softmax(0);
      CHECK(close(values(y), c.want));
      // A gradient that reads only the finite outputs (a masked loss): finite everywhere.
      std::vector<double> mask;
      for (double v : c.want) mask.push_back(std::isinf(v) ? 0.0 : 1.0);
      (y * tensor(mask).to(dt)).sum().backward();
      CHECK(all_finite(x.grad()));
    }
  }
}

TEST_CASE("stability: logsumexp of huge logits, -inf and +inf") {
  const std::vector<RowCase> cases = {
      {{1e30, 0}, {1e30}},
      {{-kInf, -kInf}, {-kInf}},
      {{-1e30, -1e30}, {-1e30 + kLog2}},
      {{kInf, 0}, {kInf}},
      {{-kInf, 2}, {2}},
      {{0, 0, 0, 0}, {2 * kLog2}},
  };
  for (DType dt : {kFloat32, kFloat64}) {
    for (const RowCase& c : cases) {
      INFO(dt << " logsumexp of " << Catch::Detail::stringify(c.x));
      Tensor x = tensor(c.x).to(dt).requires_grad_();
      Tensor y = logsumexp(x, {0});
      CHECK(close(values(y), c.want));
      if (std::isfinite(c.want[0])) {
        y.backward();
        CHECK(all_finite(x.grad()));  // softmax(x): 0 at -inf, never NaN
      }
    }
  }
}

TEST_CASE("stability: cross_entropy of huge logits and -inf masks") {
  struct Case {
    std::vector<double> logits;
    int64_t target;
    double want;
  };
  const std::vector<Case> cases = {
      {{1e30, 0, -1e30}, 0, 0},      {{1e30, 0, -1e30}, 1, 1e30}, {{1e30, 0, -1e30}, 2, 2e30},
      {{-kInf, 0, 0}, 1, kLog2},     {{-1e30, -1e30}, 0, kLog2},  {{1e30, 1e30, -kInf}, 1, kLog2},
      {{-kInf, -kInf, 7}, 2, 0},
  };
  for (DType dt : {kFloat32, kFloat64}) {
    for (const Case& c : cases) {
      INFO(dt << " logits " << Catch::Detail::stringify(c.logits) << " target " << c.target);
      Tensor x = tensor(c.logits).to(dt).reshape({1, -1}).requires_grad_();
      Tensor loss = F::cross_entropy(x, tensor(std::vector<int64_t>{c.target}));
      CHECK(close(values(loss), {c.want}));
      loss.backward();
      CHECK(all_finite(x.grad()));
      // The reference composite agrees.
      CHECK(close(values(F::cross_entropy_reference(x.detach(),
                                                    tensor(std::vector<int64_t>{c.target}))),
                  {c.want}));
    }
  }
}

TEST_CASE("stability: binary_cross_entropy_with_logits of huge logits") {
  struct Case {
    double x, t, want, grad;  // grad = sigmoid(x) - t
  };
  const std::vector<Case> cases = {
      {1e30, 1, 0, 0},     {1e30, 0, 1e30, 1}, {-1e30, 1, 1e30, -1}, {-1e30, 0, 0, 0},
      {0, 1, kLog2, -0.5}, {0, 0, kLog2, 0.5}, {1e30, 0.25, 0.75e30, 0.75},
  };
  for (DType dt : {kFloat32, kFloat64}) {
    for (const Case& c : cases) {
      INFO(dt << " x " << c.x << " target " << c.t);
      Tensor x = tensor(std::vector<double>{c.x}).to(dt).requires_grad_();
      Tensor t = tensor(std::vector<double>{c.t}).to(dt);
      Tensor loss = F::binary_cross_entropy_with_logits(x, t, {}, "sum");
      CHECK(close(values(loss), {c.want}));
      loss.backward();
      CHECK(close(values(x.grad()), {c.grad}));
      // With a positive weight the loss stays finite too.
      Tensor weighted = F::binary_cross_entropy_with_logits(x.detach(), t, {}, "sum",
                                                            tensor(std::vector<double>{3.0}).to(dt));
      CHECK(all_finite(weighted));
    }
  }
}
