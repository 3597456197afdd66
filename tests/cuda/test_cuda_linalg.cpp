// The linear-algebra ops (matmul, mm, bmm, addmm, baddbmm, outer, dot, linear: all one gemm
// kernel) on CUDA tensors against the CPU's, with the same seeded inputs: sizes that are
// multiples of no tile with M, N and K all different, every dtype the CPU gemm takes, transposed,
// sliced, strided and expanded operands, broadcast batches, more batches than one grid covers,
// alpha/beta (beta == 0 ignoring NaN), empty sums, gradients, and the CPU's typed errors.
// Floating results agree to a few roundings scaled by sqrt(K) (float32 is exact FMA arithmetic,
// no TF32, which would miss by ~1e-3); integers exactly (wrapping sums). The CUDA results repeat
// bitwise and do not depend on the tile size. Without a GPU each case prints "skipped".
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "cuda/cuda_test_util.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/ember.hpp"

using namespace ember;
using ember::test::agree;
using ember::test::gpu;

namespace {

const DType kAllTypes[] = {kFloat32, kFloat64, kFloat16, kBFloat16, kInt64, kInt32, kInt8, kUInt8};

/// Tolerance of a K-term sum in dt: float32/float64 a few roundings growing like sqrt(K);
/// float16/bfloat16 (summed in float on both devices) a couple of roundings of the result;
/// integers exact.
double tol_of(DType dt, int64_t K) {
  const double one = ember::test::tolerance(dt);
  if (dt == kFloat16 || dt == kBFloat16) return 2.0 * one;
  return 4.0 * one * std::sqrt(static_cast<double>(std::max<int64_t>(K, 1)));
}

/// Seeded values of dt, never all zero: normal for floating types, small integers (negative ones
/// for signed types; int8 sums wrap) otherwise.
Tensor operand(IntArrayRef shape, DType dt, Generator& g) {
  if (is_floating(dt)) return randn(shape, g).to(dt);
  return randint(dt == kUInt8 ? 0 : -6, 7, shape, g).to(dt);
}

/// GPU result (brought back) equals the CPU's within tol_of(dtype, K).
bool same(const Tensor& on_gpu, const Tensor& on_cpu, int64_t K) {
  return agree(on_gpu.cpu(), on_cpu, tol_of(on_cpu.dtype(), K));
}

/// (M, K) in four layouts holding the values of `t`: contiguous, transposed in memory, every
/// other column of a wider buffer, and an interior slice of a larger tensor.
std::vector<Tensor> layouts(const Tensor& t) {
  const int64_t R = t.size(0), C = t.size(1);
  Tensor big = zeros({R + 3, C + 5}, t.options());
  Tensor interior = big.slice(0, 2, R + 2).slice(1, 1, C + 1);
  interior.copy_(t);
  return {t, t.t().contiguous().t(), ember::test::non_contiguous(t), interior};
}

const Device cu(kCUDA);

}  // namespace

TEST_CASE("cuda matmul: 2-D products of odd sizes equal the CPU's for every dtype") {
  if (!gpu()) return;
  const int64_t s[] = {1, 7, 31, 33, 64, 65, 127, 129, 200};
  std::vector<std::vector<int64_t>> mkn = {{1, 1, 1}, {200, 200, 129}, {65, 700, 33}};
  for (int i = 0; i < 9; ++i) mkn.push_back({s[i], s[(i + 4) % 9], s[(i + 7) % 9]});
  uint64_t seed = 100;
  for (DType dt : kAllTypes)
    for (const auto& v : mkn) {
      const int64_t M = v[0], K = v[1], N = v[2];
      INFO(dt << " M " << M << " K " << K << " N " << N);
      Generator g(++seed);
      const Tensor a = operand({M, K}, dt, g), b = operand({K, N}, dt, g);
      CHECK(same(matmul(a.to(cu), b.to(cu)), matmul(a, b), K));
    }
}

TEST_CASE("cuda matmul: transposed, strided, sliced and expanded operands are read in place") {
  if (!gpu()) return;
  uint64_t seed = 200;
  for (DType dt : {kFloat32, kFloat64, kFloat16, kInt32}) {
    const int64_t M = 33, K = 65, N = 31;
    Generator g(++seed);
    const Tensor a = operand({M, K}, dt, g), b = operand({K, N}, dt, g);
    // The views are taken on each device, so the CUDA kernel sees the strides.
    const std::vector<Tensor> as = layouts(a), bs = layouts(b);
    const std::vector<Tensor> acs = layouts(a.to(cu)), bcs = layouts(b.to(cu));
    for (size_t i = 0; i < as.size(); ++i)
      for (size_t j = 0; j < bs.size(); ++j) {
        INFO(dt << " layout a " << i << " b " << j);
        CHECK(acs[i].is_contiguous() == (i == 0));
        CHECK(same(matmul(acs[i], bcs[j]), matmul(as[i], bs[j]), K));
      }
    const Tensor ac = a.to(cu), bc = b.to(cu);
    CHECK(same(matmul(bc.t(), ac.t()), matmul(b.t(), a.t()), K));  // both transposed
    // b's columns all one column (stride 0 along N), a's rows all one row (stride 0 along M).
    const Tensor col = operand({K, 1}, dt, g), row = operand({1, K}, dt, g);
    CHECK(same(matmul(ac, col.to(cu).expand({K, N})), matmul(a, col.expand({K, N})), K));
    CHECK(same(matmul(row.to(cu).expand({M, K}), bc), matmul(row.expand({M, K}), b), K));
  }
}

