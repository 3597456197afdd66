// The FlashAttention-2 CUDA kernels (src/cuda/attention.cu) against a float64 reference computed
// on the CPU from the same bfloat16/float16-rounded inputs: the composite
// scaled_dot_product_attention_reference and its autograd gradients, and the log-sum-exp of the
// scaled (masked) scores. Cases: D 64 and 128, causal and not, L != S both ways, odd L and S
// (1, 17, 100, 257), batch dims (B, H), non-contiguous q/k/v (transpose(1, 2) views of
// (B, T, H, D)), bf16 and fp16; outputs start poisoned (gpu()); two runs bitwise equal; dropout
// with the CPU's mask; the routing of the public sdpa; errors. The forward's three variants (S = Q
// K^T on mma.sync; on wgmma from swizzled tiles on sm_90a; warp-specialised and TMA-fed, with key
// tiles of 128 or 64) each. Tolerance, relative to the
// largest |reference| (at least 1e-3): bf16 1e-2, fp16 2e-3 (one rounding of P and dS to the input
// type inside the products, float32 sums). Without a GPU each case prints "skipped".
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "core/kernels.hpp"
#include "cuda/cuda_test_util.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/ember.hpp"
#include "ember/nn/functional/attention.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using ember::test::gpu;

namespace {

const Device cu(kCUDA);

/// Uniform(-amp, amp) values rounded to dt, on the CPU.
Tensor rnd(const std::vector<int64_t>& sizes, uint64_t seed, DType dt, double amp = 1.0) {
  Generator g(seed);
  Tensor t = empty(sizes, kFloat64);
  uniform_(t, -amp, amp, g);
  return t.to(dt);
}

double tol(DType dt) { return dt == kBFloat16 ? 1e-2 : 2e-3; }

/// max |got - want| / max |want| (want float64 on the CPU); infinity on a NaN or shape mismatch.
/// The denominator is at least 1e-3: a reference that vanishes exactly (dq and dk when a query
/// sees a single key) is compared absolutely.
double err(const Tensor& got, const Tensor& want) {
  if (got.sizes() != want.sizes()) return INFINITY;
  const std::vector<double> x = test::values(got.cpu()), y = test::values(want);
  double e = 0, mag = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isinf(y[i]) && x[i] == y[i]) continue;  // lse -inf
    e = std::max(e, std::abs(x[i] - y[i]));
    mag = std::max(mag, std::abs(y[i]));
  }
  return std::isnan(e) ? INFINITY : e / std::max(mag, 1e-3);
}

struct Result {
  Tensor out, dq, dk, dv;
};

/// Output and gradients of the fused op (q, k, v on CUDA, any strides) for the output gradient dy.
Result fused(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dy, bool causal,
             double p = 0.0) {
  Tensor ql = q.detach().requires_grad_(), kl = k.detach().requires_grad_();
  Tensor vl = v.detach().requires_grad_();
  Tensor y = F::scaled_dot_product_attention_flash(ql, kl, vl, causal, std::nullopt, p);
  std::vector<Tensor> g = autograd::grad({y}, {ql, kl, vl}, {dy});
  return {y.detach(), g[0], g[1], g[2]};
}

/// The float64 composite on the CPU from the rounded values of q, k, v, dy.
Result reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dy, bool causal,
                 double p = 0.0) {
  auto f64 = [](const Tensor& t) { return t.cpu().to(kFloat64).detach().requires_grad_(); };
  Tensor ql = f64(q), kl = f64(k), vl = f64(v);
  Tensor y = F::scaled_dot_product_attention_reference(ql, kl, vl, {}, p, causal);
  std::vector<Tensor> g = autograd::grad({y}, {ql, kl, vl}, {dy.cpu().to(kFloat64)});
  return {y.detach(), g[0], g[1], g[2]};
}

