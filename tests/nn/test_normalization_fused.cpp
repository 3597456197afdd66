// The fused layer_norm and batch_norm kernels (src/core/cpu/normalization.cpp) behind
// nn::functional::layer_norm / batch_norm, against their composites layer_norm_reference /
// batch_norm_reference: forward, every gradient and the running statistics, float32 and float64
// (and float16/bfloat16 inputs computed in float32, bitwise the float32 kernel's),
// odd sizes, with and without affine parameters, non-contiguous inputs, rows with a large mean,
// 1 vs 2 threads bitwise, gradcheck + gradgradcheck (double backward through the composite), and
// the error messages.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "ember/nn.hpp"
#include "ember/nn/functional/normalization.hpp"
#include "gradcheck.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using test::bitwise_equal;
using test::grad_input;
using test::values;

namespace {

Tensor rnd(const std::vector<int64_t>& sizes, uint64_t seed, DType dt = kFloat64,
           double amp = 1.0, double offset = 0.0) {
  Generator g(seed);
  Tensor t = empty(sizes, kFloat64);
  uniform_(t, offset - amp, offset + amp, g);
  return t.to(dt);
}

using test::rel_err;
using test::message_of;
using test::node_name;

/// Calls a normalization on (x, weight, bias), each possibly undefined.
using Norm = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>;

const char* const kNames[] = {"y", "dx", "dweight", "dbias"};

/// y and the gradients (dx, dweight, dbias; undefined without the parameter) of fn for the output
/// gradient dy. x keeps its strides.
std::vector<Tensor> run(const Norm& fn, const Tensor& x, const Tensor& w, const Tensor& b,
                        const Tensor& dy) {
  Tensor xl = x.detach().requires_grad_();
  Tensor wl = w.defined() ? w.detach().requires_grad_() : Tensor();
  Tensor bl = b.defined() ? b.detach().requires_grad_() : Tensor();
  Tensor y = fn(xl, wl, bl);
  std::vector<Tensor> wrt{xl};
  if (wl.defined()) wrt.push_back(wl);
  if (bl.defined()) wrt.push_back(bl);
  std::vector<Tensor> g = autograd::grad({y}, wrt, {dy});
  std::vector<Tensor> out{y.detach(), g[0], Tensor(), Tensor()};
  size_t k = 1;
  if (wl.defined()) out[2] = g[k++];
  if (bl.defined()) out[3] = g[k++];
  return out;
}

Norm ln(std::vector<int64_t> shape, double eps = 1e-5) {
  return [=](const Tensor& x, const Tensor& w, const Tensor& b) {
    return F::layer_norm(x, shape, w, b, eps);
  };
}
Norm ln_ref(std::vector<int64_t> shape, double eps = 1e-5) {
  return [=](const Tensor& x, const Tensor& w, const Tensor& b) {
    return F::layer_norm_reference(x, shape, w, b, eps);
  };
}
Norm bn(Tensor rm = {}, Tensor rv = {}, double momentum = 0.1, double eps = 1e-5) {
  return [=](const Tensor& x, const Tensor& w, const Tensor& b) {
    return F::batch_norm(x, rm, rv, w, b, /*training=*/true, momentum, eps);
  };
}
Norm bn_ref(Tensor rm = {}, Tensor rv = {}, double momentum = 0.1, double eps = 1e-5) {
  return [=](const Tensor& x, const Tensor& w, const Tensor& b) {
    return F::batch_norm_reference(x, rm, rv, w, b, /*training=*/true, momentum, eps);
  };
}

double tol(DType dt) { return dt == kFloat64 ? 1e-11 : 2e-5; }

void check_close(const std::vector<Tensor>& got, const std::vector<Tensor>& want, double t) {
  for (size_t i = 0; i < 4; ++i) {
    INFO(kNames[i]);
    CHECK(got[i].defined() == want[i].defined());
    if (got[i].defined() && want[i].defined()) {
      CHECK(got[i].dtype() == want[i].dtype());
      CHECK(rel_err(got[i], want[i]) <= t);
    }
  }
}

/// fused on a 16-bit x against twin (the same op, with its own buffers) on x.to(float32), its
/// results rounded to x's dtype: y and dx of x's dtype, every result bitwise the same. Returns
/// fused's results.
std::vector<Tensor> check_via_float32(const Norm& fused, const Norm& twin, const Tensor& x,
                                      const Tensor& w, const Tensor& b, const Tensor& dy) {
  const DType dt = x.dtype();
  std::vector<Tensor> got = run(fused, x, w, b, dy);
  const Norm via_float32 = [&](const Tensor& xl, const Tensor& wl, const Tensor& bl) {
    return twin(xl.to(kFloat32), wl, bl).to(dt);
  };
  std::vector<Tensor> want = run(via_float32, x, w, b, dy);
  CHECK(got[0].dtype() == dt);
  CHECK(got[1].dtype() == dt);
  for (size_t i = 0; i < 4; ++i) {
    INFO(kNames[i]);
    REQUIRE(got[i].defined() == want[i].defined());
    if (got[i].defined()) CHECK(bitwise_equal(got[i], want[i]));
  }
  return got;
}

}  // namespace

