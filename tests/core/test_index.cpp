// Index ops: gather / scatter / scatter_add, index_select / index_add / embedding,
// sort / argsort / topk, nonzero.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "test_util.hpp"

using namespace ember;
using ember::test::bitwise_equal;
using ember::test::non_contiguous;
using ember::test::values;
using V = std::vector<double>;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Deterministic pseudo-random floats in [-8, 8) with many repeats (multiples of 0.5), so
/// sorts see ties.
Tensor pseudo_random(IntArrayRef sizes, uint64_t seed, int levels = 32) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  std::vector<float> v(static_cast<size_t>(n));
  uint64_t state = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (float& x : v) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<float>(static_cast<int>((state >> 33) % static_cast<uint64_t>(levels)) -
                           levels / 2) *
        0.5f;
  }
  return tensor(v).reshape(sizes);
}

/// Pseudo-random int64 indices in [0, high).
Tensor pseudo_index(IntArrayRef sizes, int64_t high, uint64_t seed) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  std::vector<int64_t> v(static_cast<size_t>(n));
  uint64_t state = seed * 2862933555777941757ull + 3037000493ull;
  for (int64_t& x : v) {
    state = state * 2862933555777941757ull + 3037000493ull;
    x = static_cast<int64_t>((state >> 33) % static_cast<uint64_t>(high));
  }
  return tensor(v).reshape(sizes);
}

bool same_values_with_nan(const V& a, const V& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i])) return false;
    if (!std::isnan(a[i]) && a[i] != b[i]) return false;
  }
  return true;
}

}  // namespace

// ---- gather ----

