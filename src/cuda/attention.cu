// Fused attention on the tensor cores: out = softmax(q k^T * scale [causal]) v and its gradients,
// without forming the (L, S) score matrix. FlashAttention-2 (Dao, "FlashAttention-2: Faster
// Attention with Better Parallelism and Work Partitioning", 2023, algorithms 1 and 2), written
// with mma.sync.m16n8k16 (mma.cuh), bf16 or fp16 inputs, float32 accumulation.
//
// Shapes: q (..., L, D), k (..., S, D), v (..., S, D) with one set of batch dims (BH "heads" in
// all), unit stride along D, rows and batch strides multiples of 8 elements, 16-byte aligned
// bases; the batch dims must collapse to (B, H) strides (a transpose(1, 2) view of (B, T, H, D)
// does); anything else is copied contiguous first (head_view). out (..., L, D) in q's dtype and
// dq, dk, dv are written where they lie under the same rule (out_heads: contiguous, or the
// op's (B, H, L, D) view of (B, L, H, D) memory), lse (..., L) contiguous float32 (natural log).
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
// Backward, deterministic (variants 0-2 without atomics; the project promises bitwise-repeatable
// results):
//   attention_stats_kernel   per 64-row query tile: lse log2(e) and Di = rowsum(dO * O) in float32,
//                            one warp per row (p.stats)
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
// wgmma; and a warp-specialised one (2: attention_dkdv_ws_kernel, attention_dq_ws_kernel), the
// forward's producer and stages around the same products, 128 keys or queries per block.
// Variant 3 (attention_bwd_fused_kernel) is FA2's 5-product split made deterministic: dK/dV's
// pipeline plus dQ = dS K per tile, the float32 dQ sums added by the key tiles of a head in
// order 0, 1, 2, ... (a turn counter per query tile in global memory; persistent blocks of a
// cooperative launch, so the turns cannot deadlock), then converted to T.
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
  void* ptr;
  int64_t sb, sh, sr;
};

struct Params {
  HeadPtr q, k, v, o, dout;  // o: the forward's output (backward), dout: its gradient
  HeadPtr out;               // forward: out (BH, L, D); backward: dq (BH, L, D)
  float* lse;                // (BH, L)
  float* stats;    // backward: (BH, ceil(L / 64), 2, 64): per 64-row tile lse log2(e), then Di
  HeadPtr dk;      // (BH, S, D)
  HeadPtr dv;      // (BH, S, D)
  float* dq_acc;   // backward variant 3: dQ's float32 sums (BH, L, D), zeroed before the kernel
  int* dq_turn;    // and per (head, 64-row query tile, column half) how many key tiles have added
  int* item_next;  // and the next item a block may take (zeroed too)
  int64_t H, BH, L, S;
  float scale, scale_log2;
  bool causal, dropout;
  uint64_t keep_threshold;  // keep when word < this (2^32: always)
  float keep_scale;         // 1 / (1 - p)
  uint64_t seed, offset;
};

template <class T>
__device__ __forceinline__ T* head_ptr(const HeadPtr& h, int64_t bh, int64_t H) {
  return static_cast<T*>(h.ptr) + (bh / H) * h.sb + (bh % H) * h.sh;
}

/// Two floats as a pair of T in one register, the first in the low half.
template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  return static_cast<uint32_t>(detail::convert<T>(lo).v) |
         (static_cast<uint32_t>(detail::convert<T>(hi).v) << 16);
}

/// The register trick: the A fragment of the 16-key slice ks (keys 16 ks .. 16 ks + 15) of a
/// warp's (16, 64) accumulators pm is exactly accumulator tiles lo = pm[2 ks] and hi =
/// pm[2 ks + 1], rounded to T and packed in pairs (for mma.sync and for wgmma's register A alike).
/// The two tiles are passed alone: given the whole array, g++'s -Warray-bounds (the emulated
/// build) confused instances of different lengths.
template <class T>
__device__ __forceinline__ void a_fragment(uint32_t (&a)[4], const float (&lo)[4],
                                           const float (&hi)[4]) {
  a[0] = pack2<T>(lo[0], lo[1]);
  a[1] = pack2<T>(lo[2], lo[3]);
  a[2] = pack2<T>(hi[0], hi[1]);
  a[3] = pack2<T>(hi[2], hi[3]);
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
  for (int ks = 0; ks < NT / 2; ++ks) a_fragment<T>(a[ks], pm[2 * ks], pm[2 * ks + 1]);
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
    a_fragment<T>(a, pm[2 * ks], pm[2 * ks + 1]);
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
/// stride sr, even), rows >= n skipped. Lane (g, q) holds columns 8 t + 2 q, + 1 of each tile t.
template <class T, int D>
__device__ __forceinline__ void store_rows(T* dst, int64_t sr, const float (&acc)[D / 8][4],
                                           int64_t row, int64_t n, float mul0, float mul1) {
  const int q = static_cast<int>(threadIdx.x) & 3;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t i = row + 8 * r;
    if (i >= n) continue;
    const float mul = r == 0 ? mul0 : mul1;
    uint32_t* out = reinterpret_cast<uint32_t*>(dst + i * sr);
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
                                              float (&l)[2], T* out, int64_t sr, float* lse,
                                              int64_t L, int64_t row0, bool lead) {
  float inv[2], ls[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    inv[r] = l[r] > 0.f ? 1.f / l[r] : 0.f;
    ls[r] = l[r] > 0.f ? m[r] * kLn2 + logf(l[r]) : -INFINITY;
  }
  store_rows<T, D>(out, sr, o, row0, L, inv[0], inv[1]);
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

    store_forward<T, D>(o, m, l, head_ptr<T>(p.out, bh, p.H), p.out.sr, p.lse + bh * p.L, p.L, row0,
                        (lane & 3) == 0);
    __syncthreads();  // qs is free for the next head
  }
}

/// The warp-specialised kernels' shared memory (sm_90a; 384 threads: warpgroup 0 the producer,
/// one thread issuing TMA copies; 1 and 2 the consumers of 64 rows each). Each consumer keeps its
/// 64 rows of kRes resident operands (forward: Q; dQ: Q and dO; dK/dV: K and V), and the producer
/// streams tiles of kN rows of two others, x and y (forward and dQ: K and V; dK/dV: Q and dO,
/// y with the query tile's 512 bytes of p.stats when kStats) through kStages stages, all tiles
/// in the 128-byte swizzle layout (a tile of r rows: D / 64 panels of r rows x 128 bytes). The
/// forward's variants 2 (kN 128) and 3 (kN 64); the backward's variant 2 (kN 64). At D 128 with
/// 128-key tiles 3 stages of 64 KiB fill the 227 KiB a block may have.
/// kExtra: bytes of the kernel's own after the stages (1024-byte aligned; the fused backward's
/// dS tiles), for which the stages give way where they would not fit beside them.
constexpr int ws_smem_bytes(int res, int extra, int stages, int stage, int stats) {
  return res + extra + stages * (stage + stats) + (3 * stages + 7) * 8 + 1024;
}
template <int D, int kN, int kRes = 1, bool kStats = false, int kExtra = 0>
struct WsTile {
  static constexpr int kRows = 128, kThreads = 384, kPanels = D / 64, kTileRows = kN;
  static constexpr int kResTileBytes = 64 * D * 2;  // a consumer's rows of a resident operand
  static constexpr int kTileBytes = kN * D * 2;     // a streamed x or y tile
  static constexpr int kResBytes = kRes * 2 * kResTileBytes;
  static constexpr int kStageBytes = 2 * kTileBytes;  // x, then y
  static constexpr int kStatsBytes = kStats ? 2 * kBlockM * 4 : 0;
  static constexpr int kExtraBytes = kExtra;
  static constexpr int kPreferredStages = kN == 64 ? (D == 64 ? 6 : 4) : (D == 64 ? 5 : 3);
  static constexpr int kStages =
      ws_smem_bytes(kResBytes, kExtra, kPreferredStages, kStageBytes, kStatsBytes) <= 227 * 1024
          ? kPreferredStages
          : kPreferredStages - 1;
  // full x, full y, empty per stage; resident full, resident empty; and for the fused backward
  // 8 bytes for the index of the block's next item, dQ full and dQ empty per consumer
  static constexpr int kBarriers = 3 * kStages + 7;
  static constexpr int kSmem =
      kResBytes + kExtra + kStages * (kStageBytes + kStatsBytes) + kBarriers * 8 + 1024;
  static_assert(kSmem <= 227 * 1024, "WsTile: more shared memory than a block may have");
  static_assert(!kStats || kN == kBlockM, "WsTile: the stats come in 64-row query tiles");
  static_assert(kExtra % 1024 == 0, "WsTile: the extra bytes keep the 1024-byte alignment");
};

