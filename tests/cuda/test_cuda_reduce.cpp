// Reductions, arg-reductions, cumsum and softmax on CUDA tensors against the CPU's, on odd sizes,
// several dim sets and non-contiguous views, with NaN and ties; and the CUDA results repeat
// bitwise from run to run. Without a GPU each case prints "skipped".
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/kernels.hpp"
#include "cuda/cuda_test_util.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/ember.hpp"

using namespace ember;
using ember::test::agree;
using ember::test::gpu;

namespace {

/// Reductions and scans: a few roundings of dt.
double tol_of(DType t) { return 5 * ember::test::tolerance(t); }

}  // namespace

TEST_CASE("cuda reduce: sum, prod, mean, amax, amin, all, any over dim sets and layouts") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  const std::vector<std::vector<int64_t>> dim_sets = {{}, {0}, {1}, {2}, {0, 2}, {1, 2}};
  uint64_t seed = 500;
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt64, kInt32, kUInt8, kBool}) {
    Generator g(++seed);
    Tensor base = (rand({7, 33, 5}, g) * 4.0 - 2.0);
    if (dt == kUInt8 || dt == kBool) base = base.abs();
    const std::vector<Tensor> xs = {base.to(dt), base.to(dt).permute({2, 0, 1}).contiguous()
                                                     .permute({1, 2, 0})};  // strided view
    for (const Tensor& x : xs)
      for (const auto& dims : dim_sets) {
        INFO(dt << " dims " << IntArrayRef(dims) << (x.is_contiguous() ? "" : " strided"));
        const Tensor xc = x.to(cu);
        CHECK(agree(sum(xc, dims).cpu(), sum(x, dims), tol_of(sum(x, dims).dtype())));
        CHECK(agree(amax(xc, dims).cpu(), amax(x, dims), 0));
        CHECK(agree(amin(xc, dims, true).cpu(), amin(x, dims, true), 0));
        if (is_floating(dt)) CHECK(agree(mean(xc, dims).cpu(), mean(x, dims), tol_of(dt)));
      }
    const Tensor x = xs[1];
    for (int64_t d = 0; d < 3; ++d) {
      INFO(dt << " dim " << d);
      CHECK(agree(prod(x.to(cu), d).cpu(), prod(x, d), 1e3 * tol_of(prod(x, d).dtype())));
      CHECK(test::bitwise_equal(all(x.to(cu), d).cpu(), all(x, d)));
      CHECK(test::bitwise_equal(any(x.to(cu), d).cpu(), any(x, d)));
    }
  }
}

TEST_CASE("cuda sum/prod with dtype=: every output dtype of the category, as the wide result "
          "converted") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  // The kernels write x's dtype or the accumulator's (float64, int64); any other output dtype is
  // the accumulator's result converted once, so it must be bitwise that result's .to(dtype).
  const std::vector<DType> floats = {kFloat32, kFloat64, kFloat16, kBFloat16};
  const std::vector<DType> ints = {kInt64, kInt32, kUInt8, kInt8};
  uint64_t seed = 900;
  for (DType dt : {kFloat32, kFloat16, kBFloat16, kInt32, kUInt8, kBool}) {
    Generator g(++seed);
    const Tensor base = rand({6, 45, 3}, g) * 3.0 - (dt == kUInt8 || dt == kBool ? 0.0 : 1.5);
    const Tensor x = base.to(dt).permute({1, 0, 2});  // strided view
    const Tensor xc = x.to(cu);
    const bool fp = is_floating(dt);
    const DType wide = fp ? kFloat64 : kInt64;
    for (const std::vector<int64_t>& dims : {std::vector<int64_t>{0}, {1, 2}, {}})
      for (DType out : fp ? floats : ints) {
        INFO(dt << " -> " << out << " dims " << IntArrayRef(dims));
        const Tensor s = sum(xc, dims, false, out).cpu();
        REQUIRE(s.dtype() == out);
        CHECK(test::bitwise_equal(s, sum(xc, dims, false, wide).to(out).cpu()));
        CHECK(agree(s, sum(x, dims, false, out), tol_of(out)));
        if (dims.size() == 1) {
          const Tensor pr = prod(xc, dims[0], false, out).cpu();
          CHECK(test::bitwise_equal(pr, prod(xc, dims[0], false, wide).to(out).cpu()));
        }
      }
  }
}

