// Reductions: hand-computed values, dtype rules, keepdim/negative/multiple dims, 0-d and empty
// tensors, layouts (non-contiguous == contiguous bitwise), thread-count determinism, errors.
#include <cmath>
#include <limits>

#include "test_util.hpp"

using namespace ember;
using test::values;

namespace {
const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

/// x (2, 3, 4) = 0..23 as float32.
Tensor cube() { return arange(24, kFloat32).reshape({2, 3, 4}); }

bool close(const std::vector<double>& a, const std::vector<double>& b, double tol = 1e-6) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      if (a[i] != b[i]) return false;
      continue;
    }
    if (std::abs(a[i] - b[i]) > tol * (1 + std::abs(b[i]))) return false;
  }
  return true;
}

/// Restores the thread count when a test ends, even on failure.
struct ThreadGuard {
  int saved = get_num_threads();
  ~ThreadGuard() { set_num_threads(saved); }
};
}  // namespace

// ---- sum / mean / prod ----

TEST_CASE("sum: hand-computed over dims, keepdim and negative dims") {
  Tensor x = cube();
  CHECK(values(x.sum()) == std::vector<double>{276});
  CHECK(x.sum().dim() == 0);
  CHECK(x.sum().dtype() == kFloat32);
  Tensor s0 = x.sum({0});
  CHECK(s0.sizes() == IntArrayRef({3, 4}));
  CHECK(values(s0) == std::vector<double>{12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34});
  CHECK(values(x.sum({-1})) == std::vector<double>{6, 22, 38, 54, 70, 86});
  CHECK(values(x.sum({0, 2})) == std::vector<double>{60, 92, 124});
  CHECK(values(x.sum({2, 0})) == std::vector<double>{60, 92, 124});
  CHECK(values(x.sum({-3, -1})) == std::vector<double>{60, 92, 124});
  Tensor k = x.sum({1}, /*keepdim=*/true);
  CHECK(k.sizes() == IntArrayRef({2, 1, 4}));
  CHECK(values(k) == std::vector<double>{12, 15, 18, 21, 48, 51, 54, 57});
  CHECK(x.sum({0, 2}, true).sizes() == IntArrayRef({1, 3, 1}));
  CHECK(x.sum(IntArrayRef{}, true).sizes() == IntArrayRef({1, 1, 1}));  // empty dims: all
  CHECK(values(x.sum({0, 1, 2})) == std::vector<double>{276});
  CHECK(values(sum(x, {1})) == values(x.sum({1})));
}

TEST_CASE("sum: dtype rules follow PyTorch") {
  Tensor i = tensor({1, 2, 3}, kInt32);
  CHECK(i.sum().dtype() == kInt64);
  CHECK(i.sum().item<int64_t>() == 6);
  Tensor b = tensor({true, false, true, true});
  CHECK(b.sum().dtype() == kInt64);
  CHECK(b.sum().item<int64_t>() == 3);
  CHECK(tensor({200, 100}, kUInt8).sum().item<int64_t>() == 300);  // no uint8 wrap
  CHECK(tensor({1.5, 2.25}, kFloat64).sum().dtype() == kFloat64);
  CHECK(i.sum(IntArrayRef{}, false, kFloat32).dtype() == kFloat32);
  CHECK(i.sum(IntArrayRef{}, false, kFloat32).item<float>() == 6.0f);
  // dtype= casts first: 1.7 + 2.9 as int64 is 1 + 2.
  CHECK(tensor({1.7, 2.9}).sum(IntArrayRef{}, false, kInt64).item<int64_t>() == 3);
  Tensor big = full({3}, 3e9, kInt64);
  CHECK(big.sum().item<int64_t>() == 9000000000LL);
  CHECK(tensor({1.0f, 2.0f}).sum(IntArrayRef{}, false, kFloat64).dtype() == kFloat64);
}

