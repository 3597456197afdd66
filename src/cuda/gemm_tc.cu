// Tensor-core GEMM for bfloat16 and float16 (mma.sync, sm_80 and later; wgmma on sm_90a) with a
// fused epilogue:
// out[b] = act(alpha * a[b] @ b[b] + beta * out[b] + bias) + residual[b], float32 accumulation,
// one rounding to the output dtype at the end; optionally the activation's input to pre_act too
// (linear_gelu's backward needs it). out is the operands' dtype or, the output cast, float32
// (then bias, residual and pre_act are float32 too, and nothing is rounded to 16 bits). cuda::gemm
// routes its 16-bit float products here when the layout allows (below); gemm_tc is also the entry
// point for callers with an epilogue.
//
// Layouts taken: A (M, K) with unit stride along K, or along M (dY^T in a Linear's weight
// gradient, read in place: stage rows of k, fragments by ldmatrix .trans); B (K, N) with unit
// stride along K ("B transposed", a Linear weight (N, K) read in place) or along N (row-major);
// the other stride of each operand, its batch stride and its base address multiples of 8
// elements (16-byte cp.async chunks); K too, except beside an M-contiguous A and a row-major B;
// for row-major B also N a multiple of 8. out, bias and residual: any strides. Anything else
// returns false and the caller uses the tiled kernel (linalg.cu).
//
// Algorithm (the multi-stage cp.async design of CUTLASS's sm80 GEMMs): a block owns a (128, 128)
// tile of out (tiles in groups of 8 block rows, so the blocks in flight share operand panels in
// L2); K is walked in slabs through a ring of shared-memory stages filled by cp.async (16 bytes
// per copy, out-of-range chunks zero-filled, so edges need no special path). Each warp owns a
// part of the tile: per 16-deep k step it loads A and B fragments with ldmatrix (.trans for
// M-contiguous A and row-major B) and issues mma.m16n8k16 on them. Shared rows are padded by 16
// bytes, so the 8 row addresses of each ldmatrix phase fall in 8 different 16-byte bank groups, and
// so do cp.async's stores. Tile configurations (set_gemm_tc_config):
//   1: 4 warps (2 x 2) of (64, 64), slabs of 64, 3 stages, 2 blocks per SM (242-244 registers,
//      108 KiB of shared memory per block);
//   0: 8 warps (2 x 4) of (64, 32), slabs of 32, 4 stages, 1 block per SM;
//   2: on sm_90a, warpgroup MMA (gemm_wgmma_kernel below) for K-contiguous B; else 1.
//   3: on sm_90a, TMA + mbarrier pipeline with a producer warpgroup and two consumer warpgroups
//      on wgmma.m64n256k16 (gemm_tma_kernel), B K- or N-contiguous, A K- or M-contiguous; one
//      block per 128 x 256 tile; else 1.
//   4: configuration 3 persistent: one block per SM walks the tiles, the producer loading the
//      next tile's slabs while the consumers store the last one's; else 1.
//   5: the TMA kernel persistent and ping-pong: 128 x 128 tiles, 6 stages, each consumer
//      warpgroup a whole tile of every other item, so one's epilogue overlaps the other's
//      products; else 1.
// By default (-1) 0 for products of fewer 128 x 128 tiles than SMs, else 1 (launch_config).
// The epilogue works on the accumulators in registers (each lane holds 2 adjacent columns of
// 2 rows per mma tile) and stores each element once (store_quad: adjacent pairs in one store).
//
// float32 with TF32 allowed (cuda::set_allow_tf32): gemm_tf32_kernel, the same design with
// 4-float chunks, 32-deep slabs and mma.m16n8k8.tf32 on fragments read by 32-bit shared loads and
// rounded to TF32 (cvt.rna); the same layout rules in 4-element units.
//
// Determinism: no atomics, no split-K; each element's sum is the tensor cores' over k in slab
// order, the same run to run.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "core/kernels.hpp"
#include "cuda/common.cuh"
#include "cuda/loops.cuh"
#include "cuda/mma.cuh"
#include "cuda/tma.cuh"
#include "cuda/variant.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/ops.hpp"

