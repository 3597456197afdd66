// The implicit-GEMM convolution kernels (src/cuda/conv_implicit_gemm.cu) against a float64 CPU
// reference computed from the same bfloat16/float16 inputs (the CPU conv2d in float64 and its
// autograd gradients): forward (+ bias, + relu), input gradient and weight gradient on odd shapes
// (N = 2, C 3/8/16/24, H and W 7/9/10/11/13/16/17, O 8/16/24, kernels 1x1/3x3/5x5/7x7, stride
// 1/2/3, padding 0/1/2/3, dilation 1/2, groups 1/2; dgrad per output phase, some phases reached by
// no tap), outputs starting poisoned; a weight gradient long enough to be split over K;
// non-contiguous inputs (a channel slice, a channels-last view, a transposed dY) and a strided
// output; bitwise repeatability; the layouts the kernels decline (C/groups not a multiple of 8,
// float32) return false and leave the output untouched. Through the ops: conv2d and
// conv_transpose2d on CUDA bfloat16 take the kernels (bitwise the direct call) and their gradients
// match the reference; a 3-channel input takes them too (its channels padded to 8 with zeros), a
// grouped one with 4 channels per group the im2col fallback. conv2d_relu takes the kernel's ReLU
// and is bitwise the composite relu(conv2d), gradients and double backward included. The weight
// gradient also into float32 (autocast's float32 parameters): bitwise the 16-bit result once
// rounded, within 1e-5 of float64. Every pass runs on both kernels (set_conv_variant: 0 mma.sync, 1
// wgmma on sm_90a, which the emulator models): narrow GEMMs on wgmma's 64-column tiles, and over
// several 128-column tiles, 20 K slabs and a split K. Tolerance: max |got - ref| <= tol * max |ref|
// (bf16 1e-2, fp16 2e-3: one rounding of the output plus float32 sums of K terms). Without a GPU
// each case prints "skipped".
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "core/kernels.hpp"
#include "cuda/cuda_test_util.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/ember.hpp"

using namespace ember;
using ember::test::gpu;

namespace {

const Device cu(kCUDA);

struct Shape {
  int64_t N, C, H, W, O, k, stride, pad, dil, groups;
};

const Shape kShapes[] = {
    {2, 8, 7, 7, 8, 3, 1, 1, 1, 1},     {2, 16, 9, 9, 24, 3, 2, 1, 1, 1},
    {2, 24, 13, 13, 16, 1, 1, 0, 1, 1}, {2, 16, 9, 9, 16, 5, 1, 3, 2, 1},
    {2, 16, 13, 13, 16, 3, 2, 1, 1, 2}, {2, 8, 13, 13, 8, 7, 2, 3, 1, 1},
    {2, 16, 7, 9, 8, 3, 1, 0, 2, 1},    {2, 24, 9, 9, 16, 1, 2, 0, 1, 1},
    {2, 16, 13, 13, 16, 3, 2, 2, 2, 2}, {2, 16, 7, 7, 24, 5, 1, 1, 1, 1},
    {2, 8, 17, 16, 8, 3, 3, 2, 2, 1},  // stride 3, dilation 2: dgrad's 9 phases, taps every 3rd
    {2, 3, 11, 10, 8, 7, 2, 3, 1, 1},  // ResNet's stem: 3 channels padded to 8 (forward, wgrad)
};

Window2d window(const Shape& s) {
  return Window2d{s.k, s.k, s.dil, s.dil, s.pad, s.pad, s.stride, s.stride};
}
int64_t out_size(int64_t in, const Shape& s) {
  return (in + 2 * s.pad - s.dil * (s.k - 1) - 1) / s.stride + 1;
}

Tensor rnd(IntArrayRef shape, DType dt, Generator& g) { return randn(shape, g).to(dt).to(cu); }
Tensor f64(const Tensor& t) { return t.cpu().to(kFloat64); }
Tensor poisoned(IntArrayRef shape, DType dt) { return empty(shape, TensorOptions(dt).device(cu)); }

double tol_of(DType dt) { return dt == kBFloat16 ? 1e-2 : 2e-3; }

/// max |got - ref| <= tol * max |ref|; NaN (an unwritten poisoned element) fails.
bool close(const Tensor& got, const Tensor& ref, DType dt) {
  if (got.sizes() != ref.sizes()) return false;
  const std::vector<double> x = test::values(got.cpu().to(kFloat64)), y = test::values(ref);
  double scale = 0, err = 0;
  for (double v : y) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = std::abs(x[i] - y[i]);
    if (!(d <= err)) err = d;  // NaN sticks
  }
  UNSCOPED_INFO("max |diff| " << err << " against max |ref| " << scale);
  return err <= tol_of(dt) * scale;
}