/// The log-sum-exp of q k^T / sqrt(D) (causal: keys > query at -inf) in float64.
Tensor reference_lse(const Tensor& q, const Tensor& k, bool causal) {
  Tensor q64 = q.cpu().to(kFloat64), k64 = k.cpu().to(kFloat64);
  const int64_t L = q.size(-2), S = k.size(-2);
  Tensor s =
      matmul(q64 * (1.0 / std::sqrt(static_cast<double>(q.size(-1)))), k64.transpose(-2, -1));
  if (causal)
    s = masked_fill(s, logical_not(ones({L, S}, kBool).tril()),
                    -std::numeric_limits<double>::infinity());
  return logsumexp(s, {-1});
}

struct Case {
  std::vector<int64_t> batch;
  int64_t L, S, D;
};

std::vector<int64_t> with(std::vector<int64_t> batch, int64_t r, int64_t c) {
  batch.push_back(r);
  batch.push_back(c);
  return batch;
}

const std::vector<Case> kCases = {
    {{1, 2}, 64, 64, 64},
    {{2}, 17, 100, 64},
    {{1, 1}, 100, 17, 128},
    {{}, 1, 1, 64},
    {{1}, 257, 257, 64},
    {{2, 1}, 1, 70, 128},
    // more query tiles (64 rows) than the warp-specialised dK/dV kernel has stages at D 128 (4)
    {{1, 1}, 290, 65, 128},
    // more key tiles than variants 2 and 3 have stages (5 of 128 keys and 6 of 64 at D 64, 3 of
    // 128 and 4 of 64 at D 128): the stages wrap; so do the backward's (6 and 4 tiles of 64)
    {{1}, 200, 700, 64},
    {{2}, 129, 420, 128}};

}  // namespace

TEST_CASE("cuda attention: forward output and lse match the float64 reference") {
  if (!gpu()) return;
  // variant 0: S = Q K^T on mma.sync; 1: on wgmma (sm_90a, and the emulator; else mma.sync);
  // 2, 3: warp-specialised, TMA-fed, the softmax overlapping P V, key tiles of 128 and 64
  for (int variant : {0, 1, 2, 3}) {
    cuda::set_attention_forward_variant(variant);
    for (DType dt : {kBFloat16, kFloat16}) {
      for (const Case& c : kCases) {
        for (bool causal : {false, true}) {
          INFO("variant " << variant << " dtype " << dt << " batch " << IntArrayRef(c.batch)
                          << " L " << c.L << " S " << c.S << " D " << c.D << " causal " << causal);
          Tensor q = rnd(with(c.batch, c.L, c.D), 11, dt, 2.0);
          Tensor k = rnd(with(c.batch, c.S, c.D), 12, dt, 2.0);
          Tensor v = rnd(with(c.batch, c.S, c.D), 13, dt);
          Tensor qc = q.to(cu), kc = k.to(cu), vc = v.to(cu);
          std::vector<int64_t> lse_shape = with(c.batch, c.L, 1);
          lse_shape.pop_back();
          Tensor out = empty(with(c.batch, c.L, c.D), TensorOptions(dt).device(cu));
          Tensor lse = empty(lse_shape, TensorOptions(kFloat32).device(cu));
          const double scale = 1.0 / std::sqrt(static_cast<double>(c.D));
          cuda::attention_forward_flash(out, lse, qc, kc, vc, scale, causal);
          Tensor want = F::scaled_dot_product_attention_reference(q.to(kFloat64), k.to(kFloat64),
                                                                  v.to(kFloat64), {}, 0.0, causal);
          CHECK(err(out, want) <= tol(dt));
          CHECK(err(lse, reference_lse(q, k, causal)) <= 1e-5);
          // The op computes the same (its out is this kernel's).
          CHECK(test::bitwise_equal(F::scaled_dot_product_attention_flash(qc, kc, vc, causal).cpu(),
                                    out.cpu()));
        }
      }
    }
  }
  cuda::set_attention_forward_variant(-1);
  EMBER_CHECK_THROWS(cuda::set_attention_forward_variant(4), ValueError,
                     "set_attention_forward_variant");
}

