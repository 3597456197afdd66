// The fused layer_norm and batch_norm kernels on CUDA (src/cuda/normalization.cu) against the CPU
// kernels, with the same seeded inputs: forward and every gradient (dx, dweight, dbias) and the
// running statistics, float32 and float64 (and float16/bfloat16 inputs computed in float32),
// rows of 1, 7, 33, 1000 and 4097 elements, 1 to 3
// normalized dims, with and without weight and bias, gradients of only some inputs, (N, C),
// (N, C, L) and (N, C, H, W) batches (column and strip layouts, several partial chunks),
// non-contiguous inputs, results that repeat bitwise, the LayerNorm and BatchNorm2d modules, and
// the same typed errors as the CPU. Without a GPU each case prints "skipped".
#include <catch2/catch.hpp>
#include <limits>
#include <string>
#include <vector>

#include "core/kernels.hpp"
#include "cuda/cuda_test_util.hpp"
#include "ember/ember.hpp"
#include "ember/nn.hpp"
#include "ember/nn/functional/normalization.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using ember::test::bitwise_equal;
using ember::test::gpu;
using ember::test::message_of;
using ember::test::node_name;
using ember::test::rel_err;

namespace {

const Device cu(kCUDA);

Tensor rnd(const std::vector<int64_t>& sizes, uint64_t seed, DType dt, double amp = 1.0,
           double offset = 0.0) {
  Generator g(seed);
  Tensor t = empty(sizes, kFloat64);
  uniform_(t, offset - amp, offset + amp, g);
  return t.to(dt);
}

/// CUDA against CPU: the kernels sum in other orders (both deterministic).
double tol(DType dt) { return dt == kFloat64 ? 1e-11 : 2e-5; }

/// Calls a normalization on (x, weight, bias), each possibly undefined.
using Norm = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>;

/// Which inputs the gradients are taken for.
struct Wrt {
  bool x = true, params = true;
};

/// {y, dx, dweight, dbias} of fn on `device` (undefined where the input is absent or not asked
/// for), all copied back to the CPU. Inputs are moved to `device` with their layout kept.
std::vector<Tensor> run(const Norm& fn, const Tensor& x, const Tensor& w, const Tensor& b,
                        const Tensor& dy, Device device, Wrt wrt = {}) {
  auto leaf = [&](const Tensor& t, bool grad) {
    if (!t.defined()) return Tensor();
    Tensor d = t.to(device).detach();
    return grad ? d.requires_grad_() : d;
  };
  Tensor xl = leaf(x, wrt.x), wl = leaf(w, wrt.params), bl = leaf(b, wrt.params);
  Tensor y = fn(xl, wl, bl);
  std::vector<Tensor> inputs;
  std::vector<int> slot;
  for (int i = 0; i < 3; ++i) {
    const Tensor& t = i == 0 ? xl : i == 1 ? wl : bl;
    if (t.defined() && t.requires_grad()) {
      inputs.push_back(t);
      slot.push_back(i + 1);
    }
  }
  std::vector<Tensor> out{y.detach().cpu(), Tensor(), Tensor(), Tensor()};
  if (inputs.empty()) return out;
  std::vector<Tensor> g = autograd::grad({y}, inputs, {dy.to(device)});
  for (size_t k = 0; k < g.size(); ++k) out[static_cast<size_t>(slot[k])] = g[k].cpu();
  return out;
}

const char* const kNames[] = {"y", "dx", "dweight", "dbias"};

void check_close(const std::vector<Tensor>& got, const std::vector<Tensor>& want, double t) {
  for (size_t i = 0; i < 4; ++i) {
    INFO(kNames[i]);
    REQUIRE(got[i].defined() == want[i].defined());
    if (!got[i].defined()) continue;
    CHECK(got[i].dtype() == want[i].dtype());
    CHECK(got[i].sizes() == want[i].sizes());
    CHECK(rel_err(got[i], want[i]) <= t);
  }
}

void check_bitwise(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  for (size_t i = 0; i < 4; ++i) {
    INFO(kNames[i]);
    REQUIRE(a[i].defined() == b[i].defined());
    if (a[i].defined()) CHECK(bitwise_equal(a[i], b[i]));
  }
}

/// t's values and layout (contiguous or channels-last) at a data pointer one element past a
/// 16-byte boundary, where the normalization kernels take one value per thread.
Tensor misaligned(const Tensor& t) {
  const bool cl = !t.is_contiguous();
  Tensor buf = empty({t.numel() + 1}, TensorOptions(t.dtype()).device(t.device()));
  Tensor flat = buf.slice(0, 1, t.numel() + 1);
  Tensor m = cl ? flat.view({t.size(0), t.size(2), t.size(3), t.size(1)}).permute({0, 3, 1, 2})
                : flat.view(t.sizes());
  NoGradGuard no_grad;
  m.copy_(t);
  return m;
}

Norm ln(std::vector<int64_t> shape, double eps = 1e-5) {
  return [=](const Tensor& x, const Tensor& w, const Tensor& b) {
    return F::layer_norm(x, shape, w, b, eps);
  };
}

Norm bn(Tensor rm = {}, Tensor rv = {}, double momentum = 0.1, double eps = 1e-5) {
  return [=](const Tensor& x, const Tensor& w, const Tensor& b) {
    return F::batch_norm(x, rm, rv, w, b, /*training=*/true, momentum, eps);
  };
}

}  // namespace

// ---- layer_norm ----

TEST_CASE("cuda layer_norm: rows of 1 to 4097 elements, with and without weight and bias") {
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64}) {
    for (int64_t N : {1, 7, 33, 1000, 4097}) {
      for (int64_t M : {1, 5, 67}) {
        for (int affine = 0; affine < 4; ++affine) {  // none, weight, bias, both
          INFO(dt << " rows " << M << " of " << N << " affine " << affine);
          const uint64_t seed = static_cast<uint64_t>(N * 1000 + M * 10 + affine);
          Tensor x = rnd({M, N}, seed, dt, 2.0, 0.5);
          Tensor w = affine & 1 ? rnd({N}, seed + 1, dt, 1.0, 1.0) : Tensor();
          Tensor b = affine & 2 ? rnd({N}, seed + 2, dt) : Tensor();
          Tensor dy = rnd({M, N}, seed + 3, dt);
          check_close(run(ln({N}), x, w, b, dy, cu), run(ln({N}), x, w, b, dy, kCPU), tol(dt));
        }
      }
    }
  }
}