TEST_CASE("sum: 0-d and empty tensors") {
  Tensor s = tensor(2.5f);
  CHECK(s.sum().item<float>() == 2.5f);
  CHECK(s.sum({0}).dim() == 0);
  CHECK(s.sum({-1}, true).dim() == 0);
  CHECK(values(s.sum({0})) == std::vector<double>{2.5});
  Tensor e = zeros({0, 3});
  CHECK(e.sum().item<float>() == 0.0f);
  CHECK(values(e.sum({0})) == std::vector<double>{0, 0, 0});
  CHECK(e.sum({1}).sizes() == IntArrayRef({0}));
  CHECK(values(e.prod(0)) == std::vector<double>{1, 1, 1});
  CHECK(std::isnan(e.mean().item<float>()));
  CHECK(tensor({1, 2}).sum({0}).item<int64_t>() == 3);
}

TEST_CASE("sum: one million ones sum to exactly 1e6, in every layout") {
  Tensor x = ones({1000000});
  CHECK(x.sum().item<float>() == 1e6f);
  CHECK(x.mean().item<float>() == 1.0f);
  CHECK(values(x.view({1000, 1000}).sum({0})) == std::vector<double>(1000, 1000));
  CHECK(values(x.view({1000, 1000}).sum({1})) == std::vector<double>(1000, 1000));
  CHECK(ones({1000000}, kFloat16).sum(IntArrayRef{}, false, kFloat32).item<float>() == 1e6f);
}

TEST_CASE("sum: bitwise identical for 1, 2, 3 and 8 threads") {
  ThreadGuard guard;
  Generator gen(1234);
  Tensor x = randn({1000003}, gen);
  Tensor m = randn({257, 4099}, gen);
  Tensor xd = x.to(kFloat64), md = m.to(kFloat64);  // float64 exposes any order change
  std::vector<Tensor> ref;
  for (int threads : {1, 2, 3, 8}) {
    set_num_threads(threads);
    std::vector<Tensor> r = {
        x.sum(),          m.sum({0}),  m.sum({1}),   m.t().sum({0}), m.sum(),
        x.mean(),         m.var({0}),  x.norm(),     m.prod(1),      x.to(kFloat16).sum(),
        m.logsumexp({1}), m.cumsum(0), xd.sum(),     md.sum({0}),    md.sum({1}),
        md.t().sum({0}),  xd.var(),    md.softmax(0)};
    if (ref.empty()) {
      ref = r;
      continue;
    }
    for (size_t i = 0; i < r.size(); ++i) {
      INFO("threads " << threads << ", result " << i);
      CHECK(test::bitwise_equal(r[i], ref[i]));
    }
  }
  // And against a double-precision reference: the float32 sum is the rounded double sum.
  const std::vector<double> v = values(x);
  double exact = 0;
  for (double d : v) exact += d;
  CHECK(std::abs(x.sum().item<double>() - exact) <= 1e-6 * std::abs(exact) + 1e-3);
}

