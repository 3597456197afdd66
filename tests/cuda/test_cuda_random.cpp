// Random sampling on CUDA against the CPU from the same generator state: rand/uniform_, randn/
// normal_, randint, bernoulli, randperm, multinomial, the *_like forms, dropout (outputs and
// gradients) and the nn::init fillers. Uniform (every floating dtype), randint, bernoulli, randperm
// and multinomial must be bitwise the CPU's; normal agrees to a few ulps (CUDA's log, sin and cos
// differ from glibc's in the last bits), so float64 normals are compared to 1e-13 relative and the
// narrower dtypes to one rounding. Odd sizes (1, 3, 5, 7, 1001) leave partial Philox blocks at the
// tail; generators start at non-zero offsets (a draw first, and a counter about to cross 2^32),
// and after every op both generators must sit at the same offset. Without a GPU each case prints
// "skipped".
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/kernels.hpp"
#include "cuda/cuda_test_util.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/ember.hpp"

using namespace ember;
using ember::test::agree;
using ember::test::bitwise_equal;
using ember::test::gpu;
using ember::test::tolerance;
namespace F = ember::nn::functional;

namespace {

const DType kFloats[] = {kFloat32, kFloat64, kFloat16, kBFloat16};
const int64_t kOddSizes[] = {1, 3, 5, 7, 1001};
/// Generator offsets to start from: 0, a small one, and one whose counter crosses 2^32 mid-op.
const uint64_t kStarts[] = {0, 3, 0xFFFFFFFFull - 2};

TensorOptions on_cuda(DType dt) { return TensorOptions(dt).device(Device(kCUDA)); }

/// Two generators in one state (seed, offset): `host` drives the CPU op, `dev` the CUDA op.
struct Twins {
  Generator host, dev;
  Twins(uint64_t seed, uint64_t offset) : host(seed), dev(seed) {
    host.set_offset(offset);
    dev.set_offset(offset);
  }
  bool in_step() const { return host.offset() == dev.offset(); }
};

/// Normals: float64 to a few hundred ulps (the libm functions differ by a few), the narrower
/// dtypes to one rounding of theirs.
double normal_tol(DType dt) { return dt == kFloat64 ? 1e-13 : tolerance(dt); }

/// The fraction of elements of a (CUDA result, on the host) and b with identical values.
double fraction_equal(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = test::values(a), y = test::values(b);
  if (x.empty()) return 1.0;
  int64_t same = 0;
  for (size_t i = 0; i < x.size(); ++i) same += x[i] == y[i];
  return static_cast<double>(same) / static_cast<double>(x.size());
}

}  // namespace

// ---- uniform ----

TEST_CASE("cuda rand: bitwise the CPU's for every floating dtype, odd size and start offset") {
  if (!gpu()) return;
  for (DType dt : kFloats)
    for (int64_t n : kOddSizes)
      for (uint64_t start : kStarts) {
        INFO(dt << " n " << n << " start " << start);
        Twins g(0x9E3779B97F4A7C15ull + static_cast<uint64_t>(n), start);  // high seed bits set
        // A draw first, so the op under test starts at a non-aligned offset.
        const Tensor first = rand({5}, g.host, dt);
        CHECK(bitwise_equal(rand({5}, g.dev, on_cuda(dt)).cpu(), first));
        const Tensor a = rand({n}, g.host, dt);
        const Tensor b = rand({n}, g.dev, on_cuda(dt));
        REQUIRE(b.device().is_cuda());
        CHECK(bitwise_equal(b.cpu(), a));
        CHECK(g.in_step());
      }
  // Multi-dim and large (many GPU blocks, a partial last Philox block).
  for (DType dt : {kFloat32, kFloat64}) {
    Twins g(17, 1);
    for (const std::vector<int64_t>& shape :
         std::vector<std::vector<int64_t>>{{3, 7}, {33, 1, 31}, {(1 << 20) + 3}}) {
      INFO(dt << " shape " << IntArrayRef(shape));
      CHECK(bitwise_equal(rand(shape, g.dev, on_cuda(dt)).cpu(), rand(shape, g.host, dt)));
      CHECK(g.in_step());
    }
  }
}