TEST_CASE("cuda layer_norm: rows held by one warp (16-byte chunks), their limits and offsets") {
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64}) {
    // Warp rows: N a multiple of 16 bytes, up to 2048 float32 / 1024 float64 values; 2052 and
    // 1030 are past them, 6 (float32) is not a multiple of 4.
    const std::vector<int64_t> sizes = dt == kFloat32
                                           ? std::vector<int64_t>{4, 6, 128, 768, 2048, 2052}
                                           : std::vector<int64_t>{2, 6, 768, 1024, 1030};
    for (int64_t N : sizes) {
      for (int64_t M : {1, 5, 67}) {
        for (int affine : {0, 3, 1}) {
          INFO(dt << " rows " << M << " of " << N << " affine " << affine);
          const uint64_t seed = static_cast<uint64_t>(N * 1000 + M * 10 + affine + 7);
          Tensor x = rnd({M, N}, seed, dt, 2.0, 0.5);
          Tensor w = affine & 1 ? rnd({N}, seed + 1, dt, 1.0, 1.0) : Tensor();
          Tensor b = affine & 2 ? rnd({N}, seed + 2, dt) : Tensor();
          Tensor dy = rnd({M, N}, seed + 3, dt);
          check_close(run(ln({N}), x, w, b, dy, cu), run(ln({N}), x, w, b, dy, kCPU), tol(dt));
        }
      }
    }
    // x and the weight as contiguous views at an odd element offset (no 16-byte chunks).
    const int64_t M = 9, N = 768;
    Tensor xw = rnd({M * N + 1}, 5, dt, 2.0, 0.5), ww = rnd({N + 1}, 6, dt, 1.0, 1.0);
    Tensor b = rnd({N}, 7, dt), dy = rnd({M, N}, 8, dt);
    Tensor x = xw.narrow(0, 1, M * N).reshape({M, N}), w = ww.narrow(0, 1, N);
    check_close(run(ln({N}), x, w, b, dy, cu), run(ln({N}), x, w, b, dy, kCPU), tol(dt));
    check_close(run(ln({N}), x.contiguous(), w, b, dy, cu), run(ln({N}), x, w, b, dy, kCPU),
                tol(dt));
  }
}

TEST_CASE("cuda layer_norm: weight and bias gradients from 16-byte chunks, bitwise the scalar") {
  // The per-column sums of dweight and dbias read 16 bytes of each row per thread where the
  // rows fall into chunks (N % V == 0, aligned); set_norm_sums_variant(0) takes one value per
  // thread: the same bits. (A misaligned copy would also change the forward's kernel, whose
  // float64 statistics may round otherwise.)
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64, kBFloat16})
    for (const int64_t N : {24, 40, 36}) {
      INFO(dt << " N " << N);
      const DType pt = dt == kFloat64 ? kFloat64 : kFloat32;
      const Tensor x = rnd({37, N}, 700 + static_cast<uint64_t>(N), dt, 2.0, 0.5).to(cu);
      const Tensor dy = rnd({37, N}, 800 + static_cast<uint64_t>(N), dt).to(cu);
      const Tensor w = rnd({N}, 900, pt, 1.0, 1.0).to(cu), b = rnd({N}, 901, pt).to(cu);
      auto go = [&](int variant) {
        cuda::set_norm_sums_variant(variant);
        Tensor wl = w.clone().requires_grad_(), bl = b.clone().requires_grad_();
        const Tensor y = F::layer_norm(x, {N}, wl, bl);
        std::vector<Tensor> g = autograd::grad({y}, {wl, bl}, {dy});
        cuda::set_norm_sums_variant(-1);
        return std::vector<Tensor>{g[0].cpu(), g[1].cpu()};
      };
      const std::vector<Tensor> chunks = go(-1), scalar = go(0);
      CHECK(bitwise_equal(chunks[0], scalar[0]));
      CHECK(bitwise_equal(chunks[1], scalar[1]));
    }
  EMBER_CHECK_THROWS(cuda::set_norm_sums_variant(1), ValueError, "set_norm_sums_variant");
}

TEST_CASE("cuda layer_norm: float16 and bfloat16 inputs computed in float32") {
  // A 16-bit input with float32 or 16-bit parameters: one fused node, bitwise the float32 kernels
  // on x.to(float32) with y and dx rounded once; against the CPU's 16-bit path within 16-bit
  // rounding (y, dx) and 2e-5 (dweight, dbias in float32). Rows on the warp path (8 to 4096
  // values, 16-byte chunks of 8), past it, and not a multiple of 8; x at an odd offset.
  if (!gpu()) return;
  for (DType dt : {kFloat16, kBFloat16}) {
    for (int64_t N : {7, 8, 768, 4096, 4104}) {
      for (int64_t M : {1, 67}) {
        for (DType pt : {kFloat32, dt}) {
          INFO(dt << " rows " << M << " of " << N << " parameters " << pt);
          const uint64_t seed = static_cast<uint64_t>(N * 100 + M + 3);
          Tensor x = rnd({M, N}, seed, dt, 2.0, 0.5), dy = rnd({M, N}, seed + 1, dt);
          Tensor w = rnd({N}, seed + 2, pt, 1.0, 1.0), b = rnd({N}, seed + 3, pt);
          const std::vector<Tensor> got = run(ln({N}), x, w, b, dy, cu);
          const Norm via_float32 = [&](const Tensor& xl, const Tensor& wl, const Tensor& bl) {
            return ln({N})(xl.to(kFloat32), wl, bl).to(dt);
          };
          check_bitwise(got, run(via_float32, x, w, b, dy, cu));
          const std::vector<Tensor> cpu = run(ln({N}), x, w, b, dy, kCPU);
          for (size_t i = 0; i < 4; ++i) {
            INFO(kNames[i]);
            CHECK(got[i].dtype() == cpu[i].dtype());
            const double t = i < 2 ? 1e-2 : (pt == kFloat32 ? 2e-5 : 1e-2);
            CHECK(rel_err(got[i].to(kFloat64), cpu[i].to(kFloat64)) <= t);
          }
          Tensor xl = x.to(cu).requires_grad_();
          const Tensor y = F::layer_norm(xl, {N}, w.to(cu), b.to(cu));
          REQUIRE(node_name(y) == "layer_norm");
          CHECK(y.grad_fn()->input_meta[0].dtype == dt);
        }
      }
    }
    // x and dy at an odd element offset (no 16-byte chunks), without parameters.
    const int64_t M = 9, N = 768;
    Tensor xw = rnd({M * N + 1}, 5, dt, 2.0, 0.5), dy = rnd({M, N}, 8, dt);
    Tensor x = xw.to(cu).narrow(0, 1, M * N).reshape({M, N});
    const std::vector<Tensor> got = run(ln({N}), x, {}, {}, dy, cu);
    check_bitwise(got, run(ln({N}), x.clone(), {}, {}, dy, cu));  // aligned: the warp path
    check_close(got, run(ln({N}), x.cpu(), {}, {}, dy, kCPU), 1e-2);
  }
}