/// The float64 CPU reference: y = act(conv2d(x, w) + b), dx and dw for the upstream gradient dy.
struct Reference {
  Tensor y, dx, dw;
};
Reference reference(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy,
                    const Shape& s, bool relu_) {
  Tensor xd = f64(x).requires_grad_(), wd = f64(w).requires_grad_();
  Tensor y = conv2d(xd, wd, b.defined() ? f64(b) : Tensor(), {s.stride, s.stride}, {s.pad, s.pad},
                    {s.dil, s.dil}, s.groups);
  if (relu_) y = relu(y);
  Reference r;
  r.y = y.detach();
  if (dy.defined()) {
    y.backward(f64(dy));
    r.dx = xd.grad(), r.dw = wd.grad();
  }
  return r;
}

/// The weight gradient into a float32 dw (autocast's float32 parameters): the kernel's float32
/// sums stored as they are, so rounded to dw16's dtype they are bitwise dw16 (the same sums, one
/// rounding), and against the float64 reference within float32 summation error, where dw16 is
/// off by its 16-bit rounding.
void check_float32_dw(const Tensor& dw16, const Tensor& dy, const Tensor& x, const Window2d& win,
                      int64_t groups, const Tensor& ref) {
  Tensor dw = poisoned(dw16.sizes(), kFloat32);
  REQUIRE(cuda::conv2d_implicit_gemm_weight_grad(dw, dy, x, win, groups));
  CHECK(test::bitwise_equal(dw.to(dw16.dtype()).cpu(), dw16.cpu()));
  const double scale = test::values(ref.abs().max())[0];
  CHECK(test::values((dw.cpu().to(kFloat64) - ref).abs().max())[0] <= 1e-5 * scale);
}

std::string describe(const Shape& s) {
  return "N=" + std::to_string(s.N) + " C=" + std::to_string(s.C) + " H=" + std::to_string(s.H) +
         " W=" + std::to_string(s.W) + " O=" + std::to_string(s.O) + " k=" + std::to_string(s.k) +
         " stride=" + std::to_string(s.stride) + " pad=" + std::to_string(s.pad) +
         " dil=" + std::to_string(s.dil) + " groups=" + std::to_string(s.groups);
}

}  // namespace

