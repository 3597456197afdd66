// The CUDA backend switch (cuda::set_backend, include/ember/cuda/cuda.hpp): with cuBLAS
// (Backend::kCublas) matmul, bmm, addmm and linear in float32/float64/float16/bfloat16 through
// transposed, sliced, batched and broadcast operands agree with a float64 CPU reference, conv2d
// and scaled_dot_product_attention run as their composites over it, and the default comes back;
// a build without cuBLAS (no CUDA, or the CPU emulator) refuses kCublas with a DeviceError and
// keeps Ember's kernels. Without a GPU the cuBLAS cases print "skipped".
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

TEST_CASE("cuda backend: Ember's kernels by default; kCublas only where cuBLAS exists") {
  CHECK(cuda::backend() == cuda::Backend::kEmber);
  if (!cuda::cublas_available()) {
    EMBER_CHECK_THROWS(cuda::set_backend(cuda::Backend::kCublas), DeviceError, "cuda::set_backend");
    CHECK(cuda::backend() == cuda::Backend::kEmber);
    return;
  }
  {
    const BackendScope scope(cuda::Backend::kCublas);
    CHECK(cuda::backend() == cuda::Backend::kCublas);
  }
  CHECK(cuda::backend() == cuda::Backend::kEmber);
}

TEST_CASE("cuda backend: cuBLAS matrix products agree with float64") {
  if (!gpu() || !cuda::cublas_available()) return;
  const BackendScope scope(cuda::Backend::kCublas);
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
  }
}

TEST_CASE("cuda backend: conv2d and attention run as composites over cuBLAS") {
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
  const BackendScope scope(cuda::Backend::kCublas);
  CHECK(close_scaled(conv2d(x, w, Tensor(), 1, 1), conv64, 2e-2));
  CHECK(close_scaled(nn::functional::scaled_dot_product_attention(q, k, v), attn64, 2e-2));
}