TEST_CASE("cuda attention: backward dq, dk, dv match float64 autograd of the composite") {
  if (!gpu()) return;
  // variant 0: the dK/dV and dQ kernels' products on mma.sync; 1: on wgmma (sm_90a, the emulator);
  // 2: the warp-specialised, TMA-fed kernels; 3: the fused, persistent one (dQ added in turn)
  for (int variant : {0, 1, 2, 3}) {
    cuda::set_attention_backward_variant(variant);
    for (DType dt : {kBFloat16, kFloat16}) {
      for (const Case& c : kCases) {
        for (bool causal : {false, true}) {
          INFO("variant " << variant << " dtype " << dt << " batch " << IntArrayRef(c.batch)
                          << " L " << c.L << " S " << c.S << " D " << c.D << " causal " << causal);
          Tensor q = rnd(with(c.batch, c.L, c.D), 21, dt, 2.0);
          Tensor k = rnd(with(c.batch, c.S, c.D), 22, dt, 2.0);
          Tensor v = rnd(with(c.batch, c.S, c.D), 23, dt);
          Tensor dy = rnd(with(c.batch, c.L, c.D), 24, dt);
          Result got = fused(q.to(cu), k.to(cu), v.to(cu), dy.to(cu), causal);
          Result want = reference(q, k, v, dy, causal);
          CHECK(got.dq.dtype() == dt);
          CHECK(err(got.out, want.out) <= tol(dt));
          CHECK(err(got.dq, want.dq) <= tol(dt));
          CHECK(err(got.dk, want.dk) <= tol(dt));
          CHECK(err(got.dv, want.dv) <= tol(dt));
        }
      }
    }
  }
  cuda::set_attention_backward_variant(-1);
  EMBER_CHECK_THROWS(cuda::set_attention_backward_variant(4), ValueError,
                     "set_attention_backward_variant");
}

TEST_CASE("cuda attention: transposed (B, T, H, D) views are read in place, same results") {
  if (!gpu()) return;
  for (int64_t D : {64, 128}) {
    for (bool causal : {false, true}) {
      // forward variants 2 and 3 and backward variants 2 and 3 read the view through rank-4
      // tensor maps (B, H, T, D) with its strides
      const int variant = causal ? (D == 64 ? 3 : 2) : 0;
      const int backward = causal ? (D == 64 ? 2 : 3) : (D == 64 ? 0 : 1);
      cuda::set_attention_forward_variant(variant);
      cuda::set_attention_backward_variant(backward);
      INFO("D " << D << " causal " << causal << " variant " << variant << " backward " << backward);
      const DType dt = kBFloat16;
      const int64_t B = 2, T = 33, H = 3;
      Tensor q = rnd({B, T, H, D}, 31, dt, 2.0).to(cu).transpose(1, 2);  // (B, H, T, D)
      Tensor k = rnd({B, T, H, D}, 32, dt, 2.0).to(cu).transpose(1, 2);
      Tensor v = rnd({B, T, H, D}, 33, dt).to(cu).transpose(1, 2);
      Tensor dy = rnd({B, T, H, D}, 34, dt).to(cu).transpose(1, 2);
      REQUIRE_FALSE(q.is_contiguous());
      Result got = fused(q, k, v, dy, causal);
      Result contiguous =
          fused(q.contiguous(), k.contiguous(), v.contiguous(), dy.contiguous(), causal);
      CHECK(test::bitwise_equal(got.out.cpu(), contiguous.out.cpu()));
      CHECK(test::bitwise_equal(got.dq.cpu(), contiguous.dq.cpu()));
      CHECK(test::bitwise_equal(got.dk.cpu(), contiguous.dk.cpu()));
      CHECK(test::bitwise_equal(got.dv.cpu(), contiguous.dv.cpu()));
      // The output and the gradients lie as the inputs, (B, T, H, D) in memory.
      CHECK(got.out.transpose(1, 2).is_contiguous());
      CHECK(got.dq.transpose(1, 2).is_contiguous());
      CHECK(got.dk.transpose(1, 2).is_contiguous());
      CHECK(got.dv.transpose(1, 2).is_contiguous());
      CHECK(contiguous.out.is_contiguous());
      CHECK(contiguous.dq.is_contiguous());
      Result want = reference(q, k, v, dy, causal);
      CHECK(err(got.out, want.out) <= tol(dt));
      CHECK(err(got.dq, want.dq) <= tol(dt));
      CHECK(err(got.dk, want.dk) <= tol(dt));
      CHECK(err(got.dv, want.dv) <= tol(dt));
      // A layout the kernels cannot read in place (rows not in 16-byte chunks) is copied first.
      Tensor qn = test::non_contiguous(q);
      CHECK(test::bitwise_equal(F::scaled_dot_product_attention_flash(qn, k, v, causal).cpu(),
                                got.out.cpu()));
    }
  }
  cuda::set_attention_forward_variant(-1);
  cuda::set_attention_backward_variant(-1);
}

