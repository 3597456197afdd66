// The fused FlashAttention-2 CPU kernel (scaled_dot_product_attention_flash) against the composite
// scaled_dot_product_attention_reference: outputs and the three input gradients in float32 and
// float64 over sizes (1, odd, L != S both ways, several head dims, rank 2 to 4 inputs), causal or
// not; non-contiguous inputs; bitwise determinism over thread counts and micro-kernels; the public
// function's dispatch; gradcheck / gradgradcheck (double backward through the composite); empty
// sizes; errors.
#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/cpu/gemm_kernels.hpp"
#include "ember/nn/functional/attention.hpp"
#include "gradcheck.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using test::bitwise_equal;
using test::grad_input;
using test::values;

namespace {

Tensor rnd(const std::vector<int64_t>& sizes, uint64_t seed, DType dt = kFloat64,
           double amp = 1.0) {
  Generator g(seed);
  Tensor t = empty(sizes, kFloat64);
  uniform_(t, -amp, amp, g);
  return t.to(dt);
}

using test::rel_err;

using Sdpa = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>;

/// Output and gradients (dq, dk, dv) of fn at q, k, v (their strides kept) for the output
/// gradient dy.
std::vector<Tensor> run(const Sdpa& fn, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& dy) {
  Tensor ql = q.detach().requires_grad_(), kl = k.detach().requires_grad_();
  Tensor vl = v.detach().requires_grad_();
  Tensor y = fn(ql, kl, vl);
  std::vector<Tensor> g = autograd::grad({y}, {ql, kl, vl}, {dy});
  return {y.detach(), g[0], g[1], g[2]};
}

Sdpa flash(bool causal, std::optional<double> scale = std::nullopt) {
  return [=](const Tensor& q, const Tensor& k, const Tensor& v) {
    return F::scaled_dot_product_attention_flash(q, k, v, causal, scale);
  };
}
Sdpa reference(bool causal, std::optional<double> scale = std::nullopt) {
  return [=](const Tensor& q, const Tensor& k, const Tensor& v) {
    return F::scaled_dot_product_attention_reference(q, k, v, {}, 0.0, causal, scale);
  };
}

std::vector<int64_t> with(std::vector<int64_t> batch, int64_t r, int64_t c) {
  batch.push_back(r);
  batch.push_back(c);
  return batch;
}

const char* kNames[] = {"out", "dq", "dk", "dv"};

}  // namespace

TEST_CASE("sdpa flash: output and gradients match the composite (float32 and float64)") {
  struct Case {
    std::vector<int64_t> batch;
    int64_t L, S, D, Dv;
  };
  const std::vector<Case> cases = {
      {{}, 1, 1, 1, 1},        {{}, 37, 129, 7, 7},      {{2}, 129, 37, 24, 24},
      {{2}, 200, 200, 64, 64}, {{2, 3}, 37, 37, 65, 65}, {{1, 2}, 129, 200, 128, 128},
      {{3}, 1, 97, 64, 32},    {{2}, 97, 1, 24, 7},      {{2}, 200, 129, 7, 65},
  };
  uint64_t seed = 1000;
  for (const Case& c : cases) {
    for (bool causal : {false, true}) {
      for (DType dt : {kFloat64, kFloat32}) {
        INFO("batch " << IntArrayRef(c.batch) << " L " << c.L << " S " << c.S << " D " << c.D
                      << " Dv " << c.Dv << " causal " << causal << " " << dt);
        Tensor q = rnd(with(c.batch, c.L, c.D), ++seed, dt);
        Tensor k = rnd(with(c.batch, c.S, c.D), ++seed, dt);
        Tensor v = rnd(with(c.batch, c.S, c.Dv), ++seed, dt);
        Tensor dy = rnd(with(c.batch, c.L, c.Dv), ++seed, dt);
        std::vector<Tensor> got = run(flash(causal), q, k, v, dy);
        std::vector<Tensor> want = run(reference(causal), q, k, v, dy);
        const double tol = dt == kFloat64 ? 1e-12 : 2e-5;
        for (size_t i = 0; i < 4; ++i) {
          INFO(kNames[i] << " error " << rel_err(got[i], want[i]));
          CHECK(got[i].dtype() == dt);
          CHECK(got[i].sizes() == want[i].sizes());
          CHECK(rel_err(got[i], want[i]) <= tol);
        }
      }
    }
  }
}

