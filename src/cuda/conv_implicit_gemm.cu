// Implicit-GEMM 2-D convolution on the tensor cores (mma.sync m16n8k16, sm_80 and later) for
// bfloat16 and float16, float32 accumulation, one rounding to the output dtype at the end:
//   forward         y (N, O, P, Q) = act(conv2d(x (N, C, H, W), w (O, C/G, R, S)) + bias (O))
//   backward-data   dx (N, C, H, W) = conv_transpose of dy (N, O, P, Q) with w (+ bias (C),
//                   which conv_transpose2d's forward uses)
//   backward-weight dw (O, C/G, R, S) = sum over n, p, q of dy[n, o, p, q] * x's window
// with stride, padding, dilation and groups G; NCHW tensors at the API, any strides.
//
// Algorithm: implicit GEMM (CUTLASS's "Implicit GEMM Convolution" docs; cuDNN's
// IMPLICIT_PRECOMP_GEMM): the im2col matrix is never stored, each operand tile is gathered from
// the activation as it is copied into shared memory. Per group g, with K ordered (r, s, c), c
// fastest:
//   forward   M = N*P*Q output pixels, N = O/G, K = C/G*R*S; A[m][k] = x[n, g C/G + c, p sh - ph +
//             r dh, q sw - pw + s dw] (zero outside), B[o][k] = w[g O/G + o, c, r, s]
//   dgrad     one GEMM per output phase (h, w) = (phy + sh i, phx + sw j), sh x sw of them: M =
//             N * (its pixels), N = C/G, K = O/G * (the taps r, s that reach those pixels from
//             whole dy positions: r dh = phy + ph (mod sh), every sh / gcd(sh, dh)-th tap);
//             A[m][k] = dy[n, g O/G + o, p, q] with p = (h + ph - r dh) / sh (zero outside),
//             B[c][k] = w[o, c, r, s]. So a stride-2 dgrad multiplies no zeros for taps that
//             land between dy positions (3/4 of them).
//   wgrad     M = R*S*C/G (the filter, (r, s, c)), N = O/G, K = N*P*Q (the positions);
//             A[k][m] = x's window element, B[k][o] = dy[n, o, p, q]
// The activations are first copied to NHWC (x.permute(0, 2, 3, 1).contiguous(): one read and
// one write of the tensor; free when x already is channels-last in memory), and the filters to
// K-contiguous matrices, so every 16-byte cp.async chunk is 8 consecutive channels of one pixel
// and one tap: one bounds test per chunk. That needs the gathered channel counts per group to be
// multiples of 8 (forward C/G; dgrad O/G; wgrad both). Without groups, a C that is not (the
// ResNet stem's 3) is padded with zero channels in the staged x (and the forward's filter) to
// the next multiple of 8; other layouts are declined (false) and the caller runs im2col + gemm
// (grouped layers such as depthwise).
//
// Tiles (one configuration): a block of 4 warps (2 x 2) owns a (128, 64) tile of the GEMM, each
// warp (64, 32) = 4 x 4 mma tiles; K in slabs of 32 through a 4-stage cp.async ring (forward and
// dgrad: A (128, 32) and B (64, 32) K-contiguous, 60 KiB; wgrad: A (32, 128) and B (32, 64)
// M/N-contiguous, read with ldmatrix.trans, 52 KiB). Rows padded by 16 bytes so each ldmatrix
// phase hits 8 different bank groups. Per thread the pixel coordinates of its chunks are computed
// once; per slab one division turns its k into (r, s, c). Grid: x = M tiles, y = N tiles x groups,
// z = split-K slices (wgrad only).
//
// On sm_90a the three GEMMs have a second kernel, opt-in through set_conv_variant(1) until a GPU
// run shows it faster (conv_wgmma_kernel): the same gathers (Gather, shared by both kernels) into
// 128-byte-swizzled stages (K-major for forward and dgrad, M/N-major for wgrad), a (128, 128)
// tile of two warpgroups on wgmma.m64n128k16, or (128, 64) on m64n64k16 for GEMMs at most 64
// wide, K slabs of 64 through 4 stages.
//
// Epilogue on the accumulators in registers (lane (g, q) holds rows g, g + 8 and columns 2q,
// 2q + 1 of each mma tile): + bias, relu (NaN passes), rounded once and stored to the NCHW output
// through its strides. wgrad, whose GEMM is small and its K long (N*P*Q), splits K across z into
// float32 partials (splits, G, M, N) when the tiles alone would not fill the GPU; a second kernel
// sums them in split order: deterministic, no atomics.
//
// Limits: bf16/fp16 only; channels per group as above; the output positions and filter sizes fit
// int32 (checked); verified under the CPU emulator (tools/cuda_emu) only, not yet on a GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <type_traits>

#include "core/kernels.hpp"
#include "core/tensor_impl.hpp"
#include "cuda/common.cuh"
#include "cuda/loops.cuh"
#include "cuda/mma.cuh"
#include "cuda/variant.hpp"
#include "ember/autograd.hpp"
#include "ember/ops.hpp"

