// sort / argsort / topk on CUDA tensors against the CPU's, bitwise (values are copies of input
// elements and the order is a total one, so both devices must agree exactly): every dtype,
// ascending and descending, many ties, NaN, -0.0 next to 0.0, infinities; rows of 1 to 100003
// elements (one block, several blocks merged), many short rows; dims 0, 1 and last;
// transposed, permuted, sliced and expanded inputs; k = 0, 1, some, all; empty and 0-d inputs;
// gradients through the values; the same typed errors. Without a GPU each case prints "skipped".
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/ember.hpp"

using namespace ember;
using ember::test::bitwise_equal;
using ember::test::gpu;

namespace {

const std::vector<DType> kAllDTypes = {kFloat32, kFloat64, kFloat16, kBFloat16, kInt64,
                                       kInt32,   kInt8,    kUInt8,   kBool};

/// A seeded input of dtype dt with many ties: floating values are multiples of 0.5 in [-4, 4]
/// with NaN, -0.0, 0.0 and +-inf sprinkled in; integers lie in a small range (full range for
/// int64 now and then); bool is random.
Tensor make_input(IntArrayRef sizes, DType dt, uint64_t seed) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  std::mt19937_64 rng(seed);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& e : v) {
    const uint64_t r = rng() % 100;
    const double tie = static_cast<double>(static_cast<int64_t>(rng() % 17) - 8) / 2.0;
    if (is_floating(dt)) {
      e = r < 4    ? std::numeric_limits<double>::quiet_NaN()
          : r < 10 ? (r % 2 ? -0.0 : 0.0)
          : r < 12 ? (r % 2 ? -INFINITY : INFINITY)
                   : tie;
    } else if (dt == kBool) {
      e = static_cast<double>(r % 2);
    } else if (dt == kUInt8) {
      e = static_cast<double>(r % 7 == 0 ? 255 : r % 9);
    } else if (dt == kInt8) {
      e = r % 11 == 0 ? (r % 2 ? -128.0 : 127.0) : tie * 2;
    } else {
      e = tie * 2;
    }
  }
  if (dt == kInt64) {  // with the extremes of int64, which double does not hold exactly
    std::vector<int64_t> w(v.begin(), v.end());
    for (size_t i = 0; i < w.size(); i += 13)
      w[i] = i % 2 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
    return tensor(w, kInt64).reshape(sizes);
  }
  return tensor(v, kFloat64).reshape(sizes).to(dt);
}

/// sort (values and indices) and argsort of x along d agree bitwise on both devices; xc is the
/// same tensor (same view) on the GPU.
void check_sort(const Tensor& x, const Tensor& xc, int64_t d, const std::string& what) {
  for (bool descending : {false, true})
    for (bool stable : {false, true}) {
      INFO(what << " dtype " << x.dtype() << " shape " << x.sizes() << " dim " << d
                << (descending ? " descending" : " ascending") << (stable ? " stable" : ""));
      auto [v, i] = sort(x, d, descending, stable);
      auto [vc, ic] = sort(xc, d, descending, stable);
      CHECK(vc.device().type() == kCUDA);
      CHECK(bitwise_equal(vc.cpu(), v));
      CHECK(bitwise_equal(ic.cpu(), i));
      CHECK(bitwise_equal(argsort(xc, d, descending, stable).cpu(), i));
    }
}

/// topk of x along d for k in ks agrees bitwise on both devices (values and indices), largest
/// and smallest, sorted and unsorted.
void check_topk(const Tensor& x, const Tensor& xc, int64_t d, const std::vector<int64_t>& ks,
                const std::string& what) {
  for (int64_t k : ks)
    for (bool largest : {true, false})
      for (bool sorted : {true, false}) {
        INFO(what << " dtype " << x.dtype() << " shape " << x.sizes() << " dim " << d << " k " << k
                  << (largest ? " largest" : " smallest") << (sorted ? " sorted" : ""));
        auto [v, i] = topk(x, k, d, largest, sorted);
        auto [vc, ic] = topk(xc, k, d, largest, sorted);
        CHECK(bitwise_equal(vc.cpu(), v));
        CHECK(bitwise_equal(ic.cpu(), i));
      }
}

}  // namespace

TEST_CASE("cuda sort: every dtype, ties, NaN and -0.0, rows of 1 to 5000 elements") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  uint64_t seed = 900;
  for (DType dt : kAllDTypes)
    for (int64_t L : {1, 2, 17, 1000, 2049, 5000}) {
      const Tensor x = make_input({3, L}, dt, ++seed);
      check_sort(x, x.to(cu), 1, "rows");
      check_sort(x, x.to(cu), -1, "rows");
    }
}

TEST_CASE("cuda sort: long rows merged over many passes, and many short rows") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  uint64_t seed = 1000;
  for (DType dt : {kFloat32, kFloat64, kFloat16, kInt64, kInt32, kUInt8}) {
    const Tensor x = make_input({2, 100003}, dt, ++seed);
    check_sort(x, x.to(cu), 1, "long rows");
  }
  // Distinct values too: the merge must interleave the runs, not only keep ties in place.
  Generator g(77);
  const Tensor r = randn({3, 70001}, g);
  check_sort(r, r.to(cu), 1, "distinct long rows");
  for (DType dt : {kFloat32, kFloat16, kInt8, kBool}) {
    const Tensor many = make_input({20000, 5}, dt, ++seed);
    check_sort(many, many.to(cu), 1, "many short rows");
    const Tensor seventeen = make_input({1500, 17}, dt, ++seed);
    check_sort(seventeen, seventeen.to(cu), 1, "rows of 17");
  }
}

