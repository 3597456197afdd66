// Gradient clipping: the returned total norm, the scaled grads, the inf norm, non-finite norms.
#include <cmath>
#include <limits>

#include "ember/nn/utils.hpp"
#include "test_util.hpp"

using namespace ember;
using ember::test::values;
using Vec = std::vector<double>;

namespace {
Tensor param_with_grad(const Vec& g, DType dt = kFloat64) {
  Tensor p = zeros({static_cast<int64_t>(g.size())}, dt).requires_grad_();
  p.mutable_grad() = tensor(g, dt);
  return p;
}
}  // namespace

TEST_CASE(
    "clip_grad_norm_: returns the total 2-norm and scales grads by max_norm / (norm + 1e-6)") {
  Tensor a = param_with_grad({3.0, 0.0});
  Tensor b = param_with_grad({0.0, 4.0, 12.0});
  Tensor none = zeros({2}, kFloat64).requires_grad_();  // no grad: skipped
  Tensor total = nn::utils::clip_grad_norm_({a, b, none}, 6.5);
  CHECK(total.dim() == 0);
  // The norm of the per-grad norms (3 and sqrt(160)), as PyTorch computes it: 13 up to rounding.
  const double nb = std::sqrt(160.0);
  const double want = std::sqrt(9.0 + nb * nb);
  CHECK(std::abs(want - 13.0) < 1e-14);
  CHECK(total.item<double>() == want);
  const double coef = 6.5 / (want + 1e-6);
  CHECK(values(a.grad()) == Vec{3.0 * coef, 0.0});
  CHECK(values(b.grad()) == Vec{0.0, 4.0 * coef, 12.0 * coef});
  CHECK_FALSE(none.grad().defined());
}

TEST_CASE("clip_grad_norm_: grads under the limit are unchanged") {
  Tensor a = param_with_grad({0.3, -0.4}, kFloat32);
  Tensor before = a.grad().clone();
  Tensor total = nn::utils::clip_grad_norm_(a, 1.0);
  CHECK(total.dtype() == kFloat32);
  CHECK(std::abs(total.item<double>() - 0.5) < 1e-7);
  CHECK(test::bitwise_equal(a.grad(), before));
}

TEST_CASE("clip_grad_norm_: inf and 1 norms") {
  Tensor a = param_with_grad({1.0, -5.0});
  Tensor b = param_with_grad({2.0});
  Tensor total = nn::utils::clip_grad_norm_({a, b}, 2.5, std::numeric_limits<double>::infinity());
  CHECK(total.item<double>() == 5.0);
  const double coef = 2.5 / (5.0 + 1e-6);
  CHECK(values(a.grad()) == Vec{1.0 * coef, -5.0 * coef});
  Tensor c = param_with_grad({1.0, -2.0});
  Tensor d = param_with_grad({3.0});
  CHECK(nn::utils::clip_grad_norm_({c, d}, 100.0, 1.0).item<double>() == 6.0);
  Tensor e = param_with_grad({1.0, 2.0});
  CHECK(std::abs(nn::utils::clip_grad_norm_(e, 100.0, 3.0).item<double>() - std::cbrt(9.0)) <
        1e-15);
}

TEST_CASE("clip_grad_norm_: a non-finite norm scales by NaN, or raises when asked") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  Tensor a = param_with_grad({1.0, nan});
  Tensor b = param_with_grad({2.0});
  Tensor total = nn::utils::clip_grad_norm_({a, b}, 1.0);
  CHECK(std::isnan(total.item<double>()));
  for (double v : values(a.grad())) CHECK(std::isnan(v));
  for (double v : values(b.grad())) CHECK(std::isnan(v));

  Tensor c = param_with_grad({1.0, inf});
  Tensor before = c.grad().clone();
  EMBER_CHECK_THROWS(nn::utils::clip_grad_norm_(c, 1.0, 2.0, /*error_if_nonfinite=*/true),
                     ValueError, "[clip_grad_norm_]", "non-finite");
  CHECK(test::bitwise_equal(c.grad(), before));  // nothing scaled
  // Without the check an infinite norm gives a zero factor (inf * 0 = NaN where the grad is inf).
  Tensor total_inf = nn::utils::clip_grad_norm_(c, 1.0);
  CHECK(std::isinf(total_inf.item<double>()));
  const Vec g = values(c.grad());
  CHECK(g[0] == 0.0);
  CHECK(std::isnan(g[1]));
}

TEST_CASE("clip_grad_norm_: no grads give a zero norm, bad norm_type raises") {
  Tensor p = zeros({2}).requires_grad_();
  CHECK(nn::utils::clip_grad_norm_(p, 1.0).item<double>() == 0.0);
  EMBER_CHECK_THROWS(nn::utils::clip_grad_norm_(p, 1.0, -1.0), ValueError, "[clip_grad_norm_]",
                     "norm_type");
}

TEST_CASE("clip_grad_value_: clamps every grad to [-clip, clip]") {
  Tensor a = param_with_grad({-3.0, 0.5, 2.0});
  Tensor b = param_with_grad({1.5});
  Tensor none = zeros({1}, kFloat64).requires_grad_();
  nn::utils::clip_grad_value_({a, b, none}, 1.0);
  CHECK(values(a.grad()) == Vec{-1.0, 0.5, 1.0});
  CHECK(values(b.grad()) == Vec{1.0});
  CHECK_FALSE(none.grad().defined());
}

TEST_CASE("clip_grad_norm_: grads of different dtypes are clipped together") {
  Tensor a = param_with_grad({3.0}, kFloat32);
  Tensor b = param_with_grad({4.0}, kFloat64);
  Tensor total = nn::utils::clip_grad_norm_({a, b}, 1.0);
  CHECK(total.dtype() == kFloat64);
  CHECK(total.item<double>() == 5.0);
  CHECK(a.grad().dtype() == kFloat32);
  CHECK(std::abs(values(a.grad())[0] - 3.0 / (5.0 + 1e-6)) < 1e-7);
  CHECK(values(b.grad())[0] == 4.0 * (1.0 / (5.0 + 1e-6)));
}