TEST_CASE("sdpa flash: large scores (online softmax rescaling) and a custom scale") {
  // Scores up to about +-60 vary a lot between key blocks: the running max must rescale.
  for (DType dt : {kFloat64, kFloat32}) {
    INFO(dt);
    Tensor q = rnd({2, 150, 16}, 1, dt, 3.0), k = rnd({2, 300, 16}, 2, dt, 3.0);
    Tensor v = rnd({2, 300, 8}, 3, dt), dy = rnd({2, 150, 8}, 4, dt);
    for (bool causal : {false, true}) {
      std::vector<Tensor> got = run(flash(causal, 0.9), q, k, v, dy);
      std::vector<Tensor> want = run(reference(causal, 0.9), q, k, v, dy);
      for (size_t i = 0; i < 4; ++i) {
        INFO(kNames[i] << " causal " << causal << " error " << rel_err(got[i], want[i]));
        CHECK(rel_err(got[i], want[i]) <= (dt == kFloat64 ? 1e-11 : 1e-4));
      }
    }
  }
}

TEST_CASE("sdpa flash: non-contiguous inputs give bitwise the contiguous result") {
  for (DType dt : {kFloat64, kFloat32}) {
    for (bool causal : {false, true}) {
      INFO(dt << " causal " << causal);
      // Stored as (B, L, H, D) and viewed as (B, H, L, D), as a batch_first model hands them over;
      // k also transposed in its last two dims, dy strided.
      Tensor q = rnd({2, 100, 3, 24}, 11, dt).transpose(1, 2);
      Tensor k = rnd({2, 3, 24, 130}, 12, dt).transpose(-1, -2);
      Tensor v = rnd({2, 130, 3, 16}, 13, dt).transpose(1, 2);
      Tensor dy = test::non_contiguous(rnd({2, 3, 100, 16}, 14, dt));
      REQUIRE_FALSE(q.is_contiguous());
      REQUIRE_FALSE(k.is_contiguous());
      REQUIRE_FALSE(v.is_contiguous());
      REQUIRE_FALSE(dy.is_contiguous());
      std::vector<Tensor> strided = run(flash(causal), q, k, v, dy);
      std::vector<Tensor> dense =
          run(flash(causal), q.contiguous(), k.contiguous(), v.contiguous(), dy.contiguous());
      std::vector<Tensor> want = run(reference(causal), q, k, v, dy);
      for (size_t i = 0; i < 4; ++i) {
        INFO(kNames[i]);
        CHECK(bitwise_equal(strided[i], dense[i]));
        CHECK(rel_err(strided[i], want[i]) <= (dt == kFloat64 ? 1e-12 : 2e-5));
        CHECK(dense[i].is_contiguous());
      }
      // out, dq and dv lie as q and v do, (B, L, H, D) in memory: out.transpose(1, 2) reshapes to
      // (B, L, H D) without a copy. k's last dim is not unit-strided: dk is contiguous.
      CHECK(strided[0].transpose(1, 2).is_contiguous());
      CHECK(strided[1].transpose(1, 2).is_contiguous());
      CHECK(strided[2].is_contiguous());
      CHECK(strided[3].transpose(1, 2).is_contiguous());
    }
  }
}