// ---- layer_norm ----

TEST_CASE("layer_norm fused: matches the composite, forward and gradients") {
  for (DType dt : {kFloat32, kFloat64}) {
    for (int64_t N : {1, 3, 37, 769}) {
      for (int64_t M : {1, 5, 130}) {
        for (bool affine : {false, true}) {
          INFO(dt << " rows " << M << " of " << N << " affine " << affine);
          const uint64_t seed = static_cast<uint64_t>(N * 1000 + M);
          Tensor x = rnd({M, N}, seed, dt, 2.0, 0.5);
          Tensor w = affine ? rnd({N}, seed + 1, dt, 1.0, 1.0) : Tensor();
          Tensor b = affine ? rnd({N}, seed + 2, dt) : Tensor();
          Tensor dy = rnd({M, N}, seed + 3, dt);
          std::vector<Tensor> got = run(ln({N}), x, w, b, dy);
          check_close(got, run(ln_ref({N}), x, w, b, dy), tol(dt));
        }
      }
    }
  }
}

TEST_CASE("layer_norm fused: several normalized dims, leading batch dims, weight or bias alone") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    Tensor x = rnd({2, 3, 5, 7}, 11, dt), dy = rnd({2, 3, 5, 7}, 12, dt);
    Tensor w = rnd({5, 7}, 13, dt, 1.0, 1.0), b = rnd({5, 7}, 14, dt);
    check_close(run(ln({5, 7}), x, w, b, dy), run(ln_ref({5, 7}), x, w, b, dy), tol(dt));
    check_close(run(ln({5, 7}), x, w, {}, dy), run(ln_ref({5, 7}), x, w, {}, dy), tol(dt));
    check_close(run(ln({5, 7}), x, {}, b, dy), run(ln_ref({5, 7}), x, {}, b, dy), tol(dt));
    check_close(run(ln({3, 5, 7}, 1e-3), x, {}, {}, dy), run(ln_ref({3, 5, 7}, 1e-3), x, {}, {}, dy),
                tol(dt));
    // The fused op records one node.
    Tensor xl = x.detach().requires_grad_();
    CHECK(node_name(F::layer_norm(xl, {5, 7})) == "layer_norm");
  }
}

TEST_CASE("layer_norm fused: non-contiguous inputs give bitwise the contiguous results") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    Tensor x = rnd({37, 45}, 21, dt), dy = rnd({37, 45}, 22, dt);
    Tensor w = rnd({45}, 23, dt, 1.0, 1.0), b = rnd({45}, 24, dt);
    std::vector<Tensor> dense = run(ln({45}), x, w, b, dy);
    std::vector<Tensor> strided = run(ln({45}), test::non_contiguous(x), test::non_contiguous(w),
                                      test::non_contiguous(b), test::non_contiguous(dy));
    // A transposed view of the same values.
    Tensor xt = x.t().contiguous().t();
    REQUIRE_FALSE(xt.is_contiguous());
    std::vector<Tensor> transposed = run(ln({45}), xt, w, b, dy.t().contiguous().t());
    for (size_t i = 0; i < 4; ++i) {
      INFO(kNames[i]);
      CHECK(bitwise_equal(strided[i], dense[i]));
      CHECK(bitwise_equal(transposed[i], dense[i]));
    }
  }
}

TEST_CASE("layer_norm fused: rows with a large mean keep their precision") {
  // 1e4 + noise: a one-pass E[x^2] - E[x]^2 in float32 would lose every digit of the variance.
  Tensor x = rnd({64, 257}, 31, kFloat32, 1.0, 1e4), dy = rnd({64, 257}, 32, kFloat32);
  Tensor w = rnd({257}, 33, kFloat32, 1.0, 1.0), b = rnd({257}, 34, kFloat32);
  std::vector<Tensor> got = run(ln({257}), x, w, b, dy);
  std::vector<Tensor> ref = run(ln_ref({257}), x, w, b, dy);
  CHECK(rel_err(got[0], ref[0]) <= 2e-5);
  CHECK(rel_err(got[2], ref[2]) <= 2e-5);
  CHECK(rel_err(got[3], ref[3]) <= 2e-5);
  // dx takes the rounded mean's offset (below) through two different formulas: both are within
  // 1e-4 of float64, and within 5e-5 of each other.
  CHECK(rel_err(got[1], ref[1]) <= 5e-5);
  // Against float64 on the same values: float32 rounds the mean (half an ulp of 1e4, 5e-4), which
  // bounds what any float32 result can reach.
  std::vector<Tensor> exact = run(ln({257}), x.to(kFloat64), w.to(kFloat64), b.to(kFloat64),
                                  dy.to(kFloat64));
  CHECK(rel_err(got[0], exact[0]) <= 2e-3);
  CHECK(rel_err(got[1], exact[1]) <= 2e-4);
  CHECK(rel_err(got[2], exact[2]) <= 2e-3);
  CHECK(rel_err(got[3], exact[3]) <= 1e-5);

  // float64 with a mean of 1e8 agrees with the composite to float64 rounding.
  Tensor xd = rnd({16, 129}, 35, kFloat64, 1.0, 1e8), dyd = rnd({16, 129}, 36, kFloat64);
  check_close(run(ln({129}), xd, {}, {}, dyd), run(ln_ref({129}), xd, {}, {}, dyd), 1e-7);
}