TEST_CASE("gather: 2-D along dims 0 and 1") {
  Tensor x = tensor({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  Tensor i0 = tensor({{1, 0, 1}, {0, 0, 1}});
  Tensor g0 = gather(x, 0, i0);
  CHECK(g0.sizes() == IntArrayRef({2, 3}));
  CHECK(g0.dtype() == kFloat32);
  CHECK(values(g0) == V{4, 2, 6, 1, 2, 6});

  Tensor i1 = tensor({{2, 0}, {1, 1}});
  CHECK(values(gather(x, 1, i1)) == V{3, 1, 5, 5});
  CHECK(values(x.gather(-1, i1)) == V{3, 1, 5, 5});
  // The index may be smaller than x outside dim, and longer than x along dim.
  Tensor i2 = tensor({{0, 0, 2, 1}});
  CHECK(values(gather(x, 1, i2)) == V{1, 1, 3, 2});
}

TEST_CASE("gather: 3-D along every dim") {
  Tensor x = arange(24, kFloat64).reshape({2, 3, 4});  // x[a][b][c] = 12a + 4b + c
  Tensor i = tensor({{{1, 0}, {0, 1}}});               // (1, 2, 2)
  CHECK(values(gather(x, 0, i)) == V{12, 1, 4, 17});
  Tensor j = tensor({{{2, 0}, {1, 1}}, {{0, 2}, {2, 2}}});  // (2, 2, 2)
  // out[a][b][c] = x[a][j][c]
  CHECK(values(gather(x, 1, j)) == V{8, 1, 4, 5, 12, 21, 20, 21});
  // out[a][b][c] = x[a][b][j]
  CHECK(values(gather(x, 2, j)) == V{2, 0, 5, 5, 12, 14, 18, 18});
}

TEST_CASE("gather: integer, bool and half dtypes and 0-d inputs") {
  Tensor xi = tensor({{10, 20}, {30, 40}});
  Tensor r = gather(xi, 1, tensor({{1}, {0}}));
  CHECK(r.dtype() == kInt64);
  CHECK(values(r) == V{20, 30});
  Tensor xb = tensor({true, false, true});
  CHECK(values(gather(xb, 0, tensor({1, 2, 1}))) == V{0, 1, 0});
  Tensor xh = tensor({1.5, -2.25, 3.0}, kHalf);
  Tensor rh = gather(xh, 0, tensor({2, 1}));
  CHECK(rh.dtype() == kHalf);
  CHECK(values(rh) == V{3.0, -2.25});
  Tensor s = gather(scalar_tensor(7.0), 0, scalar_tensor(0, kInt64));
  CHECK(s.dim() == 0);
  CHECK(s.item<double>() == 7.0);
  Tensor e = gather(zeros({3, 2}), 0, zeros({0, 2}, kInt64));
  CHECK(e.sizes() == IntArrayRef({0, 2}));
}

// ---- scatter / scatter_add ----

TEST_CASE("scatter: 2-D along dims 0 and 1 (PyTorch's documented examples)") {
  Tensor src = tensor({{1.f, 2.f, 3.f, 4.f, 5.f}, {6.f, 7.f, 8.f, 9.f, 10.f}});
  Tensor x = zeros({3, 5});
  Tensor r0 = scatter(x, 0, tensor({{0, 1, 2, 0}}), src);
  CHECK(r0.sizes() == IntArrayRef({3, 5}));
  CHECK(values(r0) == V{1, 0, 0, 4, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0});
  CHECK(values(x) == V(15, 0.0));  // out of place: x untouched
  Tensor r1 = x.scatter(1, tensor({{0, 1, 2}, {0, 1, 4}}), src);
  CHECK(values(r1) == V{1, 2, 3, 0, 0, 6, 7, 0, 0, 8, 0, 0, 0, 0, 0});
}

TEST_CASE("scatter: 3-D along dims 0 and 1, and the Scalar form") {
  Tensor i0 = tensor({{{1, 0}, {0, 1}}});  // (1, 2, 2)
  Tensor s0 = tensor({{{5.0, 6.0}, {7.0, 8.0}}});
  CHECK(values(scatter(zeros({2, 2, 2}), 0, i0, s0)) == V{0, 6, 7, 0, 5, 0, 0, 8});
  Tensor i1 = tensor({{{2, 0}}, {{1, 2}}});  // (2, 1, 2)
  Tensor s1 = tensor({{{1.0, 2.0}}, {{3.0, 4.0}}});
  CHECK(values(scatter(zeros({2, 3, 2}), 1, i1, s1)) == V{0, 2, 0, 0, 1, 0, 0, 0, 3, 0, 0, 4});
  Tensor r = scatter(zeros({2, 4}), 1, tensor({{1, 2}, {0, 3}}), 2.5);
  CHECK(values(r) == V{0, 2.5, 2.5, 0, 2.5, 0, 0, 2.5});
  Tensor ri = zeros({3}, kInt32).scatter(0, tensor({2}), 7);
  CHECK(ri.dtype() == kInt32);
  CHECK(values(ri) == V{0, 0, 7});
}

TEST_CASE("scatter_add: duplicate indices accumulate") {
  Tensor r = scatter_add(zeros({3}), 0, tensor({0, 1, 0, 0, 2}), tensor({1.f, 2.f, 3.f, 4.f, 5.f}));
  CHECK(values(r) == V{8, 2, 5});
  Tensor r1 = ones({2, 3}).scatter_add(1, tensor({{0, 0, 2}, {1, 1, 1}}),
                                       tensor({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}}));
  CHECK(values(r1) == V{4, 1, 4, 1, 16, 1});
  Tensor r0 = scatter_add(zeros({2, 2}), 0, tensor({{0, 1}, {0, 0}, {1, 1}}),
                          tensor({{1.f, 2.f}, {3.f, 4.f}, {5.f, 6.f}}));
  CHECK(values(r0) == V{4, 4, 5, 8});
  Tensor ri = scatter_add(zeros({2}, kInt64), 0, tensor({1, 1, 1}), tensor({5, 6, 7}));
  CHECK(values(ri) == V{0, 18});
}

TEST_CASE("scatter_: in place on a view, bumps the version, handles aliasing") {
  Tensor x = zeros({2, 3});
  const uint32_t v0 = x._version();
  Tensor& r = x.scatter_(1, tensor({{2}, {0}}), tensor({{1.f}, {2.f}}));
  CHECK(&r == &x);
  CHECK(x._version() > v0);
  CHECK(values(x) == V{0, 0, 1, 2, 0, 0});

  Tensor base = zeros({3, 4});
  Tensor view = base.slice(1, 0, std::nullopt, 2);  // (3, 2), stride (4, 2)
  view.scatter_add_(0, tensor({{0, 0}, {2, 2}}), ones({2, 2}));
  CHECK(values(base) == V{1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0});
  const uint32_t v1 = base._version();
  view.scatter_add_(0, tensor({{0, 0}}), ones({1, 2}));
  CHECK(base._version() > v1);  // views share the counter
  CHECK(values(base) == V{2, 0, 2, 0, 0, 0, 0, 0, 1, 0, 1, 0});

  // src aliasing the destination reads the old values.
  Tensor a = arange(4, kFloat32);
  a.scatter_(0, tensor({1, 0, 3, 2}), a);
  CHECK(values(a) == V{1, 0, 3, 2});
}

// ---- index_select / index_add / embedding ----

TEST_CASE("index_select: dims 0 and 1, int32 and 0-d indices") {
  Tensor x = tensor({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}, {7.f, 8.f, 9.f}});
  Tensor r0 = index_select(x, 0, tensor({2, 0, 2}));
  CHECK(r0.sizes() == IntArrayRef({3, 3}));
  CHECK(values(r0) == V{7, 8, 9, 1, 2, 3, 7, 8, 9});
  Tensor r1 = x.index_select(1, tensor({2, 1}, kInt32));
  CHECK(r1.sizes() == IntArrayRef({3, 2}));
  CHECK(values(r1) == V{3, 2, 6, 5, 9, 8});
  Tensor r2 = index_select(x, 0, scalar_tensor(1, kInt64));
  CHECK(r2.sizes() == IntArrayRef({1, 3}));
  CHECK(values(r2) == V{4, 5, 6});
  Tensor r3 = index_select(x, -1, zeros({0}, kInt64));
  CHECK(r3.sizes() == IntArrayRef({3, 0}));
  Tensor s = index_select(scalar_tensor(4.5), 0, tensor({0}));
  CHECK(s.dim() == 0);
  CHECK(s.item<double>() == 4.5);
}