TEST_CASE("cuda max/min/argmax/argmin: first extremum, NaN wins, ties keep the first index") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor t = tensor(std::vector<double>{1, 3, 3, -2, nan, 3, nan, 0, 5, 5, -7, -7}).reshape({3, 4});
  for (DType dt : {kFloat32, kFloat64, kFloat16})
    for (int64_t d : {0, 1}) {
      const Tensor x = t.to(dt);
      auto [v, i] = max(x, d);
      auto [vc, ic] = max(x.to(cu), d);
      CHECK(agree(vc.cpu(), v, 0));
      CHECK(test::bitwise_equal(ic.cpu(), i));
      auto [w, j] = min(x, d, true);
      auto [wc, jc] = min(x.to(cu), d, true);
      CHECK(agree(wc.cpu(), w, 0));
      CHECK(test::bitwise_equal(jc.cpu(), j));
    }
  // A long line (several warps) with the extremum repeated: the first index wins.
  Tensor big = zeros({3, 5000});
  big.index_put_({0, 4321}, 9.0);
  big.index_put_({0, 4999}, 9.0);
  big.index_put_({2, 17}, -3.0);
  big.index_put_({2, 18}, -3.0);
  CHECK(test::bitwise_equal(argmax(big.to(cu), 1).cpu(), argmax(big, 1)));
  CHECK(test::bitwise_equal(argmin(big.to(cu), 1).cpu(), argmin(big, 1)));
}

TEST_CASE("cuda cumsum and softmax/log_softmax equal the CPU's, results repeat bitwise") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  uint64_t seed = 600;
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt64}) {
    Generator g(++seed);
    const Tensor x = (rand({6, 1000, 3}, g) * 8.0 - 4.0).to(dt);
    const Tensor xs = x.transpose(0, 2);  // strided
    for (int64_t d = 0; d < 3; ++d)
      for (const Tensor& v : {x, xs}) {
        INFO(dt << " dim " << d << (v.is_contiguous() ? "" : " strided"));
        CHECK(agree(cumsum(v.to(cu), d).cpu(), cumsum(v, d), 10 * tol_of(dt)));
        if (!is_floating(dt)) continue;
        CHECK(agree(softmax(v.to(cu), d).cpu(), softmax(v, d), 4 * tol_of(dt)));
        CHECK(agree(log_softmax(v.to(cu), d).cpu(), log_softmax(v, d), 4 * tol_of(dt)));
      }
  }
  // Extreme logits and a -inf mask stay finite where the CPU's do.
  Tensor logits = tensor(std::vector<double>{1e30, -1e30, 0, -INFINITY, 3, 4}).reshape({2, 3});
  CHECK(agree(softmax(logits.to(cu), 1).cpu(), softmax(logits, 1), 1e-12));
  CHECK(agree(log_softmax(logits.to(cu), 1).cpu(), log_softmax(logits, 1), 1e-12));
  // Deterministic: the same reduction twice gives the same bits.
  Generator g(7);
  Tensor big = randn({4096, 513}, g).to(cu);
  CHECK(test::bitwise_equal(sum(big, {0}).cpu(), sum(big, {0}).cpu()));
  CHECK(test::bitwise_equal(softmax(big, 1).cpu(), softmax(big, 1).cpu()));
}

