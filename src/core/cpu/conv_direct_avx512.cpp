// The AVX-512 tiles of the direct convolution (conv_direct.hpp), chosen at run time on CPUs with
// AVX-512F. This file alone is compiled with -mavx512f.
//
// Forward tile: 8 output channels x 3 vectors of positions (48 floats or 24 doubles) = 24 of the
// 32 zmm accumulators, three B vectors and one broadcast. Weight-gradient tile: 4 output channels
// x 6 taps = 24 accumulators over positions, six B vectors and one dY vector.
// GCC 12's _mm512_reduce_add_* pass an undefined vector through a masked extract, which
// -Wuninitialized reports once inlined here; the value is never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "core/cpu/conv_direct.hpp"

namespace ember::cpu {
namespace {

struct Avx512F32 {
  using T = float;
  using V = __m512;
  static constexpr int W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static float reduce_add(V v) { return _mm512_reduce_add_ps(v); }
};

struct Avx512F64 {
  using T = double;
  using V = __m512d;
  static constexpr int W = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V set1(double v) { return _mm512_set1_pd(v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static double reduce_add(V v) { return _mm512_reduce_add_pd(v); }
};

}  // namespace

ConvDirectTiles<float> conv_direct_tiles_avx512_f32() {
  return conv_direct_detail::make_tiles<Avx512F32, 8, 4, 6>();
}

ConvDirectTiles<double> conv_direct_tiles_avx512_f64() {
  return conv_direct_detail::make_tiles<Avx512F64, 8, 4, 6>();
}

}  // namespace ember::cpu