TEST_CASE("cuda layer_norm: 1, 2 and 3 normalized dims, a large mean, many rows") {
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    Tensor x = rnd({2, 3, 5, 7}, 11, dt), dy = rnd({2, 3, 5, 7}, 12, dt);
    for (const std::vector<int64_t>& shape :
         std::vector<std::vector<int64_t>>{{7}, {5, 7}, {3, 5, 7}}) {
      INFO("normalized_shape " << IntArrayRef(shape));
      Tensor w = rnd(shape, 13, dt, 1.0, 1.0), b = rnd(shape, 14, dt);
      check_close(run(ln(shape), x, w, b, dy, cu), run(ln(shape), x, w, b, dy, kCPU), tol(dt));
      check_close(run(ln(shape, 1e-3), x, {}, {}, dy, cu),
                  run(ln(shape, 1e-3), x, {}, {}, dy, kCPU), tol(dt));
    }
    // Rows of 1e4 + noise: the shifted mean keeps the variance.
    Tensor big = rnd({9, 300}, 15, dt, 1.0, 1e4), dbig = rnd({9, 300}, 16, dt);
    check_close(run(ln({300}), big, {}, {}, dbig, cu), run(ln({300}), big, {}, {}, dbig, kCPU),
                tol(dt));
    // Many short rows: dweight and dbias from many chunks of rows.
    Tensor many = rnd({3001, 37}, 17, dt), dmany = rnd({3001, 37}, 18, dt);
    Tensor w = rnd({37}, 19, dt, 1.0, 1.0), b = rnd({37}, 20, dt);
    check_close(run(ln({37}), many, w, b, dmany, cu), run(ln({37}), many, w, b, dmany, kCPU),
                tol(dt));
    // The fused op runs on CUDA (one node).
    Tensor xl = x.to(cu).requires_grad_();
    CHECK(node_name(F::layer_norm(xl, {5, 7})) == "layer_norm");
  }
}

TEST_CASE("cuda layer_norm: gradients of x alone or of the parameters alone") {
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    Tensor x = rnd({13, 129}, 31, dt), dy = rnd({13, 129}, 32, dt);
    Tensor w = rnd({129}, 33, dt, 1.0, 1.0), b = rnd({129}, 34, dt);
    for (Wrt wrt : {Wrt{true, false}, Wrt{false, true}}) {
      INFO("wrt x " << wrt.x << " params " << wrt.params);
      check_close(run(ln({129}), x, w, b, dy, cu, wrt), run(ln({129}), x, w, b, dy, kCPU, wrt),
                  tol(dt));
    }
  }
}

TEST_CASE("cuda layer_norm: non-contiguous inputs and repeated runs give bitwise the same") {
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    Tensor x = rnd({45, 37}, 41, dt).t(), dy = rnd({37, 45}, 42, dt);  // x (37, 45) transposed
    Tensor w = rnd({45}, 43, dt, 1.0, 1.0), b = rnd({45}, 44, dt);
    REQUIRE(!x.is_contiguous());
    const std::vector<Tensor> strided = run(ln({45}), x, w, b, dy, cu);
    const std::vector<Tensor> dense = run(ln({45}), x.contiguous(), w, b, dy, cu);
    check_bitwise(strided, dense);
    check_bitwise(run(ln({45}), x.contiguous(), w, b, dy, cu), dense);
    check_close(strided, run(ln({45}), x, w, b, dy, kCPU), tol(dt));
    // A weight that is a non-contiguous view, and one of another dtype.
    Tensor wv = test::non_contiguous(w);
    check_close(run(ln({45}), x, wv, b, dy, cu), run(ln({45}), x, wv, b, dy, kCPU), tol(dt));
    Tensor wo = w.to(dt == kFloat32 ? kFloat64 : kFloat32);
    check_close(run(ln({45}), x, wo, b, dy, cu), run(ln({45}), x, wo, b, dy, kCPU), tol(dt));
  }
}

TEST_CASE("cuda layer_norm: errors are the CPU's") {
  if (!gpu()) return;
  Tensor x = rnd({4, 6}, 51, kFloat32);
  Tensor w = ones({5});
  for (Device d : {Device(kCPU), cu}) {
    INFO(d);
    EMBER_CHECK_THROWS(F::layer_norm(x.to(d), {5}), ShapeError, "[layer_norm]", "(4, 6)");
    EMBER_CHECK_THROWS(F::layer_norm(x.to(d), {6}, w.to(d)), ShapeError, "[layer_norm]", "weight");
    EMBER_CHECK_THROWS(F::layer_norm(x.to(d).to(kInt64), {6}), DTypeError, "[layer_norm]");
  }
  CHECK(message_of([&] { F::layer_norm(x, {5}); }) ==
        message_of([&] { F::layer_norm(x.to(cu), {5}); }));
}

// ---- batch_norm ----

TEST_CASE("cuda batch_norm: (N, C), (N, C, L), (N, C, H, W) with running statistics") {
  if (!gpu()) return;
  // (N, C) and (N, C, 1, 1): the column layout, several chunks of rows for (1000, 3) and
  // (64, 300); then strips, several ranges per channel for (3, 2, 129, 129).
  const std::vector<std::vector<int64_t>> shapes = {
      {2, 3},     {7, 5},         {1000, 3},        {64, 300},    {5, 4, 1, 1},
      {3, 6, 17}, {4, 3, 13, 11}, {3, 2, 129, 129}, {2, 70, 9, 9}};
  for (DType dt : {kFloat32, kFloat64}) {
    for (const auto& shape : shapes) {
      for (bool affine : {false, true}) {
        INFO(dt << " shape " << IntArrayRef(shape) << " affine " << affine);
        const int64_t C = shape[1];
        const uint64_t seed = static_cast<uint64_t>(shape[0] * 100 + C * 7 + affine);
        Tensor x = rnd(shape, seed, dt, 2.0, 0.3), dy = rnd(shape, seed + 1, dt);
        Tensor w = affine ? rnd({C}, seed + 2, dt, 1.0, 1.0) : Tensor();
        Tensor b = affine ? rnd({C}, seed + 3, dt) : Tensor();
        Tensor rm = rnd({C}, seed + 4, dt), rv = rnd({C}, seed + 5, dt, 0.5, 1.0);
        Tensor rm_cuda = rm.to(cu), rv_cuda = rv.to(cu);
        check_close(run(bn(rm_cuda, rv_cuda), x, w, b, dy, cu), run(bn(rm, rv), x, w, b, dy, kCPU),
                    tol(dt));
        CHECK(rel_err(rm_cuda.cpu(), rm) <= tol(dt));
        CHECK(rel_err(rv_cuda.cpu(), rv) <= tol(dt));
      }
    }
  }
}