TEST_CASE("index_add: duplicates and alpha, along dims 0 and 1") {
  Tensor src = arange(12, kFloat32).reshape({4, 3});
  Tensor r = index_add(ones({5, 3}), 0, tensor({0, 4, 2, 0}), src, 2);
  CHECK(values(r) == V{19, 23, 27, 1, 1, 1, 13, 15, 17, 1, 1, 1, 7, 9, 11});
  Tensor r1 = zeros({2, 3}).index_add(1, tensor({2, 2, 0}, kInt32),
                                      tensor({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}}));
  CHECK(values(r1) == V{3, 0, 3, 6, 0, 9});
  Tensor ri = index_add(zeros({3}, kInt64), 0, tensor({1, 1}), tensor({5, 7}), 3);
  CHECK(ri.dtype() == kInt64);
  CHECK(values(ri) == V{0, 36, 0});
  Tensor rh = index_add(zeros({2}, kHalf), 0, tensor({1, 1}), tensor({0.5, 0.25}, kHalf));
  CHECK(rh.dtype() == kHalf);
  CHECK(values(rh) == V{0, 0.75});
  Tensor rb = index_add(tensor({false, false, true}), 0, tensor({0, 0}), tensor({false, true}));
  CHECK(values(rb) == V{1, 0, 1});
}

TEST_CASE("index_add: contributions are applied sequentially in index order") {
  // Float addition is not associative: only the sequential order gives this exact result.
  const int n = 4000;
  std::vector<float> src(n);
  for (int i = 0; i < n; ++i) src[i] = (i % 3 == 0) ? 1e8f : (i % 3 == 1 ? 1.f : -1e8f + 3.f);
  float expected = 0.f;
  for (int i = 0; i < n; ++i) expected += src[i];
  Tensor idx = zeros({n}, kInt64);
  Tensor out = index_add(zeros({1}), 0, idx, tensor(src));
  CHECK(out.item<float>() == expected);
  Tensor out2 = scatter_add(zeros({1}), 0, idx, tensor(src));
  CHECK(out2.item<float>() == expected);
}

TEST_CASE("index_add_: in place, bumps the version") {
  Tensor x = zeros({3, 2});
  const uint32_t v0 = x._version();
  Tensor& r = x.index_add_(0, tensor({2, 2}), ones({2, 2}), 0.5);
  CHECK(&r == &x);
  CHECK(x._version() > v0);
  CHECK(values(x) == V{0, 0, 0, 0, 1, 1});
  Tensor t = zeros({2, 3}).t();  // (3, 2) transposed destination
  t.index_add_(1, tensor({1}), tensor({{1.f}, {2.f}, {3.f}}));
  CHECK(values(t) == V{0, 1, 0, 2, 0, 3});
}