TEST_CASE("cuda conv2d_implicit_gemm: forward, input and weight gradients against float64") {
  if (!gpu()) return;
  for (int kernels : {0, 1}) {  // set_conv_variant: mma.sync; wgmma (64-column tiles here)
  cuda::set_conv_variant(kernels);
  Generator g(7101);
  int variant = 0;
  for (const Shape& s : kShapes) {
    const Window2d win = window(s);
    const int64_t P = out_size(s.H, s), Q = out_size(s.W, s);
    for (DType dt : {kBFloat16, kFloat16}) {
      const bool with_bias = variant % 2 == 0, with_relu = variant % 4 < 2;
      ++variant;
      INFO("variant " << kernels << " " << describe(s) << " " << dt << (with_bias ? " bias" : "")
                      << (with_relu ? " relu" : ""));
      const Tensor x = rnd({s.N, s.C, s.H, s.W}, dt, g);
      const Tensor w = rnd({s.O, s.C / s.groups, s.k, s.k}, dt, g);
      const Tensor b = with_bias ? rnd({s.O}, dt, g) : Tensor();
      const Tensor dy = rnd({s.N, s.O, P, Q}, dt, g);
      const Reference fwd = reference(x, w, b, Tensor(), s, with_relu);
      const Reference grads = reference(x, w, Tensor(), dy, s, false);

      Tensor y = poisoned({s.N, s.O, P, Q}, dt);
      REQUIRE(cuda::conv2d_implicit_gemm(y, x, w, b, win, s.groups, with_relu));
      CHECK(close(y, fwd.y, dt));
      Tensor dx = poisoned(x.sizes(), dt);
      REQUIRE(cuda::conv2d_implicit_gemm_input_grad(dx, dy, w, Tensor(), win, s.groups));
      CHECK(close(dx, grads.dx, dt));
      Tensor dw = poisoned(w.sizes(), dt);
      REQUIRE(cuda::conv2d_implicit_gemm_weight_grad(dw, dy, x, win, s.groups));
      CHECK(close(dw, grads.dw, dt));
      check_float32_dw(dw, dy, x, win, s.groups, grads.dw);
    }
  }
  }
  cuda::set_conv_variant(-1);
}

TEST_CASE("cuda conv2d_implicit_gemm: the wgmma variant over several tiles and a long K") {
  if (!gpu()) return;
  Generator g(7105);
  // Forward: M = 2 * 13 * 13 = 338 pixels (3 row tiles of 128), N = 136 channels (2 column
  // tiles of 128), K = 32 * 9 = 288 (5 slabs of 64 through 4 stages). Input gradient: K = 136 *
  // 9 = 1224 (20 slabs), N = 32 (one 64-column tile). Weight gradient: M = 288 (3 row tiles),
  // N = 136 (2 column tiles), K = 338 positions (6 slabs). All against float64, and bitwise the
  // same run to run.
  const Shape s{2, 32, 13, 13, 136, 3, 1, 1, 1, 1};
  const Window2d win = window(s);
  cuda::set_conv_variant(1);
  for (DType dt : {kBFloat16, kFloat16}) {
    INFO(dt);
    const Tensor x = rnd({s.N, s.C, s.H, s.W}, dt, g);
    const Tensor w = rnd({s.O, s.C, s.k, s.k}, dt, g), b = rnd({s.O}, dt, g);
    const Tensor dy = rnd({s.N, s.O, s.H, s.W}, dt, g);
    const Reference fwd = reference(x, w, b, Tensor(), s, true);
    const Reference grads = reference(x, w, Tensor(), dy, s, false);
    Tensor y1 = poisoned(dy.sizes(), dt), y2 = poisoned(dy.sizes(), dt);
    REQUIRE(cuda::conv2d_implicit_gemm(y1, x, w, b, win, 1, true));
    REQUIRE(cuda::conv2d_implicit_gemm(y2, x, w, b, win, 1, true));
    CHECK(close(y1, fwd.y, dt));
    CHECK(test::bitwise_equal(y1.cpu(), y2.cpu()));
    Tensor dx = poisoned(x.sizes(), dt);
    REQUIRE(cuda::conv2d_implicit_gemm_input_grad(dx, dy, w, Tensor(), win, 1));
    CHECK(close(dx, grads.dx, dt));
    Tensor dw1 = poisoned(w.sizes(), dt), dw2 = poisoned(w.sizes(), dt);
    REQUIRE(cuda::conv2d_implicit_gemm_weight_grad(dw1, dy, x, win, 1));
    REQUIRE(cuda::conv2d_implicit_gemm_weight_grad(dw2, dy, x, win, 1));
    CHECK(close(dw1, grads.dw, dt));
    CHECK(test::bitwise_equal(dw1.cpu(), dw2.cpu()));
  }
  cuda::set_conv_variant(-1);
  EMBER_CHECK_THROWS(cuda::set_conv_variant(2), ValueError, "set_conv_variant");
}