namespace ember::cuda {
namespace {

using detail::BF16Bits;
using detail::HalfBits;

template <class T>
using mma_t = std::conditional_t<std::is_same_v<T, HalfBits>, __half, __nv_bfloat16>;

// ---- tile configuration ----
constexpr int BM = 128, BN = 64, BK = 32;  // block tile (M, N), K slab
constexpr int kWarpsM = 2, kWarpsN = 2, kThreads = 32 * kWarpsM * kWarpsN, kStages = 4;
constexpr int MI = BM / kWarpsM / 16;  // mma tiles per warp along M (16 rows each)
constexpr int NI = BN / kWarpsN / 8;   // and along N (8 columns each)
constexpr int kPad = 8;                // elements of padding per shared row (16 bytes)
static_assert(NI % 2 == 0 && BK % 16 == 0 && (BM * BK / 8) % kThreads == 0 &&
              (BN * BK / 8) % kThreads == 0);

enum class Pass { kFprop, kDgrad, kWgrad };

// Shared stage sizes in elements: K-major (rows, BK + pad) or M/N-major (BK, cols + pad).
template <bool kKMajor>
constexpr int a_stage() {
  return kKMajor ? BM * (BK + kPad) : BK * (BM + kPad);
}
template <bool kKMajor>
constexpr int b_stage() {
  return kKMajor ? BN * (BK + kPad) : BK * (BN + kPad);
}
template <bool kKMajor>
constexpr int smem_bytes() {
  return kStages * (a_stage<kKMajor>() + b_stage<kKMajor>()) * 2;
}

struct ConvParams {
  const void* act;  // NHWC: forward and wgrad x (N, H, W, C); dgrad dy (N, P, Q, O)
  const void* opd;  // forward/dgrad: filter matrix (G, GEMM N, K), K contiguous; wgrad: dy NHWC
  int64_t N, H, W, C, P, Q, O;  // x (N, C, H, W), y (N, O, P, Q)
  int64_t Cg, Og;               // channels per group
  int R, S, sh, sw, ph, pw, dh, dw;
  int64_t M, Ncol, K;  // the GEMM of one group
  void* out;           // forward y / dgrad dx (N, C', H', W'); wgrad dw (O, Cg, R, S)
  int64_t os0, os1, os2, os3;
  const void* bias;  // (O) forward, (C) dgrad, or null
  int64_t bias_s;
  bool relu;
  float* ws;             // wgrad split-K partials (splits, G, M, Ncol), or null: store to out
  bool out_f32;          // wgrad: dw is float32 (autocast's float32 parameter), else T
  int64_t kt_per_split;  // K slabs per z slice
  // dgrad, one launch per output phase (dx pixels (phy + sh i, phx + sw j)): the phase's pixel
  // counts Hp x Wp; its taps, Rp x Sp (tap (tr, ts) is filter element (r0 + tr sh', s0 + ts
  // sw') with sh' = sh / gcd(sh, dh)); the dy element tap (tr, ts) of pixel (i, j) reads,
  // (i + base_y - tr pdy, j + base_x - ts pdx), pdy = dh / gcd(sh, dh).
  int phy, phx, Hp, Wp, Rp, Sp, base_y, base_x, pdy, pdx;
};

/// Stores dw[g * Og + col][c][r][s] = v for the wgrad GEMM's (row = (r, s, c), col) of group g,
/// rounded once to dw's dtype.
template <class T>
__device__ __forceinline__ void store_dw(const ConvParams& p, int64_t g, int64_t row, int64_t col,
                                         float v) {
  const int64_t tap = row / p.Cg, c = row % p.Cg;
  const int64_t off =
      (g * p.Og + col) * p.os0 + c * p.os1 + (tap / p.S) * p.os2 + (tap % p.S) * p.os3;
  if (p.out_f32)
    static_cast<float*>(p.out)[off] = v;
  else
    static_cast<T*>(p.out)[off] = detail::convert<T>(v);
}

/// The epilogue of one accumulator (row, col) of group g, split z.
template <class T, Pass kPass>
__device__ __forceinline__ void store_out(const ConvParams& p, int64_t g, int64_t z, int64_t row,
                                          int64_t col, float v) {
  if (row >= p.M || col >= p.Ncol) return;
  if constexpr (kPass == Pass::kWgrad) {
    if (p.ws) {
      p.ws[((z * (p.O / p.Og) + g) * p.M + row) * p.Ncol + col] = v;
      return;
    }
    store_dw<T>(p, g, row, col, v);
  } else {
    // Rows are pixels of the output plane: (P, Q) forward; dgrad the phase's (Hp, Wp), pixel
    // (i, j) being dx's (phy + sh i, phx + sw j).
    const bool fwd = kPass == Pass::kFprop;
    const int64_t OH = fwd ? p.P : p.Hp, OW = fwd ? p.Q : p.Wp;
    const int64_t n = row / (OH * OW), pix = row % (OH * OW);
    const int64_t y = fwd ? pix / OW : p.phy + p.sh * (pix / OW);
    const int64_t x = fwd ? pix % OW : p.phx + p.sw * (pix % OW);
    const int64_t ch = g * p.Ncol + col;
    if (p.bias) v += detail::convert<float>(static_cast<const T*>(p.bias)[ch * p.bias_s]);
    if (p.relu) v = v > 0.f || v != v ? v : 0.f;  // NaN passes, as in relu
    T* const o = static_cast<T*>(p.out) + n * p.os0 + ch * p.os1 + y * p.os2 + x * p.os3;
    *o = detail::convert<T>(v);
  }
}

/// One thread's share of the operand gathers of a (kBM, kBN) block tile with K slabs of kBK,
/// kThr threads: its chunks' coordinates, computed once, and load(), which copies its chunks of
/// slab kt by cp.async to where the kernel's layout wants them. K-major (forward, dgrad): A chunk
/// i is GEMM row a_r0 + i kARowStep at k column a_c; B chunk i is filter row b_r0 + i kBRowStep at
/// column b_c. M/N-major (wgrad): A chunk i is k row a_r0 + i kARowStep at filter column a_c (8
/// channels of one tap); B likewise over dy's O.
template <class T, Pass kPass, int kBM, int kBN, int kBK, int kThr>
struct Gather {
  static constexpr bool kKMajor = kPass != Pass::kWgrad;
  static constexpr int kAChunks = kBM * kBK / 8 / kThr, kBChunks = kBN * kBK / 8 / kThr;
  static constexpr int kARowStep = kKMajor ? kThr / (kBK / 8) : kThr / (kBM / 8);
  static constexpr int kBRowStep = kKMajor ? kThr / (kBK / 8) : kThr / (kBN / 8);
  static_assert(kAChunks > 0 && kBChunks > 0 && kAChunks <= 32);
  int a_r0, a_c, b_r0, b_c;
  int64_t g, n0;
  // K-major A: each chunk's pixel, fixed for the whole K walk: the sample's offset into act and
  // the window origin (forward: p sh - ph, q sw - pw; dgrad: i + base_y, j + base_x).
  int64_t a_n[kKMajor ? kAChunks : 1];
  int a_y[kKMajor ? kAChunks : 1], a_x[kKMajor ? kAChunks : 1];
  uint32_t a_rows_ok = 0;
  // wgrad A: the chunk's filter column (r, s, c) is fixed: offsets r dh - ph, s dw - pw.
  int w_roff = 0, w_soff = 0;
  int64_t w_c = 0;
  bool w_m_ok = false;

