// The AVX-512 GEMM micro-kernels, chosen at run time on CPUs that have AVX-512F (see linalg.cpp).
// This file alone is compiled with -mavx512f, so the rest of the library runs on any x86-64 CPU
// the build targets; linalg.cpp calls these only after __builtin_cpu_supports("avx512f").
//
// Tile: 12 rows x 2 vectors (32 floats or 16 doubles) = 24 of the 32 zmm accumulators, plus two B
// vectors and one A broadcast. As in the AVX2 kernel every element is one fma chain in k order,
// and the store follows store_tile's rule, so both kernels give bitwise the same results.
// Twenty-four named registers rather than an array: GCC keeps an array of vectors in memory.
#include "core/cpu/gemm_kernels.hpp"
#include "core/cpu/simd_avx512.hpp"

namespace ember::cpu {
namespace {

template <class C>
bool micro_kernel_avx512(int64_t kc, const C* __restrict a, const C* __restrict b,
                         C* __restrict acc_out, C* c, int64_t sr, int64_t sc, bool full, C alpha,
                         C beta, bool first) {
  using S = Simd512<C>;
  using V = typename S::V;
  constexpr int W = S::W, NR = 2 * W;
  const bool direct = full && sc == 1;
  if (direct)
    for (int i = 0; i < kGemmAvx512MR; ++i) __builtin_prefetch(c + i * sr, 1);
  V c0_0 = S::zero(), c0_1 = S::zero();
  V c1_0 = S::zero(), c1_1 = S::zero();
  V c2_0 = S::zero(), c2_1 = S::zero();
  V c3_0 = S::zero(), c3_1 = S::zero();
  V c4_0 = S::zero(), c4_1 = S::zero();
  V c5_0 = S::zero(), c5_1 = S::zero();
  V c6_0 = S::zero(), c6_1 = S::zero();
  V c7_0 = S::zero(), c7_1 = S::zero();
  V c8_0 = S::zero(), c8_1 = S::zero();
  V c9_0 = S::zero(), c9_1 = S::zero();
  V c10_0 = S::zero(), c10_1 = S::zero();
  V c11_0 = S::zero(), c11_1 = S::zero();
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    const V b0 = S::load(b), b1 = S::load(b + W);
    __builtin_prefetch(b + 8 * NR);
    V ai;
    ai = S::set1(a[0]);
    c0_0 = S::fma(ai, b0, c0_0), c0_1 = S::fma(ai, b1, c0_1);
    ai = S::set1(a[1]);
    c1_0 = S::fma(ai, b0, c1_0), c1_1 = S::fma(ai, b1, c1_1);
    ai = S::set1(a[2]);
    c2_0 = S::fma(ai, b0, c2_0), c2_1 = S::fma(ai, b1, c2_1);
    ai = S::set1(a[3]);
    c3_0 = S::fma(ai, b0, c3_0), c3_1 = S::fma(ai, b1, c3_1);
    ai = S::set1(a[4]);
    c4_0 = S::fma(ai, b0, c4_0), c4_1 = S::fma(ai, b1, c4_1);
    ai = S::set1(a[5]);
    c5_0 = S::fma(ai, b0, c5_0), c5_1 = S::fma(ai, b1, c5_1);
    ai = S::set1(a[6]);
    c6_0 = S::fma(ai, b0, c6_0), c6_1 = S::fma(ai, b1, c6_1);
    ai = S::set1(a[7]);
    c7_0 = S::fma(ai, b0, c7_0), c7_1 = S::fma(ai, b1, c7_1);
    ai = S::set1(a[8]);
    c8_0 = S::fma(ai, b0, c8_0), c8_1 = S::fma(ai, b1, c8_1);
    ai = S::set1(a[9]);
    c9_0 = S::fma(ai, b0, c9_0), c9_1 = S::fma(ai, b1, c9_1);
    ai = S::set1(a[10]);
    c10_0 = S::fma(ai, b0, c10_0), c10_1 = S::fma(ai, b1, c10_1);
    ai = S::set1(a[11]);
    c11_0 = S::fma(ai, b0, c11_0), c11_1 = S::fma(ai, b1, c11_1);
    a += kGemmAvx512MR;
    b += NR;
  }
  if (direct) {
    const V va = S::set1(alpha), vb = S::set1(beta);
    auto put = [&](C* o, V v) {
      if (!first)
        S::store(o, S::fma(va, v, S::load(o)));
      else if (beta == C(0))
        S::store(o, S::mul(va, v));  // beta == 0 ignores the old contents
      else
        S::store(o, S::fma(va, v, S::mul(vb, S::load(o))));
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
  S::store(acc_out + 0 * NR, c0_0), S::store(acc_out + 0 * NR + W, c0_1);
  S::store(acc_out + 1 * NR, c1_0), S::store(acc_out + 1 * NR + W, c1_1);
  S::store(acc_out + 2 * NR, c2_0), S::store(acc_out + 2 * NR + W, c2_1);
  S::store(acc_out + 3 * NR, c3_0), S::store(acc_out + 3 * NR + W, c3_1);
  S::store(acc_out + 4 * NR, c4_0), S::store(acc_out + 4 * NR + W, c4_1);
  S::store(acc_out + 5 * NR, c5_0), S::store(acc_out + 5 * NR + W, c5_1);
  S::store(acc_out + 6 * NR, c6_0), S::store(acc_out + 6 * NR + W, c6_1);
  S::store(acc_out + 7 * NR, c7_0), S::store(acc_out + 7 * NR + W, c7_1);
  S::store(acc_out + 8 * NR, c8_0), S::store(acc_out + 8 * NR + W, c8_1);
  S::store(acc_out + 9 * NR, c9_0), S::store(acc_out + 9 * NR + W, c9_1);
  S::store(acc_out + 10 * NR, c10_0), S::store(acc_out + 10 * NR + W, c10_1);
  S::store(acc_out + 11 * NR, c11_0), S::store(acc_out + 11 * NR + W, c11_1);
  return false;
}

}  // namespace

bool micro_kernel_avx512_f32(int64_t kc, const float* __restrict a, const float* __restrict b,
                             float* __restrict acc_out, float* c, int64_t sr, int64_t sc,
                             bool full, float alpha, float beta, bool first) {
  return micro_kernel_avx512<float>(kc, a, b, acc_out, c, sr, sc, full, alpha, beta, first);
}

bool micro_kernel_avx512_f64(int64_t kc, const double* __restrict a, const double* __restrict b,
                             double* __restrict acc_out, double* c, int64_t sr, int64_t sc,
                             bool full, double alpha, double beta, bool first) {
  return micro_kernel_avx512<double>(kc, a, b, acc_out, c, sr, sc, full, alpha, beta, first);
}

}  // namespace ember::cpu
