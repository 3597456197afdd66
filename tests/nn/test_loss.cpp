// Losses (ember::nn::functional): hand-computed values for every loss and reduction, PyTorch's
// weight / ignore_index / label-smoothing rules, probability targets, the numerical-stability
// anchors, error messages, and gradcheck + gradgradcheck through every loss.
#include <cmath>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "ember/nn/functional/loss.hpp"
#include "gradcheck.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using Catch::Detail::Approx;
using test::grad_input;
using test::values;

namespace {

using Inputs = std::vector<Tensor>;

double item(const Tensor& t) { return t.item<double>(); }

/// Checks each element of t against want (relative 1e-12 unless given, absolute 1e-15).
void check_values(const Tensor& t, const std::vector<double>& want, double rel = 1e-12) {
  const std::vector<double> got = values(t);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(got[i] == Approx(want[i]).epsilon(rel).margin(1e-15));
  }
}

/// Row-wise log-softmax of a small table, computed by hand.
std::vector<std::vector<double>> log_softmax_rows(const std::vector<std::vector<double>>& x) {
  std::vector<std::vector<double>> out;
  for (const auto& row : x) {
    double m = row[0];
    for (double v : row) m = std::max(m, v);
    double s = 0;
    for (double v : row) s += std::exp(v - m);
    std::vector<double> r;
    for (double v : row) r.push_back(v - m - std::log(s));
    out.push_back(r);
  }
  return out;
}

const std::vector<std::vector<double>> kLogits = {{1.0, 2.0, 3.0}, {1.0, 0.0, -1.0}};
Tensor logits(DType dt = kFloat64) { return tensor({{1.0, 2.0, 3.0}, {1.0, 0.0, -1.0}}, dt); }

}  // namespace

// ---- cross_entropy with class indices ----

TEST_CASE("cross_entropy: a 2x3 case by hand, every reduction") {
  // Row 0: lse = 3 + log(1 + e^-1 + e^-2), target 2 -> lse - 3 = 0.40760596.
  // Row 1: lse = 1 + log(1 + e^-1 + e^-2), target 1 -> lse - 0 = 1.40760596.
  const double c = std::log(1.0 + std::exp(-1.0) + std::exp(-2.0));
  const double l0 = c, l1 = 1.0 + c;
  CHECK(l0 == Approx(0.40760596).epsilon(1e-7));  // the familiar PyTorch value
  Tensor t = tensor({2, 1});
  CHECK(item(F::cross_entropy(logits(), t)) == Approx((l0 + l1) / 2).epsilon(1e-12));
  CHECK(item(F::cross_entropy(logits(), t, {}, -100, "sum")) == Approx(l0 + l1).epsilon(1e-12));
  Tensor none = F::cross_entropy(logits(), t, {}, -100, "none");
  REQUIRE(none.sizes() == IntArrayRef({2}));
  CHECK(values(none)[0] == Approx(l0).epsilon(1e-12));
  CHECK(values(none)[1] == Approx(l1).epsilon(1e-12));
  // float32 gives the same to float32 rounding, in float32.
  Tensor f = F::cross_entropy(logits(kFloat32), t);
  CHECK(f.dtype() == kFloat32);
  CHECK(item(f) == Approx((l0 + l1) / 2).epsilon(1e-6));
  // int32 class indices are accepted too.
  CHECK(item(F::cross_entropy(logits(), t.to(kInt32))) == Approx((l0 + l1) / 2).epsilon(1e-12));
}

TEST_CASE("cross_entropy: class weights and ignore_index follow PyTorch's mean rule") {
  const auto lp = log_softmax_rows(kLogits);
  const std::vector<double> w = {0.2, 0.3, 0.5};
  Tensor weight = tensor(w, kFloat64);
  Tensor t = tensor({2, 1});
  const double a = -lp[0][2] * w[2], b = -lp[1][1] * w[1];
  // mean divides by the sum of the weights of the targets, not by N.
  CHECK(item(F::cross_entropy(logits(), t, weight)) == Approx((a + b) / (w[2] + w[1])));
  CHECK(item(F::cross_entropy(logits(), t, weight, -100, "sum")) == Approx(a + b));
  check_values(F::cross_entropy(logits(), t, weight, -100, "none"), {a, b});

  // The default ignore_index -100: the ignored row adds nothing and is not counted.
  Tensor ti = tensor({2, -100});
  CHECK(item(F::cross_entropy(logits(), ti)) == Approx(-lp[0][2]));
  CHECK(item(F::cross_entropy(logits(), ti, weight)) == Approx(a / w[2]));
  check_values(F::cross_entropy(logits(), ti, {}, -100, "none"), {-lp[0][2], 0.0});
  // Any ignore_index, including a valid class.
  CHECK(item(F::cross_entropy(logits(), t, {}, 1)) == Approx(-lp[0][2]));
  CHECK(item(F::cross_entropy(logits(), t, weight, 1, "sum")) == Approx(a));
  // Everything ignored: 0 / 0 in "mean", as in PyTorch; "sum" is 0.
  Tensor all_ignored = tensor({-100, -100});
  CHECK(std::isnan(item(F::cross_entropy(logits(), all_ignored))));
  CHECK(item(F::cross_entropy(logits(), all_ignored, {}, -100, "sum")) == 0.0);
  // An ignored target may sit at a -inf log-probability without producing NaN.
  Tensor x = tensor({{0.0, -std::numeric_limits<double>::infinity()}, {1.0, 2.0}}, kFloat64);
  Tensor r = F::cross_entropy(x, tensor({1, 0}), {}, 1);
  CHECK(std::isfinite(item(r)));
}