TEST_CASE("cuda uniform_: bounds, clamping below `to`, from == to and non-contiguous targets") {
  if (!gpu()) return;
  const std::vector<std::pair<double, double>> bounds = {{-1, 1},      {-0.123456789, 0.987654321},
                                                         {1000, 1001}, {1000, 1003},
                                                         {2.5, 2.5},   {-2.449489742783178, 1e-3}};
  for (DType dt : kFloats)
    for (auto [from, to] : bounds) {
      INFO(dt << " [" << from << ", " << to << ")");
      Twins g(2024, 5);
      Tensor a = empty({1001}, dt), b = empty({1001}, on_cuda(dt));
      uniform_(a, from, to, g.host);
      uniform_(b, from, to, g.dev);
      CHECK(bitwise_equal(b.cpu(), a));
      CHECK(g.in_step());
      // The top of [1000, 1001) rounds up to 1001 in float16 (spacing 0.5), and of [1000, 1003)
      // to 1004 in bfloat16 (spacing 4): such values are clamped back below `to`, on both devices.
      // (`from` may round down: values are rounded once into the dtype.)
      if (from < to)
        for (double v : test::values(b.cpu())) CHECK(v < to);
      // A transposed (non-contiguous) target gets the numbers of a contiguous one, transposed.
      Tensor at = empty({7, 5}, dt).t(), bt = empty({7, 5}, on_cuda(dt)).t();
      uniform_(at, from, to, g.host);
      uniform_(bt, from, to, g.dev);
      CHECK(!bt.is_contiguous());
      CHECK(bitwise_equal(bt.cpu(), at));
      CHECK(g.in_step());
    }
  // Tensor::uniform_ through the default generator.
  manual_seed(99);
  Tensor a = empty({3, 5}, kFloat16);
  a.uniform_(-4, 4);
  const uint64_t offset = default_generator().offset();
  manual_seed(99);
  Tensor b = empty({3, 5}, on_cuda(kFloat16));
  b.uniform_(-4, 4);
  CHECK(bitwise_equal(b.cpu(), a));
  CHECK(default_generator().offset() == offset);
}

// ---- normal ----

TEST_CASE("cuda randn and normal_: within a few ulps of the CPU's, generators in step") {
  if (!gpu()) return;
  for (DType dt : kFloats)
    for (int64_t n : kOddSizes)
      for (uint64_t start : kStarts) {
        INFO(dt << " n " << n << " start " << start);
        Twins g(31 + static_cast<uint64_t>(n), start);
        (void)rand({3}, g.host, dt);
        (void)rand({3}, g.dev, on_cuda(dt));
        const Tensor a = randn({n}, g.host, dt);
        const Tensor b = randn({n}, g.dev, on_cuda(dt));
        CHECK(agree(b.cpu(), a, normal_tol(dt)));
        CHECK(g.in_step());
      }
  for (DType dt : kFloats)
    for (auto [mean, std] : std::vector<std::pair<double, double>>{{2.5, 0.3}, {-1.7, 13.1}}) {
      INFO(dt << " mean " << mean << " std " << std);
      Twins g(8, 1);
      Tensor a = empty({20001}, dt), b = empty({20001}, on_cuda(dt));
      normal_(a, mean, std, g.host);
      normal_(b, mean, std, g.dev);
      const Tensor bh = b.cpu();
      CHECK(agree(bh, a, normal_tol(dt)));
      CHECK(g.in_step());
      // The same algorithm: after rounding to a narrower dtype, an ulp of float64 almost never
      // shows (a difference here means a different computation, not libm rounding).
      if (dt != kFloat64) CHECK(fraction_equal(bh, a) >= 0.999);
      // Non-contiguous target.
      Tensor at = empty({9, 7}, dt).t(), bt = empty({9, 7}, on_cuda(dt)).t();
      normal_(at, mean, std, g.host);
      normal_(bt, mean, std, g.dev);
      CHECK(agree(bt.cpu(), at, normal_tol(dt)));
      CHECK(g.in_step());
    }
}

// ---- randint ----