namespace ember::cuda {
namespace {

using detail::BF16Bits;
using detail::HalfBits;

/// A tile configuration: block tile (BM, BN), K slab BK, warps WARPS_M x WARPS_N (each owning
/// (BM / WARPS_M, BN / WARPS_N) of the tile), kStages shared-memory stages, kMinBlocks blocks
/// per SM asked of the register allocator.
template <int BM_, int BN_, int BK_, int WARPS_M_, int WARPS_N_, int STAGES_, int MIN_BLOCKS_>
struct TileConfig {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, kWarpsM = WARPS_M_, kWarpsN = WARPS_N_;
  static constexpr int kStages = STAGES_, kMinBlocks = MIN_BLOCKS_;
  static constexpr int kThreads = 32 * kWarpsM * kWarpsN;
  static constexpr int MI = BM / kWarpsM / 16;  // mma tiles per warp along M (16 rows each)
  static constexpr int NI = BN / kWarpsN / 8;   // and along N (8 columns each)
  static constexpr int kPad = 8;                // elements of padding per shared row (16 bytes)
  static constexpr int kAPitch = BK + kPad;
  static_assert(NI % 2 == 0 && BK % 16 == 0 && (BM * BK / 8) % kThreads == 0 &&
                (BN * BK / 8) % kThreads == 0);
};
/// 0: 8 warps (2 x 4) of (64, 32), K slabs of 32, 4 stages, one block per SM.
using Config0 = TileConfig<128, 128, 32, 2, 4, 4, 1>;
/// 1: 4 warps (2 x 2) of (64, 64), K slabs of 64, 3 stages, two blocks per SM (the default).
using Config1 = TileConfig<128, 128, 64, 2, 2, 3, 2>;

template <class C, bool kBKMajor>
constexpr int b_rows() {
  return kBKMajor ? C::BN : C::BK;
}  // B stage: (n, k) or (k, n) rows
template <class C, bool kBKMajor>
constexpr int b_pitch() {
  return kBKMajor ? C::BK + C::kPad : C::BN + C::kPad;
}
template <class C, bool kAKMajor>
constexpr int a_rows() {
  return kAKMajor ? C::BM : C::BK;
}  // A stage: (m, k) or (k, m) rows
template <class C, bool kAKMajor>
constexpr int a_pitch() {
  return kAKMajor ? C::kAPitch : C::BM + C::kPad;
}
template <class C, bool kAKMajor, bool kBKMajor>
constexpr int smem_bytes() {
  return C::kStages *
         (a_rows<C, kAKMajor>() * a_pitch<C, kAKMajor>() +
          b_rows<C, kBKMajor>() * b_pitch<C, kBKMajor>()) *
         2;
}

/// The tensor-core type of an element type (HalfBits -> __half, BF16Bits -> __nv_bfloat16).
template <class T>
using mma_t = std::conditional_t<std::is_same_v<T, HalfBits>, __half, __nv_bfloat16>;

struct TcParams {
  const void* a;  // A[m][k] at a + m * lda + k (configuration 3's kAKMajor false: a + k * lda + m)
  int64_t lda, a_batch;
  const void* b;  // kBKMajor: B[k][n] at b + n * ldb + k; else at b + k * ldb + n
  int64_t ldb, b_batch;
  void* out;  // out[m][n] at out + m * o_r + n * o_c
  int64_t o_r, o_c, o_batch;
  const void* bias;  // bias[n] at bias + n * bias_s, or null
  int64_t bias_s;
  const void* res;  // residual[m][n] at res + m * r_r + n * r_c, or null
  int64_t r_r, r_c, r_batch;
  void* pre;  // pre_act[m][n] at pre + m * p_r + n * p_c, or null
  int64_t p_r, p_c, p_batch;
  int64_t M, N, K, batches;
  float alpha, beta;
  GemmAct act;
  bool out_f32;  // 16-bit operands, float32 out (bias, residual and pre_act float32 too)
};

__device__ __forceinline__ float activate(float v, GemmAct act) {
  switch (act) {
    case GemmAct::kNone:
      return v;
    case GemmAct::kRelu:
      return v > 0.f || v != v ? v : 0.f;  // NaN passes, as in relu
    case GemmAct::kGelu:
      return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    case GemmAct::kGeluTanh: {
      const float inner = 0.79788456080286536f * (v + 0.044715f * v * v * v);
      return 0.5f * v * (1.f + tanhf(inner));
    }
  }
  return v;
}

/// Block tile (m_tile, n_tile) of the grid's linear index: GROUP_M row tiles side by side walk
/// the column tiles together, so the blocks in flight share A's row panels and B's column panels
/// in L2 (rather than one row of tiles sweeping all of B).
__device__ __forceinline__ void tile_of(int64_t bid, int64_t m_tiles, int64_t n_tiles,
                                        int64_t& m_tile, int64_t& n_tile) {
  constexpr int64_t kGroupM = 8;
  const int64_t per_group = kGroupM * n_tiles;
  const int64_t first_m = (bid / per_group) * kGroupM;
  const int64_t rows = m_tiles - first_m < kGroupM ? m_tiles - first_m : kGroupM;
  const int64_t in_group = bid % per_group;
  m_tile = first_m + in_group % rows;
  n_tile = in_group / rows;
}

/// The epilogue of one accumulator up to its rounding: act(alpha v + beta out + bias[col]) +
/// residual[z][row][col], the activation's input also stored to pre_act when asked; o is
/// out[z][row][col] (read for beta). O is out's element type, which bias, residual and pre_act
/// share.
template <class O>
__device__ __forceinline__ float finish(const TcParams& p, int64_t z, int64_t row, int64_t col,
                                        float v, const O* o) {
  v *= p.alpha;
  if (p.beta != 0.f) v += p.beta * detail::convert<float>(*o);
  if (p.bias) v += detail::convert<float>(static_cast<const O*>(p.bias)[col * p.bias_s]);
  if (p.pre)
    static_cast<O*>(p.pre)[z * p.p_batch + row * p.p_r + col * p.p_c] = detail::convert<O>(v);
  v = activate(v, p.act);
  if (p.res)
    v += detail::convert<float>(
        static_cast<const O*>(p.res)[z * p.r_batch + row * p.r_r + col * p.r_c]);
  return v;
}

/// store_quad's work for out elements of type O.
template <class O>
__device__ __forceinline__ void store_quad_as(const TcParams& p, int64_t z, int64_t row,
                                              int64_t col, const float* v) {
  struct alignas(2 * sizeof(O)) Pair {
    O lo, hi;
  };
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t r = row + 8 * h;
    if (r >= p.M || col >= p.N) continue;
    O* const o = static_cast<O*>(p.out) + z * p.o_batch + r * p.o_r + col * p.o_c;
    const float a = finish<O>(p, z, r, col, v[2 * h], o);
    if (col + 1 < p.N) {
      O* const o1 = o + p.o_c;
      const float b = finish<O>(p, z, r, col + 1, v[2 * h + 1], o1);
      if (p.o_c == 1 && reinterpret_cast<uintptr_t>(o) % sizeof(Pair) == 0) {
        *reinterpret_cast<Pair*>(o) = Pair{detail::convert<O>(a), detail::convert<O>(b)};
        continue;
      }
      *o1 = detail::convert<O>(b);
    }
    *o = detail::convert<O>(a);
  }
}

/// The epilogue of one mma-layout quad of accumulators: v = out[row][col], [row][col + 1],
/// [row + 8][col], [row + 8][col + 1] before the epilogue; each element rounded once and stored
/// once, those outside out skipped. A pair of columns contiguous in out and aligned to its size
/// is one store (32 bits for 16-bit types, 64 for float). T is the operands' element type; out
/// is T, or float32 when p.out_f32 (the output cast: no rounding to 16 bits at all).
template <class T>
__device__ __forceinline__ void store_quad(const TcParams& p, int64_t z, int64_t row, int64_t col,
                                           const float* v) {
  if (std::is_same_v<T, float> || p.out_f32)
    store_quad_as<float>(p, z, row, col, v);
  else
    store_quad_as<T>(p, z, row, col, v);
}

/// The cp.async loader of one block's A and B slabs, shared by gemm_tc_kernel (T 16-bit,
/// kChunk 8) and gemm_tf32_kernel (float, kChunk 4): each 16-byte chunk is kChunk elements. A
/// thread's chunk i of A is row r0 + i * kARowStep at column kc, so one base pointer and a
/// validity bit per chunk describe them all; only k moves from slab to slab. B K-contiguous is
/// read as A (rows are n); row-major B's chunks are kChunk columns of one k row. A chunk outside
/// the matrix is zero-filled from the matrix's base address. An M-contiguous A (kAKMajor false,
/// dY^T) is read as row-major B is, its stage rows being k; a chunk reaching past M copies only
/// the columns inside (cp.async's source size), so M need not be whole chunks.
template <class T, int kChunk, int BM, int BN, int BK, int kThreads, bool kBKMajor,
          bool kAKMajor = true>
struct SlabLoader {
  static constexpr int kAChunks = BM * BK / kChunk / kThreads;
  static constexpr int kBChunks = BN * BK / kChunk / kThreads;
  static constexpr int kARowStep = kAKMajor ? kThreads / (BK / kChunk) : kThreads / (BM / kChunk);
  static constexpr int kBRowStep = kBKMajor ? kThreads / (BK / kChunk) : kThreads / (BN / kChunk);
  static_assert(kAChunks <= 32 && kBChunks <= 32, "one validity bit per chunk");
  const T* A;
  const T* B;
  const T* a_base;
  const T* b_base;
  int64_t lda, ldb, K;
  int a_r0, a_kc, b_r0, b_c0;        // A M-contiguous: a_r0 the k row, a_kc the m column
  uint32_t a_rows_ok = 0, b_ok = 0;  // B row-major: bit 0 alone (the chunk's columns inside)
  int a_bytes = 0;                   // A M-contiguous: the chunk's bytes inside M

  __device__ __forceinline__ SlabLoader(const TcParams& p, const T* A_, const T* B_, int64_t m0,
                                        int64_t n0, int tid)
      : A(A_), B(B_), lda(p.lda), ldb(p.ldb), K(p.K) {
    if constexpr (kAKMajor) {
      a_r0 = tid / (BK / kChunk);
      a_kc = (tid % (BK / kChunk)) * kChunk;
      a_base = A + (m0 + a_r0) * lda + a_kc;
#pragma unroll
      for (int i = 0; i < kAChunks; ++i)
        if (m0 + a_r0 + i * kARowStep < p.M) a_rows_ok |= 1u << i;
    } else {
      a_r0 = tid / (BM / kChunk);
      a_kc = (tid % (BM / kChunk)) * kChunk;
      a_base = A + a_r0 * lda + m0 + a_kc;
      const int64_t inside = p.M - (m0 + a_kc);
      a_bytes = inside <= 0 ? 0 : static_cast<int>(inside < kChunk ? inside : kChunk) * 16 / kChunk;
    }
    b_r0 = kBKMajor ? tid / (BK / kChunk) : tid / (BN / kChunk);
    b_c0 = kBKMajor ? (tid % (BK / kChunk)) * kChunk : (tid % (BN / kChunk)) * kChunk;
    b_base = kBKMajor ? B + (n0 + b_r0) * ldb + b_c0 : B + b_r0 * ldb + n0 + b_c0;
#pragma unroll
    for (int i = 0; i < kBChunks; ++i)
      if (kBKMajor ? n0 + b_r0 + i * kBRowStep < p.N : n0 + b_c0 < p.N) b_ok |= 1u << i;
  }

