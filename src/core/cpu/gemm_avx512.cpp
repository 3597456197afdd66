// The AVX-512 GEMM micro-kernels, chosen at run time on CPUs that have AVX-512F (see linalg.cpp).
// This file alone is compiled with -mavx512f, so the rest of the library runs on any x86-64 CPU
// the build targets; linalg.cpp calls these only after __builtin_cpu_supports("avx512f").
//
// Tile: 12 rows x 2 vectors (32 floats or 16 doubles) = 24 of the 32 zmm accumulators, plus two B
// vectors and one A broadcast. As in the AVX2 kernel every element is one fma chain in k order,
// and the store follows store_tile's rule, so both kernels give bitwise the same results.
// Twenty-four named registers rather than an array: GCC keeps an array of vectors in memory.
#include <immintrin.h>

#include "core/cpu/gemm_kernels.hpp"

namespace ember::cpu {

bool micro_kernel_avx512_f32(int64_t kc, const float* __restrict a, const float* __restrict b,
                             float* __restrict acc_out, float* c, int64_t sr, int64_t sc,
                             bool full, float alpha, float beta, bool first) {
  constexpr int W = 16, NR = 2 * W;
  const bool direct = full && sc == 1;
  if (direct)
    for (int i = 0; i < kGemmAvx512MR; ++i) __builtin_prefetch(c + i * sr, 1);
  __m512 c0_0 = _mm512_setzero_ps(), c0_1 = _mm512_setzero_ps();
  __m512 c1_0 = _mm512_setzero_ps(), c1_1 = _mm512_setzero_ps();
  __m512 c2_0 = _mm512_setzero_ps(), c2_1 = _mm512_setzero_ps();
  __m512 c3_0 = _mm512_setzero_ps(), c3_1 = _mm512_setzero_ps();
  __m512 c4_0 = _mm512_setzero_ps(), c4_1 = _mm512_setzero_ps();
  __m512 c5_0 = _mm512_setzero_ps(), c5_1 = _mm512_setzero_ps();
  __m512 c6_0 = _mm512_setzero_ps(), c6_1 = _mm512_setzero_ps();
  __m512 c7_0 = _mm512_setzero_ps(), c7_1 = _mm512_setzero_ps();
  __m512 c8_0 = _mm512_setzero_ps(), c8_1 = _mm512_setzero_ps();
  __m512 c9_0 = _mm512_setzero_ps(), c9_1 = _mm512_setzero_ps();
  __m512 c10_0 = _mm512_setzero_ps(), c10_1 = _mm512_setzero_ps();
  __m512 c11_0 = _mm512_setzero_ps(), c11_1 = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + W);
    __builtin_prefetch(b + 8 * NR);
    __m512 ai;
    ai = _mm512_set1_ps(a[0]);
    c0_0 = _mm512_fmadd_ps(ai, b0, c0_0), c0_1 = _mm512_fmadd_ps(ai, b1, c0_1);
    ai = _mm512_set1_ps(a[1]);
    c1_0 = _mm512_fmadd_ps(ai, b0, c1_0), c1_1 = _mm512_fmadd_ps(ai, b1, c1_1);
    ai = _mm512_set1_ps(a[2]);
    c2_0 = _mm512_fmadd_ps(ai, b0, c2_0), c2_1 = _mm512_fmadd_ps(ai, b1, c2_1);
    ai = _mm512_set1_ps(a[3]);
    c3_0 = _mm512_fmadd_ps(ai, b0, c3_0), c3_1 = _mm512_fmadd_ps(ai, b1, c3_1);
    ai = _mm512_set1_ps(a[4]);
    c4_0 = _mm512_fmadd_ps(ai, b0, c4_0), c4_1 = _mm512_fmadd_ps(ai, b1, c4_1);
    ai = _mm512_set1_ps(a[5]);
    c5_0 = _mm512_fmadd_ps(ai, b0, c5_0), c5_1 = _mm512_fmadd_ps(ai, b1, c5_1);
    ai = _mm512_set1_ps(a[6]);
    c6_0 = _mm512_fmadd_ps(ai, b0, c6_0), c6_1 = _mm512_fmadd_ps(ai, b1, c6_1);
    ai = _mm512_set1_ps(a[7]);
    c7_0 = _mm512_fmadd_ps(ai, b0, c7_0), c7_1 = _mm512_fmadd_ps(ai, b1, c7_1);
    ai = _mm512_set1_ps(a[8]);
    c8_0 = _mm512_fmadd_ps(ai, b0, c8_0), c8_1 = _mm512_fmadd_ps(ai, b1, c8_1);
    ai = _mm512_set1_ps(a[9]);
    c9_0 = _mm512_fmadd_ps(ai, b0, c9_0), c9_1 = _mm512_fmadd_ps(ai, b1, c9_1);
    ai = _mm512_set1_ps(a[10]);
    c10_0 = _mm512_fmadd_ps(ai, b0, c10_0), c10_1 = _mm512_fmadd_ps(ai, b1, c10_1);
    ai = _mm512_set1_ps(a[11]);
    c11_0 = _mm512_fmadd_ps(ai, b0, c11_0), c11_1 = _mm512_fmadd_ps(ai, b1, c11_1);
    a += kGemmAvx512MR;
    b += NR;
  }
  if (direct) {
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    auto put = [&](float* o, __m512 v) {
      if (!first)
        _mm512_storeu_ps(o, _mm512_fmadd_ps(va, v, _mm512_loadu_ps(o)));
      else if (beta == float(0))
        _mm512_storeu_ps(o, _mm512_mul_ps(va, v));  // beta == 0 ignores the old contents
      else
        _mm512_storeu_ps(o, _mm512_fmadd_ps(va, v, _mm512_mul_ps(vb, _mm512_loadu_ps(o))));
    };
    put(c + 0 * sr, c0_0), put(c + 0 * sr + W, c0_1);
    put(c + 1 * sr, c1_0), put(c + 1 * sr + W, c1_1);
    put(c + 2 * sr, c2_0), put(c + 2 * sr + W, c2_1);
    put(c + 3 * sr, c3_0), put(c + 3 * sr + W, c3_1);
    put(c + 4 * sr, c4_0), put(c + 4 * sr + W, c4_1);
    put(c + 5 * sr, c5_0), put(c + 5 * sr + W, c5_1);
    put(c + 6 * sr, c6_0), put(c + 6 * sr + W, c6_1);
    put(c + 7 * sr, c7_0), put(c + 7 * sr + W, c7_1);
    put(c + 8 * sr, c8_0), put(c + 8 * sr + W, c8_1);
    put(c + 9 * sr, c9_0), put(c + 9 * sr + W, c9_1);
    put(c + 10 * sr, c10_0), put(c + 10 * sr + W, c10_1);
    put(c + 11 * sr, c11_0), put(c + 11 * sr + W, c11_1);
    return true;
  }
  _mm512_storeu_ps(acc_out + 0 * NR, c0_0), _mm512_storeu_ps(acc_out + 0 * NR + W, c0_1);
  _mm512_storeu_ps(acc_out + 1 * NR, c1_0), _mm512_storeu_ps(acc_out + 1 * NR + W, c1_1);
  _mm512_storeu_ps(acc_out + 2 * NR, c2_0), _mm512_storeu_ps(acc_out + 2 * NR + W, c2_1);
  _mm512_storeu_ps(acc_out + 3 * NR, c3_0), _mm512_storeu_ps(acc_out + 3 * NR + W, c3_1);
  _mm512_storeu_ps(acc_out + 4 * NR, c4_0), _mm512_storeu_ps(acc_out + 4 * NR + W, c4_1);
  _mm512_storeu_ps(acc_out + 5 * NR, c5_0), _mm512_storeu_ps(acc_out + 5 * NR + W, c5_1);
  _mm512_storeu_ps(acc_out + 6 * NR, c6_0), _mm512_storeu_ps(acc_out + 6 * NR + W, c6_1);
  _mm512_storeu_ps(acc_out + 7 * NR, c7_0), _mm512_storeu_ps(acc_out + 7 * NR + W, c7_1);
  _mm512_storeu_ps(acc_out + 8 * NR, c8_0), _mm512_storeu_ps(acc_out + 8 * NR + W, c8_1);
  _mm512_storeu_ps(acc_out + 9 * NR, c9_0), _mm512_storeu_ps(acc_out + 9 * NR + W, c9_1);
  _mm512_storeu_ps(acc_out + 10 * NR, c10_0), _mm512_storeu_ps(acc_out + 10 * NR + W, c10_1);
  _mm512_storeu_ps(acc_out + 11 * NR, c11_0), _mm512_storeu_ps(acc_out + 11 * NR + W, c11_1);
  return false;
}