TEST_CASE("sum: non-contiguous inputs give bitwise the contiguous result") {
  // float64 shows any change of summation order in the last bits (float32 results are the
  // rounded double sums, which hide most of them), so both are checked.
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    Generator gen(7);
    Tensor x = randn({37, 300, 5}, gen, dt);
    Tensor nc = test::non_contiguous(x);
    REQUIRE_FALSE(nc.is_contiguous());
    std::vector<std::vector<int64_t>> dim_sets = {{},     {0},    {1},    {2},
                                                  {0, 1}, {0, 2}, {1, 2}, {-1, 0}};
    for (const auto& dims : dim_sets) {
      INFO("dims " << IntArrayRef(dims));
      const int64_t d0 = dims.empty() ? 0 : dims[0];
      CHECK(test::bitwise_equal(x.sum(dims), nc.sum(dims)));
      CHECK(test::bitwise_equal(x.prod(d0), nc.prod(d0)));
      CHECK(test::bitwise_equal(x.amax(dims), nc.amax(dims)));
      CHECK(test::bitwise_equal(x.mean(dims), nc.mean(dims)));
      CHECK(test::bitwise_equal(x.var(dims), nc.var(dims)));
      CHECK(test::bitwise_equal(x.norm(2, dims), nc.norm(2, dims)));
      CHECK(test::bitwise_equal(x.logsumexp(dims), nc.logsumexp(dims)));
    }
    // A transposed copy reduced along the other dim: row and block loop shapes agree bitwise.
    Tensor m = randn({9000, 70}, gen, dt);
    Tensor mt = m.t().contiguous();  // (70, 9000)
    CHECK(test::bitwise_equal(m.sum({0}), mt.sum({1})));
    CHECK(test::bitwise_equal(m.sum({0}), m.t().sum({1})));
    CHECK(test::bitwise_equal(m.t().sum({0}), m.sum({1})));
    CHECK(test::bitwise_equal(m.sum({0}), test::non_contiguous(m).sum({0})));
    CHECK(test::bitwise_equal(x.permute({2, 0, 1}).sum({1, 2}), x.sum({0, 1})));
    // Dims 0 and 2 do not merge (the kernel gathers them): same as reducing a reshaped copy.
    CHECK(test::bitwise_equal(x.sum({0, 2}), x.permute({1, 0, 2}).reshape({300, 185}).sum({1})));
    // Long reductions into few outputs (partials table) in both loop shapes.
    Tensor tall = randn({20000, 3}, gen, dt);
    Tensor tall_t = tall.t().contiguous();
    CHECK(test::bitwise_equal(tall.sum({0}), tall_t.sum({1})));
    Tensor near1 = tall * 0.001 + 1;
    CHECK(test::bitwise_equal(near1.prod(0), near1.t().contiguous().prod(1)));
    CHECK(test::bitwise_equal(tall.amin({0}), tall_t.amin({1})));
    CHECK(test::bitwise_equal(tall.norm(2, {0}), tall_t.norm(2, {1})));
    CHECK(test::bitwise_equal(tall.var({0}), tall_t.var({1})));
    CHECK(test::bitwise_equal(x.argmax(1), nc.argmax(1)));
    CHECK(test::bitwise_equal(x.softmax(1), nc.softmax(1)));
    CHECK(test::bitwise_equal(x.log_softmax(0), nc.log_softmax(0)));
    CHECK(test::bitwise_equal(x.cumsum(1), nc.cumsum(1)));
  }
}

TEST_CASE("mean: hand-computed, dtype rules and errors") {
  Tensor x = cube();
  CHECK(values(x.mean()) == std::vector<double>{11.5});
  CHECK(values(x.mean({0})) == std::vector<double>{6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17});
  CHECK(values(x.mean({1, 2}, true)) == std::vector<double>{5.5, 17.5});
  CHECK(x.mean({1, 2}, true).sizes() == IntArrayRef({2, 1, 1}));
  CHECK(tensor({1, 2}).mean(kFloat32).item<float>() == 1.5f);
  CHECK(tensor({1, 2}).mean(kFloat64).dtype() == kFloat64);
  CHECK(tensor({1.0, 2.0}, kFloat16).mean().dtype() == kFloat16);
  EMBER_CHECK_THROWS(tensor({1, 2}).mean(), DTypeError, "[mean]", "int64");
  EMBER_CHECK_THROWS(tensor({true}).mean({0}), DTypeError, "[mean]", "bool");
}

TEST_CASE("prod: hand-computed and integer promotion") {
  Tensor x = tensor({{1.0f, 2.0f, 3.0f}, {4.0f, 5.0f, 6.0f}});
  CHECK(x.prod().item<float>() == 720.0f);
  CHECK(values(x.prod(0)) == std::vector<double>{4, 10, 18});
  CHECK(values(x.prod(-1, true)) == std::vector<double>{6, 120});
  CHECK(x.prod(-1, true).sizes() == IntArrayRef({2, 1}));
  CHECK(tensor({2, 3}, kInt8).prod().dtype() == kInt64);
  CHECK(tensor({100, 100, 100}, kInt8).prod().item<int64_t>() == 1000000);
  CHECK(tensor({true, false}).prod().item<int64_t>() == 0);
  CHECK(x.prod(1, false, kFloat64).dtype() == kFloat64);
}