TEST_CASE("cross_entropy: label smoothing, with and without weights and ignore_index") {
  const auto lp = log_softmax_rows(kLogits);
  const double eps = 0.1, C = 3;
  Tensor t = tensor({2, 1});
  // PyTorch: (1 - eps) * nll + (eps / C) * sum_c w_c (-log p_c), "mean" over sum of w[target].
  auto smooth = [&](int n, const std::vector<double>& w) {
    double s = 0;
    for (int c = 0; c < 3; ++c) s += -lp[n][c] * w[c];
    return s;
  };
  const std::vector<double> ones = {1, 1, 1}, w = {0.2, 0.3, 0.5};
  const double u0 = (1 - eps) * -lp[0][2] + eps / C * smooth(0, ones);
  const double u1 = (1 - eps) * -lp[1][1] + eps / C * smooth(1, ones);
  CHECK(item(F::cross_entropy(logits(), t, {}, -100, "mean", eps)) == Approx((u0 + u1) / 2));
  check_values(F::cross_entropy(logits(), t, {}, -100, "none", eps), {u0, u1});
  const double w0 = (1 - eps) * w[2] * -lp[0][2] + eps / C * smooth(0, w);
  const double w1 = (1 - eps) * w[1] * -lp[1][1] + eps / C * smooth(1, w);
  Tensor weight = tensor(w, kFloat64);
  CHECK(item(F::cross_entropy(logits(), t, weight, -100, "mean", eps)) ==
        Approx((w0 + w1) / (w[2] + w[1])));
  CHECK(item(F::cross_entropy(logits(), t, weight, -100, "sum", eps)) == Approx(w0 + w1));
  // The ignored target's smoothing term is dropped too.
  CHECK(item(F::cross_entropy(logits(), tensor({2, -100}), weight, -100, "mean", eps)) ==
        Approx(w0 / w[2]));
  // label_smoothing = 1: only the uniform part.
  CHECK(item(F::cross_entropy(logits(), t, {}, -100, "sum", 1.0)) ==
        Approx((smooth(0, ones) + smooth(1, ones)) / C));
}

TEST_CASE("cross_entropy: class-probability targets") {
  const auto lp = log_softmax_rows(kLogits);
  const std::vector<std::vector<double>> y = {{0.25, 0.25, 0.5}, {1.0, 0.0, 0.0}};
  Tensor target = tensor({{0.25, 0.25, 0.5}, {1.0, 0.0, 0.0}}, kFloat64);
  auto row = [&](int n, const std::vector<double>& w, double eps) {
    double s = 0;
    for (int c = 0; c < 3; ++c) s += -lp[n][c] * w[c] * (y[n][c] * (1 - eps) + eps / 3);
    return s;
  };
  const std::vector<double> ones = {1, 1, 1}, w = {0.2, 0.3, 0.5};
  CHECK(item(F::cross_entropy(logits(), target)) ==
        Approx((row(0, ones, 0) + row(1, ones, 0)) / 2));
  CHECK(item(F::cross_entropy(logits(), target, {}, -100, "sum")) ==
        Approx(row(0, ones, 0) + row(1, ones, 0)));
  // With weights "mean" still divides by N (PyTorch), not by the weights.
  Tensor weight = tensor(w, kFloat64);
  CHECK(item(F::cross_entropy(logits(), target, weight)) ==
        Approx((row(0, w, 0) + row(1, w, 0)) / 2));
  check_values(F::cross_entropy(logits(), target, weight, -100, "none", 0.2),
               {row(0, w, 0.2), row(1, w, 0.2)});
  // A one-hot probability target equals the class-index loss.
  Tensor onehot = tensor({{0.0, 0.0, 1.0}, {0.0, 1.0, 0.0}}, kFloat64);
  CHECK(item(F::cross_entropy(logits(), onehot)) ==
        Approx(item(F::cross_entropy(logits(), tensor({2, 1})))));
}