TEST_CASE("cuda conv2d_implicit_gemm: split-K weight gradient, repeatable bitwise") {
  if (!gpu()) return;
  Generator g(7102);
  // K = N*P*Q = 4 * 17 * 17 = 1156 positions (37 slabs of 32 on mma.sync, 19 of 64 on wgmma), a
  // (72, 8) GEMM of one tile, so the weight gradient is split over K (4 and 2 slices) and
  // reduced in a second pass.
  const Shape s{4, 8, 17, 17, 8, 3, 1, 1, 1, 1};
  const Window2d win = window(s);
  for (int kernels : {0, 1})
  for (DType dt : {kBFloat16, kFloat16}) {
    cuda::set_conv_variant(kernels);
    INFO("variant " << kernels << " " << dt);
    const Tensor x = rnd({s.N, s.C, s.H, s.W}, dt, g);
    const Tensor w = rnd({s.O, s.C, s.k, s.k}, dt, g), b = rnd({s.O}, dt, g);
    const Tensor dy = rnd({s.N, s.O, s.H, s.W}, dt, g);
    const Reference ref = reference(x, w, Tensor(), dy, s, false);
    Tensor dw1 = poisoned(w.sizes(), dt), dw2 = poisoned(w.sizes(), dt);
    REQUIRE(cuda::conv2d_implicit_gemm_weight_grad(dw1, dy, x, win, s.groups));
    REQUIRE(cuda::conv2d_implicit_gemm_weight_grad(dw2, dy, x, win, s.groups));
    CHECK(close(dw1, ref.dw, dt));
    CHECK(test::bitwise_equal(dw1.cpu(), dw2.cpu()));
    check_float32_dw(dw1, dy, x, win, s.groups, ref.dw);
    Tensor y1 = poisoned(dy.sizes(), dt), y2 = poisoned(dy.sizes(), dt);
    REQUIRE(cuda::conv2d_implicit_gemm(y1, x, w, b, win, 1, true));
    REQUIRE(cuda::conv2d_implicit_gemm(y2, x, w, b, win, 1, true));
    CHECK(test::bitwise_equal(y1.cpu(), y2.cpu()));
    Tensor dx1 = poisoned(x.sizes(), dt), dx2 = poisoned(x.sizes(), dt);
    REQUIRE(cuda::conv2d_implicit_gemm_input_grad(dx1, dy, w, Tensor(), win, 1));
    REQUIRE(cuda::conv2d_implicit_gemm_input_grad(dx2, dy, w, Tensor(), win, 1));
    CHECK(close(dx1, ref.dx, dt));
    CHECK(test::bitwise_equal(dx1.cpu(), dx2.cpu()));
  }
  cuda::set_conv_variant(-1);
}

TEST_CASE("cuda conv2d_implicit_gemm: non-contiguous inputs and a strided output") {
  if (!gpu()) return;
  Generator g(7103);
  const Shape s{2, 16, 9, 9, 16, 3, 2, 1, 1, 2};
  const Window2d win = window(s);
  const int64_t P = out_size(s.H, s), Q = out_size(s.W, s);
  const DType dt = kBFloat16;
  // x: channels 8..23 of a 32-channel tensor, and the same values stored channels-last.
  const Tensor big = rnd({s.N, 32, s.H, s.W}, dt, g);
  const Tensor x_slice = big.narrow(1, 8, s.C);
  const Tensor x_cl = x_slice.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
  const Tensor w = rnd({s.O, s.C / s.groups, s.k, s.k}, dt, g), b = rnd({s.O}, dt, g);
  const Tensor dy_t = rnd({s.N, s.O, Q, P}, dt, g).transpose(2, 3);  // (N, O, P, Q) transposed
  const Reference ref = reference(x_slice, w, b, dy_t, s, false);
  const Reference grads = reference(x_slice, w, Tensor(), dy_t, s, false);
  for (const Tensor& x : {x_slice, x_cl}) {
    // out: every other column of a wider buffer
    Tensor buf = poisoned({s.N, s.O, P, 2 * Q}, dt);
    Tensor y = buf.slice(3, 0, std::nullopt, 2);
    REQUIRE(cuda::conv2d_implicit_gemm(y, x, w, b, win, s.groups, false));
    CHECK(close(y, ref.y, dt));
    Tensor dw = poisoned(w.sizes(), dt);
    REQUIRE(cuda::conv2d_implicit_gemm_weight_grad(dw, dy_t, x, win, s.groups));
    CHECK(close(dw, grads.dw, dt));
  }
  Tensor dx = poisoned(x_slice.sizes(), dt);
  REQUIRE(cuda::conv2d_implicit_gemm_input_grad(dx, dy_t, w, Tensor(), win, s.groups));
  CHECK(close(dx, grads.dx, dt));
}