  __device__ __forceinline__ Gather(const ConvParams& p, int tid, int64_t g_, int64_t m0,
                                    int64_t n0_)
      : g(g_), n0(n0_) {
    a_r0 = kKMajor ? tid / (kBK / 8) : tid / (kBM / 8);
    a_c = kKMajor ? (tid % (kBK / 8)) * 8 : (tid % (kBM / 8)) * 8;
    b_r0 = kKMajor ? tid / (kBK / 8) : tid / (kBN / 8);
    b_c = kKMajor ? (tid % (kBK / 8)) * 8 : (tid % (kBN / 8)) * 8;
    if constexpr (kKMajor) {
#pragma unroll
      for (int i = 0; i < kAChunks; ++i) {
        const int64_t m = m0 + a_r0 + i * kARowStep;
        const int64_t OH = kPass == Pass::kFprop ? p.P : p.Hp;
        const int64_t OW = kPass == Pass::kFprop ? p.Q : p.Wp;
        const int64_t n = m / (OH * OW), pix = m % (OH * OW);
        const int y = static_cast<int>(pix / OW), x = static_cast<int>(pix % OW);
        if (m < p.M) a_rows_ok |= 1u << i;
        if constexpr (kPass == Pass::kFprop) {
          a_n[i] = n * p.H * p.W * p.C + g * p.Cg;
          a_y[i] = y * p.sh - p.ph, a_x[i] = x * p.sw - p.pw;
        } else {
          a_n[i] = n * p.P * p.Q * p.O + g * p.Og;
          a_y[i] = y + p.base_y, a_x[i] = x + p.base_x;
        }
      }
    } else {
      const int64_t col = m0 + a_c;
      w_m_ok = col < p.M;
      const int64_t tap = col / p.Cg;
      w_c = col % p.Cg;
      w_roff = static_cast<int>(tap / p.S) * p.dh - p.ph;
      w_soff = static_cast<int>(tap % p.S) * p.dw - p.pw;
    }
  }

