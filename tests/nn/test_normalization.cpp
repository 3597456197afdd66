// Normalization functionals (ember::nn::functional): batch_norm (batch and running statistics,
// in-place running-stat updates, eval mode), layer_norm, group_norm, rms_norm and normalize
// against hand-computed values and composites, errors, and gradcheck + gradgradcheck.
#include <cmath>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "ember/nn/functional/normalization.hpp"
#include "gradcheck.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using Catch::Detail::Approx;
using test::grad_input;
using test::values;

namespace {

using Inputs = std::vector<Tensor>;

void check_values(const Tensor& t, const std::vector<double>& want, double rel = 1e-12) {
  const std::vector<double> got = values(t);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(got[i] == Approx(want[i]).epsilon(rel).margin(1e-14));
  }
}

}  // namespace

// ---- batch_norm ----

TEST_CASE("batch_norm: training normalizes with batch statistics and updates running stats") {
  // x (4, 2): channel 0 = (1, 2, 3, 6): mean 3, biased var 3.5, unbiased 14/3;
  //           channel 1 = (0, 0, 4, 4): mean 2, biased var 4, unbiased 16/3.
  Tensor x = tensor({{1.0, 0.0}, {2.0, 0.0}, {3.0, 4.0}, {6.0, 4.0}}, kFloat64);
  Tensor rm = zeros({2}, kFloat64), rv = ones({2}, kFloat64);
  Tensor w = tensor({2.0, 0.5}, kFloat64), b = tensor({1.0, -1.0}, kFloat64);
  const double eps = 1e-5;
  Tensor y = F::batch_norm(x, rm, rv, w, b, /*training=*/true, 0.1, eps);
  const double s0 = 1 / std::sqrt(3.5 + eps), s1 = 1 / std::sqrt(4.0 + eps);
  check_values(y, {2 * (1 - 3) * s0 + 1, 0.5 * (0 - 2) * s1 - 1, 2 * (2 - 3) * s0 + 1,
                   0.5 * (0 - 2) * s1 - 1, 2 * (3 - 3) * s0 + 1, 0.5 * (4 - 2) * s1 - 1,
                   2 * (6 - 3) * s0 + 1, 0.5 * (4 - 2) * s1 - 1});
  // running = 0.9 * running + 0.1 * batch (unbiased variance).
  check_values(rm, {0.3, 0.2});
  check_values(rv, {0.9 + 0.1 * 14.0 / 3.0, 0.9 + 0.1 * 16.0 / 3.0});
  CHECK_FALSE(rm.requires_grad());
  // A second step blends again.
  F::batch_norm(x, rm, rv, w, b, true, 0.1, eps);
  check_values(rm, {0.9 * 0.3 + 0.3, 0.9 * 0.2 + 0.2});
  check_values(rv, {0.9 * (0.9 + 0.1 * 14.0 / 3.0) + 0.1 * 14.0 / 3.0,
                    0.9 * (0.9 + 0.1 * 16.0 / 3.0) + 0.1 * 16.0 / 3.0});
  // momentum 1: the running stats are the last batch's.
  F::batch_norm(x, rm, rv, {}, {}, true, 1.0, eps);
  check_values(rm, {3.0, 2.0});
  check_values(rv, {14.0 / 3.0, 16.0 / 3.0});
  // float32 buffers with a float64 input keep their dtype.
  Tensor rm32 = zeros({2}), rv32 = ones({2});
  F::batch_norm(x, rm32, rv32, {}, {}, true);
  CHECK(rm32.dtype() == kFloat32);
  CHECK(values(rm32)[0] == Approx(0.3).epsilon(1e-7));
  // Without running stats: batch statistics only.
  CHECK(allclose(F::batch_norm(x, {}, {}, w, b, true, 0.1, eps), y, 1e-14));
}

TEST_CASE("batch_norm: eval mode uses the running statistics") {
  Tensor x = tensor({{1.0, 0.0}, {2.0, 8.0}}, kFloat64);
  Tensor rm = tensor({0.5, 2.0}, kFloat64), rv = tensor({4.0, 0.25}, kFloat64);
  Tensor w = tensor({2.0, 0.5}, kFloat64), b = tensor({1.0, -1.0}, kFloat64);
  Tensor y = F::batch_norm(x, rm, rv, w, b, /*training=*/false, 0.1, 0.0);
  check_values(y, {2 * 0.5 / 2 + 1, 0.5 * -2 / 0.5 - 1, 2 * 1.5 / 2 + 1, 0.5 * 6 / 0.5 - 1});
  check_values(rm, {0.5, 2.0});  // untouched
  check_values(rv, {4.0, 0.25});
  // One sample is fine in eval mode; not in training.
  CHECK(F::batch_norm(x.slice(0, 0, 1), rm, rv).sizes() == IntArrayRef({1, 2}));
  EMBER_CHECK_THROWS(F::batch_norm(x.slice(0, 0, 1), rm, rv, {}, {}, true), ValueError,
                     "[batch_norm]", "more than 1 value per channel", "(1, 2)");
  EMBER_CHECK_THROWS(F::batch_norm(x, {}, {}, w, b, false), ValueError, "[batch_norm]",
                     "running_mean");
}

