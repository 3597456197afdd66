// Fused attention on the tensor cores: out = softmax(q k^T * scale [causal]) v and its gradients,
// without forming the (L, S) score matrix. FlashAttention-2 (Dao, "FlashAttention-2: Faster
// Attention with Better Parallelism and Work Partitioning", 2023, algorithms 1 and 2), written
// with mma.sync.m16n8k16 (mma.cuh), bf16 or fp16 inputs, float32 accumulation.
//
// Shapes: q (..., L, D), k (..., S, D), v (..., S, D) with one set of batch dims (BH "heads" in
// all), unit stride along D, rows and batch strides multiples of 8 elements, 16-byte aligned
// bases; the batch dims must collapse to (B, H) strides (a transpose(1, 2) view of (B, T, H, D)
// does); anything else is copied contiguous first (head_view). out (..., L, D) contiguous in
// q's dtype, lse (..., L) contiguous float32 (natural log). dq, dk, dv contiguous.
// Limits: D in {64, 128}, D == Dv (the op routes everything else to the composite).
//
// Forward (attention_forward_kernel): one block of 4 warps per (64 query rows, head); warp w owns
// rows 16 w .. 16 w + 15. The Q tile goes to shared memory once and into A fragments (registers);
// K and V tiles of 64 keys stream through two shared-memory stages filled by cp.async (one tile
// ahead; rows past S zero-filled). Per key tile, each warp:
//   S (16, 64) = Q K^T              ldmatrix (K rows are B's columns) + mma
//   online softmax in registers     x = S * scale * log2(e); m' = max(m, rowmax x); alpha =
//                                   2^(m - m'); P = 2^(x - m'); l = alpha l + rowsum P; rows
//                                   whose max is still -inf use 0 as base (no NaN)
//   O (16, D) = alpha O + P V       P's accumulators re-packed in registers as the A fragments of
//                                   the next mma (the FA2 register trick: the C layout of two
//                                   adjacent 8-key tiles is the A layout of one 16-key slice);
//                                   V's fragments by ldmatrix.trans
// then out = O / l and lse = m ln 2 + ln l. Causal (top-left aligned as PyTorch's is_causal:
// query i sees keys 0..i, also when L != S): key tiles wholly above a block's last row are
// skipped, the diagonal tile and the ragged last tile (S % 64) are masked elementwise to -inf.
// Causal blocks run heaviest first (reversed query-tile order). S == 0: zeros and lse -inf.
//
// Backward, deterministic (no atomics; the project promises bitwise-repeatable results):
//   attention_dot_kernel     Di = rowsum(dO * O) in float32, one warp per row
//   attention_dkdv_kernel    one block per (64-key tile, head), warp w owns 16 keys; query tiles
//                            stream through two stages (Q, dO, lse, Di). Per query tile:
//                            S^T = K Q^T, P^T = 2^(S^T scale log2 e - lse log2 e), dV += P^T dO,
//                            dP^T = V dO^T, dS^T = P^T (dP^T - Di), dK += dS^T Q; dK *= scale.
//   attention_dq_kernel      one block per (64-query tile, head), key tiles streamed as in the
//                            forward: S = Q K^T, P, dP = dO V^T, dS, dQ += dS K; dQ *= scale.
// FA2 computes dQ in the dK/dV loop with float atomics (5 tile products per (query, key) tile
// pair); the split here recomputes S and dP in the dQ kernel: 7 products instead of 5, 1.4x the
// backward's tensor-core work, for results that are the same bit for bit run to run.
// The probabilities and dS enter the tensor cores rounded to T, as in FA2.
//
// Dropout (dropout_p > 0): element (head bh, query i, key j) keeps with the Philox word of
// element e = (bh L + i) S + j of a (BH, L, S) bernoulli draw at (seed, offset) (block offset +
// e / 4, word e % 4; kept when word * 2^-32 < 1 - p, tested as word < ceil((1 - p) 2^32)), exactly
// cpu::attention_forward_flash's mask, recomputed by every kernel (core/philox.hpp). The kept
// weights are scaled by 1 / (1 - p); l sums the undropped probabilities.
//
// Tiles: 64 x 64, 128 threads (__launch_bounds__(128)), shared rows padded by 16 bytes so the
// 8 rows of each ldmatrix phase fall in different bank groups. Shared memory: forward 5 tiles
// (45 KiB at D = 64, 85 KiB at D = 128), backward 6 tiles (+1 KiB of lse/Di in dK/dV).
// sm_90a (attention_forward_kernel<T, D, true>, set_attention_forward_variant(1); opt-in until a
// GPU run has confirmed it):
// the block's 4 warps are one warpgroup, so S = Q K^T is D / 16 wgmma.m64n64k16 straight from
// shared memory, Q, K and V tiles stored by cp.async in the 128-byte swizzle layout (load_tile<T,
// D, true>; a fence to the async proxy before the barrier), whose accumulators land in exactly the
// layout the mma.sync path leaves (a warp's 16 rows); the softmax is unchanged, and O += P V is 4
// wgmma.m64n{64,128}k16 with P as the register A operand (the same re-packing as for mma.sync) and
// V read N-major from its swizzled tile (imm-trans-b).
// sm_90a, warp-specialised (attention_forward_ws_kernel, set_attention_forward_variant(2) with key
// tiles of 128, 3 with 64; opt-in too): FlashAttention-3's structure on the same products and
// softmax (templated on the tile's width): 128 query rows per block, a
// producer warpgroup whose one thread loads Q, K and V tiles by TMA (rank-4 tensor maps over the
// (B, H, rows, D) heads, so transposed views are read in place) into stages guarded by mbarriers,
// and two consumer warpgroups (64 rows each) that overlap each tile's softmax with the previous
// tile's P V on the tensor cores; setmaxnreg moves registers from the producer to the consumers.
// The two consumers take turns at issuing their products (named barriers, FA3's ping-pong).
// set_attention_forward_variant picks one for tests. The backward has a wgmma variant too
// (set_attention_backward_variant(1)): the same kernels with swizzled tiles, every product on
// wgmma. Next steps: TMA and warp specialisation for the backward.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/kernels.hpp"
#include "core/philox.hpp"
#include "cuda/common.cuh"
#include "cuda/loops.cuh"
#include "cuda/mma.cuh"
#include "cuda/tma.cuh"
#include "cuda/variant.hpp"
#include "ember/autograd.hpp"
#include "ember/ops.hpp"