TEST_CASE("cuda conv2d_implicit_gemm: declined layouts return false and write nothing") {
  if (!gpu()) return;
  Generator g(7104);
  const DType dt = kBFloat16;
  const Window2d win{3, 3, 1, 1, 1, 1, 1, 1};
  // C / groups = 8 / 2 = 4 (grouped, so not padded): the forward and the weight gradient decline.
  const Tensor x3 = rnd({2, 8, 7, 7}, dt, g), w3 = rnd({8, 4, 3, 3}, dt, g);
  const Tensor dy8 = rnd({2, 8, 7, 7}, dt, g);
  Tensor y = zeros({2, 8, 7, 7}, TensorOptions(dt).device(cu));
  CHECK_FALSE(cuda::conv2d_implicit_gemm(y, x3, w3, Tensor(), win, 2, false));
  Tensor dw3 = zeros(w3.sizes(), TensorOptions(dt).device(cu));
  CHECK_FALSE(cuda::conv2d_implicit_gemm_weight_grad(dw3, dy8, x3, win, 2));
  // O / groups = 12 / 2 = 6: the input gradient declines.
  const Tensor x16 = rnd({2, 16, 7, 7}, dt, g), w12 = rnd({12, 8, 3, 3}, dt, g);
  const Tensor dy12 = rnd({2, 12, 7, 7}, dt, g);
  Tensor dx = zeros(x16.sizes(), TensorOptions(dt).device(cu));
  CHECK_FALSE(cuda::conv2d_implicit_gemm_input_grad(dx, dy12, w12, Tensor(), win, 2));
  // float32
  Tensor y32 = zeros({2, 8, 7, 7}, TensorOptions(kFloat32).device(cu));
  CHECK_FALSE(cuda::conv2d_implicit_gemm(y32, x16.narrow(1, 0, 8).to(kFloat32),
                                         rnd({8, 8, 3, 3}, kFloat32, g), Tensor(), win, 1, false));
  CHECK(test::bitwise_equal(y.cpu(), zeros({2, 8, 7, 7}, TensorOptions(dt))));
  CHECK(test::bitwise_equal(dw3.cpu(), zeros(w3.sizes(), TensorOptions(dt))));
  CHECK(test::bitwise_equal(dx.cpu(), zeros(x16.sizes(), TensorOptions(dt))));
  CHECK(test::bitwise_equal(y32.cpu(), zeros({2, 8, 7, 7}, TensorOptions(kFloat32))));
}