TEST_CASE("cuda reduce: long reductions of few outputs are split, the result repeats bitwise") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  Generator g(560);
  // (A, B, C) with the reduced elements far beyond one chunk (32768): one contiguous dim, one
  // strided dim, two dims, and everything; a NaN, a zero and a false in the middle.
  const Tensor base = rand({3, 70001, 2}, g) * 2.0 + 0.5;
  const std::vector<std::vector<int64_t>> dim_sets = {{}, {1}, {0, 1}};
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kInt64, kBool}) {
    const Tensor x = base.to(dt);
    const std::vector<Tensor> xs = {x, x.permute({1, 0, 2}).contiguous().permute({1, 0, 2}),
                                    x.select(2, 1)};  // contiguous, (70001) outermost, stride 2
    for (const Tensor& v : xs)
      for (const auto& dims : dim_sets) {
        if (!dims.empty() && dims.back() >= v.dim()) continue;
        INFO(dt << " dims " << IntArrayRef(dims) << " of " << v.sizes()
                << (v.is_contiguous() ? "" : " strided"));
        const Tensor vc = v.to(cu);
        const Tensor s = sum(vc, dims).cpu();
        CHECK(agree(s, sum(v, dims), tol_of(s.dtype())));
        CHECK(test::bitwise_equal(sum(vc, dims).cpu(), s));  // the same split every time
        CHECK(agree(amax(vc, dims).cpu(), amax(v, dims), 0));
        CHECK(agree(amin(vc, dims).cpu(), amin(v, dims), 0));
      }
    Tensor special = x.clone();
    if (is_floating(dt)) special.select(1, 50000).fill_(std::numeric_limits<double>::quiet_NaN());
    else special.select(1, 50000).fill_(0);
    const Tensor sc = special.to(cu);
    CHECK(agree(amax(sc).cpu(), amax(special), 0));
    CHECK(agree(sum(sc).cpu(), sum(special), tol_of(sum(special).dtype())));
    CHECK(test::bitwise_equal(all(sc).cpu(), all(special)));
    CHECK(test::bitwise_equal(any(sc).cpu(), any(special)));
    CHECK(test::bitwise_equal(all(sc, 1).cpu(), all(special, 1)));
  }
}

TEST_CASE("cuda sum over the rows of contiguous columns: the column kernels") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  // sum(x, 0) of a row-major (R, K) matrix, a bias gradient's (B, T, N) summed over (B, T) and
  // a position embedding's gradient, (B, T, C) summed over B (the kept (T, C) one dim of T C
  // columns), run the column kernels (blocks of 32 columns x 8 row lanes reading whole rows;
  // 16-byte chunks of each row where the rows fall so). Against the CPU, against the general kernel
  // (set_reduce_layout_variant(0)) to rounding, repeated bitwise; rows padded to an odd
  // length and a misaligned start take the one-value kernel, bitwise the chunked one's result.
  struct Case {
    std::vector<int64_t> shape, dims;
  };
  const std::vector<Case> cases = {{{37, 24}, {0}},       {{1000, 64}, {0}}, {{3, 5}, {0}},
                                   {{2, 33, 40}, {0, 1}}, {{4100, 16}, {0}}, {{70, 1031}, {0}},
                                   {{3, 17, 40}, {0}}};
  uint64_t seed = 610;
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    for (const Case& c : cases) {
      Generator g(++seed);
      const Tensor x = (rand(c.shape, g) * 2.0 - 1.0).to(dt);
      const int64_t K = c.shape.back();
      std::vector<int64_t> padded_shape = c.shape;
      padded_shape.back() = K + 1;
      // The same values in rows of K + 1 (a column slice), and starting one element late.
      const Tensor padded =
          zeros(padded_shape, TensorOptions(dt).device(cu)).narrow(-1, 0, K).copy_(x.to(cu));
      const Tensor late = zeros({x.numel() + 1}, TensorOptions(dt).device(cu))
                              .narrow(0, 1, x.numel())
                              .view(c.shape)
                              .copy_(x.to(cu));
      const Tensor xc = x.to(cu);
      for (DType out : {dt, kFloat32, kFloat64}) {
        INFO(dt << " -> " << out << " shape " << IntArrayRef(c.shape));
        const Tensor s = sum(xc, c.dims, false, out).cpu();
        REQUIRE(s.dtype() == out);
        CHECK(agree(s, sum(x, c.dims, false, out), tol_of(out)));
        CHECK(test::bitwise_equal(sum(xc, c.dims, false, out).cpu(), s));
        CHECK(test::bitwise_equal(sum(padded, c.dims, false, out).cpu(), s));
        CHECK(test::bitwise_equal(sum(late, c.dims, false, out).cpu(), s));
        cuda::set_reduce_layout_variant(0);
        const Tensor general = sum(xc, c.dims, false, out).cpu();
        cuda::set_reduce_layout_variant(-1);
        CHECK(agree(s, general, tol_of(out)));
      }
      CHECK(agree(mean(xc, c.dims).cpu(), mean(x, c.dims), tol_of(dt)));
    }
  }
  // Integer sums keep the general kernel (wrapping int64); the result is the CPU's exactly.
  Generator g(700);
  const Tensor xi = randint(-50, 50, {300, 24}, g).to(kInt32);
  CHECK(test::bitwise_equal(sum(xi.to(cu), 0).cpu(), sum(xi, 0)));
}