  /// Slab kt into a stage: as (BM rows of pitch a_pitch), bs (B's rows of pitch b_pitch).
  __device__ __forceinline__ void operator()(T* as, T* bs, int a_pitch, int b_pitch,
                                             int64_t kt) const {
    const int64_t k0 = kt * BK;
    as += a_r0 * a_pitch + a_kc;
    bs += b_r0 * b_pitch + b_c0;
    if constexpr (kAKMajor) {
      const bool a_k_ok = k0 + a_kc < K;
#pragma unroll
      for (int i = 0; i < kAChunks; ++i) {
        const bool ok = a_k_ok && ((a_rows_ok >> i) & 1u);
        mma::cp_async_16(as + i * kARowStep * a_pitch, ok ? a_base + i * kARowStep * lda + k0 : A,
                         ok ? 16 : 0);
      }
    } else {
#pragma unroll
      for (int i = 0; i < kAChunks; ++i) {
        const int64_t k = k0 + a_r0 + i * kARowStep;
        const bool ok = k < K && a_bytes > 0;
        mma::cp_async_16(as + i * kARowStep * a_pitch, ok ? a_base + (k - a_r0) * lda : A,
                         ok ? a_bytes : 0);
      }
    }
#pragma unroll
    for (int i = 0; i < kBChunks; ++i) {
      if constexpr (kBKMajor) {
        const bool ok = k0 + b_c0 < K && ((b_ok >> i) & 1u);
        mma::cp_async_16(bs + i * kBRowStep * b_pitch, ok ? b_base + i * kBRowStep * ldb + k0 : B,
                         ok ? 16 : 0);
      } else {
        const int64_t k = k0 + b_r0 + i * kBRowStep;
        const bool ok = k < K && (b_ok & 1u);
        mma::cp_async_16(bs + i * kBRowStep * b_pitch, ok ? b_base + (k - b_r0) * ldb : B,
                         ok ? 16 : 0);
      }
    }
  }
};

template <class T, bool kAKMajor, bool kBKMajor, class C>
__global__ void __launch_bounds__(C::kThreads, C::kMinBlocks) gemm_tc_kernel(const TcParams p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  constexpr int BM = C::BM, BN = C::BN, BK = C::BK, MI = C::MI, NI = C::NI;
  constexpr int kStages = C::kStages, kThreads = C::kThreads;
  constexpr int AR = a_rows<C, kAKMajor>(), AP = a_pitch<C, kAKMajor>();
  constexpr int BR = b_rows<C, kBKMajor>(), BP = b_pitch<C, kBKMajor>();
  T* const As = reinterpret_cast<T*>(smem_raw);
  T* const Bs = As + kStages * AR * AP;
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int wm = warp / C::kWarpsN, wn = warp % C::kWarpsN;  // the warp's part of the tile
  int64_t m_tile, n_tile;
  tile_of(blockIdx.x, (p.M + BM - 1) / BM, (p.N + BN - 1) / BN, m_tile, n_tile);
  const int64_t m0 = m_tile * BM, n0 = n_tile * BN;
  const int64_t KT = (p.K + BK - 1) / BK;

  for (int64_t z = blockIdx.z; z < p.batches; z += gridDim.z) {
    const T* const A = static_cast<const T*>(p.a) + z * p.a_batch;
    const T* const B = static_cast<const T*>(p.b) + z * p.b_batch;
    const SlabLoader<T, 8, BM, BN, BK, kThreads, kBKMajor, kAKMajor> loader(p, A, B, m0, n0, tid);
    auto load = [&](int s, int64_t kt) { loader(As + s * AR * AP, Bs + s * BR * BP, AP, BP, kt); };

    float acc[MI][NI][4];
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < NI; ++ni)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.f;

    mma::fill_stages<kStages>(load, KT);
    for (int64_t kt = 0; kt < KT; ++kt) {
      mma::cp_async_wait<kStages - 2>();  // slab kt has landed (this thread's copies)
      __syncthreads();                    // everyone's, and slab kt - 1 is no longer read
      const int64_t next = kt + kStages - 1;
      if (next < KT) load(static_cast<int>(next % kStages), next);
      mma::cp_async_commit();
      const int s = static_cast<int>(kt % kStages);
      const T* const as = As + s * AR * AP;
      const T* const bs = Bs + s * BR * BP;
#pragma unroll
      for (int kk = 0; kk < BK; kk += 16) {
        uint32_t af[MI][4];
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
          if constexpr (kAKMajor) {
            const int r = wm * (MI * 16) + mi * 16 + (lane % 16), c = kk + (lane / 16) * 8;
            mma::ldmatrix_x4<false>(af[mi], as + r * AP + c);
          } else {  // (k, m) rows: matrices a0-a3 are (m 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7,
                    // k 8-15), (m 8-15, k 8-15), each read transposed
            const int j = lane / 8, m = wm * (MI * 16) + mi * 16 + (j % 2) * 8;
            const int k = kk + (j / 2) * 8 + lane % 8;
            mma::ldmatrix_x4<true>(af[mi], as + k * AP + m);
          }
        }
#pragma unroll
        for (int nj = 0; nj < NI / 2; ++nj) {  // one ldmatrix_x4: k 0-7 and 8-15 of two n tiles
          uint32_t r4[4];
          const int j = lane / 8, rr = lane % 8;
          if constexpr (kBKMajor) {
            const int n = wn * (NI * 8) + nj * 16 + (j / 2) * 8 + rr, k = kk + (j % 2) * 8;
            mma::ldmatrix_x4<false>(r4, bs + n * BP + k);
          } else {
            const int k = kk + (j % 2) * 8 + rr, n = wn * (NI * 8) + nj * 16 + (j / 2) * 8;
            mma::ldmatrix_x4<true>(r4, bs + k * BP + n);
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
    __syncthreads();  // the stages are free for the next batch

    // Epilogue: lane (g, q) holds rows g and g + 8, columns 2q and 2q + 1 of each mma tile.
    const int g = lane / 4, q = lane % 4;
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < NI; ++ni)
        store_quad<T>(p, z, m0 + wm * (MI * 16) + mi * 16 + g, n0 + wn * (NI * 8) + ni * 8 + 2 * q,
                      acc[mi][ni]);
  }
}

// ---- float32 on TF32 tensor cores (cuda::set_allow_tf32) ----

/// Block tile (128, 128) as 8 warps (2 x 4) of (64, 32), K slabs of 32 floats through 3 stages
/// (110 KiB), two blocks per SM. (4 warps of (64, 64), as configuration 1, need more than 255
/// registers here: a float fragment holds one element per register, not two.) Shared rows: A and
/// K-contiguous B padded to 36 floats, row-major B to 136, so the fragment reads (row g, column q
/// of a warp's 8 x 4 pattern) hit 32 different banks.
struct Tf32Config {
  static constexpr int BM = 128, BN = 128, BK = 32, kWarpsM = 2, kWarpsN = 4, kStages = 3;
  static constexpr int kThreads = 32 * kWarpsM * kWarpsN;
  static constexpr int MI = BM / kWarpsM / 16, NI = BN / kWarpsN / 8;
  static constexpr int kAPitch = BK + 4;
};

template <bool kBKMajor>
constexpr int tf32_b_rows() {
  return kBKMajor ? Tf32Config::BN : Tf32Config::BK;
}
template <bool kBKMajor>
constexpr int tf32_b_pitch() {
  return kBKMajor ? Tf32Config::BK + 4 : Tf32Config::BN + 8;
}
template <bool kBKMajor>
constexpr int tf32_smem_bytes() {
  using C = Tf32Config;
  return C::kStages * (C::BM * C::kAPitch + tf32_b_rows<kBKMajor>() * tf32_b_pitch<kBKMajor>()) * 4;
}

/// out = epilogue(A @ B) for float32 A, B and out with TF32 inputs: the structure of
/// gemm_tc_kernel (cp.async ring, grouped tile order, one store per element) with 16-byte chunks
/// of 4 floats, fragments read from shared memory by 32-bit loads (ldmatrix moves 16-bit
/// elements), each rounded to TF32 (cvt.rna) before mma.m16n8k8.
template <bool kBKMajor>
__global__ void __launch_bounds__(Tf32Config::kThreads, 2) gemm_tf32_kernel(const TcParams p) {
  using C = Tf32Config;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  constexpr int BM = C::BM, BN = C::BN, BK = C::BK, MI = C::MI, NI = C::NI;
  constexpr int kStages = C::kStages, kThreads = C::kThreads, kAPitch = C::kAPitch;
  constexpr int BR = tf32_b_rows<kBKMajor>(), BP = tf32_b_pitch<kBKMajor>();
  float* const As = reinterpret_cast<float*>(smem_raw);
  float* const Bs = As + kStages * BM * kAPitch;
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int wm = warp / C::kWarpsN, wn = warp % C::kWarpsN;
  const int g = lane / 4, q = lane % 4;
  int64_t m_tile, n_tile;
  tile_of(blockIdx.x, (p.M + BM - 1) / BM, (p.N + BN - 1) / BN, m_tile, n_tile);
  const int64_t m0 = m_tile * BM, n0 = n_tile * BN;
  const int64_t KT = (p.K + BK - 1) / BK;

  for (int64_t z = blockIdx.z; z < p.batches; z += gridDim.z) {
    const float* const A = static_cast<const float*>(p.a) + z * p.a_batch;
    const float* const B = static_cast<const float*>(p.b) + z * p.b_batch;
    const SlabLoader<float, 4, BM, BN, BK, kThreads, kBKMajor> loader(p, A, B, m0, n0, tid);
    auto load = [&](int s, int64_t kt) {
      loader(As + s * BM * kAPitch, Bs + s * BR * BP, kAPitch, BP, kt);
    };

    float acc[MI][NI][4];
#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < NI; ++ni)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.f;

    mma::fill_stages<kStages>(load, KT);
    for (int64_t kt = 0; kt < KT; ++kt) {
      mma::cp_async_wait<kStages - 2>();
      __syncthreads();
      const int64_t next = kt + kStages - 1;
      if (next < KT) load(static_cast<int>(next % kStages), next);
      mma::cp_async_commit();
      const int s = static_cast<int>(kt % kStages);
      const float* const as = As + s * BM * kAPitch;
      const float* const bs = Bs + s * BR * BP;
#pragma unroll
      for (int kk = 0; kk < BK; kk += 8) {
        uint32_t af[MI][4];
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
          const float* const a = as + (wm * (MI * 16) + mi * 16 + g) * kAPitch + kk + q;
          af[mi][0] = mma::to_tf32(a[0]);
          af[mi][1] = mma::to_tf32(a[8 * kAPitch]);
          af[mi][2] = mma::to_tf32(a[4]);
          af[mi][3] = mma::to_tf32(a[8 * kAPitch + 4]);
        }
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) {
          const int n = wn * (NI * 8) + ni * 8 + g, k = kk + q;
          uint32_t bf[2];
          if constexpr (kBKMajor) {
            bf[0] = mma::to_tf32(bs[n * BP + k]);
            bf[1] = mma::to_tf32(bs[n * BP + k + 4]);
          } else {
            bf[0] = mma::to_tf32(bs[k * BP + n]);
            bf[1] = mma::to_tf32(bs[(k + 4) * BP + n]);
          }
#pragma unroll
          for (int mi = 0; mi < MI; ++mi) mma::mma_1688_tf32(acc[mi][ni], af[mi], bf);
        }
      }
    }
    mma::cp_async_wait<0>();
    __syncthreads();

#pragma unroll
    for (int mi = 0; mi < MI; ++mi)
#pragma unroll
      for (int ni = 0; ni < NI; ++ni)
        store_quad<float>(p, z, m0 + wm * (MI * 16) + mi * 16 + g,
                          n0 + wn * (NI * 8) + ni * 8 + 2 * q, acc[mi][ni]);
  }
}