TEST_CASE("sdpa flash: a transformer's heads split from one projection, no copies around it") {
  // q, k, v as the heads views of one (B, T, 3 C) projection, the output reshaped back to
  // (B, T, C): out lies as (B, T, H, D), so the reshape is a view, and the gradient of the
  // projection is one concatenation of dq, dk, dv (split's node) - bitwise what contiguous
  // copies of q, k, v give.
  for (bool causal : {false, true}) {
    INFO("causal " << causal);
    const int64_t B = 2, T = 37, H = 3, D = 20, C = H * D;
    Tensor qkv = rnd({B, T, 3 * C}, 21, kFloat32).requires_grad_();
    const Tensor dy = rnd({B, T, C}, 22, kFloat32);
    auto attend = [&](const std::vector<Tensor>& p) {
      auto heads = [&](const Tensor& t) { return t.view({B, T, H, D}).transpose(1, 2); };
      Tensor o =
          F::scaled_dot_product_attention_flash(heads(p[0]), heads(p[1]), heads(p[2]), causal);
      return std::pair<Tensor, Tensor>{o, o.transpose(1, 2).reshape({B, T, C})};
    };
    auto [out, y] = attend(qkv.split(C, 2));
    CHECK(y.data_ptr() == out.data_ptr());  // a view
    CHECK(y.is_contiguous());
    Tensor g = autograd::grad({y}, {qkv}, {dy})[0];
    CHECK(g.is_contiguous());
    // The same through contiguous copies of the three pieces.
    Tensor qkv2 = qkv.detach().requires_grad_();
    std::vector<Tensor> pieces = qkv2.split(C, 2);
    for (Tensor& t : pieces) t = t.contiguous();
    auto [out2, y2] = attend(pieces);
    CHECK(bitwise_equal(y.detach(), y2.detach()));
    CHECK(bitwise_equal(g, autograd::grad({y2}, {qkv2}, {dy})[0]));
  }
}

TEST_CASE("sdpa flash: 1 and 2 threads give bitwise the same output and gradients") {
  const int threads = get_num_threads();
  for (DType dt : {kFloat32, kFloat64}) {
    for (bool causal : {false, true}) {
      INFO(dt << " causal " << causal);
      Tensor q = rnd({3, 2, 250, 32}, 21, dt), k = rnd({3, 2, 190, 32}, 22, dt);
      Tensor v = rnd({3, 2, 190, 40}, 23, dt), dy = rnd({3, 2, 250, 40}, 24, dt);
      set_num_threads(1);
      std::vector<Tensor> one = run(flash(causal), q, k, v, dy);
      set_num_threads(2);
      std::vector<Tensor> two = run(flash(causal), q, k, v, dy);
      set_num_threads(threads);
      for (size_t i = 0; i < 4; ++i) {
        INFO(kNames[i]);
        CHECK(bitwise_equal(one[i], two[i]));
      }
      // A different input does change the result (the comparison can fail).
      std::vector<Tensor> other = run(flash(!causal), q, k, v, dy);
      CHECK_FALSE(bitwise_equal(one[0], other[0]));
    }
  }
}

TEST_CASE("sdpa flash: the portable and AVX-512 micro-kernels give bitwise the same results") {
  if (!cpu::gemm_isa_available(cpu::GemmIsa::Avx512)) {
    SUCCEED("skipped: no AVX-512 on this CPU or build");
    return;
  }
  const cpu::GemmIsa saved = cpu::gemm_isa();
  for (DType dt : {kFloat32, kFloat64}) {
    for (bool causal : {false, true}) {
      INFO(dt << " causal " << causal);
      Tensor q = rnd({2, 130, 24}, 31, dt), k = rnd({2, 200, 24}, 32, dt);
      Tensor v = rnd({2, 200, 13}, 33, dt), dy = rnd({2, 130, 13}, 34, dt);
      cpu::set_gemm_isa(cpu::GemmIsa::Baseline);
      std::vector<Tensor> portable = run(flash(causal), q, k, v, dy);
      cpu::set_gemm_isa(cpu::GemmIsa::Avx512);
      std::vector<Tensor> avx512 = run(flash(causal), q, k, v, dy);
      cpu::set_gemm_isa(saved);
      std::vector<Tensor> want = run(reference(causal), q, k, v, dy);
      for (size_t i = 0; i < 4; ++i) {
        INFO(kNames[i]);
        CHECK(bitwise_equal(portable[i], avx512[i]));
        CHECK(rel_err(portable[i], want[i]) <= (dt == kFloat64 ? 1e-12 : 2e-5));
      }
    }
  }
}