/// Where WsTile's pieces lie: resident tiles, stages, the extra bytes, stats, then the mbarriers
/// ("full x" and "full y": the producer's one arrival plus the bytes; "empty": one arrival per
/// consumer warp; "resident full": the producer's arrival plus the resident tiles' bytes;
/// "resident empty": one arrival per consumer warp, for a persistent kernel's next item).
template <class Tile>
struct WsSmem {
  unsigned char* base;  // 1024-byte aligned
  __device__ explicit WsSmem(unsigned char* raw)
      : base(reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(raw) + 1023) &
                                              ~static_cast<uintptr_t>(1023))) {}
  __device__ unsigned char* resident(int i, int c) const {
    return base + (2 * i + c) * Tile::kResTileBytes;
  }
  __device__ unsigned char* x(int st) const {
    return base + Tile::kResBytes + st * Tile::kStageBytes;
  }
  __device__ unsigned char* y(int st) const { return x(st) + Tile::kTileBytes; }
  __device__ unsigned char* extra() const { return x(Tile::kStages); }
  __device__ float* stats(int st) const {
    return reinterpret_cast<float*>(extra() + Tile::kExtraBytes) + st * (Tile::kStatsBytes / 4);
  }
  __device__ uint64_t* bar(int i) const {
    return reinterpret_cast<uint64_t*>(extra() + Tile::kExtraBytes +
                                       Tile::kStages * Tile::kStatsBytes) +
           i;
  }
  __device__ uint64_t* full_x(int st) const { return bar(st); }
  __device__ uint64_t* full_y(int st) const { return bar(Tile::kStages + st); }
  __device__ uint64_t* empty(int st) const { return bar(2 * Tile::kStages + st); }
  __device__ uint64_t* res_full() const { return bar(3 * Tile::kStages); }
  __device__ uint64_t* res_empty() const { return bar(3 * Tile::kStages + 1); }
  /// The item whose resident tiles "resident full" announces (the fused backward; -1: none left).
  __device__ int* item_slot() const { return reinterpret_cast<int*>(bar(3 * Tile::kStages + 2)); }
  /// A thread's read of item_slot() once "resident full" has announced it.
  __device__ int read_item() const { return *static_cast<volatile const int*>(item_slot()); }
  /// The same for a warp, from lane 0 (so ptxas knows it warp-uniform).
  __device__ int held_item() const { return __shfl_sync(0xffffffffu, read_item(), 0); }
  /// The fused backward's hand-off of consumer c's dQ to its writer warp: "dQ full" (the
  /// consumer has stored it), "dQ empty" (the writer's reduction has read it), and the buffer
  /// (64 rows x 64 float columns after the two dS buffers, 1024-byte aligned, laid out as a TMA
  /// load of the box (32 columns, 2 halves, 64 rows) with the 128-byte swizzle would write it:
  /// row r's half h at byte 256 r + 128 h, its 16-byte chunk j at j ^ (h + 2 (r % 4))).
  __device__ uint64_t* dq_full(int c) const { return bar(3 * Tile::kStages + 3 + c); }
  __device__ uint64_t* dq_empty(int c) const { return bar(3 * Tile::kStages + 5 + c); }
  __device__ float* dq_buf(int c) const {
    return reinterpret_cast<float*>(extra() + 2 * 128 * 128) + c * 64 * 64;
  }
  /// The phase parity of the block's j-th streamed tile.
  __device__ static uint32_t phase(int j) { return static_cast<uint32_t>(j / Tile::kStages) & 1; }
  /// Thread 0: initialises the barriers for `consumers` consumer warpgroups and `others` more
  /// arrivals on "resident empty" (a __syncthreads follows).
  __device__ void init(int consumers, int others = 0) const {
#if defined(EMBER_HAVE_WGMMA)
    for (int st = 0; st < Tile::kStages; ++st) {
      tma::mbar_init(full_x(st), 1);
      tma::mbar_init(full_y(st), 1);
      tma::mbar_init(empty(st), 4 * consumers);
    }
    tma::mbar_init(res_full(), 1);
    tma::mbar_init(res_empty(), 4 * consumers + others);
    tma::fence_barrier_init();
#else
    (void)consumers, (void)others;
#endif
  }
  /// A consumer warp: every wgmma reading stage st has retired.
  __device__ void release(int st, int lane) const {
#if defined(EMBER_HAVE_WGMMA)
    if (lane == 0) tma::mbar_arrive(empty(st));
#else
    (void)st, (void)lane;
#endif
  }
  /// A consumer warp: every wgmma reading the resident tiles has retired. The warp converges
  /// first: lane 0 arrives for all 32, and a lane still polling "resident full" (an item without
  /// products has no warp-wide step between the two) would otherwise miss its phase once the
  /// producer has refilled the tiles.
  __device__ void release_resident(int lane) const {
#if defined(EMBER_HAVE_WGMMA)
    __syncwarp();
    if (lane == 0) tma::mbar_arrive(res_empty());
#else
    (void)lane;
#endif
  }
};

/// The producer's one thread: each consumer c's rows r0 + 64 c .. of the kRes resident operands
/// (maps res, rank 4 over (B, H, rows, D)), then tiles t0 .. t0 + n - 1 of x and y (rows kN t ..):
/// wait until the stage is free, x's bytes on "full x", y's (and the stats of tile t, from
/// `stats`, when kStats) on "full y", so the first product can start before y has landed. j0:
/// the tiles the block streamed before (a persistent kernel's earlier items), which sets the
/// stages and phases.
template <class Tile, int kRes>
__device__ void ws_produce(const WsSmem<Tile>& sm, const CUtensorMap* const (&res)[kRes],
                           int64_t r0, int consumers, const CUtensorMap* mx, const CUtensorMap* my,
                           int64_t t0, int n, int32_t h, int32_t b, const float* stats,
                           int j0 = 0) {
#if defined(EMBER_HAVE_WGMMA)
  constexpr int kN = Tile::kTileRows;
  tma::mbar_arrive_expect_tx(sm.res_full(),
                             static_cast<uint32_t>(kRes * consumers * Tile::kResTileBytes));
  for (int i = 0; i < kRes; ++i)
    for (int c = 0; c < consumers; ++c)
#pragma unroll
      for (int pn = 0; pn < Tile::kPanels; ++pn)
        tma::load_4d(sm.resident(i, c) + pn * 8192, res[i], 64 * pn,
                     static_cast<int32_t>(r0 + 64 * c), h, b, sm.res_full());
  for (int j = 0; j < n; ++j) {
    const int st = (j0 + j) % Tile::kStages;
    const auto row = static_cast<int32_t>((t0 + j) * kN);
    tma::mbar_wait(sm.empty(st), sm.phase(j0 + j) ^ 1);  // free (first round: at once)
    tma::mbar_arrive_expect_tx(sm.full_x(st), Tile::kTileBytes);
#pragma unroll
    for (int pn = 0; pn < Tile::kPanels; ++pn)
      tma::load_4d(sm.x(st) + pn * kN * 128, mx, 64 * pn, row, h, b, sm.full_x(st));
    tma::mbar_arrive_expect_tx(sm.full_y(st), Tile::kTileBytes + Tile::kStatsBytes);
#pragma unroll
    for (int pn = 0; pn < Tile::kPanels; ++pn)
      tma::load_4d(sm.y(st) + pn * kN * 128, my, 64 * pn, row, h, b, sm.full_y(st));
    if constexpr (Tile::kStatsBytes > 0)
      tma::load_bulk(sm.stats(st), stats + (t0 + j) * 2 * kBlockM, Tile::kStatsBytes,
                     sm.full_y(st));
  }
#else
  (void)sm, (void)res, (void)r0, (void)consumers, (void)mx, (void)my, (void)t0, (void)n, (void)h,
      (void)b, (void)stats, (void)j0;
#endif
}