TEST_CASE("cuda randint: bitwise the CPU's for every dtype and range") {
  if (!gpu()) return;
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  struct Case {
    DType dt;
    int64_t low, high;
  };
  const std::vector<Case> cases = {
      {kInt64, -5, 1000003},   {kInt64, kMin, kMax},    {kInt64, -(int64_t{1} << 62), 7},
      {kInt32, -100, 101},     {kInt8, -128, 128},      {kUInt8, 0, 256},
      {kBool, 0, 2},           {kFloat32, -1000, 1000}, {kFloat64, 0, int64_t{1} << 40},
      {kFloat16, -2048, 2049}, {kBFloat16, 0, 257}};
  for (const Case& c : cases)
    for (int64_t n : kOddSizes)
      for (uint64_t start : kStarts) {
        INFO(c.dt << " [" << c.low << ", " << c.high << ") n " << n << " start " << start);
        Twins g(7 + static_cast<uint64_t>(n), start);
        (void)randint(0, 10, {1}, g.host);
        (void)randint(0, 10, {1}, g.dev, on_cuda(kInt64));
        const Tensor a = randint(c.low, c.high, {n}, g.host, TensorOptions(c.dt));
        const Tensor b = randint(c.low, c.high, {n}, g.dev, on_cuda(c.dt));
        CHECK(bitwise_equal(b.cpu(), a));
        CHECK(g.in_step());
      }
  // A 2-D int64 draw with the default dtype.
  Twins g(3, 0);
  CHECK(bitwise_equal(randint(-3, 4, {17, 9}, g.dev, on_cuda(kInt64)).cpu(),
                      randint(-3, 4, {17, 9}, g.host)));
}

// ---- bernoulli ----

TEST_CASE("cuda bernoulli: bitwise the CPU's for every probability dtype, size and layout") {
  if (!gpu()) return;
  for (DType dt : kFloats)
    for (int64_t n : kOddSizes)
      for (uint64_t start : kStarts) {
        INFO(dt << " n " << n << " start " << start);
        Generator gp(40 + static_cast<uint64_t>(n));
        // Probabilities in [0, 1] with exact 0s and 1s among them.
        const Tensor p = (rand({n}, gp) * 1.4 - 0.2).clamp(0.0, 1.0).to(dt);
        Twins g(41, start);
        (void)rand({1}, g.host);
        (void)rand({1}, g.dev, on_cuda(kFloat32));
        const Tensor a = bernoulli(p, g.host);
        const Tensor b = bernoulli(p.to(Device(kCUDA)), g.dev);
        CHECK(bitwise_equal(b.cpu(), a));
        CHECK(g.in_step());
      }
  // Transposed probabilities, and a 0-d one.
  Generator gp(50);
  const Tensor p = rand({31, 7}, gp, kFloat64).t();
  Twins g(51, 2);
  CHECK(bitwise_equal(bernoulli(p.to(Device(kCUDA)), g.dev).cpu(), bernoulli(p, g.host)));
  const Tensor p0 = full({}, 0.5, TensorOptions(kFloat32));
  CHECK(bitwise_equal(bernoulli(p0.to(Device(kCUDA)), g.dev).cpu(), bernoulli(p0, g.host)));
  CHECK(g.in_step());
  // bernoulli(t, p): t's shape and dtype (any), the default generator.
  for (DType dt : {kFloat32, kFloat16, kInt32, kUInt8, kBool, kInt64})
    for (double prob : {0.0, 0.3, 1.0}) {
      INFO(dt << " p " << prob);
      const Tensor t = empty({5, 201}, dt);
      manual_seed(12);
      const Tensor a = bernoulli(t, prob);
      const uint64_t offset = default_generator().offset();
      manual_seed(12);
      const Tensor b = bernoulli(t.to(Device(kCUDA)), prob);
      CHECK(bitwise_equal(b.cpu(), a));
      CHECK(default_generator().offset() == offset);
    }
}

// ---- randperm ----

TEST_CASE("cuda randperm: bitwise the CPU's permutation for every size and dtype") {
  if (!gpu()) return;
  for (DType dt : {kInt64, kInt32, kFloat32, kFloat64})
    for (int64_t n : {0, 1, 2, 3, 5, 7, 1001, 100003})
      for (uint64_t start : kStarts) {
        INFO(dt << " n " << n << " start " << start);
        Twins g(60 + static_cast<uint64_t>(n), start);
        (void)rand({1}, g.host);
        (void)rand({1}, g.dev, on_cuda(kFloat32));
        const Tensor a = randperm(n, g.host, TensorOptions(dt));
        const Tensor b = randperm(n, g.dev, on_cuda(dt));
        REQUIRE(b.device().is_cuda());
        CHECK(bitwise_equal(b.cpu(), a));
        CHECK(g.in_step());
        std::vector<double> v = test::values(b.cpu());
        std::sort(v.begin(), v.end());
        bool is_permutation = true;
        for (size_t i = 0; i < v.size(); ++i)
          is_permutation = is_permutation && v[i] == static_cast<double>(i);
        CHECK(is_permutation);
      }
  Twins g(61, 0);
  CHECK(bitwise_equal(randperm(128, g.dev, on_cuda(kInt8)).cpu(),
                      randperm(128, g.host, TensorOptions(kInt8))));
  CHECK(bitwise_equal(randperm(256, g.dev, on_cuda(kUInt8)).cpu(),
                      randperm(256, g.host, TensorOptions(kUInt8))));
}