TEST_CASE("cuda batch_norm: gradients of some inputs, non-contiguous input, bitwise repeats") {
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    for (const std::vector<int64_t>& shape :
         std::vector<std::vector<int64_t>>{{300, 7}, {6, 5, 9, 11}}) {
      INFO("shape " << IntArrayRef(shape));
      const int64_t C = shape[1];
      Tensor x = rnd(shape, 61, dt), dy = rnd(shape, 62, dt);
      Tensor w = rnd({C}, 63, dt, 1.0, 1.0), b = rnd({C}, 64, dt);
      for (Wrt wrt : {Wrt{true, false}, Wrt{false, true}}) {
        INFO("wrt x " << wrt.x << " params " << wrt.params);
        check_close(run(bn(), x, w, b, dy, cu, wrt), run(bn(), x, w, b, dy, kCPU, wrt), tol(dt));
      }
      const std::vector<Tensor> first = run(bn(), x, w, b, dy, cu);
      check_bitwise(run(bn(), x, w, b, dy, cu), first);
      // The same values through a permuted (non-contiguous) view.
      std::vector<int64_t> perm(shape.size());
      for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(perm.size() - 1 - i);
      Tensor xs = x.permute(perm).contiguous().permute(perm);
      REQUIRE(!xs.is_contiguous());
      check_bitwise(run(bn(), xs, w, b, dy, cu), first);
    }
  }
}

TEST_CASE("cuda batch_norm: float16 and bfloat16 inputs computed in float32") {
  // A 16-bit input with float32 parameters and buffers (a convolution's output under autocast):
  // one fused node, bitwise the float32 kernels on x.to(float32) with y and dx rounded once;
  // against the CPU's 16-bit path within 16-bit rounding (y, dx) and 2e-5 (dweight, dbias, the
  // running statistics). Column layout, strips, several ranges per channel.
  if (!gpu()) return;
  const std::vector<std::vector<int64_t>> shapes = {
      {7, 5}, {1000, 3}, {4, 3, 13, 11}, {3, 2, 129, 129}};
  for (DType dt : {kFloat16, kBFloat16}) {
    for (const auto& shape : shapes) {
      INFO(dt << " shape " << IntArrayRef(shape));
      const int64_t C = shape[1];
      const uint64_t seed = static_cast<uint64_t>(shape[0] * 100 + C * 7 + 5);
      Tensor x = rnd(shape, seed, dt, 2.0, 0.3), dy = rnd(shape, seed + 1, dt);
      Tensor w = rnd({C}, seed + 2, kFloat32, 1.0, 1.0), b = rnd({C}, seed + 3, kFloat32);
      Tensor rm = rnd({C}, seed + 4, kFloat32), rv = rnd({C}, seed + 5, kFloat32, 0.5, 1.0);
      const Tensor rm0 = rm.clone(), rv0 = rv.clone();  // rm, rv: blended by the CPU run below
      Tensor rm_cuda = rm.to(cu), rv_cuda = rv.to(cu), rm32 = rm.to(cu), rv32 = rv.to(cu);
      const std::vector<Tensor> got = run(bn(rm_cuda, rv_cuda), x, w, b, dy, cu);
      const Norm via_float32 = [&](const Tensor& xl, const Tensor& wl, const Tensor& bl) {
        return bn(rm32, rv32)(xl.to(kFloat32), wl, bl).to(dt);
      };
      check_bitwise(got, run(via_float32, x, w, b, dy, cu));
      CHECK(bitwise_equal(rm_cuda.cpu(), rm32.cpu()));
      CHECK(bitwise_equal(rv_cuda.cpu(), rv32.cpu()));
      const std::vector<Tensor> cpu = run(bn(rm, rv), x, w, b, dy, kCPU);
      for (size_t i = 0; i < 4; ++i) {
        INFO(kNames[i]);
        CHECK(got[i].dtype() == cpu[i].dtype());
        CHECK(rel_err(got[i].to(kFloat64), cpu[i].to(kFloat64)) <= (i < 2 ? 1e-2 : 2e-5));
      }
      CHECK(rel_err(rm_cuda.cpu(), rm) <= 2e-5);
      CHECK(rel_err(rv_cuda.cpu(), rv) <= 2e-5);
      Tensor xl = x.to(cu).requires_grad_();
      const Tensor y = F::batch_norm(xl, {}, {}, w.to(cu), b.to(cu), true);
      REQUIRE(node_name(y) == "batch_norm");
      CHECK(y.grad_fn()->input_meta[0].dtype == dt);
      // Strided running statistics take the composite update: the kernel's bits.
      Tensor rm_wide = zeros({2 * C}, TensorOptions(kFloat32).device(cu));
      Tensor rv_wide = zeros({2 * C}, TensorOptions(kFloat32).device(cu));
      Tensor rm_strided = rm_wide.slice(0, 0, 2 * C, 2), rv_strided = rv_wide.slice(0, 0, 2 * C, 2);
      rm_strided.copy_(rm0.to(cu));
      rv_strided.copy_(rv0.to(cu));
      run(bn(rm_strided, rv_strided), x, w, b, dy, cu);
      CHECK(bitwise_equal(rm_strided.cpu(), rm_cuda.cpu()));
      CHECK(bitwise_equal(rv_strided.cpu(), rv_cuda.cpu()));
    }
  }
}