TEST_CASE("cross_entropy: (N, C, d1, d2) inputs and unbatched (C,) inputs") {
  // (2, 3, 2, 2) logits against the same losses computed on (8, 3) rows.
  Tensor x = grad_input({2, 3, 2, 2}, -2, 2, 41).detach();
  Tensor t = tensor({{{0, 2}, {1, 1}}, {{2, 0}, {0, 1}}});
  Tensor rows = x.permute({0, 2, 3, 1}).reshape({8, 3});
  Tensor w = tensor({0.5, 1.0, 2.0}, kFloat64);
  Tensor none = F::cross_entropy(x, t, w, 1, "none", 0.05);
  REQUIRE(none.sizes() == IntArrayRef({2, 2, 2}));
  CHECK(allclose(none.flatten(), F::cross_entropy(rows, t.flatten(), w, 1, "none", 0.05), 1e-12));
  CHECK(item(F::cross_entropy(x, t, w, 1, "mean", 0.05)) ==
        Approx(item(F::cross_entropy(rows, t.flatten(), w, 1, "mean", 0.05))).epsilon(1e-12));
  // Probability targets with spatial dims: the class dim is 1.
  Tensor p = grad_input({2, 3, 2}, 0, 1, 42).detach().softmax(1);
  Tensor xs = grad_input({2, 3, 2}, -1, 1, 43).detach();
  CHECK(allclose(F::cross_entropy(xs, p, {}, -100, "none"), -(xs.log_softmax(1) * p).sum({1}),
                 1e-12));

  // Unbatched: input (C,), target () -> "none" gives a 0-d loss.
  Tensor u = tensor({1.0, 2.0, 3.0}, kFloat64);
  Tensor lu = F::cross_entropy(u, tensor(int64_t{2}), {}, -100, "none");
  CHECK(lu.dim() == 0);
  CHECK(item(lu) == Approx(std::log(1.0 + std::exp(-1.0) + std::exp(-2.0))));
  CHECK(std::isnan(item(F::cross_entropy(u, tensor(int64_t{-100})))));  // all ignored: 0 / 0
  CHECK(item(F::cross_entropy(u, tensor({0.0, 0.0, 1.0}, kFloat64))) == Approx(item(lu)));
}

TEST_CASE("cross_entropy: equals logsumexp - x[target], non-contiguous inputs, float16") {
  Tensor x = grad_input({5, 4}, -3, 3, 47).detach();
  Tensor t = tensor({3, 0, 1, 1, 2});
  Tensor ref = logsumexp(x, {1}) - gather(x, 1, t.unsqueeze(1)).squeeze(1);
  CHECK(allclose(F::cross_entropy(x, t, {}, -100, "none"), ref, 1e-14, 1e-14));
  // A transposed (non-contiguous) input and a strided target give bitwise the same losses.
  Tensor xt = x.t().contiguous().t();
  REQUIRE_FALSE(xt.is_contiguous());
  Tensor ts = tensor({3, 9, 0, 9, 1, 9, 1, 9, 2, 9}).slice(0, 0, std::nullopt, 2);
  REQUIRE_FALSE(ts.is_contiguous());
  for (const char* red : {"none", "mean", "sum"}) {
    INFO(red);
    CHECK(test::bitwise_equal(F::cross_entropy(xt, ts, {}, -100, red, 0.1),
                              F::cross_entropy(x, t, {}, -100, red, 0.1)));
    CHECK(
        test::bitwise_equal(F::mse_loss(xt, test::non_contiguous(x), red), F::mse_loss(x, x, red)));
  }
  // float16 logits: the loss is float16 and close to the float64 value.
  Tensor h = F::cross_entropy(x.to(kFloat16), t);
  CHECK(h.dtype() == kFloat16);
  CHECK(item(h) == Approx(item(F::cross_entropy(x, t))).epsilon(5e-3));
}

// ---- numerical stability anchors ----

TEST_CASE("cross_entropy: two equal logits give ln 2 up to 1e38, float32 and float64") {
  for (DType dt : {kFloat32, kFloat64}) {
    for (double mag : {0.0, 1.0, 1e4, 1e10, 1e20, 1e30, 1e38, -1e38}) {
      INFO(dt << " logits " << mag);
      Tensor x = full({1, 2}, mag, dt);
      Tensor l = F::cross_entropy(x, tensor({1}));
      CHECK(l.dtype() == dt);
      CHECK(item(l) == Approx(std::log(2.0)).epsilon(dt == kFloat32 ? 1e-7 : 1e-15));
      Tensor lp = F::cross_entropy(x, tensor({{0.5, 0.5}}, dt));  // probability target
      CHECK(item(lp) == Approx(std::log(2.0)).epsilon(dt == kFloat32 ? 1e-7 : 1e-15));
    }
  }
}

TEST_CASE("cross_entropy: adding 1e8 to every logit leaves the float64 loss unchanged") {
  // Dyadic logits stay exact after the shift, so the loss must be bitwise the same.
  Tensor x =
      tensor({{0.5, -1.25, 2.0, 0.0}, {3.0, 0.0, -0.75, 1.5}, {-2.5, 0.25, 0.125, 4.0}}, kFloat64);
  Tensor t = tensor({1, 0, 3});
  for (const char* red : {"none", "mean", "sum"}) {
    INFO(red);
    Tensor a = F::cross_entropy(x, t, {}, -100, red);
    Tensor b = F::cross_entropy(x + 1e8, t, {}, -100, red);
    CHECK(test::bitwise_equal(a, b));
    CHECK(test::bitwise_equal(F::cross_entropy(x, t, {}, -100, red, 0.1),
                              F::cross_entropy(x + 1e8, t, {}, -100, red, 0.1)));
  }
  // Random logits: the shift rounds each logit by at most 2^-27 (ulp(1e8) / 2), so the loss moves
  // by at most about that.
  Tensor r = grad_input({4, 5}, -3, 3, 44).detach();
  Tensor tr = tensor({0, 4, 2, 1});
  CHECK(std::abs(item(F::cross_entropy(r, tr)) - item(F::cross_entropy(r + 1e8, tr))) < 1e-7);
}

