// The CUDA backend switch (cuda::set_backend, include/ember/cuda/cuda.hpp): under the vendor
// backend (Backend::kVendor, formerly kCublas) matmul, bmm, addmm and linear in
// float32/float64/float16/bfloat16 through transposed, sliced, batched and broadcast operands
// agree with a float64 CPU reference (cuBLAS); conv2d and conv_transpose2d, forward and both
// gradients, run on cuDNN when it is loaded (src/cuda/cudnn.cu: the same bits as a direct call,
// the same bits run to run, float64 agreement for every dtype, strides, groups, dilation,
// depthwise, output_padding) and as im2col + cuBLAS otherwise; scaled_dot_product_attention runs
// as its composite; the default comes back. A build without cuBLAS (no CUDA, or the CPU emulator)
// refuses kVendor with a DeviceError and keeps Ember's kernels; there cuDNN is never available.
// Without a GPU the cuBLAS and cuDNN cases print "skipped".
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

/// Sets the backend for a scope and restores the previous one.
struct BackendScope {
  cuda::Backend previous = cuda::backend();
  explicit BackendScope(cuda::Backend b) { cuda::set_backend(b); }
  ~BackendScope() { cuda::set_backend(previous); }
};

/// |got - ref| <= tol * max |ref| elementwise, in float64 on the CPU.
bool close_scaled(const Tensor& got, const Tensor& ref, double tol) {
  const std::vector<double> x = test::values(got.cpu().to(kFloat64)),
                            y = test::values(ref.cpu().to(kFloat64));
  if (x.size() != y.size()) return false;
  double scale = 0;
  for (double v : y) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < x.size(); ++i)
    if (!(std::abs(x[i] - y[i]) <= tol * std::max(scale, 1e-30))) {
      UNSCOPED_INFO("element " << i << ": got " << x[i] << ", expected " << y[i]);
      return false;
    }
  return true;
}

double tolerance_of(DType dt) {
  switch (dt) {
    case kFloat64:
      return 1e-12;
    case kFloat32:
      return 1e-5;
    case kFloat16:
      return 3e-3;
    default:
      return 2e-2;
  }
}

}  // namespace

TEST_CASE("cuda backend: Ember's kernels by default, kVendor only where cuBLAS exists") {
  CHECK(cuda::backend() == cuda::Backend::kEmber);
  CHECK(cuda::Backend::kCublas == cuda::Backend::kVendor);  // the former name
  if (!cuda::cublas_available()) {
    EMBER_CHECK_THROWS(cuda::set_backend(cuda::Backend::kVendor), DeviceError, "cuda::set_backend");
    CHECK(cuda::backend() == cuda::Backend::kEmber);
    CHECK_FALSE(cuda::cudnn_is_available());
    CHECK(cuda::cudnn_version() == 0);
    return;
  }
  {
    const BackendScope scope(cuda::Backend::kVendor);
    CHECK(cuda::backend() == cuda::Backend::kVendor);
  }
  CHECK(cuda::backend() == cuda::Backend::kEmber);
  // cuDNN 9 or nothing: a loaded library reports a 9.x version.
  if (cuda::cudnn_is_available()) {
    CHECK(cuda::cudnn_version() / 10000 == 9);
  } else {
    CHECK(cuda::cudnn_version() == 0);
  }
}