TEST_CASE("cuda batch_norm eval: one fused pass, bitwise the composite on the GPU") {
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    const DType pt = dt == kFloat64 ? kFloat64 : kFloat32;
    // {2, 16, 4, 6} falls into 16-byte chunks for every dtype, NCHW (planes of 24) and
    // channels-last (rows of 16 channels).
    using Shape = std::pair<std::vector<int64_t>, bool>;  // sizes, channels-last
    for (const auto& [shape, cl] : std::vector<Shape>{{{7, 5}, false},
                                                      {{4, 3, 13, 11}, false},
                                                      {{3, 2, 129, 129}, false},
                                                      {{2, 16, 4, 6}, false},
                                                      {{2, 16, 4, 6}, true}}) {
      for (bool affine : {false, true}) {
        INFO(dt << " shape " << IntArrayRef(shape) << " channels-last " << cl << " affine "
                << affine);
        const int64_t C = shape[1];
        const uint64_t seed = static_cast<uint64_t>(shape[0] * 10 + C + affine);
        const Tensor x =
            rnd(shape, seed, dt, 2.0, 0.3)
                .to(cu)
                .contiguous(cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
        const Tensor rm = rnd({C}, seed + 1, pt).to(cu);
        const Tensor rv = rnd({C}, seed + 2, pt, 0.5, 1.0).to(cu);
        const Tensor w = affine ? rnd({C}, seed + 3, pt, 1.0, 1.0).to(cu) : Tensor();
        const Tensor b = affine ? rnd({C}, seed + 4, pt).to(cu) : Tensor();
        Tensor got;
        {
          NoGradGuard no_grad;
          got = F::batch_norm(x, rm, rv, w, b, false);
        }
        const Tensor want = F::batch_norm_reference(x, rm, rv, w, b, false, 0.1, 1e-5);
        CHECK(got.dtype() == dt);
        CHECK(bitwise_equal(got.cpu(), want.cpu()));
        // And near the CPU's (another rsqrt).
        const Tensor cpu =
            F::batch_norm_reference(x.cpu(), rm.cpu(), rv.cpu(), affine ? w.cpu() : Tensor(),
                                    affine ? b.cpu() : Tensor(), false, 0.1, 1e-5);
        CHECK(rel_err(got.cpu().to(kFloat64), cpu.to(kFloat64)) <= (dt == kFloat64 ? 1e-12 : 1e-2));
      }
    }
  }
}

TEST_CASE("cuda batch_norm eval with gradients: one node, dx bitwise the composite on the GPU") {
  // dx = (dy weight) r by the eval pass (16-byte chunks where the layout allows), dweight and
  // dbias by the per-channel sums at the running mean; against the composite on the GPU (dx
  // bitwise) and the CPU's node (to the sums' order); every subset of gradients.
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    const DType pt = dt == kFloat64 ? kFloat64 : kFloat32;
    using Shape = std::pair<std::vector<int64_t>, bool>;  // sizes, channels-last
    for (const auto& [shape, cl] : std::vector<Shape>{{{7, 5}, false},
                                                      {{4, 3, 13, 11}, false},
                                                      {{2, 16, 4, 6}, false},
                                                      {{2, 16, 4, 6}, true}}) {
      for (bool affine : {false, true}) {
        INFO(dt << " shape " << IntArrayRef(shape) << " channels-last " << cl << " affine "
                << affine);
        const int64_t C = shape[1];
        const uint64_t seed = static_cast<uint64_t>(shape[0] * 10 + C + affine + 500);
        const MemoryFormat format = cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
        const Tensor x = rnd(shape, seed, dt, 2.0, 0.3).contiguous(format);
        const Tensor dy = rnd(shape, seed + 5, dt).contiguous(format);
        const Tensor rm = rnd({C}, seed + 1, pt).to(cu);
        const Tensor rv = rnd({C}, seed + 2, pt, 0.5, 1.0).to(cu);
        const Tensor w = affine ? rnd({C}, seed + 3, pt, 1.0, 1.0) : Tensor();
        const Tensor b = affine ? rnd({C}, seed + 4, pt) : Tensor();
        const Norm fused = [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
          const Tensor y = F::batch_norm(xi, rm, rv, wi, bi, false, 0.1, 1e-5);
          CHECK(node_name(y) == "batch_norm");
          return y;
        };
        const Norm composite = [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
          return F::batch_norm_reference(xi, rm, rv, wi, bi, false, 0.1, 1e-5);
        };
        const Norm on_cpu = [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
          return F::batch_norm(xi, rm.cpu(), rv.cpu(), wi, bi, false, 0.1, 1e-5);
        };
        for (const Wrt wrt : {Wrt{true, true}, Wrt{true, false}, Wrt{false, true}}) {
          if (!wrt.x && !affine) continue;
          INFO("wrt x " << wrt.x << " params " << wrt.params);
          const std::vector<Tensor> got = run(fused, x, w, b, dy, cu, wrt);
          const std::vector<Tensor> ref = run(composite, x, w, b, dy, cu, wrt);
          CHECK(bitwise_equal(got[0], ref[0]));
          REQUIRE(got[1].defined() == ref[1].defined());
          if (got[1].defined()) CHECK(bitwise_equal(got[1], ref[1]));
          check_close(got, run(on_cpu, x, w, b, dy, Device(kCPU), wrt),
                      dt == kFloat64 ? 1e-11 : (dt == kBFloat16 ? 1e-2 : 2e-5));
        }
      }
    }
  }
}

TEST_CASE("cuda batch_norm: one-pass statistics keep their precision (large mean, outlier)") {
  // The statistics come from the sums of x - x0 and its square (x0 the channel's first value):
  // channels around 1000 with a spread of about 0.6 and a first value 50 away (about 87 standard
  // deviations), strips and the channels-last column layout, float32 and float64, against the
  // CPU's two-pass statistics.
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64}) {
    for (MemoryFormat fmt : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
      INFO(dt << " channels-last " << (fmt == MemoryFormat::ChannelsLast));
      Tensor x = rnd({6, 3, 17, 5}, 91, kFloat64, 1.0, 1000.0);
      x.select(0, 0).select(1, 0).select(1, 0).fill_(1050.0);  // x[0, c, 0, 0]
      x = x.to(dt);
      const Tensor dy = rnd({6, 3, 17, 5}, 92, dt), w = rnd({3}, 93, dt, 1.0, 1.0),
                   b = rnd({3}, 94, dt);
      Tensor rm = zeros({3}, dt), rv = ones({3}, dt);
      Tensor rm_cuda = rm.to(cu), rv_cuda = rv.to(cu);
      const Norm bn_cl = [&](const Tensor& xl, const Tensor& wl, const Tensor& bl) {
        return bn(rm_cuda, rv_cuda)(xl.contiguous(fmt), wl, bl);
      };
      check_close(run(bn_cl, x, w, b, dy, cu), run(bn(rm, rv), x, w, b, dy, kCPU), tol(dt));
      CHECK(rel_err(rm_cuda.cpu(), rm) <= tol(dt));
      CHECK(rel_err(rv_cuda.cpu(), rv) <= tol(dt));
    }
  }
}