TEST_CASE("embedding: rows of weight with indices.sizes() + (dim,)") {
  Tensor w = arange(12, kFloat32).reshape({4, 3});
  Tensor e = embedding(w, tensor({{0, 2}, {3, 3}}));
  CHECK(e.sizes() == IntArrayRef({2, 2, 3}));
  CHECK(values(e) == V{0, 1, 2, 6, 7, 8, 9, 10, 11, 9, 10, 11});
  Tensor e32 = embedding(w, tensor({1, 0}, kInt32), /*padding_idx=*/0);
  CHECK(e32.sizes() == IntArrayRef({2, 3}));
  CHECK(values(e32) == V{3, 4, 5, 0, 1, 2});
  Tensor e0 = embedding(w, scalar_tensor(2, kInt64));
  CHECK(e0.sizes() == IntArrayRef({3}));
  CHECK(values(e0) == V{6, 7, 8});
  CHECK(embedding(w, zeros({2, 0}, kInt64)).sizes() == IntArrayRef({2, 0, 3}));
}

// ---- sort / argsort ----

TEST_CASE("sort: ascending and descending with duplicates, NaN and infinities") {
  Tensor x = tensor({3.0, 1.0, kNaN, 2.0, 1.0, -INFINITY}, kFloat32);
  auto [va, ia] = sort(x);
  CHECK(same_values_with_nan(values(va), V{-INFINITY, 1, 1, 2, 3, kNaN}));
  CHECK(values(ia) == V{5, 1, 4, 3, 0, 2});
  CHECK(ia.dtype() == kInt64);
  auto [vd, id] = x.sort(0, /*descending=*/true);
  CHECK(same_values_with_nan(values(vd), V{kNaN, 3, 2, 1, 1, -INFINITY}));
  CHECK(values(id) == V{2, 0, 3, 1, 4, 5});
  // Several NaNs keep their order; so do -0.0 and 0.0, which compare equal.
  Tensor y = tensor({kNaN, 0.0, kNaN, -0.0, -1.0});
  CHECK(values(argsort(y)) == V{4, 1, 3, 0, 2});
  CHECK(values(argsort(y, 0, true)) == V{0, 2, 1, 3, 4});
}

TEST_CASE("sort: stable keeps equal elements in input order") {
  Tensor x = tensor({2, 1, 2, 1, 2, 1});
  auto [v, i] = sort(x, -1, false, /*stable=*/true);
  CHECK(values(v) == V{1, 1, 1, 2, 2, 2});
  CHECK(values(i) == V{1, 3, 5, 0, 2, 4});
  CHECK(values(std::get<1>(sort(x, -1, true, true))) == V{0, 2, 4, 1, 3, 5});
  CHECK(values(x.argsort(0, false, true)) == V{1, 3, 5, 0, 2, 4});
}

TEST_CASE("sort: along dim 0 of a 2-D tensor, other dtypes, 0-d and empty") {
  Tensor x = tensor({{3.f, 1.f}, {1.f, 2.f}, {2.f, 0.f}});
  auto [v, i] = sort(x, 0);
  CHECK(values(v) == V{1, 0, 2, 1, 3, 2});
  CHECK(values(i) == V{1, 2, 2, 0, 0, 1});
  CHECK(values(argsort(x, 1, true)) == V{0, 1, 1, 0, 0, 1});

  auto [vb, ib] = sort(tensor({true, false, true, false}));
  CHECK(vb.dtype() == kBool);
  CHECK(values(vb) == V{0, 0, 1, 1});
  CHECK(values(ib) == V{1, 3, 0, 2});
  Tensor h = tensor({0.5, kNaN, -2.0, 0.25}, kHalf);
  auto [vh, ih] = sort(h, 0, true);
  CHECK(vh.dtype() == kHalf);
  CHECK(same_values_with_nan(values(vh), V{kNaN, 0.5, 0.25, -2.0}));
  CHECK(values(ih) == V{1, 0, 3, 2});
  CHECK(values(argsort(tensor({3.0, -1.0, 2.0}, kBFloat16))) == V{1, 2, 0});
  CHECK(values(argsort(tensor({300, -7, 12}, kInt32))) == V{1, 2, 0});

  auto [v0, i0] = sort(scalar_tensor(2.0));
  CHECK(v0.dim() == 0);
  CHECK(v0.item<double>() == 2.0);
  CHECK(i0.item<int64_t>() == 0);
  auto [ve, ie] = sort(zeros({2, 0}), 1);
  CHECK(ve.sizes() == IntArrayRef({2, 0}));
  CHECK(ie.sizes() == IntArrayRef({2, 0}));
}