TEST_CASE("cuda reduce along contiguous rows: one warp per output, 16-byte chunks") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  // Reductions of 1024 or more outputs along a unit-stride dim run one warp per output, each lane
  // folding groups of 16 bytes (then the values past the last whole group), read as one chunk
  // where every row starts aligned, else value by value. Every op and dtype against the CPU;
  // against the general kernel (set_reduce_layout_variant(0)): max, min, all and any bitwise, sums
  // to rounding; repeated bitwise; the same values in rows of a wider tensor (a row stride of R +
  // 1) and starting one element late (rows misaligned) bitwise the contiguous result.
  const std::vector<std::vector<int64_t>> shapes = {
      {1024, 7}, {1100, 64}, {2, 600, 33}, {1030, 300}, {1024, 1}};
  uint64_t seed = 800;
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt64, kInt32, kUInt8, kBool}) {
    for (const std::vector<int64_t>& shape : shapes) {
      Generator g(++seed);
      Tensor base = rand(shape, g) * 4.0 - 2.0;
      if (dt == kUInt8 || dt == kBool) base = base.abs();
      if (dt == kBool) base = base * (rand(shape, g) > 0.1).to(kFloat32);  // some false
      const Tensor x = base.to(dt), xc = x.to(cu);
      const int64_t R = shape.back();
      std::vector<int64_t> wide_shape = shape;
      wide_shape.back() = R + 1;
      const Tensor wide =
          zeros(wide_shape, TensorOptions(dt).device(cu)).narrow(-1, 0, R).copy_(xc);
      const Tensor late = zeros({x.numel() + 1}, TensorOptions(dt).device(cu))
                              .narrow(0, 1, x.numel())
                              .view(shape)
                              .copy_(xc);
      INFO(dt << " shape " << IntArrayRef(shape));
      using Reduction = std::function<Tensor(const Tensor&)>;
      const std::vector<std::pair<std::string, Reduction>> reductions = {
          {"sum", [](const Tensor& t) { return sum(t, {-1}); }},
          {"amax", [](const Tensor& t) { return amax(t, {-1}); }},
          {"amin", [](const Tensor& t) { return amin(t, {-1}, true); }},
          {"all", [](const Tensor& t) { return all(t, -1); }},
          {"any", [](const Tensor& t) { return any(t, -1); }},
          {"prod", [](const Tensor& t) { return prod(t, -1); }},
      };
      for (const auto& [name, f] : reductions) {
        if (name == "prod" && R > 7) continue;  // the products of long rows overflow
        INFO(name);
        const Tensor got = f(xc).cpu(), want = f(x);
        const bool order_free = name != "sum" && name != "prod";
        CHECK(agree(got, want, order_free ? 0 : tol_of(want.dtype())));
        CHECK(test::bitwise_equal(f(xc).cpu(), got));
        CHECK(test::bitwise_equal(f(wide).cpu(), got));
        CHECK(test::bitwise_equal(f(late).cpu(), got));
        cuda::set_reduce_layout_variant(0);
        const Tensor general = f(xc).cpu();
        cuda::set_reduce_layout_variant(-1);
        if (order_free)
          CHECK(test::bitwise_equal(general, got));
        else
          CHECK(agree(general, got, tol_of(want.dtype())));
      }
      if (is_floating(dt)) CHECK(agree(mean(xc, {-1}).cpu(), mean(x, {-1}), tol_of(dt)));
    }
  }
  // NaN propagates as on the CPU: the first NaN of a row wins max and min.
  Tensor n = randn({1024, 40});
  n.index_put_({5, 17}, std::nan(""));
  n.index_put_({1000, 39}, std::nan(""));
  CHECK(agree(amax(n.to(cu), {-1}).cpu(), amax(n, {-1}), 0));
  CHECK(agree(amin(n.to(cu), {-1}).cpu(), amin(n, {-1}), 0));
}