  /// Slab kt of A and B: this thread's chunk i of A to a_dst(i), of B to b_dst(i) (T*). A chunk
  /// outside the operand is zero-filled from act.
  template <class ADst, class BDst>
  __device__ __forceinline__ void load(const ConvParams& p, int64_t kt, ADst&& a_dst,
                                       BDst&& b_dst) const {
    const T* const act = static_cast<const T*>(p.act);
    const T* const opd = static_cast<const T*>(p.opd);
    const int64_t k0 = kt * kBK;
    if constexpr (kKMajor) {
      const int64_t k = k0 + a_c;
      const bool k_ok = k < p.K;
      const int64_t cin = kPass == Pass::kFprop ? p.Cg : p.Og;  // channels along K per tap
      const int tap = static_cast<int>(k / cin);
      const int64_t c = k % cin;
      const int taps_x = kPass == Pass::kFprop ? p.S : p.Sp;  // taps along x (dgrad: the phase's)
      const int r = tap / taps_x, sx = tap % taps_x;
#pragma unroll
      for (int i = 0; i < kAChunks; ++i) {
        bool ok = k_ok && ((a_rows_ok >> i) & 1u);
        const T* src = act;
        if constexpr (kPass == Pass::kFprop) {
          const int ih = a_y[i] + r * p.dh, iw = a_x[i] + sx * p.dw;
          ok = ok && ih >= 0 && ih < p.H && iw >= 0 && iw < p.W;
          if (ok) src = act + a_n[i] + (static_cast<int64_t>(ih) * p.W + iw) * p.C + c;
        } else {  // the phase's taps all land on whole dy positions: only bounds to test
          const int th = a_y[i] - r * p.pdy, tw = a_x[i] - sx * p.pdx;
          ok = ok && th >= 0 && tw >= 0 && th < p.P && tw < p.Q;
          if (ok) src = act + a_n[i] + (static_cast<int64_t>(th) * p.Q + tw) * p.O + c;
        }
        mma::cp_async_16(a_dst(i), src, ok ? 16 : 0);
      }
#pragma unroll
      for (int i = 0; i < kBChunks; ++i) {
        const int64_t row = n0 + b_r0 + i * kBRowStep, kb = k0 + b_c;
        const bool ok = row < p.Ncol && kb < p.K;
        mma::cp_async_16(b_dst(i), ok ? opd + (g * p.Ncol + row) * p.K + kb : opd, ok ? 16 : 0);
      }
    } else {
      const int64_t PQ = p.P * p.Q;
#pragma unroll
      for (int i = 0; i < kAChunks; ++i) {
        const int64_t k = k0 + a_r0 + i * kARowStep;  // a position (n, p, q)
        bool ok = w_m_ok && k < p.K;
        const T* src = act;
        if (ok) {
          const int64_t n = k / PQ, pq = k % PQ;
          const int ih = static_cast<int>(pq / p.Q) * p.sh + w_roff;
          const int iw = static_cast<int>(pq % p.Q) * p.sw + w_soff;
          ok = ih >= 0 && ih < p.H && iw >= 0 && iw < p.W;
          src = act + ((n * p.H + ih) * p.W + iw) * p.C + g * p.Cg + w_c;
        }
        mma::cp_async_16(a_dst(i), ok ? src : act, ok ? 16 : 0);
      }
#pragma unroll
      for (int i = 0; i < kBChunks; ++i) {
        const int64_t k = k0 + b_r0 + i * kBRowStep;
        const bool ok = k < p.K && n0 + b_c < p.Ncol;
        mma::cp_async_16(b_dst(i), ok ? opd + k * p.O + g * p.Og + n0 + b_c : opd, ok ? 16 : 0);
      }
    }
  }
};

template <class T, Pass kPass>
__global__ void __launch_bounds__(kThreads) conv_implicit_gemm_kernel(const ConvParams p) {
  constexpr bool kKMajor = kPass != Pass::kWgrad;
  constexpr int kAPitch = kKMajor ? BK + kPad : BM + kPad;
  constexpr int kBPitch = kKMajor ? BK + kPad : BN + kPad;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* const As = reinterpret_cast<T*>(smem_raw);
  T* const Bs = As + kStages * a_stage<kKMajor>();
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int wm = warp / kWarpsN, wn = warp % kWarpsN;
  const int64_t n_tiles = (p.Ncol + BN - 1) / BN;
  const int64_t g = blockIdx.y / n_tiles;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM, n0 = (blockIdx.y % n_tiles) * BN;
  const int64_t KT = (p.K + BK - 1) / BK;
  const int64_t kt0 = static_cast<int64_t>(blockIdx.z) * p.kt_per_split;
  const int64_t kt1 = std::min(KT, kt0 + p.kt_per_split);

  using Gth = Gather<T, kPass, BM, BN, BK, kThreads>;
  const Gth gather(p, tid, g, m0, n0);
  // Slab kt of A and B into stage s: rows padded by kPad elements.
  auto load = [&](int s, int64_t kt) {
    T* const as = As + s * a_stage<kKMajor>() + gather.a_r0 * kAPitch + gather.a_c;
    T* const bs = Bs + s * b_stage<kKMajor>() + gather.b_r0 * kBPitch + gather.b_c;
    gather.load(
        p, kt, [&](int i) { return as + i * Gth::kARowStep * kAPitch; },
        [&](int i) { return bs + i * Gth::kBRowStep * kBPitch; });
  };

  float acc[MI][NI][4];
#pragma unroll
  for (int mi = 0; mi < MI; ++mi)
#pragma unroll
    for (int ni = 0; ni < NI; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.f;

  // ---- the pipeline: slabs kt0 .. kt1 - 1 through kStages stages ----
  const int64_t nk = kt1 > kt0 ? kt1 - kt0 : 0;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < nk) load(s, kt0 + s);
    mma::cp_async_commit();  // empty groups past the end keep the wait counts uniform
  }
  for (int64_t i = 0; i < nk; ++i) {
    mma::cp_async_wait<kStages - 2>();  // slab i has landed (this thread's copies)
    __syncthreads();                    // everyone's, and slab i - 1 is no longer read
    const int64_t next = i + kStages - 1;
    if (next < nk) load(static_cast<int>(next % kStages), kt0 + next);
    mma::cp_async_commit();
    const int s = static_cast<int>(i % kStages);
    const T* const as = As + s * a_stage<kKMajor>();
    const T* const bs = Bs + s * b_stage<kKMajor>();
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      uint32_t af[MI][4];
      const int j = lane / 8, rr = lane % 8;
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
        if constexpr (kKMajor) {
          const int r = wm * (MI * 16) + mi * 16 + (lane % 16), c = kk + (lane / 16) * 8;
          mma::ldmatrix_x4<false>(af[mi], as + r * kAPitch + c);
        } else {  // matrices (k 0-7, m 0-7), (k 0-7, m 8-15), (k 8-15, m 0-7), (k 8-15, m 8-15)
          const int k = kk + (j / 2) * 8 + rr, m = wm * (MI * 16) + mi * 16 + (j % 2) * 8;
          mma::ldmatrix_x4<true>(af[mi], as + k * kAPitch + m);
        }
      }
#pragma unroll
      for (int nj = 0; nj < NI / 2; ++nj) {  // one ldmatrix_x4: k 0-7 and 8-15 of two n tiles
        uint32_t r4[4];
        if constexpr (kKMajor) {
          const int n = wn * (NI * 8) + nj * 16 + (j / 2) * 8 + rr, k = kk + (j % 2) * 8;
          mma::ldmatrix_x4<false>(r4, bs + n * kBPitch + k);
        } else {
          const int k = kk + (j % 2) * 8 + rr, n = wn * (NI * 8) + nj * 16 + (j / 2) * 8;
          mma::ldmatrix_x4<true>(r4, bs + k * kBPitch + n);
        }
        const uint32_t b0[2] = {r4[0], r4[1]}, b1[2] = {r4[2], r4[3]};
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
          mma::mma_16816<mma_t<T>>(acc[mi][2 * nj], af[mi], b0);
          mma::mma_16816<mma_t<T>>(acc[mi][2 * nj + 1], af[mi], b1);
        }
      }
    }
  }
  mma::cp_async_wait<0>();

  // ---- epilogue: lane (g, q) holds rows g and g + 8, columns 2q and 2q + 1 of each tile ----
  const int gq = lane / 4, q = lane % 4;
#pragma unroll
  for (int mi = 0; mi < MI; ++mi)
#pragma unroll
    for (int ni = 0; ni < NI; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        store_out<T, kPass>(p, g, blockIdx.z, m0 + wm * (MI * 16) + mi * 16 + gq + (e / 2) * 8,
                            n0 + wn * (NI * 8) + ni * 8 + 2 * q + e % 2, acc[mi][ni][e]);
}

// ---- sm_90a: the three GEMMs on warpgroup MMA ----

/// Block tile (128, kBN) with kBN 128, or 64 for GEMMs at most 64 wide (O/G or C/G of 64 and
/// less: no half-empty tiles), K slabs of 64 through 4 stages in the 128-byte swizzle layout;
/// 2 warpgroups, each owning 64 rows x kBN columns (wgmma.m64n{kBN}k16, kBN / 2 float
/// accumulators per thread). A stage is 16 KiB of A and kBN x 128 bytes of B in either layout.
constexpr int kWgBM = 128, kWgBK = 64, kWgStages = 4, kWgThreads = 256;
static_assert(kWgBM == BM, "launch_wgmma relies on grid_fits' row tiles");
constexpr int kWgABytes = kWgBM * 128;
template <int kBN>
constexpr int wg_stage_bytes() {
  return kWgABytes + kBN * 128;
}
template <int kBN>
constexpr int wg_smem() {
  return kWgStages * wg_stage_bytes<kBN>() + 1024;  // + slack to align to 1024 bytes
}