TEST_CASE("cross_entropy: gradients stay finite and exact for logits up to 1e30") {
  for (DType dt : {kFloat32, kFloat64}) {
    for (double mag : {1.0, 1e10, 1e30}) {
      INFO(dt << " magnitude " << mag);
      Tensor x = tensor({{mag, -mag, 0.0}, {0.0, mag, mag}}, dt).requires_grad_();
      F::cross_entropy(x, tensor({1, 2})).backward();
      std::vector<double> g = values(x.grad());
      for (double v : g) CHECK(std::isfinite(v));
      if (mag >= 1e10) {
        // softmax is one-hot at the max (shared by ties): grad = (softmax - onehot) / N.
        const std::vector<double> want = {0.5, -0.5, 0.0, 0.0, 0.25, -0.25};
        for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == Approx(want[i]).margin(1e-7));
      }
    }
  }
  // Equal huge logits: the gradient is (1/C - onehot) / N.
  Tensor x = full({1, 2}, 1e38, kFloat32).requires_grad_();
  F::cross_entropy(x, tensor({0})).backward();
  CHECK(values(x.grad()) == std::vector<double>{-0.5, 0.5});
}

// ---- nll_loss ----

TEST_CASE("nll_loss: -input[i, target_i] with weights and ignore_index") {
  Tensor lp = tensor({{-0.5, -1.0, -2.0}, {-3.0, -0.25, -1.5}, {-1.0, -1.0, -1.0}}, kFloat64);
  Tensor t = tensor({0, 2, 1});
  CHECK(item(F::nll_loss(lp, t)) == Approx((0.5 + 1.5 + 1.0) / 3));
  CHECK(item(F::nll_loss(lp, t, {}, -100, "sum")) == Approx(3.0));
  CHECK(values(F::nll_loss(lp, t, {}, -100, "none")) == std::vector<double>{0.5, 1.5, 1.0});
  Tensor w = tensor({2.0, 1.0, 4.0}, kFloat64);
  // weights 2, 4, 1: (2 * 0.5 + 4 * 1.5 + 1 * 1.0) / 7
  CHECK(item(F::nll_loss(lp, t, w)) == Approx(8.0 / 7.0));
  CHECK(item(F::nll_loss(lp, t, w, 2)) == Approx(2.0 / 3.0));  // ignore class 2
  CHECK(values(F::nll_loss(lp, t, w, 2, "none")) == std::vector<double>{1.0, 0.0, 1.0});
  // Unbatched.
  CHECK(item(F::nll_loss(lp[1], tensor(int64_t{0}))) == 3.0);
  // cross_entropy == nll_loss(log_softmax).
  Tensor x = logits();
  CHECK(item(F::cross_entropy(x, tensor({0, 2}), w)) ==
        Approx(item(F::nll_loss(x.log_softmax(1), tensor({0, 2}), w))).epsilon(1e-14));
}

// ---- regression losses ----

TEST_CASE("mse_loss, l1_loss: hand values for every reduction") {
  Tensor x = tensor({1.0, 2.0, 3.0}, kFloat64), y = tensor({1.5, 2.0, 1.0}, kFloat64);
  // d = (-0.5, 0, 2)
  CHECK(values(F::mse_loss(x, y, "none")) == std::vector<double>{0.25, 0.0, 4.0});
  CHECK(item(F::mse_loss(x, y)) == Approx(4.25 / 3));
  CHECK(item(F::mse_loss(x, y, "sum")) == 4.25);
  CHECK(values(F::l1_loss(x, y, "none")) == std::vector<double>{0.5, 0.0, 2.0});
  CHECK(item(F::l1_loss(x, y)) == Approx(2.5 / 3));
  CHECK(item(F::l1_loss(x, y, "sum")) == 2.5);
  // Broadcasting as in PyTorch: (2, 1) against (3,) gives (2, 3).
  CHECK(F::mse_loss(zeros({2, 1}, kFloat64), y, "none").sizes() == IntArrayRef({2, 3}));
  CHECK(F::mse_loss(tensor({1.f, 2.f}), tensor({0.f, 0.f})).dtype() == kFloat32);
}

TEST_CASE("smooth_l1_loss and huber_loss: both branches and the beta / delta relation") {
  Tensor x = tensor({1.0, 2.0, 3.0, -1.0}, kFloat64), y = tensor({1.5, 2.0, 1.0, 0.0}, kFloat64);
  // d = (-0.5, 0, 2, -1)
  CHECK(values(F::smooth_l1_loss(x, y, "none")) == std::vector<double>{0.125, 0.0, 1.5, 0.5});
  CHECK(item(F::smooth_l1_loss(x, y)) == Approx(2.125 / 4));
  CHECK(values(F::smooth_l1_loss(x, y, "none", 0.25)) ==
        std::vector<double>{0.375, 0.0, 1.875, 0.875});
  CHECK(values(F::smooth_l1_loss(x, y, "none", 4.0)) ==
        std::vector<double>{0.03125, 0.0, 0.5, 0.125});
  CHECK(values(F::smooth_l1_loss(x, y, "none", 0.0)) == values(F::l1_loss(x, y, "none")));
  CHECK(values(F::huber_loss(x, y, "none")) == std::vector<double>{0.125, 0.0, 1.5, 0.5});
  CHECK(values(F::huber_loss(x, y, "none", 0.25)) ==
        std::vector<double>{0.09375, 0.0, 0.46875, 0.21875});
  CHECK(item(F::huber_loss(x, y, "sum", 0.25)) == Approx(0.78125));
  // huber(delta) = delta * smooth_l1(beta = delta).
  Tensor a = grad_input({10}, -3, 3, 45).detach(), b = grad_input({10}, -3, 3, 46).detach();
  CHECK(allclose(F::huber_loss(a, b, "none", 0.7), F::smooth_l1_loss(a, b, "none", 0.7) * 0.7,
                 1e-14));
  // The gradient of smooth l1 at d = 0 is 0; beta = 0 has finite gradients.
  Tensor z = tensor({0.0, 1.0}, kFloat64).requires_grad_();
  F::smooth_l1_loss(z, zeros({2}, kFloat64), "sum", 0.0).backward();
  CHECK(values(z.grad()) == std::vector<double>{0.0, 1.0});
}

