// Every elementwise op on CUDA tensors against the same op on the CPU, with the same seeded
// inputs: odd sizes, non-contiguous views and broadcasting, every dtype the op takes, outputs
// compared elementwise (float32 to about 1e-6 relative, float16/bfloat16 to one rounding, integers
// and bools exactly; NaN must match NaN). Without a GPU each case prints "skipped".
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "ember/cuda/cuda.hpp"
#include "ember/ember.hpp"
#include "cuda/cuda_test_util.hpp"

using namespace ember;
using ember::test::agree;
using ember::test::gpu;
using ember::test::tolerance;

namespace {

/// Inputs of three layouts: contiguous (5, 37), transposed (37, 5) viewed back, and a broadcast
/// row; values in [-3, 3] with a few special ones.
std::vector<Tensor> inputs(DType dt, uint64_t seed, bool positive = false) {
  Generator g(seed);
  Tensor base = rand({5, 37}, g) * 6.0 - 3.0;
  if (positive) base = base.abs() + 0.05;
  Tensor t = base.to(dt);
  Tensor strided = (rand({37, 5}, g) * 6.0 - 3.0).to(dt).t();  // (5, 37), non-contiguous
  if (positive) strided = strided.abs() + 0.05;
  return {t, strided};
}

const DType kFloats[] = {kFloat32, kFloat64, kFloat16, kBFloat16};

}  // namespace

TEST_CASE("cuda unary ops equal the CPU's for every floating dtype and layout") {
  if (!gpu()) return;
  struct Op {
    std::string name;
    std::function<Tensor(const Tensor&)> f;
    bool positive = false;
  };
  const std::vector<Op> ops = {
      {"neg", [](const Tensor& x) { return neg(x); }},
      {"exp", [](const Tensor& x) { return exp(x); }},
      {"exp2", [](const Tensor& x) { return exp2(x); }},
      {"log", [](const Tensor& x) { return log(x); }, true},
      {"log2", [](const Tensor& x) { return log2(x); }, true},
      {"log1p", [](const Tensor& x) { return log1p(x); }, true},
      {"expm1", [](const Tensor& x) { return expm1(x); }},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, true},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, true},
      {"abs", [](const Tensor& x) { return abs(x); }},
      {"sign", [](const Tensor& x) { return sign(x); }},
      {"sin", [](const Tensor& x) { return sin(x); }},
      {"cos", [](const Tensor& x) { return cos(x); }},
      {"tan", [](const Tensor& x) { return tan(x * 0.4); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); }},
      {"silu", [](const Tensor& x) { return silu(x); }},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); }},
      {"elu", [](const Tensor& x) { return elu(x, 0.7); }},
      {"softplus", [](const Tensor& x) { return softplus(x, 2, 3); }},
      {"erf", [](const Tensor& x) { return erf(x); }},
      {"reciprocal", [](const Tensor& x) { return reciprocal(x); }, true},
      {"square", [](const Tensor& x) { return square(x); }},
      {"floor", [](const Tensor& x) { return floor(x); }},
      {"ceil", [](const Tensor& x) { return ceil(x); }},
      {"round", [](const Tensor& x) { return round(x * 2.0); }},
      {"clamp", [](const Tensor& x) { return clamp(x, -1.5, 0.5); }},
      {"clamp_min", [](const Tensor& x) { return clamp_min(x, 0.25); }},
      {"pow 3", [](const Tensor& x) { return pow(x, 3); }},
      {"pow 0.5", [](const Tensor& x) { return pow(x, 0.5); }, true},
      {"isnan", [](const Tensor& x) { return isnan(log(x)); }},
      {"isfinite", [](const Tensor& x) { return isfinite(reciprocal(floor(x))); }},
      {"logical_not", [](const Tensor& x) { return logical_not(floor(x)); }},
  };
  uint64_t seed = 300;
  for (DType dt : kFloats)
    for (const Op& op : ops)
      for (const Tensor& x : inputs(dt, ++seed, op.positive)) {
        INFO(op.name << " " << dt << (x.is_contiguous() ? " contiguous" : " strided"));
        const Tensor want = op.f(x);
        const Tensor got = op.f(x.to(Device(kCUDA))).cpu();
        // Transcendental functions differ by a few ulp between CUDA's libdevice and the CPU's.
        CHECK(agree(got, want, 4 * tolerance(want.dtype())));
      }
}

