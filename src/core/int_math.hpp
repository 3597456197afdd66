// Integer arithmetic shared by the CPU and CUDA elementwise kernels: wrapping add/sub/mul (as two's
// complement, computed in the unsigned type so overflow is never undefined behaviour), integer
// pow by squaring with PyTorch's rule for negative exponents, and a double bound saturated into an
// integer type. Host and device functions under nvcc, plain inline functions otherwise.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#ifdef __CUDACC__
#define EMBER_HOST_DEVICE __host__ __device__
#else
#define EMBER_HOST_DEVICE
#endif

namespace ember::int_math {

template <class T>
EMBER_HOST_DEVICE inline T wrap_add(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
}
template <class T>
EMBER_HOST_DEVICE inline T wrap_sub(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) - static_cast<U>(b)));
}
template <class T>
EMBER_HOST_DEVICE inline T wrap_mul(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
}

/// base^e by squaring. Negative e follows PyTorch's integer pow: 1 for base 1, +-1 for base -1,
/// 0 otherwise.
template <class T>
EMBER_HOST_DEVICE inline T int_pow(T base, int64_t e) {
  if (e < 0) {
    if (base == T(1)) return T(1);
    if constexpr (std::is_signed_v<T>) {
      if (base == T(-1)) return (e & 1) ? T(-1) : T(1);
    }
    return T(0);
  }
  T result = T(1);
  while (e > 0) {
    if (e & 1) result = wrap_mul(result, base);
    base = wrap_mul(base, base);
    e >>= 1;
  }
  return result;
}

/// A double bound clamped into T's range (clamp(int8, max=1000) keeps every element); host only.
template <class T>
inline T saturate(double v) {
  if (std::isnan(v)) return T(0);
  if (v <= static_cast<double>(std::numeric_limits<T>::lowest()))
    return std::numeric_limits<T>::lowest();
  if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

}  // namespace ember::int_math