TEST_CASE("sort: large rows match std::stable_sort, for any thread count") {
  const int64_t R = 300, L = 257;
  Tensor x = pseudo_random({R, L}, 7);
  auto [v, i] = sort(x, 1);
  const float* xp = x.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  const int64_t* ip = i.data_ptr<int64_t>();
  bool ok = true;
  for (int64_t r = 0; r < R && ok; ++r) {
    std::vector<int64_t> order(L);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return xp[r * L + a] < xp[r * L + b]; });
    for (int64_t j = 0; j < L; ++j) {
      ok = ok && ip[r * L + j] == order[j] && vp[r * L + j] == xp[r * L + order[j]];
    }
  }
  CHECK(ok);
  const int threads = get_num_threads();
  set_num_threads(1);
  auto [v1, i1] = sort(x, 0, true);
  set_num_threads(std::max(threads, 2));
  auto [v2, i2] = sort(x, 0, true);
  set_num_threads(threads);
  CHECK(bitwise_equal(v1, v2));
  CHECK(bitwise_equal(i1, i2));
}

// ---- topk ----

TEST_CASE(
    "topk: largest, smallest, sorted and unsorted, ties prefer the "
    "smaller index") {
  Tensor x = tensor({1.f, 5.f, 3.f, 5.f, 2.f});
  auto [v, i] = topk(x, 2);
  CHECK(values(v) == V{5, 5});
  CHECK(values(i) == V{1, 3});
  auto [vs, is] = x.topk(2, 0, /*largest=*/false);
  CHECK(values(vs) == V{1, 2});
  CHECK(values(is) == V{0, 4});
  auto [vu, iu] = topk(x, 3, 0, true, /*sorted=*/false);  // the chosen three, in input order
  CHECK(values(vu) == V{5, 3, 5});
  CHECK(values(iu) == V{1, 2, 3});
  auto [va, ia] = topk(x, 5, -1, true);
  CHECK(values(va) == V{5, 5, 3, 2, 1});
  CHECK(values(ia) == V{1, 3, 2, 4, 0});
  auto [vz, iz] = topk(x, 0);
  CHECK(vz.sizes() == IntArrayRef({0}));
  CHECK(iz.dtype() == kInt64);
}

TEST_CASE("topk: NaN counts as the largest value, 2-D along dim 0") {
  Tensor x = tensor({1.0, kNaN, 3.0});
  auto [v, i] = topk(x, 1);
  CHECK(std::isnan(values(v)[0]));
  CHECK(values(i) == V{1});
  auto [vs, is] = topk(x, 2, 0, false);
  CHECK(values(vs) == V{1, 3});
  CHECK(values(is) == V{0, 2});
  Tensor y = tensor({{1, 6}, {4, 2}, {3, 5}});
  auto [vy, iy] = topk(y, 2, 0);
  CHECK(vy.sizes() == IntArrayRef({2, 2}));
  CHECK(values(vy) == V{4, 6, 3, 5});
  CHECK(values(iy) == V{1, 0, 2, 2});
}

TEST_CASE("topk: agrees with a stable descending sort on large inputs") {
  Tensor x = pseudo_random({64, 300}, 11, 16);
  auto [v, i] = topk(x, 7, 1);
  auto [sv, si] = sort(x, 1, true, true);
  CHECK(bitwise_equal(v, sv.narrow(1, 0, 7)));
  CHECK(bitwise_equal(i, si.narrow(1, 0, 7)));
  auto [vs, is] = topk(x, 5, 0, false);
  auto [av, ai] = sort(x, 0, false, true);
  CHECK(bitwise_equal(vs, av.narrow(0, 0, 5)));
  CHECK(bitwise_equal(is, ai.narrow(0, 0, 5)));
}

// ---- nonzero ----