namespace ember::cuda {
namespace {

using detail::BF16Bits;
using detail::HalfBits;

constexpr int kBlockM = 64;    // query rows per block (16 per warp)
constexpr int kBlockN = 64;    // keys per tile
constexpr int kThreads = 128;  // 4 warps
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

template <class T>
using mma_t = std::conditional_t<std::is_same_v<T, HalfBits>, __half, __nv_bfloat16>;

/// One head's matrices: element (b, h, r, d) at ptr + b * sb + h * sh + r * sr + d.
struct HeadPtr {
  const void* ptr;
  int64_t sb, sh, sr;
};

struct Params {
  HeadPtr q, k, v, o, dout;  // o: the forward's output (backward), dout: its gradient
  void* out;                 // forward: out (BH, L, D); backward: dq (BH, L, D)
  float* lse;                // (BH, L)
  float* di;                 // backward: rowsum(dO * O) (BH, L)
  void* dk;                  // (BH, S, D)
  void* dv;                  // (BH, S, D)
  int64_t H, BH, L, S;
  float scale, scale_log2;
  bool causal, dropout;
  uint64_t keep_threshold;  // keep when word < this (2^32: always)
  float keep_scale;         // 1 / (1 - p)
  uint64_t seed, offset;
};

template <class T>
__device__ __forceinline__ const T* head_ptr(const HeadPtr& h, int64_t bh, int64_t H) {
  return static_cast<const T*>(h.ptr) + (bh / H) * h.sb + (bh % H) * h.sh;
}

/// Two floats as a pair of T in one register, the first in the low half.
template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  return static_cast<uint32_t>(detail::convert<T>(lo).v) |
         (static_cast<uint32_t>(detail::convert<T>(hi).v) << 16);
}

/// The register trick: the A fragment of the 16-key slice ks (keys 16 ks .. 16 ks + 15) of a
/// warp's (16, 64) accumulators pm is exactly accumulator tiles 2 ks and 2 ks + 1, rounded to T
/// and packed in pairs (for mma.sync and for wgmma's register A alike).
template <class T, int NT>
__device__ __forceinline__ void a_fragment(uint32_t (&a)[4], const float (&pm)[NT][4], int ks) {
  a[0] = pack2<T>(pm[2 * ks][0], pm[2 * ks][1]);
  a[1] = pack2<T>(pm[2 * ks][2], pm[2 * ks][3]);
  a[2] = pack2<T>(pm[2 * ks + 1][0], pm[2 * ks + 1][1]);
  a[3] = pack2<T>(pm[2 * ks + 1][2], pm[2 * ks + 1][3]);
}

/// Rows [r0, r0 + 64) of x (rows at stride sr, rows >= n zero-filled) into dst by cp.async, 16
/// bytes per copy, all 128 threads. Padded (kSwizzled false): a (64, D + 8) tile of 16-bit
/// elements. kSwizzled: the 128-byte swizzle layout wgmma reads (mma::smem_desc_sw128), D / 64
/// panels of (64 rows x 128 bytes) 8 KiB apart, the 16-byte chunk c of row r of a panel at chunk
/// c ^ (r % 8); dst 1024-byte aligned.
template <class T, int D, bool kSwizzled = false>
__device__ __forceinline__ void load_tile(void* dst, const T* x, int64_t sr, int64_t r0,
                                          int64_t n) {
  constexpr int kPerRow = D / 8, kCopies = kBlockN * D / 8 / kThreads;
  const int tid = static_cast<int>(threadIdx.x);
#pragma unroll
  for (int i = 0; i < kCopies; ++i) {
    const int c = tid + i * kThreads, r = c / kPerRow, col = c % kPerRow;
    const int at = kSwizzled ? (col / 8) * (kBlockN * 128) + r * 128 + (((col % 8) ^ (r % 8)) * 16)
                             : (r * (D + 8) + col * 8) * 2;
    const bool ok = r0 + r < n;
    mma::cp_async_16(static_cast<unsigned char*>(dst) + at, ok ? x + (r0 + r) * sr + col * 8 : x,
                     ok ? 16 : 0);
  }
}

#if defined(EMBER_HAVE_WGMMA)
/// S (the warpgroup's 64 query rows x kN keys) += Q K^T, issued (not committed): Q's tile qsw
/// (64 rows, D / 64 panels 8 KiB apart) and K's ksw (kN rows, panels kN x 128 bytes apart), k16
/// step kk at panel kk / 4, 32 (kk % 4) bytes into the rows.
template <class T, int D, int kN = kBlockN>
__device__ __forceinline__ void issue_scores(float (&d)[kN / 2], const unsigned char* qsw,
                                             const unsigned char* ksw) {
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const int off = (kk % 4) * 32;
    const uint64_t da = mma::smem_desc_sw128(qsw + (kk / 4) * (64 * 128) + off);
    const uint64_t db = mma::smem_desc_sw128(ksw + (kk / 4) * (kN * 128) + off);
    if constexpr (kN == 64)
      mma::wgmma_m64n64k16<mma_t<T>>(d, da, db);
    else
      mma::wgmma_m64n128k16<mma_t<T>>(d, da, db);
  }
}
/// s (the warpgroup's 64 query rows x 64 keys; a warp's 16 rows as product_abt leaves them) =
/// Q K^T by wgmma.m64n64k16 from the swizzled tiles qsw and ksw (load_tile<T, D, true>): D / 16
/// instructions, k16 step kk at panel kk / 4, 32 (kk % 4) bytes into the rows. Waits for them.
template <class T, int D>
__device__ __forceinline__ void scores_wgmma(float (&s)[8][4], const unsigned char* qsw,
                                             const unsigned char* ksw) {
  float(&d)[32] = *reinterpret_cast<float(*)[32]>(&s[0][0]);
  mma::fence_operands(d);
  mma::wgmma_fence();
  issue_scores<T, D>(d, qsw, ksw);
  mma::wgmma_commit();
  mma::wgmma_wait<0>();
  mma::fence_operands(d);
}
/// The NT / 2 register-A fragments of P (a warp's (16, 8 NT) probabilities, rounded to T).
template <class T, int NT>
__device__ __forceinline__ void pack_p(uint32_t (&a)[NT / 2][4], const float (&pm)[NT][4]) {
#pragma unroll
  for (int ks = 0; ks < NT / 2; ++ks) a_fragment<T>(a[ks], pm, ks);
}
/// O (the warpgroup's 64 rows x D) += P V, issued (not committed): P from registers, V's tile vsw
/// (kN keys; D / 64 panels kN x 128 bytes apart) read N-major, k16 steps 16 rows = 2048 bytes.
template <class T, int D, int kN = kBlockN>
__device__ __forceinline__ void issue_pv(float (&d)[D / 2], const uint32_t (&a)[kN / 16][4],
                                         const unsigned char* vsw) {
#pragma unroll
  for (int ks = 0; ks < kN / 16; ++ks) {
    const uint64_t desc = mma::smem_desc_sw128_mn(vsw + ks * 2048, kN * 128);
    if constexpr (D == 64)
      mma::wgmma_m64n64k16_rs<mma_t<T>, true>(d, a[ks], desc);
    else
      mma::wgmma_m64n128k16_rs<mma_t<T>, true>(d, a[ks], desc);
  }
}
/// o (the warpgroup's 64 query rows x D; a warp's 16 rows as product_px leaves them) += P V by
/// wgmma with P from registers (the accumulators of two adjacent 8-key tiles re-packed as the A
/// fragment of one 16-key slice, as product_px does for mma.sync) and V from the swizzled tile
/// vsw (load_tile<T, D, true>) read N-major (imm-trans-b): row k of a panel holds 64 of V's
/// columns for key k, so V (keys x D, D contiguous) is the canonical MN-major layout with the
/// panels 8 KiB apart (LBO) and the k16 step at 16 rows = 2048 bytes. Waits for them.
template <class T, int D>
__device__ __forceinline__ void product_pv_wgmma(float (&o)[D / 8][4], const float (&pm)[8][4],
                                                 const unsigned char* vsw) {
  float(&d)[D / 2] = *reinterpret_cast<float(*)[D / 2]>(&o[0][0]);
  uint32_t a[4][4];  // all fragments packed before the fence: no register write after it
  pack_p<T>(a, pm);
  uint32_t(&a_flat)[16] = *reinterpret_cast<uint32_t(*)[16]>(&a[0][0]);
  mma::fence_operands(a_flat);
  mma::fence_operands(d);
  mma::wgmma_fence();
  issue_pv<T, D>(d, a, vsw);
  mma::wgmma_commit();
  mma::wgmma_wait<0>();
  mma::fence_operands(d);
}
/// Orders this thread's cp.async writes before the async proxy's (wgmma's) reads.
__device__ __forceinline__ void fence_to_async_proxy() { mma::fence_proxy_async(); }
#else
template <class T, int D>
__device__ __forceinline__ void scores_wgmma(float (&)[8][4], const unsigned char*,
                                             const unsigned char*) {
  __trap();  // never launched: forward() checks wgmma_available
}
template <class T, int D>
__device__ __forceinline__ void product_pv_wgmma(float (&)[D / 8][4], const float (&)[8][4],
                                                 const unsigned char*) {
  __trap();
}
__device__ __forceinline__ void fence_to_async_proxy() {}
#endif

/// Word j of a block by selects (an indexed load would put the block in local memory).
__device__ __forceinline__ uint32_t word(const rng::Words& w, int j) {
  return j == 0 ? w.w[0] : j == 1 ? w.w[1] : j == 2 ? w.w[2] : w.w[3];
}

/// The dropout factor of element e of the (BH, L, S) draw: keep_scale or 0.
__device__ __forceinline__ float drop_factor(const Params& p, uint64_t e) {
  const rng::Words w = rng::philox_block(p.seed, p.offset + e / 4);
  return word(w, static_cast<int>(e % 4)) < p.keep_threshold ? p.keep_scale : 0.f;
}

/// The factors of elements e and e + 1 (one Philox block unless e is a block's last word).
__device__ __forceinline__ void drop_pair(const Params& p, uint64_t e, float& z0, float& z1) {
  const rng::Words w = rng::philox_block(p.seed, p.offset + e / 4);
  const int j = static_cast<int>(e % 4);
  z0 = word(w, j) < p.keep_threshold ? p.keep_scale : 0.f;
  if (j < 3)
    z1 = word(w, j + 1) < p.keep_threshold ? p.keep_scale : 0.f;
  else
    z1 = drop_factor(p, e + 1);
}