/// The backward's two score-like products of a streamed stage: a = A X^T (A resident, X the
/// stage's x tile) once x has landed and b = B Y^T once y has, both issued (two groups); returns
/// once a is done (b still running).
template <class T, int D, class Tile>
__device__ __forceinline__ void issue_score_pair(const WsSmem<Tile>& sm, int j, float (&a)[8][4],
                                                 const unsigned char* as, float (&b)[8][4],
                                                 const unsigned char* bs) {
#if defined(EMBER_HAVE_WGMMA)
  const int st = j % Tile::kStages;
  float(&ad)[32] = *reinterpret_cast<float(*)[32]>(&a[0][0]);
  float(&bd)[32] = *reinterpret_cast<float(*)[32]>(&b[0][0]);
  zero(a);
  zero(b);
  tma::mbar_wait(sm.full_x(st), sm.phase(j));
  mma::fence_operands(ad);
  mma::fence_operands(bd);
  mma::wgmma_fence();
  issue_scores<T, D, 64>(ad, as, sm.x(st));
  mma::wgmma_commit();
  tma::mbar_wait(sm.full_y(st), sm.phase(j));
  issue_scores<T, D, 64>(bd, bs, sm.y(st));
  mma::wgmma_commit();
  mma::wgmma_wait<1>();
  mma::fence_operands(ad);
#else
  (void)sm, (void)j, (void)a, (void)as, (void)b, (void)bs;
#endif
}

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
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const WsSmem<Tile> sm(smem_raw);
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
  if (tid == 0) sm.init(consumers);
  __syncthreads();
  const auto h = static_cast<int32_t>(bh % p.H), b = static_cast<int32_t>(bh / p.H);

  if (wg == 0) {                   // the producer
    tma::setmaxnreg<24, false>();  // 24 x 128 + 240 x 256 registers fit the SM's 65536
    const CUtensorMap* const res[1] = {&map_q};
    if (tid == 0) ws_produce(sm, res, q0, consumers, &map_k, &map_v, 0, n_tiles, h, b, nullptr);
    return;
  }

  tma::setmaxnreg<240, true>();  // the whole warpgroup, before any of it may return
  const int c = wg - 1;
  if (c >= consumers) return;
  const int lane = tid & 31, warp = (tid / 32) % 4;
  const int64_t qc0 = q0 + 64 * c, row0 = qc0 + warp * 16 + lane / 4;  // rows row0, row0 + 8
  const unsigned char* const qs = sm.resident(0, c);
  constexpr int NT = kN / 8;  // 8-key accumulator tiles per warp row pair
  float o[D / 8][4], s[NT][4];
  float(&od)[D / 2] = *reinterpret_cast<float(*)[D / 2]>(&o[0][0]);
  float(&sd)[kN / 2] = *reinterpret_cast<float(*)[kN / 2]>(&s[0][0]);
  uint32_t pa[kN / 16][4];  // P_{t-1} as register-A fragments
  uint32_t(&pa_flat)[kN / 4] = *reinterpret_cast<uint32_t(*)[kN / 4]>(&pa[0][0]);
  zero(o);
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  // S_t = Q K_t^T, issued and committed (not waited for).
  const auto issue_s = [&](int t) {
    zero(s);
    tma::mbar_wait(sm.full_x(t % Tile::kStages), sm.phase(t));
    mma::fence_operands(sd);
    mma::fence_operands(od);
    mma::fence_operands(pa_flat);
    mma::wgmma_fence();
    issue_scores<T, D, kN>(sd, qs, sm.x(t % Tile::kStages));
    mma::wgmma_commit();
  };
  // O += P_t V_t, issued and committed, once V_t has landed.
  const auto issue_o = [&](int t) {
    tma::mbar_wait(sm.full_y(t % Tile::kStages), sm.phase(t));
    issue_pv<T, D, kN>(od, pa, sm.y(t % Tile::kStages));
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
    sm.release(t % Tile::kStages, lane);
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
  tma::mbar_wait(sm.res_full(), 0);
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
  store_forward<T, D>(o, m, l, head_ptr<T>(p.out, bh, p.H), p.out.sr, p.lse + bh * p.L, p.L, row0,
                      (lane & 3) == 0);
#else
  (void)p, (void)map_q, (void)map_k, (void)map_v;
#endif
}

// ---- backward ----

/// The number of 64-row query tiles, the unit of p.stats (and of the 64-row kernels' grids).
__host__ __device__ __forceinline__ int64_t query_tiles(const Params& p) {
  return (p.L + kBlockM - 1) / kBlockM;
}

/// p.stats: for each head and 64-row query tile, lse log2(e) of its rows, then Di = sum_d dout *
/// o (float32); rows past L zero (so the warp-specialised kernels copy whole tiles of 512 bytes).
/// One warp per row.
template <class T, int D>
__global__ void __launch_bounds__(kThreads) attention_stats_kernel(const Params p) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t per_head = query_tiles(p) * kBlockM, rows = p.BH * per_head;
  const int64_t warps = int64_t{gridDim.x} * (kThreads / 32);
  for (int64_t r = (blockIdx.x * int64_t{kThreads} + threadIdx.x) / 32; r < rows; r += warps) {
    const int64_t bh = r / per_head, i = r % per_head;
    float acc = 0.f, lse2 = 0.f;
    if (i < p.L) {
      const T* const dO = head_ptr<T>(p.dout, bh, p.H) + i * p.dout.sr;
      const T* const O = head_ptr<T>(p.o, bh, p.H) + i * p.o.sr;
#pragma unroll
      for (int d = lane; d < D; d += 32)
        acc = fmaf(detail::convert<float>(dO[d]), detail::convert<float>(O[d]), acc);
#pragma unroll
      for (int w = 16; w > 0; w /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, w);
      lse2 = p.lse[bh * p.L + i] * kLog2e;
    }
    if (lane == 0) {
      float* const tile = p.stats + (r / kBlockM) * 2 * kBlockM;
      tile[i % kBlockM] = lse2;
      tile[kBlockM + i % kBlockM] = acc;
    }
  }
}

/// The dK/dV kernels' probabilities: pt holds S^T = K Q^T for a warp's keys key0, key0 + 8 and
/// queries q0 + 8 n + 2 q, + 1 (lane (g, q)); on return P^T = 2^(S^T scale log2(e) - lse log2(e))
/// (lse2: the query tile's p.stats), 0 where masked (a query past L, a key past S or, causal, a
/// query before the key).
__device__ __forceinline__ void probs_t(const Params& p, float (&pt)[8][4], const float* lse2,
                                        int64_t q0, int64_t key0, bool masked) {
  const int q = static_cast<int>(threadIdx.x) & 3;
#pragma unroll
  for (int n = 0; n < 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int c = 8 * n + 2 * q + (e & 1);
      float pe = exp2f(pt[n][e] * p.scale_log2 - lse2[c]);
      if (masked) {
        const int64_t query = q0 + c, key = key0 + 8 * (e >> 1);
        if (query >= p.L || key >= p.S || (p.causal && key > query)) pe = 0.f;
      }
      pt[n][e] = pe;
    }
}

/// Then, with dpt holding dP^T = V dO^T in the same layout: dS^T = P^T (dP^T z - Di) into dpt and
/// P^T z into pt (z: the dropout factor, else 1; di: the query tile's Di).
__device__ __forceinline__ void grads_t(const Params& p, float (&pt)[8][4], float (&dpt)[8][4],
                                        const float* di, int64_t bh, int64_t q0, int64_t key0) {
  const int q = static_cast<int>(threadIdx.x) & 3;
#pragma unroll
  for (int n = 0; n < 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int c = 8 * n + 2 * q + (e & 1);
      float z = 1.f;
      if (p.dropout)
        z = drop_factor(p, static_cast<uint64_t>((bh * p.L + q0 + c) * p.S + key0 + 8 * (e >> 1)));
      dpt[n][e] = pt[n][e] * (dpt[n][e] * z - di[c]);
      pt[n][e] *= z;
    }
}

/// The dQ kernels' probabilities: pm holds S = Q K^T for a warp's rows row0, row0 + 8 and keys
/// k0 + 8 n + 2 q, + 1; on return P = 2^(S scale log2(e) - lse2 of the row), 0 where masked (a key
/// past S or, causal, after the row).
__device__ __forceinline__ void probs(const Params& p, float (&pm)[8][4], const float (&lse2)[2],
                                      int64_t k0, int64_t row0, bool masked) {
  const int q = static_cast<int>(threadIdx.x) & 3;
#pragma unroll
  for (int n = 0; n < 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t key = k0 + 8 * n + 2 * q + (e & 1), row = row0 + 8 * (e >> 1);
      float pe = exp2f(pm[n][e] * p.scale_log2 - lse2[e >> 1]);
      if (masked && (key >= p.S || (p.causal && key > row))) pe = 0.f;
      pm[n][e] = pe;
    }
}

/// Then, with dp holding dP = dO V^T in the same layout: dS = P (dP z - Di) into pm.
__device__ __forceinline__ void grads(const Params& p, float (&pm)[8][4], const float (&dp)[8][4],
                                      const float (&di)[2], int64_t bh, int64_t k0, int64_t row0) {
  const int q = static_cast<int>(threadIdx.x) & 3;
#pragma unroll
  for (int n = 0; n < 8; ++n)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float z[2] = {1.f, 1.f};
      if (p.dropout)
        drop_pair(p, static_cast<uint64_t>((bh * p.L + row0 + 8 * r) * p.S + k0 + 8 * n + 2 * q),
                  z[0], z[1]);
#pragma unroll
      for (int c = 0; c < 2; ++c) pm[n][2 * r + c] *= dp[n][2 * r + c] * z[c] - di[r];
    }
}

/// lse log2(e) and Di of a warp's rows row0 and row0 + 8 (rows past L: zeros, never stored).
__device__ __forceinline__ void row_stats(const Params& p, int64_t bh, int64_t row0,
                                          float (&lse2)[2], float (&di)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t row = row0 + 8 * r;
    const float* const tile = p.stats + (bh * query_tiles(p) + row / kBlockM) * 2 * kBlockM;
    lse2[r] = tile[row % kBlockM];
    di[r] = tile[kBlockM + row % kBlockM];
  }
}

