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
  /// sums(mo, nj) row-major = sum over samples s < ns and p < np (a multiple of lanes) of
  /// dy[s*dy_ns + i*ldy + p] * b[s*b_ns + off[j] + p]: one fma chain per lane in (s, p) order,
  /// then the lanes added in a fixed order (once per call, so callers pass several samples).
  using WeightGrad = void (*)(int64_t ns, int64_t np, const C* dy, int64_t ldy, int64_t dy_ns,
                              const C* b, int64_t b_ns, const int64_t* off, C* sums);
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
  int mo = 0, nj = 0;             // weight-gradient tile: mo output channels x nj taps
  WeightGrad weight_grad = nullptr;
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

// Weight gradient: MO output channels x NJ taps (at most 4 x 6), each accumulator a vector over
// positions; rows >= MO and taps >= NJ are dead code.
#define EMBER_CONV_TAPS(X, i) X(i, 0) X(i, 1) X(i, 2) X(i, 3) X(i, 4) X(i, 5)
#define EMBER_CONV_OROWS(X) X(0) X(1) X(2) X(3)

template <class S, int MO, int NJ>
void weight_grad_tile(int64_t ns, int64_t np, const typename S::T* __restrict dy, int64_t ldy,
                      int64_t dy_ns, const typename S::T* b, int64_t b_ns,
                      const int64_t* __restrict off, typename S::T* __restrict sums) {
  using V = typename S::V;
  using T = typename S::T;
  static_assert(MO >= 1 && MO <= 4 && NJ >= 1 && NJ <= 6);
  constexpr int W = S::W;
#define EMBER_CONV_WDECL(i, j) V s##i##_##j = S::zero();
#define EMBER_CONV_WDECL_ROW(i) EMBER_CONV_TAPS(EMBER_CONV_WDECL, i)
  EMBER_CONV_OROWS(EMBER_CONV_WDECL_ROW)
#undef EMBER_CONV_WDECL_ROW
#undef EMBER_CONV_WDECL
  for (int64_t sample = 0; sample < ns; ++sample, dy += dy_ns, b += b_ns) {
#define EMBER_CONV_WPTR(j) const T* b##j = NJ > j ? b + off[j] : b;
  EMBER_CONV_WPTR(0) EMBER_CONV_WPTR(1) EMBER_CONV_WPTR(2)
  EMBER_CONV_WPTR(3) EMBER_CONV_WPTR(4) EMBER_CONV_WPTR(5)
#undef EMBER_CONV_WPTR
  for (int64_t p = 0; p < np; p += W) {
#define EMBER_CONV_WLOAD(j) const V x##j = NJ > j ? S::load(b##j + p) : S::zero();
    EMBER_CONV_WLOAD(0) EMBER_CONV_WLOAD(1) EMBER_CONV_WLOAD(2)
    EMBER_CONV_WLOAD(3) EMBER_CONV_WLOAD(4) EMBER_CONV_WLOAD(5)
#undef EMBER_CONV_WLOAD
#define EMBER_CONV_WFMA(i, j) \
  if constexpr (j < NJ) s##i##_##j = S::fma(g, x##j, s##i##_##j);
#define EMBER_CONV_WFMA_ROW(i)              \
  if constexpr (i < MO) {                   \
    const V g = S::load(dy + i * ldy + p);  \
    EMBER_CONV_TAPS(EMBER_CONV_WFMA, i)     \
  }
    EMBER_CONV_OROWS(EMBER_CONV_WFMA_ROW)
#undef EMBER_CONV_WFMA_ROW
#undef EMBER_CONV_WFMA
  }
  }
#define EMBER_CONV_WSUM(i, j) \
  if constexpr (j < NJ) sums[i * NJ + j] = S::reduce_add(s##i##_##j);
#define EMBER_CONV_WSUM_ROW(i) \
  if constexpr (i < MO) {      \
    EMBER_CONV_TAPS(EMBER_CONV_WSUM, i) \
  }
  EMBER_CONV_OROWS(EMBER_CONV_WSUM_ROW)
#undef EMBER_CONV_WSUM_ROW
#undef EMBER_CONV_WSUM
}

#undef EMBER_CONV_OROWS
#undef EMBER_CONV_TAPS
#undef EMBER_CONV_ROWS

/// The tiles of one traits type S: forward rows MR, weight-gradient tile MO x NJ, and a
/// WIDE_MR x 4-vector forward tile unless WIDE_MR is 0.
template <class S, int MR, int MO, int NJ, int WIDE_MR = 0>
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
  t.mo = MO;
  t.nj = NJ;
  t.weight_grad = &weight_grad_tile<S, MO, NJ>;
  return t;
}

}  // namespace conv_direct_detail
}  // namespace ember::cpu