/// A fragments of the warp's 16 rows of a (64, D + 8) shared tile, k slice kk..kk + 15.
template <int D>
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const uint16_t* tile, int row0, int kk) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  mma::ldmatrix_x4<false>(a, tile + (row0 + lane % 16) * (D + 8) + kk + (lane / 16) * 8);
}

/// B fragments of two 8-column tiles (columns n0..n0 + 15) for k slice kk..kk + 15, where the
/// shared tile's rows are B's columns (K-major: B[k][n] = tile[n][k]).
template <int D>
__device__ __forceinline__ void load_b_kmajor(uint32_t (&b0)[2], uint32_t (&b1)[2],
                                              const uint16_t* tile, int n0, int kk) {
  const int lane = static_cast<int>(threadIdx.x) & 31, j = lane / 8, rr = lane % 8;
  uint32_t r[4];
  mma::ldmatrix_x4<false>(r, tile + (n0 + (j / 2) * 8 + rr) * (D + 8) + kk + (j % 2) * 8);
  b0[0] = r[0], b0[1] = r[1], b1[0] = r[2], b1[1] = r[3];
}

/// The same where the shared tile's rows are B's k (row-major B[k][n] = tile[k][n]): transposed.
template <int D>
__device__ __forceinline__ void load_b_rowmajor(uint32_t (&b0)[2], uint32_t (&b1)[2],
                                                const uint16_t* tile, int n0, int kk) {
  const int lane = static_cast<int>(threadIdx.x) & 31, j = lane / 8, rr = lane % 8;
  uint32_t r[4];
  mma::ldmatrix_x4<true>(r, tile + (kk + (j % 2) * 8 + rr) * (D + 8) + n0 + (j / 2) * 8);
  b0[0] = r[0], b0[1] = r[1], b1[0] = r[2], b1[1] = r[3];
}

/// acc (16, 64) += A (16 rows of tile a from row0, D deep) B^T with B's rows the 64 rows of tile
/// b: the score-like products Q K^T, K Q^T, dO V^T, V dO^T.
template <class T, int D>
__device__ __forceinline__ void product_abt(float (&acc)[8][4], const uint16_t* a, int row0,
                                            const uint16_t* b) {
#pragma unroll
  for (int kk = 0; kk < D; kk += 16) {
    uint32_t af[4];
    load_a<D>(af, a, row0, kk);
#pragma unroll
    for (int nj = 0; nj < 4; ++nj) {
      uint32_t b0[2], b1[2];
      load_b_kmajor<D>(b0, b1, b, nj * 16, kk);
      mma::mma_16816<mma_t<T>>(acc[2 * nj], af, b0);
      mma::mma_16816<mma_t<T>>(acc[2 * nj + 1], af, b1);
    }
  }
}

/// acc (16, D) += P (16, 64; accumulators, re-packed into A fragments) X with X the 64 rows of
/// tile x (row-major): P V, P^T dO, dS^T Q, dS K.
template <class T, int D>
__device__ __forceinline__ void product_px(float (&acc)[D / 8][4], const float (&pm)[8][4],
                                           const uint16_t* x) {
#pragma unroll
  for (int ks = 0; ks < 4; ++ks) {  // k = 16 ks .. 16 ks + 15: accumulator tiles 2 ks, 2 ks + 1
    uint32_t a[4];
    a_fragment<T>(a, pm, ks);
#pragma unroll
    for (int nj = 0; nj < D / 16; ++nj) {
      uint32_t b0[2], b1[2];
      load_b_rowmajor<D>(b0, b1, x, nj * 16, ks * 16);
      mma::mma_16816<mma_t<T>>(acc[2 * nj], a, b0);
      mma::mma_16816<mma_t<T>>(acc[2 * nj + 1], a, b1);
    }
  }
}

template <int N>
__device__ __forceinline__ void zero(float (&acc)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
}

/// Stores rows (row, row + 8) of a warp's (16, D) accumulators times mul into dst (rows at
/// stride D), rows >= n skipped. Lane (g, q) holds columns 8 t + 2 q, + 1 of each tile t.
template <class T, int D>
__device__ __forceinline__ void store_rows(T* dst, const float (&acc)[D / 8][4], int64_t row,
                                           int64_t n, float mul0, float mul1) {
  const int q = static_cast<int>(threadIdx.x) & 3;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t i = row + 8 * r;
    if (i >= n) continue;
    const float mul = r == 0 ? mul0 : mul1;
    uint32_t* out = reinterpret_cast<uint32_t*>(dst + i * D);
#pragma unroll
    for (int t = 0; t < D / 8; ++t)
      out[(8 * t + 2 * q) / 2] = pack2<T>(acc[t][2 * r] * mul, acc[t][2 * r + 1] * mul);
  }
}

/// The two product shapes on either path: acc (a warp's 16 rows of tile a x the 64 rows
/// of tile b) += A B^T, and acc (16 rows x D) += P X with P a warp's (16, 64) accumulators and X
/// the 64 rows of tile x. kWg: the tiles are swizzled (load_tile<T, D, true>) and the warpgroup's
/// wgmma computes all 64 rows at once (warp w's 16 rows land where mma.sync leaves them); else
/// padded tiles and the warp's mma.sync (rows row0..row0 + 15 of a).
template <class T, int D, bool kWg>
__device__ __forceinline__ void tile_abt(float (&acc)[8][4], const unsigned char* a, int row0,
                                         const unsigned char* b) {
  if constexpr (kWg)
    scores_wgmma<T, D>(acc, a, b);
  else
    product_abt<T, D>(acc, reinterpret_cast<const uint16_t*>(a), row0,
                      reinterpret_cast<const uint16_t*>(b));
}
template <class T, int D, bool kWg>
__device__ __forceinline__ void tile_px(float (&acc)[D / 8][4], const float (&pm)[8][4],
                                        const unsigned char* x) {
  if constexpr (kWg)
    product_pv_wgmma<T, D>(acc, pm, x);
  else
    product_px<T, D>(acc, pm, reinterpret_cast<const uint16_t*>(x));
}

/// The shared memory that n tiles of smem_tile take, with the slack to align swizzled ones.
template <int D, bool kWg>
constexpr int smem_tiles_bytes(int n) {
  return kWg ? n * kBlockN * D * 2 + 1024 : n * kBlockN * (D + 8) * 2;
}

/// The 64-row tile i of a kernel's shared memory: padded ((64, D + 8) elements each, from smem)
/// or (kWg) swizzled (64 D 2 bytes each, from smem rounded up to 1024 bytes).
template <int D, bool kWg>
__device__ __forceinline__ unsigned char* smem_tile(unsigned char* smem, int i) {
  if constexpr (kWg) {
    auto* const base = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(smem) + 1023) &
                                                        ~static_cast<uintptr_t>(1023));
    return base + i * (kBlockN * D * 2);
  } else {
    return smem + i * (kBlockN * (D + 8) * 2);
  }
}

/// One key tile (keys k0 .. k0 + 8 NT - 1) of the online softmax for a warp's 16 rows, lane (g, q)
/// holding rows row0 and row0 + 8 (masked: the tile holds keys past S or, causal, past a row).
/// On entry s holds the scores Q K^T; on return P = 2^(x - m') with x = s scale log2(e) (-inf
/// where masked); m becomes m' (the running row max), l = alpha l + rowsum P (summed over the
/// quad at the end; dropout_tile comes after), and alpha = 2^(m - m') is what O must be
/// multiplied by before P V is added. A row whose max is still -inf uses 0 as base (no NaN).
template <int NT>
__device__ __forceinline__ void softmax_tile(const Params& p, float (&s)[NT][4], float (&m)[2],
                                             float (&l)[2], float (&alpha)[2], int64_t k0,
                                             int64_t row0, bool masked) {
  const int q = static_cast<int>(threadIdx.x) & 3;
  float mx[2] = {m[0], m[1]};
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      float x = s[n][e] * p.scale_log2;
      if (masked) {
        const int64_t key = k0 + 8 * n + 2 * q + (e & 1), row = row0 + 8 * (e >> 1);
        if (key >= p.S || (p.causal && key > row)) x = -INFINITY;
      }
      s[n][e] = x;
      mx[e >> 1] = fmaxf(mx[e >> 1], x);
    }
  float base[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {  // the row max over the quad holding the row
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    base[r] = mx[r] == -INFINITY ? 0.f : mx[r];  // all masked so far: P = 0, no NaN
    alpha[r] = exp2f(m[r] - base[r]);
    m[r] = mx[r];
  }
  float sum[2] = {0.f, 0.f};
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float pe = exp2f(s[n][e] - base[e >> 1]);
      s[n][e] = pe;
      sum[e >> 1] += pe;
    }
  l[0] = l[0] * alpha[0] + sum[0];
  l[1] = l[1] * alpha[1] + sum[1];
}