TEST_CASE("layer_norm fused: 1 and 2 threads give bitwise the same output and gradients") {
  const int threads = get_num_threads();
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    // 300 rows of 769: several chunks of rows for the weight gradient, two column blocks.
    Tensor x = rnd({300, 769}, 41, dt), dy = rnd({300, 769}, 42, dt);
    Tensor w = rnd({769}, 43, dt, 1.0, 1.0), b = rnd({769}, 44, dt);
    set_num_threads(1);
    std::vector<Tensor> one = run(ln({769}), x, w, b, dy);
    set_num_threads(2);
    std::vector<Tensor> two = run(ln({769}), x, w, b, dy);
    set_num_threads(threads);
    for (size_t i = 0; i < 4; ++i) {
      INFO(kNames[i]);
      CHECK(bitwise_equal(one[i], two[i]));
    }
    // A different input does change the result (the comparison can fail).
    std::vector<Tensor> other = run(ln({769}), x, w, b, dy * 2.0);
    CHECK_FALSE(bitwise_equal(one[2], other[2]));
  }
}

TEST_CASE("layer_norm fused: gradcheck and gradgradcheck (double backward via the composite)") {
  auto f = [](const std::vector<Tensor>& in) { return F::layer_norm(in[0], {4}, in[1], in[2]); };
  CHECK(test::gradcheck(f, {grad_input({3, 4}), grad_input({4}, 0.5, 1.5), grad_input({4})}));
  CHECK(test::gradgradcheck(f, {grad_input({3, 4}), grad_input({4}, 0.5, 1.5), grad_input({4})}));
  auto g = [](const std::vector<Tensor>& in) { return F::layer_norm(in[0], {2, 3}, {}, {}, 1e-3); };
  CHECK(test::gradcheck(g, {grad_input({2, 2, 3})}));
  CHECK(test::gradgradcheck(g, {grad_input({2, 2, 3})}));
  // The double-backward gradient equals the composite's.
  Tensor x = grad_input({3, 5}), w = grad_input({5}, 0.5, 1.5), dy = rnd({3, 5}, 51);
  auto second = [&](const Norm& fn) {
    Tensor y = fn(x, w, {});
    Tensor gx = autograd::grad({y}, {x}, {dy}, std::nullopt, /*create_graph=*/true)[0];
    return autograd::grad({(gx * gx).sum()}, {x, w});
  };
  std::vector<Tensor> fused = second(ln({5})), ref = second(ln_ref({5}));
  CHECK(rel_err(fused[0], ref[0]) <= 1e-12);
  CHECK(rel_err(fused[1], ref[1]) <= 1e-12);
}

// ---- batch_norm ----

TEST_CASE("layer_norm fused: float16 and bfloat16 inputs computed in float32") {
  // A 16-bit input (a model kept in bfloat16) with float32 or 16-bit parameters: one fused node,
  // bitwise the float32 kernel on x.to(float32) with y and dx rounded once to x's dtype (the
  // parameters' gradients in their own dtype); close to the float32 composite. Rows of 7 and 768
  // (several kWide blocks), with a large mean.
  for (DType dt : {kFloat16, kBFloat16}) {
    for (int64_t N : {7, 768}) {
      for (DType pt : {kFloat32, dt}) {
        for (bool affine : {false, true}) {
          if (!affine && pt != kFloat32) continue;
          INFO(dt << " rows of " << N << " parameters " << pt << " affine " << affine);
          const uint64_t seed = static_cast<uint64_t>(N * 10 + affine);
          Tensor x = rnd({5, 3, N}, seed, dt, 2.0, N == 7 ? 30.0 : -0.5);
          Tensor dy = rnd({5, 3, N}, seed + 1, dt);
          Tensor w = affine ? rnd({N}, seed + 2, pt, 1.0, 1.0) : Tensor();
          Tensor b = affine ? rnd({N}, seed + 3, pt) : Tensor();
          const std::vector<Tensor> got = check_via_float32(ln({N}), ln({N}), x, w, b, dy);
          Tensor xl = x.detach().requires_grad_();
          Tensor y = F::layer_norm(xl, {N}, w, b);
          REQUIRE(node_name(y) == "layer_norm");
          CHECK(y.grad_fn()->input_meta[0].dtype == dt);  // no float32 copy before the node
          // Against the float32 composite on the same values: y and dx within 16-bit rounding.
          std::vector<Tensor> ref = run(
              [&](const Tensor& xr, const Tensor& wr, const Tensor& br) {
                return F::layer_norm_reference(xr.to(kFloat32), {N}, wr, br);
              },
              x, w, b, dy.to(kFloat32));
          CHECK(rel_err(got[0].to(kFloat32), ref[0]) <= 1e-2);
          CHECK(rel_err(got[1].to(kFloat32), ref[1]) <= 1e-2);
        }
      }
    }
  }
}