// ---- max / min family ----

TEST_CASE("max/min: values and first indices along a dim") {
  Tensor x = tensor({{3.0f, 7.0f, 7.0f, 1.0f}, {2.0f, -1.0f, 9.0f, -1.0f}});
  CHECK(x.max().item<float>() == 9.0f);
  CHECK(x.min().item<float>() == -1.0f);
  auto [v, i] = x.max(1);
  CHECK(values(v) == std::vector<double>{7, 9});
  CHECK(i.dtype() == kInt64);
  CHECK(values(i) == std::vector<double>{1, 2});  // first of the tied 7s
  auto [mv, mi] = x.min(-1, true);
  CHECK(mv.sizes() == IntArrayRef({2, 1}));
  CHECK(values(mv) == std::vector<double>{1, -1});
  CHECK(values(mi) == std::vector<double>{3, 1});  // first of the tied -1s
  auto [v0, i0] = max(x, 0);
  CHECK(values(v0) == std::vector<double>{3, 7, 9, 1});
  CHECK(values(i0) == std::vector<double>{0, 0, 1, 0});
  CHECK(values(x.amax({0, 1})) == std::vector<double>{9});
  CHECK(values(x.amin({1})) == std::vector<double>{1, -1});
  CHECK(x.amax({}, true).sizes() == IntArrayRef({1, 1}));
  CHECK(values(x.argmax()) == std::vector<double>{6});
  CHECK(x.argmax().dim() == 0);
  CHECK(values(x.argmin()) == std::vector<double>{5});
  CHECK(x.argmax(std::nullopt, true).sizes() == IntArrayRef({1, 1}));
  CHECK(values(x.argmax(0)) == std::vector<double>{0, 0, 1, 0});
  CHECK(values(x.argmin(1, true)) == std::vector<double>{3, 1});
  CHECK(x.argmin(1, true).sizes() == IntArrayRef({2, 1}));
  // Integers and bool keep their dtype.
  Tensor ints = tensor({5, -2, 8}, kInt32);
  CHECK(ints.max().dtype() == kInt32);
  CHECK(ints.max().item<int64_t>() == 8);
  CHECK(ints.amin().item<int64_t>() == -2);
  CHECK(tensor({false, true}).max().item<bool>());
  CHECK_FALSE(tensor({false, true}).min().item<bool>());
  // 0-d.
  auto [sv, si] = tensor(4.0f).max(0);
  CHECK(sv.item<float>() == 4.0f);
  CHECK(si.item<int64_t>() == 0);
  CHECK(tensor(4.0f).argmax().item<int64_t>() == 0);
}

TEST_CASE("max/min: NaN propagates and counts as the extremum") {
  Tensor x = tensor({{1.0, kNaN, 5.0, kNaN}, {2.0, 3.0, 0.0, 1.0}}, kFloat32);
  CHECK(std::isnan(x.max().item<float>()));
  CHECK(std::isnan(x.min().item<float>()));
  CHECK(close(values(x.amax({1})), {kNaN, 3}));
  CHECK(close(values(x.amin({1})), {kNaN, 0}));
  auto [v, i] = x.max(1);
  CHECK(close(values(v), {kNaN, 3}));
  CHECK(values(i) == std::vector<double>{1, 1});  // the first NaN
  CHECK(values(x.argmin(1)) == std::vector<double>{1, 2});
  CHECK(values(x.argmax()) == std::vector<double>{1});
  CHECK(tensor({-kInf, -kInf}).max().item<float>() == -INFINITY);
  CHECK(tensor({kInf, 1.0}).min().item<float>() == 1.0f);
}