TEST_CASE("cuda backend: cuBLAS matrix products agree with float64") {
  if (!gpu() || !cuda::cublas_available()) return;
  const BackendScope scope(cuda::Backend::kVendor);
  Generator g(77);
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16}) {
    INFO(dt);
    const double tol = tolerance_of(dt);
    auto rnd = [&](IntArrayRef shape) { return randn(shape, g).to(dt).to(cu); };
    auto f64 = [](const Tensor& t) { return t.cpu().to(kFloat64); };
    // Plain, transposed operands, a sliced (wide-row) operand, odd sizes.
    const Tensor a = rnd({37, 45}), b = rnd({45, 29}), at = rnd({45, 37}).t(),
                 bt = rnd({29, 45}).t(), wide = rnd({37, 64}).narrow(1, 3, 45);
    CHECK(close_scaled(matmul(a, b), matmul(f64(a), f64(b)), tol));
    CHECK(close_scaled(matmul(at, bt), matmul(f64(at), f64(bt)), tol));
    CHECK(close_scaled(matmul(wide, b), matmul(f64(wide), f64(b)), tol));
    // Batched, and a weight broadcast over the batch.
    const Tensor x = rnd({3, 17, 24}), w = rnd({24, 11}), y = rnd({3, 24, 11});
    CHECK(close_scaled(bmm(x, y), matmul(f64(x), f64(y)), tol));
    CHECK(close_scaled(matmul(x, w), matmul(f64(x), f64(w)), tol));
    // Vectors (size-1 dimensions with arbitrary strides).
    const Tensor v = rnd({45});
    CHECK(close_scaled(matmul(a, v), matmul(f64(a), f64(v)), tol));
    CHECK(close_scaled(matmul(v, b), matmul(f64(v), f64(b)), tol));
    // addmm's beta, linear with a bias.
    const Tensor in = rnd({37, 29});
    CHECK(
        close_scaled(addmm(in, a, b, 0.5, 2.0), f64(in) * 0.5 + matmul(f64(a), f64(b)) * 2.0, tol));
    const Tensor lw = rnd({13, 45}), lb = rnd({13});
    CHECK(close_scaled(linear(a, lw, lb), matmul(f64(a), f64(lw).t()) + f64(lb), tol));
    // K == 0: zeros.
    CHECK(close_scaled(matmul(rnd({5, 0}), rnd({0, 7})), zeros({5, 7}, TensorOptions(kFloat64)),
                       0.0));
    if (dt == kFloat16 || dt == kBFloat16) {
      // out_dtype float32: cuBLAS stores float32 (C of CUDA_R_32F), float32's accuracy.
      const Tensor p32 = bmm(x, y, kFloat32), yt = mm(at, bt, kFloat32);
      REQUIRE(p32.dtype() == kFloat32);
      CHECK(close_scaled(p32, matmul(f64(x), f64(y)), tolerance_of(kFloat32)));
      CHECK(close_scaled(yt, matmul(f64(at), f64(bt)), tolerance_of(kFloat32)));
      const Tensor in32 = in.to(kFloat32);
      CHECK(close_scaled(addmm(in32, a, b, kFloat32, 0.5, 2.0),
                         f64(in32) * 0.5 + matmul(f64(a), f64(b)) * 2.0, tolerance_of(kFloat32)));
    }
  }
}

TEST_CASE("cuda backend: conv2d (cuDNN or im2col) and attention (composite) under kVendor") {
  if (!gpu() || !cuda::cublas_available()) return;
  Generator g(78);
  const Tensor x = randn({2, 16, 9, 9}, g).to(kBFloat16).to(cu);
  const Tensor w = randn({8, 16, 3, 3}, g).to(kBFloat16).to(cu);
  const Tensor q = randn({2, 2, 33, 64}, g).to(kBFloat16).to(cu);
  const Tensor k = randn({2, 2, 40, 64}, g).to(kBFloat16).to(cu);
  const Tensor v = randn({2, 2, 40, 64}, g).to(kBFloat16).to(cu);
  const Tensor conv64 = conv2d(x.cpu().to(kFloat64), w.cpu().to(kFloat64), Tensor(), 1, 1);
  const Tensor attn64 = nn::functional::scaled_dot_product_attention(
      q.cpu().to(kFloat64), k.cpu().to(kFloat64), v.cpu().to(kFloat64));
  const BackendScope scope(cuda::Backend::kVendor);
  CHECK(close_scaled(conv2d(x, w, Tensor(), 1, 1), conv64, 2e-2));
  CHECK(close_scaled(nn::functional::scaled_dot_product_attention(q, k, v), attn64, 2e-2));
}