TEST_CASE("cuda matmul: batched, broadcast batches, 1-D operands and dot") {
  if (!gpu()) return;
  uint64_t seed = 300;
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kInt64}) {
    INFO(dt);
    Generator g(++seed);
    const int64_t M = 31, K = 129, N = 7;
    auto check = [&](const Tensor& a, const Tensor& b) {
      INFO("a " << a.sizes() << " b " << b.sizes());
      CHECK(same(matmul(a.to(cu), b.to(cu)), matmul(a, b), K));
    };
    check(operand({3, 1, M, K}, dt, g), operand({4, K, N}, dt, g));  // (3, 4, M, N)
    check(operand({M, K}, dt, g), operand({5, K, N}, dt, g));        // a shared by the batch
    check(operand({2, 3, M, K}, dt, g), operand({K, N}, dt, g));     // b shared: folded into M
    // Batch dims no single stride describes (permuted on the device): the op loops over one.
    const Tensor ap = operand({3, 2, M, K}, dt, g), bp = operand({3, 2, K, N}, dt, g);
    CHECK(same(matmul(ap.to(cu).transpose(0, 1), bp.to(cu).transpose(0, 1)),
               matmul(ap.transpose(0, 1), bp.transpose(0, 1)), K));
    // A batch of transposed matrices, and a batch expanded from one matrix (stride 0).
    const Tensor at = operand({4, K, M}, dt, g), one = operand({1, K, N}, dt, g);
    CHECK(same(bmm(at.to(cu).transpose(1, 2), one.to(cu).expand({4, K, N})),
               bmm(at.transpose(1, 2), one.expand({4, K, N})), K));
    check(operand({K}, dt, g), operand({K, N}, dt, g));     // vector @ matrix
    check(operand({M, K}, dt, g), operand({K}, dt, g));     // matrix @ vector
    check(operand({4, M, K}, dt, g), operand({K}, dt, g));  // batch @ vector
    check(operand({K}, dt, g), operand({2, K, N}, dt, g));  // vector @ batch
    check(operand({K}, dt, g), operand({K}, dt, g));        // dot
    const Tensor x = operand({K}, dt, g), y = operand({K}, dt, g);
    CHECK(same(dot(x.to(cu), y.to(cu)), dot(x, y), K));
    CHECK(same(outer(x.to(cu), y.to(cu)), outer(x, y), 1));
  }
}