TEST_CASE("batch_norm fused: matches the composite, forward, gradients and running stats") {
  const std::vector<std::vector<int64_t>> shapes = {
      {5, 3}, {2, 1}, {7, 4, 9}, {3, 5, 7, 9}, {2, 3, 1, 1}, {1, 6, 13}, {4, 2, 3, 5, 3}};
  for (DType dt : {kFloat32, kFloat64}) {
    for (const std::vector<int64_t>& shape : shapes) {
      for (bool affine : {false, true}) {
        for (bool running : {false, true}) {
          INFO(dt << " shape " << IntArrayRef(shape) << " affine " << affine << " running "
                  << running);
          const int64_t C = shape[1];
          const uint64_t seed = static_cast<uint64_t>(shape.size() * 100 + C);
          Tensor x = rnd(shape, seed, dt, 2.0, -0.5), dy = rnd(shape, seed + 1, dt);
          Tensor w = affine ? rnd({C}, seed + 2, dt, 1.0, 1.0) : Tensor();
          Tensor b = affine ? rnd({C}, seed + 3, dt) : Tensor();
          Tensor rm1, rv1, rm2, rv2;
          if (running) {
            rm1 = rnd({C}, seed + 4, dt), rv1 = rnd({C}, seed + 5, dt, 0.5, 1.0);
            rm2 = rm1.clone(), rv2 = rv1.clone();
          }
          std::vector<Tensor> got = run(bn(rm1, rv1, 0.3), x, w, b, dy);
          check_close(got, run(bn_ref(rm2, rv2, 0.3), x, w, b, dy), tol(dt));
          if (running) {
            const double t = dt == kFloat64 ? 1e-14 : 1e-6;
            CHECK(rel_err(rm1, rm2) <= t);
            CHECK(rel_err(rv1, rv2) <= t);
            CHECK_FALSE(rm1.requires_grad());
          }
        }
      }
    }
  }
}

TEST_CASE("batch_norm fused: parameters and buffers of another dtype, non-contiguous input") {
  // float32 weight, bias and buffers with a float64 input: converted as the composite does.
  Tensor x = rnd({6, 4, 5}, 61), dy = rnd({6, 4, 5}, 62);
  Tensor w = rnd({4}, 63, kFloat32, 1.0, 1.0), b = rnd({4}, 64, kFloat32);
  Tensor rm1 = zeros({4}), rv1 = ones({4}), rm2 = zeros({4}), rv2 = ones({4});
  std::vector<Tensor> got = run(bn(rm1, rv1), x, w, b, dy);
  check_close(got, run(bn_ref(rm2, rv2), x, w, b, dy), 1e-11);
  CHECK(rm1.dtype() == kFloat32);
  CHECK(bitwise_equal(rm1, rm2));
  CHECK(bitwise_equal(rv1, rv2));
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    Tensor xc = rnd({5, 3, 4, 7}, 65, dt), dyc = rnd({5, 3, 4, 7}, 66, dt);
    Tensor wc = rnd({3}, 67, dt, 1.0, 1.0), bc = rnd({3}, 68, dt);
    std::vector<Tensor> dense = run(bn(), xc, wc, bc, dyc);
    std::vector<Tensor> strided = run(bn(), test::non_contiguous(xc), wc, bc, dyc);
    // Channels last: the same values in another memory order.
    Tensor cl = xc.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
    std::vector<Tensor> channels_last = run(bn(), cl, wc, bc, dyc);
    for (size_t i = 0; i < 4; ++i) {
      INFO(kNames[i]);
      CHECK(bitwise_equal(strided[i], dense[i]));
      CHECK(bitwise_equal(channels_last[i], dense[i]));
    }
    Tensor xl = xc.detach().requires_grad_();
    CHECK(node_name(F::batch_norm(xl, {}, {}, {}, {}, true)) == "batch_norm");
    // Running statistics the kernel blends (contiguous, of the compute dtype) and strided ones
    // that the composite update blends: the same bits.
    Tensor rm = rnd({3}, 69, dt), rv = rnd({3}, 70, dt, 0.5, 1.0);
    Tensor rm_wide = zeros({6}, dt), rv_wide = zeros({6}, dt);
    Tensor rm_strided = rm_wide.slice(0, 0, 6, 2), rv_strided = rv_wide.slice(0, 0, 6, 2);
    rm_strided.copy_(rm);
    rv_strided.copy_(rv);
    run(bn(rm, rv, 0.3), xc, wc, bc, dyc);
    run(bn(rm_strided, rv_strided, 0.3), xc, wc, bc, dyc);
    CHECK(bitwise_equal(rm, rm_strided.contiguous()));
    CHECK(bitwise_equal(rv, rv_strided.contiguous()));
  }
}

