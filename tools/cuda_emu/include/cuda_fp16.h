// cuda_emu: float16 (__half) storage and its conversions, bit-exact with round to nearest even.
#pragma once

#include <cstdint>
#include <cstring>

#include "cuda_runtime.h"

struct __half {
  unsigned short __x;
};
struct __half2 {
  __half x, y;
};

namespace ember_emu {

/// float -> binary16 bits, round to nearest even; NaN -> 0x7fff (CUDA's canonical NaN).
inline unsigned short float_to_half_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return 0x7fffu;
  if (ax >= 0x477ff000u) return static_cast<unsigned short>(sign | 0x7c00u);  // >= 65520: inf
  if (ax <= 0x33000000u) return static_cast<unsigned short>(sign);            // <= 2^-25: 0
  const uint32_t e = ax >> 23;
  const uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
  uint32_t h, rem, half;
  if (e < 113) {  // below 2^-14: a subnormal half, units of 2^-24
    const uint32_t shift = 126 - e;  // 14..24
    h = mant >> shift;
    rem = mant & ((1u << shift) - 1u);
    half = 1u << (shift - 1);
  } else {
    h = ((e - 112) << 10) | ((ax >> 13) & 0x3ffu);
    rem = ax & 0x1fffu;
    half = 0x1000u;
  }
  if (rem > half || (rem == half && (h & 1u))) ++h;  // a carry into the exponent is right
  return static_cast<unsigned short>(sign | h);
}

inline float half_bits_to_float(unsigned short h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  uint32_t m = h & 0x3ffu;
  uint32_t x;
  if (e == 0x1f) {
    x = sign | 0x7f800000u | (m << 13);
  } else if (e != 0) {
    x = sign | ((e + 112) << 23) | (m << 13);
  } else if (m == 0) {
    x = sign;
  } else {  // subnormal: normalize
    int exp = 113;
    while ((m & 0x400u) == 0) m <<= 1, --exp;
    x = sign | (static_cast<uint32_t>(exp) << 23) | ((m & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

}  // namespace ember_emu

inline __half __float2half_rn(float f) { return __half{ember_emu::float_to_half_bits(f)}; }
inline __half __float2half(float f) { return __float2half_rn(f); }
inline float __half2float(__half h) { return ember_emu::half_bits_to_float(h.__x); }
inline __half __ushort_as_half(unsigned short u) { return __half{u}; }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __short_as_half(short s) { return __half{static_cast<unsigned short>(s)}; }
inline short __half_as_short(__half h) { return static_cast<short>(h.__x); }
inline bool __hisnan(__half h) { return (h.__x & 0x7fffu) > 0x7c00u; }