// ---- binary cross-entropy ----

TEST_CASE("binary_cross_entropy: hand values, weights, and the -100 log clamp") {
  Tensor x = tensor({0.8, 0.3, 0.0, 1.0}, kFloat64).requires_grad_();
  Tensor y = tensor({1.0, 0.0, 1.0, 1.0}, kFloat64);
  // -log(0.8), -log(0.7), -max(log 0, -100) = 100, and 0 (the clamped log(1 - 1) has weight 0).
  const std::vector<double> want = {-std::log(0.8), -std::log(0.7), 100.0, 0.0};
  Tensor none = F::binary_cross_entropy(x, y, {}, "none");
  check_values(none, {want[0], want[1], 100.0, 0.0});
  CHECK(item(F::binary_cross_entropy(x, y)) == Approx((want[0] + want[1] + 100.0) / 4));
  Tensor w = tensor({1.0, 2.0, 0.5, 1.0}, kFloat64);
  CHECK(item(F::binary_cross_entropy(x, y, w, "sum")) == Approx(want[0] + 2 * want[1] + 50.0));
  // The gradient is finite at 0 and 1 and matches (x - y) / (x (1 - x)) inside.
  F::binary_cross_entropy(x, y, {}, "sum").backward();
  std::vector<double> g = values(x.grad());
  for (double v : g) CHECK(std::isfinite(v));
  CHECK(g[0] == Approx((0.8 - 1.0) / (0.8 * 0.2)));
  CHECK(g[1] == Approx(0.3 / (0.3 * 0.7)));
  // Soft targets.
  Tensor xs = tensor({0.25f}), ys = tensor({0.5f});
  CHECK(item(F::binary_cross_entropy(xs, ys)) ==
        Approx(-(0.5 * std::log(0.25) + 0.5 * std::log(0.75))).epsilon(1e-6));
}

TEST_CASE("binary_cross_entropy_with_logits: stable form, pos_weight, gradient at 0") {
  Tensor x = tensor({2.0, -1.0, 0.0, 3.5}, kFloat64), y = tensor({1.0, 0.0, 0.5, 0.25}, kFloat64);
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  auto direct = [&](double xv, double yv, double pw) {
    return -(pw * yv * std::log(sig(xv)) + (1 - yv) * std::log(1 - sig(xv)));
  };
  std::vector<double> xv = values(x), yv = values(y);
  Tensor none = F::binary_cross_entropy_with_logits(x, y, {}, "none");
  for (size_t i = 0; i < 4; ++i) CHECK(values(none)[i] == Approx(direct(xv[i], yv[i], 1.0)));
  CHECK(values(none)[2] == Approx(std::log(2.0)));
  // It equals binary_cross_entropy(sigmoid(x)).
  CHECK(item(F::binary_cross_entropy_with_logits(x, y)) ==
        Approx(item(F::binary_cross_entropy(sigmoid(x), y))).epsilon(1e-12));
  // pos_weight (C,) broadcasts along the last dim; weight multiplies.
  Tensor pw = tensor({3.0, 0.5, 2.0, 1.0}, kFloat64);
  Tensor w = tensor({1.0, 2.0, 1.0, 0.5}, kFloat64);
  Tensor lw = F::binary_cross_entropy_with_logits(x, y, w, "none", pw);
  std::vector<double> pwv = values(pw), wv = values(w);
  for (size_t i = 0; i < 4; ++i)
    CHECK(values(lw)[i] == Approx(wv[i] * direct(xv[i], yv[i], pwv[i])));
  Tensor x2 = x.reshape({1, 4}).expand({3, 4}), y2 = y.reshape({1, 4}).expand({3, 4});
  CHECK(item(F::binary_cross_entropy_with_logits(x2, y2, {}, "sum", pw)) ==
        Approx(3 * item(F::binary_cross_entropy_with_logits(x, y, {}, "sum", pw))));

  // At x = 0 the gradient is sigmoid(0) - y = 0.5 - y (not -y from the kinks of |x| and max).
  Tensor z = zeros({3}, kFloat64).requires_grad_();
  Tensor t = tensor({0.0, 1.0, 0.25}, kFloat64);
  F::binary_cross_entropy_with_logits(z, t, {}, "sum").backward();
  CHECK(values(z.grad()) == std::vector<double>{0.5, -0.5, 0.25});
  Tensor z2 = zeros({3}, kFloat64).requires_grad_();
  F::binary_cross_entropy_with_logits(z2, t, {}, "sum", full({3}, 3.0, kFloat64)).backward();
  // d/dx at 0 with pos_weight p: 0.5 ((1 - y) - p y).
  check_values(z2.grad(), {0.5, -1.5, 0.5 * (0.75 - 0.75)});
}