TEST_CASE("batch_norm fused: channels with a large mean keep their precision") {
  Tensor x = rnd({16, 3, 9, 9}, 71, kFloat32, 1.0, 1e4), dy = rnd({16, 3, 9, 9}, 72, kFloat32);
  Tensor w = rnd({3}, 73, kFloat32, 1.0, 1.0), b = rnd({3}, 74, kFloat32);
  Tensor rm1 = zeros({3}), rv1 = ones({3}), rm2 = zeros({3}), rv2 = ones({3});
  std::vector<Tensor> got = run(bn(rm1, rv1), x, w, b, dy);
  check_close(got, run(bn_ref(rm2, rv2), x, w, b, dy), 2e-5);
  CHECK(rel_err(rm1, rm2) <= 1e-7);
  CHECK(rel_err(rv1, rv2) <= 1e-5);
  std::vector<Tensor> exact = run(bn(), x.to(kFloat64), w.to(kFloat64), b.to(kFloat64),
                                  dy.to(kFloat64));
  CHECK(rel_err(got[0], exact[0]) <= 2e-3);
  // The batch variance of uniform(-1, 1) noise is about 1/3.
  CHECK(values(rv1)[0] == Catch::Detail::Approx(0.9 + 0.1 / 3).epsilon(0.02));
}

TEST_CASE("batch_norm fused: 1 and 2 threads give bitwise the same output, gradients, stats") {
  const int threads = get_num_threads();
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    Tensor x = rnd({8, 40, 13, 11}, 81, dt), dy = rnd({8, 40, 13, 11}, 82, dt);
    Tensor w = rnd({40}, 83, dt, 1.0, 1.0), b = rnd({40}, 84, dt);
    Tensor rm1 = zeros({40}, dt), rv1 = ones({40}, dt), rm2 = zeros({40}, dt),
           rv2 = ones({40}, dt);
    set_num_threads(1);
    std::vector<Tensor> one = run(bn(rm1, rv1), x, w, b, dy);
    set_num_threads(2);
    std::vector<Tensor> two = run(bn(rm2, rv2), x, w, b, dy);
    set_num_threads(threads);
    for (size_t i = 0; i < 4; ++i) {
      INFO(kNames[i]);
      CHECK(bitwise_equal(one[i], two[i]));
    }
    CHECK(bitwise_equal(rm1, rm2));
    CHECK(bitwise_equal(rv1, rv2));
  }
}

TEST_CASE("batch_norm fused: gradcheck and gradgradcheck (double backward via the composite)") {
  auto f = [](const std::vector<Tensor>& in) {
    return F::batch_norm(in[0], {}, {}, in[1], in[2], /*training=*/true);
  };
  CHECK(test::gradcheck(f, {grad_input({4, 3}), grad_input({3}, 0.5, 1.5), grad_input({3})}));
  CHECK(test::gradgradcheck(f, {grad_input({4, 3}), grad_input({3}, 0.5, 1.5), grad_input({3})}));
  auto g = [](const std::vector<Tensor>& in) {
    return F::batch_norm(in[0], {}, {}, {}, {}, /*training=*/true, 0.1, 1e-3);
  };
  CHECK(test::gradcheck(g, {grad_input({3, 2, 5})}));
  CHECK(test::gradgradcheck(g, {grad_input({3, 2, 5})}));
}

// ---- dispatch and errors ----

TEST_CASE("batch_norm fused: float16 and bfloat16 inputs computed in float32") {
  // A 16-bit input (a convolution's output under autocast) with float32 parameters and buffers:
  // one fused node, bitwise the float32 kernel on x.to(float32) with y and dx rounded once to
  // x's dtype, the running statistics bitwise too; close to the float32 composite.
  const std::vector<std::vector<int64_t>> shapes = {{6, 3}, {5, 4, 7}, {3, 5, 6, 7}};
  for (DType dt : {kFloat16, kBFloat16}) {
    for (const std::vector<int64_t>& shape : shapes) {
      for (bool affine : {false, true}) {
        INFO(dt << " shape " << IntArrayRef(shape) << " affine " << affine);
        const int64_t C = shape[1];
        const uint64_t seed = static_cast<uint64_t>(shape.size() * 1000 + C);
        Tensor x = rnd(shape, seed, dt, 2.0, -0.5), dy = rnd(shape, seed + 1, dt);
        Tensor w = affine ? rnd({C}, seed + 2, kFloat32, 1.0, 1.0) : Tensor();
        Tensor b = affine ? rnd({C}, seed + 3, kFloat32) : Tensor();
        Tensor rm1 = rnd({C}, seed + 4, kFloat32), rv1 = rnd({C}, seed + 5, kFloat32, 0.5, 1.0);
        Tensor rm2 = rm1.clone(), rv2 = rv1.clone();
        const std::vector<Tensor> got =
            check_via_float32(bn(rm1, rv1, 0.3), bn(rm2, rv2, 0.3), x, w, b, dy);
        CHECK(bitwise_equal(rm1, rm2));
        CHECK(bitwise_equal(rv1, rv2));
        Tensor xl = x.detach().requires_grad_();
        Tensor y = F::batch_norm(xl, {}, {}, w, b, true);
        REQUIRE(node_name(y) == "batch_norm");
        CHECK(y.grad_fn()->input_meta[0].dtype == dt);  // no float32 copy before the node
        // Against the float32 composite on the same values: y and dx within 16-bit rounding.
        std::vector<Tensor> ref = run(
            [](const Tensor& xr, const Tensor& wr, const Tensor& br) {
              return F::batch_norm_reference(xr.to(kFloat32), {}, {}, wr, br, true);
            },
            x, w, b, dy.to(kFloat32));
        CHECK(rel_err(got[0].to(kFloat32), ref[0]) <= 1e-2);
        CHECK(rel_err(got[1].to(kFloat32), ref[1]) <= 1e-2);
      }
    }
  }
}