TEST_CASE("sdpa flash: the public function takes the fused path exactly where documented") {
  Tensor q = rnd({2, 40, 8}, 41), k = rnd({2, 50, 8}, 42), v = rnd({2, 50, 6}, 43);
  // Eligible: bitwise the fused op, and not bitwise the composite (so the check can tell).
  for (bool causal : {false, true}) {
    Tensor pub = F::scaled_dot_product_attention(q, k, v, {}, 0.0, causal);
    CHECK(bitwise_equal(pub, F::scaled_dot_product_attention_flash(q, k, v, causal)));
  }
  Tensor q32 = q.to(kFloat32), k32 = k.to(kFloat32), v32 = v.to(kFloat32);
  Tensor pub32 = F::scaled_dot_product_attention(q32, k32, v32, {}, 0.0, false, 0.3);
  CHECK(bitwise_equal(pub32, F::scaled_dot_product_attention_flash(q32, k32, v32, false, 0.3)));
  CHECK_FALSE(bitwise_equal(
      pub32, F::scaled_dot_product_attention_reference(q32, k32, v32, {}, 0.0, false, 0.3)));
  // Not eligible: a mask, broadcast batch dims, float16: the composite, bitwise.
  Tensor keep = ones({40, 50}, kBool);
  CHECK(bitwise_equal(F::scaled_dot_product_attention(q, k, v, keep),
                      F::scaled_dot_product_attention_reference(q, k, v, keep)));
  Tensor k1 = k.narrow(0, 0, 1), v1 = v.narrow(0, 0, 1);
  CHECK(bitwise_equal(F::scaled_dot_product_attention(q, k1, v1),
                      F::scaled_dot_product_attention_reference(q, k1, v1)));
  Tensor qh = q.to(kFloat16), kh = k.to(kFloat16), vh = v.to(kFloat16);
  CHECK(bitwise_equal(F::scaled_dot_product_attention(qh, kh, vh),
                      F::scaled_dot_product_attention_reference(qh, kh, vh)));
  // The fused node is what autograd records.
  Tensor ql = q.detach().requires_grad_();
  CHECK(F::scaled_dot_product_attention(ql, k, v).grad_fn()->name() ==
        "scaled_dot_product_attention_flash");
}

TEST_CASE("sdpa flash: gradcheck and gradgradcheck (double backward runs the composite)") {
  using Inputs = std::vector<Tensor>;
  std::vector<test::GradCase> table;
  table.push_back(
      {"plain",
       [](const Inputs& x) { return F::scaled_dot_product_attention_flash(x[0], x[1], x[2]); },
       {grad_input({2, 5, 4}), grad_input({2, 7, 4}), grad_input({2, 7, 3})}});
  table.push_back({"causal L > S, scale, 2-D",
                   [](const Inputs& x) {
                     return F::scaled_dot_product_attention_flash(x[0], x[1], x[2], true, 0.8);
                   },
                   {grad_input({6, 3}), grad_input({4, 3}), grad_input({4, 5})}});
  table.push_back(
      {"causal L < S, non-contiguous",
       [](const Inputs& x) {
         return F::scaled_dot_product_attention_flash(x[0], x[1], x[2], true);
       },
       {grad_input({2, 3, 4}).detach().transpose(1, 2).requires_grad_(),
        grad_input({2, 3, 6}).detach().transpose(1, 2).requires_grad_(), grad_input({2, 6, 2})}});
  test::check_grad_table(table);
}