// ---- multinomial ----

namespace {

/// Weights (rows, N) (or (N) when rows == 0) in [0, 1) with about a quarter exact zeros, column
/// 0 positive, and some special values: a subnormal (its exponential key overflows to +inf; a zero
/// once rounded to float32), a huge one (1e30) and repeated ones.
Tensor weights_for(int64_t rows, int64_t N, uint64_t seed) {
  Generator g(seed);
  const std::vector<int64_t> shape =
      rows == 0 ? std::vector<int64_t>{N} : std::vector<int64_t>{rows, N};
  Tensor w = rand(shape, g, kFloat64) * (rand(shape, g, kFloat64) > 0.25).to(kFloat64);
  w.narrow(-1, 0, 1).fill_(0.75);
  if (N > 3) {
    w.narrow(-1, 1, 1).fill_(5e-324);
    w.narrow(-1, 2, 1).fill_(0.75);
  }
  if (N > 4) w.narrow(-1, 3, 1).fill_(1e30);
  return w;
}

/// The fewest non-zero weights in a row of w (1-D or 2-D).
int64_t min_nonzero(const Tensor& w) {
  const Tensor w2 = w.dim() == 1 ? w.reshape({1, w.size(0)}) : w;
  const std::vector<double> v = test::values(w2);
  const int64_t R = w2.size(0), N = w2.size(1);
  int64_t fewest = N;
  for (int64_t r = 0; r < R; ++r) {
    int64_t nz = 0;
    for (int64_t n = 0; n < N; ++n) nz += v[static_cast<size_t>(r * N + n)] > 0.0;
    fewest = std::min(fewest, nz);
  }
  return fewest;
}

}  // namespace

TEST_CASE("cuda multinomial: bitwise the CPU's with and without replacement") {
  if (!gpu()) return;
  struct Shape {
    int64_t rows, N;  // rows 0: 1-D weights
  };
  const std::vector<Shape> shapes = {{0, 1}, {0, 7},     {0, 1001}, {1, 5},
                                     {3, 5}, {37, 1001}, {1, 3000}, {200, 3}};
  uint64_t seed = 70;
  for (const Shape& s : shapes)
    for (DType dt : {kFloat64, kFloat32})
      for (uint64_t start : {kStarts[0], kStarts[2]}) {
        const Tensor w = weights_for(s.rows, s.N, ++seed).to(dt);
        const int64_t fewest = min_nonzero(w);
        const Tensor wc = w.to(Device(kCUDA));
        for (int64_t k : {int64_t{1}, int64_t{5}, 2 * s.N + 1}) {
          INFO("rows " << s.rows << " N " << s.N << " " << dt << " start " << start << " k " << k);
          Twins g(seed, start);
          (void)rand({1}, g.host);
          (void)rand({1}, g.dev, on_cuda(kFloat32));
          const Tensor a = multinomial(w, k, /*replacement=*/true, g.host);
          const Tensor b = multinomial(wc, k, /*replacement=*/true, g.dev);
          REQUIRE(b.device().is_cuda());
          CHECK(bitwise_equal(b.cpu(), a));
          CHECK(g.in_step());
          const int64_t kk = std::min(k, fewest);  // without replacement: at most the positives
          const Tensor c = multinomial(w, kk, /*replacement=*/false, g.host);
          const Tensor d = multinomial(wc, kk, /*replacement=*/false, g.dev);
          CHECK(bitwise_equal(d.cpu(), c));
          CHECK(g.in_step());
        }
      }
  // Transposed (non-contiguous) weights, and a row of equal weights drawn in full.
  const Tensor wt = weights_for(9, 6, 90).t();  // (6, 9)
  Twins g(91, 4);
  CHECK(bitwise_equal(multinomial(wt.to(Device(kCUDA)), 4, false, g.dev).cpu(),
                      multinomial(wt, 4, false, g.host)));
  CHECK(bitwise_equal(multinomial(wt.to(Device(kCUDA)), 40, true, g.dev).cpu(),
                      multinomial(wt, 40, true, g.host)));
  const Tensor flat = ones({50}, kFloat16);
  CHECK(bitwise_equal(multinomial(flat.to(Device(kCUDA)), 50, false, g.dev).cpu(),
                      multinomial(flat, 50, false, g.host)));
  CHECK(g.in_step());
}