// ---- sm_90a: warpgroup MMA ----

/// Block (128, 128) of out as two warpgroups of (64, 128), K slabs of 64 through 3 stages of
/// 32 KiB (A then B, each 128 rows of 64 k), two blocks per SM.
constexpr int kWgTile = 128, kWgBK = 64, kWgStages = 3, kWgThreads = 256;
constexpr int kWgHalfBytes = kWgTile * kWgBK * 2;  // A's or B's part of a stage
constexpr int kWgStageBytes = 2 * kWgHalfBytes;
constexpr int kWgSmem = kWgStages * kWgStageBytes + 128;  // + slack to align the base to 128

/// 1 in *out when the kernels were compiled with wgmma for the running GPU (sm_90a code).
__global__ void wgmma_probe_kernel(int* out) {
#if defined(EMBER_HAVE_WGMMA)
  *out = 1;
#else
  *out = 0;
#endif
}

/// out = epilogue(A @ B) for K-contiguous A (M, K) and B (N, K) (gemm_tc's layout rules). Shared
/// memory holds each operand in wgmma's no-swizzle canonical layout: 8-row x 16-byte core
/// matrices of 128 contiguous bytes, the 8 k-chunks of an 8-row block side by side (LBO 128
/// bytes along K, SBO 1024 along M/N). A thread's cp.async chunks are the same row-in-core and
/// k-chunk in every 32-row band, so 8 consecutive threads fill one core matrix (conflict-free).
/// Per slab: wait for its copies, fence to the async proxy, barrier; each warpgroup issues 4
/// wgmma.m64n128k16 and commits; wait until the previous slab's group is done, barrier, and
/// refill that slab's stage with slab kt + 2. So one group of tensor-core work is always queued
/// while the copies are issued.
template <class T>
__global__ void __launch_bounds__(kWgThreads, 2) gemm_wgmma_kernel(const TcParams p) {
#if defined(EMBER_HAVE_WGMMA)
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* const smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(smem_raw) + 127) & ~static_cast<uintptr_t>(127));
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int wg = warp / 4;
  int64_t m_tile, n_tile;
  tile_of(blockIdx.x, (p.M + kWgTile - 1) / kWgTile, (p.N + kWgTile - 1) / kWgTile, m_tile, n_tile);
  const int64_t m0 = m_tile * kWgTile, n0 = n_tile * kWgTile;
  const int64_t KT = (p.K + kWgBK - 1) / kWgBK;
  // Chunk i of this thread (i < 4): row (tid / 64 + 4 i) * 8 + tid % 8, k chunk (tid / 8) % 8.
  const int r8 = tid % 8, kq = (tid / 8) % 8, rb0 = tid / 64;
  const int row0 = rb0 * 8 + r8;
  const int dst0 = (rb0 * 8 + kq) * 128 + r8 * 16;  // bytes into the operand's part of a stage
  constexpr int kRowStep = 32, kDstStep = 4 * 8 * 128;

  for (int64_t z = blockIdx.z; z < p.batches; z += gridDim.z) {
    const T* const A = static_cast<const T*>(p.a) + z * p.a_batch;
    const T* const B = static_cast<const T*>(p.b) + z * p.b_batch;
    const T* const a_base = A + (m0 + row0) * p.lda + kq * 8;
    const T* const b_base = B + (n0 + row0) * p.ldb + kq * 8;
    uint32_t a_ok = 0, b_ok = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if (m0 + row0 + i * kRowStep < p.M) a_ok |= 1u << i;
      if (n0 + row0 + i * kRowStep < p.N) b_ok |= 1u << i;
    }
    auto load = [&](int s, int64_t kt) {
      const int64_t k0 = kt * kWgBK;
      unsigned char* const as = smem + s * kWgStageBytes + dst0;
      unsigned char* const bs = as + kWgHalfBytes;
      const bool k_ok = k0 + kq * 8 < p.K;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const bool oa = k_ok && ((a_ok >> i) & 1u), ob = k_ok && ((b_ok >> i) & 1u);
        mma::cp_async_16(as + i * kDstStep, oa ? a_base + i * kRowStep * p.lda + k0 : A,
                         oa ? 16 : 0);
        mma::cp_async_16(bs + i * kDstStep, ob ? b_base + i * kRowStep * p.ldb + k0 : B,
                         ob ? 16 : 0);
      }
    };

    float d[64];
    mma::wgmma_cp_async_loop<kWgStages>(d, KT, load, [&](int s) {
      const unsigned char* const as =
          smem + s * kWgStageBytes + wg * (8 * 8 * 128);  // rows 64 wg..
      const unsigned char* const bs = smem + s * kWgStageBytes + kWgHalfBytes;
#pragma unroll
      for (int ks = 0; ks < kWgBK / 16; ++ks)
        mma::wgmma_m64n128k16<mma_t<T>>(d, mma::smem_desc(as + ks * 256, 128, 1024),
                                        mma::smem_desc(bs + ks * 256, 128, 1024));
    });

    // Epilogue: warp w of the group holds rows 16 w + g and + 8, columns 8 j + 2 q (+ 1).
    const int g = lane / 4, q = lane % 4, w = warp % 4;
    const int64_t row = m0 + wg * 64 + w * 16 + g;