TEST_CASE("binary_cross_entropy_with_logits: finite and accurate for huge and tiny losses") {
  for (DType dt : {kFloat32, kFloat64}) {
    for (double mag : {1e10, 1e30, 1e38}) {
      INFO(dt << " " << mag);
      Tensor x = tensor({mag, -mag, mag, -mag}, dt).requires_grad_();
      Tensor y = tensor({1.0, 0.0, 0.0, 1.0}, dt);
      Tensor l = F::binary_cross_entropy_with_logits(x, y, {}, "none");
      std::vector<double> v = values(l);
      CHECK(v[0] == 0.0);
      CHECK(v[1] == 0.0);
      CHECK(v[2] == Approx(mag));
      CHECK(v[3] == Approx(mag));
      l.sum().backward();
      CHECK(values(x.grad()) == std::vector<double>{0.0, 0.0, 1.0, -1.0});
      Tensor xp = tensor({mag, -mag}, dt).requires_grad_();
      F::binary_cross_entropy_with_logits(xp, tensor({0.0, 1.0}, dt), {}, "sum", tensor({2.0}, dt))
          .backward();
      for (double g : values(xp.grad())) CHECK(std::isfinite(g));
    }
  }
  // A tiny loss keeps its relative accuracy: log1p(e^-50) = 1.9287498479639178e-22.
  Tensor x = tensor({-50.0, 50.0}, kFloat64);
  std::vector<double> v =
      values(F::binary_cross_entropy_with_logits(x, tensor({0.0, 1.0}, kFloat64), {}, "none"));
  CHECK(v[0] == Approx(std::log1p(std::exp(-50.0))).epsilon(1e-14));
  CHECK(v[1] == Approx(std::log1p(std::exp(-50.0))).epsilon(1e-14));
}

// ---- kl_div ----

TEST_CASE("kl_div: pointwise, 0 log 0 = 0, batchmean and log_target") {
  Tensor p = tensor({{0.5, 0.5, 0.0}, {0.25, 0.25, 0.5}}, kFloat64);
  Tensor q = tensor({{0.25, 0.5, 0.25}, {0.5, 0.25, 0.25}}, kFloat64);
  Tensor lq = log(q);
  const double ln2 = std::log(2.0);
  // Row 0: 0.5 ln 2 + 0 + 0; row 1: 0.25 ln(0.5) + 0 + 0.5 ln 2 = 0.25 ln 2.
  Tensor none = F::kl_div(lq, p, "none");
  check_values(none, {0.5 * ln2, 0.0, 0.0, -0.25 * ln2, 0.0, 0.5 * ln2});
  CHECK(item(F::kl_div(lq, p, "sum")) == Approx(0.75 * ln2));
  CHECK(item(F::kl_div(lq, p, "batchmean")) == Approx(0.75 * ln2 / 2));
  CHECK(item(F::kl_div(lq, p)) == Approx(0.75 * ln2 / 6));
  // log_target: target given as log p (p > 0 here).
  Tensor p1 = tensor({{0.5, 0.25, 0.25}}, kFloat64);
  Tensor q1 = tensor({{0.25, 0.25, 0.5}}, kFloat64);
  CHECK(item(F::kl_div(log(q1), log(p1), "sum", true)) ==
        Approx(item(F::kl_div(log(q1), p1, "sum"))).epsilon(1e-14));
  CHECK(item(F::kl_div(log(q1), log(p1), "batchmean", true)) == Approx(0.25 * ln2));
  // The gradient with respect to the target is finite where the target is 0.
  Tensor pt = p.clone().requires_grad_();
  F::kl_div(lq, pt, "sum").backward();
  for (double g : values(pt.grad())) CHECK(std::isfinite(g));
}

// ---- errors ----