TEST_CASE("batch_norm eval: one fused pass without gradients, bitwise the composite") {
  // Inference: ((x - running_mean) rsqrt(running_var + eps)) weight + bias by one kernel with
  // the composite's roundings, for every floating dtype (16-bit x in float32), with and without
  // the affine parameters; and with a gradient wanted, the composite itself.
  const std::vector<std::vector<int64_t>> shapes = {{6, 3}, {5, 4, 7}, {3, 5, 6, 7}};
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    const DType pt = dt == kFloat64 ? kFloat64 : kFloat32;  // parameters and buffers
    for (const std::vector<int64_t>& shape : shapes) {
      for (bool affine : {false, true}) {
        INFO(dt << " shape " << IntArrayRef(shape) << " affine " << affine);
        const int64_t C = shape[1];
        const uint64_t seed = static_cast<uint64_t>(shape.size() * 100 + C + 7);
        const Tensor x = rnd(shape, seed, dt, 2.0, -0.5);
        const Tensor rm = rnd({C}, seed + 1, pt), rv = rnd({C}, seed + 2, pt, 0.5, 1.0);
        const Tensor w = affine ? rnd({C}, seed + 3, pt, 1.0, 1.0) : Tensor();
        const Tensor b = affine ? rnd({C}, seed + 4, pt) : Tensor();
        const Tensor want = F::batch_norm_reference(x, rm, rv, w, b, false, 0.1, 1e-5);
        Tensor got;
        {
          NoGradGuard no_grad;
          got = F::batch_norm(x, rm, rv, w, b, false, 0.1, 1e-5);
        }
        CHECK(got.dtype() == dt);
        CHECK(bitwise_equal(got, want));
        // A non-contiguous input: the same bits.
        CHECK(bitwise_equal(F::batch_norm(test::non_contiguous(x), rm, rv, w, b, false), want));
        // x wanting a gradient: one node, the same bits.
        Tensor xl = x.detach().requires_grad_();
        const Tensor y = F::batch_norm(xl, rm, rv, w, b, false);
        CHECK(bitwise_equal(y.detach(), want));
        CHECK(node_name(y) == "batch_norm");
      }
    }
  }
}

TEST_CASE("batch_norm eval with gradients: one node, dx bitwise the composite's") {
  // Input gradients of a model in eval mode, or affine parameters trained over frozen
  // statistics: dx = (dy weight) r by the eval kernel, bitwise the composite's; dweight and dbias
  // from the fused per-channel sums, to rounding; every subset of gradients; 16-bit x; the
  // running statistics untouched; double backward through the composite.
  const std::vector<std::vector<int64_t>> shapes = {{6, 3}, {5, 4, 7}, {3, 5, 6, 7}};
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    const DType pt = dt == kFloat64 ? kFloat64 : kFloat32;
    for (const std::vector<int64_t>& shape : shapes)
      for (bool affine : {false, true}) {
        INFO(dt << " shape " << IntArrayRef(shape) << " affine " << affine);
        const int64_t C = shape[1];
        const uint64_t seed = static_cast<uint64_t>(shape.size() * 10 + C + 300);
        const Tensor x = rnd(shape, seed, dt, 2.0, -0.5), dy = rnd(shape, seed + 5, dt);
        const Tensor rm = rnd({C}, seed + 1, pt), rv = rnd({C}, seed + 2, pt, 0.5, 1.0);
        const Tensor w = affine ? rnd({C}, seed + 3, pt, 1.0, 1.0) : Tensor();
        const Tensor b = affine ? rnd({C}, seed + 4, pt) : Tensor();
        const Tensor rm0 = rm.clone(), rv0 = rv.clone();
        const Norm fused = [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
          return F::batch_norm(xi, rm, rv, wi, bi, false, 0.1, 1e-5);
        };
        const Norm ref = [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
          return F::batch_norm_reference(xi, rm, rv, wi, bi, false, 0.1, 1e-5);
        };
        const std::vector<Tensor> got = run(fused, x, w, b, dy), want = run(ref, x, w, b, dy);
        CHECK(bitwise_equal(got[0], want[0]));
        CHECK(bitwise_equal(got[1], want[1]));
        const double tol = dt == kFloat64 ? 1e-12 : 1e-5;
        for (int i = 2; i < 4; ++i)
          if (want[i].defined()) {
            INFO(kNames[i]);
            CHECK(rel_err(got[i], want[i]) < tol);
          }
        CHECK(bitwise_equal(rm, rm0));
        CHECK(bitwise_equal(rv, rv0));
        // Only the parameters want gradients (x does not): no dx computed, the same sums.
        if (affine) {
          Tensor wl = w.detach().requires_grad_(), bl = b.detach().requires_grad_();
          const Tensor y = F::batch_norm(x, rm, rv, wl, bl, false, 0.1, 1e-5);
          CHECK(node_name(y) == "batch_norm");
          const std::vector<Tensor> g = autograd::grad({y}, {wl, bl}, {dy});
          CHECK(bitwise_equal(g[0], got[2]));
          CHECK(bitwise_equal(g[1], got[3]));
        }
      }
  }
  // A channels-last input keeps its layout and its gradient's values.
  const Tensor x = rnd({2, 3, 4, 5}, 401, kFloat32), dy = rnd({2, 3, 4, 5}, 402, kFloat32);
  const Tensor rm = rnd({3}, 403, kFloat32), rv = rnd({3}, 404, kFloat32, 0.5, 1.0);
  const Tensor w = rnd({3}, 405, kFloat32, 1.0, 1.0), b = rnd({3}, 406, kFloat32);
  Tensor xl = x.contiguous(MemoryFormat::ChannelsLast).detach().requires_grad_();
  Tensor y = F::batch_norm(xl, rm, rv, w, b, false);
  CHECK(y.is_contiguous(MemoryFormat::ChannelsLast));
  const Tensor dx = autograd::grad({y}, {xl}, {dy})[0];
  const Norm ref = [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
    return F::batch_norm_reference(xi, rm, rv, wi, bi, false, 0.1, 1e-5);
  };
  CHECK(bitwise_equal(dx.contiguous(), run(ref, x, w, b, dy)[1]));
  // gradcheck and gradgradcheck in float64 (the composite under create_graph).
  const Tensor rm64 = rnd({3}, 407), rv64 = rnd({3}, 408, kFloat64, 0.5, 1.0);
  const auto f = [&](const std::vector<Tensor>& in) {
    return F::batch_norm(in[0], rm64, rv64, in[1], in[2], false, 0.1, 1e-3);
  };
  const std::vector<Tensor> in{grad_input({2, 3, 4}, -1.0, 1.0, 1), grad_input({3}, 0.5, 1.5, 2),
                               grad_input({3}, -1.0, 1.0, 3)};
  CHECK(node_name(f(in)) == "batch_norm");
  CHECK(test::gradcheck(f, in));
  CHECK(test::gradgradcheck(f, in));
}