#pragma unroll
    for (int j = 0; j < 16; ++j) store_quad<T>(p, z, row, n0 + j * 8 + 2 * q, &d[4 * j]);
    __syncthreads();  // the stages are free for the next batch
  }
#else
  (void)p;
#endif
}

// ---- sm_90a: TMA, mbarriers and warp specialisation (configuration 3) ----

/// The TMA kernel's tiles. Cooperative (configurations 3, 4): block (128, 256) of out, K slabs of
/// 64 through 4 stages of 48 KiB (A's 128 rows, then B's 256 rows, 128 bytes each, 128-byte
/// swizzled by TMA); 3 warpgroups: 0 the producer, 1 and 2 the consumers of rows 0-63 and 64-127
/// of every tile (wgmma.m64n256k16, 128 float accumulators per thread). Ping-pong (5): blocks
/// (128, 128), 6 stages of 32 KiB, each consumer warpgroup a whole tile (two wgmma.m64n128k16 per
/// k16 step, the same 128 accumulators) of every other item of the block, so one warpgroup's
/// epilogue runs while the other's products keep the tensor cores busy. kCluster 2
/// (configuration 6, with ping-pong): clusters of two blocks on vertically adjacent tiles, which
/// share B's panel: each block loads half of it and multicasts it into both blocks' stages.
template <bool kPingPong, int kCluster = 1>
struct TmaTile {
  static constexpr int BM = 128, BN = kPingPong ? 128 : 256, BK = 64;
  static constexpr int kStages = kPingPong ? 6 : 4, kThreads = 384;
  static constexpr int kABytes = BM * BK * 2, kBBytes = BN * BK * 2;
  static constexpr int kStageBytes = kABytes + kBBytes;
  static constexpr int kSmem = kStages * kStageBytes + 2 * kStages * 8 + 1024;  // + barriers,
                                                                                // + alignment
  // Arrivals that release a stage: the warps that read it, in every block of the cluster (the
  // stage is refilled by the cluster's multicasts).
  static constexpr int kConsumerWarps = (kPingPong ? 4 : 8) * kCluster;
  static_assert(kCluster == 1 || kCluster == 2, "TmaTile: clusters of 1 or 2 blocks");
};