TEST_CASE("max/min: empty reductions name the op") {
  Tensor e = zeros({0, 3});
  EMBER_CHECK_THROWS(e.max(), ValueError, "[max]", "(0, 3)");
  EMBER_CHECK_THROWS(e.min(), ValueError, "[min]", "(0, 3)");
  EMBER_CHECK_THROWS(e.max(0), IndexError, "[max]", "(0, 3)");
  EMBER_CHECK_THROWS(e.min(0), IndexError, "[min]", "(0, 3)");
  EMBER_CHECK_THROWS(e.amax({0}), IndexError, "[amax]", "(0, 3)");
  EMBER_CHECK_THROWS(e.amin(), ValueError, "[amin]", "(0, 3)");
  EMBER_CHECK_THROWS(e.argmax(), ValueError, "[argmax]", "(0, 3)");
  EMBER_CHECK_THROWS(e.argmin(0), IndexError, "[argmin]", "(0, 3)");
  // Reducing a non-empty dim of an empty tensor is fine.
  CHECK(e.amax({1}).sizes() == IntArrayRef({0}));
  CHECK(std::get<1>(e.max(1)).sizes() == IntArrayRef({0}));
}

// ---- var / std / var_mean ----

TEST_CASE("var/std: correction, dims and numerical quality") {
  Tensor x = tensor({{1.0f, 2.0f, 3.0f, 4.0f}, {2.0f, 4.0f, 6.0f, 8.0f}});
  CHECK(close(values(x.var({1})), {5.0 / 3.0, 20.0 / 3.0}));
  CHECK(close(values(x.var({1}, 0)), {1.25, 5.0}));
  CHECK(close(values(x.std({1}, 0)), {std::sqrt(1.25), std::sqrt(5.0)}));
  CHECK(close(values(x.var({0}, 1, true)), {0.5, 2, 4.5, 8}));
  CHECK(x.var({0}, 1, true).sizes() == IntArrayRef({1, 4}));
  CHECK(close(values(x.var()), {((1 + 4 + 9 + 16 + 4 + 16 + 36 + 64) - 30.0 * 30.0 / 8) / 7}));
  auto [v, m] = var_mean(x, {1}, 1);
  CHECK(close(values(v), {5.0 / 3.0, 20.0 / 3.0}));
  CHECK(values(m) == std::vector<double>{2.5, 5});
  CHECK(v.dtype() == kFloat32);
  CHECK(m.dtype() == kFloat32);
  // Large offset, small spread: the one-pass formula would lose everything in float32.
  Tensor y = tensor({1e7f + 1, 1e7f + 2, 1e7f + 3, 1e7f + 4});
  CHECK(y.var().item<float>() == Approx(5.0 / 3.0).epsilon(1e-6));
  // A single element with correction 1 is 0/0.
  CHECK(std::isnan(tensor({3.0f}).var().item<float>()));
  CHECK(tensor({3.0f}).var({}, 0).item<float>() == 0.0f);
  CHECK(tensor({1.0, 3.0}, kFloat16).std().dtype() == kFloat16);
  CHECK(tensor({1.0, 3.0}, kBFloat16).std().item<float>() == Approx(std::sqrt(2.0)).epsilon(1e-2));
  EMBER_CHECK_THROWS(tensor({1, 2}).var(), DTypeError, "[var]", "int64");
  EMBER_CHECK_THROWS(tensor({1, 2}).std(), DTypeError, "[std]", "int64");
}

// ---- logsumexp / norm ----

TEST_CASE("logsumexp: stable, with -inf and +inf rows") {
  Tensor x =
      tensor({{0.0, std::log(3.0)}, {1000.0, 1000.0}, {-kInf, -kInf}, {kInf, 1.0}}, kFloat32);
  CHECK(close(values(x.logsumexp({1})), {std::log(4.0), 1000 + std::log(2.0), -kInf, kInf}, 1e-6));
  CHECK(x.logsumexp({1}, true).sizes() == IntArrayRef({4, 1}));
  CHECK(close(values(tensor({{1.0f, 2.0f}, {3.0f, 4.0f}}).logsumexp({0, 1})),
              {std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(4.0))}));
  CHECK(tensor({1, 2}).logsumexp({0}).dtype() == get_default_dtype());  // ints promote
  CHECK(zeros({0, 2}).logsumexp({0}).sizes() == IntArrayRef({2}));
  CHECK(values(zeros({0, 2}).logsumexp({0})) == std::vector<double>{-kInf, -kInf});
  CHECK(tensor({-1000.0, -1000.0}, kFloat16).logsumexp({0}).item<float>() ==
        Approx(-1000 + std::log(2.0)).epsilon(1e-3));
}