TEST_CASE("cuda attention: heads split from one projection, the output and gradients in place") {
  if (!gpu()) return;
  // A transformer's attention: q, k, v the heads views of one (B, T, 3 C) projection (rows at
  // stride 3 C), the output reshaped to (B, T, C) and the projection's gradient one
  // concatenation: out, dq, dk and dv are written where they lie as (B, T, H, D) (dq by
  // variant 3's conversion pass too), bitwise what contiguous inputs give.
  for (int variant : {0, 1, 3}) {
    for (int64_t D : {64, 128}) {
      cuda::set_attention_forward_variant(variant);
      cuda::set_attention_backward_variant(variant);
      INFO("variant " << variant << " D " << D);
      const int64_t B = 2, T = 70, H = 2, C = H * D;
      Tensor qkv = rnd({B, T, 3 * C}, 81, kBFloat16, 2.0).to(cu).requires_grad_();
      const Tensor dy = rnd({B, T, C}, 82, kBFloat16).to(cu);
      auto heads = [&](const Tensor& t) { return t.view({B, T, H, D}).transpose(1, 2); };
      std::vector<Tensor> p = qkv.split(C, 2);
      Tensor out =
          F::scaled_dot_product_attention_flash(heads(p[0]), heads(p[1]), heads(p[2]), true);
      Tensor y = out.transpose(1, 2).reshape({B, T, C});
      CHECK(y.data_ptr() == out.data_ptr());  // a view, no copy
      Tensor g = autograd::grad({y}, {qkv}, {dy})[0];
      CHECK(g.is_contiguous());
      const Result dense =
          fused(heads(p[0]).contiguous(), heads(p[1]).contiguous(), heads(p[2]).contiguous(),
                dy.view({B, T, H, D}).transpose(1, 2), true);
      CHECK(test::bitwise_equal(out.detach().cpu(), dense.out.cpu()));
      auto flat = [&](const Tensor& t) { return t.transpose(1, 2).reshape({B, T, C}); };
      CHECK(test::bitwise_equal(g.cpu(),
                                cat({flat(dense.dq), flat(dense.dk), flat(dense.dv)}, 2).cpu()));
    }
  }
  cuda::set_attention_forward_variant(-1);
  cuda::set_attention_backward_variant(-1);
}

TEST_CASE("cuda attention: two runs give bitwise the same output and gradients") {
  if (!gpu()) return;
  // the backward on mma.sync, wgmma, warp-specialised, fused (its dQ sums in a fixed order)
  for (int variant : {0, 1, 2, 3}) {
    const DType dt = variant == 1 ? kFloat16 : kBFloat16;
    cuda::set_attention_forward_variant(variant >= 1 ? std::min(variant + 1, 3) : -1);
    cuda::set_attention_backward_variant(variant);
    INFO("dtype " << dt << " variant " << variant);
    Tensor q = rnd({2, 2, 100, 64}, 41, dt, 2.0).to(cu),
           k = rnd({2, 2, 130, 64}, 42, dt, 2.0).to(cu);
    Tensor v = rnd({2, 2, 130, 64}, 43, dt).to(cu), dy = rnd({2, 2, 100, 64}, 44, dt).to(cu);
    Result a = fused(q, k, v, dy, true), b = fused(q, k, v, dy, true);
    CHECK(test::bitwise_equal(a.out.cpu(), b.out.cpu()));
    CHECK(test::bitwise_equal(a.dq.cpu(), b.dq.cpu()));
    CHECK(test::bitwise_equal(a.dk.cpu(), b.dk.cpu()));
    CHECK(test::bitwise_equal(a.dv.cpu(), b.dv.cpu()));
  }
  cuda::set_attention_forward_variant(-1);
  cuda::set_attention_backward_variant(-1);
}