TEST_CASE("cuda binary ops and where equal the CPU's, with broadcasting and mixed dtypes") {
  if (!gpu()) return;
  struct Op {
    std::string name;
    std::function<Tensor(const Tensor&, const Tensor&)> f;
  };
  const std::vector<Op> ops = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }},
      {"add alpha", [](const Tensor& a, const Tensor& b) { return add(a, b, 3); }},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(abs(a), b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }},
      {"eq", [](const Tensor& a, const Tensor& b) { return eq(round(a), round(b)); }},
      {"lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); }},
      {"ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); }},
      {"logical_and", [](const Tensor& a, const Tensor& b) { return logical_and(round(a), b); }},
      {"where", [](const Tensor& a, const Tensor& b) { return where(gt(a, 0.5), a, b); }},
      {"mul scalar", [](const Tensor& a, const Tensor&) { return a * 0.1; }},
      {"add scalar", [](const Tensor& a, const Tensor&) { return a + 2; }},
  };
  const DType dtypes[] = {kFloat32, kFloat64, kFloat16, kBFloat16, kInt32, kInt64, kInt8, kUInt8};
  uint64_t seed = 400;
  for (DType dt : dtypes)
    for (const Op& op : ops) {
      if (!is_floating(dt) && (op.name == "div" || op.name == "pow")) continue;
      const std::vector<Tensor> a = inputs(dt, ++seed), b = inputs(dt, ++seed);
      Generator g(++seed);
      const Tensor row = (rand({1, 37}, g) * 6.0 - 3.0).to(dt);  // broadcast along dim 0
      const Tensor col = (rand({5, 1}, g) * 6.0 - 3.0).to(kFloat64);  // promotes the result
      const std::vector<std::pair<Tensor, Tensor>> pairs = {
          {a[0], b[0]}, {a[1], b[0]}, {a[0], b[1]}, {a[1], row}, {row, a[0]}, {a[0], col}};
      for (const auto& [x, y] : pairs) {
        INFO(op.name << " " << x.dtype() << " " << x.sizes() << " with " << y.dtype() << " "
                     << y.sizes());
        Tensor want;
        try {
          want = op.f(x, y);
        } catch (const Error&) {
          continue;  // not defined for these dtypes on the CPU either
        }
        const Tensor got = op.f(x.to(Device(kCUDA)), y.to(Device(kCUDA))).cpu();
        CHECK(agree(got, want, 4 * tolerance(want.dtype())));
      }
    }
}

TEST_CASE("cuda integer and bool elementwise: wrapping, integer pow, exact comparisons") {
  if (!gpu()) return;
  Tensor a = tensor(std::vector<int64_t>{127, -128, 5, -3, 0, 1, -1, 100}).to(kInt8);
  Tensor b = tensor(std::vector<int64_t>{1, -1, 3, 2, 7, -2, -3, 100}).to(kInt8);
  const Device cu(kCUDA);
  CHECK(test::bitwise_equal((a.to(cu) + b.to(cu)).cpu(), a + b));      // wraps like the CPU
  CHECK(test::bitwise_equal((a.to(cu) * b.to(cu)).cpu(), a * b));
  CHECK(test::bitwise_equal(pow(a.to(cu), b.to(cu)).cpu(), pow(a, b)));  // negative exponents
  CHECK(test::bitwise_equal(neg(a.to(cu)).cpu(), neg(a)));
  CHECK(test::bitwise_equal(abs(a.to(cu)).cpu(), abs(a)));
  CHECK(test::bitwise_equal(clamp(a.to(cu), -5, 1000).cpu(), clamp(a, -5, 1000)));
  Tensor p = gt(a, 0), q = lt(b, 0);
  CHECK(test::bitwise_equal((p.to(cu) + q.to(cu)).cpu(), p + q));  // bool add: or
  CHECK(test::bitwise_equal(logical_not(p.to(cu)).cpu(), logical_not(p)));
  CHECK(test::bitwise_equal(where(p.to(cu), a.to(cu), b.to(cu)).cpu(), where(p, a, b)));
  // Outputs are fresh: poison a destination and write through out-of-place ops into a view.
  Tensor dst = full({8}, std::nan(""), TensorOptions(kFloat32).device(cu));
  dst.copy_(a.to(kFloat32).to(cu) * 2.0);
  CHECK(test::bitwise_equal(dst.cpu(), a.to(kFloat32) * 2.0));
}