/// out = epilogue(A @ B), operands read by TMA through tensor maps (gemm_tc's layout rules; out of
/// range rows and k read as zeros): a K-contiguous operand (kAKMajor: A stored (M, K); kBKMajor:
/// B stored (N, K)) as (batch, rows, K) in one box of 64 k x its rows, stored K-major (row r: 128
/// bytes of k); an M- or N-contiguous one (A stored (K, M), e.g. dY^T in a Linear's weight
/// gradient; B stored (K, N), e.g. the weight in its input gradient dY W) as (batch, K, rows) in
/// boxes of 64 rows x 64 k (A 2, B 4), stored M/N-major (row k: 64 elements, 128 bytes; box i at
/// 8192 i bytes), read by wgmma transposed (imm-trans-a/b, smem_desc_sw128_mn, k16 steps 2048
/// bytes apart). Either way consumer c's 64 rows of A start 8192 c bytes into the stage. The
/// producer's one thread walks the slabs: wait until stage s is free (its "empty" barrier),
/// announce the stage's bytes on its "full" barrier, issue the two box copies. Each consumer
/// warpgroup: wait for "full", issue 4 wgmma (k16 steps: descriptors 32 bytes apart in the swizzled
/// rows) and commit; wait until only this slab's group is pending, so the previous slab's products
/// are done, and release the previous stage (one arrival per consumer warp). So up to 4 slabs of
/// copies and 2 of tensor-core work are in flight, and no thread waits at a block barrier after the
/// start. The epilogue stores from the accumulators as configuration 2 (store_quad), after the
/// item's last stage is released; a persistent block (configuration 4) then takes its next item,
/// whose first slabs the producer has been loading meanwhile.
template <class T, bool kAKMajor, bool kBKMajor, bool kPingPong, int kCluster>
__global__ void __launch_bounds__(384, 1)
    gemm_tma_kernel(const TcParams p, const __grid_constant__ CUtensorMap map_a,
                    const __grid_constant__ CUtensorMap map_b) {
#if defined(EMBER_HAVE_WGMMA)
  using Tile = TmaTile<kPingPong, kCluster>;
  constexpr int kTmaBM = Tile::BM, kTmaBN = Tile::BN, kTmaBK = Tile::BK;
  constexpr int kTmaStages = Tile::kStages, kTmaABytes = Tile::kABytes;
  constexpr int kTmaStageBytes = Tile::kStageBytes;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* const smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~static_cast<uintptr_t>(1023));
  uint64_t* const full = reinterpret_cast<uint64_t*>(smem + kTmaStages * kTmaStageBytes);
  uint64_t* const empty = full + kTmaStages;
  const int tid = static_cast<int>(threadIdx.x), wg = tid / 128;
  const int rank = kCluster > 1 ? static_cast<int>(tma::cluster_ctarank()) : 0;
  // A cluster's blocks take units of kCluster vertically adjacent tiles (block `rank` the rank-th).
  const int64_t m_tiles = (p.M + kTmaBM - 1) / kTmaBM, n_tiles = (p.N + kTmaBN - 1) / kTmaBN;
  const int64_t m_units = (m_tiles + kCluster - 1) / kCluster;
  const int64_t units = m_units * n_tiles, items = units * p.batches;
  const int KT = static_cast<int>((p.K + kTmaBK - 1) / kTmaBK);
  // Work item w: unit w % units (tile_of's grouped order) of batch w / units. Configuration 3 has
  // one block per item; configurations 4-6 (persistent) one block (or cluster) per SM (pair of
  // SMs), each walking items `stride` apart. Slab counters run on across a block's items, so the
  // stages' phases do too. A tile of the last unit may lie wholly past M (m_tiles odd): its block
  // still loads and multicasts its part of B, loads no A and stores nothing.
  const int64_t first = blockIdx.x / kCluster, stride = gridDim.x / kCluster;
  const auto item_tile = [&](int64_t w, int& m0, int& n0, int& z) {
    int64_t m_unit, n_tile;
    tile_of(w % units, m_units, n_tiles, m_unit, n_tile);
    m0 = static_cast<int>((m_unit * kCluster + rank) * kTmaBM),
    n0 = static_cast<int>(n_tile * kTmaBN);
    z = static_cast<int>(w / units);
  };
  // Releases stage s: one arrival per consumer warp on its "empty" barrier in every block of the
  // cluster (each block's producer refills it in all of them).
  const auto release = [&](int s) {
    if constexpr (kCluster > 1) {
#pragma unroll
      for (int r = 0; r < kCluster; ++r)
        tma::mbar_arrive_cluster(&empty[s], static_cast<uint32_t>(r));
    } else {
      tma::mbar_arrive(&empty[s]);
    }
  };
  if (tid == 0) {
    for (int s = 0; s < kTmaStages; ++s) {
      tma::mbar_init(&full[s], 1);
      tma::mbar_init(&empty[s], Tile::kConsumerWarps);
    }
    tma::fence_barrier_init();
  }
  if constexpr (kCluster > 1)
    tma::cluster_sync();  // every block's barriers initialised before any remote use
  else
    __syncthreads();

  if (wg == 0) {  // the producer: runs ahead into the next item while the consumers store
    if (tid == 0) {
      uint64_t it = 0;  // slabs issued by this block
      for (int64_t w = first; w < items; w += stride) {
        int m0, n0, z;
        item_tile(w, m0, n0, z);
        const int za = p.a_batch == 0 ? 0 : z, zb = p.b_batch == 0 ? 0 : z;
        // An M- or N-major operand (and with a cluster every B part) comes in 64-row boxes; a box
        // wholly past the edge of the last tile is not loaded (whether TMA would count its bytes
        // is not documented). Its stale stage bytes meet only rows >= M or columns >= N, which
        // the epilogue skips. Every block of a cluster expects all of B's loaded parts.
        auto slab_bytes = static_cast<uint32_t>(kTmaStageBytes);
        if (kAKMajor && m0 >= p.M) slab_bytes -= kTmaABytes;  // one box (only with a cluster)
        for (int i = 0; i < kTmaBM / 64; ++i)
          if (!kAKMajor && m0 + 64 * i >= p.M) slab_bytes -= 8192;
        for (int i = 0; i < kTmaBN / 64; ++i)
          if ((!kBKMajor || kCluster > 1) && n0 + 64 * i >= p.N) slab_bytes -= 8192;
        for (int kt = 0; kt < KT; ++kt, ++it) {
          const int s = static_cast<int>(it % kTmaStages);
          const uint32_t round = static_cast<uint32_t>(it / kTmaStages);
          tma::mbar_wait<(kCluster > 1)>(&empty[s], (round & 1) ^ 1);  // free (first: at once)
          tma::mbar_arrive_expect_tx(&full[s], slab_bytes);
          unsigned char* const stage = smem + s * kTmaStageBytes;
          if constexpr (kAKMajor) {
            if (m0 < p.M) tma::load_3d(stage, &map_a, kt * kTmaBK, m0, za, &full[s]);
          } else {
#pragma unroll
            for (int i = 0; i < kTmaBM / 64; ++i)
              if (m0 + 64 * i < p.M)
                tma::load_3d(stage + i * 8192, &map_a, m0 + 64 * i, kt * kTmaBK, za, &full[s]);
          }
          if constexpr (kCluster > 1) {
#pragma unroll
            for (int i = rank; i < kTmaBN / 64; i += kCluster) {  // B's 64-row parts
              if (n0 + 64 * i >= p.N) continue;
              unsigned char* const part = stage + kTmaABytes + i * 8192;
              constexpr uint16_t kAll = (1u << kCluster) - 1;
              if constexpr (kBKMajor)
                tma::load_3d_multicast(part, &map_b, kt * kTmaBK, n0 + 64 * i, zb, &full[s], kAll);
              else
                tma::load_3d_multicast(part, &map_b, n0 + 64 * i, kt * kTmaBK, zb, &full[s], kAll);
            }
          } else if constexpr (kBKMajor) {
            tma::load_3d(stage + kTmaABytes, &map_b, kt * kTmaBK, n0, zb, &full[s]);
          } else {
#pragma unroll
            for (int i = 0; i < kTmaBN / 64; ++i)
              if (n0 + 64 * i < p.N)
                tma::load_3d(stage + kTmaABytes + i * 8192, &map_b, n0 + 64 * i, kt * kTmaBK, zb,
                             &full[s]);
          }
        }
      }
    }
    if constexpr (kCluster > 1) tma::cluster_sync();  // see the end of the kernel
    return;
  }

  // Cooperative: both consumer warpgroups take every item of the block, c its rows 64 c..; ping-
  // pong: warpgroup c the block's items c, c + 2, ..., whole. The block's j-th item is its slabs
  // j KT.. in the producer's order, which sets each slab's stage and phase.
  const int c = wg - 1, warp = tid / 32, lane = tid % 32;
  constexpr int64_t kStep = kPingPong ? 2 : 1;
  for (int64_t j = kPingPong ? c : 0; first + j * stride < items; j += kStep) {
    int m0, n0, z;
    item_tile(first + j * stride, m0, n0, z);
    uint64_t it = static_cast<uint64_t>(j) * static_cast<uint64_t>(KT);
    float d[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) d[i] = 0.f;
    mma::fence_operands(d);
    for (int kt = 0; kt < KT; ++kt, ++it) {
      const int s = static_cast<int>(it % kTmaStages);
      tma::mbar_wait(&full[s], static_cast<uint32_t>(it / kTmaStages) & 1);
      const unsigned char* const stage = smem + s * kTmaStageBytes;
      const unsigned char* const bs = stage + kTmaABytes;
      mma::wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < kTmaBK / 16; ++ks) {
        const uint64_t db = kBKMajor ? mma::smem_desc_sw128(bs + ks * 32)
                                     : mma::smem_desc_sw128_mn(bs + ks * 2048, 8192);
        // A's rows 64 h.. start 8192 h bytes into the stage in either layout.
        const auto da = [&](int h) {
          const unsigned char* const as = stage + h * 8192;
          return kAKMajor ? mma::smem_desc_sw128(as + ks * 32)
                          : mma::smem_desc_sw128_mn(as + ks * 2048, 8192);
        };
        if constexpr (kPingPong) {
#pragma unroll
          for (int h = 0; h < 2; ++h)
            mma::wgmma_m64n128k16<mma_t<T>, !kAKMajor, !kBKMajor>(
                *reinterpret_cast<float(*)[64]>(&d[64 * h]), da(h), db);
        } else {
          mma::wgmma_m64n256k16<mma_t<T>, !kAKMajor, !kBKMajor>(d, da(c), db);
        }
      }
      mma::wgmma_commit();
      mma::wgmma_wait<1>();  // the previous slab's products are done: its stage is free
      if (kt > 0 && lane == 0) release(static_cast<int>((it - 1) % kTmaStages));
    }
    mma::wgmma_wait<0>();
    mma::fence_operands(d);
    // The item's last stage is free too (the producer may already be filling the others).
    if (KT > 0 && lane == 0) release(static_cast<int>((it - 1) % kTmaStages));

    // Epilogue: warp w of the group holds rows 16 w + g and + 8 of each 64-row half it computed,
    // columns 8 j + 2 q (+ 1).
    const int g = lane / 4, q = lane % 4, wq = warp % 4;
    if constexpr (kPingPong) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = m0 + h * 64 + wq * 16 + g;