TEST_CASE("losses: errors name the loss, the shapes and the bad value") {
  Tensor x = logits();
  EMBER_CHECK_THROWS(F::cross_entropy(x, tensor({0, 1}), {}, -100, "avg"), ValueError,
                     "[cross_entropy]", "\"avg\"");
  EMBER_CHECK_THROWS(F::mse_loss(x, x, "batchmean"), ValueError, "[mse_loss]", "batchmean");
  EMBER_CHECK_THROWS(F::cross_entropy(x, tensor({0, 1, 2})), ShapeError, "[cross_entropy]",
                     "(2, 3)", "(3,)", "(2,)");
  EMBER_CHECK_THROWS(F::cross_entropy(x, tensor({0, 3})), IndexError, "[cross_entropy]", "target 3",
                     "3 classes");
  EMBER_CHECK_THROWS(F::nll_loss(x, tensor({-1, 0})), IndexError, "[nll_loss]", "target -1");
  EMBER_CHECK_THROWS(F::cross_entropy(x, zeros({2}, kFloat64)), ShapeError, "[cross_entropy]",
                     "probability target", "(2,)", "(2, 3)");
  EMBER_CHECK_THROWS(F::nll_loss(x, zeros({2}, kFloat64)), DTypeError, "[nll_loss]", "float64");
  EMBER_CHECK_THROWS(F::cross_entropy(tensor({{1, 2}}), tensor({0})), DTypeError, "[cross_entropy]",
                     "int64");
  EMBER_CHECK_THROWS(F::cross_entropy(x, tensor({0, 1}), ones({2}, kFloat64)), ShapeError,
                     "[cross_entropy]", "weight", "(2,)", "(3,)");
  EMBER_CHECK_THROWS(F::cross_entropy(x, tensor({0, 1}), {}, -100, "mean", 1.5), ValueError,
                     "[cross_entropy]", "label_smoothing", "1.5");
  EMBER_CHECK_THROWS(F::cross_entropy(tensor({1.0, 2.0}, kFloat64), tensor({0})), ShapeError,
                     "[cross_entropy]", "(2,)", "0-d");
  EMBER_CHECK_THROWS(F::cross_entropy(x, Tensor()), ValueError, "[cross_entropy]", "target");
  EMBER_CHECK_THROWS(F::cross_entropy(x, zeros({2, 3}, kFloat64), {}, 0), ValueError,
                     "[cross_entropy]", "ignore_index", "probability");
  EMBER_CHECK_THROWS(F::mse_loss(zeros({2, 3}), zeros({4})), ShapeError, "[mse_loss]", "(2, 3)",
                     "(4,)");
  EMBER_CHECK_THROWS(F::l1_loss(tensor({1, 2}), tensor({1, 2})), DTypeError, "[l1_loss]", "int64");
  EMBER_CHECK_THROWS(F::smooth_l1_loss(x, x, "mean", -1.0), ValueError, "[smooth_l1_loss]", "beta",
                     "-1");
  EMBER_CHECK_THROWS(F::huber_loss(x, x, "mean", 0.0), ValueError, "[huber_loss]", "delta");
  EMBER_CHECK_THROWS(F::binary_cross_entropy(tensor({0.5, 1.5}), tensor({1.f, 0.f})), ValueError,
                     "[binary_cross_entropy]", "[0, 1]");
  EMBER_CHECK_THROWS(F::binary_cross_entropy(zeros({2, 1}), zeros({2})), ShapeError,
                     "[binary_cross_entropy]", "(2,)", "(2, 1)");
  EMBER_CHECK_THROWS(
      F::binary_cross_entropy_with_logits(zeros({2, 3}), zeros({2, 3}), {}, "mean", zeros({2})),
      ShapeError, "[binary_cross_entropy_with_logits]", "pos_weight", "(2,)", "(2, 3)");
  EMBER_CHECK_THROWS(F::kl_div(zeros({2, 3}), zeros({4}), "batchmean"), ShapeError, "[kl_div]",
                     "(2, 3)", "(4,)");
  EMBER_CHECK_THROWS(F::kl_div(x, x, "avg"), ValueError, "[kl_div]", "batchmean");
}

// ---- gradients ----