TEST_CASE("cuda batch_norm: 16-byte chunks give bitwise the one-value-per-thread passes") {
  // The elementwise passes (forward y, batch_norm_relu's z and mask bits, backward dx and the
  // residual's gradient) move 16 bytes per thread where x's rows of channels (channels-last,
  // C % V == 0) or planes (NCHW, H W % V == 0) fall into such chunks and every pointer is
  // aligned; the same values at a misaligned address take the scalar passes. So do the per-channel
  // sums of the column layout (channels-last), which set_norm_sums_variant(0) also sends to the
  // scalar kernel at an aligned address. Shapes with and without chunks per dtype (V = 8 for
  // 16-bit, 4 float32, 2 float64), a last mask word that is partial (1080 values).
  if (!gpu()) return;
  struct Case {
    std::vector<int64_t> shape;
    MemoryFormat fmt;
  };
  const MemoryFormat cl = MemoryFormat::ChannelsLast, nchw = MemoryFormat::Contiguous;
  const std::vector<Case> cases = {{{3, 16, 5, 7}, cl},  {{5, 24, 3, 3}, cl},
                                   {{2, 6, 4, 6}, nchw}, {{4, 8, 2, 3}, nchw},
                                   {{2, 6, 4, 6}, cl},   {{3, 16, 5, 7}, nchw}};
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    const DType pt = dt == kFloat64 ? kFloat64 : kFloat32;
    for (const Case& k : cases) {
      for (bool relu_residual : {false, true}) {
        INFO(dt << " shape " << IntArrayRef(k.shape) << " channels-last " << (k.fmt == cl)
                << " batch_norm_relu " << relu_residual);
        const int64_t C = k.shape[1];
        const uint64_t seed = static_cast<uint64_t>(k.shape[0] * 10 + C);
        const Tensor x = rnd(k.shape, seed, dt, 2.0, 0.3).to(cu).contiguous(k.fmt);
        const Tensor r = rnd(k.shape, seed + 1, dt).to(cu).contiguous(k.fmt);
        const Tensor dz = rnd(k.shape, seed + 2, dt).to(cu);
        const Tensor w = rnd({C}, seed + 3, pt, 1.0, 1.0).to(cu), b = rnd({C}, seed + 4, pt).to(cu);
        auto go = [&](bool aligned, int sums_variant) {
          cuda::set_norm_sums_variant(sums_variant);
          Tensor xl = (aligned ? x.clone() : misaligned(x)).detach().requires_grad_();
          Tensor rl = (aligned ? r.clone() : misaligned(r)).detach().requires_grad_();
          REQUIRE((reinterpret_cast<uintptr_t>(xl.data_ptr()) % 16 == 0) == aligned);
          Tensor wl = w.clone().requires_grad_(), bl = b.clone().requires_grad_();
          const Tensor z = relu_residual
                               ? F::batch_norm_relu(xl, {}, {}, wl, bl, true, 0.1, 1e-5, rl)
                               : F::batch_norm(xl, {}, {}, wl, bl, true);
          std::vector<Tensor> in{xl, wl, bl};
          if (relu_residual) in.push_back(rl);
          std::vector<Tensor> out = autograd::grad({z}, in, {dz});
          out.insert(out.begin(), z.detach());
          for (Tensor& t : out) t = t.cpu();
          cuda::set_norm_sums_variant(-1);
          return out;
        };
        const std::vector<Tensor> chunks = go(true, -1), scalar = go(false, -1);
        const std::vector<Tensor> scalar_sums = go(true, 0);
        for (size_t i = 0; i < chunks.size(); ++i) {
          INFO("output " << i);
          CHECK(bitwise_equal(chunks[i], scalar[i]));
          CHECK(bitwise_equal(chunks[i], scalar_sums[i]));
        }
      }
    }
  }
}

TEST_CASE("cuda batch_norm_relu: one node, bitwise relu(batch_norm(x) + residual), gradients too") {
  // The fused node against the three ops on the GPU: z, dx, dweight, dbias, dresidual and the
  // running statistics bit for bit; contiguous and channels-last, with and without a residual,
  // float32/float64/float16/bfloat16, sizes whose last mask word is partial (315 values). The
  // residual cancels y exactly at some values (z = +0: no gradient) and holds a NaN (z NaN: the
  // gradient passes, as relu's threshold_backward passes it).
  if (!gpu()) return;
  // {3, 16, 5, 7} and {5, 24, 3, 3} channels-last take the 16-byte chunks (test below).
  const std::vector<std::vector<int64_t>> shapes = {{7, 5},        {3, 5, 7, 3},     {4, 3, 13, 11},
                                                    {2, 70, 9, 9}, {3, 2, 129, 129}, {3, 16, 5, 7},
                                                    {5, 24, 3, 3}};
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    const DType pt = dt == kFloat64 ? kFloat64 : kFloat32;
    for (const auto& shape : shapes) {
      for (MemoryFormat fmt : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
        if (fmt == MemoryFormat::ChannelsLast && shape.size() != 4) continue;
        for (bool with_residual : {false, true}) {
          INFO(dt << " shape " << IntArrayRef(shape) << " channels-last "
                  << (fmt == MemoryFormat::ChannelsLast) << " residual " << with_residual);
          const int64_t C = shape[1];
          const uint64_t seed = static_cast<uint64_t>(shape[0] * 100 + C * 7 + with_residual);
          const Tensor x = rnd(shape, seed, dt, 2.0, 0.3).to(cu).contiguous(fmt);
          const Tensor dz = rnd(shape, seed + 1, dt).to(cu);
          const Tensor w = rnd({C}, seed + 2, pt, 1.0, 1.0).to(cu),
                       b = rnd({C}, seed + 3, pt).to(cu);
          const Tensor rm = rnd({C}, seed + 4, pt).to(cu),
                       rv = rnd({C}, seed + 5, pt, 0.5, 1.0).to(cu);
          Tensor r;
          if (with_residual) {
            const Tensor y0 = F::batch_norm(x, {}, {}, w, b, true);  // the values the node adds to
            const Tensor cancel = rnd(shape, seed + 6, kFloat32).to(cu) > 0.6;
            r = where(cancel, -y0, rnd(shape, seed + 7, dt).to(cu)).contiguous();
            r.view({-1}).slice(0, 5, 6).fill_(std::numeric_limits<double>::quiet_NaN());
            r = r.contiguous(fmt);
          }
          struct Out {
            std::vector<Tensor> t;  // z, dx, dweight, dbias, dresidual, running mean, running var
            std::string node;
          };
          auto go = [&](bool fused, std::vector<bool> wrt) {
            Tensor m = rm.clone(), v = rv.clone();
            std::vector<Tensor> in{x.detach().clone(), w.clone(), b.clone(),
                                   with_residual ? r.clone() : Tensor()};
            std::vector<Tensor> want;
            for (size_t i = 0; i < 4; ++i)
              if (in[i].defined() && wrt[i]) want.push_back(in[i].requires_grad_());
            Tensor z;
            if (fused) {
              z = F::batch_norm_relu(in[0], m, v, in[1], in[2], true, 0.1, 1e-5, in[3]);
            } else {
              const Tensor y = F::batch_norm(in[0], m, v, in[1], in[2], true, 0.1, 1e-5);
              z = relu(in[3].defined() ? y + in[3] : y);
            }
            Out o{{z.detach().cpu()}, node_name(z)};
            CHECK(z.suggest_memory_format() == fmt);
            std::vector<Tensor> g;
            if (!want.empty()) g = autograd::grad({z}, want, {dz});
            size_t k = 0;
            for (size_t i = 0; i < 4; ++i)
              o.t.push_back(in[i].defined() && wrt[i] ? g[k++].cpu() : Tensor());
            o.t.push_back(m.cpu());
            o.t.push_back(v.cpu());
            return o;
          };
          const char* names[] = {"z",         "dx",           "dweight",    "dbias",
                                 "dresidual", "running_mean", "running_var"};
          for (const std::vector<bool>& wrt :
               std::vector<std::vector<bool>>{{true, true, true, true},
                                              {true, false, false, false},
                                              {false, true, true, false},
                                              {false, false, false, true}}) {
            INFO("wrt x " << wrt[0] << " weight, bias " << wrt[1] << " residual " << wrt[3]);
            const Out fused = go(true, wrt);
            const Out ops = go(false, wrt);
            const bool recorded = fused.t[1].defined() || fused.t[2].defined() ||
                                  fused.t[4].defined();  // some input wants a gradient
            CHECK(fused.node == (recorded ? "batch_norm_relu" : ""));
            for (size_t i = 0; i < fused.t.size(); ++i) {
              INFO(names[i]);
              REQUIRE(fused.t[i].defined() == ops.t[i].defined());
              if (fused.t[i].defined()) CHECK(bitwise_equal(fused.t[i], ops.t[i]));
            }
          }
        }
      }
    }
  }
}