TEST_CASE("batch_norm: (N, C, L) and (N, C, H, W) normalize over every dim but C") {
  for (std::vector<int64_t> shape :
       {std::vector<int64_t>{3, 2, 4}, std::vector<int64_t>{2, 3, 2, 3}}) {
    INFO("shape " << IntArrayRef(shape));
    Tensor x = grad_input(shape, -2, 2, 61).detach();
    const int64_t C = shape[1];
    Tensor w = grad_input({C}, 0.5, 2, 62).detach(), b = grad_input({C}, -1, 1, 63).detach();
    Tensor rm = zeros({C}, kFloat64), rv = ones({C}, kFloat64);
    Tensor y = F::batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
    // The same as batch_norm of the (N * spatial, C) rows.
    std::vector<int64_t> perm{0};
    for (size_t d = 2; d < shape.size(); ++d) perm.push_back(static_cast<int64_t>(d));
    perm.push_back(1);
    Tensor rows = x.permute(perm).reshape({-1, C});
    Tensor rm2 = zeros({C}, kFloat64), rv2 = ones({C}, kFloat64);
    Tensor y2 = F::batch_norm(rows, rm2, rv2, w, b, true, 0.1, 1e-5);
    CHECK(allclose(y.permute(perm).reshape({-1, C}), y2, 1e-12, 1e-12));
    CHECK(allclose(rm, rm2, 1e-12, 1e-14));
    CHECK(allclose(rv, rv2, 1e-12, 1e-14));
    // Hand formula for the running variance of channel 0.
    Tensor c0 = rows.select(1, 0);
    CHECK(values(rv)[0] == Approx(0.9 + 0.1 * c0.var({}, 1).item<double>()).epsilon(1e-12));
    // Eval mode: (x - rm) / sqrt(rv + eps) * w + b, per channel.
    Tensor ye = F::batch_norm(x, rm, rv, w, b, false, 0.1, 1e-5);
    std::vector<int64_t> cs(shape.size(), 1);
    cs[1] = C;
    CHECK(allclose(ye, (x - rm.view(cs)) / sqrt(rv.view(cs) + 1e-5) * w.view(cs) + b.view(cs),
                   1e-12, 1e-12));
  }
}

TEST_CASE("batch_norm: float16 input computes in float32 and returns float16") {
  Tensor x = tensor({{1.0, 0.0}, {2.0, 0.0}, {3.0, 4.0}, {6.0, 4.0}}, kFloat16);
  Tensor rm = zeros({2}), rv = ones({2});
  Tensor y = F::batch_norm(x, rm, rv, {}, {}, true);
  CHECK(y.dtype() == kFloat16);
  CHECK(values(y)[6] == Approx(3.0 / std::sqrt(3.5)).epsilon(1e-3));
  CHECK(values(rm)[0] == Approx(0.3).epsilon(1e-6));
}

// ---- layer_norm / group_norm / rms_norm / normalize ----