namespace {

std::vector<test::GradCase> loss_cases() {
  std::vector<test::GradCase> c;
  const Tensor t2 = tensor({2, 0, 1, 2});
  const Tensor t_ign = tensor({2, -100, 1, 0});
  const Tensor w = tensor({0.5, 1.5, 2.0}, kFloat64);
  for (const char* red : {"mean", "sum", "none"}) {
    const std::string r = red;
    c.push_back({"cross_entropy " + r,
                 [r, t2](const Inputs& x) { return F::cross_entropy(x[0], t2, {}, -100, r); },
                 {grad_input({4, 3})}});
  }
  c.push_back({"cross_entropy weight + ignore_index",
               [t_ign, w](const Inputs& x) { return F::cross_entropy(x[0], t_ign, w); },
               {grad_input({4, 3})}});
  c.push_back(
      {"cross_entropy label_smoothing + weight + ignore_index",
       [t_ign, w](const Inputs& x) { return F::cross_entropy(x[0], t_ign, w, -100, "mean", 0.2); },
       {grad_input({4, 3})}});
  c.push_back({"cross_entropy differentiable weight",
               [t2](const Inputs& x) { return F::cross_entropy(x[0], t2, x[1]); },
               {grad_input({4, 3}), grad_input({3}, 0.5, 2.0)}});
  c.push_back({"cross_entropy (N, C, d1, d2)",
               [](const Inputs& x) {
                 return F::cross_entropy(x[0], tensor({{{0, 1}}, {{2, 0}}}), {}, -100, "mean", 0.1);
               },
               {grad_input({2, 3, 1, 2})}});
  c.push_back({"cross_entropy unbatched",
               [](const Inputs& x) { return F::cross_entropy(x[0], tensor(int64_t{1})); },
               {grad_input({4})}});
  c.push_back({"cross_entropy probabilities (input and target)",
               [w](const Inputs& x) {
                 return F::cross_entropy(x[0], x[1].softmax(1), w, -100, "mean", 0.1);
               },
               {grad_input({3, 3}), grad_input({3, 3})}});
  c.push_back({"cross_entropy large logits",
               [t2](const Inputs& x) { return F::cross_entropy(x[0] * 30.0, t2); },
               {grad_input({4, 3})}});
  c.push_back({"nll_loss weight + ignore_index",
               [t_ign, w](const Inputs& x) { return F::nll_loss(x[0], t_ign, w, -100, "sum"); },
               {grad_input({4, 3})}});
  c.push_back({"nll_loss none (N, C, d)",
               [](const Inputs& x) {
                 return F::nll_loss(x[0], tensor({{0, 2}, {1, 1}}), {}, 2, "none");
               },
               {grad_input({2, 3, 2})}});
  // Regression losses: inputs in [0.1, 0.9], targets in [-0.9, -0.1] or [1.5, 3]: |d| stays
  // away from 0 (l1) and from the beta / delta kinks.
  for (const char* red : {"mean", "sum", "none"}) {
    const std::string r = red;
    c.push_back({"mse_loss " + r,
                 [r](const Inputs& x) { return F::mse_loss(x[0], x[1], r); },
                 {grad_input({2, 3}), grad_input({2, 3})}});
    c.push_back({"l1_loss " + r,
                 [r](const Inputs& x) { return F::l1_loss(x[0], x[1], r); },
                 {grad_input({2, 3}, 0.1, 0.9), grad_input({2, 3}, -0.9, -0.1)}});
  }
  c.push_back({"mse_loss broadcast target",
               [](const Inputs& x) { return F::mse_loss(x[0], x[1]); },
               {grad_input({2, 3}), grad_input({3})}});
  auto smooth_inputs = [] {
    // |d| in [0.2, 0.8] (quadratic for beta 1) and [1.6, 3.9] (linear).
    return Inputs{grad_input({2, 4}, 0.1, 0.4), grad_input({2, 4}, -0.4, -0.1),
                  grad_input({2, 4}, 1.0, 2.0), grad_input({2, 4}, -1.9, -0.6)};
  };
  c.push_back({"smooth_l1_loss beta 1 both branches",
               [](const Inputs& x) {
                 return F::smooth_l1_loss(cat({x[0], x[2]}), cat({x[1], x[3]}), "sum");
               },
               smooth_inputs()});
  c.push_back({"smooth_l1_loss beta 0.1",
               [](const Inputs& x) {
                 return F::smooth_l1_loss(cat({x[0], x[2]}), cat({x[1], x[3]}), "none", 0.1);
               },
               smooth_inputs()});
  c.push_back({"huber_loss delta 1 both branches",
               [](const Inputs& x) {
                 return F::huber_loss(cat({x[0], x[2]}), cat({x[1], x[3]}), "mean");
               },
               smooth_inputs()});
  c.push_back({"huber_loss delta 3",
               [](const Inputs& x) {
                 return F::huber_loss(cat({x[0], x[2]}), cat({x[1], x[3]}), "none", 3.0);
               },
               smooth_inputs()});
  c.push_back(
      {"binary_cross_entropy input, target, weight",
       [](const Inputs& x) { return F::binary_cross_entropy(x[0], x[1], x[2]); },
       {grad_input({2, 3}, 0.1, 0.9), grad_input({2, 3}, 0.0, 1.0), grad_input({3}, 0.5, 2.0)}});
  c.push_back({"binary_cross_entropy none",
               [](const Inputs& x) { return F::binary_cross_entropy(x[0], x[1], {}, "none"); },
               {grad_input({5}, 0.05, 0.95), grad_input({5}, 0.0, 1.0)}});
  Tensor logits0 = grad_input({2, 4}, -3, 3).detach();
  logits0.index_put_({0, 1}, 0.0);  // x = 0 exactly: the stable form's kinks must cancel
  logits0.requires_grad_();
  c.push_back({"binary_cross_entropy_with_logits",
               [](const Inputs& x) { return F::binary_cross_entropy_with_logits(x[0], x[1]); },
               {logits0, grad_input({2, 4}, 0.0, 1.0)}});
  c.push_back({"binary_cross_entropy_with_logits weight + pos_weight",
               [](const Inputs& x) {
                 return F::binary_cross_entropy_with_logits(x[0], x[1], x[2], "sum", x[3]);
               },
               {grad_input({2, 4}, -3, 3), grad_input({2, 4}, 0.0, 1.0), grad_input({2, 1}, 0.5, 2),
                grad_input({4}, 0.5, 3.0)}});
  c.push_back({"kl_div",
               [](const Inputs& x) { return F::kl_div(x[0].log_softmax(1), x[1].softmax(1)); },
               {grad_input({2, 3}), grad_input({2, 3})}});
  c.push_back({"kl_div batchmean, raw target",
               [](const Inputs& x) { return F::kl_div(x[0], x[1], "batchmean"); },
               {grad_input({3, 2}, -2, 0), grad_input({3, 2}, 0.1, 1.0)}});
  c.push_back({"kl_div log_target none",
               [](const Inputs& x) { return F::kl_div(x[0], x[1], "none", true); },
               {grad_input({2, 3}, -2, 0), grad_input({2, 3}, -2, 0)}});
  return c;
}

}  // namespace

TEST_CASE("losses: grads match finite differences (gradcheck and gradgradcheck)") {
  const std::vector<test::GradCase> table = loss_cases();
  test::check_grad_table(table);
  std::cout << "[test_loss] gradcheck + gradgradcheck over " << table.size()
            << " cases of 9 losses\n";
}