/// One k16 step of a warpgroup: D (64 x kBN) += A (64 x 16) B (16 x kBN), both operands from
/// shared memory; kTrans: both M/N-major (the weight gradient), else both K-major.
template <class T, int kBN, bool kTrans>
__device__ __forceinline__ void wg_mma(float (&d)[kBN / 2], uint64_t da, uint64_t db) {
#if defined(EMBER_HAVE_WGMMA)
  if constexpr (kBN == 128)
    mma::wgmma_m64n128k16<mma_t<T>, kTrans, kTrans>(d, da, db);
  else
    mma::wgmma_m64n64k16<mma_t<T>, kTrans, kTrans>(d, da, db);
#else
  (void)d, (void)da, (void)db;
#endif
}

/// A GEMM pass on wgmma: the same gathers as conv_implicit_gemm_kernel (Gather, every thread
/// copying by cp.async) stored in the 128-byte swizzle layouts that wgmma reads straight from
/// shared memory. Forward and dgrad (K-major operands): rows of 64 k (128 bytes), 16-byte chunk c
/// of row r at chunk c ^ (r % 8) (mma::smem_desc_sw128, k16 steps 32 bytes apart). Weight
/// gradient (M/N-major operands, read transposed): per 64 M (or N) columns a block of 64 k rows
/// of 128 bytes, chunk c of k row r at c ^ (r % 8), blocks 8192 bytes apart
/// (mma::smem_desc_sw128_mn, k16 steps 2048 bytes apart). Stages are 1024-byte aligned. Per slab
/// (mma::wgmma_cp_async_loop): wait for this thread's copies, fence them to the async proxy,
/// barrier; each warpgroup issues four k16 wgmma and commits; wgmma.wait_group 1 (the previous
/// slab's products are done), barrier, and the freed stage is refilled, so one slab of
/// tensor-core work stays queued while the copies are issued. The weight gradient walks the K
/// slabs of its split (grid z). The epilogue (store_out: bias, relu, one rounding, or the
/// split's float32 partials) from the accumulators.
template <class T, Pass kPass, int kBN>
__global__ void __launch_bounds__(kWgThreads, kBN == 64 ? 2 : 1)
    conv_wgmma_kernel(const ConvParams p) {
#if defined(EMBER_HAVE_WGMMA)
  constexpr bool kKMajor = kPass != Pass::kWgrad;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* const smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~static_cast<uintptr_t>(1023));
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5, wg = tid >> 7;
  const int64_t n_tiles = (p.Ncol + kBN - 1) / kBN;
  const int64_t g = blockIdx.y / n_tiles;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * kWgBM, n0 = (blockIdx.y % n_tiles) * kBN;
  const int64_t KT = (p.K + kWgBK - 1) / kWgBK;
  const int64_t kt0 = static_cast<int64_t>(blockIdx.z) * p.kt_per_split;
  const int64_t nk = std::max<int64_t>(0, std::min(KT, kt0 + p.kt_per_split) - kt0);

  using Gth = Gather<T, kPass, kWgBM, kBN, kWgBK, kWgThreads>;
  const Gth gather(p, tid, g, m0, n0);
  // Where element (row, col) of a stage's operand tile goes, rows being what a Gather chunk
  // index walks (K-major: GEMM rows, col a k; M/N-major: k, col an M/N column).
  const auto swizzled = [](unsigned char* tile, int row, int col) {
    if constexpr (kKMajor) {
      return reinterpret_cast<T*>(tile + row * 128 + (((col / 8) ^ (row & 7)) << 4));
    } else {
      return reinterpret_cast<T*>(tile + (col / 64) * 8192 + row * 128 +
                                  ((((col % 64) / 8) ^ (row & 7)) << 4));
    }
  };
  auto load = [&](int s, int64_t kt) {
    unsigned char* const st = smem + s * wg_stage_bytes<kBN>();
    gather.load(
        p, kt0 + kt,
        [&](int i) { return swizzled(st, gather.a_r0 + i * Gth::kARowStep, gather.a_c); },
        [&](int i) {
          return swizzled(st + kWgABytes, gather.b_r0 + i * Gth::kBRowStep, gather.b_c);
        });
  };

  float d[kBN / 2];
  mma::wgmma_cp_async_loop<kWgStages>(d, nk, load, [&](int s) {
    const unsigned char* const st = smem + s * wg_stage_bytes<kBN>();
    const unsigned char* const as = st + wg * 8192;  // this warpgroup's 64 rows, either layout
    const unsigned char* const bs = st + kWgABytes;
#pragma unroll
    for (int ks = 0; ks < kWgBK / 16; ++ks) {
      if constexpr (kKMajor)
        wg_mma<T, kBN, false>(d, mma::smem_desc_sw128(as + ks * 32),
                              mma::smem_desc_sw128(bs + ks * 32));
      else
        wg_mma<T, kBN, true>(d, mma::smem_desc_sw128_mn(as + ks * 2048, 8192),
                             mma::smem_desc_sw128_mn(bs + ks * 2048, 8192));
    }
  });

  // Epilogue: warp w of the group holds rows 16 w + gq and + 8, columns 8 j + 2 q (+ 1).
  const int gq = lane / 4, q = lane % 4;
  const int64_t row = m0 + wg * 64 + (warp % 4) * 16 + gq;
#pragma unroll
  for (int j = 0; j < kBN / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      store_out<T, kPass>(p, g, blockIdx.z, row + (e / 2) * 8, n0 + j * 8 + 2 * q + e % 2,
                          d[4 * j + e]);
#else
  (void)p;
  __trap();  // never launched: use_wgmma checks wgmma_available
#endif
}