TEST_CASE("cuda mm, bmm, addmm, baddbmm and linear equal the CPU's, beta == 0 ignores NaN") {
  if (!gpu()) return;
  uint64_t seed = 400;
  const int64_t B = 3, M = 65, K = 33, N = 127;
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    INFO(dt);
    Generator g(++seed);
    const Tensor a = operand({M, K}, dt, g), b = operand({K, N}, dt, g);
    const Tensor a3 = operand({B, M, K}, dt, g), b3 = operand({B, K, N}, dt, g);
    const Tensor in = operand({M, N}, dt, g), row = operand({N}, dt, g);
    const Tensor in3 = operand({B, M, N}, dt, g);
    CHECK(same(mm(a.to(cu), b.to(cu)), mm(a, b), K));
    CHECK(same(bmm(a3.to(cu), b3.to(cu)), bmm(a3, b3), K));
    for (auto [beta, alpha] : std::vector<std::pair<double, double>>{{1, 1}, {0.5, -2}, {0, 1.5}}) {
      INFO("beta " << beta << " alpha " << alpha);
      CHECK(
          same(addmm(in.to(cu), a.to(cu), b.to(cu), beta, alpha), addmm(in, a, b, beta, alpha), K));
      CHECK(same(addmm(row.to(cu), a.to(cu), b.to(cu), beta, alpha), addmm(row, a, b, beta, alpha),
                 K));  // input broadcast over rows
      CHECK(same(baddbmm(in3.to(cu), a3.to(cu), b3.to(cu), beta, alpha),
                 baddbmm(in3, a3, b3, beta, alpha), K));
    }
    // beta == 0: out's old contents (here NaN) are not read.
    const Tensor nan_in = full({M, N}, std::numeric_limits<double>::quiet_NaN(), dt);
    const Tensor r = addmm(nan_in.to(cu), a.to(cu), b.to(cu), 0, 1).cpu();
    CHECK(same(r, mm(a, b), K));
    CHECK(!isnan(r).any().item<bool>());
    // linear: x (2, 5, K) @ W^T (W is (N, K), read transposed in place) + bias.
    const Tensor x = operand({2, 5, K}, dt, g), w = operand({N, K}, dt, g);
    CHECK(same(linear(x.to(cu), w.to(cu), row.to(cu)), linear(x, w, row), K));
    CHECK(same(linear(x.to(cu), w.to(cu)), linear(x, w), K));
    CHECK(same(linear(x.select(0, 0).select(0, 0).to(cu), w.to(cu)),
               linear(x.select(0, 0).select(0, 0), w), K));
  }
  // Integers: integer alpha/beta, wrapping arithmetic.
  for (DType dt : {kInt64, kInt32, kInt8, kUInt8}) {
    INFO(dt);
    Generator g(++seed);
    const Tensor a = operand({M, K}, dt, g), b = operand({K, N}, dt, g),
                 in = operand({M, N}, dt, g);
    for (auto [beta, alpha] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {2, 3}, {0, -1}}) {
      INFO("beta " << beta << " alpha " << alpha);
      CHECK(
          same(addmm(in.to(cu), a.to(cu), b.to(cu), beta, alpha), addmm(in, a, b, beta, alpha), K));
    }
  }
}

TEST_CASE("cuda gemm: empty sums, empty outputs and size-1 dims") {
  if (!gpu()) return;
  Generator g(500);
  for (DType dt : {kFloat32, kFloat16, kInt32}) {
    INFO(dt);
    // K == 0: the product is zeros (the poisoned output must be written), addmm is beta * input.
    const Tensor a0 = zeros({5, 0}, dt), b0 = zeros({0, 7}, dt), in = operand({5, 7}, dt, g);
    CHECK(same(matmul(a0.to(cu), b0.to(cu)), matmul(a0, b0), 1));
    CHECK(same(addmm(in.to(cu), a0.to(cu), b0.to(cu), 2, 3), addmm(in, a0, b0, 2, 3), 1));
    CHECK(same(bmm(zeros({2, 3, 0}, dt).to(cu), zeros({2, 0, 4}, dt).to(cu)),
               bmm(zeros({2, 3, 0}, dt), zeros({2, 0, 4}, dt)), 1));
    // Empty outputs.
    CHECK(matmul(zeros({0, 5}, dt).to(cu), operand({5, 3}, dt, g).to(cu)).sizes().vec() ==
          std::vector<int64_t>{0, 3});
    CHECK(bmm(zeros({0, 2, 5}, dt).to(cu), zeros({0, 5, 3}, dt).to(cu)).numel() == 0);
    // Size-1 dims everywhere.
    const Tensor x = operand({1, 1, 1}, dt, g), y = operand({1, 1, 9}, dt, g);
    CHECK(same(bmm(x.to(cu), y.to(cu)), bmm(x, y), 1));
  }
}

TEST_CASE("cuda bmm: more batches than one grid covers, and the large tile") {
  if (!gpu()) return;
  Generator g(600);
  // 70000 batches > 65535 (grid z is grid-strided).
  for (DType dt : {kFloat32, kInt64}) {
    const Tensor a = operand({70000, 2, 3}, dt, g), b = operand({70000, 3, 5}, dt, g);
    CHECK(same(bmm(a.to(cu), b.to(cu)), bmm(a, b), 3));
  }
  // Enough (128, 128) tiles to fill the GPU: the large-tile kernel, edges on every side.
  for (DType dt : {kFloat32, kFloat16}) {
    INFO(dt);
    const Tensor a = operand({1537, 67}, dt, g), b = operand({67, 1411}, dt, g);
    CHECK(same(matmul(a.to(cu), b.to(cu)), matmul(a, b), 67));
    const Tensor a3 = operand({24, 200, 257}, dt, g), b3 = operand({24, 257, 260}, dt, g);
    CHECK(same(bmm(a3.to(cu), b3.to(cu).transpose(1, 2).contiguous().transpose(1, 2)), bmm(a3, b3),
               257));
  }
}