TEST_CASE("cuda softmax rows cached in shared memory: odd lengths, offsets, every float dtype") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  uint64_t seed = 700;
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    for (int64_t C : {1, 7, 33, 1024, 1025, 50257}) {
      for (int64_t R : {1, 3}) {
        if (C > 2000 && dt != kFloat32 && dt != kBFloat16) continue;  // time under the emulator
        INFO(dt << " rows " << R << " of " << C);
        Generator g(++seed);
        const Tensor x = (randn({R, C}, g) * 3.0).to(dt);
        CHECK(agree(softmax(x.to(cu), 1).cpu(), softmax(x, 1), 4 * tol_of(dt)));
        CHECK(agree(log_softmax(x.to(cu), -1).cpu(), log_softmax(x, -1), 4 * tol_of(dt)));
        // A contiguous view at an odd element offset: rows sit differently against 16 bytes than
        // the output's.
        const Tensor wide = (randn({R * C + 1}, g) * 3.0).to(dt);
        const Tensor odd = wide.narrow(0, 1, R * C).reshape({R, C});
        CHECK(agree(softmax(wide.to(cu).narrow(0, 1, R * C).reshape({R, C}), 1).cpu(),
                    softmax(odd, 1), 4 * tol_of(dt)));
      }
    }
  }
  // (B, T, C) with a trailing size-1 dim; a row too long for shared memory (60000 float32 values,
  // 240 KB) and one of float64 that fits (28000 values); repeats are bitwise equal.
  Generator g(71);
  const Tensor x4 = randn({2, 3, 40, 1}, g);
  CHECK(agree(softmax(x4.to(cu), 2).cpu(), softmax(x4, 2), 4 * tol_of(kFloat32)));
  const Tensor long_row = randn({2, 60000}, g) * 3.0;
  CHECK(agree(softmax(long_row.to(cu), 1).cpu(), softmax(long_row, 1), 4 * tol_of(kFloat32)));
  const Tensor fits = (randn({1, 28000}, g) * 3.0).to(kFloat64);
  CHECK(agree(softmax(fits.to(cu), 1).cpu(), softmax(fits, 1), 4 * tol_of(kFloat64)));
  const Tensor rep = randn({5, 1031}, g).to(cu);
  CHECK(test::bitwise_equal(softmax(rep, 1).cpu(), softmax(rep, 1).cpu()));
  // A NaN in a row makes that row NaN; -inf entries give 0.
  Tensor special = randn({2, 9}, g);
  special.index_put_({0, 4}, NAN);
  special.index_put_({1, 2}, -INFINITY);
  CHECK(agree(softmax(special.to(cu), 1).cpu(), softmax(special, 1), 4 * tol_of(kFloat32)));
}