/// dw[g * Og + col][c][r][s] = the sum over the splits, in split order, of ws (splits, G, M, Ncol)
/// at (g, row = (r, s, c), col).
template <class T>
__global__ void wgrad_reduce_kernel(const ConvParams p, int64_t splits) {
  const int64_t G = p.O / p.Og, total = G * p.M * p.Ncol;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = 0.f;
    for (int64_t z = 0; z < splits; ++z) v += p.ws[z * total + i];
    store_dw<T>(p, i / (p.Ncol * p.M), (i / p.Ncol) % p.M, i % p.Ncol, v);
  }
}

// ---- host side ----

bool is_16bit_float(DType dt) { return dt == kBFloat16 || dt == kFloat16; }

/// t (N, C, H, W) (an activation, or a filter (O, C, R, S)) as a channels-last-contiguous
/// (N, H, W, channels) tensor with a 16-byte aligned base: a view when t is channels-last in
/// memory already, else one copy; with channels > C (a layer with C % 8 != 0, such as the ResNet
/// stem's 3, padded to whole 16-byte chunks) the channels past C are zeros.
Tensor nhwc(const Tensor& t, int64_t channels) {
  const Tensor v = t.permute({0, 2, 3, 1});
  if (channels > t.size(1)) {
    Tensor c = zeros({v.size(0), v.size(1), v.size(2), channels},
                     TensorOptions(t.dtype()).device(t.device()));
    c.narrow(3, 0, t.size(1)).copy_(v);
    return c;
  }
  Tensor c = v.contiguous();
  if (!detail::aligned16(c.data_ptr())) {
    c = make_tensor(v.sizes(), v.dtype(), v.device(), "conv2d_implicit_gemm");
    c.copy_(v);
  }
  return c;
}

/// For groups == 1 and C % 8 != 0: pads p's channel count to the next multiple of 8 (the padding
/// channels are zeros in the staged x and, for the forward, in the filter, so they add nothing);
/// false where that is not the case (grouped layers with C/g % 8 != 0 are declined).
bool pad_channels(ConvParams& p, int64_t groups) {
  if (p.Cg % 8 == 0) return true;
  if (groups != 1) return false;
  p.C = p.Cg = (p.Cg + 7) / 8 * 8;
  return true;
}

/// The 4 strides of an NCHW-indexed output.
void set_out(ConvParams& p, const Tensor& out) {
  p.out = out.data_ptr();
  p.os0 = out.stride(0), p.os1 = out.stride(1), p.os2 = out.stride(2), p.os3 = out.stride(3);
}

bool fits_int(int64_t v) { return v <= std::numeric_limits<int>::max() / 2; }

/// The shared geometry, with the declines every pass makes: dtypes, ranks, group sizes, sizes
/// beyond int32 for the per-thread coordinates.
bool fill_common(ConvParams& p, const Tensor& x4, const Tensor& y4, const Tensor& weight,
                 const Window2d& w, int64_t groups, bool f32_weight = false) {
  const DType dt = x4.dtype();
  if (!is_16bit_float(dt) || y4.dtype() != dt) return false;
  if (weight.dtype() != dt && !(f32_weight && weight.dtype() == kFloat32)) return false;
  if (x4.dim() != 4 || y4.dim() != 4 || weight.dim() != 4 || groups <= 0) return false;
  p.N = x4.size(0), p.C = x4.size(1), p.H = x4.size(2), p.W = x4.size(3);
  p.O = y4.size(1), p.P = y4.size(2), p.Q = y4.size(3);
  if (y4.size(0) != p.N || p.C % groups != 0 || p.O % groups != 0) return false;
  p.Cg = p.C / groups, p.Og = p.O / groups;
  if (weight.size(0) != p.O || weight.size(1) != p.Cg || weight.size(2) != w.kh ||
      weight.size(3) != w.kw)
    return false;
  for (int64_t v : {p.H, p.W, p.P, p.Q, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw})
    if (!fits_int(v) || !fits_int(v * std::max(w.dh, w.dw) * std::max(w.kh, w.kw) + v))
      return false;
  p.R = static_cast<int>(w.kh), p.S = static_cast<int>(w.kw);
  p.sh = static_cast<int>(w.sh), p.sw = static_cast<int>(w.sw);
  p.ph = static_cast<int>(w.ph), p.pw = static_cast<int>(w.pw);
  p.dh = static_cast<int>(w.dh), p.dw = static_cast<int>(w.dw);
  p.bias = nullptr, p.bias_s = 0, p.relu = false, p.ws = nullptr;
  p.out_f32 = weight.dtype() == kFloat32;
  p.phy = p.phx = p.base_y = p.base_x = 0;  // dgrad's phase: set per launch
  p.Hp = p.Wp = p.Rp = p.Sp = p.pdy = p.pdx = 1;
  return true;
}

/// One dimension of a dgrad output phase: the dx positions phase + stride i (i < count) and the
/// filter taps r0 + step t (t < taps) that reach them from whole dy positions, the dy position of
/// (i, t) being i + base - t pstep. A tap r reaches dx position h from dy position
/// (h + pad - r dil) / stride when that divides: for h = phase + stride i that needs r dil =
/// phase + pad (mod stride), a residue class of r with period stride / gcd(stride, dil).
struct PhaseDim {
  int count, taps, r0, step, base, pstep;
};
PhaseDim phase_dim(int phase, int extent, int kernel, int stride, int pad, int dil) {
  PhaseDim d{0, 0, 0, 1, 0, 1};
  d.count = phase < extent ? (extent - phase + stride - 1) / stride : 0;
  const int g = std::gcd(stride, dil);
  d.step = stride / g, d.pstep = dil / g;
  d.r0 = 0;
  while (d.r0 < kernel && (d.r0 * dil - phase - pad) % stride != 0) ++d.r0;
  if (d.r0 < kernel) {
    d.taps = (kernel - 1 - d.r0) / d.step + 1;
    d.base = (phase + pad - d.r0 * dil) / stride;  // exact
  }
  return d;
}