bool micro_kernel_avx512_f64(int64_t kc, const double* __restrict a, const double* __restrict b,
                             double* __restrict acc_out, double* c, int64_t sr, int64_t sc,
                             bool full, double alpha, double beta, bool first) {
  constexpr int W = 8, NR = 2 * W;
  const bool direct = full && sc == 1;
  if (direct)
    for (int i = 0; i < kGemmAvx512MR; ++i) __builtin_prefetch(c + i * sr, 1);
  __m512d c0_0 = _mm512_setzero_pd(), c0_1 = _mm512_setzero_pd();
  __m512d c1_0 = _mm512_setzero_pd(), c1_1 = _mm512_setzero_pd();
  __m512d c2_0 = _mm512_setzero_pd(), c2_1 = _mm512_setzero_pd();
  __m512d c3_0 = _mm512_setzero_pd(), c3_1 = _mm512_setzero_pd();
  __m512d c4_0 = _mm512_setzero_pd(), c4_1 = _mm512_setzero_pd();
  __m512d c5_0 = _mm512_setzero_pd(), c5_1 = _mm512_setzero_pd();
  __m512d c6_0 = _mm512_setzero_pd(), c6_1 = _mm512_setzero_pd();
  __m512d c7_0 = _mm512_setzero_pd(), c7_1 = _mm512_setzero_pd();
  __m512d c8_0 = _mm512_setzero_pd(), c8_1 = _mm512_setzero_pd();
  __m512d c9_0 = _mm512_setzero_pd(), c9_1 = _mm512_setzero_pd();
  __m512d c10_0 = _mm512_setzero_pd(), c10_1 = _mm512_setzero_pd();
  __m512d c11_0 = _mm512_setzero_pd(), c11_1 = _mm512_setzero_pd();
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    const __m512d b0 = _mm512_loadu_pd(b), b1 = _mm512_loadu_pd(b + W);
    __builtin_prefetch(b + 8 * NR);
    __m512d ai;
    ai = _mm512_set1_pd(a[0]);
    c0_0 = _mm512_fmadd_pd(ai, b0, c0_0), c0_1 = _mm512_fmadd_pd(ai, b1, c0_1);
    ai = _mm512_set1_pd(a[1]);
    c1_0 = _mm512_fmadd_pd(ai, b0, c1_0), c1_1 = _mm512_fmadd_pd(ai, b1, c1_1);
    ai = _mm512_set1_pd(a[2]);
    c2_0 = _mm512_fmadd_pd(ai, b0, c2_0), c2_1 = _mm512_fmadd_pd(ai, b1, c2_1);
    ai = _mm512_set1_pd(a[3]);
    c3_0 = _mm512_fmadd_pd(ai, b0, c3_0), c3_1 = _mm512_fmadd_pd(ai, b1, c3_1);
    ai = _mm512_set1_pd(a[4]);
    c4_0 = _mm512_fmadd_pd(ai, b0, c4_0), c4_1 = _mm512_fmadd_pd(ai, b1, c4_1);
    ai = _mm512_set1_pd(a[5]);
    c5_0 = _mm512_fmadd_pd(ai, b0, c5_0), c5_1 = _mm512_fmadd_pd(ai, b1, c5_1);
    ai = _mm512_set1_pd(a[6]);
    c6_0 = _mm512_fmadd_pd(ai, b0, c6_0), c6_1 = _mm512_fmadd_pd(ai, b1, c6_1);
    ai = _mm512_set1_pd(a[7]);
    c7_0 = _mm512_fmadd_pd(ai, b0, c7_0), c7_1 = _mm512_fmadd_pd(ai, b1, c7_1);
    ai = _mm512_set1_pd(a[8]);
    c8_0 = _mm512_fmadd_pd(ai, b0, c8_0), c8_1 = _mm512_fmadd_pd(ai, b1, c8_1);
    ai = _mm512_set1_pd(a[9]);
    c9_0 = _mm512_fmadd_pd(ai, b0, c9_0), c9_1 = _mm512_fmadd_pd(ai, b1, c9_1);
    ai = _mm512_set1_pd(a[10]);
    c10_0 = _mm512_fmadd_pd(ai, b0, c10_0), c10_1 = _mm512_fmadd_pd(ai, b1, c10_1);
    ai = _mm512_set1_pd(a[11]);
    c11_0 = _mm512_fmadd_pd(ai, b0, c11_0), c11_1 = _mm512_fmadd_pd(ai, b1, c11_1);
    a += kGemmAvx512MR;
    b += NR;
  }
  if (direct) {
    const __m512d va = _mm512_set1_pd(alpha), vb = _mm512_set1_pd(beta);
    auto put = [&](double* o, __m512d v) {
      if (!first)
        _mm512_storeu_pd(o, _mm512_fmadd_pd(va, v, _mm512_loadu_pd(o)));
      else if (beta == double(0))
        _mm512_storeu_pd(o, _mm512_mul_pd(va, v));  // beta == 0 ignores the old contents
      else
        _mm512_storeu_pd(o, _mm512_fmadd_pd(va, v, _mm512_mul_pd(vb, _mm512_loadu_pd(o))));
    };
    put(c + 0 * sr, c0_0), put(c + 0 * sr + W, c0_1);
    put(c + 1 * sr, c1_0), put(c + 1 * sr + W, c1_1);
    put(c + 2 * sr, c2_0), put(c + 2 * sr + W, c2_1);
    put(c + 3 * sr, c3_0), put(c + 3 * sr + W, c3_1);
    put(c + 4 * sr, c4_0), put(c + 4 * sr + W, c4_1);
    put(c + 5 * sr, c5_0), put(c + 5 * sr + W, c5_1);
    put(c + 6 * sr, c6_0), put(c + 6 * sr + W, c6_1);
    put(c + 7 * sr, c7_0), put(c + 7 * sr + W, c7_1);
    put(c + 8 * sr, c8_0), put(c + 8 * sr + W, c8_1);
    put(c + 9 * sr, c9_0), put(c + 9 * sr + W, c9_1);
    put(c + 10 * sr, c10_0), put(c + 10 * sr + W, c10_1);
    put(c + 11 * sr, c11_0), put(c + 11 * sr + W, c11_1);
    return true;
  }
  _mm512_storeu_pd(acc_out + 0 * NR, c0_0), _mm512_storeu_pd(acc_out + 0 * NR + W, c0_1);
  _mm512_storeu_pd(acc_out + 1 * NR, c1_0), _mm512_storeu_pd(acc_out + 1 * NR + W, c1_1);
  _mm512_storeu_pd(acc_out + 2 * NR, c2_0), _mm512_storeu_pd(acc_out + 2 * NR + W, c2_1);
  _mm512_storeu_pd(acc_out + 3 * NR, c3_0), _mm512_storeu_pd(acc_out + 3 * NR + W, c3_1);
  _mm512_storeu_pd(acc_out + 4 * NR, c4_0), _mm512_storeu_pd(acc_out + 4 * NR + W, c4_1);
  _mm512_storeu_pd(acc_out + 5 * NR, c5_0), _mm512_storeu_pd(acc_out + 5 * NR + W, c5_1);
  _mm512_storeu_pd(acc_out + 6 * NR, c6_0), _mm512_storeu_pd(acc_out + 6 * NR + W, c6_1);
  _mm512_storeu_pd(acc_out + 7 * NR, c7_0), _mm512_storeu_pd(acc_out + 7 * NR + W, c7_1);
  _mm512_storeu_pd(acc_out + 8 * NR, c8_0), _mm512_storeu_pd(acc_out + 8 * NR + W, c8_1);
  _mm512_storeu_pd(acc_out + 9 * NR, c9_0), _mm512_storeu_pd(acc_out + 9 * NR + W, c9_1);
  _mm512_storeu_pd(acc_out + 10 * NR, c10_0), _mm512_storeu_pd(acc_out + 10 * NR + W, c10_1);
  _mm512_storeu_pd(acc_out + 11 * NR, c11_0), _mm512_storeu_pd(acc_out + 11 * NR + W, c11_1);
  return false;
}

}  // namespace ember::cpu