// Variant 3 runs one persistent block per SM, each walking (head, 128-key tile) items, and adds
// dQ into float32 sums in key-tile order. Under the emulator CTest runs this case a second time
// with EMBER_EMU_SMS=3, so that three blocks take turns at 8-12 items (more items than blocks,
// each block's stages and resident tiles reused), all three running together as on a GPU; with
// EMBER_EMU_REVERSE=1 the last block runs first and waits for its turn.
TEST_CASE("cuda attention: fused backward (variant 3) matches variant 2, same bits every run") {
  if (!gpu()) return;
  struct FusedCase {
    std::vector<int64_t> batch;
    int64_t L, S, D;
    bool causal;
    DType dt;
  };
  // 2 x 4 items of 128 keys (the last one ragged: its second consumer has no keys at all); 3 x 3
  // causal with L < S (the last key tiles see no query: zero dK and dV, no dQ turn); 4 x 3 at
  // D 128 with L > S.
  const std::vector<FusedCase> cases = {{{1, 2}, 150, 400, 64, false, kBFloat16},
                                        {{3}, 200, 300, 64, true, kBFloat16},
                                        {{2, 2}, 300, 257, 128, true, kFloat16},
                                        {{4}, 128, 1100, 64, false, kFloat16}};
  for (const FusedCase& c : cases) {
    INFO("batch " << IntArrayRef(c.batch) << " L " << c.L << " S " << c.S << " D " << c.D
                  << " causal " << c.causal << " dtype " << c.dt);
    const DType dt = c.dt;
    Tensor q = rnd(with(c.batch, c.L, c.D), 71, dt, 2.0).to(cu);
    Tensor k = rnd(with(c.batch, c.S, c.D), 72, dt, 2.0).to(cu);
    Tensor v = rnd(with(c.batch, c.S, c.D), 73, dt).to(cu);
    Tensor dy = rnd(with(c.batch, c.L, c.D), 74, dt).to(cu);
    cuda::set_attention_backward_variant(2);
    Result split = fused(q, k, v, dy, c.causal);
    cuda::set_attention_backward_variant(3);
    Result a = fused(q, k, v, dy, c.causal), b = fused(q, k, v, dy, c.causal);
    CHECK(test::bitwise_equal(a.dq.cpu(), b.dq.cpu()));
    CHECK(test::bitwise_equal(a.dk.cpu(), b.dk.cpu()));
    CHECK(test::bitwise_equal(a.dv.cpu(), b.dv.cpu()));
    // dK and dV come from the same products in the same order as variant 2's: the same bits.
    CHECK(test::bitwise_equal(a.dk.cpu(), split.dk.cpu()));
    CHECK(test::bitwise_equal(a.dv.cpu(), split.dv.cpu()));
    Result want = reference(q, k, v, dy, c.causal);
    CHECK(err(a.dq, want.dq) <= tol(dt));
    CHECK(err(a.dk, want.dk) <= tol(dt));
    CHECK(err(a.dv, want.dv) <= tol(dt));
    CHECK(err(a.dq, split.dq) <= tol(dt));
  }
  cuda::set_attention_backward_variant(-1);
}

