// The register tiles of the direct convolution (conv_direct.cpp), written once over a SIMD traits
// type and instantiated per instruction set: conv_direct.cpp for what the build targets (AVX2 or
// portable loops), conv_direct_avx512.cpp for AVX-512 (that file alone is compiled with
// -mavx512f). Internal to src/core/cpu.
//
// The input of one sample lives in a zero-padded "phase" buffer: for stride (sh, sw) the padded
// image is split into sh*sw phase planes of (Hq, Wq) = (ceil(Hp/sh), ceil(Wp/sw)), plane (a, b)
// holding padded pixels (i*sh + a, j*sw + b). Output pixel (oh, ow) sits at virtual position
// p = oh*Wq + ow, and tap j = (c, r, s) of every output pixel reads buf[off[j] + p] with
// off[j] = ((c*sh + (r*dh) % sh)*sw + (s*dw) % sw)*Hq*Wq + (r*dh / sh)*Wq + s*dw / sw. So each
// tap's values for a run of consecutive output pixels are one contiguous slice of the buffer: the
// GEMM's B operand is read straight from the image, never packed. Positions with ow >= OW are
// computed and thrown away (Wq - OW of every Wq).
#pragma once

#include <cstdint>

#include "core/cpu/gemm_kernels.hpp"

namespace ember::cpu {

/// One instruction set's direct-convolution tiles for element type C.
template <class C>
struct ConvDirectTiles {
  /// acc(mr, nv vectors) = sum over j < kc of a[j*mr + i] * b[off[j] + v*lanes + l], into
  /// c[i*ldc + v*lanes + l] (full vectors; c has room). accumulate: acc starts from c's values,
  /// so the sum is one fma chain over j however the caller splits it.
  using Forward = void (*)(int64_t kc, const C* a, const C* b, const int64_t* off, C* c,
                           int64_t ldc, bool accumulate);
  /// acc(nj taps, mv vectors of output channels), tap j's row at acc[j*ldacc], = (accumulate ?
  /// acc : 0) + the sum over samples s < ns, rows oh < OH and columns ow < OW of
  /// b[s*b_ns + off[j] + oh*Wq + ow] * dyt[s*dyt_ns + (oh*OW + ow)*ldo + v*lanes + l]: one fma
  /// chain per element in (s, oh, ow) order, the same for every tile and instruction set.
  using WeightGrad = void (*)(int64_t ns, int64_t OH, int64_t OW, int64_t Wq, const C* dyt,
                              int64_t dyt_ns, int64_t ldo, const C* b, int64_t b_ns,
                              const int64_t* off, C* acc, int64_t ldacc, bool accumulate);
  int mr = 0, lanes = 0, nv = 0;  // forward tile: mr rows x nv vectors of `lanes`
  Forward forward[4] = {};        // forward[v] for v = 1..nv vectors
  /// Narrower forward tiles for GEMMs with fewer rows than mr (one output channel of a
  /// generator's last layer would fill 1 of 8 rows): small_forward[m][v] has 1 << m rows.
  Forward small_forward[3][4] = {};
  /// A wide_mr x 4-vector tile (null where the registers do not allow it) for GEMMs of exactly
  /// four vectors of positions per sample (7x7 outputs: 63 virtual positions), which the mr x nv
  /// tiles would cover as 2 + 2 vectors, a tile with too few accumulators per load.
  int wide_mr = 0;
  Forward wide[5] = {};  // wide[4]; the others null
  int nj = 0;                      // weight-gradient tile: nj taps x mv vectors of channels
  WeightGrad weight_grad[3] = {};  // weight_grad[mv], mv = 1, 2
};

/// The AVX-512 tiles (call only when gemm_isa_available(GemmIsa::Avx512)).
ConvDirectTiles<float> conv_direct_tiles_avx512_f32();
ConvDirectTiles<double> conv_direct_tiles_avx512_f64();

namespace conv_direct_detail {

// Eight accumulator rows of up to four vectors as named variables (an array of vectors stays in
// memory with GCC); rows >= MR and vectors >= NV are dead code the compiler drops.
#define EMBER_CONV_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

template <class S, int MR, int NV>
void forward_tile(int64_t kc, const typename S::T* __restrict a, const typename S::T* b,
                  const int64_t* __restrict off, typename S::T* c, int64_t ldc, bool accumulate) {
  using V = typename S::V;
  static_assert(MR >= 1 && MR <= 8 && NV >= 1 && NV <= 4 && MR * NV <= 24);
  constexpr int W = S::W;
#define EMBER_CONV_DECL(i) \
  V c##i##_0 = S::zero(), c##i##_1 = S::zero(), c##i##_2 = S::zero(), c##i##_3 = S::zero();
  EMBER_CONV_ROWS(EMBER_CONV_DECL)
#undef EMBER_CONV_DECL
  if (accumulate) {
#define EMBER_CONV_LOAD(i)                                            \
  if constexpr (i < MR) {                                             \
    c##i##_0 = S::load(c + i * ldc);                                  \
    if constexpr (NV > 1) c##i##_1 = S::load(c + i * ldc + W);        \
    if constexpr (NV > 2) c##i##_2 = S::load(c + i * ldc + 2 * W);    \
    if constexpr (NV > 3) c##i##_3 = S::load(c + i * ldc + 3 * W);    \
  }
    EMBER_CONV_ROWS(EMBER_CONV_LOAD)
#undef EMBER_CONV_LOAD
  }
  for (int64_t j = 0; j < kc; ++j) {
    const typename S::T* bj = b + off[j];
    const V b0 = S::load(bj);
    const V b1 = NV > 1 ? S::load(bj + W) : S::zero();
    const V b2 = NV > 2 ? S::load(bj + 2 * W) : S::zero();
    const V b3 = NV > 3 ? S::load(bj + 3 * W) : S::zero();
    const typename S::T* aj = a + j * MR;
#define EMBER_CONV_FMA(i)                                   \
  if constexpr (i < MR) {                                   \
    const V ai = S::set1(aj[i]);                            \
    c##i##_0 = S::fma(ai, b0, c##i##_0);                    \
    if constexpr (NV > 1) c##i##_1 = S::fma(ai, b1, c##i##_1); \
    if constexpr (NV > 2) c##i##_2 = S::fma(ai, b2, c##i##_2); \
    if constexpr (NV > 3) c##i##_3 = S::fma(ai, b3, c##i##_3); \
  }
    EMBER_CONV_ROWS(EMBER_CONV_FMA)
#undef EMBER_CONV_FMA
  }
#define EMBER_CONV_STORE(i)                                         \
  if constexpr (i < MR) {                                           \
    S::store(c + i * ldc, c##i##_0);                                \
    if constexpr (NV > 1) S::store(c + i * ldc + W, c##i##_1);      \
    if constexpr (NV > 2) S::store(c + i * ldc + 2 * W, c##i##_2);  \
    if constexpr (NV > 3) S::store(c + i * ldc + 3 * W, c##i##_3);  \
  }
  EMBER_CONV_ROWS(EMBER_CONV_STORE)
#undef EMBER_CONV_STORE
}

// Weight gradient: NJ taps x MV vectors of output channels (at most 12 x 2), the dY values of a
// position (transposed: channels contiguous) loaded once and each tap's input value broadcast,
// so no accumulator is ever reduced across lanes; taps >= NJ and vectors >= MV are dead code.
#define EMBER_CONV_TAPS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

template <class S, int MV, int NJ>
void weight_grad_tile(int64_t ns, int64_t OH, int64_t OW, int64_t Wq,
                      const typename S::T* dyt, int64_t dyt_ns, int64_t ldo,
                      const typename S::T* b, int64_t b_ns, const int64_t* __restrict off,
                      typename S::T* acc, int64_t ldacc, bool accumulate) {
  using V = typename S::V;
  using T = typename S::T;
  static_assert(MV >= 1 && MV <= 2 && NJ >= 1 && NJ <= 12);
  constexpr int W = S::W;
#define EMBER_CONV_WDECL(j) V a##j##_0 = S::zero(), a##j##_1 = S::zero();
  EMBER_CONV_TAPS(EMBER_CONV_WDECL)
#undef EMBER_CONV_WDECL
  if (accumulate) {
#define EMBER_CONV_WLOAD(j)                                           \
  if constexpr (j < NJ) {                                             \
    a##j##_0 = S::load(acc + j * ldacc);                              \
    if constexpr (MV > 1) a##j##_1 = S::load(acc + j * ldacc + W);    \
  }
    EMBER_CONV_TAPS(EMBER_CONV_WLOAD)
#undef EMBER_CONV_WLOAD
  }
  for (int64_t s = 0; s < ns; ++s, dyt += dyt_ns, b += b_ns)
    for (int64_t oh = 0; oh < OH; ++oh) {
#define EMBER_CONV_WPTR(j) const T* x##j = b + (j < NJ ? off[j] : 0) + oh * Wq;
      EMBER_CONV_TAPS(EMBER_CONV_WPTR)
#undef EMBER_CONV_WPTR
      const T* d = dyt + oh * OW * ldo;
      for (int64_t ow = 0; ow < OW; ++ow, d += ldo) {
        const V y0 = S::load(d);
        const V y1 = MV > 1 ? S::load(d + W) : S::zero();
#define EMBER_CONV_WFMA(j)                                  \
  if constexpr (j < NJ) {                                   \
    const V xv = S::set1(x##j[ow]);                         \
    a##j##_0 = S::fma(xv, y0, a##j##_0);                    \
    if constexpr (MV > 1) a##j##_1 = S::fma(xv, y1, a##j##_1); \
  }
        EMBER_CONV_TAPS(EMBER_CONV_WFMA)
#undef EMBER_CONV_WFMA
      }
    }
#define EMBER_CONV_WSTORE(j)                                         \
  if constexpr (j < NJ) {                                            \
    S::store(acc + j * ldacc, a##j##_0);                             \
    if constexpr (MV > 1) S::store(acc + j * ldacc + W, a##j##_1);   \
  }
  EMBER_CONV_TAPS(EMBER_CONV_WSTORE)
#undef EMBER_CONV_WSTORE
}

#undef EMBER_CONV_TAPS
#undef EMBER_CONV_ROWS

/// The tiles of one traits type S: forward rows MR, weight-gradient tiles NJ taps x 1 or 2
/// vectors, and a WIDE_MR x 4-vector forward tile unless WIDE_MR is 0.
template <class S, int MR, int NJ, int WIDE_MR = 0>
ConvDirectTiles<typename S::T> make_tiles() {
  ConvDirectTiles<typename S::T> t;
  t.mr = MR;
  t.lanes = S::W;
  t.nv = 3;
  t.forward[1] = &forward_tile<S, MR, 1>;
  t.forward[2] = &forward_tile<S, MR, 2>;
  t.forward[3] = &forward_tile<S, MR, 3>;
  t.small_forward[0][1] = &forward_tile<S, 1, 1>;
  t.small_forward[0][2] = &forward_tile<S, 1, 2>;
  t.small_forward[0][3] = &forward_tile<S, 1, 3>;
  t.small_forward[1][1] = &forward_tile<S, 2, 1>;
  t.small_forward[1][2] = &forward_tile<S, 2, 2>;
  t.small_forward[1][3] = &forward_tile<S, 2, 3>;
  if constexpr (MR > 4) {
    t.small_forward[2][1] = &forward_tile<S, 4, 1>;
    t.small_forward[2][2] = &forward_tile<S, 4, 2>;
    t.small_forward[2][3] = &forward_tile<S, 4, 3>;
  }
  if constexpr (WIDE_MR > 0) {
    t.wide_mr = WIDE_MR;
    t.wide[4] = &forward_tile<S, WIDE_MR, 4>;
  }
  t.nj = NJ;
  t.weight_grad[1] = &weight_grad_tile<S, 1, NJ>;
  t.weight_grad[2] = &weight_grad_tile<S, 2, NJ>;
  return t;
}

}  // namespace conv_direct_detail
}  // namespace ember::cpu