// ---- the *_like forms ----

TEST_CASE("cuda rand_like, randn_like, randint_like: the CPU's numbers on the input's device") {
  if (!gpu()) return;
  for (DType dt : kFloats) {
    INFO(dt);
    const Tensor x = zeros({7, 143}, dt);
    const Tensor xc = x.to(Device(kCUDA));
    manual_seed(5);
    const Tensor a = rand_like(x), an = randn_like(x), ai = randint_like(x, -9, 10);
    const uint64_t offset = default_generator().offset();
    manual_seed(5);
    const Tensor b = rand_like(xc), bn = randn_like(xc), bi = randint_like(xc, -9, 10);
    CHECK(default_generator().offset() == offset);
    REQUIRE(b.device().is_cuda());
    CHECK(bitwise_equal(b.cpu(), a));
    CHECK(agree(bn.cpu(), an, normal_tol(dt)));
    CHECK(bitwise_equal(bi.cpu(), ai));
  }
}

// ---- dropout ----

TEST_CASE("cuda dropout: the CPU's mask, output and gradient bit for bit") {
  if (!gpu()) return;
  for (DType dt : kFloats)
    for (int64_t n : kOddSizes)
      for (double p : {0.1, 0.5, 0.9}) {
        INFO(dt << " n " << n << " p " << p);
        Generator gx(100 + static_cast<uint64_t>(n));
        const Tensor x = (rand({n, 3}, gx) * 4.0 - 2.0).to(dt);
        const Tensor dy = (rand({n, 3}, gx) + 0.5).to(dt);
        Tensor xa = x.clone().requires_grad_();
        Tensor xb = x.to(Device(kCUDA)).requires_grad_();
        manual_seed(77);
        (void)rand({1});  // a non-zero offset
        const Tensor ya = F::dropout(xa, p, /*training=*/true);
        const uint64_t offset = default_generator().offset();
        manual_seed(77);
        (void)rand({1});
        const Tensor yb = F::dropout(xb, p, /*training=*/true);
        CHECK(default_generator().offset() == offset);
        CHECK(bitwise_equal(yb.detach().cpu(), ya.detach()));
        ya.backward(dy);
        yb.backward(dy.to(Device(kCUDA)));
        REQUIRE(xb.grad().defined());
        CHECK(bitwise_equal(xb.grad().cpu(), xa.grad()));  // dy * mask: the masks are equal
      }
  // Channel dropout (one draw per (sample, channel)) and alpha dropout.
  Generator gx(120);
  const Tensor x = rand({2, 3, 5, 7}, gx) - 0.5;
  manual_seed(8);
  const Tensor a2 = F::dropout2d(x, 0.5, true);
  const Tensor aa = F::alpha_dropout(x, 0.2, true);
  manual_seed(8);
  const Tensor xc = x.to(Device(kCUDA));
  const Tensor b2 = F::dropout2d(xc, 0.5, true);
  const Tensor ba = F::alpha_dropout(xc, 0.2, true);
  CHECK(bitwise_equal(b2.cpu(), a2));
  // Alpha dropout's affine correction is a few elementwise ops: the mask is equal, the values
  // to rounding.
  CHECK(agree(ba.cpu(), aa, 4 * tolerance(kFloat32)));
}

// ---- nn::init ----

TEST_CASE("cuda nn::init fillers: the CPU's values from the same generator") {
  if (!gpu()) return;
  namespace init = ember::nn::init;
  for (DType dt : kFloats)
    for (const std::vector<int64_t>& shape :
         std::vector<std::vector<int64_t>>{{17, 33}, {5, 3, 3, 3}}) {
      INFO(dt << " shape " << IntArrayRef(shape));
      Twins g(130, 1);
      Tensor a = empty(shape, dt), b = empty(shape, on_cuda(dt));
      init::uniform_(a, -0.3, 0.7, g.host);
      init::uniform_(b, -0.3, 0.7, g.dev);
      CHECK(bitwise_equal(b.cpu(), a));
      init::kaiming_uniform_(a, std::sqrt(5.0), "fan_in", "leaky_relu", g.host);
      init::kaiming_uniform_(b, std::sqrt(5.0), "fan_in", "leaky_relu", g.dev);
      CHECK(bitwise_equal(b.cpu(), a));
      init::normal_(a, 0.5, 2.0, g.host);
      init::normal_(b, 0.5, 2.0, g.dev);
      CHECK(agree(b.cpu(), a, normal_tol(dt)));
      // trunc_normal_ and orthogonal_ draw on the host and copy in: bitwise.
      init::trunc_normal_(a, 0.0, 1.0, -2.0, 2.0, g.host);
      init::trunc_normal_(b, 0.0, 1.0, -2.0, 2.0, g.dev);
      CHECK(bitwise_equal(b.cpu(), a));
      init::orthogonal_(a, 1.0, g.host);
      init::orthogonal_(b, 1.0, g.dev);
      CHECK(bitwise_equal(b.cpu(), a));
      CHECK(g.in_step());
      // The default-generator forms.
      manual_seed(131);
      init::xavier_uniform_(a);
      init::xavier_normal_(a, 0.5);
      const Tensor xn = a.clone();
      init::kaiming_normal_(a, 0.0, "fan_out", "relu");
      const uint64_t offset = default_generator().offset();
      manual_seed(131);
      init::xavier_uniform_(b);
      init::xavier_normal_(b, 0.5);
      CHECK(agree(b.cpu(), xn, normal_tol(dt)));
      init::kaiming_normal_(b, 0.0, "fan_out", "relu");
      CHECK(agree(b.cpu(), a, normal_tol(dt)));
      CHECK(default_generator().offset() == offset);
    }
}