/// dK and dV of one 64-key tile: query tiles streamed through two stages of (Q, dO, lse, Di).
/// kWg (sm_90a): the four products on wgmma from swizzled tiles (tile_abt, tile_px).
template <class T, int D, bool kWg>
__global__ void __launch_bounds__(kThreads) attention_dkdv_kernel(const Params p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  // tiles: K, V, Q stage 0 and 1, dO stage 0 and 1; then the query tiles' stats, 2 x 128
  unsigned char* const ks = smem_tile<D, kWg>(smem_raw, 0);
  unsigned char* const vs = smem_tile<D, kWg>(smem_raw, 1);
  const auto qs = [&](int s) { return smem_tile<D, kWg>(smem_raw, 2 + s); };
  const auto dos = [&](int s) { return smem_tile<D, kWg>(smem_raw, 4 + s); };
  float* const stats_s = reinterpret_cast<float*>(smem_tile<D, kWg>(smem_raw, 6));
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int g = lane / 4;
  const int64_t k0 = blockIdx.x * int64_t{kBlockN};
  const int64_t key0 = k0 + warp * 16 + g;  // this lane's keys: key0, key0 + 8
  const int64_t n_qtiles = query_tiles(p);
  const int64_t first = p.causal ? k0 / kBlockM : 0;  // earlier queries see none of these keys

  for (int64_t bh = blockIdx.y; bh < p.BH; bh += gridDim.y) {
    const T* const Q = head_ptr<T>(p.q, bh, p.H);
    const T* const K = head_ptr<T>(p.k, bh, p.H);
    const T* const V = head_ptr<T>(p.v, bh, p.H);
    const T* const dO = head_ptr<T>(p.dout, bh, p.H);
    const float* const stats = p.stats + bh * n_qtiles * 2 * kBlockM;
    auto load_queries = [&](int s, int64_t qt) {
      const int64_t r0 = qt * kBlockM;
      load_tile<T, D, kWg>(qs(s), Q, p.q.sr, r0, p.L);
      load_tile<T, D, kWg>(dos(s), dO, p.dout.sr, r0, p.L);
      static_assert(kThreads == 2 * kBlockM, "one stats element per thread");
      stats_s[s * 2 * kBlockM + tid] = stats[qt * 2 * kBlockM + tid];
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
      const float* const stats_t = stats_s + s * 2 * kBlockM;
      const int64_t q0 = qt * kBlockM;

      float pt[8]
              [4];  // P^T (16 keys, 64 queries): lane holds keys g, g + 8, queries 8 n + 2 q, + 1
      zero(pt);
      tile_abt<T, D, kWg>(pt, ks, warp * 16, qt_s);
      probs_t(p, pt, stats_t, q0, key0, q0 + kBlockM > p.L || (p.causal && k0 + kBlockN - 1 > q0));
      float dpt[8][4];  // dP^T = V dO^T, the same layout
      zero(dpt);
      tile_abt<T, D, kWg>(dpt, vs, warp * 16, dot_s);
      grads_t(p, pt, dpt, stats_t + kBlockM, bh, q0, key0);
      tile_px<T, D, kWg>(dv, pt, dot_s);  // dV += (P^T z) dO
      tile_px<T, D, kWg>(dk, dpt, qt_s);  // dK += dS^T Q
      __syncthreads();
    }
    mma::cp_async_wait<0>();
    store_rows<T, D>(head_ptr<T>(p.dk, bh, p.H), p.dk.sr, dk, key0, p.S, p.scale, p.scale);
    store_rows<T, D>(head_ptr<T>(p.dv, bh, p.H), p.dv.sr, dv, key0, p.S, 1.f, 1.f);
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
  const int g = lane / 4;
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
    float lse2[2], di[2];
    row_stats(p, bh, row0, lse2, di);

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
      probs(p, pm, lse2, k0, row0, k0 + kBlockN > p.S || (p.causal && k0 + kBlockN - 1 > q0));
      float dp[8][4];  // dP = dO V^T
      zero(dp);
      tile_abt<T, D, kWg>(dp, dos, warp * 16, vt);
      grads(p, pm, dp, di, bh, k0, row0);
      tile_px<T, D, kWg>(dq, pm, kt);  // dQ += dS K
      __syncthreads();
    }
    mma::cp_async_wait<0>();
    store_rows<T, D>(head_ptr<T>(p.out, bh, p.H), p.out.sr, dq, row0, p.L, p.scale, p.scale);
    __syncthreads();
  }
}

/// One query tile (rows q0.., the block's j-th streamed tile) of a warp-specialised dK/dV
/// consumer (variants 2 and 3), keys kc0.. of which the thread holds key0 and key0 + 8: S^T =
/// K Q^T and dP^T = V dO^T issued, P^T while dP^T runs, dS^T, and dV += P^T dO and dK += dS^T Q
/// issued with P^T and dS^T as register A and committed, not waited for. `packed(da)` runs
/// between the packing of dS^T's fragments and the issue (variant 3 stores them for dQ there).
template <class T, int D, class Tile, class Packed>
__device__ __forceinline__ void dkdv_tile(const Params& p, const WsSmem<Tile>& sm, int j,
                                          int64_t q0, int64_t kc0, int64_t key0, int64_t bh,
                                          const unsigned char* ks, const unsigned char* vs,
                                          float (&dk)[D / 8][4], float (&dv)[D / 8][4],
                                          Packed&& packed) {
#if defined(EMBER_HAVE_WGMMA)
  const int st = j % Tile::kStages;
  float pt[8][4], dpt[8][4];
  float(&dkd)[D / 2] = *reinterpret_cast<float(*)[D / 2]>(&dk[0][0]);
  float(&dvd)[D / 2] = *reinterpret_cast<float(*)[D / 2]>(&dv[0][0]);
  float(&dptd)[32] = *reinterpret_cast<float(*)[32]>(&dpt[0][0]);
  uint32_t pa[4][4], da[4][4];  // P^T z and dS^T as register-A fragments
  uint32_t(&pa_flat)[16] = *reinterpret_cast<uint32_t(*)[16]>(&pa[0][0]);
  uint32_t(&da_flat)[16] = *reinterpret_cast<uint32_t(*)[16]>(&da[0][0]);
  issue_score_pair<T, D>(sm, j, pt, ks, dpt, vs);  // S^T = K Q^T done, dP^T = V dO^T running
  const float* const stats = sm.stats(st);
  probs_t(p, pt, stats, q0, key0,
          q0 + kBlockM > p.L || kc0 + 64 > p.S || (p.causal && kc0 + 63 > q0));
  mma::wgmma_wait<0>();
  mma::fence_operands(dptd);
  grads_t(p, pt, dpt, stats + kBlockM, bh, q0, key0);
  pack_p<T>(pa, pt);
  pack_p<T>(da, dpt);
  packed(da);
  mma::fence_operands(pa_flat);
  mma::fence_operands(da_flat);
  mma::fence_operands(dkd);
  mma::fence_operands(dvd);
  mma::wgmma_fence();
  issue_pv<T, D, 64>(dvd, pa, sm.y(st));  // dV += (P^T z) dO
  issue_pv<T, D, 64>(dkd, da, sm.x(st));  // dK += dS^T Q
  mma::wgmma_commit();
#else
  (void)p, (void)sm, (void)j, (void)q0, (void)kc0, (void)key0, (void)bh, (void)ks, (void)vs,
      (void)dk, (void)dv, (void)packed;
#endif
}

/// The warp-specialised backward (variant 2, sm_90a), WsTile's pipeline: dK and dV of 128 keys
/// per block, each consumer warpgroup 64 of them with its K and V rows resident; the producer
/// streams the query tiles (Q on "full x"; dO and the tile's stats on "full y") from the first
/// one that sees the block's keys. Per query tile a consumer issues S^T = K Q^T and dP^T = V dO^T
/// (two groups), computes P^T while dP^T runs, then dS^T, and issues dV += P^T dO and dK += dS^T Q
/// with P^T and dS^T from registers; the stage is released once those have retired.
template <class T, int D>
__global__ void __launch_bounds__(384, 1)
    attention_dkdv_ws_kernel(const Params p, const __grid_constant__ CUtensorMap map_q,
                             const __grid_constant__ CUtensorMap map_k,
                             const __grid_constant__ CUtensorMap map_v,
                             const __grid_constant__ CUtensorMap map_do) {
#if defined(EMBER_HAVE_WGMMA)
  using Tile = WsTile<D, 64, 2, true>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const WsSmem<Tile> sm(smem_raw);
  const int tid = static_cast<int>(threadIdx.x), wg = __shfl_sync(0xffffffffu, tid / 128, 0);
  const int64_t k0 = blockIdx.x * int64_t{Tile::kRows}, bh = blockIdx.y;
  const int64_t n_qtiles = query_tiles(p);
  const int64_t first = p.causal ? k0 / kBlockM : 0;  // earlier queries see none of these keys
  // Causal, keys past every query (n <= 0): no tile to walk, dK and dV stored as zeros. (The
  // consumers store them: an early exit storing the zeros had ptxas merge its stores with the
  // epilogue's and compile those at the producer's 168 registers: 1 KiB of spills at D 128 and
  // every wgmma serialised, its note C7512.)
  const int n = static_cast<int>(n_qtiles - first);
  const int consumers = k0 + 64 < p.S ? 2 : 1;
  if (tid == 0) sm.init(consumers);
  __syncthreads();
  const auto h = static_cast<int32_t>(bh % p.H), b = static_cast<int32_t>(bh / p.H);

  if (wg == 0) {
    tma::setmaxnreg<24, false>();
    const CUtensorMap* const res[2] = {&map_k, &map_v};
    if (tid == 0)
      ws_produce(sm, res, k0, consumers, &map_q, &map_do, first, n, h, b,
                 p.stats + bh * n_qtiles * 2 * kBlockM);
    return;
  }

  tma::setmaxnreg<240, true>();
  const int c = wg - 1;
  if (c >= consumers) return;
  const int lane = tid & 31, warp = (tid / 32) % 4;
  const int64_t kc0 = k0 + 64 * c, key0 = kc0 + warp * 16 + lane / 4;  // keys key0, key0 + 8
  const unsigned char* const ks = sm.resident(0, c);
  const unsigned char* const vs = sm.resident(1, c);
  float dk[D / 8][4], dv[D / 8][4];
  float(&dkd)[D / 2] = *reinterpret_cast<float(*)[D / 2]>(&dk[0][0]);
  float(&dvd)[D / 2] = *reinterpret_cast<float(*)[D / 2]>(&dv[0][0]);
  zero(dk);
  zero(dv);
  tma::mbar_wait(sm.res_full(), 0);
  for (int j = 0; j < n; ++j) {
    dkdv_tile<T, D>(p, sm, j, (first + j) * kBlockM, kc0, key0, bh, ks, vs, dk, dv,
                    [](const uint32_t(&)[4][4]) {});
    mma::wgmma_wait<0>();
    mma::fence_operands(dkd);
    mma::fence_operands(dvd);
    sm.release(j % Tile::kStages, lane);
  }
  store_rows<T, D>(head_ptr<T>(p.dk, bh, p.H), p.dk.sr, dk, key0, p.S, p.scale, p.scale);
  store_rows<T, D>(head_ptr<T>(p.dv, bh, p.H), p.dv.sr, dv, key0, p.S, 1.f, 1.f);
#else
  (void)p, (void)map_q, (void)map_k, (void)map_v, (void)map_do;
#endif
}