TEST_CASE("cuda batch_norm_relu eval without gradients: one pass, bitwise the ops") {
  // Inference: the eval kernel with the residual add and the ReLU folded in (16-byte chunks where
  // the layout allows), bitwise batch_norm, add and relu on the GPU: every dtype, with and without
  // the residual and the affine parameters, NCHW and channels-last, exact zeros and a NaN.
  if (!gpu()) return;
  using Shape = std::pair<std::vector<int64_t>, bool>;  // sizes, channels-last
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    const DType pt = dt == kFloat64 ? kFloat64 : kFloat32;
    for (const auto& [shape, cl] : std::vector<Shape>{{{7, 5}, false},
                                                      {{4, 3, 13, 11}, false},
                                                      {{2, 16, 4, 6}, false},
                                                      {{2, 16, 4, 6}, true},
                                                      {{3, 5, 7, 3}, true}})
      for (bool with_residual : {false, true})
        for (bool affine : {false, true}) {
          INFO(dt << " shape " << IntArrayRef(shape) << " channels-last " << cl << " residual "
                  << with_residual << " affine " << affine);
          const int64_t C = shape[1];
          const MemoryFormat f = cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
          const uint64_t seed = static_cast<uint64_t>(shape[0] * 10 + C + 900);
          const Tensor x = rnd(shape, seed, dt, 2.0, 0.3).to(cu).contiguous(f);
          const Tensor m = rnd({C}, seed + 1, pt).to(cu),
                       v = rnd({C}, seed + 2, pt, 0.5, 1.0).to(cu);
          const Tensor w = affine ? rnd({C}, seed + 3, pt, 1.0, 1.0).to(cu) : Tensor();
          const Tensor b = affine ? rnd({C}, seed + 4, pt).to(cu) : Tensor();
          NoGradGuard no_grad;
          const Tensor y = F::batch_norm(x, m, v, w, b, false);
          Tensor r;
          if (with_residual) {
            Tensor rc = rnd(shape, seed + 5, dt);
            rc.view({-1}).narrow(0, 0, 5).copy_(-y.cpu().contiguous().view({-1}).narrow(0, 0, 5));
            rc.view({-1}).narrow(0, 6, 1).fill_(std::nan(""));
            r = rc.to(cu).contiguous(f);
          }
          const Tensor want = relu(r.defined() ? y + r : y);
          const Tensor z = F::batch_norm_relu(x, m, v, w, b, false, 0.1, 1e-5, r);
          CHECK(z.dtype() == dt);
          CHECK(z.is_contiguous(f));
          CHECK(bitwise_equal(z.cpu(), want.cpu()));
        }
  }
}

TEST_CASE("cuda batch_norm_relu: double backward, eval mode and other dtypes take the ops") {
  if (!gpu()) return;
  const Tensor x = rnd({4, 6, 5, 5}, 81, kFloat64).to(cu),
               dz = rnd({4, 6, 5, 5}, 82, kFloat64).to(cu);
  const Tensor r = rnd({4, 6, 5, 5}, 83, kFloat64).to(cu);
  const Tensor w = rnd({6}, 84, kFloat64, 1.0, 1.0).to(cu), b = rnd({6}, 85, kFloat64).to(cu);
  // create_graph: the node differentiates the composite, so second derivatives exist and agree.
  std::vector<Tensor> second;
  for (bool fused : {true, false}) {
    Tensor xl = x.clone().requires_grad_(), rl = r.clone().requires_grad_();
    const Tensor z = fused ? F::batch_norm_relu(xl, {}, {}, w, b, true, 0.1, 1e-5, rl)
                           : relu(F::batch_norm(xl, {}, {}, w, b, true) + rl);
    const Tensor gx = autograd::grad({z}, {xl}, {dz}, true, true)[0];
    second.push_back(autograd::grad({(gx * gx).sum()}, {xl})[0].cpu());
  }
  CHECK(rel_err(second[0], second[1]) <= 1e-10);
  // Eval mode, a residual of another dtype: the three ops (a relu node), the same values.
  const Tensor rm = zeros({6}, TensorOptions(kFloat64).device(cu)),
               rv = ones({6}, TensorOptions(kFloat64).device(cu));
  Tensor xl = x.clone().requires_grad_();
  const Tensor e = F::batch_norm_relu(xl, rm, rv, w, b, false, 0.1, 1e-5, r);
  CHECK(node_name(e) == "relu");
  CHECK(bitwise_equal(e.detach().cpu(), relu(F::batch_norm(x, rm, rv, w, b, false) + r).cpu()));
  const Tensor mixed = F::batch_norm_relu(xl, {}, {}, w, b, true, 0.1, 1e-5, r.to(kFloat32));
  CHECK(node_name(mixed) == "relu");
  CHECK(mixed.dtype() == kFloat64);
  EMBER_CHECK_THROWS(F::batch_norm_relu(x, {}, {}, w, b, true, 0.1, 1e-5, r.slice(3, 0, 4)),
                     ShapeError, "[batch_norm_relu]", "(4, 6, 5, 4)");
}