TEST_CASE("layer_norm: hand values and multi-dim normalized_shape") {
  Tensor x = tensor({{1.0, 2.0, 3.0}, {-1.0, 1.0, 6.0}}, kFloat64);
  const double eps = 1e-5;
  // Row 0: mean 2, var 2/3. Row 1: mean 2, var (9 + 1 + 16) / 3 = 26/3.
  const double r0 = 1 / std::sqrt(2.0 / 3 + eps), r1 = 1 / std::sqrt(26.0 / 3 + eps);
  check_values(F::layer_norm(x, {3}), {-r0, 0.0, r0, -3 * r1, -r1, 4 * r1});
  Tensor w = tensor({1.0, 2.0, 3.0}, kFloat64), b = tensor({0.5, 0.0, -0.5}, kFloat64);
  check_values(F::layer_norm(x, {3}, w, b),
               {-r0 + 0.5, 0.0, 3 * r0 - 0.5, -3 * r1 + 0.5, -2 * r1, 12 * r1 - 0.5});
  // normalized_shape (2, 3) over the last two dims equals normalizing the flattened rows.
  Tensor x3 = grad_input({4, 2, 3}, -2, 2, 64).detach();
  Tensor w2 = grad_input({2, 3}, 0.5, 2, 65).detach();
  CHECK(allclose(F::layer_norm(x3, {2, 3}, w2).reshape({4, 6}),
                 F::layer_norm(x3.reshape({4, 6}), {6}) * w2.reshape({6}), 1e-12, 1e-12));
  // Composite reference with var(correction = 0).
  Tensor ref = (x3 - x3.mean({-1}, true)) / sqrt(x3.var({-1}, 0, true) + eps);
  CHECK(allclose(F::layer_norm(x3, {3}), ref, 1e-12, 1e-12));
  // float32 and bfloat16 results keep their dtype.
  CHECK(F::layer_norm(x.to(kFloat32), {3}).dtype() == kFloat32);
  Tensor hb = F::layer_norm(x.to(kBFloat16), {3});
  CHECK(hb.dtype() == kBFloat16);
  CHECK(values(hb)[2] == Approx(r0).epsilon(1e-2));
}

TEST_CASE("group_norm: per (sample, group) statistics, then per-channel affine") {
  // x (1, 4, 2) with 2 groups: group 0 = channels 0, 1 = (1, 3, 5, 7): mean 4, var 5;
  // group 1 = channels 2, 3 = (0, 0, 2, 2): mean 1, var 1.
  Tensor x = tensor({{{1.0, 3.0}, {5.0, 7.0}, {0.0, 0.0}, {2.0, 2.0}}}, kFloat64);
  Tensor w = tensor({1.0, 2.0, 3.0, 4.0}, kFloat64), b = tensor({0.0, 1.0, 0.0, -1.0}, kFloat64);
  const double s0 = 1 / std::sqrt(5.0), s1 = 1.0;
  check_values(F::group_norm(x, 2, w, b, 0.0), {-3 * s0, -1 * s0, 2 * s0 + 1, 2 * 3 * s0 + 1,
                                                -3 * s1, -3 * s1, 4 * s1 - 1, 4 * s1 - 1});
  // num_groups = 1 is layer_norm over (C, *); num_groups = C is instance norm.
  Tensor x4 = grad_input({3, 4, 2, 2}, -2, 2, 66).detach();
  CHECK(allclose(F::group_norm(x4, 1), F::layer_norm(x4, {4, 2, 2}), 1e-12, 1e-12));
  Tensor inst = (x4 - x4.mean({2, 3}, true)) / sqrt(x4.var({2, 3}, 0, true) + 1e-5);
  CHECK(allclose(F::group_norm(x4, 4), inst, 1e-12, 1e-12));
  CHECK(F::group_norm(x4.to(kFloat16), 2).dtype() == kFloat16);
}

TEST_CASE("rms_norm: x / sqrt(mean(x^2) + eps) * weight, eps defaults per dtype") {
  Tensor x = tensor({{1.0, 2.0, 3.0, 4.0}, {0.0, 0.0, 0.0, 0.0}}, kFloat64);
  const double e = 1e-6;
  const double r = 1 / std::sqrt(7.5 + e);
  Tensor w = tensor({1.0, 0.5, 2.0, -1.0}, kFloat64);
  check_values(F::rms_norm(x, {4}, w, e), {r, r, 6 * r, -4 * r, 0, 0, 0, 0});
  // Default eps: the machine epsilon of the compute dtype (float64 here, float32 otherwise).
  Tensor tiny = tensor({1e-9}, kFloat64);
  CHECK(values(F::rms_norm(tiny, {1}))[0] ==
        Approx(1e-9 / std::sqrt(1e-18 + std::numeric_limits<double>::epsilon())).epsilon(1e-12));
  Tensor tiny32 = tensor({1e-4f});
  const double want32 = 1e-4 / std::sqrt(1e-8 + std::numeric_limits<float>::epsilon());
  CHECK(values(F::rms_norm(tiny32, {1}))[0] == Approx(want32).epsilon(1e-5));
  CHECK(values(F::rms_norm(tiny32.to(kFloat16), {1}))[0] == Approx(want32).epsilon(1e-3));
  // Multi-dim normalized_shape.
  Tensor x3 = grad_input({2, 2, 3}, -2, 2, 67).detach();
  CHECK(allclose(F::rms_norm(x3, {2, 3}, {}, 1e-5).reshape({2, 6}),
                 F::rms_norm(x3.reshape({2, 6}), {6}, {}, 1e-5), 1e-12, 1e-12));
}