/// The warp-specialised dQ (variant 2): 128 query rows per block, each consumer 64 with its Q and
/// dO rows resident; the producer streams the key tiles the rows see (K on "full x", V on "full
/// y"). Per key tile: S = Q K^T and dP = dO V^T issued, P while dP runs, dS, dQ += dS K.
template <class T, int D>
__global__ void __launch_bounds__(384, 1)
    attention_dq_ws_kernel(const Params p, const __grid_constant__ CUtensorMap map_q,
                           const __grid_constant__ CUtensorMap map_k,
                           const __grid_constant__ CUtensorMap map_v,
                           const __grid_constant__ CUtensorMap map_do) {
#if defined(EMBER_HAVE_WGMMA)
  using Tile = WsTile<D, 64, 2>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const WsSmem<Tile> sm(smem_raw);
  const int tid = static_cast<int>(threadIdx.x), wg = __shfl_sync(0xffffffffu, tid / 128, 0);
  const int64_t qt = p.causal ? gridDim.x - 1 - blockIdx.x : blockIdx.x;  // heaviest first
  const int64_t q0 = qt * Tile::kRows, bh = blockIdx.y;
  const int consumers = q0 + 64 < p.L ? 2 : 1;
  const int64_t rows_end = q0 + 64 * consumers < p.L ? q0 + 64 * consumers : p.L;
  const int64_t keys = p.causal && rows_end < p.S ? rows_end : p.S;
  const int n_tiles = static_cast<int>((keys + kBlockN - 1) / kBlockN);
  if (tid == 0) sm.init(consumers);
  __syncthreads();
  const auto h = static_cast<int32_t>(bh % p.H), b = static_cast<int32_t>(bh / p.H);

  if (wg == 0) {
    tma::setmaxnreg<24, false>();
    const CUtensorMap* const res[2] = {&map_q, &map_do};
    if (tid == 0) ws_produce(sm, res, q0, consumers, &map_k, &map_v, 0, n_tiles, h, b, nullptr);
    return;
  }

  tma::setmaxnreg<240, true>();
  const int c = wg - 1;
  if (c >= consumers) return;
  const int lane = tid & 31, warp = (tid / 32) % 4;
  const int64_t qc0 = q0 + 64 * c, row0 = qc0 + warp * 16 + lane / 4;  // rows row0, row0 + 8
  const unsigned char* const qs = sm.resident(0, c);
  const unsigned char* const dos = sm.resident(1, c);
  float lse2[2], di[2];
  row_stats(p, bh, row0, lse2, di);
  float dq[D / 8][4], pm[8][4], dp[8][4];
  float(&dqd)[D / 2] = *reinterpret_cast<float(*)[D / 2]>(&dq[0][0]);
  float(&dpd)[32] = *reinterpret_cast<float(*)[32]>(&dp[0][0]);
  uint32_t da[4][4];  // dS as register-A fragments
  uint32_t(&da_flat)[16] = *reinterpret_cast<uint32_t(*)[16]>(&da[0][0]);
  zero(dq);
  tma::mbar_wait(sm.res_full(), 0);
  for (int t = 0; t < n_tiles; ++t) {
    const int st = t % Tile::kStages;
    const int64_t k0 = t * int64_t{kBlockN};
    issue_score_pair<T, D>(sm, t, pm, qs, dp, dos);  // S = Q K^T done, dP = dO V^T running
    probs(p, pm, lse2, k0, row0, k0 + kBlockN > p.S || (p.causal && k0 + kBlockN - 1 > qc0));
    mma::wgmma_wait<0>();
    mma::fence_operands(dpd);
    grads(p, pm, dp, di, bh, k0, row0);
    pack_p<T>(da, pm);
    mma::fence_operands(da_flat);
    mma::fence_operands(dqd);
    mma::wgmma_fence();
    issue_pv<T, D, 64>(dqd, da, sm.x(st));  // dQ += dS K
    mma::wgmma_commit();
    mma::wgmma_wait<0>();
    mma::fence_operands(dqd);
    sm.release(st, lane);
  }
  store_rows<T, D>(head_ptr<T>(p.out, bh, p.H), p.out.sr, dq, row0, p.L, p.scale, p.scale);
#else
  (void)p, (void)map_q, (void)map_k, (void)map_v, (void)map_do;
#endif
}

/// The fused backward's tiles: the dK/dV kernel's (K and V resident, Q and dO plus the stats
/// streamed in 64-row query tiles), two buffers of dS for the dQ product, 128 keys x 64 queries
/// of T each, and one dQ buffer per consumer, 64 x 64 floats.
template <int D>
using FusedTile = WsTile<D, 64, 2, true, 2 * 128 * 64 * 2 + 2 * 64 * 64 * 4>;

/// A consumer's dS^T (its 64 keys x the tile's 64 queries, as register-A fragments da) into the
/// dS buffer ds at rows 64 c .. (one row of 128 bytes per key, the 16-byte chunk j of row r at
/// j ^ (r % 8)): the M-major layout in which the dQ product reads dS (M = the queries).
__device__ __forceinline__ void store_ds_t(unsigned char* ds, const uint32_t (&da)[4][4], int c) {
  const int lane = static_cast<int>(threadIdx.x) & 31,
            warp = (static_cast<int>(threadIdx.x) / 32) % 4;
  const int g = lane / 4, q = lane % 4;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    unsigned char* const line = ds + (64 * c + 16 * warp + g + 8 * r) * 128 + 4 * q;
#pragma unroll
    for (int ks = 0; ks < 4; ++ks)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        *reinterpret_cast<uint32_t*>(line + ((2 * ks + h) ^ g) * 16) = da[ks][2 * h + r];
  }
}

#if defined(EMBER_HAVE_WGMMA)
/// dQ (the tile's 64 queries x N of its columns) = dS K over the block's 128 keys, issued (not
/// committed): dS from the buffer ds (store_ds_t: M-major, imm-trans-a), K's N columns from the
/// consumers' resident tiles k0 (keys 0-63) and k1 (64-127), pointing at the first column's
/// panel, read N-major (imm-trans-b; panels 8 KiB apart); k16 step ks at 16 rows = 2048 bytes.
template <class T, int N>
__device__ __forceinline__ void issue_dq(float (&d)[N / 2], const unsigned char* ds,
                                         const unsigned char* k0, const unsigned char* k1) {
#pragma unroll
  for (int ks = 0; ks < 8; ++ks) {
    const uint64_t da = mma::smem_desc_sw128_mn(ds + ks * 2048, 64 * 128);
    const uint64_t db = mma::smem_desc_sw128_mn((ks < 4 ? k0 : k1) + (ks % 4) * 2048, 64 * 128);
    if constexpr (N == 64)
      mma::wgmma_m64n64k16<mma_t<T>, true, true>(d, da, db);
    else
      mma::wgmma_m64n128k16<mma_t<T>, true, true>(d, da, db);
  }
}
#endif