namespace {

/// One convolution problem of the cuDNN tests: x (N, C, H, W), weight, window, groups.
struct ConvCase {
  int64_t N, C, H, W, O, k, stride, pad, dil, groups;
  bool bias;
};

/// Forward and both gradients of conv2d (transposed: conv_transpose2d with output_padding op)
/// of (x, w, b) on the GPU under the current backend, against float64 autograd on the CPU of the
/// same rounded values.
void check_conv_against_float64(const ConvCase& c, DType dt, bool transposed, int64_t op,
                                Generator& g) {
  INFO("dtype " << dt << (transposed ? " conv_transpose2d" : " conv2d") << " N" << c.N << " C"
                << c.C << " " << c.H << "x" << c.W << " O" << c.O << " k" << c.k << " s" << c.stride
                << " p" << c.pad << " d" << c.dil << " g" << c.groups << " op" << op);
  const double tol = tolerance_of(dt);
  const Tensor x = randn({c.N, c.C, c.H, c.W}, g).to(dt);
  const Tensor w = (transposed ? randn({c.C, c.O / c.groups, c.k, c.k}, g)
                               : randn({c.O, c.C / c.groups, c.k, c.k}, g))
                       .to(dt);
  const Tensor b = c.bias ? randn({c.O}, g).to(dt) : Tensor();
  auto run = [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
    return transposed ? conv_transpose2d(xi, wi, bi, c.stride, c.pad, op, c.groups, c.dil)
                      : conv2d(xi, wi, bi, c.stride, c.pad, c.dil, c.groups);
  };
  // float64 reference with its gradients for a fixed upstream gradient.
  auto f64 = [](const Tensor& t) { return t.defined() ? t.to(kFloat64) : t; };
  Tensor x64 = f64(x).requires_grad_(), w64 = f64(w).requires_grad_();
  Tensor b64 = c.bias ? f64(b).requires_grad_() : Tensor();
  const Tensor y64 = run(x64, w64, b64);
  const Tensor dy = randn(y64.sizes(), g).to(dt);
  const std::vector<Tensor> ref = autograd::grad(
      {y64}, c.bias ? std::vector<Tensor>{x64, w64, b64} : std::vector<Tensor>{x64, w64},
      {f64(dy)});
  // The GPU, x as a strided view (every other channel of a wider tensor) to test strides.
  Tensor wide = zeros({c.N, 2 * c.C, c.H, c.W}, TensorOptions(dt)).to(cu);
  wide.slice(1, 0, 2 * c.C, 2).copy_(x.to(cu));
  Tensor xg = wide.slice(1, 0, 2 * c.C, 2).requires_grad_();
  Tensor wg = w.to(cu).requires_grad_();
  Tensor bg = c.bias ? b.to(cu).requires_grad_() : Tensor();
  const Tensor y = run(xg, wg, bg);
  CHECK(close_scaled(y, y64, tol));
  const std::vector<Tensor> got = autograd::grad(
      {y}, c.bias ? std::vector<Tensor>{xg, wg, bg} : std::vector<Tensor>{xg, wg}, {dy.to(cu)});
  CHECK(close_scaled(got[0], ref[0], tol));
  CHECK(close_scaled(got[1], ref[1], tol));
  if (c.bias) CHECK(close_scaled(got[2], ref[2], tol));
}

}  // namespace

TEST_CASE("cuda backend: convolution on cuDNN agrees with float64 in every dtype") {
  if (!gpu() || !cuda::cublas_available()) return;
  if (!cuda::cudnn_is_available()) {
    WARN("skipped: cuDNN 9 (libcudnn.so.9) not found; convolution runs as im2col + cuBLAS");
    return;
  }
  const BackendScope scope(cuda::Backend::kVendor);
  Generator g(79);
  const std::vector<ConvCase> cases = {
      {2, 3, 13, 11, 5, 3, 1, 1, 1, 1, true},   // 3 channels (Ember's kernels decline these)
      {2, 6, 9, 9, 4, 3, 2, 1, 2, 2, false},    // stride 2, dilation 2, 2 groups
      {1, 8, 7, 10, 8, 1, 1, 0, 1, 1, true},    // 1x1
      {2, 5, 8, 8, 5, 3, 1, 1, 1, 5, true},     // depthwise
      {3, 4, 12, 7, 6, 5, 2, 2, 1, 1, false}};  // 5x5, stride 2
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16})
    for (const ConvCase& c : cases) {
      check_conv_against_float64(c, dt, false, 0, g);
      check_conv_against_float64(c, dt, true, c.stride > 1 ? 1 : 0, g);
    }
}