bool grid_fits(const ConvParams& p, int64_t groups) {
  const int64_t m_tiles = (p.M + BM - 1) / BM, n_tiles = (p.Ncol + BN - 1) / BN;
  return m_tiles <= (int64_t{1} << 31) - 1 && n_tiles * groups <= 65535;
}

template <class T, Pass kPass>
void launch(const ConvParams& p, int64_t groups, int64_t splits, cudaStream_t stream, int device) {
  constexpr bool kKMajor = kPass != Pass::kWgrad;
  constexpr int bytes = smem_bytes<kKMajor>();
  detail::opt_in_smem<conv_implicit_gemm_kernel<T, kPass>>(bytes, device);
  const dim3 grid(static_cast<unsigned>((p.M + BM - 1) / BM),
                  static_cast<unsigned>(((p.Ncol + BN - 1) / BN) * groups),
                  static_cast<unsigned>(splits));
  conv_implicit_gemm_kernel<T, kPass><<<grid, kThreads, bytes, stream>>>(p);
  EMBER_CUDA_CHECK_LAUNCH();
}

/// set_conv_variant's choice: -1 automatic (0 until a GPU run shows 1 faster), 0 mma.sync, 1
/// wgmma on sm_90a; EMBER_CONV_VARIANT forces one for a run.
detail::VariantSwitch g_variant{"EMBER_CONV_VARIANT", "set_conv_variant", -1, 1};

/// The kernels' tiling for one call: which kernel, its column tile and K slab depth.
struct Tiling {
  bool wgmma;
  int bn, bk;
};
Tiling tiling(const ConvParams& p, int device) {
  if (g_variant.get() == 1 && detail::wgmma_available(device))
    return {true, p.Ncol <= 64 ? 64 : 128, kWgBK};
  return {false, BN, BK};
}

template <class T, Pass kPass, int kBN>
void launch_wgmma(const ConvParams& p, int64_t groups, int64_t splits, cudaStream_t stream,
                  int device) {
  constexpr int bytes = wg_smem<kBN>();
  detail::opt_in_smem<conv_wgmma_kernel<T, kPass, kBN>>(bytes, device);
  const dim3 grid(static_cast<unsigned>((p.M + kWgBM - 1) / kWgBM),
                  static_cast<unsigned>(((p.Ncol + kBN - 1) / kBN) * groups),
                  static_cast<unsigned>(splits));
  conv_wgmma_kernel<T, kPass, kBN><<<grid, kWgThreads, bytes, stream>>>(p);
  EMBER_CUDA_CHECK_LAUNCH();
}

/// Runs pass kPass of p on the kernel `t` names. Every grid fits wherever grid_fits passed: the
/// same 128 rows per tile, columns in tiles of 64 or more.
template <Pass kPass, class T>
void launch_tiled(const ConvParams& p, const Tiling& t, int64_t groups, int64_t splits,
                  cudaStream_t stream, int device) {
  if (!t.wgmma)
    launch<T, kPass>(p, groups, splits, stream, device);
  else if (t.bn == 64)
    launch_wgmma<T, kPass, 64>(p, groups, splits, stream, device);
  else
    launch_wgmma<T, kPass, 128>(p, groups, splits, stream, device);
}

/// Splits p's K slabs (of t.bk) into at most `splits` slices of p.kt_per_split slabs (grid z);
/// returns the number of slices, none empty.
int64_t set_split(ConvParams& p, const Tiling& t, int64_t splits) {
  const int64_t KT = std::max<int64_t>(1, (p.K + t.bk - 1) / t.bk);
  p.kt_per_split = (KT + splits - 1) / splits;
  return (KT + p.kt_per_split - 1) / p.kt_per_split;
}

/// Runs pass kPass of p, split as set_split left it, on the kernel `t` names.
template <Pass kPass>
void launch_dtype(const ConvParams& p, const Tiling& t, DType dt, int64_t groups, int64_t splits,
                  cudaStream_t stream, int device) {
  if (dt == kBFloat16)
    launch_tiled<kPass, BF16Bits>(p, t, groups, splits, stream, device);
  else
    launch_tiled<kPass, HalfBits>(p, t, groups, splits, stream, device);
}

}  // namespace

bool conv2d_implicit_gemm(const Tensor& out, const Tensor& x, const Tensor& weight,
                          const Tensor& bias, const Window2d& w, int64_t groups, bool relu) {
  ConvParams p;
  if (!fill_common(p, x, out, weight, w, groups)) return false;
  if (p.Cg == 0 || !pad_channels(p, groups)) return false;
  if (bias.defined() && (bias.dtype() != x.dtype() || bias.dim() != 1 || bias.size(0) != p.O))
    return false;
  p.M = p.N * p.P * p.Q, p.Ncol = p.Og, p.K = p.Cg * w.kh * w.kw;
  if (!grid_fits(p, groups)) return false;
  if (p.M == 0 || p.Ncol == 0) return true;

  NoGradGuard no_grad;
  detail::DeviceGuard guard(out.device().index());
  const Tensor xh = nhwc(x, p.C);
  // (O, R, S, Cg): row o of group g is K-contiguous in (r, s, c) order (c past C zero).
  const Tensor wk = nhwc(weight, p.Cg);
  p.act = xh.data_ptr(), p.opd = wk.data_ptr();
  set_out(p, out);
  p.bias = bias.defined() ? bias.data_ptr() : nullptr;
  p.bias_s = bias.defined() ? bias.stride(0) : 0;
  p.relu = relu;
  const int device = out.device().index();
  const Tiling t = tiling(p, device);
  const int64_t splits = set_split(p, t, 1);
  launch_dtype<Pass::kFprop>(p, t, x.dtype(), groups, splits, detail::stream_of(out), device);
  return true;
}