TEST_CASE("cuda conv2d in bfloat16 runs on the implicit GEMM, gradients through autograd") {
  if (!gpu()) return;
  Generator g(7105);
  const DType dt = kBFloat16;
  for (const Shape& s : {kShapes[1], kShapes[4], kShapes[6]}) {
    INFO(describe(s));
    const int64_t P = out_size(s.H, s), Q = out_size(s.W, s);
    Tensor x = rnd({s.N, s.C, s.H, s.W}, dt, g).requires_grad_();
    Tensor w = rnd({s.O, s.C / s.groups, s.k, s.k}, dt, g).requires_grad_();
    Tensor b = rnd({s.O}, dt, g).requires_grad_();
    const Tensor dy = rnd({s.N, s.O, P, Q}, dt, g);
    Tensor y = conv2d(x, w, b, {s.stride, s.stride}, {s.pad, s.pad}, {s.dil, s.dil}, s.groups);
    // The op's forward is the kernel's (bitwise).
    Tensor direct = poisoned(y.sizes(), dt);
    REQUIRE(cuda::conv2d_implicit_gemm(direct, x.detach(), w.detach(), b.detach(), window(s),
                                       s.groups, false));
    CHECK(test::bitwise_equal(y.detach().cpu(), direct.cpu()));
    y.backward(dy);
    const Reference ref = reference(x.detach(), w.detach(), b.detach(), dy, s, false);
    CHECK(close(y.detach(), ref.y, dt));
    CHECK(close(x.grad(), ref.dx, dt));
    CHECK(close(w.grad(), ref.dw, dt));
    CHECK(close(b.grad(), f64(dy).sum({0, 2, 3}), dt));
  }
  // A grouped layer with 4 channels per group (declined by the kernel) takes im2col + gemm; a
  // 3-channel one the kernels, its channels padded.
  for (const Shape& s : {Shape{2, 8, 9, 9, 8, 3, 2, 1, 1, 2}, Shape{2, 3, 9, 9, 8, 3, 2, 1, 1, 1}}) {
    INFO(describe(s));
    Tensor x = rnd({s.N, s.C, s.H, s.W}, dt, g).requires_grad_();
    Tensor w = rnd({s.O, s.C / s.groups, s.k, s.k}, dt, g).requires_grad_();
    Tensor y = conv2d(x, w, {}, {s.stride, s.stride}, {s.pad, s.pad}, {1, 1}, s.groups);
    const Tensor dy = rnd(y.sizes(), dt, g);
    y.backward(dy);
    const Reference ref = reference(x.detach(), w.detach(), Tensor(), dy, s, false);
    CHECK(close(y.detach(), ref.y, dt));
    CHECK(close(x.grad(), ref.dx, dt));
    CHECK(close(w.grad(), ref.dw, dt));
  }
}