/// P (softmax_tile's s) times the dropout factors of its elements, when p.dropout.
template <int NT>
__device__ __forceinline__ void dropout_tile(const Params& p, float (&s)[NT][4], int64_t bh,
                                             int64_t k0, int64_t row0) {
  if (!p.dropout) return;
  const int q = static_cast<int>(threadIdx.x) & 3;
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int64_t key = k0 + 8 * n + 2 * q, row = row0 + 8 * r;
      float z0, z1;
      drop_pair(p, static_cast<uint64_t>((bh * p.L + row) * p.S + key), z0, z1);
      s[n][2 * r] *= z0;
      s[n][2 * r + 1] *= z1;
    }
}

/// o (a warp's (16, D) accumulators) *= alpha of its two rows.
template <int D>
__device__ __forceinline__ void rescale(float (&o)[D / 8][4], const float (&alpha)[2]) {
#pragma unroll
  for (int t = 0; t < D / 8; ++t) {
    o[t][0] *= alpha[0], o[t][1] *= alpha[0];
    o[t][2] *= alpha[1], o[t][3] *= alpha[1];
  }
}

/// The epilogue of a warp's 16 rows of one head: out = O / l (l summed over the quad first), lse =
/// m ln 2 + ln l (-inf for a row that saw no key; written by the quad's lead lane), rows >= L
/// skipped. (`lead` from the caller's lane: reading threadIdx.x here cost the mma.sync forward 35
/// registers at D 64 with nvcc 13.0.)
template <class T, int D>
__device__ __forceinline__ void store_forward(const float (&o)[D / 8][4], const float (&m)[2],
                                              float (&l)[2], T* out, float* lse, int64_t L,
                                              int64_t row0, bool lead) {
  float inv[2], ls[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    inv[r] = l[r] > 0.f ? 1.f / l[r] : 0.f;
    ls[r] = l[r] > 0.f ? m[r] * kLn2 + logf(l[r]) : -INFINITY;
  }
  store_rows<T, D>(out, o, row0, L, inv[0], inv[1]);
  if (lead) {
    if (row0 < L) lse[row0] = ls[0];
    if (row0 + 8 < L) lse[row0 + 8] = ls[1];
  }
}

// ---- forward ----

/// kWg (sm_90a): Q, K and V tiles in the 128-byte swizzle layout, S = Q K^T by wgmma
/// (scores_wgmma) and O += P V by wgmma with P in registers (product_pv_wgmma); else padded
/// tiles and mma.sync. The rest (masks, online softmax, dropout, epilogue) is the same code.
template <class T, int D, bool kWg>
__global__ void __launch_bounds__(kThreads) attention_forward_kernel(const Params p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  // tiles (padded, or kWg swizzled): Q, K stage 0 and 1, V stage 0 and 1
  unsigned char* const qs = smem_tile<D, kWg>(smem_raw, 0);
  const auto k_stage = [&](int s) { return smem_tile<D, kWg>(smem_raw, 1 + s); };
  const auto v_stage = [&](int s) { return smem_tile<D, kWg>(smem_raw, 3 + s); };
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int g = lane / 4;
  const int64_t qt = p.causal ? gridDim.x - 1 - blockIdx.x : blockIdx.x;  // heaviest first
  const int64_t q0 = qt * kBlockM;
  const int64_t row0 = q0 + warp * 16 + g;  // this lane's rows: row0, row0 + 8
  // Keys [0, kv_end) matter to this block (causal: none past its last row).
  const int64_t kv_end = p.causal ? (p.S < q0 + kBlockM ? p.S : q0 + kBlockM) : p.S;
  const int n_tiles = static_cast<int>((kv_end + kBlockN - 1) / kBlockN);

  for (int64_t bh = blockIdx.y; bh < p.BH; bh += gridDim.y) {
    const T* const Q = head_ptr<T>(p.q, bh, p.H);
    const T* const K = head_ptr<T>(p.k, bh, p.H);
    const T* const V = head_ptr<T>(p.v, bh, p.H);
    load_tile<T, D, kWg>(qs, Q, p.q.sr, q0, p.L);
    load_tile<T, D, kWg>(k_stage(0), K, p.k.sr, 0, p.S);
    load_tile<T, D, kWg>(v_stage(0), V, p.v.sr, 0, p.S);
    mma::cp_async_commit();

    uint32_t qf[D / 16][4];
    float o[D / 8][4];
    zero(o);
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
    for (int t = 0; t < n_tiles; ++t) {
      if (t + 1 < n_tiles) {  // the next tile into the other stage (free since the last barrier)
        const int s = (t + 1) & 1;
        load_tile<T, D, kWg>(k_stage(s), K, p.k.sr, (t + 1) * int64_t{kBlockN}, p.S);
        load_tile<T, D, kWg>(v_stage(s), V, p.v.sr, (t + 1) * int64_t{kBlockN}, p.S);
      }
      mma::cp_async_commit();
      mma::cp_async_wait<1>();                    // tile t (and Q) landed, this thread's copies
      if constexpr (kWg) fence_to_async_proxy();  // visible to wgmma's reads
      __syncthreads();                            // everyone's
      if (!kWg && t == 0) {
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk)
          load_a<D>(qf[kk], reinterpret_cast<const uint16_t*>(qs), warp * 16, kk * 16);
      }
      const int64_t k0 = t * int64_t{kBlockN};

      float s[8][4];  // (16, 64): lane (g, q) holds rows g, g + 8, keys 8 n + 2 q, + 1
      zero(s);
      if constexpr (kWg) {
        scores_wgmma<T, D>(s, qs, k_stage(t & 1));
      } else {
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
          for (int nj = 0; nj < 4; ++nj) {
            uint32_t b0[2], b1[2];
            load_b_kmajor<D>(b0, b1, reinterpret_cast<const uint16_t*>(k_stage(t & 1)), nj * 16,
                             kk * 16);
            mma::mma_16816<mma_t<T>>(s[2 * nj], qf[kk], b0);
            mma::mma_16816<mma_t<T>>(s[2 * nj + 1], qf[kk], b1);
          }
        }
      }
      const bool masked = k0 + kBlockN > p.S || (p.causal && k0 + kBlockN - 1 > q0);
      float alpha[2];
      softmax_tile(p, s, m, l, alpha, k0, row0, masked);
      rescale<D>(o, alpha);
      dropout_tile(p, s, bh, k0, row0);
      tile_px<T, D, kWg>(o, s, v_stage(t & 1));
      __syncthreads();  // stage t & 1 is read; the next iteration may refill it
    }
    mma::cp_async_wait<0>();

    store_forward<T, D>(o, m, l, static_cast<T*>(p.out) + bh * p.L * D, p.lse + bh * p.L, p.L, row0,
                        (lane & 3) == 0);
    __syncthreads();  // qs is free for the next head
  }
}

/// The warp-specialised forward (variants 2 and 3, sm_90a): 128 query rows per block; 3
/// warpgroups, 0 the producer (one thread issuing TMA copies), 1 and 2 the consumers of rows 0-63
/// and 64-127; Q once, K and V tiles of kN keys (128: variant 2, 64: variant 3) through kStages
/// stages, all in the 128-byte swizzle layout (a tile of r rows: D / 64 panels of r rows x 128
/// bytes). At D 128 with 128-key tiles 3 stages of 64 KiB fill the 227 KiB a block may have.
template <int D, int kN>
struct WsTile {
  static constexpr int kRows = 128, kThreads = 384;
  static constexpr int kStages = kN == 64 ? (D == 64 ? 6 : 4) : (D == 64 ? 5 : 3);
  static constexpr int kQTileBytes = 64 * D * 2;  // a consumer's Q
  static constexpr int kTileBytes = kN * D * 2;   // a K or V tile
  static constexpr int kQBytes = 2 * kQTileBytes;
  static constexpr int kStageBytes = 2 * kTileBytes;  // K, then V
  static constexpr int kBarriers = 3 * kStages + 1;   // full K, full V, empty per stage; Q
  static constexpr int kSmem = kQBytes + kStages * kStageBytes + kBarriers * 8 + 1024;
  static_assert(kSmem <= 227 * 1024, "WsTile: more shared memory than a block may have");
};