TEST_CASE("normalization fused: other cases run the composite unchanged") {
  // Eval-mode batch_norm: bitwise the reference.
  Tensor x = rnd({4, 3, 5}, 91, kFloat32), rm = rnd({3}, 92, kFloat32);
  Tensor rv = rnd({3}, 93, kFloat32, 0.5, 1.0);
  CHECK(bitwise_equal(F::batch_norm(x, rm, rv), F::batch_norm_reference(x, rm, rv)));
}

TEST_CASE("normalization fused: error messages are the composite's") {
  Tensor x = rnd({2, 3}, 95, kFloat32);
  using Call = std::function<void(bool)>;  // the argument: fused (public) or reference
  auto lnf = [](bool pub) {
    return pub ? Norm(ln({4})) : Norm(ln_ref({4}));
  };
  const std::vector<std::pair<std::string, Call>> calls = {
      {"layer_norm shape", [&](bool p) { lnf(p)(x, {}, {}); }},
      {"layer_norm weight",
       [&](bool p) {
         p ? (void)F::layer_norm(x, {3}, ones({2})) : (void)F::layer_norm_reference(x, {3}, ones({2}));
       }},
      {"batch_norm weight",
       [&](bool p) {
         p ? (void)F::batch_norm(x, {}, {}, ones({4}), {}, true)
           : (void)F::batch_norm_reference(x, {}, {}, ones({4}), {}, true);
       }},
      {"batch_norm running",
       [&](bool p) {
         p ? (void)F::batch_norm(x, zeros({3}), {}, {}, {}, true)
           : (void)F::batch_norm_reference(x, zeros({3}), {}, {}, {}, true);
       }},
      {"batch_norm one value",
       [&](bool p) {
         p ? (void)F::batch_norm(x.slice(0, 0, 1), {}, {}, {}, {}, true)
           : (void)F::batch_norm_reference(x.slice(0, 0, 1), {}, {}, {}, {}, true);
       }},
  };
  for (const auto& entry : calls) {
    const auto& call = entry.second;  // a named variable: clang 14 cannot capture a binding
    INFO(entry.first);
    const std::string pub = message_of([&] { call(true); });
    const std::string ref = message_of([&] { call(false); });
    CHECK_FALSE(pub.empty());
    CHECK(pub == ref);
  }
  EMBER_CHECK_THROWS(F::layer_norm(x, {4}), ShapeError, "[layer_norm]", "(4,)", "(2, 3)");
  EMBER_CHECK_THROWS(F::batch_norm(x, zeros({3}), {}, {}, {}, true), ValueError, "[batch_norm]",
                     "both be defined");
}