TEST_CASE("sdpa flash: second derivatives equal the composite's") {
  Tensor q = rnd({2, 9, 5}, 51), k = rnd({2, 11, 5}, 52), v = rnd({2, 11, 3}, 53);
  Tensor dy = rnd({2, 9, 3}, 54);
  auto second = [&](const Sdpa& fn) {
    Tensor ql = q.clone().requires_grad_(), kl = k.clone().requires_grad_();
    Tensor vl = v.clone().requires_grad_();
    Tensor y = fn(ql, kl, vl);
    std::vector<Tensor> g = autograd::grad({y}, {ql, kl, vl}, {dy}, std::nullopt, true);
    Tensor s = (g[0] * g[0]).sum() + (g[1] * g[2].sum()).sum() + (g[2] * g[2]).sum();
    return autograd::grad({s}, {ql, kl, vl});
  };
  for (bool causal : {false, true}) {
    INFO("causal " << causal);
    std::vector<Tensor> got = second(flash(causal)), want = second(reference(causal));
    for (size_t i = 0; i < 3; ++i) {
      CHECK(got[i].defined());
      CHECK(rel_err(got[i], want[i]) <= 1e-12);
    }
  }
}

TEST_CASE("sdpa flash: dropout uses the composite's mask (same seed), forward and backward") {
  // The kernel regenerates the mask bernoulli(1 - p) would draw over (..., L, S) at the same
  // generator state, so under one manual_seed the fused op and the composite with dropout compute
  // the same function: equal outputs and gradients to rounding, in float64.
  struct Case {
    std::vector<int64_t> batch;
    int64_t L, S, D;
    bool causal;
  };
  const std::vector<Case> cases = {{{2, 3}, 37, 37, 8, true},  {{2}, 129, 100, 16, false},
                                   {{}, 5, 200, 7, false},     {{3}, 200, 97, 24, true},
                                   {{1, 2}, 1, 1, 4, false}};
  for (const Case& c : cases) {
    for (double p : {0.1, 0.5}) {
      INFO("L " << c.L << " S " << c.S << " causal " << c.causal << " p " << p);
      Tensor q = rnd(with(c.batch, c.L, c.D), 71), k = rnd(with(c.batch, c.S, c.D), 72);
      Tensor v = rnd(with(c.batch, c.S, c.D + 1), 73), dy = rnd(with(c.batch, c.L, c.D + 1), 74);
      manual_seed(99);
      std::vector<Tensor> got = run(
          [&](const Tensor& a, const Tensor& b, const Tensor& e) {
            return F::scaled_dot_product_attention_flash(a, b, e, c.causal, std::nullopt, p);
          },
          q, k, v, dy);
      manual_seed(99);
      std::vector<Tensor> want = run(
          [&](const Tensor& a, const Tensor& b, const Tensor& e) {
            return F::scaled_dot_product_attention_reference(a, b, e, {}, p, c.causal);
          },
          q, k, v, dy);
      for (size_t i = 0; i < 4; ++i) {
        INFO(kNames[i]);
        CHECK(rel_err(got[i], want[i]) <= 1e-12);
      }
      // Some weights were dropped: without dropout the output differs.
      CHECK(rel_err(got[0], F::scaled_dot_product_attention_flash(q, k, v, c.causal)) > 1e-6);
    }
  }
}

