// Tests of the linear algebra family: matmul and friends, and cpu::gemm against its reference.
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <vector>

#include "core/cpu/gemm_kernels.hpp"
#include "core/kernels.hpp"
#include "test_util.hpp"

using namespace ember;
using ember::test::bitwise_equal;
using ember::test::non_contiguous;
using ember::test::rel_err;
using ember::test::values;

namespace {

/// A small deterministic generator, so these tests need nothing from the random family.
struct Lcg {
  uint64_t state;
  explicit Lcg(uint64_t seed) : state(seed * 6364136223846793005ull + 1442695040888963407ull) {}
  uint32_t next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  }
  double uniform() { return next() / 2147483648.0 * 2.0 - 1.0; }  // [-1, 1)
  int64_t integer(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(next() % (hi - lo)); }
};

/// Random values: floats uniform in [-1, 1), integers in [-4, 4] (uint8: [0, 8]); with
/// `small_ints` floats are integers in [-3, 3] so every product and sum is exact.
Tensor random_tensor(std::vector<int64_t> sizes, DType dt, uint64_t seed, bool small_ints = false) {
  Lcg g(seed);
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) {
    if (dt == kUInt8)
      x = static_cast<double>(g.integer(0, 9));
    else if (!is_floating(dt))
      x = static_cast<double>(g.integer(-4, 5));
    else
      x = small_ints ? static_cast<double>(g.integer(-3, 4)) : g.uniform();
  }
  return tensor(v, TensorOptions(kFloat64)).to(dt).reshape(sizes);
}

/// A copy of t whose last two dims are stored column-major (t.transpose(-1, -2) is contiguous).
Tensor column_major(const Tensor& t) { return t.transpose(-1, -2).contiguous().transpose(-1, -2); }

/// An independent implementation of PyTorch's matmul rules on doubles.
std::vector<double> naive_matmul(const Tensor& a, const Tensor& b, std::vector<int64_t>* shape) {
  Tensor a2 = a.dim() == 1 ? a.unsqueeze(0) : a;
  Tensor b2 = b.dim() == 1 ? b.unsqueeze(1) : b;
  std::vector<int64_t> ba(a2.sizes().begin(), a2.sizes().end() - 2);
  std::vector<int64_t> bb(b2.sizes().begin(), b2.sizes().end() - 2);
  std::vector<int64_t> batch = broadcast_shapes(ba, bb);
  const int64_t M = a2.size(-2), K = a2.size(-1), N = b2.size(-1);
  std::vector<int64_t> fa = batch, fb = batch;
  fa.insert(fa.end(), {M, K});
  fb.insert(fb.end(), {K, N});
  std::vector<double> va = values(a2.expand(fa)), vb = values(b2.expand(fb));
  int64_t B = 1;
  for (int64_t s : batch) B *= s;
  std::vector<double> out(static_cast<size_t>(B * M * N), 0.0);
  for (int64_t q = 0; q < B; ++q)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += va[(q * M + i) * K + k] * vb[(q * K + k) * N + j];
        out[(q * M + i) * N + j] = s;
      }
  *shape = batch;
  if (a.dim() > 1) shape->push_back(M);
  if (b.dim() > 1) shape->push_back(N);
  return out;
}

/// Unit roundoff of the compute type and of the stored type.
double compute_eps(DType dt) {
  return dt == kFloat64 ? std::ldexp(1.0, -53) : std::ldexp(1.0, -24);
}
double storage_eps(DType dt) {
  switch (dt) {
    case kFloat16:
      return std::ldexp(1.0, -11);
    case kBFloat16:
      return std::ldexp(1.0, -8);
    case kFloat32:
      return std::ldexp(1.0, -24);
    default:
      return std::ldexp(1.0, -53);
  }
}

/// Runs cpu::gemm and cpu::gemm_reference on the same (B, M, K) x (B, K, N) operands and
/// checks them against each other: exact for integers, within the rounding-error bound
/// 2 K u (|alpha| |a| @ |b| + |beta c|) plus the final rounding otherwise.
void check_gemm_against_reference(const Tensor& a, const Tensor& b, const Tensor& c0, Scalar alpha,
                                  Scalar beta) {
  const DType dt = a.dtype();
  Tensor fast = c0.clone(), ref = c0.clone();
  cpu::gemm(fast, a, b, alpha, beta);
  cpu::gemm_reference(ref, a, b, alpha, beta);
  std::vector<double> vf = values(fast), vr = values(ref);
  if (!is_floating(dt)) {
    CHECK(vf == vr);
    return;
  }
  // |alpha| |a| @ |b| + |beta| |c0| in double.
  Tensor abs_a = tensor(values(a), TensorOptions(kFloat64)).reshape(a.sizes().vec());
  Tensor abs_b = tensor(values(b), TensorOptions(kFloat64)).reshape(b.sizes().vec());
  Tensor bound = tensor(values(c0), TensorOptions(kFloat64)).reshape(c0.sizes().vec());
  for (Tensor* t : {&abs_a, &abs_b, &bound}) {
    double* p = t->data_ptr<double>();
    for (int64_t i = 0; i < t->numel(); ++i) p[i] = std::fabs(p[i]);
  }
  cpu::gemm_reference(bound, abs_a, abs_b, std::fabs(alpha.to_double()),
                      std::fabs(beta.to_double()));
  std::vector<double> vb = values(bound);
  const int64_t K = a.size(2);
  const double u = compute_eps(dt), s = storage_eps(dt);
  int bad = 0;
  for (size_t i = 0; i < vf.size(); ++i) {
    const double tol = 2.0 * (K + 3) * u * std::fabs(vb[i]) + 2.0 * s * std::fabs(vr[i]) + 1e-300;
    if (!(std::fabs(vf[i] - vr[i]) <= tol)) {
      if (bad++ < 3) {
        INFO("element " << i << ": gemm " << std::setprecision(17) << vf[i] << " vs reference "
                        << vr[i] << " (tol " << tol << ")");
        CHECK(false);
      }
    }
  }
  CHECK(bad == 0);
}