TEST_CASE("cuda gemm: results repeat bitwise and do not depend on the tile size") {
  if (!gpu()) return;
  Generator g(700);
  const Tensor a = randn({1537, 300}, g).to(cu), b = randn({300, 1411}, g).to(cu);
  const Tensor full_product = matmul(a, b).cpu();  // many tiles: (128, 128)
  CHECK(test::bitwise_equal(matmul(a, b).cpu(), full_product));
  // 100 rows alone make too few large tiles: the (64, 64) kernel, same fma chains.
  const Tensor part = matmul(a.slice(0, 0, 100), b).cpu();
  CHECK(test::bitwise_equal(part, full_product.slice(0, 0, 100)));
  // float32 is not rounded through TF32: against float64 the error stays at float32's level.
  const Tensor exact = matmul(a.cpu().to(kFloat64), b.cpu().to(kFloat64));
  CHECK(test::rel_err(full_product.to(kFloat64), exact) < 1e-5);
}

TEST_CASE("cuda matmul, bmm, addmm and linear: gradients equal the CPU's") {
  if (!gpu()) return;
  using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
  struct Case {
    const char* name;
    std::vector<std::vector<int64_t>> shapes;
    Fn f;
    int64_t K;  // the longest sum in forward or backward
  };
  const std::vector<Case> cases = {
      {"matmul 2-D", {{33, 65}, {65, 31}}, [](auto& x) { return matmul(x[0], x[1]); }, 65},
      {"matmul broadcast",
       {{2, 3, 7, 33}, {33, 129}},
       [](auto& x) { return matmul(x[0], x[1]); },
       42},
      {"matmul batch broadcast",
       {{3, 1, 7, 33}, {4, 33, 9}},
       [](auto& x) { return matmul(x[0], x[1]); },
       33},
      {"matmul vector", {{65}, {65, 31}}, [](auto& x) { return matmul(x[0], x[1]); }, 65},
      {"bmm", {{3, 31, 64}, {3, 64, 65}}, [](auto& x) { return bmm(x[0], x[1]); }, 65},
      {"addmm",
       {{31}, {7, 129}, {129, 31}},
       [](auto& x) { return addmm(x[0], x[1], x[2], 0.5, 2.0); },
       129},
      {"linear",
       {{2, 5, 33}, {19, 33}, {19}},
       [](auto& x) { return linear(x[0], x[1], x[2]); },
       33},
  };
  uint64_t seed = 800;
  for (DType dt : {kFloat32, kFloat64})
    for (const Case& c : cases) {
      INFO(c.name << " " << dt);
      Generator g(++seed);
      std::vector<Tensor> xs, xc;
      for (const auto& s : c.shapes) {
        const Tensor v = operand(s, dt, g);
        xs.push_back(v.clone().requires_grad_());
        xc.push_back(v.to(cu).requires_grad_());
      }
      const Tensor y = c.f(xs), yc = c.f(xc);
      const Tensor dy = operand(y.sizes(), dt, g);
      (y * dy).sum().backward();
      (yc * dy.to(cu)).sum().backward();
      CHECK(same(yc, y, c.K));
      for (size_t i = 0; i < xs.size(); ++i) {
        INFO("input " << i);
        REQUIRE(xc[i].grad().defined());
        CHECK(xc[i].grad().is_cuda());
        CHECK(same(xc[i].grad(), xs[i].grad(), c.K * 8));  // the batch sums add terms
      }
    }
}

TEST_CASE("cuda linalg: bad input raises the CPU's typed errors") {
  if (!gpu()) return;
  for (Device d : {Device(kCPU), cu}) {
    INFO(d);
    const Tensor x = ones({3, 4}).to(d), y = ones({5, 2}).to(d);
    EMBER_CHECK_THROWS(matmul(x, y), ShapeError, "[matmul]", "(3, 4)", "(5, 2)");
    EMBER_CHECK_THROWS(mm(x, ones({4}).to(d)), ShapeError, "[mm]");
    EMBER_CHECK_THROWS(bmm(ones({2, 3, 4}).to(d), ones({3, 4, 5}).to(d)), ShapeError, "[bmm]");
    EMBER_CHECK_THROWS(matmul(ones({3, 4}, kBool).to(d), ones({4, 2}, kBool).to(d)), DTypeError,
                       "[matmul]", "bool");
    EMBER_CHECK_THROWS(matmul(x, ones({4, 2}, kFloat64).to(d)), DTypeError, "[matmul]");
    EMBER_CHECK_THROWS(addmm(ones({3, 2}, kInt32).to(d), ones({3, 4}, kInt32).to(d),
                             ones({4, 2}, kInt32).to(d), 0.5, 1),
                       ValueError, "[addmm]");
    EMBER_CHECK_THROWS(linear(x, ones({2, 5}).to(d)), ShapeError, "[linear]");
  }
  EMBER_CHECK_THROWS(matmul(ones({3, 4}).to(cu), ones({4, 2})), DeviceError, "[matmul]");
}