TEST_CASE("cuda activation backward: the fused pass equals the CPU's for every floating dtype") {
  // First-order gradients of the activations: one activation_backward pass on each device.
  if (!gpu()) return;
  const Device cu(kCUDA);
  struct Act {
    std::string name;
    std::function<Tensor(const Tensor&)> f;
  };
  const std::vector<Act> acts = {
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); }},
      {"silu", [](const Tensor& x) { return silu(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); }},
      {"elu", [](const Tensor& x) { return elu(x, 0.7); }},
      {"softplus", [](const Tensor& x) { return softplus(x, 2, 3); }},
  };
  uint64_t seed = 900;
  for (DType dt : kFloats)
    for (const Act& act : acts) {
      const std::vector<Tensor> xs = inputs(dt, ++seed), dys = inputs(dt, ++seed);
      for (size_t i = 0; i < xs.size(); ++i) {
        INFO(act.name << " " << dt << (i == 0 ? " contiguous" : " strided"));
        auto grad = [&](const Tensor& x0, const Tensor& dy) {
          Tensor x = x0.detach().requires_grad_();
          return autograd::grad({act.f(x)}, {x}, {dy})[0];
        };
        const Tensor want = grad(xs[i], dys[i]);
        const Tensor got = grad(xs[i].to(cu), dys[i].to(cu));
        CHECK(got.dtype() == dt);
        CHECK(agree(got.cpu(), want, 4 * tolerance(dt)));
      }
    }
}

TEST_CASE("cuda elementwise: a 0-d CPU tensor is a scalar operand of CUDA tensors") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  Generator g(77);
  const Tensor x = rand({3, 5}, g);
  const Tensor s = scalar_tensor(2.5);  // 0-d CPU float32 ... as a tensor operand
  const Tensor xc = x.to(cu);
  CHECK((xc * s).device() == xc.device());
  CHECK(agree((xc * s).cpu(), x * s, 0));
  CHECK(agree((s - xc).cpu(), s - x, 0));
  CHECK(agree(where(xc > 0.5, xc, s).cpu(), where(x > 0.5, x, s), 0));
  CHECK(agree(masked_fill(xc, (xc > 0.5), 1.0).cpu(), masked_fill(x, x > 0.5, 1.0), 0));
  Tensor y = xc.clone();
  y.add_(s);
  CHECK(agree(y.cpu(), x + s, 0));
  // Gradients reach both, each on its own device.
  Tensor a = xc.clone().requires_grad_(true);
  Tensor b = scalar_tensor(1.5).requires_grad_(true);
  (a * b).sum().backward();
  CHECK(b.grad().is_cpu());
  CHECK(a.grad().device() == Device(kCUDA, cuda::current_device()));
  CHECK(b.grad().item<double>() == Approx(x.sum().item<double>()).epsilon(1e-5));
  // A CUDA 0-d tensor is no scalar for a CPU op, and two devices of non-0-d tensors still mix.
  EMBER_CHECK_THROWS(x * scalar_tensor(2.0).to(cu), DeviceError, "same device");
  EMBER_CHECK_THROWS(xc * x, DeviceError, "same device");
  Tensor z = x.clone();
  EMBER_CHECK_THROWS(z.add_(scalar_tensor(1.0).to(cu)), DeviceError, "same device");
}