TEST_CASE("nonzero: coordinates in row-major order") {
  Tensor r = nonzero(tensor({{0, 1, 0}, {2, 0, 3}}));
  CHECK(r.sizes() == IntArrayRef({3, 2}));
  CHECK(r.dtype() == kInt64);
  CHECK(values(r) == V{0, 1, 1, 0, 1, 2});
  Tensor f = nonzero(tensor({0.0, -0.0, kNaN, 1.0}));  // -0.0 is zero, NaN is not
  CHECK(f.sizes() == IntArrayRef({2, 1}));
  CHECK(values(f) == V{2, 3});
  Tensor b = nonzero(tensor({{{false, true}}, {{true, true}}}));  // (2, 1, 2)
  CHECK(values(b) == V{0, 0, 1, 1, 0, 0, 1, 0, 1});
  CHECK(nonzero(scalar_tensor(5)).sizes() == IntArrayRef({1, 0}));
  CHECK(nonzero(scalar_tensor(0)).sizes() == IntArrayRef({0, 0}));
  CHECK(nonzero(zeros({2, 3})).sizes() == IntArrayRef({0, 2}));
  CHECK(nonzero(zeros({0, 3})).sizes() == IntArrayRef({0, 2}));
  Tensor h = nonzero(tensor({0.0, 0.5}, kHalf));
  CHECK(values(h) == V{1});
}

// ---- strides ----

TEST_CASE("index ops: non-contiguous inputs give bitwise the contiguous results") {
  Tensor x = pseudo_random({6, 5}, 3);
  Tensor xn = non_contiguous(x);
  Tensor xt = x.t().contiguous().t();  // same values, column-major
  REQUIRE(!xn.is_contiguous());
  REQUIRE(!xt.is_contiguous());
  Tensor i0 = pseudo_index({4, 5}, 6, 5);  // for dim 0
  Tensor i1 = pseudo_index({6, 3}, 5, 9);  // for dim 1
  Tensor src = pseudo_random({6, 5}, 4);
  Tensor sel = tensor({4, 0, 4, 2});
  for (const Tensor& a : {xn, xt}) {
    CHECK(bitwise_equal(gather(a, 0, non_contiguous(i0)), gather(x, 0, i0)));
    CHECK(bitwise_equal(gather(a, 1, non_contiguous(i1)), gather(x, 1, i1)));
    CHECK(bitwise_equal(scatter(a, 0, non_contiguous(i0), non_contiguous(src)),
                        scatter(x, 0, i0, src)));
    CHECK(
        bitwise_equal(scatter_add(a, 1, i1, src.t().contiguous().t()), scatter_add(x, 1, i1, src)));
    CHECK(bitwise_equal(scatter(a, 1, non_contiguous(i1), 1.5), scatter(x, 1, i1, 1.5)));
    CHECK(bitwise_equal(index_select(a, 0, non_contiguous(sel)), index_select(x, 0, sel)));
    CHECK(bitwise_equal(index_select(a, 1, sel), index_select(x, 1, sel)));
    CHECK(
        bitwise_equal(index_add(a, 0, non_contiguous(sel), non_contiguous(src.narrow(0, 0, 4)), -2),
                      index_add(x, 0, sel, src.narrow(0, 0, 4), -2)));
    CHECK(bitwise_equal(index_add(a, 1, sel, src.narrow(1, 0, 4)),
                        index_add(x, 1, sel, src.narrow(1, 0, 4))));
    CHECK(bitwise_equal(embedding(a, non_contiguous(i1)), embedding(x, i1)));
    for (int64_t d : {0, 1}) {
      auto [v, i] = sort(a, d, d == 1);
      auto [vc, ic] = sort(x, d, d == 1);
      CHECK(bitwise_equal(v, vc));
      CHECK(bitwise_equal(i, ic));
      auto [tv, ti] = topk(a, 3, d, d == 0);
      auto [tvc, tic] = topk(x, 3, d, d == 0);
      CHECK(bitwise_equal(tv, tvc));
      CHECK(bitwise_equal(ti, tic));
    }
    CHECK(bitwise_equal(nonzero(a), nonzero(x)));
  }
  // In place into non-contiguous destinations.
  Tensor d1 = non_contiguous(x), d2 = x.clone();
  d1.scatter_add_(1, i1, src);
  d2.scatter_add_(1, i1, src);
  CHECK(bitwise_equal(d1, d2));
  Tensor d3 = x.t().contiguous().t(), d4 = x.clone();
  d3.index_add_(0, sel, src.narrow(0, 0, 4), 3);
  d4.index_add_(0, sel, src.narrow(0, 0, 4), 3);
  CHECK(bitwise_equal(d3, d4));
}