/// A consumer hands its dQ (the N columns of a warp's rows as store_rows takes them) to its
/// writer warp: once the writer's reduction has read the last one ("dQ empty", the phase before
/// the consumer's h-th hand-off; every thread waits: one thread waiting and a barrier passing it
/// on had ptxas serialise the wgmma at D 128, C7520), each thread stores its values into the
/// consumer's dQ buffer (dq_buf's layout) and publishes them to the async proxy, a named barrier
/// of the 128 gathers them, and one arrives on "dQ full". The consumer goes on to its next tile
/// while the writer waits for the turn and adds.
template <class Tile, int N>
__device__ __forceinline__ void hand_dq(const WsSmem<Tile>& sm, const float (&dq)[N / 8][4], int c,
                                        int h) {
#if defined(EMBER_HAVE_WGMMA)
  static_assert(N == 64, "hand_dq: 64 columns per buffer");
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = (tid / 32) % 4;
  tma::mbar_wait(sm.dq_empty(c), (static_cast<uint32_t>(h) & 1) ^ 1);  // free (first: at once)
  // Columns 8t + 2q (q = lane % 4) of rows row0 and row0 + 8 (the same row % 4 = g % 4): half
  // t / 4, chunk 2 (t % 4) + q / 2, which the swizzle XORs with t / 4 + 2 (g % 4). The low bit
  // (q / 2 ^ t / 4) goes into two bases, one per half; the rest is ((t % 4) ^ (g % 4)) pairs of
  // chunks. A half-warp's 16 lanes (4 rows) fill the 32 banks once per store.
  const int row0 = 16 * warp + lane / 4, g = lane / 4, q = lane % 4;
  float* const base = sm.dq_buf(c) + row0 * 64 + (q / 2) * 4 + 2 * (q % 2);
  const int half = 32 + (q / 2 != 0 ? -4 : 4);  // to the second half, its low chunk bit flipped
#pragma unroll
  for (int r = 0; r < 2; ++r) {
#pragma unroll
    for (int t = 0; t < N / 8; ++t)
      *reinterpret_cast<float2*>(base + r * 8 * 64 + (t / 4) * half + ((t % 4) ^ (g % 4)) * 8) =
          make_float2(dq[t][2 * r], dq[t][2 * r + 1]);
  }
  fence_to_async_proxy();  // the writer's TMA reduction reads the buffer through the async proxy
  tma::named_barrier(2 + c, 128, true);
  if (tid % 128 == 0) tma::mbar_arrive(sm.dq_full(c));
#else
  (void)sm, (void)dq, (void)c, (void)h;
#endif
}

/// Item `item`'s key tile in the fused backward: the key tiles of a head last first (n_kv - 1,
/// ..., 0), the order their dQ is added in (fused_turn).
__device__ __forceinline__ int fused_key_tile(int item, int n_kv) { return n_kv - 1 - item % n_kv; }

/// Key tile kv's place in the order the key tiles seeing query tile qt add to its dQ: the last
/// such tile first (turn 0). Causal, key tile kv starts at query tile kv * kRows / kBlockM, so
/// all start together and the later ones reach a given query tile first (2 tiles sooner per key
/// tile): last-first, each finds its turn come (ascending, every tile would wait for key tile
/// 0, the one with the most query tiles). Without a mask all reach it together.
template <int kRows>
__device__ __forceinline__ int fused_turn(const Params& p, int kv, int qt, int n_kv) {
  const int seen = qt * kBlockM / kRows;  // causal: the last key tile query tile qt sees
  return (p.causal && seen < n_kv - 1 ? seen : n_kv - 1) - kv;
}

/// The first query tile of the keys from k0 (causal: earlier queries see none of them) and the
/// count of query tiles from there.
__device__ __forceinline__ int fused_span(const Params& p, int k0, int n_qtiles, int& first) {
  first = p.causal ? k0 / kBlockM : 0;
  return first < n_qtiles ? n_qtiles - first : 0;
}

/// Writer of consumer c (lane 0 of warp 1 + c of the producer warpgroup): adds the consumer's
/// dQ tiles into p.dq_acc in turn, following the block's items as the consumers do (it reads
/// each item's index, then arrives on "resident empty", so the producer writes the next one only
/// once both writers have read this one). Per tile the consumer hands it (at D 64 every other
/// one): wait for "dQ full" and until the tile's turn counter (slot col0 / 64 for columns col0 ..
/// col0 + 63) reads the tile's turn (fused_turn); add the buffer with one TMA reduction
/// (cp.reduce.async.bulk.tensor through map_dq, rows past L skipped); once it has read the
/// buffer, free it ("dQ empty"); once its sums are visible here, set the counter one further (a
/// release, so the next tile's writer adds after them). The float sums keep one order, and the
/// consumers do not wait for the turn: the writer does, beside them, one tile behind at most.
template <int D>
__device__ __forceinline__ void write_dq(const Params& p, const WsSmem<FusedTile<D>>& sm,
                                         const CUtensorMap* map_dq, int c, int n_qtiles, int n_kv) {
#if defined(EMBER_HAVE_WGMMA)
  constexpr int kRows = FusedTile<D>::kRows;
  const int col0 = D == 128 ? 64 * c : 0;
  const float* const buf = sm.dq_buf(c);
  int j0 = 0, it = 0, h = 0;
  tma::mbar_wait(sm.res_full(), 0);
  for (int item = sm.read_item(); item >= 0; item = sm.read_item()) {
    const int bh = item / n_kv, kv = fused_key_tile(item, n_kv);
    int first;
    const int n = fused_span(p, kv * kRows, n_qtiles, first);
    tma::mbar_arrive(sm.res_empty());  // the index is read
    for (int j = 0; j < n; ++j) {
      if (D == 64 && (j0 + j) % 2 != c) continue;  // the other consumer's tile
      const int turn = fused_turn<kRows>(p, kv, first + j, n_kv);
      int* const flag =
          p.dq_turn + (static_cast<int64_t>(bh) * n_qtiles + first + j) * 2 + col0 / 64;
      tma::mbar_wait(sm.dq_full(c), static_cast<uint32_t>(h) & 1);
      tma::flag_wait(flag, turn);
      tma::reduce_add_box(buf, map_dq, {0, col0 / 32, (first + j) * kBlockM, bh});
      tma::bulk_commit();
      tma::bulk_wait<0, true>();  // the buffer read
      tma::mbar_arrive(sm.dq_empty(c));
      tma::bulk_wait<0>();
      tma::flag_set(flag, turn + 1);
      ++h;
    }
    j0 += n;
    tma::mbar_wait(sm.res_full(), static_cast<uint32_t>(++it) & 1);
  }
#else
  (void)p, (void)sm, (void)map_dq, (void)c, (void)n_qtiles, (void)n_kv;
#endif
}