/// out, lse = attention(q, k, v) by the warp-specialised pipeline (FlashAttention-3's structure,
/// Shah et al. 2024): the producer's one thread loads each consumer's Q (a Q barrier) and then
/// walks the key tiles: wait until the stage is free (its "empty" barrier: one arrival per
/// consumer warp), K's bytes on its "full K" barrier and V's on "full V", so S can start before V
/// has landed. Each consumer warpgroup pipelines within itself: for tile t it issues S_t = Q K_t^T,
/// then O += P_{t-1} V_{t-1} (P in registers), waits for S_t only, runs the softmax of S_t while
/// the tensor cores still work on P V, then waits for P V, releases stage t - 1, rescales O by
/// alpha_t and packs P_t; and the two consumers take turns at issuing their products (named
/// barriers), so that one's softmax runs against the other's products. Causal: the block loads
/// the key tiles its last row sees. A block with rows only for its first consumer (L % 128 in
/// 1..64 at the last block) runs one, without turns.
template <class T, int D, int kN>
__global__ void __launch_bounds__(384, 1)
    attention_forward_ws_kernel(const Params p, const __grid_constant__ CUtensorMap map_q,
                                const __grid_constant__ CUtensorMap map_k,
                                const __grid_constant__ CUtensorMap map_v) {
#if defined(EMBER_HAVE_WGMMA)
  using Tile = WsTile<D, kN>;
  constexpr int kStages = Tile::kStages, kTileBytes = Tile::kTileBytes;
  constexpr int kQTileBytes = Tile::kQTileBytes, kStageBytes = Tile::kStageBytes;
  constexpr int kPanels = D / 64;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* const smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~static_cast<uintptr_t>(1023));
  unsigned char* const stages = smem + Tile::kQBytes;  // Q of consumer c at smem + c kQTileBytes
  uint64_t* const full_k = reinterpret_cast<uint64_t*>(stages + kStages * kStageBytes);
  uint64_t* const full_v = full_k + kStages;
  uint64_t* const empty = full_v + kStages;
  uint64_t* const q_full = empty + kStages;
  // The warpgroup from lane 0's thread index: the same value, but one ptxas knows is
  // warp-uniform, so that the branches on it are not divergent paths around the wgmma.
  const int tid = static_cast<int>(threadIdx.x), wg = __shfl_sync(0xffffffffu, tid / 128, 0);
  const int64_t qt = p.causal ? gridDim.x - 1 - blockIdx.x : blockIdx.x;  // heaviest first
  const int64_t q0 = qt * Tile::kRows, bh = blockIdx.y;
  const int consumers = q0 + 64 < p.L ? 2 : 1;
  // The keys rows [.., end) see: all, or (causal) those up to the last row.
  const auto key_tiles = [&p](int64_t end) {
    const int64_t rows_end = end < p.L ? end : p.L;
    const int64_t keys = p.causal && rows_end < p.S ? rows_end : p.S;
    return static_cast<int>((keys + kN - 1) / kN);
  };
  const int n_tiles = key_tiles(q0 + 64 * consumers);
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      tma::mbar_init(&full_k[s], 1);
      tma::mbar_init(&full_v[s], 1);
      tma::mbar_init(&empty[s], 4 * consumers);
    }
    tma::mbar_init(q_full, 1);
    tma::fence_barrier_init();
  }
  __syncthreads();
  const auto h = static_cast<int32_t>(bh % p.H), b = static_cast<int32_t>(bh / p.H);

  if (wg == 0) {                   // the producer
    tma::setmaxnreg<24, false>();  // 24 x 128 + 240 x 256 registers fit the SM's 65536
    if (tid == 0) {
      tma::mbar_arrive_expect_tx(q_full, static_cast<uint32_t>(consumers * kQTileBytes));
      for (int c = 0; c < consumers; ++c)
#pragma unroll
        for (int i = 0; i < kPanels; ++i)
          tma::load_4d(smem + c * kQTileBytes + i * 8192, &map_q, 64 * i,
                       static_cast<int32_t>(q0 + 64 * c), h, b, q_full);
      for (int t = 0; t < n_tiles; ++t) {
        const int st = t % kStages;
        tma::mbar_wait(&empty[st], ((t / kStages) & 1) ^ 1);  // free (first round: at once)
        unsigned char* const ks = stages + st * kStageBytes;
        tma::mbar_arrive_expect_tx(&full_k[st], kTileBytes);
#pragma unroll
        for (int i = 0; i < kPanels; ++i)
          tma::load_4d(ks + i * kN * 128, &map_k, 64 * i, t * kN, h, b, &full_k[st]);
        tma::mbar_arrive_expect_tx(&full_v[st], kTileBytes);
#pragma unroll
        for (int i = 0; i < kPanels; ++i)
          tma::load_4d(ks + kTileBytes + i * kN * 128, &map_v, 64 * i, t * kN, h, b, &full_v[st]);
      }
    }
    return;
  }

  tma::setmaxnreg<240, true>();  // the whole warpgroup, before any of it may return
  const int c = wg - 1;
  if (c >= consumers) return;
  const int lane = tid & 31, warp = (tid / 32) % 4;
  const int64_t qc0 = q0 + 64 * c, row0 = qc0 + warp * 16 + lane / 4;  // rows row0, row0 + 8
  const unsigned char* const qs = smem + c * kQTileBytes;
  constexpr int NT = kN / 8;  // 8-key accumulator tiles per warp row pair
  float o[D / 8][4], s[NT][4];
  float(&od)[D / 2] = *reinterpret_cast<float(*)[D / 2]>(&o[0][0]);
  float(&sd)[kN / 2] = *reinterpret_cast<float(*)[kN / 2]>(&s[0][0]);
  uint32_t pa[kN / 16][4];  // P_{t-1} as register-A fragments
  uint32_t(&pa_flat)[kN / 4] = *reinterpret_cast<uint32_t(*)[kN / 4]>(&pa[0][0]);
  zero(o);
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const auto phase = [](int t) { return static_cast<uint32_t>(t / kStages) & 1; };
  // S_t = Q K_t^T, issued and committed (not waited for).
  const auto issue_s = [&](int t) {
    zero(s);
    tma::mbar_wait(&full_k[t % kStages], phase(t));
    mma::fence_operands(sd);
    mma::fence_operands(od);
    mma::fence_operands(pa_flat);
    mma::wgmma_fence();
    issue_scores<T, D, kN>(sd, qs, stages + (t % kStages) * kStageBytes);
    mma::wgmma_commit();
  };
  // O += P_t V_t, issued and committed, once V_t has landed.
  const auto issue_o = [&](int t) {
    tma::mbar_wait(&full_v[t % kStages], phase(t));
    issue_pv<T, D, kN>(od, pa, stages + (t % kStages) * kStageBytes + kTileBytes);
    mma::wgmma_commit();
  };
  // The online softmax of S_t into P_t (registers), m and l; returns alpha through its argument.
  const auto softmax = [&](int t, float(&alpha)[2]) {
    mma::fence_operands(sd);
    const int64_t k0 = t * int64_t{kN};
    const bool masked = k0 + kN > p.S || (p.causal && k0 + kN - 1 > qc0);
    softmax_tile(p, s, m, l, alpha, k0, row0, masked);
    dropout_tile(p, s, bh, k0, row0);
  };
  const auto release = [&](int t) {  // every wgmma reading stage t has retired
    mma::fence_operands(od);
    if (lane == 0) tma::mbar_arrive(&empty[t % kStages]);
  };
  // FA3's ping-pong: with two consumers, named barrier 1 + c is consumer c's turn to issue its
  // products, and each hands the turn to the other once it has issued them, so one warpgroup's
  // softmax overlaps the other's products. Consumer 1 gives consumer 0 the first turn and skips
  // its own last hand-over (consumer 0 has no turn left to take): every barrier phase completes.
  const bool pingpong = consumers == 2;
  const auto my_turn = [&] {
    if (pingpong) tma::named_barrier(1 + c, 256, /*wait=*/true);
  };
  const auto pass_turn = [&](int t) {
    if (pingpong && !(c == 1 && t == n_tiles - 1)) tma::named_barrier(2 - c, 256, /*wait=*/false);
  };
  if (pingpong && c == 1) tma::named_barrier(1, 256, /*wait=*/false);
  // Both consumers walk all n_tiles >= 1 tiles (S > 0), so that they take the same number of
  // turns (causal, 64-key tiles: the block's last tile is wholly masked for consumer 0's rows,
  // P = 0 there). Every path below is the same for the whole warpgroup and free of conditions
  // around the wgmma (ptxas serialises wgmma it finds on a path it cannot prove uniform, its note
  // C7520).
  tma::mbar_wait(q_full, 0);
  float alpha[2];
  my_turn();
  issue_s(0);
  pass_turn(0);
  mma::wgmma_wait<0>();
  softmax(0, alpha);
  rescale<D>(o, alpha);
  pack_p<T>(pa, s);
  for (int t = 1; t < n_tiles; ++t) {
    my_turn();
    issue_s(t);
    issue_o(t - 1);  // P_{t-1} V_{t-1} behind S_t
    pass_turn(t);
    mma::wgmma_wait<1>();  // S_t only
    softmax(t, alpha);     // while P_{t-1} V_{t-1} runs
    mma::wgmma_wait<0>();
    release(t - 1);
    rescale<D>(o, alpha);
    pack_p<T>(pa, s);
  }
  mma::fence_operands(od);  // the last tile's P V
  mma::fence_operands(pa_flat);
  mma::wgmma_fence();
  issue_o(n_tiles - 1);
  mma::wgmma_wait<0>();
  release(n_tiles - 1);
  store_forward<T, D>(o, m, l, static_cast<T*>(p.out) + bh * p.L * D, p.lse + bh * p.L, p.L, row0,
                      (lane & 3) == 0);
