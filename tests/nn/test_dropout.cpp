// Dropout functionals (ember::nn::functional): statistics of the mask (fraction zeroed, mean
// preserved), determinism under manual_seed, the identity when not training, p = 0 and p = 1,
// whole-channel masks of dropout1d / dropout2d, alpha_dropout's moments, errors, and gradients.
#include <cmath>
#include <iostream>
#include <vector>

#include "ember/nn/functional/dropout.hpp"
#include "gradcheck.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using Catch::Detail::Approx;
using test::grad_input;
using test::values;

namespace {

using Inputs = std::vector<Tensor>;

double fraction_zero(const Tensor& t) {
  std::vector<double> v = values(t);
  double z = 0;
  for (double x : v) z += x == 0.0 ? 1 : 0;
  return z / static_cast<double>(v.size());
}

}  // namespace

TEST_CASE("dropout: fraction zeroed is p, survivors scaled by 1 / (1 - p), mean preserved") {
  manual_seed(2024);
  const int64_t n = 200000;
  for (double p : {0.1, 0.3, 0.5, 0.8}) {
    INFO("p = " << p);
    Tensor x = ones({n});
    Tensor y = F::dropout(x, p);
    CHECK(y.dtype() == kFloat32);
    // Binomial: the standard deviation of the fraction is sqrt(p (1 - p) / n) < 0.0012.
    CHECK(std::abs(fraction_zero(y) - p) < 0.006);
    const float scale = static_cast<float>(1.0 / (1.0 - p));
    bool survivors_scaled = true;
    for (double v : values(y)) survivors_scaled = survivors_scaled && (v == 0.0 || v == scale);
    CHECK(survivors_scaled);
    // mean(y) has standard deviation sqrt(p / (1 - p) / n) <= 0.0045 here.
    CHECK(y.mean().item<double>() == Approx(1.0).margin(0.02));
  }
  // float64 and bfloat16 inputs keep their dtype.
  CHECK(F::dropout(ones({8}, kFloat64), 0.5).dtype() == kFloat64);
  CHECK(F::dropout(ones({8}, kBFloat16), 0.5).dtype() == kBFloat16);
}

TEST_CASE("dropout: deterministic under manual_seed, different across draws") {
  Tensor x = grad_input({1000}, -1, 1, 71).detach();
  manual_seed(7);
  Tensor a = F::dropout(x, 0.4);
  Tensor a2 = F::dropout(x, 0.4);
  manual_seed(7);
  Tensor b = F::dropout(x, 0.4);
  CHECK(test::bitwise_equal(a, b));
  CHECK_FALSE(test::bitwise_equal(a, a2));
  manual_seed(8);
  CHECK_FALSE(test::bitwise_equal(a, F::dropout(x, 0.4)));
}

TEST_CASE("dropout: identity when not training or p = 0, zeros for p = 1") {
  Tensor x = grad_input({3, 4});
  CHECK(F::dropout(x, 0.5, false).is_same(x));
  CHECK(F::dropout(x, 0.0).is_same(x));
  CHECK(F::dropout1d(zeros({2, 3, 4}), 0.5, false).sizes() == IntArrayRef({2, 3, 4}));
  Tensor v = x.reshape({1, 3, 2, 2});
  CHECK(F::dropout2d(v, 0.9, false).is_same(v));
  CHECK(F::alpha_dropout(x, 0.5).is_same(x));  // training defaults to false, as in PyTorch
  Tensor z = F::dropout(x, 1.0);
  CHECK(values(z) == std::vector<double>(12, 0.0));
  z.sum().backward();
  CHECK(values(x.grad()) == std::vector<double>(12, 0.0));  // a zero gradient, not NaN
}

TEST_CASE("dropout: the gradient is the scaled mask") {
  manual_seed(11);
  Tensor x = ones({500}, kFloat64).requires_grad_();
  Tensor y = F::dropout(x, 0.25);
  y.sum().backward();
  // dy/dx = mask / (1 - p) = y / x with x = 1.
  CHECK(test::bitwise_equal(x.grad(), y.detach()));
  CHECK(y.grad_fn() != nullptr);
}