TEST_CASE("cuda attention: dropout uses the CPU's mask (same seed), forward and backward") {
  if (!gpu()) return;
  struct DropCase {
    std::vector<int64_t> batch;
    int64_t L, S, D;
    bool causal;
  };
  const std::vector<DropCase> cases = {
      {{2, 1}, 37, 37, 64, true}, {{1}, 65, 99, 128, false}, {{1, 1}, 70, 13, 64, false}};
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const DropCase& c = cases[ci];
    for (double p : {0.2, 0.5}) {
      const int variant = static_cast<int>((ci + (p > 0.3 ? 1 : 0)) % 4);  // each forward variant
      cuda::set_attention_forward_variant(variant);
      const int backward = static_cast<int>((ci + (p > 0.3 ? 1 : 0)) % 4);
      cuda::set_attention_backward_variant(backward);
      INFO("L " << c.L << " S " << c.S << " D " << c.D << " causal " << c.causal << " p " << p
                << " variant " << variant << " backward " << backward);
      const DType dt = kBFloat16;
      Tensor q = rnd(with(c.batch, c.L, c.D), 51, dt, 2.0),
             k = rnd(with(c.batch, c.S, c.D), 52, dt, 2.0);
      Tensor v = rnd(with(c.batch, c.S, c.D), 53, dt), dy = rnd(with(c.batch, c.L, c.D), 54, dt);
      manual_seed(99);
      Result got = fused(q.to(cu), k.to(cu), v.to(cu), dy.to(cu), c.causal, p);
      manual_seed(99);
      Result want = reference(q, k, v, dy, c.causal, p);
      CHECK(err(got.out, want.out) <= tol(dt));
      CHECK(err(got.dq, want.dq) <= tol(dt));
      CHECK(err(got.dk, want.dk) <= tol(dt));
      CHECK(err(got.dv, want.dv) <= tol(dt));
      // Some weights were dropped: the reference without dropout is far off.
      CHECK(err(got.out, reference(q, k, v, dy, c.causal).out) > 0.05);
    }
  }
  cuda::set_attention_forward_variant(-1);
  cuda::set_attention_backward_variant(-1);
}

TEST_CASE("cuda attention: create_graph differentiates the composite on the GPU") {
  if (!gpu()) return;
  const DType dt = kFloat16;
  Tensor q = rnd({1, 2, 20, 64}, 61, dt).to(cu), k = rnd({1, 2, 30, 64}, 62, dt).to(cu);
  Tensor v = rnd({1, 2, 30, 64}, 63, dt).to(cu), dy = rnd({1, 2, 20, 64}, 64, dt).to(cu);
  Tensor ql = q.detach().requires_grad_(), kl = k.detach().requires_grad_();
  Tensor vl = v.detach().requires_grad_();
  Tensor y = F::scaled_dot_product_attention_flash(ql, kl, vl, true);
  std::vector<Tensor> g = autograd::grad({y}, {ql, kl, vl}, {dy}, true, /*create_graph=*/true);
  Result want = reference(q, k, v, dy, true);
  CHECK(g[0].requires_grad());
  CHECK(err(g[0], want.dq) <= tol(dt));
  CHECK(err(g[1], want.dk) <= tol(dt));
  CHECK(err(g[2], want.dv) <= tol(dt));
}