#else
  (void)p, (void)map_q, (void)map_k, (void)map_v;
#endif
}

// ---- backward ----

/// di[bh][i] = sum_d dout[bh][i][d] * o[bh][i][d] in float32; one warp per row.
template <class T, int D>
__global__ void __launch_bounds__(kThreads) attention_dot_kernel(const Params p) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t rows = p.BH * p.L, warps = int64_t{gridDim.x} * (kThreads / 32);
  for (int64_t r = (blockIdx.x * int64_t{kThreads} + threadIdx.x) / 32; r < rows; r += warps) {
    const int64_t bh = r / p.L, i = r % p.L;
    const T* const dO = head_ptr<T>(p.dout, bh, p.H) + i * p.dout.sr;
    const T* const O = head_ptr<T>(p.o, bh, p.H) + i * p.o.sr;
    float acc = 0.f;
#pragma unroll
    for (int d = lane; d < D; d += 32)
      acc = fmaf(detail::convert<float>(dO[d]), detail::convert<float>(O[d]), acc);
#pragma unroll
    for (int w = 16; w > 0; w /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, w);
    if (lane == 0) p.di[r] = acc;
  }
}

/// dK and dV of one 64-key tile: query tiles streamed through two stages of (Q, dO, lse, Di).
/// kWg (sm_90a): the four products on wgmma from swizzled tiles (tile_abt, tile_px).
template <class T, int D, bool kWg>
__global__ void __launch_bounds__(kThreads) attention_dkdv_kernel(const Params p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  // tiles: K, V, Q stage 0 and 1, dO stage 0 and 1; then lse (times log2(e)) and Di, 2 x 64 each
  unsigned char* const ks = smem_tile<D, kWg>(smem_raw, 0);
  unsigned char* const vs = smem_tile<D, kWg>(smem_raw, 1);
  const auto qs = [&](int s) { return smem_tile<D, kWg>(smem_raw, 2 + s); };
  const auto dos = [&](int s) { return smem_tile<D, kWg>(smem_raw, 4 + s); };
  float* const lse_s = reinterpret_cast<float*>(smem_tile<D, kWg>(smem_raw, 6));
  float* const di_s = lse_s + 2 * kBlockM;
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int g = lane / 4, q = lane % 4;
  const int64_t k0 = blockIdx.x * int64_t{kBlockN};
  const int64_t key0 = k0 + warp * 16 + g;  // this lane's keys: key0, key0 + 8
  const int64_t n_qtiles = (p.L + kBlockM - 1) / kBlockM;
  const int64_t first = p.causal ? k0 / kBlockM : 0;  // earlier queries see none of these keys

  for (int64_t bh = blockIdx.y; bh < p.BH; bh += gridDim.y) {
    const T* const Q = head_ptr<T>(p.q, bh, p.H);
    const T* const K = head_ptr<T>(p.k, bh, p.H);
    const T* const V = head_ptr<T>(p.v, bh, p.H);
    const T* const dO = head_ptr<T>(p.dout, bh, p.H);
    const float* const lse = p.lse + bh * p.L;
    const float* const di = p.di + bh * p.L;
    auto load_queries = [&](int s, int64_t qt) {
      const int64_t r0 = qt * kBlockM;
      load_tile<T, D, kWg>(qs(s), Q, p.q.sr, r0, p.L);
      load_tile<T, D, kWg>(dos(s), dO, p.dout.sr, r0, p.L);
      if (tid < kBlockM) {
        const bool ok = r0 + tid < p.L;
        lse_s[s * kBlockM + tid] = ok ? lse[r0 + tid] * kLog2e : 0.f;
        di_s[s * kBlockM + tid] = ok ? di[r0 + tid] : 0.f;
      }
    };
    load_tile<T, D, kWg>(ks, K, p.k.sr, k0, p.S);
    load_tile<T, D, kWg>(vs, V, p.v.sr, k0, p.S);
    if (first < n_qtiles) load_queries(0, first);
    mma::cp_async_commit();

    float dk[D / 8][4], dv[D / 8][4];
    zero(dk);
    zero(dv);
    for (int64_t qt = first; qt < n_qtiles; ++qt) {
      const int s = static_cast<int>((qt - first) & 1);
      if (qt + 1 < n_qtiles) load_queries(s ^ 1, qt + 1);
      mma::cp_async_commit();
      mma::cp_async_wait<1>();
      if constexpr (kWg) fence_to_async_proxy();  // visible to wgmma's reads
      __syncthreads();
      const unsigned char* const qt_s = qs(s);
      const unsigned char* const dot_s = dos(s);
      const float* const lse_t = lse_s + s * kBlockM;
      const float* const di_t = di_s + s * kBlockM;
      const int64_t q0 = qt * kBlockM;

      float pt[8]
              [4];  // P^T (16 keys, 64 queries): lane holds keys g, g + 8, queries 8 n + 2 q, + 1
      zero(pt);
      tile_abt<T, D, kWg>(pt, ks, warp * 16, qt_s);
      const bool masked = q0 + kBlockM > p.L || (p.causal && k0 + kBlockN - 1 > q0);
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int c = 8 * n + 2 * q + (e & 1);
          float pe = exp2f(pt[n][e] * p.scale_log2 - lse_t[c]);
          if (masked) {
            const int64_t query = q0 + c, key = key0 + 8 * (e >> 1);
            if (query >= p.L || (p.causal && key > query)) pe = 0.f;
          }
          pt[n][e] = pe;
        }
      float dpt[8][4];  // dP^T = V dO^T, the same layout
      zero(dpt);
      tile_abt<T, D, kWg>(dpt, vs, warp * 16, dot_s);
      // dS^T = P^T (dP^T z - Di) into dpt, then P^T z into pt (z: the dropout factor, else 1).
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int c = 8 * n + 2 * q + (e & 1);
          float z = 1.f;
          if (p.dropout)
            z = drop_factor(p,
                            static_cast<uint64_t>((bh * p.L + q0 + c) * p.S + key0 + 8 * (e >> 1)));
          dpt[n][e] = pt[n][e] * (dpt[n][e] * z - di_t[c]);
          pt[n][e] *= z;
        }
      tile_px<T, D, kWg>(dv, pt, dot_s);  // dV += (P^T z) dO
      tile_px<T, D, kWg>(dk, dpt, qt_s);  // dK += dS^T Q
      __syncthreads();
    }
    mma::cp_async_wait<0>();
    T* const dkh = static_cast<T*>(p.dk) + bh * p.S * D;
    T* const dvh = static_cast<T*>(p.dv) + bh * p.S * D;
    store_rows<T, D>(dkh, dk, key0, p.S, p.scale, p.scale);
    store_rows<T, D>(dvh, dv, key0, p.S, 1.f, 1.f);
    __syncthreads();  // ks, vs are free for the next head
  }
}