TEST_CASE("cuda binary: a row repeated over the leading dims (a bias) equals the CPU's") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  const DType dtypes[] = {kFloat32, kFloat64, kFloat16, kBFloat16, kInt32, kInt64, kUInt8};
  uint64_t seed = 900;
  for (DType dt : dtypes) {
    for (int64_t C : {2, 3, 4, 7, 8, 33, 1025, 3072}) {
      for (int64_t R : {1, 5, 67}) {
        INFO(dt << " rows " << R << " of " << C);
        Generator g(++seed);
        const Tensor x = (rand({R, C}, g) * 6.0 - 3.0).to(dt);
        const Tensor bias = (rand({C}, g) * 6.0 - 3.0).to(dt);
        CHECK(agree((x.to(cu) + bias.to(cu)).cpu(), x + bias, tolerance(dt)));  // (R, C) + (C)
        CHECK(agree((bias.to(cu) - x.to(cu)).cpu(), bias - x, tolerance(dt)));  // the row first
        CHECK(agree(maximum(x.to(cu), bias.to(cu)).cpu(), maximum(x, bias), tolerance(dt)));
        // A bias at an odd element offset (no 16-byte chunks) and a (1, C) bias.
        const Tensor wide = (rand({C + 1}, g) * 6.0 - 3.0).to(dt);
        const Tensor odd = wide.to(cu).narrow(0, 1, C);
        CHECK(agree((x.to(cu) * odd).cpu(), x * wide.narrow(0, 1, C), tolerance(dt)));
        CHECK(agree((x.to(cu) + bias.reshape({1, C}).to(cu)).cpu(), x + bias.reshape({1, C}),
                    tolerance(dt)));
      }
    }
  }
  Generator g(77);
  // (B, T, C) with a (C) row and a (T, C) block repeated over B; a strided x (general path); a
  // column (R, 1) broadcast (general path); where with a repeated condition row.
  const Tensor x = rand({3, 5, 12}, g) * 4.0 - 2.0;
  const Tensor row = rand({12}, g), block = rand({5, 12}, g);
  CHECK(agree((x.to(cu) + row.to(cu)).cpu(), x + row, tolerance(kFloat32)));
  CHECK(agree((x.to(cu) * block.to(cu)).cpu(), x * block, tolerance(kFloat32)));
  const Tensor xt = x.transpose(0, 1);  // (5, 3, 12), strided
  CHECK(agree((xt.to(cu) + row.to(cu)).cpu(), xt + row, tolerance(kFloat32)));
  const Tensor col = rand({3, 5, 1}, g);
  CHECK(agree((x.to(cu) + col.to(cu)).cpu(), x + col, tolerance(kFloat32)));
  const Tensor cond = rand({12}, g) > 0.5;
  CHECK(agree(where(cond.to(cu), x.to(cu), row.to(cu)).cpu(), where(cond, x, row), 0.0));
  // An in-place add of a row into a strided view (out not contiguous: the general path).
  Tensor base = rand({12, 5}, g);
  Tensor dev = base.to(cu);
  dev.t().add_(rand({12}, g).to(cu));
  CHECK(dev.cpu().sizes() == base.sizes());
  // Mixed: float16 x with a float32 bias row.
  const Tensor xh = (rand({9, 40}, g) * 4.0).to(kFloat16);
  const Tensor bf = rand({40}, g);
  CHECK(agree((xh.to(cu) + bf.to(cu)).cpu(), xh + bf, tolerance(kFloat16)));
}