/// The fused backward (variant 3, sm_90a): dK, dV and dQ from one pass over each (query tile,
/// key tile) pair, 5 tile products where variant 2 takes 7 (FlashAttention-2's work split, dQ
/// summed in global memory in a fixed order, as FlashAttention-3's deterministic mode does).
/// Persistent and cooperative: the items (head, 128-key tile), key tiles fastest and last first
/// (fused_key_tile), go to the blocks in order from a counter in global memory, a block taking
/// the next when its consumers have finished the last (so unequal causal items balance out).
/// A tile's turn to add its dQ (write_dq, fused_turn) waits only for the item before it, taken
/// earlier by a resident block, and each block's writers add its items' tiles in the order
/// taken: the block holding the lowest unfinished item has finished its earlier ones, so its
/// writers are at that item's tiles, whose turns come; the launch cannot deadlock.
/// Per item, WsTile's pipeline of the dK/dV kernel: the producer reloads K and V once the
/// consumers have released the previous item's ("resident empty") and streams the query tiles
/// (the stage count runs on across items). Per query tile each consumer computes S^T, dP^T, P^T
/// and dS^T as variant 2's dK/dV kernel does, stores dS^T in the tile's dS buffer, issues dV +=
/// P^T dO and dK += dS^T Q; after a barrier of both consumers, once dK and dV have retired and
/// the stage is released, dQ = dS K over all 128 keys (at D 128 each consumer its 64 columns; at
/// D 64 one consumer all 64, alternating by tile), handed to the consumer's writer warp
/// (hand_dq), which adds it in turn. Both consumers always run (a ragged last key tile masks its
/// keys past S). The dS buffers alternate: tile j's is written again at j + 2, after the barrier
/// of j + 1, which its readers reach only once their dQ has retired.
template <class T, int D>
__global__ void __launch_bounds__(384, 1)
    attention_bwd_fused_kernel(const Params p, const __grid_constant__ CUtensorMap map_q,
                               const __grid_constant__ CUtensorMap map_k,
                               const __grid_constant__ CUtensorMap map_v,
                               const __grid_constant__ CUtensorMap map_do,
                               const __grid_constant__ CUtensorMap map_dq) {
#if defined(EMBER_HAVE_WGMMA)
  using Tile = FusedTile<D>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const WsSmem<Tile> sm(smem_raw);
  const int tid = static_cast<int>(threadIdx.x), wg = __shfl_sync(0xffffffffu, tid / 128, 0);
  // 32-bit bookkeeping (the launcher checks that items, rows and tiles fit): registers are
  // scarce in the consumers, which keep dK and dV in 128 of them at D 128.
  const int n_qtiles = static_cast<int>(query_tiles(p));
  const int n_kv = static_cast<int>((p.S + Tile::kRows - 1) / Tile::kRows);
  const int items = static_cast<int>(p.BH) * n_kv;
  if (tid == 0) {
    sm.init(2, 2);  // "resident empty": the consumers' 8 warps and the 2 writers
    for (int c = 0; c < 2; ++c) {
      tma::mbar_init(sm.dq_full(c), 1);
      tma::mbar_init(sm.dq_empty(c), 1);
    }
    tma::fence_barrier_init();
  }
  __syncthreads();
  const auto span = [&](int k0, int& first) { return fused_span(p, k0, n_qtiles, first); };

  // Registers per thread after setmaxnreg (x 128 for the producer, x 256 for the consumers,
  // within the SM's 65536): at D 64 the producer's item loop gets 32 (24 spilled 16 bytes; the
  // consumers need less than 232), at D 128 the consumers keep 240 (232 spilled 128 bytes).
  constexpr int kProducerRegs = D == 64 ? 32 : 24, kConsumerRegs = D == 64 ? 232 : 240;
  if (wg == 0) {
    tma::setmaxnreg<kProducerRegs, false>();
    if (tid == 0) {
      const CUtensorMap* const res[2] = {&map_k, &map_v};
      int j0 = 0;
      for (int it = 0;; ++it) {
        if (it > 0) tma::mbar_wait(sm.res_empty(), static_cast<uint32_t>(it - 1) & 1);
        // The next item, in the order of the counter, once the consumers have finished the
        // last one's products and both writers have read its index (their adds may still run).
        const int item = atomicAdd(p.item_next, 1);
        if (item >= items) {
          *sm.item_slot() = -1;
          tma::mbar_arrive(sm.res_full());  // no bytes: the consumers' last phase
          break;
        }
        *sm.item_slot() = item;  // published by ws_produce's arrival on "resident full"
        const int bh = item / n_kv, k0 = fused_key_tile(item, n_kv) * Tile::kRows,
                  h = bh % static_cast<int>(p.H);
        int first;
        const int n = span(k0, first);
        ws_produce(sm, res, k0, 2, &map_q, &map_do, first, n, h, bh / static_cast<int>(p.H),
                   p.stats + static_cast<int64_t>(bh) * n_qtiles * 2 * kBlockM, j0);
        j0 += n;
      }
    } else if (tid == 32 || tid == 64) {
      write_dq<D>(p, sm, &map_dq, tid / 32 - 1, n_qtiles, n_kv);  // consumer 0's, 1's
    }
    return;
  }

  tma::setmaxnreg<kConsumerRegs, true>();
  const int c = wg - 1, lane = tid & 31, warp = (tid / 32) % 4;
  const unsigned char* const ks = sm.resident(0, c);
  const unsigned char* const vs = sm.resident(1, c);
  // dQ's columns per product: at D 128 each consumer takes its 64 (panel c of K) every tile; at
  // D 64 (a 32-column half would start inside a swizzled panel) one consumer takes all 64, the
  // two alternating by tile.
  constexpr bool kHalves = D == 128;
  constexpr int kN = kHalves ? 64 : D;
  float dk[D / 8][4], dv[D / 8][4], dq[kN / 8][4];
  float(&dkd)[D / 2] = *reinterpret_cast<float(*)[D / 2]>(&dk[0][0]);
  float(&dvd)[D / 2] = *reinterpret_cast<float(*)[D / 2]>(&dv[0][0]);
  float(&dqd)[kN / 2] = *reinterpret_cast<float(*)[kN / 2]>(&dq[0][0]);
  // The items that "resident full" announces. The loop keeps the shape of a counted loop, the
  // next item read at its end: an endless loop that waits and breaks at its top had ptxas spill
  // 1.8 KiB at D 128 and serialise the wgmma (C7512).
  int j0 = 0, it = 0;
  tma::mbar_wait(sm.res_full(), 0);
  for (int item = sm.held_item(); item >= 0; item = sm.held_item()) {
    const int bh = item / n_kv, kv = fused_key_tile(item, n_kv), k0 = kv * Tile::kRows;
    int first;
    const int n = span(k0, first);
    const int kc0 = k0 + 64 * c, key0 = kc0 + warp * 16 + lane / 4;  // keys key0, key0 + 8
    zero(dk);
    zero(dv);
    for (int j = 0; j < n; ++j) {
      const int jj = j0 + j, st = jj % Tile::kStages, q0 = (first + j) * kBlockM;
      unsigned char* const ds = sm.extra() + (jj % 2) * (128 * 128);
      dkdv_tile<T, D>(p, sm, jj, q0, kc0, key0, bh, ks, vs, dk, dv, [&](const uint32_t(&da)[4][4]) {
        store_ds_t(ds, da, c);
        fence_to_async_proxy();  // dS^T's stores before the dQ product's reads
      });
      tma::named_barrier(1, 256, true);  // both consumers' dS^T stored
      mma::wgmma_wait<0>();
      mma::fence_operands(dkd);
      mma::fence_operands(dvd);
      sm.release(st, lane);
      // dQ once dK and dV have retired, so P^T's and dS^T's fragments are free (at D 128 the
      // accumulators and the fragments would not fit in 240 registers together).
      if (kHalves || jj % 2 == c) {
        const int col0 = kHalves ? 64 * c : 0;
        zero(dq);
        mma::fence_operands(dqd);
        mma::wgmma_fence();
        issue_dq<T, kN>(dqd, ds, sm.resident(0, 0) + col0 * 128,  // dQ = dS K
                        sm.resident(0, 1) + col0 * 128);
        mma::wgmma_commit();
        mma::wgmma_wait<0>();
        mma::fence_operands(dqd);
        hand_dq<Tile, kN>(sm, dq, c, kHalves ? jj : jj / 2);
      }
    }
    store_rows<T, D>(head_ptr<T>(p.dk, bh, p.H), p.dk.sr, dk, key0, p.S, p.scale, p.scale);
    store_rows<T, D>(head_ptr<T>(p.dv, bh, p.H), p.dv.sr, dv, key0, p.S, 1.f, 1.f);
    sm.release_resident(lane);  // this item's last reads of K and V (dQ's included) retired
    j0 += n;
    tma::mbar_wait(sm.res_full(), static_cast<uint32_t>(++it) & 1);
  }
#else
  (void)p, (void)map_q, (void)map_k, (void)map_v, (void)map_do;
#endif
}