TEST_CASE("normalize: unit p-norm along dim, eps guards zero vectors") {
  Tensor x = tensor({{3.0, 4.0}, {0.0, 0.0}}, kFloat64).requires_grad_();
  Tensor y = F::normalize(x);
  check_values(y, {0.6, 0.8, 0.0, 0.0});
  y.sum().backward();
  for (double g : values(x.grad())) CHECK(std::isfinite(g));
  check_values(F::normalize(x.detach(), 1.0), {3.0 / 7, 4.0 / 7, 0, 0});
  check_values(F::normalize(x.detach(), 2.0, 0), {1.0, 1.0, 0.0, 0.0});
  check_values(F::normalize(tensor({1e-20, 0.0}, kFloat64), 2.0, 0), {1e-8, 0.0});  // / eps
  check_values(F::normalize(tensor({{3.0, -4.0}}, kFloat64), 2.0, -1), {0.6, -0.8});
}

TEST_CASE("normalization: non-contiguous inputs give bitwise the contiguous results") {
  Tensor x = grad_input({4, 3, 2, 2}, -2, 2, 68).detach();
  Tensor nc = x.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
  REQUIRE_FALSE(nc.is_contiguous());
  Tensor w = grad_input({3}, 0.5, 2, 69).detach(), b = grad_input({3}, -1, 1, 70).detach();
  Tensor rm = zeros({3}, kFloat64), rv = ones({3}, kFloat64);
  Tensor rm2 = zeros({3}, kFloat64), rv2 = ones({3}, kFloat64);
  CHECK(test::bitwise_equal(F::batch_norm(nc, rm, rv, w, b, true),
                            F::batch_norm(x, rm2, rv2, w, b, true)));
  CHECK(test::bitwise_equal(rm, rm2));
  CHECK(test::bitwise_equal(rv, rv2));
  CHECK(test::bitwise_equal(F::group_norm(nc, 3, w, b), F::group_norm(x, 3, w, b)));
  CHECK(test::bitwise_equal(F::layer_norm(test::non_contiguous(x), {2, 2}),
                            F::layer_norm(x, {2, 2})));
  CHECK(test::bitwise_equal(F::rms_norm(test::non_contiguous(x), {2}), F::rms_norm(x, {2})));
  CHECK(test::bitwise_equal(F::normalize(test::non_contiguous(x)), F::normalize(x)));
}

// ---- errors ----

TEST_CASE("normalization: errors name the function and the shapes") {
  Tensor x = zeros({2, 3});
  EMBER_CHECK_THROWS(F::batch_norm(zeros({3}), {}, {}, {}, {}, true), ShapeError, "[batch_norm]",
                     "(3,)");
  EMBER_CHECK_THROWS(F::batch_norm(x, zeros({2}), ones({2})), ShapeError, "[batch_norm]",
                     "running_mean", "(2,)", "(3,)", "(2, 3)");
  EMBER_CHECK_THROWS(F::batch_norm(x, {}, {}, ones({4}), {}, true), ShapeError, "[batch_norm]",
                     "weight", "(4,)");
  EMBER_CHECK_THROWS(F::batch_norm(tensor({{1, 2}, {3, 4}}), {}, {}, {}, {}, true), DTypeError,
                     "[batch_norm]", "int64");
  EMBER_CHECK_THROWS(F::layer_norm(x, {4}), ShapeError, "[layer_norm]", "(4,)", "(2, 3)");
  EMBER_CHECK_THROWS(F::layer_norm(x, {2, 2, 3}), ShapeError, "[layer_norm]", "(2, 2, 3)");
  EMBER_CHECK_THROWS(F::layer_norm(x, {3}, ones({2})), ShapeError, "[layer_norm]", "weight", "(2,)",
                     "(3,)");
  EMBER_CHECK_THROWS(F::group_norm(zeros({2, 6, 2}), 4), ShapeError, "[group_norm]", "6",
                     "(2, 6, 2)", "num_groups 4");
  EMBER_CHECK_THROWS(F::group_norm(zeros({2, 6}), 0), ValueError, "[group_norm]", "num_groups");
  EMBER_CHECK_THROWS(F::group_norm(zeros({2, 6}), 3, ones({3})), ShapeError, "[group_norm]",
                     "weight", "(3,)", "(6,)");
  EMBER_CHECK_THROWS(F::rms_norm(x, {2}), ShapeError, "[rms_norm]", "(2,)", "(2, 3)");
  EMBER_CHECK_THROWS(F::rms_norm(x, {3}, ones({3, 1})), ShapeError, "[rms_norm]", "(3, 1)");
  EMBER_CHECK_THROWS(F::normalize(x, 2.0, 2), IndexError, "[normalize]", "dim 2", "(2, 3)");
  EMBER_CHECK_THROWS(F::normalize(x, 0.0), ValueError, "[normalize]", "p");
}