bool conv2d_implicit_gemm_input_grad(const Tensor& dx, const Tensor& dy, const Tensor& weight,
                                     const Tensor& bias, const Window2d& w, int64_t groups) {
  ConvParams p;
  if (!fill_common(p, dx, dy, weight, w, groups)) return false;
  if (p.Og % 8 != 0 || p.Og == 0) return false;
  if (bias.defined() && (bias.dtype() != dx.dtype() || bias.dim() != 1 || bias.size(0) != p.C))
    return false;
  p.M = p.N * p.H * p.W, p.Ncol = p.Cg, p.K = p.Og * w.kh * w.kw;
  if (!grid_fits(p, groups)) return false;
  if (p.M == 0 || p.Ncol == 0) return true;

  NoGradGuard no_grad;
  detail::DeviceGuard guard(dx.device().index());
  const Tensor dyh = nhwc(dy, p.O);
  p.act = dyh.data_ptr();
  set_out(p, dx);
  p.bias = bias.defined() ? bias.data_ptr() : nullptr;
  p.bias_s = bias.defined() ? bias.stride(0) : 0;
  const int device = dx.device().index();
  const Tiling t = tiling(p, device);
  // One GEMM per output phase (sh x sw of them), each over only the taps that reach its pixels
  // (a strided convolution's dgrad would otherwise multiply zeros for the (s^2 - 1) / s^2 of the
  // taps that land between dy positions). A phase no tap reaches has K = 0: its pixels get zeros
  // (and the bias).
  const Tensor w5 = weight.reshape({groups, p.Og, p.Cg, w.kh, w.kw});
  for (int phy = 0; phy < p.sh; ++phy)
    for (int phx = 0; phx < p.sw; ++phx) {
      const PhaseDim dy_ = phase_dim(phy, static_cast<int>(p.H), p.R, p.sh, p.ph, p.dh);
      const PhaseDim dx_ = phase_dim(phx, static_cast<int>(p.W), p.S, p.sw, p.pw, p.dw);
      if (dy_.count == 0 || dx_.count == 0) continue;
      p.phy = phy, p.phx = phx, p.Hp = dy_.count, p.Wp = dx_.count;
      p.Rp = dy_.taps, p.Sp = dx_.taps, p.base_y = dy_.base, p.base_x = dx_.base;
      p.pdy = dy_.pstep, p.pdx = dx_.pstep;
      p.M = p.N * p.Hp * p.Wp, p.K = p.Og * p.Rp * p.Sp;
      // (G, Cg, Rp, Sp, Og): row c of group g is K-contiguous in (tr, ts, o) order.
      Tensor wk;
      if (p.K > 0)
        wk = w5.slice(3, dy_.r0, std::nullopt, dy_.step)
                 .slice(4, dx_.r0, std::nullopt, dx_.step)
                 .permute({0, 2, 3, 4, 1})
                 .contiguous();
      p.opd = p.K > 0 ? wk.data_ptr() : dyh.data_ptr();  // K = 0: never read
      const int64_t splits = set_split(p, t, 1);
      launch_dtype<Pass::kDgrad>(p, t, dx.dtype(), groups, splits, detail::stream_of(dx), device);
    }
  return true;
}

bool conv2d_implicit_gemm_weight_grad(const Tensor& dw, const Tensor& dy, const Tensor& x,
                                      const Window2d& w, int64_t groups) {
  ConvParams p;
  if (!fill_common(p, x, dy, dw, w, groups, true)) return false;
  const int64_t C = p.C;
  if (p.Og % 8 != 0 || p.Og == 0 || p.Cg == 0 || !pad_channels(p, groups)) return false;
  p.M = p.Cg * w.kh * w.kw, p.Ncol = p.Og, p.K = p.N * p.P * p.Q;
  if (p.K == 0 || !grid_fits(p, groups)) return false;  // empty batch: the caller's zeros

  NoGradGuard no_grad;
  const int device = dw.device().index();
  detail::DeviceGuard guard(device);
  const cudaStream_t stream = detail::stream_of(dw);
  const bool padded = p.C != C;
  const Tensor xh = nhwc(x, p.C), dyh = nhwc(dy, p.O);
  p.act = xh.data_ptr(), p.opd = dyh.data_ptr();
  // With padded channels the kernel fills a (O, Cpad, R, S) gradient; dw takes its first C.
  const Tensor dw_full =
      padded ? make_tensor({p.O, p.C, w.kh, w.kw}, dw.dtype(), dw.device(), "conv2d_weight_grad")
             : dw;
  set_out(p, dw_full);
  // Split K when the tiles alone leave the GPU mostly idle: about two blocks per SM, each
  // slice at least 8 slabs long.
  const Tiling t = tiling(p, device);
  const int64_t KT = (p.K + t.bk - 1) / t.bk;
  const int64_t tiles = ((p.M + BM - 1) / BM) * ((p.Ncol + t.bn - 1) / t.bn) * groups;
  int64_t splits = std::min<int64_t>(
      {(2 * detail::sm_count(device) + tiles - 1) / tiles, std::max<int64_t>(1, KT / 8), 64});
  splits = set_split(p, t, splits);
  Tensor ws;
  if (splits > 1) {
    ws = make_tensor({splits, groups, p.M, p.Ncol}, kFloat32, dw.device(), "conv2d_weight_grad");
    p.ws = static_cast<float*>(ws.data_ptr());
  }
  launch_dtype<Pass::kWgrad>(p, t, x.dtype(), groups, splits, stream, device);
  if (splits > 1) {
    const int64_t total = groups * p.M * p.Ncol;
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((total + 255) / 256, 4096));
    if (x.dtype() == kBFloat16)
      wgrad_reduce_kernel<BF16Bits><<<blocks, 256, 0, stream>>>(p, splits);
    else
      wgrad_reduce_kernel<HalfBits><<<blocks, 256, 0, stream>>>(p, splits);
    EMBER_CUDA_CHECK_LAUNCH();
  }
  if (padded) Tensor(dw).copy_(dw_full.narrow(1, 0, C));  // a handle on dw's storage
  return true;
}

void set_conv_variant(int variant) { g_variant.set(variant); }

}  // namespace ember::cuda