/// dq = dq_acc * scale in T: acc the (BH, L, D) float32 sums (n elements), dq p.out's heads;
/// two elements per thread and step.
template <class T, int D>
__global__ void __launch_bounds__(256)
    attention_dq_convert_kernel(const Params p, const float* acc, int64_t n) {
  const int64_t pairs = n / 2, step = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < pairs; i += step) {
    const int64_t row = 2 * i / D, bh = row / p.L;
    T* const dst = head_ptr<T>(p.out, bh, p.H) + (row - bh * p.L) * p.out.sr + 2 * i % D;
    const float2 v = reinterpret_cast<const float2*>(acc)[i];
    *reinterpret_cast<uint32_t*>(dst) = pack2<T>(v.x * p.scale, v.y * p.scale);
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

/// head_view of an output the kernels write in place (any layout head_view takes: contiguous, or
/// the (B, H, L, D) view of (B, L, H, D) memory the op allocates for a transposed input).
HeadPtr out_heads(const Tensor& t, const char* op, const char* what) {
  HeadPtr h;
  EMBER_CHECK(head_view(t, h), ValueError, "[", op, "] ", what, " ", t.sizes(), " with strides ",
              t.strides(), " is not a (B, H) stack of rows with unit stride along D in whole ",
              "16-byte chunks");
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
                                         "set_attention_backward_variant", -1, 3};

/// A rank-4 tensor map of x's (B, H, rows, D) heads with their own strides, read in boxes of
/// (box_rows, 64) with the 128-byte swizzle; false where it cannot be made (a zero stride of a
/// dimension larger than 1, or the driver refuses it).
template <class T, int D>
bool head_map(CUtensorMap* m, const Params& p, const HeadPtr& x, int64_t rows, uint32_t box_rows) {
  const auto n = [](int64_t v) { return static_cast<uint64_t>(v); };
  return tma::encode_tensor_map_4d(m, std::is_same_v<T, BF16Bits>, x.ptr, D, n(rows), n(p.H),
                                   n(p.BH / p.H), n(x.sr), n(x.sh), n(x.sb), 64, box_rows);
}

/// Variants 2 (kN 128) and 3 (kN 64): false (nothing launched) where the tensor maps cannot be
/// made (a zero stride of a dimension larger than 1, or the driver refuses one) or the sizes pass
/// TMA's 32-bit coordinates or the grid.
template <class T, int D, int kN>
bool launch_forward_ws(const Params& p, cudaStream_t stream, int device) {
  using Tile = WsTile<D, kN>;
  if (p.BH > 65535 || p.L > INT32_MAX - Tile::kRows || p.S > INT32_MAX - kN) return false;
  CUtensorMap map_q, map_k, map_v;
  if (!head_map<T, D>(&map_q, p, p.q, p.L, 64) || !head_map<T, D>(&map_k, p, p.k, p.S, kN) ||
      !head_map<T, D>(&map_v, p, p.v, p.S, kN))
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
  const dim3 grid(static_cast<unsigned>(query_tiles(p)), grid_heads(p.BH));
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

/// Variant 2: false (nothing launched) where the tensor maps cannot be made or the sizes pass
/// TMA's 32-bit coordinates or the grid.
template <class T, int D>
bool launch_backward_ws(const Params& p, cudaStream_t stream, int device) {
  using KvTile = WsTile<D, 64, 2, true>;
  using QTile = WsTile<D, 64, 2>;
  constexpr int64_t kRows = KvTile::kRows;  // keys per dK/dV block, queries per dQ block
  static_assert(QTile::kRows == kRows);
  if (p.BH > 65535 || p.L > INT32_MAX - kRows || p.S > INT32_MAX - kRows) return false;
  CUtensorMap map_q, map_k, map_v, map_do;
  if (!head_map<T, D>(&map_q, p, p.q, p.L, 64) || !head_map<T, D>(&map_k, p, p.k, p.S, 64) ||
      !head_map<T, D>(&map_v, p, p.v, p.S, 64) || !head_map<T, D>(&map_do, p, p.dout, p.L, 64))
    return false;
  detail::opt_in_smem<attention_dkdv_ws_kernel<T, D>>(KvTile::kSmem, device);
  const dim3 kv_grid(static_cast<unsigned>((p.S + kRows - 1) / kRows), static_cast<unsigned>(p.BH));
  attention_dkdv_ws_kernel<T, D>
      <<<kv_grid, KvTile::kThreads, KvTile::kSmem, stream>>>(p, map_q, map_k, map_v, map_do);
  EMBER_CUDA_CHECK_LAUNCH();
  detail::opt_in_smem<attention_dq_ws_kernel<T, D>>(QTile::kSmem, device);
  const dim3 q_grid(static_cast<unsigned>((p.L + kRows - 1) / kRows), static_cast<unsigned>(p.BH));
  attention_dq_ws_kernel<T, D>
      <<<q_grid, QTile::kThreads, QTile::kSmem, stream>>>(p, map_q, map_k, map_v, map_do);
  EMBER_CUDA_CHECK_LAUNCH();
  return true;
}

/// Variant 3: false (nothing launched) where the tensor maps cannot be made or the sizes pass
/// TMA's 32-bit coordinates; p.dq_acc, p.dq_turn and p.item_next (right after it) zeroed here.
template <class T, int D>
bool launch_backward_fused(const Params& p, cudaStream_t stream, int device) {
  using Tile = FusedTile<D>;
  constexpr int64_t kRows = Tile::kRows;
  const int64_t items = p.BH * ((p.S + kRows - 1) / kRows);
  if (p.L > INT32_MAX - kRows || p.S > INT32_MAX - kRows || items > INT32_MAX ||
      p.BH * query_tiles(p) * 2 > INT32_MAX)
    return false;
  CUtensorMap map_q, map_k, map_v, map_do;
  if (!head_map<T, D>(&map_q, p, p.q, p.L, 64) || !head_map<T, D>(&map_k, p, p.k, p.S, 64) ||
      !head_map<T, D>(&map_v, p, p.v, p.S, 64) || !head_map<T, D>(&map_do, p, p.dout, p.L, 64))
    return false;
  // dQ's float sums (BH, L, D) seen as (32 columns, D / 32 halves, L, BH), boxes of 64 rows x 64
  // columns: the writers' TMA reductions.
  CUtensorMap map_dq;
  const auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
  if (!tma::encode_tensor_map_f32(&map_dq, p.dq_acc, {32, D / 32, u(p.L), u(p.BH)},
                                  {0, 32, D, u(p.L) * D}, {32, 2, 64, 1}))
    return false;
  const int64_t acc = p.BH * p.L * D, turns = p.BH * query_tiles(p) * 2;
  EMBER_CUDA_CHECK(cudaMemsetAsync(p.dq_acc, 0, static_cast<size_t>(acc) * 4, stream));
  EMBER_CUDA_CHECK(cudaMemsetAsync(p.dq_turn, 0, static_cast<size_t>(turns + 1) * 4, stream));
  constexpr auto kernel = attention_bwd_fused_kernel<T, D>;
  detail::opt_in_smem<kernel>(Tile::kSmem, device);
  // Cooperative: every block resident (one per SM), each walking its items.
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeCooperative;
  attr.val.cooperative = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(std::min(items, detail::sm_count(device))), 1, 1);
  config.blockDim = dim3(Tile::kThreads, 1, 1);
  config.dynamicSmemBytes = Tile::kSmem;
  config.stream = stream;
  config.attrs = &attr;
  config.numAttrs = 1;
  EMBER_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, p, map_q, map_k, map_v, map_do, map_dq));
  EMBER_CUDA_CHECK_LAUNCH();
  const int64_t blocks = std::min<int64_t>((acc / 2 + 255) / 256, 8 * detail::sm_count(device));
  attention_dq_convert_kernel<T, D>
      <<<static_cast<unsigned>(blocks), 256, 0, stream>>>(p, p.dq_acc, acc);
  EMBER_CUDA_CHECK_LAUNCH();
  return true;
}

template <class T, int D>
void backward(const Params& p, cudaStream_t stream, int device) {
  const int64_t rows = p.BH * query_tiles(p) * kBlockM;
  const int64_t stats_blocks = (rows + kThreads / 32 - 1) / (kThreads / 32);
  attention_stats_kernel<T, D>
      <<<static_cast<unsigned>(stats_blocks < 65535 * 8 ? stats_blocks : 65535 * 8), kThreads, 0,
         stream>>>(p);
  EMBER_CUDA_CHECK_LAUNCH();
  // Automatic (-1) is mma.sync until a GPU run has confirmed the wgmma kernels; variant 2 falls
  // back to 1 where its tensor maps cannot be made.
  const int variant = g_backward_variant.get();
  const bool wgmma = variant >= 1 && detail::wgmma_available(device);
  if (wgmma && variant == 2 && launch_backward_ws<T, D>(p, stream, device)) return;
  if (wgmma && variant == 3 && p.dq_acc != nullptr &&
      launch_backward_fused<T, D>(p, stream, device))
    return;
  const auto launch = [&]<bool kWg>() {
    constexpr int tiles = smem_tiles_bytes<D, kWg>(6);
    constexpr int kv_bytes = tiles + 4 * kBlockM * 4;  // + two stages of stats
    detail::opt_in_smem<attention_dkdv_kernel<T, D, kWg>>(kv_bytes, device);
    const dim3 kv_grid(static_cast<unsigned>((p.S + kBlockN - 1) / kBlockN), grid_heads(p.BH));
    attention_dkdv_kernel<T, D, kWg><<<kv_grid, kThreads, kv_bytes, stream>>>(p);
    EMBER_CUDA_CHECK_LAUNCH();
    detail::opt_in_smem<attention_dq_kernel<T, D, kWg>>(tiles, device);
    const dim3 q_grid(static_cast<unsigned>(query_tiles(p)), grid_heads(p.BH));
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
  EMBER_CHECK(lse.dtype() == kFloat32 && out.dtype() == q.dtype() && lse.is_contiguous(),
              DTypeError, "[attention_forward_flash] expected out in ", q.dtype(),
              " and contiguous float32 lse, got ", out.dtype(), " and ", lse.dtype());
  Params& p = r.p;
  if (p.BH == 0 || p.L == 0) return;
  detail::DeviceGuard guard(q.device().index());
  if (p.S == 0) {  // no keys: zeros and lse -inf, as the CPU kernel
    fill(out, 0.0);
    fill(lse, -INFINITY);
    return;
  }
  p.out = out_heads(out, "attention_forward_flash", "out");
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
                  lse.is_contiguous(),
              DTypeError, "[attention_backward_flash] expected dout and out in ", q.dtype(),
              " and contiguous float32 lse, got dout ", dout.dtype(), ", out ", out.dtype(),
              ", lse ", lse.dtype());
  Tensor keep_dout, keep_out;
  p.dout = heads(dout, keep_dout);
  p.o = heads(out, keep_out);
  Tensor stats =
      empty({p.BH * query_tiles(p) * 2 * kBlockM}, TensorOptions(kFloat32).device(q.device()));
  p.stats = static_cast<float*>(stats.data_ptr());
  p.lse = static_cast<float*>(lse.data_ptr());
  p.out = out_heads(dq, "attention_backward_flash", "dq");
  p.dk = out_heads(dk, "attention_backward_flash", "dk");
  p.dv = out_heads(dv, "attention_backward_flash", "dv");
  Tensor fused;  // variant 3's dQ sums, turn counters and item counter (4 bytes each)
  if (g_backward_variant.get() == 3) {
    const int64_t acc = p.BH * p.L * r.D, turns = p.BH * query_tiles(p) * 2;
    fused = empty({acc + turns + 1}, TensorOptions(kFloat32).device(q.device()));
    p.dq_acc = static_cast<float*>(fused.data_ptr());
    p.dq_turn = reinterpret_cast<int*>(p.dq_acc + acc);
    p.item_next = p.dq_turn + turns;
  }
  const cudaStream_t stream = detail::stream_of(q);
  const int device = q.device().index();
  visit_kernel(q.dtype(), r.D, [&]<class T, int D>() { backward<T, D>(p, stream, device); });
}

}  // namespace ember::cuda