TEST_CASE("cuda conv2d_relu: one kernel with the bias and ReLU fused, bitwise the composite") {
  if (!gpu()) return;
  Generator g(7108);
  for (DType dt : {kBFloat16, kFloat16}) {
    for (const Shape& s : {kShapes[1], kShapes[4], kShapes[11]}) {
      INFO(dt << " " << describe(s));
      const int64_t P = out_size(s.H, s), Q = out_size(s.W, s);
      const auto run = [&](const Tensor& x, const Tensor& w, const Tensor& b, bool fused) {
        const IntArrayRef st{s.stride, s.stride}, pd{s.pad, s.pad}, dl{s.dil, s.dil};
        return fused ? conv2d_relu(x, w, b, st, pd, dl, s.groups)
                     : relu(conv2d(x, w, b, st, pd, dl, s.groups));
      };
      const Tensor x0 = rnd({s.N, s.C, s.H, s.W}, dt, g);
      const Tensor w0 = rnd({s.O, s.C / s.groups, s.k, s.k}, dt, g), b0 = rnd({s.O}, dt, g);
      const Tensor dy = rnd({s.N, s.O, P, Q}, dt, g);
      Tensor x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_(),
             b = b0.clone().requires_grad_();
      Tensor y = run(x, w, b, true);
      REQUIRE(y.grad_fn() != nullptr);
      CHECK(y.grad_fn()->name() == "conv2d_relu");
      // The kernel's ReLU (bitwise the direct call), which cut some outputs and kept others.
      Tensor direct = poisoned(y.sizes(), dt);
      REQUIRE(cuda::conv2d_implicit_gemm(direct, x0, w0, b0, window(s), s.groups, true));
      CHECK(test::bitwise_equal(y.detach().cpu(), direct.cpu()));
      const std::vector<double> v = test::values(f64(y.detach()));
      CHECK(std::count(v.begin(), v.end(), 0.0) > 0);
      CHECK(std::count_if(v.begin(), v.end(), [](double e) { return e > 0; }) > 0);
      CHECK(close(y.detach(), reference(x0, w0, b0, Tensor(), s, true).y, dt));
      // relu after one rounding is the rounding after relu, and both backward passes mask dY
      // where the output is <= 0: the composite's bits, gradients included.
      y.backward(dy);
      Tensor xr = x0.clone().requires_grad_(), wr = w0.clone().requires_grad_(),
             br = b0.clone().requires_grad_();
      Tensor yr = run(xr, wr, br, false);
      yr.backward(dy);
      CHECK(test::bitwise_equal(y.detach().cpu(), yr.detach().cpu()));
      CHECK(test::bitwise_equal(x.grad().cpu(), xr.grad().cpu()));
      CHECK(test::bitwise_equal(w.grad().cpu(), wr.grad().cpu()));
      CHECK(test::bitwise_equal(b.grad().cpu(), br.grad().cpu()));
    }
  }
  // create_graph: the fused node's backward (mask, then the ops) is differentiable again, with
  // the composite's second derivative.
  const Shape s = kShapes[0];
  const Tensor x0 = rnd({s.N, s.C, s.H, s.W}, kBFloat16, g);
  const Tensor w0 = rnd({s.O, s.C, s.k, s.k}, kBFloat16, g), b0 = rnd({s.O}, kBFloat16, g);
  std::vector<Tensor> grads[2];
  for (int fused = 0; fused < 2; ++fused) {
    Tensor x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_();
    Tensor y = fused ? conv2d_relu(x, w, b0, 1, 1) : relu(conv2d(x, w, b0, 1, 1));
    Tensor gx = autograd::grad({(y * y).sum() * 0.5}, {x}, {}, std::nullopt, true)[0];
    grads[fused] = autograd::grad({(gx * gx).sum()}, {w});
  }
  CHECK(test::bitwise_equal(grads[0][0].cpu(), grads[1][0].cpu()));
  // A layout the kernel declines (4 channels per group): conv2d then relu, exactly.
  const Tensor xd = rnd({2, 8, 9, 9}, kBFloat16, g), wd = rnd({8, 4, 3, 3}, kBFloat16, g);
  CHECK(test::bitwise_equal(conv2d_relu(xd, wd, {}, 2, 1, 1, 2).cpu(),
                            relu(conv2d(xd, wd, {}, 2, 1, 1, 2)).cpu()));
}

TEST_CASE("cuda conv-BN-ReLU at inference: folded (fuse_conv_bn_eval) into one conv2d_relu") {
  if (!gpu()) return;
  Generator g(7109);
  nn::Conv2d conv(nn::Conv2dOptions(16, 24, 3).stride(2).padding(1).bias(false));
  nn::BatchNorm2d bn(24);
  {
    NoGradGuard no_grad;
    bn->running_mean.copy_(randn({24}, g));
    bn->running_var.copy_(rand({24}, g) + 0.5);
    bn->weight.copy_(randn({24}, g));
    bn->bias.copy_(randn({24}, g));
  }
  conv->to(cu, kBFloat16);
  bn->to(cu);  // float32 statistics, as a bf16 model under autocast keeps them
  conv->eval();
  bn->eval();
  nn::Conv2d fused = nn::utils::fuse_conv_bn_eval(conv, bn);
  CHECK(fused->weight.is_cuda());
  CHECK(fused->weight.dtype() == kBFloat16);
  const Tensor x = rnd({2, 16, 9, 9}, kBFloat16, g);
  NoGradGuard no_grad;
  const Tensor y = conv2d_relu(x, fused->weight, fused->bias, 2, 1);
  // The float64 reference of relu(bn(conv(x))) from the unfolded modules' values.
  const Tensor ref = relu(nn::functional::batch_norm(
      conv2d(f64(x), f64(conv->weight), {}, 2, 1), f64(bn->running_mean), f64(bn->running_var),
      f64(bn->weight), f64(bn->bias), false, 0.1, bn->eps));
  // bf16 parameters after folding (one more rounding of the weights): 2e-2 of the largest value.
  const std::vector<double> a = test::values(f64(y)), b = test::values(ref);
  double scale = 0, err = 0;
  for (double v : b) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < a.size(); ++i) err = std::max(err, std::abs(a[i] - b[i]));
  INFO("max |diff| " << err << " against " << scale);
  CHECK(err <= 2e-2 * scale);
  CHECK(std::count(a.begin(), a.end(), 0.0) > 0);
}