TEST_CASE("cuda scalar operands: passed by value, the same bits as the CPU and as a device 0-d") {
  // A Scalar operand stays on the host and reaches the kernel as an argument (loops.cuh's
  // Single); a 0-d device tensor expanded is read from its one address. Both take the vector
  // path for a dense x; a strided or misaligned x, or the Scalar first (1 - x), take the general
  // one. Each form against the CPU, and against the number as a 0-d device tensor.
  if (!gpu()) return;
  const Device cu(kCUDA);
  using S = const Scalar&;
  using T = const Tensor&;
  struct Op {
    std::string name;
    Scalar v;
    std::function<Tensor(T, S)> f;  // with the Scalar
    std::function<Tensor(T, T)> g;  // with a 0-d tensor holding it
  };
  const std::vector<Op> ops = {
      {"add", 2.5, [](T x, S v) { return x + v; }, [](T x, T s) { return x + s; }},
      {"add alpha", 2, [](T x, S v) { return add(x, v, 3); },
       [](T x, T s) { return add(x, s, 3); }},
      {"sub", 0.3, [](T x, S v) { return x - v; }, [](T x, T s) { return x - s; }},
      {"mul", 0.1, [](T x, S v) { return x * v; }, [](T x, T s) { return x * s; }},
      {"mul int", 3, [](T x, S v) { return x * v; }, [](T x, T s) { return x * s; }},
      {"div", 3, [](T x, S v) { return x / v; }, [](T x, T s) { return x / s; }},
      {"lt", 0.5, [](T x, S v) { return x < v; }, [](T x, T s) { return x < s; }},
      {"ge", 1, [](T x, S v) { return x >= v; }, [](T x, T s) { return x >= s; }},
      {"eq", 1, [](T x, S v) { return eq(x, v); }, [](T x, T s) { return eq(x, s); }},
      {"rsub", 1.0, [](T x, S v) { return v - x; }, [](T x, T s) { return s - x; }},
      {"rdiv", 2.0, [](T x, S v) { return v / (abs(x) + 1); },
       [](T x, T s) { return s / (abs(x) + 1); }},
      {"where", 0.25, [](T x, S v) { return where(x > 0, x, v); },
       [](T x, T s) { return where(x > 0, x, s); }},
      {"where first", -1.5, [](T x, S v) { return where(x > 0, v, x); },
       [](T x, T s) { return where(x > 0, s, x); }},
      {"masked_fill", 7.0, [](T x, S v) { return masked_fill(x, x > 1, v); }, nullptr},
  };
  // The number as a 0-d tensor that promotes as the Scalar does: float64 beside floating x,
  // float32 (the default dtype) beside integral x, int64 for an integer.
  auto zero_d = [](const Scalar& v, DType x, Device d) {
    const DType t = !v.is_floating_point() ? kInt64 : is_floating(x) ? kFloat64 : kFloat32;
    return scalar_tensor(v, TensorOptions(t).device(d));
  };
  const DType dtypes[] = {kFloat32, kFloat64, kFloat16, kBFloat16, kInt32, kInt64, kUInt8};
  Generator gen(1234);
  for (DType dt : dtypes) {
    // Contiguous (the vector path), transposed (strided), and at an odd element offset.
    const Tensor base = (rand({67, 33}, gen) * 6.0 - 3.0).to(dt);
    const Tensor wide = (rand({67 * 33 + 1}, gen) * 6.0 - 3.0).to(dt);
    const Tensor base_c = base.to(cu), wide_c = wide.to(cu);
    const std::vector<std::pair<Tensor, Tensor>> xs = {
        {base, base_c},
        {base.t(), base_c.t()},
        {wide.narrow(0, 1, 67 * 33).view({67, 33}), wide_c.narrow(0, 1, 67 * 33).view({67, 33})}};
    const char* layouts[] = {"dense", "strided", "odd offset"};
    for (const Op& op : ops) {
      for (size_t i = 0; i < xs.size(); ++i) {
        const auto& [x, xc] = xs[i];
        INFO(op.name << " " << dt << " " << layouts[i]);
        Tensor want;
        try {
          want = op.f(x, op.v);
        } catch (const Error&) {
          continue;  // not defined for this dtype on the CPU either
        }
        const Tensor got = op.f(xc, op.v).cpu();
        CHECK(got.dtype() == want.dtype());
        CHECK(test::bitwise_equal(got, want));
        if (!op.g) continue;
        CHECK(test::bitwise_equal(op.g(xc, zero_d(op.v, dt, xc.device())).cpu(), want));
        CHECK(test::bitwise_equal(op.g(xc, zero_d(op.v, dt, Device(kCPU))).cpu(), want));
      }
    }
  }
  // In place, with a 16-bit self computing in float32, and a strided self.
  for (DType dt : {kFloat32, kBFloat16, kFloat16}) {
    INFO("in place " << dt);
    const Tensor x = (rand({40, 24}, gen) * 4.0 - 2.0).to(dt);
    Tensor a = x.to(cu), b = x.clone(), c = x.to(cu);
    a.mul_(0.3).add_(1.25, 2).div_(3).sub_(0.5);
    b.mul_(0.3).add_(1.25, 2).div_(3).sub_(0.5);
    CHECK(test::bitwise_equal(a.cpu(), b));
    c.t().mul_(0.3);
    CHECK(test::bitwise_equal(c.cpu(), x * 0.3));
    Tensor m = x.to(cu);
    m.masked_fill_(m < 0, -0.0);
    CHECK(test::bitwise_equal(m.cpu(), masked_fill(x, x < 0, -0.0)));
  }
  // 0-d results: a 0-d device tensor with a Scalar either side.
  const Tensor t0 = scalar_tensor(1.75).to(cu);
  CHECK((t0 * 2).item<double>() == 3.5);
  CHECK((1 - t0).item<double>() == -0.75);
  CHECK(where(t0 > 1, t0, 0.0).item<double>() == 1.75);
  CHECK((1 - t0).device() == t0.device());
}