TEST_CASE("index ops: large scatter_add and index_add are thread-count independent") {
  Tensor src = pseudo_random({512, 96}, 21);
  Tensor idx = pseudo_index({512, 96}, 40, 22);
  Tensor rows = pseudo_index({512}, 40, 23);
  const int threads = get_num_threads();
  set_num_threads(1);
  Tensor a1 = scatter_add(zeros({40, 96}), 0, idx, src);
  Tensor b1 = index_add(zeros({40, 96}), 0, rows, src);
  Tensor g1 = gather(src, 0, idx);
  set_num_threads(std::max(threads, 2));
  Tensor a2 = scatter_add(zeros({40, 96}), 0, idx, src);
  Tensor b2 = index_add(zeros({40, 96}), 0, rows, src);
  Tensor g2 = gather(src, 0, idx);
  set_num_threads(threads);
  CHECK(bitwise_equal(a1, a2));
  CHECK(bitwise_equal(b1, b2));
  CHECK(bitwise_equal(g1, g2));
  // Spot-check one gathered element against the definition.
  CHECK(g1.data_ptr<float>()[5 * 96 + 7] ==
        src.data_ptr<float>()[idx.data_ptr<int64_t>()[5 * 96 + 7] * 96 + 7]);
}

// ---- errors ----

TEST_CASE("gather: errors name the op, dtypes, shapes and values") {
  Tensor x = zeros({2, 3});
  EMBER_CHECK_THROWS(gather(x, 1, zeros({2, 3})), DTypeError, "[gather]", "float32");
  EMBER_CHECK_THROWS(gather(x, 1, zeros({2, 3}, kInt32)), DTypeError, "[gather]", "int32");
  EMBER_CHECK_THROWS(gather(x, 1, tensor({{0, 3}})), IndexError, "[gather]", "index 3",
                     "dimension 1", "size 3");
  EMBER_CHECK_THROWS(gather(x, 0, tensor({{-1}})), IndexError, "[gather]", "index -1", "size 2");
  EMBER_CHECK_THROWS(gather(x, 0, tensor({0, 1})), ShapeError, "[gather]", "(2,)", "(2, 3)");
  EMBER_CHECK_THROWS(gather(x, 0, zeros({1, 4}, kInt64)), ShapeError, "[gather]", "(1, 4)",
                     "(2, 3)", "dimension 1");
  EMBER_CHECK_THROWS(gather(x, 2, tensor({{0}})), IndexError, "[gather]", "dimension out of range");
}

TEST_CASE("scatter: errors name the op, dtypes, shapes and values") {
  Tensor x = zeros({2, 3});
  Tensor idx = tensor({{0, 1}});
  EMBER_CHECK_THROWS(scatter(x, 0, idx, zeros({1, 2}, kFloat64)), DTypeError, "[scatter]",
                     "float64", "float32");
  EMBER_CHECK_THROWS(scatter(x, 0, idx.to(kInt32), zeros({1, 2})), DTypeError, "[scatter]",
                     "int32");
  EMBER_CHECK_THROWS(scatter(x, 0, idx, zeros({1, 1})), ShapeError, "[scatter]", "(1, 2)",
                     "(1, 1)");
  EMBER_CHECK_THROWS(scatter(x, 0, tensor({{0, 2}}), zeros({1, 2})), IndexError, "[scatter]",
                     "index 2", "dimension 0", "size 2");
  EMBER_CHECK_THROWS(scatter(x, 1, tensor({{5}}), 1.0), IndexError, "[scatter]", "index 5",
                     "size 3");
  EMBER_CHECK_THROWS(scatter(x, 1, tensor({0, 1}), 1.0), ShapeError, "[scatter]", "(2,)", "(2, 3)");
  // Along dim the index may be longer than self (3 > 2): no error, all land on row 0.
  CHECK(values(scatter_add(x, 0, zeros({3, 1}, kInt64), ones({3, 1}))) == V{3, 0, 0, 0, 0, 0});
  EMBER_CHECK_THROWS(scatter_add(x, 1, zeros({3, 1}, kInt64), zeros({3, 1})), ShapeError,
                     "[scatter_add]", "(3, 1)", "(2, 3)");
  EMBER_CHECK_THROWS(scatter_add(x, 1, tensor({{7}}), zeros({1, 1})), IndexError, "[scatter_add]",
                     "index 7", "size 3");
  // In place: a failed range check writes nothing; an expanded destination is refused.
  Tensor y = ones({2, 3});
  EMBER_CHECK_THROWS(y.scatter_(1, tensor({{0, 9}}), zeros({1, 2})), IndexError, "[scatter_]",
                     "index 9");
  CHECK(values(y) == V(6, 1.0));
  Tensor e = ones({1, 3}).expand({2, 3});
  EMBER_CHECK_THROWS(e.scatter_add_(0, tensor({{0}}), ones({1, 1})), ValueError, "[scatter_add_]",
                     "(2, 3)");
}