TEST_CASE("norm: p = 1, 2, inf and a general p") {
  Tensor x = tensor({{3.0f, -4.0f}, {-1.0f, 2.0f}});
  CHECK(x.norm().item<float>() == Approx(std::sqrt(30.0)));
  CHECK(close(values(x.norm(2, {1})), {5, std::sqrt(5.0)}));
  CHECK(close(values(x.norm(1, {0})), {4, 6}));
  CHECK(close(values(x.norm(kInf, {1}, true)), {4, 2}));
  CHECK(x.norm(kInf, {1}, true).sizes() == IntArrayRef({2, 1}));
  CHECK(x.norm(3.0).item<float>() == Approx(std::cbrt(27.0 + 64 + 1 + 8)));
  CHECK(close(values(x.norm(0.5, {1})),
              {std::pow(std::sqrt(3.0) + 2.0, 2.0), std::pow(1.0 + std::sqrt(2.0), 2.0)}, 1e-6));
  CHECK(tensor({3.0, 4.0}, kBFloat16).norm().dtype() == kBFloat16);
  CHECK(tensor({3.0, 4.0}, kBFloat16).norm().item<float>() == 5.0f);
  CHECK(zeros({0}).norm().item<float>() == 0.0f);
  EMBER_CHECK_THROWS(x.norm(0), ValueError, "[norm]");
  EMBER_CHECK_THROWS(x.norm(-2), ValueError, "[norm]");
  EMBER_CHECK_THROWS(tensor({1, 2}).norm(), DTypeError, "[norm]", "int64");
}

// ---- all / any ----

TEST_CASE("all/any: bool results over every dtype") {
  Tensor b = tensor({{true, false}, {true, true}});
  CHECK_FALSE(b.all().item<bool>());
  CHECK(b.any().item<bool>());
  CHECK(b.all().dtype() == kBool);
  CHECK(values(b.all(0)) == std::vector<double>{1, 0});
  CHECK(values(b.all(-1, true)) == std::vector<double>{0, 1});
  CHECK(b.all(-1, true).sizes() == IntArrayRef({2, 1}));
  CHECK(values(b.any(1)) == std::vector<double>{1, 1});
  Tensor f = tensor({{0.0f, 0.5f}, {0.0f, 0.0f}});
  CHECK(values(f.any(1)) == std::vector<double>{1, 0});
  CHECK(f.any(1).dtype() == kBool);
  CHECK(tensor({kNaN}).all().item<bool>());  // NaN is non-zero
  CHECK(tensor({1, 2}, kUInt8).all().dtype() == kBool);
  CHECK(zeros({0}).all().item<bool>());
  CHECK_FALSE(zeros({0}).any().item<bool>());
  CHECK(tensor(0).any().dim() == 0);
}

// ---- cumsum / softmax ----

TEST_CASE("cumsum: along dims, integer promotion") {
  Tensor x = tensor({{1.0f, 2.0f, 3.0f}, {4.0f, 5.0f, 6.0f}});
  CHECK(values(x.cumsum(1)) == std::vector<double>{1, 3, 6, 4, 9, 15});
  CHECK(values(x.cumsum(0)) == std::vector<double>{1, 2, 3, 5, 7, 9});
  CHECK(values(x.cumsum(-2)) == values(x.cumsum(0)));
  CHECK(x.cumsum(1).dtype() == kFloat32);
  CHECK(tensor({1, 2, 3}, kInt32).cumsum(0).dtype() == kInt64);
  CHECK(tensor({true, true, false}).cumsum(0).dtype() == kInt64);
  CHECK(values(tensor({true, true, false}).cumsum(0)) == std::vector<double>{1, 2, 2});
  CHECK(x.cumsum(1, kFloat64).dtype() == kFloat64);
  CHECK(values(tensor(5.0f).cumsum(0)) == std::vector<double>{5});
  CHECK(tensor(5.0f).cumsum(0).dim() == 0);
  CHECK(zeros({0, 3}).cumsum(1).sizes() == IntArrayRef({0, 3}));
  CHECK(values(x.t().cumsum(0)) == values(x.cumsum(1).t()));
  EMBER_CHECK_THROWS(x.cumsum(2), IndexError, "[cumsum]");
}

