// CUDA elementwise kernels: unary, binary and where over any strides (inputs already broadcast
// to the output's shape and converted to the compute dtype by the ops), with the CPU kernels'
// semantics (src/core/cpu/elementwise.cpp): float16/bfloat16 compute in float and round once to
// nearest even; signed integers wrap like two's complement; NaN propagates through minimum and
// maximum; integer pow by squaring with PyTorch's rule for negative exponents. Transcendental
// functions are CUDA's libdevice ones (within a few ulp; the CPU's are vec_math.hpp's), so float
// results agree with the CPU's to rounding, not bitwise.
//
// Each op's device lambda is written in a named function (device lambdas may not sit inside
// the generic lambdas of the dtype visit) and run by loops.cuh's map.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/int_math.hpp"
#include "core/kernels.hpp"
#include "cuda/loops.cuh"

namespace ember::cuda {
namespace {

using detail::BF16Bits;
using detail::compute_t;
using detail::convert;
using detail::HalfBits;
using detail::map;
using detail::map_binary;

[[noreturn]] void unsupported(const char* kernel, int op, DType t) {
  throw DTypeError(
      ember::detail::str_cat("[", kernel, "] op #", op, " is not defined for dtype ", t));
}

using int_math::int_pow;
using int_math::saturate;
using int_math::wrap_add;
using int_math::wrap_mul;
using int_math::wrap_sub;

// ---- binary ----

/// out = f(a, b) computed in C = compute_t<T>, stored as O (T, or bool for comparisons).
template <class T, class O, class F>
void binary_map(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  using C = compute_t<T>;
  map_binary<O, T, T>(
      out, [f] __device__(T x, T y) { return convert<O>(f(convert<C>(x), convert<C>(y))); }, a, b);
}

/// As binary_map for 16-bit T with a float32 b (a scalar operand kept at float precision).
template <class T, class F>
void binary_map_float_b(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  map_binary<T, T, float>(
      out, [f] __device__(T x, float y) { return convert<T>(f(convert<float>(x), y)); }, a, b);
}

template <class T>
void binary_compare(const Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op) {
  using C = compute_t<T>;
  switch (op) {
    case BinaryOp::Eq: return binary_map<T, bool>(out, a, b, [] __device__(C x, C y) { return x == y; });
    case BinaryOp::Ne: return binary_map<T, bool>(out, a, b, [] __device__(C x, C y) { return x != y; });
    case BinaryOp::Lt: return binary_map<T, bool>(out, a, b, [] __device__(C x, C y) { return x < y; });
    case BinaryOp::Le: return binary_map<T, bool>(out, a, b, [] __device__(C x, C y) { return x <= y; });
    case BinaryOp::Gt: return binary_map<T, bool>(out, a, b, [] __device__(C x, C y) { return x > y; });
    case BinaryOp::Ge: return binary_map<T, bool>(out, a, b, [] __device__(C x, C y) { return x >= y; });
    case BinaryOp::LogicalAnd:
      return binary_map<T, bool>(out, a, b,
                                 [] __device__(C x, C y) { return x != C(0) && y != C(0); });
    case BinaryOp::LogicalOr:
      return binary_map<T, bool>(out, a, b,
                                 [] __device__(C x, C y) { return x != C(0) || y != C(0); });
    default: unsupported("binary", static_cast<int>(op), a.dtype());
  }
}

/// Floating binary op f, with the float32-b form for 16-bit T.
template <class T, class F>
void binary_float_run(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  if constexpr (detail::is_reduced_v<T>) {
    if (b.dtype() == kFloat32) return binary_map_float_b<T>(out, a, b, f);
  }
  binary_map<T, T>(out, a, b, f);
}

/// a * b + c rounded once. x + alpha * y is written as this fma, as the CPU's compilers contract
/// it (GCC's default -ffp-contract=fast on an FMA target), so the two devices round alike and no
/// result depends on nvcc's own contraction choices (the fused optimizer steps rely on it).
template <class C>
__device__ __forceinline__ C fma_rn(C a, C b, C c) {
  if constexpr (std::is_same_v<C, float>)
    return __fmaf_rn(a, b, c);
  else
    return __fma_rn(a, b, c);
}

template <class T>
void binary_floating(const Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op,
                     Scalar alpha) {
  using C = compute_t<T>;
  const bool unit_alpha = alpha.to_double() == 1.0;
  const C al = alpha.to<C>();
  switch (op) {
    case BinaryOp::Add:
      if (unit_alpha) return binary_float_run<T>(out, a, b, [] __device__(C x, C y) { return x + y; });
      return binary_float_run<T>(out, a, b, [al] __device__(C x, C y) { return fma_rn(al, y, x); });
    case BinaryOp::Sub:
      if (unit_alpha) return binary_float_run<T>(out, a, b, [] __device__(C x, C y) { return x - y; });
      return binary_float_run<T>(out, a, b, [al] __device__(C x, C y) { return fma_rn(-al, y, x); });
    case BinaryOp::Mul:
      return binary_float_run<T>(out, a, b, [] __device__(C x, C y) { return x * y; });
    case BinaryOp::Div:
      return binary_float_run<T>(out, a, b, [] __device__(C x, C y) { return x / y; });
    case BinaryOp::Pow:
      return binary_float_run<T>(out, a, b, [] __device__(C x, C y) { return pow(x, y); });
    case BinaryOp::Minimum:  // NaN propagates: x != x only for NaN
      return binary_float_run<T>(out, a, b,
                                 [] __device__(C x, C y) { return (x < y || x != x) ? x : y; });
    case BinaryOp::Maximum:
      return binary_float_run<T>(out, a, b,
                                 [] __device__(C x, C y) { return (x > y || x != x) ? x : y; });
    default: return binary_compare<T>(out, a, b, op);
  }
}

template <class T>
void binary_integral(const Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op,
                     Scalar alpha) {
  const bool unit_alpha = alpha.to_double() == 1.0;
  const T al = alpha.to<T>();
  switch (op) {
    case BinaryOp::Add:
      if (unit_alpha)
        return map_binary<T, T, T>(
            out, [] __device__(T x, T y) { return wrap_add(x, y); }, a, b);
      return map_binary<T, T, T>(
          out, [al] __device__(T x, T y) { return wrap_add(x, wrap_mul(al, y)); }, a, b);
    case BinaryOp::Sub:
      if (unit_alpha)
        return map_binary<T, T, T>(
            out, [] __device__(T x, T y) { return wrap_sub(x, y); }, a, b);
      return map_binary<T, T, T>(
          out, [al] __device__(T x, T y) { return wrap_sub(x, wrap_mul(al, y)); }, a, b);
    case BinaryOp::Mul:
      return map_binary<T, T, T>(
          out, [] __device__(T x, T y) { return wrap_mul(x, y); }, a, b);
    case BinaryOp::Pow:
      return map_binary<T, T, T>(
          out, [] __device__(T x, T y) { return int_pow(x, static_cast<int64_t>(y)); }, a, b);
    case BinaryOp::Minimum:
      return map_binary<T, T, T>(
          out, [] __device__(T x, T y) { return x < y ? x : y; }, a, b);
    case BinaryOp::Maximum:
      return map_binary<T, T, T>(
          out, [] __device__(T x, T y) { return x > y ? x : y; }, a, b);
    case BinaryOp::Div: unsupported("binary", static_cast<int>(op), a.dtype());
    default: return binary_compare<T>(out, a, b, op);
  }
}

void binary_bool(const Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op, Scalar alpha) {
  switch (op) {
    case BinaryOp::Add:  // bool + bool is logical or (a + alpha * b, then != 0)
      if (alpha.to_bool())
        return map_binary<bool, bool, bool>(
            out, [] __device__(bool x, bool y) { return x || y; }, a, b);
      return map_binary<bool, bool, bool>(
          out, [] __device__(bool x, bool) { return x; }, a, b);
    case BinaryOp::Mul:
    case BinaryOp::Minimum:
      return map_binary<bool, bool, bool>(
          out, [] __device__(bool x, bool y) { return x && y; }, a, b);
    case BinaryOp::Maximum:
      return map_binary<bool, bool, bool>(
          out, [] __device__(bool x, bool y) { return x || y; }, a, b);
    case BinaryOp::Pow:
      return map_binary<bool, bool, bool>(
          out, [] __device__(bool x, bool y) { return x || !y; }, a, b);
    case BinaryOp::Sub:
    case BinaryOp::Div: unsupported("binary", static_cast<int>(op), kBool);
    default: return binary_compare<bool>(out, a, b, op);
  }
}

// ---- unary ----

/// out = f(x) computed in compute_t<T>.
template <class T, class F>
void float_map(const Tensor& out, const Tensor& x, F f) {
  using C = compute_t<T>;
  map<T, T>(out, [f] __device__(T v) { return convert<T>(f(convert<C>(v))); }, x);
}

/// out (bool) = f(x) computed in compute_t<T>.
template <class T, class F>
void predicate_map(const Tensor& out, const Tensor& x, F f) {
  using C = compute_t<T>;
  map<bool, T>(out, [f] __device__(T v) { return static_cast<bool>(f(convert<C>(v))); }, x);
}

template <class T>
void unary_predicate(const Tensor& out, const Tensor& x, UnaryOp op) {
  using C = compute_t<T>;
  constexpr bool fp = std::is_floating_point_v<C>;
  switch (op) {
    case UnaryOp::LogicalNot:
      return predicate_map<T>(out, x, [] __device__(C v) { return v == C(0); });
    case UnaryOp::IsNan:
      if constexpr (fp) return predicate_map<T>(out, x, [] __device__(C v) { return isnan(v); });
      return predicate_map<T>(out, x, [] __device__(C) { return false; });
    case UnaryOp::IsInf:
      if constexpr (fp) return predicate_map<T>(out, x, [] __device__(C v) { return isinf(v); });
      return predicate_map<T>(out, x, [] __device__(C) { return false; });
    case UnaryOp::IsFinite:
      if constexpr (fp) return predicate_map<T>(out, x, [] __device__(C v) { return isfinite(v); });
      return predicate_map<T>(out, x, [] __device__(C) { return true; });
    default: unsupported("unary", static_cast<int>(op), x.dtype());
  }
}

template <class C>
__device__ __forceinline__ C sigmoid_of(C v) {
  return C(1) / (C(1) + exp(-v));
}

template <class T>
void unary_floating(const Tensor& out, const Tensor& x, UnaryOp op, double p0, double p1) {
  using C = compute_t<T>;
  auto run = [&](auto f) { float_map<T>(out, x, f); };
  switch (op) {
    case UnaryOp::Neg: return run([] __device__(C v) { return -v; });
    case UnaryOp::Exp: return run([] __device__(C v) { return exp(v); });
    case UnaryOp::Exp2: return run([] __device__(C v) { return exp2(v); });
    case UnaryOp::Log: return run([] __device__(C v) { return log(v); });
    case UnaryOp::Log2: return run([] __device__(C v) { return log2(v); });
    case UnaryOp::Log1p: return run([] __device__(C v) { return log1p(v); });
    case UnaryOp::Expm1: return run([] __device__(C v) { return expm1(v); });
    case UnaryOp::Sqrt: return run([] __device__(C v) { return sqrt(v); });
    case UnaryOp::Rsqrt: return run([] __device__(C v) { return C(1) / sqrt(v); });
    case UnaryOp::Abs: return run([] __device__(C v) { return fabs(v); });
    case UnaryOp::Sign:
      return run([] __device__(C v) { return v != v ? v : C((C(0) < v) - (v < C(0))); });
    case UnaryOp::Sin: return run([] __device__(C v) { return sin(v); });
    case UnaryOp::Cos: return run([] __device__(C v) { return cos(v); });
    case UnaryOp::Tan: return run([] __device__(C v) { return tan(v); });
    case UnaryOp::Tanh: return run([] __device__(C v) { return tanh(v); });
    case UnaryOp::Sigmoid: return run([] __device__(C v) { return sigmoid_of(v); });
    case UnaryOp::Relu: return run([] __device__(C v) { return v < C(0) ? C(0) : v; });
    case UnaryOp::GeluErf:
      return run([] __device__(C v) {
        return C(0.5) * v * (C(1) + erf(v * C(0.70710678118654752440)));
      });
    case UnaryOp::GeluTanh:
      return run([] __device__(C v) {
        return C(0.5) * v *
               (C(1) + tanh(C(0.79788456080286535588) * (v + C(0.044715) * v * v * v)));
      });
    case UnaryOp::Silu: return run([] __device__(C v) { return v * sigmoid_of(v); });
    case UnaryOp::LeakyRelu: {
      const C slope = C(p0);
      return run([slope] __device__(C v) { return v > C(0) ? v : v * slope; });
    }
    case UnaryOp::Elu: {
      const C alpha = C(p0);
      return run([alpha] __device__(C v) { return v > C(0) ? v : alpha * expm1(v); });
    }
    case UnaryOp::Softplus: {
      const C beta = C(p0), threshold = C(p1);
      return run([beta, threshold] __device__(C v) {
        return v * beta > threshold ? v : log1p(exp(v * beta)) / beta;
      });
    }
    case UnaryOp::Erf: return run([] __device__(C v) { return erf(v); });
    case UnaryOp::Reciprocal: return run([] __device__(C v) { return C(1) / v; });
    case UnaryOp::Square: return run([] __device__(C v) { return v * v; });
    case UnaryOp::Floor: return run([] __device__(C v) { return floor(v); });
    case UnaryOp::Ceil: return run([] __device__(C v) { return ceil(v); });
    case UnaryOp::Round: return run([] __device__(C v) { return nearbyint(v); });  // half to even
    case UnaryOp::ClampMin:
    case UnaryOp::ClampMax:
    case UnaryOp::Clamp: {
      const double lo_d = op == UnaryOp::ClampMax ? -INFINITY : p0;
      const double hi_d = op == UnaryOp::ClampMin ? INFINITY : (op == UnaryOp::Clamp ? p1 : p0);
      if (std::isnan(lo_d) || std::isnan(hi_d))  // a NaN bound gives NaN, as in PyTorch
        return run([] __device__(C) { return C(NAN); });
      const C lo = C(lo_d), hi = C(hi_d);
      return run([lo, hi] __device__(C v) {
        C m = v < lo ? lo : v;  // NaN compares false and passes through
        return hi < m ? hi : m;
      });
    }
    case UnaryOp::PowScalar: {
      const C e = C(p0);
      if (p0 == 2.0) return run([] __device__(C v) { return v * v; });
      if (p0 == 1.0) return run([] __device__(C v) { return v; });
      if (p0 == 0.5) return run([] __device__(C v) { return sqrt(v); });
      if (p0 == -1.0) return run([] __device__(C v) { return C(1) / v; });
      return run([e] __device__(C v) { return pow(v, e); });
    }
    default: return unary_predicate<T>(out, x, op);
  }
}

template <class T>
void unary_integral(const Tensor& out, const Tensor& x, UnaryOp op, double p0, double p1) {
  constexpr bool is_signed = std::is_signed_v<T>;
  switch (op) {
    case UnaryOp::Neg: return map<T, T>(out, [] __device__(T v) { return wrap_sub(T(0), v); }, x);
    case UnaryOp::Abs:
      if constexpr (is_signed)
        return map<T, T>(out, [] __device__(T v) { return v < T(0) ? wrap_sub(T(0), v) : v; }, x);
      return map<T, T>(out, [] __device__(T v) { return v; }, x);
    case UnaryOp::Sign:
      if constexpr (is_signed)
        return map<T, T>(out, [] __device__(T v) { return T((T(0) < v) - (v < T(0))); }, x);
      return map<T, T>(out, [] __device__(T v) { return T(v > T(0)); }, x);
    case UnaryOp::Relu:
      if constexpr (is_signed)
        return map<T, T>(out, [] __device__(T v) { return v < T(0) ? T(0) : v; }, x);
      return map<T, T>(out, [] __device__(T v) { return v; }, x);
    case UnaryOp::Square: return map<T, T>(out, [] __device__(T v) { return wrap_mul(v, v); }, x);
    case UnaryOp::Floor:
    case UnaryOp::Ceil:
    case UnaryOp::Round: return map<T, T>(out, [] __device__(T v) { return v; }, x);
    case UnaryOp::ClampMin:
    case UnaryOp::ClampMax:
    case UnaryOp::Clamp: {
      const T lo = op == UnaryOp::ClampMax ? std::numeric_limits<T>::lowest() : saturate<T>(p0);
      const T hi = op == UnaryOp::ClampMin ? std::numeric_limits<T>::max()
                                           : saturate<T>(op == UnaryOp::Clamp ? p1 : p0);
      return map<T, T>(out, [lo, hi] __device__(T v) {
        T m = v < lo ? lo : v;
        return hi < m ? hi : m;
      }, x);
    }
    case UnaryOp::PowScalar: {
      const int64_t e = static_cast<int64_t>(p0);
      if (e == 2) return map<T, T>(out, [] __device__(T v) { return wrap_mul(v, v); }, x);
      return map<T, T>(out, [e] __device__(T v) { return int_pow(v, e); }, x);
    }
    default: return unary_predicate<T>(out, x, op);
  }
}

void unary_bool(const Tensor& out, const Tensor& x, UnaryOp op) {
  switch (op) {
    case UnaryOp::Abs:
    case UnaryOp::Sign:
    case UnaryOp::Floor:
    case UnaryOp::Ceil:
    case UnaryOp::Round:
    case UnaryOp::Square: return map<bool, bool>(out, [] __device__(bool v) { return v; }, x);
    default: return unary_predicate<bool>(out, x, op);
  }
}

bool is_predicate(UnaryOp op) {
  return op == UnaryOp::LogicalNot || op == UnaryOp::IsNan || op == UnaryOp::IsInf ||
         op == UnaryOp::IsFinite;
}

template <class T>
void unary_typed(const Tensor& out, const Tensor& x, UnaryOp op, double p0, double p1) {
  if (is_predicate(op)) return unary_predicate<T>(out, x, op);
  if constexpr (std::is_same_v<T, bool>) {
    unary_bool(out, x, op);
  } else if constexpr (std::is_integral_v<T>) {
    unary_integral<T>(out, x, op, p0, p1);
  } else {
    unary_floating<T>(out, x, op, p0, p1);
  }
}

template <class T>
void binary_typed(const Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op, Scalar alpha) {
  if constexpr (std::is_same_v<T, bool>) {
    binary_bool(out, a, b, op, alpha);
  } else if constexpr (std::is_integral_v<T>) {
    binary_integral<T>(out, a, b, op, alpha);
  } else {
    binary_floating<T>(out, a, b, op, alpha);
  }
}

template <class T>
void where_typed(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  // A Scalar branch (masked_fill's value, where(c, x, 0.0)) is read as a Single where the rest
  // is dense (loops.cuh's map_binary: the vector form only), else copied to the device.
  if (detail::is_single(a, out) && !b.is_cpu()) {
    const detail::Single<T> s = detail::single_of<T>(a);
    if (detail::map_vector<T, bool, T>(
            out, [s] __device__(bool c, T y) { return c ? s.get() : y; }, cond, b))
      return;
  } else if (detail::is_single(b, out) && !a.is_cpu()) {
    const detail::Single<T> s = detail::single_of<T>(b);
    if (detail::map_vector<T, bool, T>(
            out, [s] __device__(bool c, T x) { return c ? x : s.get(); }, cond, a))
      return;
  }
  map<T, bool, T, T>(
      out, [] __device__(bool c, T x, T y) { return c ? x : y; }, cond,
      detail::on_out_device(a, out), detail::on_out_device(b, out));
}

/// dx = g(dy, at) computed in compute_t<T>, rounded once to T.
template <class T, class G>
void activation_map(const Tensor& dx, const Tensor& dy, const Tensor& at, G g) {
  using C = compute_t<T>;
  map<T, T, T>(
      dx, [g] __device__(T d, T a) { return convert<T>(g(convert<C>(d), convert<C>(a))); }, dy, at);
}

template <class T>
void activation_backward_typed(const Tensor& dx, const Tensor& dy, const Tensor& at, ActGrad kind,
                               double p0, double p1) {
  if constexpr (std::is_floating_point_v<compute_t<T>>) {
    using C = compute_t<T>;
    auto run = [&](auto g) { activation_map<T>(dx, dy, at, g); };
    switch (kind) {
      case ActGrad::GeluErf:
        return run([] __device__(C d, C x) {
          const C cdf = C(0.5) * (C(1) + erf(x * C(0.70710678118654752440)));
          const C pdf = exp(C(-0.5) * x * x) * C(0.39894228040143267794);
          return d * (cdf + x * pdf);
        });
      case ActGrad::GeluTanh:
        return run([] __device__(C d, C x) {
          const C k = C(0.79788456080286535588), c = C(0.044715);
          const C x2 = x * x;
          const C t = tanh(k * (x + c * x2 * x));
          const C dinner = k * (C(1) + C(3) * c * x2);
          return d * (C(0.5) * (C(1) + t) + C(0.5) * x * (C(1) - t * t) * dinner);
        });
      case ActGrad::Silu:
        return run([] __device__(C d, C x) {
          const C sg = sigmoid_of(x);
          return d * sg * (C(1) + x * (C(1) - sg));
        });
      case ActGrad::Tanh:
        return run([] __device__(C d, C y) { return d * (C(1) - y * y); });
      case ActGrad::Sigmoid:
        return run([] __device__(C d, C y) { return d * (C(1) - y) * y; });
      case ActGrad::Relu:  // threshold_backward: nothing where the result is <= 0
        return run([] __device__(C d, C y) { return y <= C(0) ? C(0) : d; });
      case ActGrad::LeakyRelu: {
        const C slope = C(p0);
        return run([slope] __device__(C d, C x) { return x > C(0) ? d : d * slope; });
      }
      case ActGrad::Elu: {
        const C alpha = C(p0);
        return run([alpha] __device__(C d, C x) { return x > C(0) ? d : d * exp(x) * alpha; });
      }
      case ActGrad::Softplus: {
        const C beta = C(p0), threshold = C(p1);
        return run([beta, threshold] __device__(C d, C x) {
          const C bx = x * beta;
          return bx > threshold ? d : d * sigmoid_of(bx);
        });
      }
    }
  } else {
    (void)dx, (void)dy, (void)at, (void)kind, (void)p0, (void)p1;
    throw DTypeError("[activation_backward] expected a floating dtype");
  }
}

}  // namespace

void activation_backward(const Tensor& dx, const Tensor& dy, const Tensor& at, ActGrad kind,
                         double p0, double p1) {
  detail::visit_device_dtype(dx.dtype(), [&](auto tag) {
    activation_backward_typed<typename decltype(tag)::type>(dx, dy, at, kind, p0, p1);
  });
}

void unary(const Tensor& out, const Tensor& x, UnaryOp op, double p0, double p1) {
  detail::visit_device_dtype(x.dtype(), [&](auto tag) {
    unary_typed<typename decltype(tag)::type>(out, x, op, p0, p1);
  });
}

void binary(const Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op, Scalar alpha) {
  detail::visit_device_dtype(a.dtype(), [&](auto tag) {
    binary_typed<typename decltype(tag)::type>(out, a, b, op, alpha);
  });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::visit_device_dtype(out.dtype(), [&](auto tag) {
    where_typed<typename decltype(tag)::type>(out, cond, a, b);
  });
}

}  // namespace ember::cuda