/// A (B, R, C) operand with the requested layout: row-major, column-major (transposed
/// storage), strided inside a larger buffer, or one matrix expanded over the batch.
enum class Layout { RowMajor, ColumnMajor, Strided, ExpandedBatch };

Tensor with_layout(std::vector<int64_t> sizes, DType dt, uint64_t seed, Layout layout) {
  switch (layout) {
    case Layout::RowMajor:
      return random_tensor(sizes, dt, seed);
    case Layout::ColumnMajor:
      return column_major(random_tensor(sizes, dt, seed));
    case Layout::Strided:
      return non_contiguous(random_tensor(sizes, dt, seed));
    case Layout::ExpandedBatch: {
      std::vector<int64_t> one = sizes;
      one[0] = 1;
      return column_major(random_tensor(one, dt, seed)).expand(sizes);
    }
  }
  return {};
}

}  // namespace

// ---- hand-computed cases ----

TEST_CASE("mm: hand-computed 2x3 @ 3x2") {
  Tensor a = tensor({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  Tensor b = tensor({{7.f, 8.f}, {9.f, 10.f}, {11.f, 12.f}});
  Tensor c = mm(a, b);
  CHECK(c.sizes() == IntArrayRef({2, 2}));
  CHECK(c.dtype() == kFloat32);
  CHECK(values(c) == std::vector<double>{58, 64, 139, 154});
  CHECK(values(a.mm(b)) == std::vector<double>{58, 64, 139, 154});
  // Transposed operands: b^T @ a^T = (a @ b)^T.
  CHECK(values(mm(b.t(), a.t())) == std::vector<double>{58, 139, 64, 154});
}

TEST_CASE("matmul: hand-computed 1-D and 2-D combinations") {
  Tensor m = tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, TensorOptions(kFloat64));
  Tensor v3 = tensor({1.0, 0.0, -1.0}, TensorOptions(kFloat64));
  Tensor v2 = tensor({1.0, 2.0}, TensorOptions(kFloat64));

  Tensor d = matmul(tensor({1.f, 2.f, 3.f}), tensor({4.f, 5.f, 6.f}));
  CHECK(d.dim() == 0);
  CHECK(d.item<float>() == 32.f);

  Tensor mv = matmul(m, v3);  // (2, 3) @ (3,) -> (2,)
  CHECK(mv.sizes() == IntArrayRef({2}));
  CHECK(values(mv) == std::vector<double>{-2, -2});

  Tensor vm = matmul(v2, m);  // (2,) @ (2, 3) -> (3,)
  CHECK(vm.sizes() == IntArrayRef({3}));
  CHECK(values(vm) == std::vector<double>{9, 12, 15});

  Tensor mm2 = m.matmul(m.t());  // (2, 3) @ (3, 2)
  CHECK(values(mm2) == std::vector<double>{14, 32, 32, 77});
}

TEST_CASE("bmm: hand-computed batches") {
  Tensor a = tensor({{{1, 2}, {3, 4}}, {{0, 1}, {1, 0}}});               // (2, 2, 2) int64
  Tensor b = tensor({{{5, 6, 7}, {8, 9, 10}}, {{1, 2, 3}, {4, 5, 6}}});  // (2, 2, 3)
  Tensor c = bmm(a, b);
  CHECK(c.dtype() == kInt64);
  CHECK(c.sizes() == IntArrayRef({2, 2, 3}));
  CHECK(values(c) == std::vector<double>{21, 24, 27, 47, 54, 61, 4, 5, 6, 1, 2, 3});
  CHECK(values(a.bmm(b)) == values(c));
}

TEST_CASE("addmm: beta * input + alpha * a @ b with a broadcast input") {
  Tensor a = tensor({{1.f, 2.f}, {3.f, 4.f}});
  Tensor b = tensor({{1.f, 0.f, 1.f}, {0.f, 1.f, 1.f}});  // a @ b = [[1, 2, 3], [3, 4, 7]]
  Tensor row = tensor({10.f, 20.f, 30.f});
  CHECK(values(addmm(row, a, b)) == std::vector<double>{11, 22, 33, 13, 24, 37});
  CHECK(values(addmm(row, a, b, 2, 3)) == std::vector<double>{23, 46, 69, 29, 52, 81});
  Tensor col = tensor({{1.f}, {-1.f}});  // (2, 1)
  CHECK(values(addmm(col, a, b, -1, 1)) == std::vector<double>{0, 1, 2, 4, 5, 8});
  // beta == 0 ignores the input entirely, NaN included.
  Tensor nan_in = full({2, 3}, std::nan(""));
  CHECK(values(addmm(nan_in, a, b, 0, 1)) == std::vector<double>{1, 2, 3, 3, 4, 7});
  // Integer tensors with integer coefficients.
  Tensor ai = tensor({{1, 2}, {3, 4}}), bi = tensor({{1, 0, 1}, {0, 1, 1}});
  CHECK(values(addmm(tensor({1, 1, 1}), ai, bi, 2, -1)) ==
        std::vector<double>{1, 0, -1, -1, -2, -5});
}

TEST_CASE("baddbmm: hand-computed batches with a broadcast input") {
  Tensor a = tensor({{{1.0, 2.0}}, {{3.0, 4.0}}}, TensorOptions(kFloat64));       // (2, 1, 2)
  Tensor b = tensor({{{1.0}, {1.0}}, {{2.0}, {-1.0}}}, TensorOptions(kFloat64));  // (2, 2, 1)
  Tensor input = tensor({100.0}, TensorOptions(kFloat64));                        // (1,)
  Tensor c = baddbmm(input, a, b, 0.5, 2);
  CHECK(c.sizes() == IntArrayRef({2, 1, 1}));
  CHECK(values(c) == std::vector<double>{56, 54});  // 50 + 2*3, 50 + 2*2
}

TEST_CASE("outer: hand-computed, promotion and bool") {
  Tensor o = outer(tensor({1.f, 2.f}), tensor({3.f, 4.f, 5.f}));
  CHECK(o.sizes() == IntArrayRef({2, 3}));
  CHECK(values(o) == std::vector<double>{3, 4, 5, 6, 8, 10});
  CHECK(values(tensor({1, 2}).outer(tensor({3, 4}))) == std::vector<double>{3, 4, 6, 8});
  Tensor mixed = outer(tensor({1, 2}), tensor({0.5, 1.5}, TensorOptions(kFloat64)));
  CHECK(mixed.dtype() == kFloat64);
  CHECK(values(mixed) == std::vector<double>{0.5, 1.5, 1.0, 3.0});
  Tensor bo = outer(tensor({true, false}), tensor({true, true}));
  CHECK(bo.dtype() == kBool);
  CHECK(values(bo) == std::vector<double>{1, 1, 0, 0});
}

TEST_CASE("dot: hand-computed") {
  Tensor d = dot(tensor({1.0, 2.0, 3.0}, TensorOptions(kFloat64)),
                 tensor({-1.0, 0.5, 2.0}, TensorOptions(kFloat64)));
  CHECK(d.dim() == 0);
  CHECK(d.item<double>() == 6.0);
  CHECK(tensor({1, 2, 3}).dot(tensor({4, 5, 6})).item<int64_t>() == 32);
  // Strided operands.
  Tensor x = tensor({1.f, 9.f, 2.f, 9.f, 3.f, 9.f});
  CHECK(dot(x.slice(0, 0, std::nullopt, 2), tensor({1.f, 1.f, 1.f})).item<float>() == 6.f);
  CHECK(dot(tensor(std::vector<float>{}), tensor(std::vector<float>{})).item<float>() == 0.f);
}

TEST_CASE("linear: x @ weight^T + bias for any leading dims") {
  Tensor w = tensor({{1.f, 0.f, -1.f}, {2.f, 1.f, 0.f}});  // (2 out, 3 in)
  Tensor bias = tensor({0.5f, -0.5f});
  Tensor x = tensor({{1.f, 2.f, 3.f}, {0.f, 1.f, 0.f}});  // (2, 3)
  CHECK(values(linear(x, w)) == std::vector<double>{-2, 4, 0, 1});
  CHECK(values(linear(x, w, bias)) == std::vector<double>{-1.5, 3.5, 0.5, 0.5});
  Tensor v = linear(tensor({1.f, 2.f, 3.f}), w, bias);  // 1-D input
  CHECK(v.sizes() == IntArrayRef({2}));
  CHECK(values(v) == std::vector<double>{-1.5, 3.5});
  // (2, 2, 3) leading dims, contiguous and not.
  Tensor x3 = random_tensor({2, 2, 3}, kFloat32, 7, true);
  Tensor y3 = linear(x3, w, bias);
  CHECK(y3.sizes() == IntArrayRef({2, 2, 2}));
  std::vector<double> vx = values(x3), vy = values(y3);
  for (int r = 0; r < 4; ++r) {
    CHECK(vy[r * 2 + 0] == vx[r * 3 + 0] - vx[r * 3 + 2] + 0.5);
    CHECK(vy[r * 2 + 1] == 2 * vx[r * 3 + 0] + vx[r * 3 + 1] - 0.5);
  }
  CHECK(bitwise_equal(linear(x3.transpose(0, 1).contiguous().transpose(0, 1), w, bias), y3));
  CHECK(bitwise_equal(linear(non_contiguous(x3), column_major(w), bias), y3));
}

TEST_CASE("linear_relu: hand-computed, on the CPU bitwise relu(linear), errors name linear") {
  Tensor w = tensor({{1.f, 0.f, -1.f}, {2.f, 1.f, 0.f}});
  Tensor bias = tensor({0.5f, -0.5f});
  Tensor x = tensor({{1.f, 2.f, 3.f}, {0.f, 1.f, 0.f}});
  CHECK(values(linear_relu(x, w, bias)) == std::vector<double>{0, 3.5, 0.5, 0.5});
  for (DType dt : {kFloat32, kBFloat16}) {
    Tensor x3 = random_tensor({3, 5, 7}, dt, 8, true);
    Tensor w3 = random_tensor({4, 7}, dt, 9, true), b3 = random_tensor({4}, dt, 10, true);
    CHECK(bitwise_equal(linear_relu(x3, w3, b3), relu(linear(x3, w3, b3))));
  }
  EMBER_CHECK_THROWS(linear_relu(x, w.t(), bias), ShapeError, "[linear]", "(3, 2)");
}

TEST_CASE("linear_residual: on the CPU bitwise residual + linear, errors name the op") {
  for (DType dt : {kFloat32, kBFloat16, kFloat64}) {
    INFO(dt);
    Tensor x = random_tensor({3, 5, 7}, dt, 11), w = random_tensor({4, 7}, dt, 12);
    Tensor b = random_tensor({4}, dt, 13), r = random_tensor({3, 5, 4}, dt, 14);
    CHECK(bitwise_equal(linear_residual(x, w, b, r), r + linear(x, w, b)));
    CHECK(bitwise_equal(linear_residual(x, w, Tensor(), r), r + linear(x, w)));
    // A float32 residual beside 16-bit operands: the sum in float32, as the composite promotes.
    Tensor r32 = random_tensor({3, 5, 4}, kFloat32, 15);
    CHECK(linear_residual(x, w, b, r32).dtype() == promote_types(dt, kFloat32));
    CHECK(bitwise_equal(linear_residual(x, w, b, r32), r32 + linear(x, w, b)));
  }
  Tensor x = random_tensor({2, 3}, kFloat32, 16), w = random_tensor({4, 3}, kFloat32, 17);
  EMBER_CHECK_THROWS(linear_residual(x, w, Tensor(), Tensor()), ValueError, "[linear_residual]",
                     "residual");
  EMBER_CHECK_THROWS(linear_residual(x, w, Tensor(), ones({3, 2, 4})), ShapeError,
                     "[linear_residual]", "(3, 2, 4)");
  EMBER_CHECK_THROWS(linear_residual(x, w, Tensor(), ones({2, 5})), ShapeError, "[linear_residual]",
                     "(2, 5)");
  EMBER_CHECK_THROWS(linear_residual(x, w.t(), Tensor(), ones({2, 4})), ShapeError, "[linear]");
}

TEST_CASE("matmul: reduced precision and integer dtypes") {
  for (DType dt : {kFloat16, kBFloat16, kInt8, kUInt8, kInt32, kInt64}) {
    INFO("dtype " << dt);
    Tensor a = tensor({{1, 2, 3}, {4, 5, 6}}).to(dt);
    Tensor b = tensor({{1, 0}, {0, 1}, {1, 1}}).to(dt);
    Tensor c = matmul(a, b);
    CHECK(c.dtype() == dt);
    CHECK(values(c) == std::vector<double>{4, 5, 10, 11});
  }
  // Half accumulates in float: 2048 + 1 + 1 is not 2048 as a half running sum would give.
  Tensor ones_row = ones({1, 3}, TensorOptions(kFloat16));
  Tensor col = tensor({{2048.0}, {1.0}, {1.0}}).to(kFloat16);
  CHECK(values(matmul(ones_row, col)) == std::vector<double>{2050});
  // int8 wraps around like PyTorch's CPU integer matmul.
  Tensor big = full({1, 2}, 100, TensorOptions(kInt8));
  CHECK(values(matmul(big, full({2, 1}, 2, TensorOptions(kInt8)))) == std::vector<double>{-112});
}

TEST_CASE("matmul: empty operands") {
  Tensor z = matmul(zeros({2, 0}), zeros({0, 3}));
  CHECK(z.sizes() == IntArrayRef({2, 3}));
  CHECK(values(z) == std::vector<double>(6, 0.0));
  CHECK(matmul(zeros({0, 4}), zeros({4, 3})).sizes() == IntArrayRef({0, 3}));
  CHECK(matmul(zeros({5, 0, 4}), zeros({4, 3})).sizes() == IntArrayRef({5, 0, 3}));
  CHECK(values(addmm(full({2, 2}, 3.0), zeros({2, 0}), zeros({0, 2}), 2)) ==
        std::vector<double>(4, 6.0));
}

// ---- shape rules ----

TEST_CASE("matmul: shape rules over a table of operand shapes") {
  struct Case {
    std::vector<int64_t> a, b, out;
  };
  const std::vector<Case> cases = {
      {{3}, {3}, {}},
      {{2, 3}, {3}, {2}},
      {{3}, {3, 4}, {4}},
      {{2, 3}, {3, 4}, {2, 4}},
      {{5, 2, 3}, {3}, {5, 2}},
      {{3}, {5, 3, 4}, {5, 4}},
      {{5, 2, 3}, {3, 4}, {5, 2, 4}},
      {{2, 3}, {5, 3, 4}, {5, 2, 4}},
      {{5, 2, 3}, {5, 3, 4}, {5, 2, 4}},
      {{1, 2, 3}, {5, 3, 4}, {5, 2, 4}},
      {{5, 2, 3}, {1, 3, 4}, {5, 2, 4}},
      {{6, 1, 2, 3}, {5, 3, 4}, {6, 5, 2, 4}},
      {{6, 1, 2, 3}, {1, 5, 3, 4}, {6, 5, 2, 4}},
      {{2, 1, 4, 2, 3}, {3, 1, 3, 1}, {2, 3, 4, 2, 1}},
      {{7, 1, 3}, {3, 2}, {7, 1, 2}},
      {{4, 1, 3}, {4, 3, 1}, {4, 1, 1}},
      {{2, 3, 1, 5}, {3, 5, 2}, {2, 3, 1, 2}},
  };
  uint64_t seed = 100;
  for (const Case& c : cases) {
    Tensor a = random_tensor(c.a, kFloat32, seed++, true);
    Tensor b = random_tensor(c.b, kFloat32, seed++, true);
    INFO("a " << IntArrayRef(c.a) << " b " << IntArrayRef(c.b));
    Tensor out = matmul(a, b);
    CHECK(out.sizes() == IntArrayRef(c.out));
    std::vector<int64_t> shape;
    std::vector<double> expect = naive_matmul(a, b, &shape);
    CHECK(IntArrayRef(shape) == IntArrayRef(c.out));
    CHECK(values(out) == expect);  // small integers: every sum is exact
    // Same values from transposed and strided operands.
    if (a.dim() >= 2) CHECK(bitwise_equal(matmul(column_major(a), b), out));
    if (b.dim() >= 2) CHECK(bitwise_equal(matmul(a, column_major(b)), out));
    CHECK(bitwise_equal(matmul(non_contiguous(a), non_contiguous(b)), out));
  }
}

TEST_CASE("matmul: failing shape pairs name the op and both shapes") {
  EMBER_CHECK_THROWS(matmul(zeros({2, 3}), zeros({4, 5})), ShapeError,
                     "[matmul] inner dimensions differ: a (2, 3) vs b (4, 5)");
  EMBER_CHECK_THROWS(matmul(zeros({3}), zeros({4})), ShapeError, "[matmul]", "(3,)", "(4,)");
  EMBER_CHECK_THROWS(matmul(zeros({2, 3}), zeros({4})), ShapeError, "[matmul]", "(2, 3)", "(4,)");
  EMBER_CHECK_THROWS(matmul(zeros({4}), zeros({3, 2})), ShapeError, "[matmul]", "(4,)", "(3, 2)");
  EMBER_CHECK_THROWS(matmul(zeros({2, 2, 3}), zeros({3, 3, 4})), ShapeError,
                     "[matmul] batch dimensions cannot be broadcast", "(2, 2, 3)", "(3, 3, 4)");
  EMBER_CHECK_THROWS(matmul(zeros({2, 5, 2, 3}), zeros({4, 3, 4})), ShapeError, "[matmul]",
                     "(2, 5, 2, 3)", "(4, 3, 4)");
  EMBER_CHECK_THROWS(matmul(zeros({}), zeros({3})), ShapeError, "[matmul]", "()", "(3,)");
  EMBER_CHECK_THROWS(matmul(zeros({3}), zeros({})), ShapeError, "[matmul]", "(3,)", "()");
}

// ---- layouts: bitwise equality ----

TEST_CASE("matmul: transposed and strided operands give bitwise the contiguous result") {
  for (int64_t M : {1, 17, 65})
    for (int64_t N : {3, 33, 129})
      for (int64_t K : {1, 65, 300}) {
        INFO("M " << M << " N " << N << " K " << K);
        Tensor a = random_tensor({M, K}, kFloat32, 1000 + M * 7 + K);
        Tensor b = random_tensor({K, N}, kFloat32, 2000 + N * 7 + K);
        Tensor c = matmul(a, b);
        CHECK(bitwise_equal(matmul(column_major(a), b), c));
        CHECK(bitwise_equal(matmul(a, column_major(b)), c));
        CHECK(bitwise_equal(matmul(column_major(a), column_major(b)), c));
        CHECK(bitwise_equal(matmul(non_contiguous(a), non_contiguous(b)), c));
        // (b^T a^T)^T is the same product read through transposed views.
        CHECK(bitwise_equal(matmul(b.t(), a.t()).t(), c));
      }
}

TEST_CASE("matmul: batched, expanded and permuted batches give bitwise the contiguous result") {
  const int64_t M = 17, K = 33, N = 65;
  Tensor a = random_tensor({3, 4, M, K}, kFloat32, 11);
  Tensor b = random_tensor({3, 4, K, N}, kFloat32, 12);
  Tensor c = matmul(a, b);
  // Batch dims stored in another order (no single batch stride): looped, not copied.
  Tensor a_perm = a.permute({1, 0, 2, 3}).contiguous().permute({1, 0, 2, 3});
  Tensor b_perm = column_major(b.permute({1, 0, 2, 3}).contiguous()).permute({1, 0, 2, 3});
  CHECK(bitwise_equal(matmul(a_perm, b_perm), c));
  CHECK(bitwise_equal(matmul(non_contiguous(a), column_major(b)), c));
  // One matrix of b expanded over a (3, 4) batch vs its materialized copy, and vs 2-D b.
  Tensor b1 = random_tensor({K, N}, kFloat32, 13);
  Tensor b_exp = b1.expand({3, 4, K, N});
  Tensor c1 = matmul(a, b_exp.contiguous());
  CHECK(bitwise_equal(matmul(a, b_exp), c1));
  CHECK(bitwise_equal(matmul(a, b1), c1));
  CHECK(bitwise_equal(matmul(a_perm, b1), c1));
  // Partially broadcast batch: (3, 1) x (1, 4).
  Tensor a31 = random_tensor({3, 1, M, K}, kFloat32, 14);
  Tensor b14 = random_tensor({1, 4, K, N}, kFloat32, 15);
  Tensor c34 = matmul(a31, b14);
  CHECK(c34.sizes() == IntArrayRef({3, 4, M, N}));
  CHECK(bitwise_equal(
      matmul(a31.expand({3, 4, M, K}).contiguous(), b14.expand({3, 4, K, N}).contiguous()), c34));
  // bmm with one matrix expanded over the batch.
  Tensor a3 = random_tensor({5, M, K}, kFloat32, 16);
  CHECK(bitwise_equal(bmm(a3, b1.expand({5, K, N})), bmm(a3, b1.expand({5, K, N}).contiguous())));
  // Each batch of a batched product equals the 2-D product of that batch.
  CHECK(bitwise_equal(c[2][1], mm(a[2][1], b[2][1])));
}

TEST_CASE("matmul: row vectors give the same bits whether or not the batch folds into M") {
  // A shared b lets matmul fold (5, 1, K) into one (5, K) product (the packed path); a batched b
  // keeps five M == 1 products (the vector path). Both must compute each element identically.
  const int64_t K = 300, N = 40;  // K > KC; N = a full vector block plus a scalar tail
  Tensor a = random_tensor({5, 1, K}, kFloat32, 41);
  Tensor b = random_tensor({K, N}, kFloat32, 42);
  Tensor folded = matmul(a, b);
  Tensor per_row = matmul(a, b.expand({5, K, N}).contiguous());
  CHECK(bitwise_equal(folded, per_row));
  CHECK(bitwise_equal(matmul(a[3], b), folded[3]));
  CHECK(bitwise_equal(matmul(a[3][0], b), folded[3][0]));
  // Matrix @ vector: (M, K) @ (K,) against the (M, K) @ (K, 1) and (1, K) @ (K, M) forms.
  Tensor m = random_tensor({37, K}, kFloat64, 43);
  Tensor v = random_tensor({K}, kFloat64, 44);
  Tensor mv = matmul(m, v);
  CHECK(bitwise_equal(mm(m, v.unsqueeze(1)).squeeze(1), mv));
  CHECK(bitwise_equal(matmul(v, m.t()), mv));
  CHECK(bitwise_equal(matmul(column_major(m), v), mv));
}

TEST_CASE("matmul: results do not depend on the thread count") {
  const int saved = get_num_threads();
  Tensor a = random_tensor({4, 200, 300}, kFloat32, 21);
  Tensor b = random_tensor({300, 150}, kFloat32, 22);
  Tensor bt = random_tensor({4, 300, 150}, kFloat64, 23);
  set_num_threads(1);
  Tensor c1 = matmul(a, b);
  Tensor d1 = matmul(a.to(kFloat64), bt);
  set_num_threads(2);
  Tensor c2 = matmul(a, b);
  Tensor d2 = matmul(a.to(kFloat64), bt);
  set_num_threads(3);
  Tensor c3 = matmul(a, b);
  set_num_threads(saved);
  CHECK(bitwise_equal(c1, c2));
  CHECK(bitwise_equal(c1, c3));
  CHECK(bitwise_equal(d1, d2));
}

// ---- the fast kernel against its reference ----

TEST_CASE("gemm: packed kernel matches the reference on odd sizes and all layouts") {
  const std::vector<int64_t> sizes = {1, 3, 17, 33, 65, 129};
  const std::vector<Layout> layouts = {Layout::RowMajor, Layout::ColumnMajor, Layout::Strided,
                                       Layout::ExpandedBatch};
  uint64_t seed = 5000;
  int checked = 0;
  for (int64_t M : sizes)
    for (int64_t N : sizes)
      for (int64_t K : sizes) {
        // A rotating subset keeps the run short while covering every size in every role.
        if ((M + 3 * N + 7 * K) % 5 != 0 && !(M == 129 && N == 129 && K == 129)) continue;
        const Layout la = layouts[seed % 4], lb = layouts[(seed / 4) % 4];
        const DType dt = std::vector<DType>{kFloat32, kFloat64}[seed % 2];
        INFO("M " << M << " N " << N << " K " << K << " layouts " << int(la) << int(lb) << " "
                  << dt);
        Tensor a = with_layout({2, M, K}, dt, seed, la);
        Tensor b = with_layout({2, K, N}, dt, seed + 1, lb);
        Tensor c = random_tensor({2, M, N}, dt, seed + 2);
        check_gemm_against_reference(a, b, c, 1, 0);
        check_gemm_against_reference(a, b, column_major(c), 0.5, -2);
        seed += 3;
        ++checked;
      }
  CHECK(checked > 40);
}

TEST_CASE("gemm: packed kernel matches the reference across blocking boundaries") {
  // K > KC (several depth blocks), M > MC (several row blocks), N > NC (several panels).
  struct Dims {
    int64_t B, M, N, K;
  };
  for (Dims d : {Dims{1, 200, 40, 513}, Dims{3, 97, 17, 257}, Dims{1, 5, 1100, 7},
                 Dims{2, 1, 300, 600}, Dims{2, 300, 1, 600}}) {
    for (DType dt : {kFloat32, kFloat64}) {
      INFO("B " << d.B << " M " << d.M << " N " << d.N << " K " << d.K << " " << dt);
      Tensor a = random_tensor({d.B, d.M, d.K}, dt, 31);
      Tensor b = column_major(random_tensor({d.B, d.K, d.N}, dt, 32));
      Tensor c = random_tensor({d.B, d.M, d.N}, dt, 33);
      check_gemm_against_reference(a, b, c, 1, 0);
      check_gemm_against_reference(column_major(a), b, c, -1.5, 0.25);
    }
  }
}

TEST_CASE("gemm: the threads' split of rows and column slivers never changes a bit") {
  // Few row blocks (the team splits sliver ranges), several panels and depth blocks, batches
  // fewer and more than twice the threads (shared panels versus one batch per task).
  struct Dims {
    int64_t B, M, N, K;
  };
  const int saved = get_num_threads();
  for (Dims d : {Dims{1, 16, 1100, 300}, Dims{1, 200, 1100, 513}, Dims{2, 7, 333, 260},
                 Dims{7, 50, 70, 90}}) {
    for (DType dt : {kFloat32, kFloat64}) {
      INFO("B " << d.B << " M " << d.M << " N " << d.N << " K " << d.K << " " << dt);
      Tensor a = random_tensor({d.B, d.M, d.K}, dt, 41);
      Tensor b = random_tensor({d.B, d.K, d.N}, dt, 42);
      Tensor c = random_tensor({d.B, d.M, d.N}, dt, 43);
      set_num_threads(1);
      Tensor one = c.clone();
      cpu::gemm(one, a, b, 1, 0.5);
      for (int threads : {2, 3}) {
        set_num_threads(threads);
        Tensor many = c.clone();
        cpu::gemm(many, a, b, 1, 0.5);
        CHECK(bitwise_equal(one, many));
        check_gemm_against_reference(a, b, c, 1, 0.5);
      }
    }
  }
  set_num_threads(saved);
}

TEST_CASE("gemm: the AVX-512 and baseline micro-kernels give bitwise the same results") {
  if (!cpu::gemm_isa_available(cpu::GemmIsa::Avx512)) {
    WARN("skipped: this CPU or build has no AVX-512 GEMM kernel (the baseline is tested above)");
    return;
  }
  const cpu::GemmIsa saved = cpu::gemm_isa();
  struct Dims {
    int64_t B, M, N, K;
  };
  uint64_t seed = 9000;
  for (Dims d : {Dims{1, 37, 53, 300}, Dims{3, 13, 33, 17}, Dims{1, 130, 70, 513},
                 Dims{5, 25, 40, 64}, Dims{1, 200, 1100, 257}}) {
    for (DType dt : {kFloat32, kFloat64}) {
      for (int layout = 0; layout < 3; ++layout) {
        INFO("B " << d.B << " M " << d.M << " N " << d.N << " K " << d.K << " " << dt
                  << " layout " << layout);
        Tensor a = random_tensor({d.B, d.M, d.K}, dt, seed++);
        Tensor b = random_tensor({d.B, d.K, d.N}, dt, seed++);
        Tensor c = random_tensor({d.B, d.M, d.N}, dt, seed++);
        if (layout == 1) a = column_major(a), c = column_major(c);
        if (layout == 2) b = column_major(b), a = non_contiguous(a);
        Tensor base = c.clone(), wide = c.clone();
        if (layout == 1) base = column_major(base), wide = column_major(wide);
        cpu::set_gemm_isa(cpu::GemmIsa::Baseline);
        cpu::gemm(base, a, b, 0.75, -0.5);
        cpu::set_gemm_isa(cpu::GemmIsa::Avx512);
        cpu::gemm(wide, a, b, 0.75, -0.5);
        CHECK(bitwise_equal(base, wide));
        check_gemm_against_reference(a, b, c, 0.75, -0.5);
      }
    }
  }
  cpu::set_gemm_isa(saved);
}

TEST_CASE("gemm: reduced precision and integer kernels match the reference") {
  uint64_t seed = 7000;
  for (DType dt : {kFloat16, kBFloat16, kInt8, kUInt8, kInt32, kInt64}) {
    for (int64_t n : {1, 17, 65}) {
      INFO(dt << " n " << n);
      const int64_t M = n, N = n + 2, K = 2 * n + 1;
      Tensor a = with_layout({2, M, K}, dt, seed, Layout::ColumnMajor);
      Tensor b = with_layout({2, K, N}, dt, seed + 1, Layout::ExpandedBatch);
      Tensor c = random_tensor({2, M, N}, dt, seed + 2);
      const bool fl = is_floating(dt);
      check_gemm_against_reference(a, b, c, 1, 0);
      check_gemm_against_reference(a, non_contiguous(b.contiguous()), c, fl ? Scalar(0.5) : 3,
                                   fl ? Scalar(2.0) : -2);
      seed += 3;
    }
  }
}

// ---- out_dtype: float32 products of 16-bit operands ----

TEST_CASE("mm, bmm, addmm, baddbmm with out_dtype float32: the float32 sums, never rounded") {
  uint64_t seed = 7300;
  for (DType dt : {kBFloat16, kFloat16}) {
    for (int64_t n : {1, 9, 40}) {
      INFO(dt << " n " << n);
      const int64_t M = n + 1, N = n + 3, K = 2 * n + 5;
      const Tensor a = with_layout({2, M, K}, dt, seed, Layout::ColumnMajor);
      const Tensor b = with_layout({2, K, N}, dt, seed + 1, Layout::Strided);
      const Tensor a32 = a.to(kFloat32), b32 = b.to(kFloat32);
      // Every 16-bit float is a float32 and the CPU kernel sums the same products in the same
      // order, so the result is bitwise the float32 product of the widened operands.
      const Tensor y = bmm(a, b, kFloat32);
      REQUIRE(y.dtype() == kFloat32);
      CHECK(bitwise_equal(y, bmm(a32, b32)));
      const Tensor y2 = mm(a[1], b[0], kFloat32);
      REQUIRE(y2.dtype() == kFloat32);
      CHECK(bitwise_equal(y2, mm(a32[1], b32[0])));
      // Not rounded to 16 bits: at these sizes some element is no 16-bit value.
      if (K > 8) CHECK_FALSE(bitwise_equal(y, y.to(dt).to(kFloat32)));
      // The kernel's contract against the float64 reference (gemm's float32 out).
      const Tensor c0 = random_tensor({2, M, N}, kFloat32, seed + 2);
      Tensor fast = c0.clone(), ref = c0.clone();
      cpu::gemm(fast, a, b, 0.5, -2.0);
      cpu::gemm_reference(ref, a, b, 0.5, -2.0);
      CHECK(rel_err(fast, ref) < 1e-6);
      // addmm / baddbmm: input of out_dtype or of the operands' dtype, broadcast, beta and alpha.
      const Tensor bias32 = random_tensor({N}, kFloat32, seed + 3);
      const Tensor bias16 = bias32.to(dt);
      const Tensor z = addmm(bias32, a[0], b[1], kFloat32, 0.5, 2.0);
      REQUIRE(z.dtype() == kFloat32);
      CHECK(bitwise_equal(z, addmm(bias32, a32[0], b32[1], 0.5, 2.0)));
      CHECK(bitwise_equal(addmm(bias16, a[0], b[1], kFloat32, 0.5, 2.0),
                          addmm(bias16.to(kFloat32), a32[0], b32[1], 0.5, 2.0)));
      const Tensor w = baddbmm(c0, a, b, kFloat32, -1.0, 3.0);
      REQUIRE(w.dtype() == kFloat32);
      CHECK(bitwise_equal(w, baddbmm(c0, a32, b32, -1.0, 3.0)));
      // out_dtype equal to the operands' dtype is the plain op.
      CHECK(bitwise_equal(mm(a[0], b[0], dt), mm(a[0], b[0])));
      CHECK(bitwise_equal(baddbmm(c0.to(dt), a, b, dt, 2.0), baddbmm(c0.to(dt), a, b, 2.0)));
      seed += 4;
    }
  }
  // Empty K: beta * input only.
  const Tensor e = addmm(ones({2, 3}), zeros({2, 0}, TensorOptions(kBFloat16)),
                         zeros({0, 3}, TensorOptions(kBFloat16)), kFloat32, 0.5);
  CHECK(bitwise_equal(e, full({2, 3}, 0.5)));
}

TEST_CASE("out_dtype: gradients in the operands' dtype, from dY rounded to it") {
  const Tensor a = random_tensor({5, 7}, kBFloat16, 7400).requires_grad_();
  const Tensor b = random_tensor({7, 3}, kBFloat16, 7401).requires_grad_();
  const Tensor input = random_tensor({3}, kFloat32, 7402).requires_grad_();
  // dY with 16-bit values, so the rounding of dY loses nothing and the plain op's gradients
  // are the expected ones bitwise.
  const Tensor dy = random_tensor({5, 3}, kBFloat16, 7403);
  (addmm(input, a, b, kFloat32, 0.5, 2.0) * dy.to(kFloat32)).sum().backward();
  REQUIRE(a.grad().dtype() == kBFloat16);
  REQUIRE(b.grad().dtype() == kBFloat16);
  REQUIRE(input.grad().dtype() == kFloat32);
  CHECK(bitwise_equal(a.grad(), mm(dy, b.detach().t()) * 2.0));
  CHECK(bitwise_equal(b.grad(), mm(a.detach().t(), dy) * 2.0));
  CHECK(bitwise_equal(input.grad(), (dy.to(kFloat32) * 0.5).sum(0)));
  const Tensor a3 = random_tensor({2, 4, 6}, kFloat16, 7404).requires_grad_();
  const Tensor b3 = random_tensor({2, 6, 5}, kFloat16, 7405).requires_grad_();
  bmm(a3, b3, kFloat32).sum().backward();
  REQUIRE(a3.grad().dtype() == kFloat16);
  CHECK(bitwise_equal(a3.grad(),
                      bmm(ones({2, 4, 5}, TensorOptions(kFloat16)), b3.detach().transpose(1, 2))));
}

TEST_CASE("out_dtype: pairs other than 16-bit to float32 are DTypeErrors naming the op") {
  const TensorOptions bf(kBFloat16);
  EMBER_CHECK_THROWS(mm(zeros({2, 3}), zeros({3, 2}), kFloat64), DTypeError, "[mm]", "out_dtype",
                     "float64", "float32");
  EMBER_CHECK_THROWS(mm(zeros({2, 3}, bf), zeros({3, 2}, bf), kFloat16), DTypeError, "[mm]",
                     "float16", "bfloat16");
  EMBER_CHECK_THROWS(bmm(zeros({1, 2, 3}, bf), zeros({1, 3, 2}, bf), kInt64), DTypeError, "[bmm]",
                     "int64");
  EMBER_CHECK_THROWS(
      addmm(zeros({2}, TensorOptions(kFloat64)), zeros({2, 2}, bf), zeros({2, 2}, bf), kFloat32),
      DTypeError, "[addmm]", "input", "bfloat16", "float32", "float64");
  EMBER_CHECK_THROWS(
      baddbmm(zeros({1, 2, 2}), zeros({1, 2, 2}, bf), zeros({1, 2, 2}, bf), kFloat64), DTypeError,
      "[baddbmm]", "out_dtype");
  EMBER_CHECK_THROWS(mm(zeros({2, 3}, bf), zeros({4, 2}, bf), kFloat32), ShapeError, "[mm]",
                     "(2, 3)", "(4, 2)");
}

// ---- errors ----

TEST_CASE("linalg: dtype errors name the op and both dtypes") {
  EMBER_CHECK_THROWS(matmul(zeros({2, 3}), zeros({3, 2}, TensorOptions(kFloat64))), DTypeError,
                     "[matmul]", "same dtype", "float32", "float64");
  EMBER_CHECK_THROWS(mm(zeros({2, 3}, TensorOptions(kInt64)), zeros({3, 2})), DTypeError, "[mm]",
                     "int64", "float32");
  EMBER_CHECK_THROWS(bmm(zeros({1, 2, 3}), zeros({1, 3, 2}, TensorOptions(kFloat16))), DTypeError,
                     "[bmm]", "float16");
  EMBER_CHECK_THROWS(dot(zeros({3}), zeros({3}, TensorOptions(kInt32))), DTypeError, "[dot]",
                     "int32");
  EMBER_CHECK_THROWS(linear(zeros({2, 3}), zeros({4, 3}, TensorOptions(kFloat64))), DTypeError,
                     "[linear]", "float64");
  EMBER_CHECK_THROWS(linear(zeros({2, 3}), zeros({4, 3}), zeros({4}, TensorOptions(kFloat64))),
                     DTypeError, "[linear]", "bias", "float64");
  EMBER_CHECK_THROWS(addmm(zeros({2}, TensorOptions(kInt64)), zeros({2, 2}), zeros({2, 2})),
                     DTypeError, "[addmm]", "int64");
  EMBER_CHECK_THROWS(
      matmul(zeros({2, 2}, TensorOptions(kBool)), zeros({2, 2}, TensorOptions(kBool))), DTypeError,
      "[matmul]", "bool");
  EMBER_CHECK_THROWS(
      addmm(zeros({2, 2}, TensorOptions(kInt64)), zeros({2, 2}, TensorOptions(kInt64)),
            zeros({2, 2}, TensorOptions(kInt64)), 1, 0.5),
      ValueError, "[addmm]", "alpha", "0.5");
}

TEST_CASE("linalg: shape errors name the op and the shapes") {
  EMBER_CHECK_THROWS(mm(zeros({3}), zeros({3, 2})), ShapeError, "[mm]", "2-D", "(3,)", "(3, 2)");
  EMBER_CHECK_THROWS(mm(zeros({2, 2, 3}), zeros({3, 2})), ShapeError, "[mm]", "(2, 2, 3)");
  EMBER_CHECK_THROWS(mm(zeros({2, 3}), zeros({4, 5})), ShapeError,
                     "[mm] inner dimensions differ: a (2, 3) vs b (4, 5)");
  EMBER_CHECK_THROWS(bmm(zeros({2, 3}), zeros({3, 2})), ShapeError, "[bmm]", "3-D", "(2, 3)");
  EMBER_CHECK_THROWS(bmm(zeros({2, 2, 3}), zeros({3, 3, 2})), ShapeError, "[bmm] batch sizes",
                     "(2, 2, 3)", "(3, 3, 2)");
  EMBER_CHECK_THROWS(bmm(zeros({2, 2, 3}), zeros({2, 4, 2})), ShapeError,
                     "[bmm] inner dimensions differ", "(2, 2, 3)", "(2, 4, 2)");
  EMBER_CHECK_THROWS(addmm(zeros({3}), zeros({2, 2}), zeros({2, 2})), ShapeError,
                     "[addmm] input of shape (3,) cannot be broadcast to (2, 2)");
  EMBER_CHECK_THROWS(addmm(zeros({2, 2}), zeros({2, 3}), zeros({2, 2})), ShapeError,
                     "[addmm] inner dimensions differ", "(2, 3)", "(2, 2)");
  EMBER_CHECK_THROWS(baddbmm(zeros({3, 2, 2}), zeros({2, 2, 2}), zeros({2, 2, 2})), ShapeError,
                     "[baddbmm]", "(3, 2, 2)", "(2, 2, 2)");
  EMBER_CHECK_THROWS(outer(zeros({2, 2}), zeros({2})), ShapeError, "[outer]", "1-D", "(2, 2)");
  EMBER_CHECK_THROWS(dot(zeros({3}), zeros({4})), ShapeError, "[dot]", "(3,)", "(4,)");
  EMBER_CHECK_THROWS(dot(zeros({3, 1}), zeros({3})), ShapeError, "[dot]", "1-D", "(3, 1)");
  EMBER_CHECK_THROWS(linear(zeros({2, 3}), zeros({4, 5})), ShapeError,
                     "[linear] input features differ: x (2, 3) vs weight (4, 5)");
  EMBER_CHECK_THROWS(linear(zeros({2, 3}), zeros({3})), ShapeError, "[linear]", "2-D", "(3,)");
  EMBER_CHECK_THROWS(linear(zeros({2, 3}), zeros({4, 3}), zeros({3})), ShapeError, "[linear]",
                     "(3,)", "(2, 4)");
  EMBER_CHECK_THROWS(matmul(zeros({2, 2}), Tensor()), ValueError, "[matmul]", "undefined");
}