/// dQ of one 64-query tile: key tiles streamed through two stages of (K, V) as in the forward.
/// kWg (sm_90a): the three products on wgmma from swizzled tiles (tile_abt, tile_px).
template <class T, int D, bool kWg>
__global__ void __launch_bounds__(kThreads) attention_dq_kernel(const Params p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  // tiles: Q, dO, K stage 0 and 1, V stage 0 and 1
  unsigned char* const qs = smem_tile<D, kWg>(smem_raw, 0);
  unsigned char* const dos = smem_tile<D, kWg>(smem_raw, 1);
  const auto ks = [&](int s) { return smem_tile<D, kWg>(smem_raw, 2 + s); };
  const auto vs = [&](int s) { return smem_tile<D, kWg>(smem_raw, 4 + s); };
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int g = lane / 4, q = lane % 4;
  const int64_t qt = p.causal ? gridDim.x - 1 - blockIdx.x : blockIdx.x;
  const int64_t q0 = qt * kBlockM;
  const int64_t row0 = q0 + warp * 16 + g;
  const int64_t kv_end = p.causal ? (p.S < q0 + kBlockM ? p.S : q0 + kBlockM) : p.S;
  const int n_tiles = static_cast<int>((kv_end + kBlockN - 1) / kBlockN);

  for (int64_t bh = blockIdx.y; bh < p.BH; bh += gridDim.y) {
    const T* const Q = head_ptr<T>(p.q, bh, p.H);
    const T* const K = head_ptr<T>(p.k, bh, p.H);
    const T* const V = head_ptr<T>(p.v, bh, p.H);
    const T* const dO = head_ptr<T>(p.dout, bh, p.H);
    load_tile<T, D, kWg>(qs, Q, p.q.sr, q0, p.L);
    load_tile<T, D, kWg>(dos, dO, p.dout.sr, q0, p.L);
    load_tile<T, D, kWg>(ks(0), K, p.k.sr, 0, p.S);
    load_tile<T, D, kWg>(vs(0), V, p.v.sr, 0, p.S);
    mma::cp_async_commit();
    float lse[2], di[2];  // this lane's rows; rows past L are never stored
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const bool ok = row0 + 8 * r < p.L;
      lse[r] = ok ? p.lse[bh * p.L + row0 + 8 * r] * kLog2e : 0.f;
      di[r] = ok ? p.di[bh * p.L + row0 + 8 * r] : 0.f;
    }

    float dq[D / 8][4];
    zero(dq);
    for (int t = 0; t < n_tiles; ++t) {
      if (t + 1 < n_tiles) {
        const int s = (t + 1) & 1;
        load_tile<T, D, kWg>(ks(s), K, p.k.sr, (t + 1) * int64_t{kBlockN}, p.S);
        load_tile<T, D, kWg>(vs(s), V, p.v.sr, (t + 1) * int64_t{kBlockN}, p.S);
      }
      mma::cp_async_commit();
      mma::cp_async_wait<1>();
      if constexpr (kWg) fence_to_async_proxy();  // visible to wgmma's reads
      __syncthreads();
      const unsigned char* const kt = ks(t & 1);
      const unsigned char* const vt = vs(t & 1);
      const int64_t k0 = t * int64_t{kBlockN};

      float pm[8][4];  // P (16 queries, 64 keys): lane holds rows g, g + 8, keys 8 n + 2 q, + 1
      zero(pm);
      tile_abt<T, D, kWg>(pm, qs, warp * 16, kt);
      float dp[8][4];  // dP = dO V^T
      zero(dp);
      tile_abt<T, D, kWg>(dp, dos, warp * 16, vt);
      const bool masked = k0 + kBlockN > p.S || (p.causal && k0 + kBlockN - 1 > q0);
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int64_t key = k0 + 8 * n + 2 * q, row = row0 + 8 * r;
          float z[2] = {1.f, 1.f};
          if (p.dropout)
            drop_pair(p, static_cast<uint64_t>((bh * p.L + row) * p.S + key), z[0], z[1]);
#pragma unroll
          for (int c = 0; c < 2; ++c) {
            float pe = exp2f(pm[n][2 * r + c] * p.scale_log2 - lse[r]);
            if (masked && (key + c >= p.S || (p.causal && key + c > row))) pe = 0.f;
            pm[n][2 * r + c] = pe * (dp[n][2 * r + c] * z[c] - di[r]);  // dS
          }
        }
      tile_px<T, D, kWg>(dq, pm, kt);  // dQ += dS K
      __syncthreads();
    }
    mma::cp_async_wait<0>();
    store_rows<T, D>(static_cast<T*>(p.out) + bh * p.L * D, dq, row0, p.L, p.scale, p.scale);
    __syncthreads();
  }
}

// ---- launchers ----

/// t (..., R, D) as (B, H) heads of (R, D) rows: the batch dims but the last collapse to one
/// stride. Returns false when they do not, or a stride or the base is not in whole 16-byte
/// chunks (the caller then copies t contiguous).
bool head_view(const Tensor& t, HeadPtr& h) {
  const int64_t nb = t.dim() - 2;
  if (t.stride(-1) != 1 && t.size(-1) != 1) return false;
  if ((reinterpret_cast<uintptr_t>(t.data_ptr()) & 15) != 0) return false;
  h.ptr = t.data_ptr();
  h.sr = t.stride(-2);
  h.sh = nb >= 1 ? t.stride(nb - 1) : 0;
  h.sb = nb >= 2 ? t.stride(nb - 2) : 0;
  for (int64_t d = 0; d + 2 < nb; ++d)  // dims 0 .. nb - 2 must collapse into dim nb - 2
    if (t.size(d) != 1 && t.stride(d) != t.stride(d + 1) * t.size(d + 1)) return false;
  return h.sr % 8 == 0 && h.sh % 8 == 0 && h.sb % 8 == 0;
}

/// head_view of t, or of a contiguous copy kept alive in `keep`.
HeadPtr heads(const Tensor& t, Tensor& keep) {
  HeadPtr h;
  if (head_view(t, h)) return h;
  NoGradGuard no_grad;
  keep = t.contiguous();
  const bool ok = head_view(keep, h);
  EMBER_CHECK(ok, ValueError, "[attention_flash] unaligned contiguous copy of ", t.sizes());
  return h;
}

/// The common part of the forward and backward parameters.
struct Prepared {
  Params p{};
  Tensor keep_q, keep_k, keep_v;
  int64_t D = 0;
};

Prepared prepare(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool is_causal,
                 double dropout_p, uint64_t seed, uint64_t offset) {
  Prepared r;
  Params& p = r.p;
  const int64_t nb = q.dim() - 2;
  p.H = nb >= 1 ? q.size(nb - 1) : 1;
  p.BH = 1;
  for (int64_t d = 0; d < nb; ++d) p.BH *= q.size(d);
  p.L = q.size(-2);
  p.S = k.size(-2);
  r.D = q.size(-1);
  EMBER_CHECK((r.D == 64 || r.D == 128) && v.size(-1) == r.D, ShapeError,
              "[attention_forward_flash] the CUDA kernels take D = Dv in {64, 128}, got q ",
              q.sizes(), ", v ", v.sizes());
  EMBER_CHECK(q.dtype() == kBFloat16 || q.dtype() == kFloat16, DTypeError,
              "[attention_forward_flash] the CUDA kernels take bfloat16 or float16, got ",
              q.dtype());
  if (p.BH == 0 || p.L == 0 || p.S == 0) return r;
  p.q = heads(q, r.keep_q);
  p.k = heads(k, r.keep_k);
  p.v = heads(v, r.keep_v);
  p.scale = static_cast<float>(scale);
  p.scale_log2 = static_cast<float>(scale * 1.4426950408889634);
  p.causal = is_causal;
  p.dropout = dropout_p > 0.0;
  const double keep = 1.0 - dropout_p;
  p.keep_threshold = static_cast<uint64_t>(std::ceil(keep * 0x1p32));
  p.keep_scale = static_cast<float>(1.0 / keep);
  p.seed = seed;
  p.offset = offset;
  return r;
}

unsigned grid_heads(int64_t BH) { return static_cast<unsigned>(BH < 65535 ? BH : 65535); }

/// set_attention_forward_variant's and set_attention_backward_variant's choices;
/// EMBER_ATTENTION_FORWARD_VARIANT and EMBER_ATTENTION_BACKWARD_VARIANT force them for a run.
detail::VariantSwitch g_forward_variant{"EMBER_ATTENTION_FORWARD_VARIANT",
                                        "set_attention_forward_variant", -1, 3};
detail::VariantSwitch g_backward_variant{"EMBER_ATTENTION_BACKWARD_VARIANT",
                                         "set_attention_backward_variant", -1, 1};