// ---- gradients ----

namespace {

std::vector<test::GradCase> normalization_cases() {
  std::vector<test::GradCase> c;
  auto bn_train = [](const Inputs& x) {
    // Running stats are updated on every call; the output does not depend on them in training.
    Tensor rm = zeros({x[0].size(1)}, kFloat64), rv = ones({x[0].size(1)}, kFloat64);
    return F::batch_norm(x[0], rm, rv, x[1], x[2], true, 0.1, 1e-5);
  };
  c.push_back({"batch_norm training (N, C)",
               bn_train,
               {grad_input({4, 3}), grad_input({3}, 0.5, 2), grad_input({3})}});
  c.push_back({"batch_norm training (N, C, L)",
               bn_train,
               {grad_input({2, 2, 3}), grad_input({2}, 0.5, 2), grad_input({2})}});
  c.push_back({"batch_norm training (N, C, H, W)",
               bn_train,
               {grad_input({2, 2, 2, 2}), grad_input({2}, 0.5, 2), grad_input({2})}});
  c.push_back({"batch_norm training, no affine",
               [](const Inputs& x) { return F::batch_norm(x[0], {}, {}, {}, {}, true); },
               {grad_input({3, 2, 2})}});
  c.push_back({"batch_norm eval (input, running stats, weight, bias)",
               [](const Inputs& x) {
                 return F::batch_norm(x[0], x[1], x[2], x[3], x[4], false, 0.1, 1e-5);
               },
               {grad_input({3, 2, 2}), grad_input({2}), grad_input({2}, 0.5, 2),
                grad_input({2}, 0.5, 2), grad_input({2})}});
  c.push_back({"layer_norm",
               [](const Inputs& x) { return F::layer_norm(x[0], {3}, x[1], x[2]); },
               {grad_input({2, 3}), grad_input({3}, 0.5, 2), grad_input({3})}});
  c.push_back({"layer_norm (2, 3) shape",
               [](const Inputs& x) {
                 return F::layer_norm(x[0], {2, 3}, x[1], {});
               },
               {grad_input({2, 2, 3}), grad_input({2, 3}, 0.5, 2)}});
  c.push_back({"group_norm",
               [](const Inputs& x) { return F::group_norm(x[0], 2, x[1], x[2]); },
               {grad_input({2, 4, 3}), grad_input({4}, 0.5, 2), grad_input({4})}});
  c.push_back({"group_norm (N, C, H, W), 1 group",
               [](const Inputs& x) { return F::group_norm(x[0], 1); },
               {grad_input({2, 2, 2, 2})}});
  c.push_back({"rms_norm",
               [](const Inputs& x) { return F::rms_norm(x[0], {4}, x[1], 1e-6); },
               {grad_input({2, 4}), grad_input({4}, 0.5, 2)}});
  c.push_back({"rms_norm default eps, (2, 2) shape",
               [](const Inputs& x) {
                 return F::rms_norm(x[0], {2, 2});
               },
               {grad_input({3, 2, 2})}});
  c.push_back(
      {"normalize p 2", [](const Inputs& x) { return F::normalize(x[0]); }, {grad_input({3, 4})}});
  c.push_back({"normalize p 3 dim 0",
               [](const Inputs& x) { return F::normalize(x[0], 3.0, 0); },
               {grad_input({3, 2}, 0.2, 1.0)}});
  return c;
}

}  // namespace

TEST_CASE("normalization: grads match finite differences (gradcheck and gradgradcheck)") {
  const std::vector<test::GradCase> table = normalization_cases();
  test::check_grad_table(table);
  std::cout << "[test_normalization] gradcheck + gradgradcheck over " << table.size()
            << " cases of 5 functionals\n";
}

TEST_CASE("batch_norm: the running-stat update records no graph") {
  Tensor x = grad_input({4, 2});
  Tensor rm = zeros({2}, kFloat64), rv = ones({2}, kFloat64);
  Tensor y = F::batch_norm(x, rm, rv, {}, {}, true);
  CHECK(y.requires_grad());
  CHECK_FALSE(rm.requires_grad());
  CHECK_FALSE(rv.requires_grad());
  CHECK(rm.grad_fn() == nullptr);
  y.sum().backward();
  // The gradient of sum(batch_norm(x)) with respect to x is 0 (each column sums to 0).
  for (double g : values(x.grad())) CHECK(g == Approx(0.0).margin(1e-12));
}