TEST_CASE("cuda conv_transpose2d in bfloat16: forward and gradients on the implicit GEMM") {
  if (!gpu()) return;
  Generator g(7106);
  const DType dt = kBFloat16;
  struct TShape {
    int64_t N, Cin, H, W, Cout, k, stride, pad, out_pad, dil, groups;
  };
  for (const TShape& s :
       {TShape{2, 16, 5, 5, 8, 3, 2, 1, 1, 1, 1}, TShape{2, 16, 7, 6, 16, 4, 2, 1, 0, 1, 2},
        TShape{2, 8, 6, 6, 16, 3, 1, 2, 0, 2, 1}}) {
    INFO("Cin=" << s.Cin << " Cout=" << s.Cout << " k=" << s.k << " stride=" << s.stride
                << " groups=" << s.groups);
    const auto run = [&](const Tensor& x, const Tensor& w, const Tensor& b) {
      return conv_transpose2d(x, w, b, {s.stride, s.stride}, {s.pad, s.pad}, {s.out_pad, s.out_pad},
                              s.groups, {s.dil, s.dil});
    };
    Tensor x = rnd({s.N, s.Cin, s.H, s.W}, dt, g).requires_grad_();
    Tensor w = rnd({s.Cin, s.Cout / s.groups, s.k, s.k}, dt, g).requires_grad_();
    Tensor b = rnd({s.Cout}, dt, g).requires_grad_();
    Tensor y = run(x, w, b);
    const Tensor dy = rnd(y.sizes(), dt, g);
    y.backward(dy);
    Tensor xd = f64(x.detach()).requires_grad_(), wd = f64(w.detach()).requires_grad_();
    Tensor yd = run(xd, wd, f64(b.detach()));
    yd.backward(f64(dy));
    CHECK(close(y.detach(), yd.detach(), dt));
    CHECK(close(x.grad(), xd.grad(), dt));
    CHECK(close(w.grad(), wd.grad(), dt));
    // The forward is the input-gradient kernel's (bitwise).
    Tensor direct = poisoned(y.sizes(), dt);
    REQUIRE(cuda::conv2d_implicit_gemm_input_grad(
        direct, x.detach(), w.detach(), b.detach(),
        Window2d{s.k, s.k, s.dil, s.dil, s.pad, s.pad, s.stride, s.stride}, s.groups));
    CHECK(test::bitwise_equal(y.detach().cpu(), direct.cpu()));
  }
}

TEST_CASE("cuda conv2d in bfloat16: create_graph (double backward) through the ops") {
  if (!gpu()) return;
  Generator g(7107);
  const DType dt = kBFloat16;
  const Shape s = kShapes[0];
  Tensor x = rnd({s.N, s.C, s.H, s.W}, dt, g).requires_grad_();
  Tensor w = rnd({s.O, s.C, s.k, s.k}, dt, g).requires_grad_();
  // d/dw of sum(grad_x(sum(conv(x, w)^2 / 2))^2): needs the backward to be differentiable.
  auto loss_of = [&](const Tensor& xx, const Tensor& ww) {
    Tensor y = conv2d(xx, ww, {}, 1, 1);
    Tensor gx = autograd::grad({(y * y).sum() * 0.5}, {xx}, {}, std::nullopt, true)[0];
    return (gx * gx).sum();
  };
  Tensor l = loss_of(x, w);
  l.backward();
  Tensor xd = f64(x.detach()).requires_grad_(), wd = f64(w.detach()).requires_grad_();
  Tensor ld = loss_of(xd, wd);
  ld.backward();
  CHECK(close(w.grad(), wd.grad(), dt));
}
