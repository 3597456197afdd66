// CPU elementwise kernels: unary, binary and where over any strides. Inputs arrive already
// broadcast (expanded, stride 0) to the output's shape and converted to the compute dtype.
//
// Every op is a small lambda run by map() or binary_loop() on top of for_each_row; a contiguous
// row is a plain loop that -O3 -march=native vectorizes, and a row whose other operand is a
// broadcast scalar (stride 0) gets its own plain loop too (x * 0.5, x + bias). Half and BFloat16
// compute in float and round once to nearest even. Signed integers wrap like two's complement
// (computed in unsigned types, so overflow is never undefined behaviour). Float exp, expm1, tanh,
// sigmoid and erf (and the activations built on them) use vec_math.hpp's branch-free versions, so
// those loops vectorize too.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/cpu/loops.hpp"
#include "core/cpu/vec_math.hpp"
#include "core/dispatch.hpp"
#include "core/int_math.hpp"

namespace ember::cpu {
namespace {

[[noreturn]] void unsupported(const char* kernel, int op, DType t) {
  throw DTypeError(detail::str_cat("[", kernel, "] op #", op, " is not defined for dtype ", t));
}

using int_math::int_pow;
using int_math::saturate;
using int_math::wrap_add;
using int_math::wrap_mul;
using int_math::wrap_sub;

// ---- the binary loop: contiguous, scalar-broadcast and strided rows ----

/// out[i] = f(a[i], b[i]) with O, A, B the element types of out, a and b.
template <class O, class A, class B, class F>
void binary_loop(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  std::array<char*, 3> base{byte_ptr(out), byte_ptr(a), byte_ptr(b)};
  std::array<std::vector<int64_t>, 3> strides{byte_strides(out), byte_strides(a), byte_strides(b)};
  constexpr int64_t so = sizeof(O), sa = sizeof(A), sb = sizeof(B);
  std::vector<int64_t> sizes = out.sizes().vec();
  order_by_output<3>(sizes, strides);
  for_each_row<3>(sizes, base, strides,
                  [&](const std::array<char*, 3>& p, const std::array<int64_t, 3>& s, int64_t n) {
                    O* o = reinterpret_cast<O*>(p[0]);
                    const A* x = reinterpret_cast<const A*>(p[1]);
                    const B* y = reinterpret_cast<const B*>(p[2]);
                    if (s[0] == so && s[1] == sa && s[2] == sb) {
                      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
                    } else if (s[0] == so && s[1] == sa && s[2] == 0) {
                      const B yv = *y;
                      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
                    } else if (s[0] == so && s[1] == 0 && s[2] == sb) {
                      const A xv = *x;
                      for (int64_t i = 0; i < n; ++i) o[i] = f(xv, y[i]);
                    } else {
                      for (int64_t i = 0; i < n; ++i) {
                        *reinterpret_cast<O*>(p[0] + i * s[0]) =
                            f(*reinterpret_cast<const A*>(p[1] + i * s[1]),
                              *reinterpret_cast<const B*>(p[2] + i * s[2]));
                      }
                    }
                  });
}

// ---- binary ----

template <class T>
void binary_compare(const Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op) {
  using C = compute_t<T>;
  auto run = [&](auto f) {
    binary_loop<bool, T, T>(out, a, b,
                            [f](T x, T y) { return f(static_cast<C>(x), static_cast<C>(y)); });
  };
  switch (op) {
    case BinaryOp::Eq:
      return run([](C x, C y) { return x == y; });
    case BinaryOp::Ne:
      return run([](C x, C y) { return x != y; });
    case BinaryOp::Lt:
      return run([](C x, C y) { return x < y; });
    case BinaryOp::Le:
      return run([](C x, C y) { return x <= y; });
    case BinaryOp::Gt:
      return run([](C x, C y) { return x > y; });
    case BinaryOp::Ge:
      return run([](C x, C y) { return x >= y; });
    case BinaryOp::LogicalAnd:
      return run([](C x, C y) { return x != C(0) && y != C(0); });
    case BinaryOp::LogicalOr:
      return run([](C x, C y) { return x != C(0) || y != C(0); });
    default:
      unsupported("binary", static_cast<int>(op), a.dtype());
  }
}

template <class T>
void binary_floating(const Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op,
                     Scalar alpha) {
  using C = compute_t<T>;
  auto run = [&](auto f) {
    if constexpr (!std::is_same_v<T, C>) {
      if (b.dtype() == kFloat32) {  // a scalar operand kept at float precision
        binary_loop<T, T, float>(
            out, a, b, [f](T x, float y) { return static_cast<T>(f(static_cast<C>(x), y)); });
        return;
      }
    }
    binary_loop<T, T, T>(out, a, b, [f](T x, T y) {
      return static_cast<T>(f(static_cast<C>(x), static_cast<C>(y)));
    });
  };
  const bool unit_alpha = alpha.to_double() == 1.0;
  const C al = alpha.to<C>();
  switch (op) {
    case BinaryOp::Add:
      if (unit_alpha) return run([](C x, C y) { return x + y; });
      return run([al](C x, C y) { return x + al * y; });
    case BinaryOp::Sub:
      if (unit_alpha) return run([](C x, C y) { return x - y; });
      return run([al](C x, C y) { return x - al * y; });
    case BinaryOp::Mul:
      return run([](C x, C y) { return x * y; });
    case BinaryOp::Div:
      return run([](C x, C y) { return x / y; });
    case BinaryOp::Pow:
      return run([](C x, C y) { return std::pow(x, y); });
    // NaN propagates: x != x is true only for NaN.
    case BinaryOp::Minimum:
      return run([](C x, C y) { return (x < y || x != x) ? x : y; });
    case BinaryOp::Maximum:
      return run([](C x, C y) { return (x > y || x != x) ? x : y; });
    default:
      return binary_compare<T>(out, a, b, op);
  }
}

template <class T>
void binary_integral(const Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op,
                     Scalar alpha) {
  auto run = [&](auto f) { binary_loop<T, T, T>(out, a, b, f); };
  const bool unit_alpha = alpha.to_double() == 1.0;
  const T al = alpha.to<T>();
  switch (op) {
    case BinaryOp::Add:
      if (unit_alpha) return run([](T x, T y) { return wrap_add(x, y); });
      return run([al](T x, T y) { return wrap_add(x, wrap_mul(al, y)); });
    case BinaryOp::Sub:
      if (unit_alpha) return run([](T x, T y) { return wrap_sub(x, y); });
      return run([al](T x, T y) { return wrap_sub(x, wrap_mul(al, y)); });
    case BinaryOp::Mul:
      return run([](T x, T y) { return wrap_mul(x, y); });
    case BinaryOp::Pow:
      return run([](T x, T y) { return int_pow(x, static_cast<int64_t>(y)); });
    case BinaryOp::Minimum:
      return run([](T x, T y) { return x < y ? x : y; });
    case BinaryOp::Maximum:
      return run([](T x, T y) { return x > y ? x : y; });
    case BinaryOp::Div:
      unsupported("binary", static_cast<int>(op), a.dtype());
    default:
      return binary_compare<T>(out, a, b, op);
  }
}

void binary_bool(const Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op, Scalar alpha) {
  auto run = [&](auto f) { binary_loop<bool, bool, bool>(out, a, b, f); };
  switch (op) {
    case BinaryOp::Add:  // bool + bool is logical or (a + alpha * b, then != 0)
      if (alpha.to_bool()) return run([](bool x, bool y) { return x || y; });
      return run([](bool x, bool) { return x; });
    case BinaryOp::Mul:
    case BinaryOp::Minimum:
      return run([](bool x, bool y) { return x && y; });
    case BinaryOp::Maximum:
      return run([](bool x, bool y) { return x || y; });
    case BinaryOp::Pow:
      return run([](bool x, bool y) { return x || !y; });
    case BinaryOp::Sub:
    case BinaryOp::Div:
      unsupported("binary", static_cast<int>(op), kBool);
    default:
      return binary_compare<bool>(out, a, b, op);
  }
}

// ---- unary ----

/// out[i] = f(x[i]) computed in compute_t<T>.
template <class T, class F>
void float_map(const Tensor& out, const Tensor& x, F f) {
  using C = compute_t<T>;
  map<T, T>(
      out, [f](T v) { return static_cast<T>(f(static_cast<C>(v))); }, x);
}

template <class T>
void unary_predicate(const Tensor& out, const Tensor& x, UnaryOp op) {
  using C = compute_t<T>;
  auto run = [&](auto f) {
    map<bool, T>(
        out, [f](T v) { return f(static_cast<C>(v)); }, x);
  };
  constexpr bool fp = std::is_floating_point_v<C>;
  switch (op) {
    case UnaryOp::LogicalNot:
      return run([](C v) { return v == C(0); });
    case UnaryOp::IsNan:
      if constexpr (fp) return run([](C v) { return std::isnan(v); });
      return run([](C) { return false; });
    case UnaryOp::IsInf:
      if constexpr (fp) return run([](C v) { return std::isinf(v); });
      return run([](C) { return false; });
    case UnaryOp::IsFinite:
      if constexpr (fp) return run([](C v) { return std::isfinite(v); });
      return run([](C) { return true; });
    default:
      unsupported("unary", static_cast<int>(op), x.dtype());
  }
}

template <class T>
void unary_floating(const Tensor& out, const Tensor& x, UnaryOp op, double p0, double p1) {
  using C = compute_t<T>;
  auto run = [&](auto f) { float_map<T>(out, x, f); };
  constexpr C kSqrt1_2 = C(0.70710678118654752440);  // 1 / sqrt(2)
  constexpr C kSqrt2OverPi = C(0.79788456080286535588);
  constexpr C kGeluCoeff = C(0.044715);
  switch (op) {
    case UnaryOp::Neg:
      return run([](C v) { return -v; });
    case UnaryOp::Exp:
      return run([](C v) { return vm::exp(v); });
    case UnaryOp::Exp2:
      return run([](C v) { return std::exp2(v); });
    case UnaryOp::Log:
      return run([](C v) { return std::log(v); });
    case UnaryOp::Log2:
      return run([](C v) { return std::log2(v); });
    case UnaryOp::Log1p:
      return run([](C v) { return std::log1p(v); });
    case UnaryOp::Expm1:
      return run([](C v) { return vm::expm1(v); });
    case UnaryOp::Sqrt:
      return run([](C v) { return std::sqrt(v); });
    case UnaryOp::Rsqrt:
      return run([](C v) { return C(1) / std::sqrt(v); });
    case UnaryOp::Abs:
      return run([](C v) { return std::abs(v); });
    case UnaryOp::Sign:
      return run([](C v) { return v != v ? v : C((C(0) < v) - (v < C(0))); });
    case UnaryOp::Sin:
      return run([](C v) { return std::sin(v); });
    case UnaryOp::Cos:
      return run([](C v) { return std::cos(v); });
    case UnaryOp::Tan:
      return run([](C v) { return std::tan(v); });
    case UnaryOp::Tanh:
      return run([](C v) { return vm::tanh(v); });
    case UnaryOp::Sigmoid:
      return run([](C v) { return vm::sigmoid(v); });
    case UnaryOp::Relu:
      return run([](C v) { return v < C(0) ? C(0) : v; });
    case UnaryOp::GeluErf:
      return run([=](C v) { return C(0.5) * v * (C(1) + vm::erf(v * kSqrt1_2)); });
    case UnaryOp::GeluTanh:
      return run([=](C v) {
        return C(0.5) * v * (C(1) + vm::tanh(kSqrt2OverPi * (v + kGeluCoeff * v * v * v)));
      });
    case UnaryOp::Silu:
      return run([](C v) { return v * vm::sigmoid(v); });
    case UnaryOp::LeakyRelu: {
      const C slope = C(p0);
      return run([slope](C v) { return v > C(0) ? v : v * slope; });
    }
    case UnaryOp::Elu: {
      const C alpha = C(p0);
      return run([alpha](C v) { return v > C(0) ? v : alpha * vm::expm1(v); });
    }
    case UnaryOp::Softplus: {
      const C beta = C(p0), threshold = C(p1);
      return run([beta, threshold](C v) {
        return v * beta > threshold ? v : std::log1p(std::exp(v * beta)) / beta;
      });
    }
    case UnaryOp::Erf:
      return run([](C v) { return vm::erf(v); });
    case UnaryOp::Reciprocal:
      return run([](C v) { return C(1) / v; });
    case UnaryOp::Square:
      return run([](C v) { return v * v; });
    case UnaryOp::Floor:
      return run([](C v) { return std::floor(v); });
    case UnaryOp::Ceil:
      return run([](C v) { return std::ceil(v); });
    case UnaryOp::Round:
      return run([](C v) { return std::nearbyint(v); });  // half to even
    case UnaryOp::ClampMin:
    case UnaryOp::ClampMax:
    case UnaryOp::Clamp: {
      const double lo_d = op == UnaryOp::ClampMax ? -INFINITY : p0;
      const double hi_d = op == UnaryOp::ClampMin ? INFINITY : (op == UnaryOp::Clamp ? p1 : p0);
      if (std::isnan(lo_d) || std::isnan(hi_d)) {  // a NaN bound gives NaN, as in PyTorch
        return run([](C) { return std::numeric_limits<C>::quiet_NaN(); });
      }
      const C lo = C(lo_d), hi = C(hi_d);
      return run([lo, hi](C v) {
        C m = v < lo ? lo : v;  // NaN compares false and passes through
        return hi < m ? hi : m;
      });
    }
    case UnaryOp::PowScalar: {
      const C e = C(p0);
      if (p0 == 2.0) return run([](C v) { return v * v; });
      if (p0 == 1.0) return run([](C v) { return v; });
      if (p0 == 0.5) return run([](C v) { return std::sqrt(v); });
      if (p0 == -1.0) return run([](C v) { return C(1) / v; });
      return run([e](C v) { return std::pow(v, e); });
    }
    default:
      return unary_predicate<T>(out, x, op);
  }
}

template <class T>
void unary_integral(const Tensor& out, const Tensor& x, UnaryOp op, double p0, double p1) {
  auto run = [&](auto f) { map<T, T>(out, f, x); };
  constexpr bool is_signed = std::is_signed_v<T>;
  switch (op) {
    case UnaryOp::Neg:
      return run([](T v) { return wrap_sub(T(0), v); });
    case UnaryOp::Abs:
      if constexpr (is_signed) return run([](T v) { return v < T(0) ? wrap_sub(T(0), v) : v; });
      return run([](T v) { return v; });
    case UnaryOp::Sign:
      if constexpr (is_signed) return run([](T v) { return T((T(0) < v) - (v < T(0))); });
      return run([](T v) { return T(v > T(0)); });
    case UnaryOp::Relu:
      if constexpr (is_signed) return run([](T v) { return v < T(0) ? T(0) : v; });
      return run([](T v) { return v; });
    case UnaryOp::Square:
      return run([](T v) { return wrap_mul(v, v); });
    case UnaryOp::Floor:
    case UnaryOp::Ceil:
    case UnaryOp::Round:
      return run([](T v) { return v; });
    case UnaryOp::ClampMin:
    case UnaryOp::ClampMax:
    case UnaryOp::Clamp: {
      const T lo = op == UnaryOp::ClampMax ? std::numeric_limits<T>::lowest() : saturate<T>(p0);
      const T hi = op == UnaryOp::ClampMin ? std::numeric_limits<T>::max()
                                           : saturate<T>(op == UnaryOp::Clamp ? p1 : p0);
      return run([lo, hi](T v) {
        T m = v < lo ? lo : v;
        return hi < m ? hi : m;
      });
    }
    case UnaryOp::PowScalar: {
      const int64_t e = static_cast<int64_t>(p0);
      if (e == 2) return run([](T v) { return wrap_mul(v, v); });
      return run([e](T v) { return int_pow(v, e); });
    }
    default:
      return unary_predicate<T>(out, x, op);
  }
}

void unary_bool(const Tensor& out, const Tensor& x, UnaryOp op) {
  switch (op) {
    case UnaryOp::Abs:
    case UnaryOp::Sign:
    case UnaryOp::Floor:
    case UnaryOp::Ceil:
    case UnaryOp::Round:
    case UnaryOp::Square:
      return map<bool, bool>(
          out, [](bool v) { return v; }, x);
    default:
      return unary_predicate<bool>(out, x, op);
  }
}

bool is_predicate(UnaryOp op) {
  return op == UnaryOp::LogicalNot || op == UnaryOp::IsNan || op == UnaryOp::IsInf ||
         op == UnaryOp::IsFinite;
}

}  // namespace

void unary(const Tensor& out, const Tensor& x, UnaryOp op, double p0, double p1) {
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (is_predicate(op)) return unary_predicate<T>(out, x, op);
    if constexpr (std::is_same_v<T, bool>) {
      (void)p0;
      (void)p1;
      unary_bool(out, x, op);
    } else if constexpr (std::is_integral_v<T>) {
      unary_integral<T>(out, x, op, p0, p1);
    } else {
      unary_floating<T>(out, x, op, p0, p1);
    }
  });
}