TEST_CASE("softmax/log_softmax: hand-computed and numerically stable") {
  Tensor x = tensor({{0.0f, std::log(3.0f)}, {1000.0f, 1000.0f}, {-1000.0f, 0.0f}});
  CHECK(close(values(x.softmax(1)), {0.25, 0.75, 0.5, 0.5, 0.0, 1.0}));
  CHECK(close(values(x.log_softmax(1)),
              {std::log(0.25), std::log(0.75), std::log(0.5), std::log(0.5), -1000.0, 0.0}));
  CHECK(close(values(x.softmax(0).sum({0})), {1, 1}));
  Tensor t = tensor({{1.0f, 2.0f}, {3.0f, 5.0f}});
  double e1 = std::exp(-2.0), e2 = std::exp(-3.0);
  CHECK(close(values(t.softmax(0)), {e1 / (1 + e1), e2 / (1 + e2), 1 / (1 + e1), 1 / (1 + e2)}));
  CHECK(close(values(t.softmax(-2)), values(t.softmax(0))));
  CHECK(values(tensor(3.0f).softmax(0)) == std::vector<double>{1});
  CHECK(t.softmax(1, kFloat64).dtype() == kFloat64);
  CHECK(tensor({1, 2}).softmax(0, kFloat32).dtype() == kFloat32);
  CHECK(close(values(tensor({1.0, 2.0}, kFloat16).softmax(0)),
              {1 / (1 + std::exp(1.0)), 1 / (1 + std::exp(-1.0))}, 1e-3));
  CHECK(tensor({1.0, 2.0}, kBFloat16).log_softmax(0).dtype() == kBFloat16);
  CHECK(zeros({0, 3}).softmax(1).sizes() == IntArrayRef({0, 3}));
  EMBER_CHECK_THROWS(tensor({1, 2}).softmax(0), DTypeError, "[softmax]", "int64");
  EMBER_CHECK_THROWS(tensor({1, 2}).log_softmax(0), DTypeError, "[log_softmax]", "int64");
  EMBER_CHECK_THROWS(t.softmax(2), IndexError, "[softmax]");
}

// ---- 16-bit floats ----

TEST_CASE("reductions: float16 and bfloat16 inputs accumulate wide") {
  for (DType dt : {kFloat16, kBFloat16}) {
    INFO(dt);
    Tensor x = full({4096}, 0.1, dt);  // 4096 * 0.1 in half steps would stall at 256 in float16
    const double v = values(x)[0];
    CHECK(x.sum().dtype() == dt);
    CHECK(x.sum().item<float>() == Approx(4096 * v).epsilon(4e-3));
    CHECK(x.mean().item<float>() == Approx(v).epsilon(4e-3));
    CHECK(x.sum(IntArrayRef{}, false, kFloat32).item<float>() == Approx(4096 * v).epsilon(1e-6));
    Tensor m = tensor({{1.0, -2.0}, {3.5, 0.5}}, dt);
    CHECK(values(m.amax({1})) == std::vector<double>{1, 3.5});
    CHECK(values(std::get<1>(m.min(0))) == std::vector<double>{0, 0});
    CHECK(values(m.cumsum(1)) == std::vector<double>{1, -1, 3.5, 4});
    CHECK(m.max().dtype() == dt);
    CHECK(m.prod().item<float>() == -3.5f);
  }
}

// ---- errors ----