TEST_CASE(
    "index_select, index_add, embedding: errors name the op, shapes and "
    "values") {
  Tensor x = zeros({3, 3});
  EMBER_CHECK_THROWS(index_select(x, 0, tensor({{0, 1}, {1, 0}})), ShapeError, "[index_select]",
                     "(2, 2)");
  EMBER_CHECK_THROWS(index_select(x, 0, tensor({0.0, 1.0})), DTypeError, "[index_select]", "float");
  EMBER_CHECK_THROWS(index_select(x, 1, tensor({0, 3})), IndexError, "[index_select]", "index 3",
                     "dimension 1", "size 3");
  EMBER_CHECK_THROWS(index_select(scalar_tensor(1.0), 0, tensor({0, 0})), ShapeError,
                     "[index_select]", "one index");

  Tensor y = zeros({5, 3});
  EMBER_CHECK_THROWS(index_add(y, 0, tensor({0, 1, 2}), zeros({2, 3})), ShapeError, "[index_add]",
                     "(2, 3)", "3 indices");
  EMBER_CHECK_THROWS(index_add(y, 0, tensor({0, 1}), zeros({2, 4})), ShapeError, "[index_add]",
                     "(2, 4)", "(5, 3)");
  EMBER_CHECK_THROWS(index_add(y, 0, tensor({0, 1}), zeros({2, 3}, kFloat64)), DTypeError,
                     "[index_add]", "float64", "float32");
  EMBER_CHECK_THROWS(index_add(y, 0, tensor({0, 5}), zeros({2, 3})), IndexError, "[index_add]",
                     "index 5", "size 5");
  EMBER_CHECK_THROWS(index_add(y, 0, tensor({0.0}), zeros({1, 3})), DTypeError, "[index_add]");
  EMBER_CHECK_THROWS(index_add(zeros({2}, kInt64), 0, tensor({0}), zeros({1}, kInt64), 0.5),
                     ValueError, "[index_add]", "alpha", "int64");
  EMBER_CHECK_THROWS(y.index_add_(1, tensor({-1}), zeros({5, 1})), IndexError, "[index_add]",
                     "index -1");
  CHECK(values(y) == V(15, 0.0));

  Tensor w = zeros({4, 2});
  EMBER_CHECK_THROWS(embedding(zeros({4}), tensor({0})), ShapeError, "[embedding]", "(4,)");
  EMBER_CHECK_THROWS(embedding(w, tensor({0.0})), DTypeError, "[embedding]", "float");
  EMBER_CHECK_THROWS(embedding(w, tensor({{0, 4}})), IndexError, "[embedding]", "index 4",
                     "size 4");
  EMBER_CHECK_THROWS(embedding(w, tensor({0}), 4), IndexError, "[embedding]", "padding_idx 4",
                     "4 embeddings");
  EMBER_CHECK_THROWS(embedding(w, tensor({0}), -3), IndexError, "[embedding]", "padding_idx -3");
}

TEST_CASE("sort, argsort, topk: errors name the op and the sizes") {
  Tensor x = zeros({2, 3});
  EMBER_CHECK_THROWS(sort(x, 2), IndexError, "[sort]", "dimension out of range");
  EMBER_CHECK_THROWS(argsort(x, -3), IndexError, "[sort]", "-3");
  EMBER_CHECK_THROWS(topk(x, 4), IndexError, "[topk]", "k = 4", "size 3", "(2, 3)");
  EMBER_CHECK_THROWS(topk(x, -1, 0), IndexError, "[topk]", "k = -1", "size 2");
  EMBER_CHECK_THROWS(topk(x, 1, 5), IndexError, "[topk]", "dimension out of range");
}