/// Variants 2 (kN 128) and 3 (kN 64): false (nothing launched) where the tensor maps cannot be
/// made (a zero stride of a dimension larger than 1, or the driver refuses one) or the sizes pass
/// TMA's 32-bit coordinates or the grid.
template <class T, int D, int kN>
bool launch_forward_ws(const Params& p, cudaStream_t stream, int device) {
  using Tile = WsTile<D, kN>;
  const int64_t B = p.BH / p.H;
  if (p.BH > 65535 || p.L > INT32_MAX - Tile::kRows || p.S > INT32_MAX - kN) return false;
  // (B, H, rows, D) with the heads' strides
  const auto map = [&](CUtensorMap* m, const HeadPtr& x, int64_t rows, uint32_t box_rows) {
    const auto n = [](int64_t v) { return static_cast<uint64_t>(v); };
    return tma::encode_tensor_map_4d(m, std::is_same_v<T, BF16Bits>, x.ptr, D, n(rows), n(p.H),
                                     n(B), n(x.sr), n(x.sh), n(x.sb), 64, box_rows);
  };
  CUtensorMap map_q, map_k, map_v;
  if (!map(&map_q, p.q, p.L, 64) || !map(&map_k, p.k, p.S, kN) || !map(&map_v, p.v, p.S, kN))
    return false;
  detail::opt_in_smem<attention_forward_ws_kernel<T, D, kN>>(Tile::kSmem, device);
  const dim3 grid(static_cast<unsigned>((p.L + Tile::kRows - 1) / Tile::kRows),
                  static_cast<unsigned>(p.BH));
  attention_forward_ws_kernel<T, D, kN>
      <<<grid, Tile::kThreads, Tile::kSmem, stream>>>(p, map_q, map_k, map_v);
  EMBER_CUDA_CHECK_LAUNCH();
  return true;
}

template <class T, int D>
void forward(const Params& p, cudaStream_t stream, int device) {
  const dim3 grid(static_cast<unsigned>((p.L + kBlockM - 1) / kBlockM), grid_heads(p.BH));
  // Automatic (-1) is the mma.sync kernel until a GPU run has confirmed the wgmma ones; variants 2
  // and 3 fall back to 1 where their tensor maps cannot be made.
  const int variant = g_forward_variant.get();
  const bool wgmma = variant >= 1 && detail::wgmma_available(device);
  if (wgmma && variant == 2 && launch_forward_ws<T, D, 128>(p, stream, device)) return;
  if (wgmma && variant == 3 && launch_forward_ws<T, D, 64>(p, stream, device)) return;
  if (wgmma) {
    constexpr int bytes = smem_tiles_bytes<D, true>(5);  // Q, two stages of K and V
    detail::opt_in_smem<attention_forward_kernel<T, D, true>>(bytes, device);
    attention_forward_kernel<T, D, true><<<grid, kThreads, bytes, stream>>>(p);
  } else {
    constexpr int bytes = smem_tiles_bytes<D, false>(5);
    detail::opt_in_smem<attention_forward_kernel<T, D, false>>(bytes, device);
    attention_forward_kernel<T, D, false><<<grid, kThreads, bytes, stream>>>(p);
  }
  EMBER_CUDA_CHECK_LAUNCH();
}

template <class T, int D>
void backward(const Params& p, cudaStream_t stream, int device) {
  const int64_t rows = p.BH * p.L;
  const int64_t dot_blocks = (rows + kThreads / 32 - 1) / (kThreads / 32);
  attention_dot_kernel<T, D>
      <<<static_cast<unsigned>(dot_blocks < 65535 * 8 ? dot_blocks : 65535 * 8), kThreads, 0,
         stream>>>(p);
  EMBER_CUDA_CHECK_LAUNCH();
  // Automatic (-1) is mma.sync until a GPU run has confirmed the wgmma kernels.
  const int variant = g_backward_variant.get();
  const bool wgmma = variant == 1 && detail::wgmma_available(device);
  const auto launch = [&]<bool kWg>() {
    constexpr int tiles = smem_tiles_bytes<D, kWg>(6);
    constexpr int kv_bytes = tiles + 4 * kBlockM * 4;  // + lse and Di, two stages
    detail::opt_in_smem<attention_dkdv_kernel<T, D, kWg>>(kv_bytes, device);
    const dim3 kv_grid(static_cast<unsigned>((p.S + kBlockN - 1) / kBlockN), grid_heads(p.BH));
    attention_dkdv_kernel<T, D, kWg><<<kv_grid, kThreads, kv_bytes, stream>>>(p);
    EMBER_CUDA_CHECK_LAUNCH();
    detail::opt_in_smem<attention_dq_kernel<T, D, kWg>>(tiles, device);
    const dim3 q_grid(static_cast<unsigned>((p.L + kBlockM - 1) / kBlockM), grid_heads(p.BH));
    attention_dq_kernel<T, D, kWg><<<q_grid, kThreads, tiles, stream>>>(p);
    EMBER_CUDA_CHECK_LAUNCH();
  };
  if (wgmma)
    launch.template operator()<true>();
  else
    launch.template operator()<false>();
}

/// f.template operator()<T, D>() for q's dtype and head dim.
template <class F>
void visit_kernel(DType dt, int64_t D, F&& f) {
  if (dt == kBFloat16) {
    if (D == 64)
      f.template operator()<BF16Bits, 64>();
    else
      f.template operator()<BF16Bits, 128>();
  } else {
    if (D == 64)
      f.template operator()<HalfBits, 64>();
    else
      f.template operator()<HalfBits, 128>();
  }
}

}  // namespace

void set_attention_forward_variant(int variant) { g_forward_variant.set(variant); }

void set_attention_backward_variant(int variant) { g_backward_variant.set(variant); }

void attention_forward_flash(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                             const Tensor& v, double scale, bool is_causal, double dropout_p,
                             uint64_t seed, uint64_t offset) {
  Prepared r = prepare(q, k, v, scale, is_causal, dropout_p, seed, offset);
  EMBER_CHECK(lse.dtype() == kFloat32 && out.dtype() == q.dtype() && out.is_contiguous() &&
                  lse.is_contiguous(),
              DTypeError, "[attention_forward_flash] expected contiguous out in ", q.dtype(),
              " and float32 lse, got ", out.dtype(), " and ", lse.dtype());
  Params& p = r.p;
  if (p.BH == 0 || p.L == 0) return;
  detail::DeviceGuard guard(q.device().index());
  if (p.S == 0) {  // no keys: zeros and lse -inf, as the CPU kernel
    fill(out, 0.0);
    fill(lse, -INFINITY);
    return;
  }
  p.out = out.data_ptr();
  p.lse = static_cast<float*>(lse.data_ptr());
  const cudaStream_t stream = detail::stream_of(q);
  const int device = q.device().index();
  visit_kernel(q.dtype(), r.D, [&]<class T, int D>() { forward<T, D>(p, stream, device); });
}

void attention_backward_flash(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                              const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& out, const Tensor& lse, double scale, bool is_causal,
                              double dropout_p, uint64_t seed, uint64_t offset) {
  Prepared r = prepare(q, k, v, scale, is_causal, dropout_p, seed, offset);
  Params& p = r.p;
  if (p.BH == 0) return;
  detail::DeviceGuard guard(q.device().index());
  if (p.L == 0 || p.S == 0) {  // no queries or no keys: zero gradients
    if (dq.numel() > 0) fill(dq, 0.0);
    if (dk.numel() > 0) fill(dk, 0.0);
    if (dv.numel() > 0) fill(dv, 0.0);
    return;
  }
  EMBER_CHECK(dout.dtype() == q.dtype() && out.dtype() == q.dtype() && lse.dtype() == kFloat32 &&
                  lse.is_contiguous() && dq.is_contiguous() && dk.is_contiguous() &&
                  dv.is_contiguous(),
              DTypeError, "[attention_backward_flash] expected dout and out in ", q.dtype(),
              ", float32 lse and contiguous gradients, got dout ", dout.dtype(), ", out ",
              out.dtype(), ", lse ", lse.dtype());
  Tensor keep_dout, keep_out;
  p.dout = heads(dout, keep_dout);
  p.o = heads(out, keep_out);
  Tensor di = empty({p.BH * p.L}, TensorOptions(kFloat32).device(q.device()));
  p.di = static_cast<float*>(di.data_ptr());
  p.lse = static_cast<float*>(lse.data_ptr());
  p.out = dq.data_ptr();
  p.dk = dk.data_ptr();
  p.dv = dv.data_ptr();
  const cudaStream_t stream = detail::stream_of(q);
  const int device = q.device().index();
  visit_kernel(q.dtype(), r.D, [&]<class T, int D>() { backward<T, D>(p, stream, device); });
}

}  // namespace ember::cuda