TEST_CASE("cuda backend: cuDNN convolution is the direct call's bits, run to run") {
  if (!gpu() || !cuda::cublas_available() || !cuda::cudnn_is_available()) return;
  const BackendScope scope(cuda::Backend::kVendor);
  Generator g(80);
  const Window2d win{3, 3, 1, 1, 1, 1, 1, 1};
  for (DType dt : {kFloat32, kBFloat16}) {
    INFO(dt);
    const Tensor x = randn({4, 16, 14, 14}, g).to(dt).to(cu);
    const Tensor w = randn({24, 16, 3, 3}, g).to(dt).to(cu);
    const Tensor b = randn({24}, g).to(dt).to(cu);
    Tensor direct = empty({4, 24, 14, 14}, TensorOptions(dt).device(cu));
    REQUIRE(cuda::cudnn_conv2d(direct, x, w, b, win, 1, false));
    const Tensor y1 = conv2d(x, w, b, 1, 1), y2 = conv2d(x, w, b, 1, 1);
    CHECK(equal(y1, direct));
    CHECK(equal(y1, y2));
    // The weight gradient (cuDNN's filter pass; deterministic algorithms only).
    const Tensor dy = randn({4, 24, 14, 14}, g).to(dt).to(cu);
    Tensor dw1 = empty({24, 16, 3, 3}, TensorOptions(dt).device(cu)),
           dw2 = empty({24, 16, 3, 3}, TensorOptions(dt).device(cu));
    REQUIRE(cuda::cudnn_conv2d_weight_grad(dw1, dy, x, win, 1));
    REQUIRE(cuda::cudnn_conv2d_weight_grad(dw2, dy, x, win, 1));
    CHECK(equal(dw1, dw2));
    Tensor dx = empty({4, 16, 14, 14}, TensorOptions(dt).device(cu));
    REQUIRE(cuda::cudnn_conv2d_input_grad(dx, dy, w, Tensor(), win, 1));
    CHECK(close_scaled(
        dx, conv_transpose2d(dy.cpu().to(kFloat64), w.cpu().to(kFloat64), Tensor(), 1, 1),
        tolerance_of(dt)));
  }
}

TEST_CASE("cuda backend: cuDNN entry points decline what they do not take, writing nothing") {
  if (!gpu()) return;
  Generator g(81);
  const Window2d win{3, 3, 1, 1, 1, 1, 1, 1};
  const Tensor x = randn({2, 8, 9, 9}, g).to(cu), w = randn({8, 8, 3, 3}, g).to(cu);
  // An output one column short of the convolution's extent, a ReLU request, an integer dtype:
  // false, the output untouched.
  Tensor short_out = full({2, 8, 9, 8}, 7.0, TensorOptions(kFloat32).device(cu));
  CHECK_FALSE(cuda::cudnn_conv2d(short_out, x, w, Tensor(), win, 1, false));
  CHECK(equal(short_out, full({2, 8, 9, 8}, 7.0, TensorOptions(kFloat32).device(cu))));
  Tensor out = full({2, 8, 9, 9}, 7.0, TensorOptions(kFloat32).device(cu));
  CHECK_FALSE(cuda::cudnn_conv2d(out, x, w, Tensor(), win, 1, /*relu=*/true));
  CHECK(equal(out, full({2, 8, 9, 9}, 7.0, TensorOptions(kFloat32).device(cu))));
  const Tensor xi = x.to(kInt32), wi = w.to(kInt32);
  Tensor oi = zeros({2, 8, 9, 9}, TensorOptions(kInt32).device(cu));
  CHECK_FALSE(cuda::cudnn_conv2d(oi, xi, wi, Tensor(), win, 1, false));
  if (!cuda::cudnn_is_available()) {  // without cuDNN every call declines
    Tensor o = empty({2, 8, 9, 9}, TensorOptions(kFloat32).device(cu));
    CHECK_FALSE(cuda::cudnn_conv2d(o, x, w, Tensor(), win, 1, false));
  }
}