void binary(const Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op, Scalar alpha) {
  visit_dtype(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bool>) {
      binary_bool(out, a, b, op, alpha);
    } else if constexpr (std::is_integral_v<T>) {
      binary_integral<T>(out, a, b, op, alpha);
    } else {
      binary_floating<T>(out, a, b, op, alpha);
    }
  });
}

void activation_backward(const Tensor& dx, const Tensor& dy, const Tensor& at, ActGrad kind,
                         double p0, double p1) {
  visit_dtype(dx.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      using C = compute_t<T>;
      // g(dy, at) in C, rounded once to T
      auto run = [&](auto g) {
        map<T, T, T>(
            dx, [g](T d, T a) { return static_cast<T>(g(static_cast<C>(d), static_cast<C>(a))); },
            dy, at);
      };
      constexpr C kSqrt1_2 = C(0.70710678118654752440);      // 1 / sqrt(2)
      constexpr C kInvSqrt2Pi = C(0.39894228040143267794);   // 1 / sqrt(2 pi)
      constexpr C kSqrt2OverPi = C(0.79788456080286535588);  // sqrt(2 / pi)
      constexpr C kGeluCoeff = C(0.044715);
      switch (kind) {
        case ActGrad::GeluErf:
          return run([=](C d, C x) {
            const C cdf = C(0.5) * (C(1) + vm::erf(x * kSqrt1_2));
            const C pdf = vm::exp(C(-0.5) * x * x) * kInvSqrt2Pi;
            return d * (cdf + x * pdf);
          });
        case ActGrad::GeluTanh:
          return run([=](C d, C x) {
            const C x2 = x * x;
            const C t = vm::tanh(kSqrt2OverPi * (x + kGeluCoeff * x2 * x));
            const C dinner = kSqrt2OverPi * (C(1) + C(3) * kGeluCoeff * x2);
            return d * (C(0.5) * (C(1) + t) + C(0.5) * x * (C(1) - t * t) * dinner);
          });
        case ActGrad::Silu:
          return run([](C d, C x) {
            const C sg = vm::sigmoid(x);
            return d * sg * (C(1) + x * (C(1) - sg));
          });
        case ActGrad::Tanh:
          return run([](C d, C y) { return d * (C(1) - y * y); });
        case ActGrad::Sigmoid:
          return run([](C d, C y) { return d * (C(1) - y) * y; });
        case ActGrad::Relu:  // threshold_backward: nothing where the result is <= 0
          return run([](C d, C y) { return y <= C(0) ? C(0) : d; });
        case ActGrad::LeakyRelu: {
          const C slope = C(p0);
          return run([slope](C d, C x) { return x > C(0) ? d : d * slope; });
        }
        case ActGrad::Elu: {
          const C alpha = C(p0);
          return run([alpha](C d, C x) { return x > C(0) ? d : d * vm::exp(x) * alpha; });
        }
        case ActGrad::Softplus: {
          const C beta = C(p0), threshold = C(p1);
          return run([beta, threshold](C d, C x) {
            const C bx = x * beta;
            return bx > threshold ? d : d * vm::sigmoid(bx);
          });
        }
      }
    } else {
      throw DTypeError("[activation_backward] expected a floating dtype");
    }
  });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      // A select of the bits under a mask from c: GCC leaves `c ? x : y` on bool and floats as a
      // branch per element (a ReLU mask mispredicts half of them); this vectorizes.
      using U = std::conditional_t<std::is_same_v<T, float>, uint32_t, uint64_t>;
      map<T, bool, T, T>(
          out,
          [](bool c, T x, T y) {
            const U m = U(0) - static_cast<U>(c);
            return std::bit_cast<T>((std::bit_cast<U>(x) & m) | (std::bit_cast<U>(y) & ~m));
          },
          cond, a, b);
    } else {
      map<T, bool, T, T>(
          out, [](bool c, T x, T y) { return c ? x : y; }, cond, a, b);
    }
  });
}

}  // namespace ember::cpu