TEST_CASE("cuda sort: dims 0, 1, last and non-contiguous views read through their strides") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  uint64_t seed = 1100;
  using View = std::function<Tensor(const Tensor&)>;
  const std::vector<std::pair<std::string, View>> views = {
      {"contiguous", [](const Tensor& t) { return t; }},
      {"transposed", [](const Tensor& t) { return t.transpose(0, 2); }},
      {"permuted",
       [](const Tensor& t) {
         return t.permute({1, 2, 0});
       }},
      {"sliced", [](const Tensor& t) { return t.slice(1, 1, std::nullopt, 2); }},
      {"expanded",
       [](const Tensor& t) {
         return t.slice(0, 0, 1).expand({4, 37, 5});
       }},
  };
  for (DType dt : kAllDTypes) {
    const Tensor base = make_input({6, 37, 5}, dt, ++seed);
    const Tensor base_c = base.to(cu);
    for (const auto& [name, view] : views)
      for (int64_t d : {0, 1, 2, -1}) check_sort(view(base), view(base_c), d, name);
  }
  // A long row read with a stride (dim 0 of a (5000, 3) tensor) and a transposed long row.
  const Tensor tall = make_input({5000, 3}, kFloat32, ++seed);
  check_sort(tall, tall.to(cu), 0, "tall");
  check_sort(tall.t(), tall.to(cu).t(), 1, "tall transposed");
}

TEST_CASE("cuda topk: k = 0, 1, some and all, largest and smallest, sorted and unsorted") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  uint64_t seed = 1200;
  for (DType dt : kAllDTypes)
    for (int64_t L : {1, 2, 17, 1000, 2049, 5000}) {
      const Tensor x = make_input({3, L}, dt, ++seed);
      check_topk(x, x.to(cu), 1, {0, 1, (L + 1) / 2, L}, "rows");
    }
  const Tensor big = make_input({2, 100003}, kFloat32, ++seed);
  check_topk(big, big.to(cu), 1, {1, 5000, 100003}, "long rows");
  const Tensor base = make_input({6, 37, 5}, kFloat64, ++seed);
  for (int64_t d : {0, 1, 2}) {
    check_topk(base, base.to(cu), d, {0, 1, 3}, "3-d");
    check_topk(base.permute({2, 0, 1}), base.to(cu).permute({2, 0, 1}), d, {1, 4}, "permuted");
  }
  const Tensor many = make_input({20000, 5}, kBFloat16, ++seed);
  check_topk(many, many.to(cu), 1, {1, 2, 5}, "many short rows");
}

TEST_CASE("cuda sort/topk: empty tensors, size-1 dims and 0-d inputs") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  for (const std::vector<int64_t>& sizes :
       std::vector<std::vector<int64_t>>{{2, 0}, {0, 3}, {0}, {1, 1}, {4, 1}, {1, 6}}) {
    const Tensor x = make_input(sizes, kFloat32, 1300 + sizes.size());
    for (int64_t d = 0; d < x.dim(); ++d) {
      check_sort(x, x.to(cu), d, "edge");
      check_topk(x, x.to(cu), d, {0, x.size(d)}, "edge");
    }
  }
  const Tensor s = scalar_tensor(2.5);
  check_sort(s, s.to(cu), 0, "0-d");
  check_topk(s, s.to(cu), 0, {0, 1}, "0-d");
}

TEST_CASE("cuda sort/topk: gradients through the values match the CPU's") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  for (DType dt : {kFloat32, kFloat64}) {
    const Tensor data = make_input({4, 2049}, dt, 1400 + static_cast<uint64_t>(dt));
    const Tensor finite = where(isfinite(data), data, zeros_like(data));  // finite sums
    Generator g(5);
    const Tensor w = randn({4, 2049}, g).to(dt);  // dY
    using Op = std::function<Tensor(const Tensor&)>;
    const std::vector<std::pair<std::string, Op>> ops = {
        {"sort", [](const Tensor& t) { return std::get<0>(sort(t, 1, true)); }},
        {"sort dim 0", [](const Tensor& t) { return std::get<0>(sort(t, 0)); }},
        {"topk", [](const Tensor& t) { return std::get<0>(topk(t, 700, 1)); }},
        {"topk unsorted",
         [](const Tensor& t) { return std::get<0>(topk(t, 700, 1, false, false)); }},
    };
    for (const auto& [name, op] : ops) {
      INFO(name << " " << dt);
      Tensor x = finite.clone().requires_grad_();
      Tensor xc = finite.clone().to(cu).requires_grad_();
      const Tensor y = op(x), yc = op(xc);
      (y * w.slice(0, 0, y.size(0)).slice(1, 0, y.size(1))).sum().backward();
      (yc * w.to(cu).slice(0, 0, yc.size(0)).slice(1, 0, yc.size(1))).sum().backward();
      REQUIRE(xc.grad().defined());
      CHECK(bitwise_equal(xc.grad().cpu(), x.grad()));
    }
  }
}

TEST_CASE("cuda sort/topk: bad arguments raise the CPU's typed errors") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  const Tensor x = make_input({3, 4}, kFloat32, 1500);
  for (const Tensor& t : {x, x.to(cu)}) {
    EMBER_CHECK_THROWS(topk(t, 5, 1), IndexError, "[topk]", "k = 5");
    EMBER_CHECK_THROWS(topk(t, -1, 1), IndexError, "[topk]");
    EMBER_CHECK_THROWS(sort(t, 2), IndexError, "[sort]");
    EMBER_CHECK_THROWS(argsort(t, -3), IndexError, "[sort]");
  }
}