TEST_CASE("reductions: dim errors name the op and the dims") {
  Tensor x = cube();
  EMBER_CHECK_THROWS(x.sum({1, 1}), IndexError, "[sum]", "multiple times", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.sum({1, -2}), IndexError, "[sum]", "multiple times", "(1, -2)");
  EMBER_CHECK_THROWS(x.mean({3}), IndexError, "[mean]", "dim 3", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.amax({-4}), IndexError, "[amax]", "dim -4", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.var({0, 0}), IndexError, "[var]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.std({0, 0}), IndexError, "[std]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(var_mean(x, {0, 0}), IndexError, "[var_mean]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.prod(5), IndexError, "[prod]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.all(3), IndexError, "[all]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.any(-4), IndexError, "[any]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.max(3), IndexError, "[max]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.min(3), IndexError, "[min]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.argmax(3), IndexError, "[argmax]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.argmin(-4), IndexError, "[argmin]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.logsumexp({0, 0}), IndexError, "[logsumexp]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.norm(2, {7}), IndexError, "[norm]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.cumsum(3), IndexError, "[cumsum]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(x.log_softmax(-4), IndexError, "[log_softmax]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(tensor(1.0f).sum({0, -1}), IndexError, "[sum]", "multiple times");
  EMBER_CHECK_THROWS(tensor(1.0f).sum({1}), IndexError, "[sum]", "()");
}

TEST_CASE("reductions: 0-d inputs reduce over nothing") {
  Tensor s = tensor(-3.0f);
  for (const Tensor& r : {s.sum(), s.sum({0}), s.mean({-1}), s.prod(0), s.amax(), s.amin({0}),
                          s.max(), s.min(), s.logsumexp({0}), s.cumsum(0)}) {
    CHECK(r.dim() == 0);
    CHECK(r.item<float>() == Approx(-3.0));
  }
  CHECK(s.norm().item<float>() == 3.0f);
  CHECK(s.norm(1, {0}, true).dim() == 0);
  CHECK(s.var({}, 0).item<float>() == 0.0f);
  CHECK(std::isnan(s.var().item<float>()));
  CHECK(s.argmax().item<int64_t>() == 0);
  CHECK(s.argmin(0, true).dim() == 0);
  CHECK(s.all().item<bool>());
  CHECK(s.softmax(-1).item<float>() == 1.0f);
  CHECK(s.log_softmax(0).item<float>() == 0.0f);
  CHECK(tensor(int64_t{4}).sum().item<int64_t>() == 4);
  CHECK(tensor(int64_t{4}).cumsum(0).dtype() == kInt64);
  EMBER_CHECK_THROWS(s.sum({1}), IndexError, "[sum]");
  EMBER_CHECK_THROWS(s.max(1), IndexError, "[max]");
}

TEST_CASE("reductions: empty tensors give the identity or an empty result") {
  Tensor e = zeros({2, 0, 3});
  CHECK(e.sum({1}).sizes() == IntArrayRef({2, 3}));
  CHECK(values(e.sum({1})) == std::vector<double>(6, 0));
  CHECK(values(e.prod(1)) == std::vector<double>(6, 1));
  CHECK(values(e.all(1)) == std::vector<double>(6, 1));
  CHECK(values(e.any(1)) == std::vector<double>(6, 0));
  CHECK(e.sum({0, 2}).sizes() == IntArrayRef({0}));
  CHECK(e.amax({0, 2}).sizes() == IntArrayRef({0}));
  CHECK(e.var({2}).sizes() == IntArrayRef({2, 0}));
  CHECK(std::isnan(values(e.mean({1}))[0]));
  CHECK(values(e.norm(2, {1})) == std::vector<double>(6, 0));
  CHECK(e.softmax(1).sizes() == IntArrayRef({2, 0, 3}));
  CHECK(e.cumsum(1).sizes() == IntArrayRef({2, 0, 3}));
  EMBER_CHECK_THROWS(e.amax({1}), IndexError, "[amax]", "(2, 0, 3)");
  EMBER_CHECK_THROWS(e.norm(kInf, {1}), IndexError, "[norm]", "(2, 0, 3)");
}
