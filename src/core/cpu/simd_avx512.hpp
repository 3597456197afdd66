// AVX-512 vectors of float and double behind one interface, for the translation units compiled
// with -mavx512f (gemm_avx512.cpp, conv_direct_avx512.cpp); include it from no other file.
// Internal linkage, so each such file has its own copy and nothing built for AVX-512 can be
// chosen by the linker for code that runs on other CPUs.
#pragma once

// GCC 12's _mm512_reduce_add_* pass an undefined vector through a masked extract, which
// -Wuninitialized reports once inlined; the value is never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

namespace ember::cpu {
namespace {

template <class C>
struct Simd512;

template <>
struct Simd512<float> {
  using T = float;
  using V = __m512;
  static constexpr int W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static float reduce_add(V v) { return _mm512_reduce_add_ps(v); }
};

template <>
struct Simd512<double> {
  using T = double;
  using V = __m512d;
  static constexpr int W = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V set1(double v) { return _mm512_set1_pd(v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static double reduce_add(V v) { return _mm512_reduce_add_pd(v); }
};

}  // namespace
}  // namespace ember::cpu