TEST_CASE("sdpa flash: dropout is bitwise reproducible, thread-independent and twice-differentiable") {
  Tensor q = rnd({2, 2, 70, 16}, 81, kFloat32), k = rnd({2, 2, 90, 16}, 82, kFloat32);
  Tensor v = rnd({2, 2, 90, 16}, 83, kFloat32), dy = rnd({2, 2, 70, 16}, 84, kFloat32);
  auto go = [&](int threads) {
    const int saved = get_num_threads();
    set_num_threads(threads);
    manual_seed(5);
    std::vector<Tensor> r = run(
        [](const Tensor& a, const Tensor& b, const Tensor& e) {
          return F::scaled_dot_product_attention(a, b, e, {}, 0.2, true);
        },
        q, k, v, dy);
    set_num_threads(saved);
    return r;
  };
  std::vector<Tensor> one = go(1), two = go(2);
  for (size_t i = 0; i < 4; ++i) CHECK(bitwise_equal(one[i], two[i]));
  // The public function took the fused path.
  Tensor ql = q.detach().requires_grad_();
  CHECK(F::scaled_dot_product_attention(ql, k, v, {}, 0.2).grad_fn()->name() ==
        "scaled_dot_product_attention_flash");
  // Second derivatives (create_graph) recompute the composite with the kernel's own mask.
  Tensor q64 = q.to(kFloat64), k64 = k.to(kFloat64), v64 = v.to(kFloat64), dy64 = dy.to(kFloat64);
  auto second = [&](bool fused) {
    Tensor a = q64.clone().requires_grad_(), b = k64.clone().requires_grad_();
    Tensor e = v64.clone().requires_grad_();
    manual_seed(6);
    Tensor y = fused ? F::scaled_dot_product_attention_flash(a, b, e, false, std::nullopt, 0.3)
                     : F::scaled_dot_product_attention_reference(a, b, e, {}, 0.3, false);
    std::vector<Tensor> g = autograd::grad({y}, {a, b, e}, {dy64}, std::nullopt, true);
    Tensor s = (g[0] * g[0]).sum() + (g[1] * g[2]).sum();
    return autograd::grad({s}, {a, b, e});
  };
  std::vector<Tensor> got = second(true), want = second(false);
  for (size_t i = 0; i < 3; ++i) CHECK(rel_err(got[i], want[i]) <= 1e-11);
}

TEST_CASE("sdpa flash: no keys gives zeros, no queries an empty output") {
  Tensor q = rnd({2, 3, 4}, 61).requires_grad_();
  Tensor k = zeros({2, 0, 4}, kFloat64).requires_grad_(), v = zeros({2, 0, 5}, kFloat64);
  Tensor y = F::scaled_dot_product_attention_flash(q, k, v);
  CHECK(y.sizes() == IntArrayRef({2, 3, 5}));
  CHECK(values(y.abs().sum())[0] == 0.0);
  y.sum().backward();
  CHECK(values(q.grad().abs().sum())[0] == 0.0);
  Tensor e = F::scaled_dot_product_attention_flash(
      zeros({2, 0, 4}, kFloat32), rnd({2, 3, 4}, 62, kFloat32), rnd({2, 3, 5}, 63, kFloat32), true);
  CHECK(e.sizes() == IntArrayRef({2, 0, 5}));
}

TEST_CASE("sdpa flash: errors name the op and the shapes") {
  Tensor q = rnd({2, 3, 4}, 1), k = rnd({2, 5, 4}, 2), v = rnd({2, 5, 3}, 3);
  const char* op = "[scaled_dot_product_attention_flash]";
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention_flash(q, rnd({2, 5, 3}, 4), v), ShapeError, op,
                     "(2, 3, 4)", "(2, 5, 3)");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention_flash(q, k, rnd({2, 4, 3}, 5)), ShapeError, op,
                     "(2, 5, 4)", "(2, 4, 3)");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention_flash(q, rnd({1, 5, 4}, 6), rnd({1, 5, 3}, 7)),
                     ShapeError, op, "broadcasting", "(1, 5, 4)");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention_flash(rnd({4}, 8), k, v), ShapeError, op,
                     "(4");
  EMBER_CHECK_THROWS(
      F::scaled_dot_product_attention_flash(q.to(kFloat16), k.to(kFloat16), v.to(kFloat16)),
      DTypeError, op, "float16");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention_flash(q.to(kFloat32), k, v), DTypeError, op,
                     "float32", "float64");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention_flash(Tensor(), k, v), ValueError, op);
}