TEST_CASE("cuda batch_norm: errors are the CPU's") {
  if (!gpu()) return;
  Tensor one = rnd({1, 4}, 71, kFloat32);  // one value per channel
  Tensor x = rnd({3, 4, 2}, 72, kFloat32);
  for (Device d : {Device(kCPU), cu}) {
    INFO(d);
    EMBER_CHECK_THROWS(F::batch_norm(one.to(d), {}, {}, {}, {}, true), ValueError, "[batch_norm]",
                       "(1, 4)");
    EMBER_CHECK_THROWS(F::batch_norm(x.to(d), {}, {}, ones({3}).to(d), {}, true), ShapeError,
                       "[batch_norm]", "weight");
    EMBER_CHECK_THROWS(F::batch_norm(x.to(d), zeros({4}).to(d), {}, {}, {}, true), ValueError,
                       "[batch_norm]", "running_var");
  }
}

// ---- modules ----

TEST_CASE("cuda LayerNorm and BatchNorm2d modules match the CPU, forward, backward, buffers") {
  if (!gpu()) return;
  {
    nn::LayerNorm cpu_ln(std::vector<int64_t>{6, 10}), cuda_ln(std::vector<int64_t>{6, 10});
    {
      NoGradGuard no_grad;
      cpu_ln->weight.copy_(rnd({6, 10}, 81, kFloat32, 1.0, 1.0));
      cpu_ln->bias.copy_(rnd({6, 10}, 82, kFloat32));
      cuda_ln->weight.copy_(cpu_ln->weight);
      cuda_ln->bias.copy_(cpu_ln->bias);
    }
    cuda_ln->to(cu);
    Tensor x = rnd({3, 4, 6, 10}, 83, kFloat32), dy = rnd({3, 4, 6, 10}, 84, kFloat32);
    Tensor xa = x.clone().requires_grad_(), xb = x.to(cu).requires_grad_();
    Tensor ya = cpu_ln(xa), yb = cuda_ln(xb);
    CHECK(yb.is_cuda());
    (ya * dy).sum().backward();
    (yb * dy.to(cu)).sum().backward();
    CHECK(rel_err(yb.detach().cpu(), ya.detach()) <= tol(kFloat32));
    CHECK(rel_err(xb.grad().cpu(), xa.grad()) <= tol(kFloat32));
    CHECK(rel_err(cuda_ln->weight.grad().cpu(), cpu_ln->weight.grad()) <= tol(kFloat32));
    CHECK(rel_err(cuda_ln->bias.grad().cpu(), cpu_ln->bias.grad()) <= tol(kFloat32));
  }
  {
    nn::BatchNorm2d cpu_bn(5), cuda_bn(5);
    {
      NoGradGuard no_grad;
      cpu_bn->weight.copy_(rnd({5}, 91, kFloat32, 1.0, 1.0));
      cpu_bn->bias.copy_(rnd({5}, 92, kFloat32));
      cuda_bn->weight.copy_(cpu_bn->weight);
      cuda_bn->bias.copy_(cpu_bn->bias);
    }
    cuda_bn->to(cu);
    for (int step = 0; step < 3; ++step) {  // training: batch statistics, running buffers move
      INFO("step " << step);
      Tensor x = rnd({4, 5, 9, 7}, 93 + static_cast<uint64_t>(step), kFloat32, 2.0, 0.5);
      Tensor dy = rnd({4, 5, 9, 7}, 96 + static_cast<uint64_t>(step), kFloat32);
      Tensor xa = x.clone().requires_grad_(), xb = x.to(cu).requires_grad_();
      Tensor ya = cpu_bn(xa), yb = cuda_bn(xb);
      (ya * dy).sum().backward();
      (yb * dy.to(cu)).sum().backward();
      CHECK(rel_err(yb.detach().cpu(), ya.detach()) <= tol(kFloat32));
      CHECK(rel_err(xb.grad().cpu(), xa.grad()) <= tol(kFloat32));
      CHECK(rel_err(cuda_bn->running_mean.cpu(), cpu_bn->running_mean) <= tol(kFloat32));
      CHECK(rel_err(cuda_bn->running_var.cpu(), cpu_bn->running_var) <= tol(kFloat32));
    }
    CHECK(rel_err(cuda_bn->weight.grad().cpu(), cpu_bn->weight.grad()) <= tol(kFloat32));
    CHECK(rel_err(cuda_bn->bias.grad().cpu(), cpu_bn->bias.grad()) <= tol(kFloat32));
    // Evaluation uses the running statistics.
    cpu_bn->eval();
    cuda_bn->eval();
    Tensor x = rnd({2, 5, 3, 3}, 99, kFloat32);
    NoGradGuard no_grad;
    CHECK(rel_err(cuda_bn(x.to(cu)).cpu(), cpu_bn(x)) <= tol(kFloat32));
  }
}

TEST_CASE("cuda Sequential: a BatchNorm2d and its ReLU are one batch_norm_relu node in training") {
  // Sequential runs the pair as the BatchNorm's forward_relu (tests/nn/test_norm_layers.cpp
  // checks the values): on CUDA one fused node while training, the ops in eval mode.
  if (!gpu()) return;
  manual_seed(5);
  nn::Sequential s(nn::BatchNorm2d(8), nn::ReLU());
  s->to(cu);
  const Tensor x = randn({4, 8, 5, 5}).to(cu).requires_grad_();
  const Tensor y = s(x);
  CHECK(node_name(y) == "batch_norm_relu");
  nn::BatchNorm2d bn(8);
  bn->to(cu);
  CHECK(bitwise_equal(y.detach().cpu(), relu(bn(x)).detach().cpu()));
  s->eval();
  CHECK(node_name(s(x)) == "relu");
}