#pragma unroll
        for (int jn = 0; jn < 16; ++jn)
          store_quad<T>(p, z, row, n0 + jn * 8 + 2 * q, &d[64 * h + 4 * jn]);
      }
    } else {
      const int64_t row = m0 + c * 64 + wq * 16 + g;
#pragma unroll
      for (int jn = 0; jn < 32; ++jn) store_quad<T>(p, z, row, n0 + jn * 8 + 2 * q, &d[4 * jn]);
    }
  }
  // No block of a cluster exits while another may still multicast into its stages or arrive on
  // its barriers (the producers' last slabs, the consumers' last releases).
  if constexpr (kCluster > 1) tma::cluster_sync();
#else
  (void)p, (void)map_a, (void)map_b;
#endif
}

/// One block per (tile x tile) tile of out in x (tile_of orders them), batches in z (grid-stride
/// past 65535).
dim3 tile_grid(const TcParams& p, int64_t tile) {
  const int64_t tiles = ((p.M + tile - 1) / tile) * ((p.N + tile - 1) / tile);
  return dim3(static_cast<unsigned>(tiles), 1,
              static_cast<unsigned>(p.batches < 65535 ? p.batches : 65535));
}

template <class T>
void launch_wgmma(const TcParams& p, cudaStream_t stream, int device) {
  detail::opt_in_smem<gemm_wgmma_kernel<T>>(kWgSmem, device);
  gemm_wgmma_kernel<T><<<tile_grid(p, kWgTile), kWgThreads, kWgSmem, stream>>>(p);
  EMBER_CUDA_CHECK_LAUNCH();
}

/// Configuration 3 (one block per tile and batch), 4 (`persistent`: one block per SM walking the
/// tiles), 5 (kPingPong, persistent) or 6 (5 in clusters of kCluster = 2 blocks, as many clusters
/// as the GPU runs at once); false (nothing launched) when the tensor maps cannot be made, the
/// sizes exceed TMA's 32-bit coordinates or the grid, or no cluster fits.
template <class T, bool kAKMajor, bool kBKMajor, bool kPingPong, int kCluster = 1>
bool launch_tma(const TcParams& p, bool persistent, cudaStream_t stream, int device) {
  using Tile = TmaTile<kPingPong, kCluster>;
  static_assert(kCluster == 1 || kPingPong, "launch_tma: clusters with the ping-pong form only");
  if (p.M > INT32_MAX - Tile::BM || p.N > INT32_MAX - Tile::BN || p.K > INT32_MAX - Tile::BK)
    return false;
  // An operand of `rows` (M or N) x K: K-major as (batch, rows, K) in boxes of (box_rows, 64 k),
  // M/N-major as (batch, K, rows) in boxes of (64 k, 64 rows).
  const auto operand_map = [&p](CUtensorMap* map, const void* base, int64_t rows, int64_t ld,
                                int64_t batch, bool k_major, uint32_t box_rows) {
    const auto n = [](int64_t v) { return static_cast<uint64_t>(v); };
    constexpr bool bf16 = std::is_same_v<T, BF16Bits>;
    return k_major ? tma::encode_tensor_map(map, bf16, base, n(p.K), n(rows), n(p.batches), n(ld),
                                            n(batch), Tile::BK, box_rows)
                   : tma::encode_tensor_map(map, bf16, base, n(rows), n(p.K), n(p.batches), n(ld),
                                            n(batch), 64, Tile::BK);
  };
  // Work items: units of kCluster vertically adjacent tiles, per batch.
  const int64_t items = ((p.M + Tile::BM * kCluster - 1) / (Tile::BM * kCluster)) *
                        ((p.N + Tile::BN - 1) / Tile::BN) * p.batches;
  if (items > INT32_MAX) return false;
  CUtensorMap map_a, map_b;
  if (!operand_map(&map_a, p.a, p.M, p.lda, p.a_batch, kAKMajor, Tile::BM) ||
      !operand_map(&map_b, p.b, p.N, p.ldb, p.b_batch, kBKMajor, kCluster > 1 ? 64 : Tile::BN))
    return false;
  constexpr auto kernel = gemm_tma_kernel<T, kAKMajor, kBKMajor, kPingPong, kCluster>;
  detail::opt_in_smem<kernel>(Tile::kSmem, device);
  if constexpr (kCluster == 1) {
    const int64_t blocks = persistent ? std::min(items, detail::sm_count(device)) : items;
    kernel<<<static_cast<unsigned>(blocks), Tile::kThreads, Tile::kSmem, stream>>>(p, map_a, map_b);
  } else {
    // Persistent clusters: as many as run at once (the GPU places a cluster's blocks in one GPC,
    // so that can be fewer than SMs / kCluster), each walking the items.
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = kCluster, attr.val.clusterDim.y = 1, attr.val.clusterDim.z = 1;
    cudaLaunchConfig_t config{};
    config.blockDim = dim3(Tile::kThreads, 1, 1);
    config.dynamicSmemBytes = Tile::kSmem;
    config.stream = stream;
    config.attrs = &attr;
    config.numAttrs = 1;
    config.gridDim =
        dim3(static_cast<unsigned>(detail::sm_count(device) / kCluster * kCluster), 1, 1);
    // Asked once per thread and device (the answer depends only on the kernel and the GPU).
    thread_local int fit_device = -1, fit = 0;
    if (fit_device != device) {
      if (cudaOccupancyMaxActiveClusters(&fit, kernel, &config) != cudaSuccess) {
        (void)cudaGetLastError();  // clear it: the caller falls back
        fit = 0;
      }
      fit_device = device;
    }
    if (fit <= 0) return false;
    config.gridDim = dim3(static_cast<unsigned>(kCluster * std::min<int64_t>(items, fit)), 1, 1);
    EMBER_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, p, map_a, map_b));
  }
  EMBER_CUDA_CHECK_LAUNCH();
  return true;
}

/// launch_tma for configuration 3, 4, 5 or 6.
template <class T, bool kAKMajor, bool kBKMajor>
bool launch_tma_config(const TcParams& p, int config, cudaStream_t stream, int device) {
  if (config == 6) return launch_tma<T, kAKMajor, kBKMajor, true, 2>(p, true, stream, device);
  if (config == 5) return launch_tma<T, kAKMajor, kBKMajor, true>(p, true, stream, device);
  return launch_tma<T, kAKMajor, kBKMajor, false>(p, config == 4, stream, device);
}

/// set_gemm_tc_config's choice; EMBER_GEMM_TC_CONFIG at start-up forces one for the whole run
/// (-1 or 0-6; the GPU check times whole training steps under some).
detail::VariantSwitch g_config{"EMBER_GEMM_TC_CONFIG", "set_gemm_tc_config", -1, 6};

template <class T, bool kAKMajor, bool kBKMajor, class C>
void launch(const TcParams& p, cudaStream_t stream, int device) {
  static_assert(C::BM == C::BN, "tile_grid: square block tiles");
  constexpr int bytes = smem_bytes<C, kAKMajor, kBKMajor>();
  detail::opt_in_smem<gemm_tc_kernel<T, kAKMajor, kBKMajor, C>>(bytes, device);
  gemm_tc_kernel<T, kAKMajor, kBKMajor, C><<<tile_grid(p, C::BM), C::kThreads, bytes, stream>>>(p);
  EMBER_CUDA_CHECK_LAUNCH();
}

template <bool kBKMajor>
void launch_tf32(const TcParams& p, cudaStream_t stream, int device) {
  constexpr int bytes = tf32_smem_bytes<kBKMajor>();
  detail::opt_in_smem<gemm_tf32_kernel<kBKMajor>>(bytes, device);
  gemm_tf32_kernel<kBKMajor>
      <<<tile_grid(p, Tf32Config::BM), Tf32Config::kThreads, bytes, stream>>>(p);
  EMBER_CUDA_CHECK_LAUNCH();
}

