// cuda_emu: bfloat16 (__nv_bfloat16) storage and its conversions, bit-exact with round to
// nearest even.
#pragma once

#include <cstdint>
#include <cstring>

#include "cuda_fp16.h"
#include "cuda_runtime.h"

struct __nv_bfloat16 {
  unsigned short __x;
};
struct __nv_bfloat162 {
  __nv_bfloat16 x, y;
};

namespace ember_emu {

/// float -> bfloat16 bits, round to nearest even; NaN -> 0x7fff (CUDA's canonical NaN).
inline unsigned short float_to_bf16_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<unsigned short>(x >> 16);
}

inline float bf16_bits_to_float(unsigned short b) {
  const uint32_t x = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

}  // namespace ember_emu

inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16{ember_emu::float_to_bf16_bits(f)}; }
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
inline float __bfloat162float(__nv_bfloat16 b) { return ember_emu::bf16_bits_to_float(b.__x); }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return __nv_bfloat16{u}; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.__x; }
inline __nv_bfloat16 __short_as_bfloat16(short s) { return __nv_bfloat16{static_cast<unsigned short>(s)}; }
inline short __bfloat16_as_short(__nv_bfloat16 b) { return static_cast<short>(b.__x); }