TEST_CASE("dropout1d / dropout2d: whole channels are zeroed together") {
  manual_seed(3);
  const double p = 0.5;
  Tensor x = ones({40, 50, 3, 2});
  Tensor y = F::dropout2d(x, p);
  // Every (n, c) plane is all 0 or all 1 / (1 - p).
  Tensor planes = y.reshape({2000, 6});
  Tensor mn = planes.amin({1}), mx = planes.amax({1});
  CHECK(equal(mn, mx));
  // 2000 channel draws: the fraction dropped has standard deviation about 0.011.
  CHECK(std::abs(fraction_zero(mn) - p) < 0.06);
  bool all_zero_or_scaled = true;
  for (double k : values(mx)) all_zero_or_scaled = all_zero_or_scaled && (k == 0.0 || k == 2.0);
  CHECK(all_zero_or_scaled);
  // Unbatched (C, H, W).
  Tensor u = F::dropout2d(ones({300, 2, 2}), 0.3);
  Tensor um = u.reshape({300, 4});
  CHECK(equal(um.amin({1}), um.amax({1})));
  CHECK(std::abs(fraction_zero(um.amin({1})) - 0.3) < 0.12);
  // dropout1d: (N, C, L) and (C, L).
  Tensor d1 = F::dropout1d(ones({20, 30, 5}), 0.5).reshape({600, 5});
  CHECK(equal(d1.amin({1}), d1.amax({1})));
  CHECK(std::abs(fraction_zero(d1.amin({1})) - 0.5) < 0.1);
  Tensor d1u = F::dropout1d(ones({30, 5}), 0.5);
  CHECK(equal(d1u.amin({1}), d1u.amax({1})));
}

TEST_CASE("alpha_dropout: keeps zero mean and unit variance of standard normal inputs") {
  manual_seed(5);
  const int64_t n = 200000;
  Tensor x = randn({n}, kFloat64);
  for (double p : {0.2, 0.5}) {
    INFO("p = " << p);
    Tensor y = F::alpha_dropout(x, p, true);
    CHECK(y.mean().item<double>() == Approx(0.0).margin(0.015));
    CHECK(y.std().item<double>() == Approx(1.0).margin(0.015));
    // Dropped elements all take one value: a * (-alpha) + a * alpha * p.
    const double alpha = 1.7580993408473766;
    const double a = 1.0 / std::sqrt((alpha * alpha * p + 1.0) * (1.0 - p));
    const double dropped = -alpha * a + alpha * a * p;
    std::vector<double> v = values(y);
    double count = 0;
    for (double e : v) count += std::abs(e - dropped) < 1e-12 ? 1 : 0;
    CHECK(std::abs(count / static_cast<double>(n) - p) < 0.01);
  }
}

TEST_CASE("dropout: errors name the function and the bad value") {
  Tensor x = ones({2, 3});
  EMBER_CHECK_THROWS(F::dropout(x, 1.5), ValueError, "[dropout]", "1.5");
  EMBER_CHECK_THROWS(F::dropout(x, -0.1), ValueError, "[dropout]", "-0.1");
  EMBER_CHECK_THROWS(F::dropout(x, 1.5, false), ValueError,
                     "[dropout]");  // checked when not training too
  EMBER_CHECK_THROWS(F::dropout(ones({2}, kInt64), 0.5), DTypeError, "[dropout]", "int64");
  EMBER_CHECK_THROWS(F::dropout2d(x, 0.5), ShapeError, "[dropout2d]", "(N, C, H, W)", "(2, 3)");
  EMBER_CHECK_THROWS(F::dropout1d(ones({2, 3, 4, 5}), 0.5), ShapeError, "[dropout1d]",
                     "(2, 3, 4, 5)");
  EMBER_CHECK_THROWS(F::alpha_dropout(x, 2.0, true), ValueError, "[alpha_dropout]", "2");
}

TEST_CASE("dropout: grads match finite differences (gradcheck and gradgradcheck)") {
  // Reseeding inside the function keeps the mask fixed across the finite-difference evaluations.
  std::vector<test::GradCase> table;
  table.push_back({"dropout",
                   [](const Inputs& x) {
                     manual_seed(1);
                     return F::dropout(x[0], 0.3) * x[0];
                   },
                   {grad_input({3, 4})}});
  table.push_back({"dropout2d",
                   [](const Inputs& x) {
                     manual_seed(2);
                     return square(F::dropout2d(x[0], 0.5));
                   },
                   {grad_input({2, 3, 2, 2})}});
  table.push_back({"dropout1d unbatched",
                   [](const Inputs& x) {
                     manual_seed(4);
                     return F::dropout1d(x[0], 0.5) * x[0];
                   },
                   {grad_input({6, 3})}});
  table.push_back({"alpha_dropout",
                   [](const Inputs& x) {
                     manual_seed(3);
                     return F::alpha_dropout(x[0], 0.4, true) * x[0];
                   },
                   {grad_input({10})}});
  test::check_grad_table(table);
  std::cout << "[test_dropout] gradcheck + gradgradcheck over " << table.size() << " cases\n";
}