// ---- edge cases and errors ----

TEST_CASE("cuda random: empty tensors draw nothing, bad input raises the CPU's error") {
  if (!gpu()) return;
  Generator g(1);
  CHECK(rand({0, 5}, g, on_cuda(kFloat32)).numel() == 0);
  CHECK(randn({4, 0}, g, on_cuda(kFloat64)).numel() == 0);
  CHECK(randint(0, 5, {0}, g, on_cuda(kInt64)).numel() == 0);
  CHECK(randperm(0, g, on_cuda(kInt64)).numel() == 0);
  CHECK(bernoulli(empty({0, 3}, on_cuda(kFloat32)), g).numel() == 0);
  CHECK(g.offset() == 0);
  CHECK(randperm(1, g, on_cuda(kInt64)).cpu().item<int64_t>() == 0);
  CHECK(g.offset() == 0);

  for (const Device dev : {Device(kCPU), Device(kCUDA)}) {
    INFO(dev.str());
    const TensorOptions f32 = TensorOptions(kFloat32).device(dev);
    EMBER_CHECK_THROWS(rand({3}, g, TensorOptions(kInt64).device(dev)), DTypeError, "[rand]");
    EMBER_CHECK_THROWS(randn({3}, g, TensorOptions(kInt32).device(dev)), DTypeError, "[randn]");
    EMBER_CHECK_THROWS(randint(5, 5, {3}, g, f32), ValueError, "[randint]");
    EMBER_CHECK_THROWS(randint(0, 300, {3}, g, TensorOptions(kUInt8).device(dev)), ValueError,
                       "[randint]");
    EMBER_CHECK_THROWS(bernoulli(full({2}, 1.5, f32), g), ValueError, "[bernoulli]");
    EMBER_CHECK_THROWS(bernoulli(ones({2}, TensorOptions(kInt64).device(dev)), g), DTypeError,
                       "[bernoulli]");
    EMBER_CHECK_THROWS(multinomial(full({4}, -1.0, f32), 1, false, g), ValueError, "[multinomial]");
    EMBER_CHECK_THROWS(multinomial(zeros({2, 3}, f32), 1, true, g), ValueError, "[multinomial]");
    EMBER_CHECK_THROWS(multinomial(ones({3}, f32), 4, false, g), ValueError, "[multinomial]");
    Tensor t = empty({3}, f32);
    EMBER_CHECK_THROWS(uniform_(t, 1.0, 0.0, g), ValueError, "[uniform_]");
    EMBER_CHECK_THROWS(normal_(t, 0.0, -1.0, g), ValueError, "[normal_]");
  }
  CHECK(g.offset() == 0);

  // The kernels themselves reject what the ops never pass, with the CPU kernels' errors.
  const Tensor ints = empty({4}, on_cuda(kInt64));
  EMBER_CHECK_THROWS(cuda::uniform(ints, 0.0, 1.0, 1, 0), DTypeError, "[uniform]", "int64");
  EMBER_CHECK_THROWS(cuda::normal(ints, 0.0, 1.0, 1, 0), DTypeError, "[normal]", "int64");
  EMBER_CHECK_THROWS(cuda::bernoulli(empty({4}, on_cuda(kFloat32)), ints, 1, 0), DTypeError,
                     "[bernoulli]", "int64");
}
