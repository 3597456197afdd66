// Float32 exp, expm1, tanh, sigmoid and erf written so that a plain loop over them vectorizes:
// only arithmetic, fma, bit casts and selects, no calls and no branches (no std::fmin/fmax, no
// x != x tests: GCC 12 does not vectorize those; a NaN input flows through the arithmetic instead).
// glibc's expf/tanhf/erff are scalar calls, which keep -O3 from vectorizing the loops around them.
//
// exp:   n = round(x / ln 2) with the 1.5 * 2^23 shift trick, r = x - n ln 2 (Cody-Waite, two
//        constants), e^r from Cephes expf's degree-7 polynomial, times 2^n applied in two halves
//        so that results near the overflow and subnormal ends are still right.
// expm1: the same reduction; e^x - 1 = 2^n (e^r - 1) + (2^n - 1) in one fma, so small |x| keeps
//        full relative precision (n = 0 gives e^r - 1 itself).
// tanh:  -t / (t + 2) with t = expm1(-2|x|), sign restored; sigmoid from exp(-|x|).
// erf:   x P(x^2) below 1 and 1 - exp(Q(|x| - 2.5)) up to 4 (tools/fit_erf.py made P and Q).
// Each stays within a few ulp of the correctly rounded result; tests/core/test_vec_math.cpp
// sweeps millions of inputs against the double-precision library functions.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace ember::cpu::vm {

/// 2^n for integer n in [-126, 127], as a float.
[[gnu::always_inline]] inline float pow2i(int32_t n) { return std::bit_cast<float>(static_cast<uint32_t>(n + 127) << 23); }

/// Reduction shared by exp and expm1: x = n ln 2 + r with |r| <= ln2 / 2; returns n, sets r.
[[gnu::always_inline]] inline int32_t reduce_ln2(float x, float& r) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  const float t = std::fma(x, kLog2e, kShift);
  const float n = t - kShift;
  r = std::fma(-n, kLn2Hi, x);
  r = std::fma(-n, kLn2Lo, r);
  return std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kShift);
}

/// (e^r - 1 - r) / r^2 for |r| <= ln2 / 2 (Cephes expf's coefficients).
[[gnu::always_inline]] inline float expm1_tail(float r) {
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  return p;
}

/// lo <= x <= hi by selects (a NaN stays NaN and then flows through the arithmetic; std::fmin and
/// std::fmax would drop it, and GCC does not vectorize them).
[[gnu::always_inline]] inline float clamp_f32(float x, float lo, float hi) {
  x = x < lo ? lo : x;
  return x > hi ? hi : x;
}

[[gnu::always_inline]] inline float exp_f32(float x) {
  const float xc = clamp_f32(x, -104.0f, 89.0f);
  float r;
  const int32_t n = reduce_ln2(xc, r);
  const float p = std::fma(expm1_tail(r), r * r, r) + 1.0f;
  const int32_t n1 = n >> 1;  // n in [-150, 129]: two in-range halves
  return p * pow2i(n1) * pow2i(n - n1);
}

[[gnu::always_inline]] inline float expm1_f32(float x) {
  const float xc = clamp_f32(x, -30.0f, 88.8f);
  float r;
  const int32_t n = reduce_ln2(xc, r);  // n in [-43, 128]
  const float em1r = std::fma(expm1_tail(r), r * r, r);
  const bool big = n > 64;  // 2^n overflows at 128: scale in two steps there
  const float s = pow2i(big ? n - 64 : n);
  const float y_big = std::fma(s, em1r, s) * 1.8446744e19f;  // 2^64
  const float y_small = std::fma(s, em1r, s - 1.0f);
  const float y = big ? y_big : y_small;
  return x > 88.72284f ? INFINITY : y;
}

[[gnu::always_inline]] inline float tanh_f32(float x) {
  const float t = expm1_f32(-2.0f * std::fabs(x));
  return std::copysign(-t / (t + 2.0f), x);
}

/// 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) below, so neither side overflows or loses the
/// subnormal tail.
[[gnu::always_inline]] inline float sigmoid_f32(float x) {
  const float e = exp_f32(-std::fabs(x));
  const float y = 1.0f / (1.0f + e);
  return x >= 0.0f ? y : e * y;
}

[[gnu::always_inline]] inline float erf_f32(float x) {
  const float a = std::fabs(x);
  const float s = x * x;
  float p = 7.898201874922961e-05f;
  p = std::fma(p, s, -0.000802435155492276f);
  p = std::fma(p, s, 0.0051900530233979225f);
  p = std::fma(p, s, -0.026854807510972023f);
  p = std::fma(p, s, 0.11283612251281738f);
  p = std::fma(p, s, -0.3761262893676758f);
  p = std::fma(p, s, 1.128379225730896f);
  const float u = (a > 4.0f ? 4.0f : a) - 2.5f;
  float q = -4.1048540566634983e-08f;
  q = std::fma(q, u, -6.582858702586236e-08f);
  q = std::fma(q, u, 1.8449596836944693e-06f);
  q = std::fma(q, u, -1.2976132893527392e-05f);
  q = std::fma(q, u, 7.693984662182629e-05f);
  q = std::fma(q, u, -0.00042070692870765924f);
  q = std::fma(q, u, 0.002165525685995817f);
  q = std::fma(q, u, -0.010858165100216866f);
  q = std::fma(q, u, -0.9438937306404114f);
  q = std::fma(q, u, -5.352680683135986f);
  q = std::fma(q, u, -7.806815147399902f);
  const float big = a >= 4.0f ? 1.0f : 1.0f - exp_f32(q);
  return a < 1.0f ? x * p : std::copysign(big, x);
}

// ---- the functions by compute type: float takes the versions above, double the library's ----

template <class C>
[[gnu::always_inline]] inline C exp(C x) {
  if constexpr (std::is_same_v<C, float>) return exp_f32(x);
  else return std::exp(x);
}
template <class C>
[[gnu::always_inline]] inline C expm1(C x) {
  if constexpr (std::is_same_v<C, float>) return expm1_f32(x);
  else return std::expm1(x);
}
template <class C>
[[gnu::always_inline]] inline C tanh(C x) {
  if constexpr (std::is_same_v<C, float>) return tanh_f32(x);
  else return std::tanh(x);
}
template <class C>
[[gnu::always_inline]] inline C sigmoid(C x) {
  if constexpr (std::is_same_v<C, float>) return sigmoid_f32(x);
  else return C(1) / (C(1) + std::exp(-x));
}
template <class C>
[[gnu::always_inline]] inline C erf(C x) {
  if constexpr (std::is_same_v<C, float>) return erf_f32(x);
  else return std::erf(x);
}

}  // namespace ember::cpu::vm