TEST_CASE("cuda attention: the public sdpa routes bf16/fp16 D 64/128 to the fused op") {
  if (!gpu()) return;
  for (DType dt : {kBFloat16, kFloat16}) {
    for (int64_t D : {64, 128}) {
      INFO("dtype " << dt << " D " << D);
      Tensor q = rnd({2, 40, D}, 71, dt).to(cu).requires_grad_(),
             k = rnd({2, 50, D}, 72, dt).to(cu);
      Tensor v = rnd({2, 50, D}, 73, dt).to(cu);
      Tensor y = F::scaled_dot_product_attention(q, k, v, {}, 0.0, true);
      CHECK(test::node_name(y) == "scaled_dot_product_attention_flash");
      CHECK(
          test::bitwise_equal(y.cpu(), F::scaled_dot_product_attention_flash(q, k, v, true).cpu()));
    }
  }
  // Not eligible on CUDA: other head dims, float32, a mask: the composite.
  Tensor q = rnd({2, 8, 32}, 74, kBFloat16).to(cu).requires_grad_();
  Tensor k = rnd({2, 9, 32}, 75, kBFloat16).to(cu), v = rnd({2, 9, 32}, 76, kBFloat16).to(cu);
  CHECK(test::node_name(F::scaled_dot_product_attention(q, k, v)) !=
        "scaled_dot_product_attention_flash");
  Tensor q32 = rnd({2, 8, 64}, 77, kFloat32).to(cu).requires_grad_();
  Tensor k32 = rnd({2, 9, 64}, 78, kFloat32).to(cu), v32 = rnd({2, 9, 64}, 79, kFloat32).to(cu);
  CHECK(test::node_name(F::scaled_dot_product_attention(q32, k32, v32)) !=
        "scaled_dot_product_attention_flash");
  Tensor qb = rnd({2, 8, 64}, 80, kBFloat16).to(cu).requires_grad_();
  Tensor kb = rnd({2, 9, 64}, 81, kBFloat16).to(cu), vb = rnd({2, 9, 64}, 82, kBFloat16).to(cu);
  Tensor mask = ones({8, 9}, TensorOptions(kBool).device(cu));
  CHECK(test::node_name(F::scaled_dot_product_attention(qb, kb, vb, mask)) !=
        "scaled_dot_product_attention_flash");
  CHECK(test::node_name(F::scaled_dot_product_attention(qb, kb, vb)) ==
        "scaled_dot_product_attention_flash");
}

TEST_CASE("cuda attention: no keys gives zeros and lse -inf, no queries an empty output") {
  if (!gpu()) return;
  Tensor q = rnd({2, 5, 64}, 91, kBFloat16).to(cu), k = rnd({2, 0, 64}, 92, kBFloat16).to(cu);
  Tensor v = rnd({2, 0, 64}, 93, kBFloat16).to(cu);
  Tensor out = empty({2, 5, 64}, TensorOptions(kBFloat16).device(cu));
  Tensor lse = empty({2, 5}, TensorOptions(kFloat32).device(cu));
  cuda::attention_forward_flash(out, lse, q, k, v, 0.125, false);
  CHECK(test::bitwise_equal(out.cpu(), zeros({2, 5, 64}, kBFloat16)));
  for (double x : test::values(lse.cpu())) CHECK(x == -std::numeric_limits<double>::infinity());
  Tensor q0 = rnd({2, 0, 64}, 94, kBFloat16).to(cu);
  Tensor k1 = rnd({2, 3, 64}, 95, kBFloat16).to(cu), v1 = rnd({2, 3, 64}, 96, kBFloat16).to(cu);
  CHECK(F::scaled_dot_product_attention_flash(q0, k1, v1).sizes() == IntArrayRef({2, 0, 64}));
}

TEST_CASE("cuda attention: errors name the op and the shapes") {
  if (!gpu()) return;
  const char* op = "[scaled_dot_product_attention_flash]";
  Tensor q = rnd({1, 2, 8, 64}, 1, kBFloat16).to(cu), k = rnd({1, 2, 9, 64}, 2, kBFloat16).to(cu);
  Tensor v = rnd({1, 2, 9, 64}, 3, kBFloat16).to(cu);
  EMBER_CHECK_THROWS(
      F::scaled_dot_product_attention_flash(q.to(kFloat32), k.to(kFloat32), v.to(kFloat32)),
      DTypeError, op, "float32", "CUDA");
  Tensor q32 = rnd({1, 2, 8, 32}, 4, kBFloat16).to(cu),
         k32 = rnd({1, 2, 9, 32}, 5, kBFloat16).to(cu);
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention_flash(q32, k32, k32), ShapeError, op,
                     "(1, 2, 8, 32)", "{64, 128}");
  EMBER_CHECK_THROWS(
      F::scaled_dot_product_attention_flash(q, k, rnd({1, 2, 9, 128}, 6, kBFloat16).to(cu)),
      ShapeError, op, "(1, 2, 9, 128)");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention_flash(q, k.cpu(), v), DeviceError, op,
                     "cuda:0", "cpu");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention_flash(q, k.to(kFloat16), v), DTypeError, op,
                     "bfloat16", "float16");
}