TEST_CASE("batch_norm_relu: on the CPU relu(batch_norm(x) + residual) by the ops, bitwise") {
  // The CPU runs the three ops (the fused node is CUDA's: tests/cuda/test_cuda_normalization.cpp),
  // so values, gradients and running statistics are theirs bit for bit; BatchNorm2d's
  // forward_relu keeps its statistics as forward does.
  for (bool with_residual : {false, true}) {
    INFO("residual " << with_residual);
    const Tensor x = rnd({3, 4, 5, 6}, 101, kFloat32, 2.0, 0.3),
                 dz = rnd({3, 4, 5, 6}, 102, kFloat32);
    const Tensor r = with_residual ? rnd({3, 4, 5, 6}, 103, kFloat32) : Tensor();
    const Tensor w = rnd({4}, 104, kFloat32, 1.0, 1.0), b = rnd({4}, 105, kFloat32);
    std::vector<std::vector<Tensor>> runs;
    for (bool fused : {true, false}) {
      Tensor m = zeros({4}), v = ones({4});
      Tensor xl = x.clone().requires_grad_(), rl = r.defined() ? r.clone().requires_grad_() : r;
      Tensor z;
      if (fused) {
        z = F::batch_norm_relu(xl, m, v, w, b, true, 0.1, 1e-5, rl);
      } else {
        const Tensor y = F::batch_norm(xl, m, v, w, b, true);
        z = relu(rl.defined() ? y + rl : y);
      }
      if (fused) CHECK(node_name(z) == "relu");
      std::vector<Tensor> wrt{xl};
      if (rl.defined()) wrt.push_back(rl);
      std::vector<Tensor> out = autograd::grad({z}, wrt, {dz});
      out.push_back(z.detach());
      out.push_back(m);
      out.push_back(v);
      runs.push_back(out);
    }
    for (size_t i = 0; i < runs[0].size(); ++i) CHECK(bitwise_equal(runs[0][i], runs[1][i]));
  }
  nn::BatchNorm2d a(4), b(4);
  const Tensor x = rnd({3, 4, 5, 6}, 106, kFloat32), r = rnd({3, 4, 5, 6}, 107, kFloat32);
  for (int step = 0; step < 2; ++step) CHECK(bitwise_equal(a->forward_relu(x, r), relu(b(x) + r)));
  CHECK(bitwise_equal(a->running_mean, b->running_mean));
  CHECK(bitwise_equal(a->running_var, b->running_var));
  CHECK(a->num_batches_tracked.item<int64_t>() == 2);
  a->eval();
  b->eval();
  CHECK(bitwise_equal(a->forward_relu(x), relu(b(x))));
  EMBER_CHECK_THROWS(F::batch_norm_relu(x, {}, {}, {}, {}, true, 0.1, 1e-5, r.slice(1, 0, 3)),
                     ShapeError, "[batch_norm_relu]", "(3, 4, 5, 6)", "(3, 3, 5, 6)");
  EMBER_CHECK_THROWS(a->forward_relu(x.slice(1, 0, 3)), ShapeError, "expected 4 channels");
}

TEST_CASE("batch_norm_relu eval without gradients: one pass, bitwise the ops") {
  // Inference: relu(batch_norm(x) + residual) by batch_norm's eval kernel with the add and the
  // ReLU folded in, each rounded as its op rounds: every floating dtype, with and without the
  // residual and the affine parameters, a residual that cancels y exactly (-0 and 0 pass as relu
  // passes them), NaN, channels-last input; no node, and the running statistics untouched.
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    const DType pt = dt == kFloat64 ? kFloat64 : kFloat32;
    for (bool with_residual : {false, true})
      for (bool affine : {false, true}) {
        INFO(dt << " residual " << with_residual << " affine " << affine);
        Tensor x = rnd({3, 4, 5, 6}, 111, dt, 2.0, 0.3);
        const Tensor m = rnd({4}, 112, pt), v = rnd({4}, 113, pt, 0.5, 1.0);
        const Tensor m0 = m.clone(), v0 = v.clone();
        const Tensor w = affine ? rnd({4}, 114, pt, 1.0, 1.0) : Tensor();
        const Tensor b = affine ? rnd({4}, 115, pt) : Tensor();
        Tensor r;
        if (with_residual) {
          r = rnd({3, 4, 5, 6}, 116, dt);
          // Some values of y + r exactly 0 (r = -y), one NaN.
          const Tensor y = F::batch_norm(x, m, v, w, b, false);
          r.view({-1}).narrow(0, 0, 7).copy_(-y.view({-1}).narrow(0, 0, 7));
          r.view({-1}).narrow(0, 9, 1).fill_(std::nan(""));
        }
        NoGradGuard no_grad;
        const Tensor want = [&] {
          const Tensor y = F::batch_norm(x, m, v, w, b, false);
          return relu(r.defined() ? y + r : y);
        }();
        const Tensor z = F::batch_norm_relu(x, m, v, w, b, false, 0.1, 1e-5, r);
        CHECK(z.dtype() == dt);
        CHECK(bitwise_equal(z, want));
        CHECK(bitwise_equal(m, m0));
        CHECK(bitwise_equal(v, v0));
        const Tensor xl = x.contiguous(MemoryFormat::ChannelsLast);
        const Tensor rl = r.defined() ? r.contiguous(MemoryFormat::ChannelsLast) : r;
        const Tensor zl = F::batch_norm_relu(xl, m, v, w, b, false, 0.1, 1e-5, rl);
        CHECK(zl.is_contiguous(MemoryFormat::ChannelsLast));
        CHECK(bitwise_equal(zl.contiguous(), want));
      }
  }
}