/// The tile configuration a product runs with: the one set by set_gemm_tc_config /
/// EMBER_GEMM_TC_CONFIG, or (-1) the automatic choice (launch_config falls back from 2-4 to 1
/// where wgmma is unavailable).
int resolved_config(const TcParams& p, int device) {
  const int config = g_config.get();
  if (config >= 0) return config;
  // Measured on an H200 (docs/kernels.md): with fewer tiles than SMs configuration 1's two
  // blocks per SM leave most of the GPU idle and configuration 0 is faster (1024^3: 37 against
  // 20 TFLOP/s); from there on configuration 1 (2048^3: 135 against 122; 8192^3: 242 / 171).
  const int64_t tiles = p.batches * ((p.M + 127) / 128) * ((p.N + 127) / 128);
  return tiles < detail::sm_count(device) ? 0 : 1;
}

/// Launches `config` for the operands' layout, A K- or (a_kmajor false) M-contiguous: 2 (which
/// reads K-contiguous operands only) and 3-6 fall back to 1 when they cannot run. False, nothing
/// launched, for an M-contiguous A beside a K-contiguous B whose K is not whole 16-byte chunks on
/// the mma.sync kernels: B's last chunk would read past K (the TMA kernels zero-fill there).
template <class T, bool kBKMajor>
bool launch_config(const TcParams& p, int config, bool a_kmajor, cudaStream_t stream, int device) {
  const bool tma = config >= 3 && detail::wgmma_available(device);
  if (!a_kmajor) {
    if (tma && launch_tma_config<T, false, kBKMajor>(p, config, stream, device)) return true;
    if (kBKMajor && p.K % 8 != 0) return false;
    if (config == 0)
      launch<T, false, kBKMajor, Config0>(p, stream, device);
    else
      launch<T, false, kBKMajor, Config1>(p, stream, device);
  } else if (config == 0) {
    launch<T, true, kBKMajor, Config0>(p, stream, device);
  } else if (config == 2 && kBKMajor && detail::wgmma_available(device)) {
    launch_wgmma<T>(p, stream, device);
  } else if (!(tma && launch_tma_config<T, true, kBKMajor>(p, config, stream, device))) {
    launch<T, true, kBKMajor, Config1>(p, stream, device);
  }
  return true;
}

}  // namespace

namespace detail {
/// Whether the current GPU runs the wgmma kernels for real (sm_90a code; probed once per device).
bool wgmma_available(int device) {
  static std::atomic<int> state[64];  // 0 unknown, 1 no, 2 yes
  if (device < 0 || device >= 64) return false;
  int v = state[device].load(std::memory_order_relaxed);
  if (v == 0) {
    const Tensor flag = zeros({1}, TensorOptions(kInt32).device(Device(kCUDA, device)));
    wgmma_probe_kernel<<<1, 1, 0, detail::stream_of(flag)>>>(static_cast<int*>(flag.data_ptr()));
    EMBER_CUDA_CHECK_LAUNCH();
    v = flag.cpu().item<int32_t>() == 1 ? 2 : 1;
    state[device].store(v, std::memory_order_relaxed);
  }
  return v == 2;
}
}  // namespace detail

bool gemm_tc(const Tensor& out, const Tensor& a, const Tensor& b, const GemmEpilogue& e) {
  const DType dt = a.dtype();  // the operands'
  const DType od = out.dtype();
  // The output cast: 16-bit operands into a float32 out.
  const bool out_f32 = od == kFloat32 && (dt == kBFloat16 || dt == kFloat16);
  if (od != dt && !out_f32) return false;
  const bool tf32 = dt == kFloat32 && allow_tf32();
  if (dt != kBFloat16 && dt != kFloat16 && !tf32) return false;
  if (b.dtype() != dt) return false;
  const int64_t batches = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  if (((M + 127) / 128) * ((N + 127) / 128) > (int64_t{1} << 31) - 1) return false;  // grid x
  // Whole 16-byte chunks: 8 16-bit elements or 4 floats.
  const int64_t chunk = tf32 ? 4 : 8;
  const auto whole = [chunk](int64_t v) { return v % chunk == 0; };
  // A: unit stride along K, everything else in whole chunks; or unit stride along M (dY^T in a
  // Linear's weight gradient), its other strides in whole chunks, any M (launch_config may still
  // decline it: the mma.sync kernels beside a K-contiguous B need K whole).
  const bool a_kmajor = a.stride(2) == 1 && whole(a.stride(1)) && whole(K);
  const bool a_mmajor = !a_kmajor && !tf32 && a.stride(1) == 1 && whole(a.stride(2));
  if ((!a_kmajor && !a_mmajor) || !whole(a.stride(0)) || !detail::aligned16(a.data_ptr()))
    return false;
  const bool b_kmajor = b.stride(1) == 1;  // (N, K) storage, e.g. a Linear weight
  const int64_t ldb = b_kmajor ? b.stride(2) : b.stride(1);
  if (!b_kmajor && b.stride(2) != 1) return false;
  if (!whole(ldb) || !whole(b.stride(0)) || !detail::aligned16(b.data_ptr())) return false;
  if (!b_kmajor && !whole(N)) return false;
  if (e.bias.defined() && (e.bias.dtype() != od || e.bias.dim() != 1 || e.bias.size(0) != N))
    return false;
  if (e.residual.defined() && (e.residual.dtype() != od || e.residual.sizes() != out.sizes()))
    return false;
  if (e.pre_act.defined() && (e.pre_act.dtype() != od || e.pre_act.sizes() != out.sizes()))
    return false;
  if (batches == 0 || M == 0 || N == 0) return true;

  TcParams p;
  p.a = a.data_ptr(), p.lda = a_kmajor ? a.stride(1) : a.stride(2), p.a_batch = a.stride(0);
  p.b = b.data_ptr(), p.ldb = ldb, p.b_batch = b.stride(0);
  p.out = out.data_ptr(), p.o_r = out.stride(1), p.o_c = out.stride(2), p.o_batch = out.stride(0);
  p.bias = e.bias.defined() ? e.bias.data_ptr() : nullptr;
  p.bias_s = e.bias.defined() ? e.bias.stride(0) : 0;
  p.res = e.residual.defined() ? e.residual.data_ptr() : nullptr;
  if (p.res)
    p.r_r = e.residual.stride(1), p.r_c = e.residual.stride(2), p.r_batch = e.residual.stride(0);
  else
    p.r_r = p.r_c = p.r_batch = 0;
  p.pre = e.pre_act.defined() ? e.pre_act.data_ptr() : nullptr;
  if (p.pre)
    p.p_r = e.pre_act.stride(1), p.p_c = e.pre_act.stride(2), p.p_batch = e.pre_act.stride(0);
  else
    p.p_r = p.p_c = p.p_batch = 0;
  p.M = M, p.N = N, p.K = K, p.batches = batches;
  p.alpha = static_cast<float>(e.alpha), p.beta = static_cast<float>(e.beta);
  p.act = e.act;
  p.out_f32 = out_f32;

  const int device = out.device().index();
  detail::DeviceGuard guard(device);
  const cudaStream_t stream = detail::stream_of(out);
  if (tf32) {  // a_kmajor: tf32 takes no M-contiguous A
    if (b_kmajor)
      launch_tf32<true>(p, stream, device);
    else
      launch_tf32<false>(p, stream, device);
    return true;
  }
  const int config = resolved_config(p, device);
  if (dt == kBFloat16)
    return b_kmajor ? launch_config<BF16Bits, true>(p, config, a_kmajor, stream, device)
                    : launch_config<BF16Bits, false>(p, config, a_kmajor, stream, device);
  return b_kmajor ? launch_config<HalfBits, true>(p, config, a_kmajor, stream, device)
                  : launch_config<HalfBits, false>(p, config, a_kmajor, stream, device);
}

void set_gemm_tc_config(int config) { g_config.set(config); }

}  // namespace ember::cuda
