// CUDA normalization kernels: layer_norm and batch_norm (training statistics), forward and
// first-order backward, float32 and float64 (and float16/bfloat16 x, below), contiguous tensors,
// with the arithmetic of the CPU kernels (src/core/cpu/normalization.cpp): terms formed in T, sums
// accumulated in double, every statistic rounded to T once where the CPU rounds it. Not bitwise the
// CPU's (other summation trees), but deterministic: every sum has a fixed order that depends only
// on the shape, and no floating-point atomics are used.
//
// layer_norm, x (M, N): one block per row (grid-stride over rows), row_threads(N) threads.
//   forward: mean = x0 + sum(x - x0) / N (x0 the row's first element), rounded to T as m;
//   var = sum((x - m)^2) / N; rstd = 1 / sqrt(var + eps); y = (x - m) rstd w + b. Each sum is a
//   strided per-thread double sum, then a fixed warp-shuffle + shared-memory tree (block_sum).
//   The row is read three times; after the first it comes from L1/L2. Rows of up to 2048
//   float32 (1024 float64) values whose size and pointers allow 16-byte chunks take
//   layer_norm_forward_warp_kernel instead: one warp per row (4 rows per block), the row read
//   once into registers, the same two sums as warp-shuffle trees, y written in 16-byte chunks.
//   backward dx: per row sums of g = dy w and g xhat, then dx = rstd (g - mean(g) - xhat
//   mean(g xhat)).
//   backward dw, db: column sums over the rows (column_partials): blocks of 32 columns x 8 row
//   lanes over fixed chunks of rows write one double partial per (chunk, column), the lanes added
//   in lane order; column_finish then adds the partials in chunk order.
// batch_norm, x (N, C, S), statistics per channel over the N*S values in one read of x: the sums
//   of d = x - x0 and d^2 in double (x0 the channel's first value; MomentsTerm), then mean =
//   x0 + E[d], var = E[d^2] - E[d]^2 (two reads, as layer_norm, before 2026-12-07; the CPU keeps
//   them: the statistics agree to rounding, not bitwise), a partial kernel and a finish kernel:
//   S == 1 is the column layout above ((N, C) rows); S > 1 cuts each channel's N*S
//   values into `parts` fixed ranges, one block each (strip_partials; each thread a group of 16
//   bytes' worth of values at a time, read as one 16-byte chunk where S is whole chunks and the
//   pointers aligned), partials (parts, 2, C) added in range order by the same column_finish. The
//   elementwise pass (y, or dx from per-channel coefficients) is channel_map: 16 bytes per thread
//   (channel_chunk_kernel) where x falls into 16-byte chunks of one channels-last row or one NCHW
//   plane and the pointers are aligned, else one value per thread (channel_map_kernel); the channel
//   tracked incrementally either way. Both also take float16/bfloat16 x and dy (the kernels' and
//   functors' Xs): each value widened to float as it is read, the same float arithmetic, y and dx
//   rounded once as they are stored; statistics, weight, bias and their gradients stay float32.
//   Bitwise the float32 kernels on x.to(float32) with y and dx rounded afterwards.
// A channels-last x (N, C, H, W) is the S == 1 case with N H W rows: its memory is (N H W, C).
// Limits: gridDim.y <= 65535 and every other grid capped; all loops grid-stride, int64 indices.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <type_traits>

#include "core/kernels.hpp"
#include "cuda/block_reduce.cuh"
#include "cuda/column_sums.cuh"
#include "cuda/loops.cuh"
#include "cuda/variant.hpp"
#include "ember/ops.hpp"

namespace ember::cuda {
namespace {

using columns::ceil_div;
using columns::Chunks;
using columns::column_chunks;
using columns::column_finish_kernel;
using columns::kTargetBlocks;
using columns::Pair;
using detail::block_sum;
using detail::convert;
using detail::kThreads;
using detail::stream_of;

constexpr int64_t kMinPartElems = 4096;  // values per range of strip_partials, at least
constexpr int64_t kGridCap = int64_t{1} << 20;  // blocks of a grid-stride launch, at most

unsigned grid_for(int64_t blocks, int64_t cap = kGridCap) {
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks < cap ? blocks : cap));
}

/// Threads per row of n elements: a power of two in [32, 512], about 4 elements per thread.
int row_threads(int64_t n) {
  int t = 32;
  while (t < 512 && t * int64_t{4} < n) t *= 2;
  return t;
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}
template <class T>
T* mut_ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

/// A temporary device buffer of n elements of dtype dt on t's device.
Tensor scratch(int64_t n, DType dt, const Tensor& t) {
  return empty({n}, TensorOptions(dt).device(t.device()));
}

template <class T>
__device__ __forceinline__ T rsqrt_eps(T var, double eps) {
  return static_cast<T>(1.0 / ::sqrt(static_cast<double>(var) + eps));
}

// ---- layer_norm rows ----

template <class T, class Xs>
__global__ void layer_norm_forward_kernel(Xs* __restrict__ Y, T* __restrict__ Mean,
                                          T* __restrict__ Rstd, const Xs* __restrict__ X,
                                          const T* __restrict__ W, const T* __restrict__ B,
                                          int64_t M, int64_t N, double eps) {
  __shared__ double shared[33];
  for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
    const Xs* x = X + r * N;  // (N)
    Xs* y = Y + r * N;
    const T k = convert<T>(x[0]);
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x)
      s += static_cast<double>(convert<T>(x[i]) - k);
    s = block_sum(s, shared);
    const T m = static_cast<T>(static_cast<double>(k) + s / static_cast<double>(N));
    double q = 0.0;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
      const T d = convert<T>(x[i]) - m;
      q += static_cast<double>(d * d);
    }
    q = block_sum(q, shared);
    const T rs = rsqrt_eps(static_cast<T>(q / static_cast<double>(N)), eps);
    if (threadIdx.x == 0) {
      Mean[r] = m;
      Rstd[r] = rs;
    }
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
      T v = (convert<T>(x[i]) - m) * rs;
      if (W != nullptr) v = v * W[i];
      if (B != nullptr) v = v + B[i];
      y[i] = convert<Xs>(v);
    }
  }
}

/// As layer_norm_forward_kernel for rows that fit in a warp's registers (N <= 32 V kChunks, N a
/// multiple of V = 16 / sizeof(Xs), every pointer 16-byte aligned): one warp per row, lane l holds
/// the 16-byte chunks l, l + 32, ... of the row, read once; both sums are warp-shuffle trees
/// (no shared memory, no block barrier); y is written in 16-byte chunks. Same formulas.
template <class T, class Xs, int kChunks>
__global__ void layer_norm_forward_warp_kernel(Xs* __restrict__ Y, T* __restrict__ Mean,
                                               T* __restrict__ Rstd, const Xs* __restrict__ X,
                                               const T* __restrict__ W, const T* __restrict__ B,
                                               int64_t M, int64_t N, double eps) {
  constexpr int V = 16 / static_cast<int>(sizeof(Xs));
  using Vec = detail::Chunk<Xs, V>;
  constexpr int WV = 16 / static_cast<int>(sizeof(T));  // weights per 16-byte chunk
  using WVec = detail::Chunk<T, WV>;  // V / WV of them (2 for a 16-bit x) per chunk of x
  const int lane = threadIdx.x % 32;
  const int64_t warps = int64_t{gridDim.x} * (blockDim.x / 32);
  const int64_t nc = N / V;  // chunks per row
  for (int64_t r = blockIdx.x * int64_t{blockDim.x / 32} + threadIdx.x / 32; r < M; r += warps) {
    const Vec* x = reinterpret_cast<const Vec*>(X + r * N);  // (N / V)
    Vec v[kChunks] = {};
#pragma unroll
    for (int c = 0; c < kChunks; ++c)
      if (lane + c * 32 < nc) v[c] = x[lane + c * 32];
    const T k = __shfl_sync(0xffffffffu, convert<T>(v[0].v[0]), 0);  // the row's first element
    double s = 0.0;
#pragma unroll
    for (int c = 0; c < kChunks; ++c)
      if (lane + c * 32 < nc)
#pragma unroll
        for (int j = 0; j < V; ++j) s += static_cast<double>(convert<T>(v[c].v[j]) - k);
    s = __shfl_sync(0xffffffffu, detail::warp_sum(s), 0);
    const T m = static_cast<T>(static_cast<double>(k) + s / static_cast<double>(N));
    double q = 0.0;
#pragma unroll
    for (int c = 0; c < kChunks; ++c)
      if (lane + c * 32 < nc)
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const T d = convert<T>(v[c].v[j]) - m;
          q += static_cast<double>(d * d);
        }
    q = __shfl_sync(0xffffffffu, detail::warp_sum(q), 0);
    const T rs = rsqrt_eps(static_cast<T>(q / static_cast<double>(N)), eps);
    if (lane == 0) {
      Mean[r] = m;
      Rstd[r] = rs;
    }
    Vec* y = reinterpret_cast<Vec*>(Y + r * N);
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int64_t ci = lane + c * 32;
      if (ci >= nc) continue;
      T w[V], b[V];
#pragma unroll
      for (int h = 0; h < V / WV; ++h) {
        WVec wh{}, bh{};
        if (W != nullptr) wh = reinterpret_cast<const WVec*>(W)[ci * (V / WV) + h];
        if (B != nullptr) bh = reinterpret_cast<const WVec*>(B)[ci * (V / WV) + h];
#pragma unroll
        for (int j = 0; j < WV; ++j) {
          w[h * WV + j] = wh.v[j];
          b[h * WV + j] = bh.v[j];
        }
      }
      Vec o;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        T e = (convert<T>(v[c].v[j]) - m) * rs;
        if (W != nullptr) e = e * w[j];
        if (B != nullptr) e = e + b[j];
        o.v[j] = convert<Xs>(e);
      }
      y[ci] = o;
    }
  }
}

/// dx of each row: g = dy w (dy without weight), xhat = (x - m) rstd,
/// dx = rstd ((g - mean(g)) - xhat mean(g xhat)).
template <class T, class Xs>
__global__ void layer_norm_dx_kernel(Xs* __restrict__ DX, const Xs* __restrict__ DY,
                                     const Xs* __restrict__ X, const T* __restrict__ Mean,
                                     const T* __restrict__ Rstd, const T* __restrict__ W, int64_t M,
                                     int64_t N) {
  __shared__ double shared[33];
  for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
    const Xs* dy = DY + r * N;  // (N)
    const Xs* x = X + r * N;
    Xs* dx = DX + r * N;
    const T m = Mean[r], rs = Rstd[r];
    double sg = 0.0, sgx = 0.0;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
      const T g = W != nullptr ? convert<T>(dy[i]) * W[i] : convert<T>(dy[i]);
      sg += static_cast<double>(g);
      sgx += static_cast<double>(g * ((convert<T>(x[i]) - m) * rs));
    }
    sg = block_sum(sg, shared);
    sgx = block_sum(sgx, shared);
    const T a = static_cast<T>(sg / static_cast<double>(N));
    const T c = static_cast<T>(sgx / static_cast<double>(N));
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
      const T g = W != nullptr ? convert<T>(dy[i]) * W[i] : convert<T>(dy[i]);
      dx[i] = convert<Xs>(rs * ((g - a) - (convert<T>(x[i]) - m) * rs * c));
    }
  }
}

// Products and sums rounded apart (no fused multiply-add), as separate elementwise ops
// round; in the sums' terms, so that no product is fused into the add that follows it (the
// one-value and 16-byte-chunk kernels then add the same values).
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }

// ---- per-column (per-channel) sums: partials over fixed chunks, then a fixed-order finish ----

/// set_norm_sums_variant's choice: -1 automatic (16-byte chunks where the layout allows), 0 one
/// value per thread.
detail::VariantSwitch g_sums_variant{"EMBER_NORM_SUMS_VARIANT", "set_norm_sums_variant", -1, 0};

/// columns::column_sums with the chunked kernel where set_norm_sums_variant allows it.
template <class Xs, class Term>
void column_sums(Term term, int64_t R, int64_t K, Chunks chunks,
                 std::initializer_list<const void*> ptrs, double* partial, cudaStream_t stream) {
  columns::column_sums<Xs>(term, R, K, chunks, ptrs, g_sums_variant.get() != 0, partial, stream);
}

/// Values per range of a channel's strips: count / parts rounded up to whole groups of G.
__host__ __device__ __forceinline__ int64_t strip_len(int64_t count, int64_t parts, int G) {
  return ceil_div(ceil_div(count, parts), G) * G;
}

/// partial (parts, 2, C) for x (N, C, S): channel c's N*S values (n, s), in row-major order, cut
/// into `parts` ranges of len values (whole groups of G = 16 / sizeof(Xs) values); one block per
/// (channel, range) sums term(n, c, offset) over its range, thread t taking the groups t, t +
/// blockDim.x, ... and each group's values in order, then block_sum. kChunked reads each group
/// as one 16-byte chunk (term.strip_chunk<G>(c, off, t): the G values of channel c from off),
/// where S is whole chunks and the pointers aligned, so that a group never leaves its plane: 16
/// bytes per thread and group in flight where one value at a time has 2 (bf16). Both forms add
/// the same values in the same order, so they agree bitwise.
template <int G, bool kChunked, class Term>
__global__ void strip_partials_kernel(Term term, int64_t N, int64_t C, int64_t S, int64_t parts,
                                      double* __restrict__ partial) {
  __shared__ double shared[33];
  const int64_t count = N * S;
  const int64_t len = strip_len(count, parts, G);
  for (int64_t item = blockIdx.x; item < C * parts; item += gridDim.x) {
    const int64_t c = item / parts, part = item % parts;
    const int64_t begin = part * len;
    const int64_t end = begin + len < count ? begin + len : count;
    Pair s{0.0, 0.0};
    for (int64_t j = begin + int64_t{threadIdx.x} * G; j < end; j += int64_t{blockDim.x} * G) {
      int64_t n = j / S, sp = j % S;  // then advanced through the group without division
      if constexpr (kChunked) {
        Pair t[G];
        term.template strip_chunk<G>(c, (n * C + c) * S + sp, t);
#pragma unroll
        for (int v = 0; v < G; ++v) {
          s.a += t[v].a;
          s.b += t[v].b;
        }
      } else {
        for (int v = 0; v < G && j + v < end; ++v) {
          const Pair t = term(n, c, (n * C + c) * S + sp);
          s.a += t.a;
          s.b += t.b;
          if (++sp == S) {
            sp = 0;
            ++n;
          }
        }
      }
    }
    s.a = block_sum(s.a, shared);
    s.b = block_sum(s.b, shared);
    if (threadIdx.x == 0) {
      partial[(part * 2) * C + c] = s.a;
      partial[(part * 2 + 1) * C + c] = s.b;
    }
  }
}

/// f(i, c) for every element i of x (N, C, S) (total = N C S), c its channel. Grid-stride; each
/// thread finds its first channel by division, then steps it by the fixed stride's carry.
template <class F>
__global__ void channel_map_kernel(F f, int64_t total, int64_t C, int64_t S) {
  const int64_t step = int64_t{gridDim.x} * blockDim.x;
  int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (i >= total) return;
  int64_t s = i % S, c = (i / S) % C;
  const int64_t ds = step % S, dc = (step / S) % C;
  for (; i < total; i += step) {
    f(i, c);
    s += ds;
    const int64_t carry = s >= S ? 1 : 0;
    s -= carry * S;
    c += dc + carry;  // < 2C
    if (c >= C) c -= C;
  }
}

/// How the values of x (N, C, S) fall into chunks of V consecutive values in memory (16 bytes):
/// for S == 1 (rows of channels, channels-last included) with C % V == 0 a chunk holds channels
/// c .. c + V - 1 of one row; for S % V == 0 it holds V positions of one channel.
struct ChunkGrid {
  int64_t C, S;  // x's (N, C', S') in chunks: channel index c' and position s' per chunk
  int64_t mul;   // value k of chunk (c', s') is channel c' mul + k step
  int64_t step;
};
/// The grid for V, or mul == 0 where x does not fall into chunks.
inline ChunkGrid chunk_grid(int64_t C, int64_t S, int64_t V) {
  if (S == 1 && C % V == 0) return {C / V, 1, V, 1};
  if (S % V == 0) return {C, S / V, 1, 0};
  return {C, S, 0, 0};
}

/// f.chunk(j, c, step, live) for every chunk j of x (N, C, S) on grid g (chunks = N C S / V), c
/// the channel of the chunk's first value, each value k of it channel c + k step (step = g.step).
/// All lanes of a warp run the same iterations, the lanes past the last chunk with live false, so a
/// functor may use warp collectives over the full warp; the lane of chunk j is j % 32 (blocks of
/// whole warps).
template <int V, class F>
__global__ void channel_chunk_kernel(F f, int64_t chunks, ChunkGrid g) {
  const int64_t step = int64_t{gridDim.x} * blockDim.x;
  const int64_t lane = threadIdx.x & 31;
  int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  int64_t s = j % g.S, c = (j / g.S) % g.C;
  const int64_t ds = step % g.S, dc = (step / g.S) % g.C;
  for (; j - lane < chunks; j += step) {
    f.template chunk<V>(j, c * g.mul, g.step, j < chunks);
    s += ds;
    const int64_t carry = s >= g.S ? 1 : 0;
    s -= carry * g.S;
    c += dc + carry;
    if (c >= g.C) c -= g.C;
  }
}

/// Runs functor f over every value of x (N, C, S) (total values): in 16-byte chunks of Xs by
/// channel_chunk_kernel when x falls into them and every pointer in `ptrs` is 16-byte aligned,
/// else one value per thread by channel_map_kernel. f has both operator()(i, c) and chunk<V>.
template <class Xs, class F>
void channel_map(F f, int64_t N, int64_t C, int64_t S, std::initializer_list<const void*> ptrs,
                 cudaStream_t stream) {
  constexpr int64_t V = 16 / static_cast<int64_t>(sizeof(Xs));
  const int64_t total = N * C * S;
  const ChunkGrid g = chunk_grid(C, S, V);
  bool chunked = g.mul != 0;
  for (const void* p : ptrs) chunked = chunked && (p == nullptr || detail::aligned16(p));
  if (chunked) {
    channel_chunk_kernel<V>
        <<<detail::blocks_for(total / V), kThreads, 0, stream>>>(f, total / V, g);
  } else {
    channel_map_kernel<<<detail::blocks_for(total), kThreads, 0, stream>>>(f, total, C, S);
  }
  EMBER_CUDA_CHECK_LAUNCH();
}

/// The per-channel (K = C) sums of term over x (N, C, S) into finish: the column layout for
/// S == 1, strips otherwise. Launches on `stream`; partial is a scratch buffer of the plan's size.
struct ChannelPlan {
  bool columns;   // S == 1
  Chunks chunks;  // columns
  int64_t parts;  // strips
  int64_t partials() const { return columns ? chunks.count : parts; }
};
ChannelPlan channel_plan(int64_t N, int64_t C, int64_t S) {
  ChannelPlan p{S == 1, column_chunks(N, C), 1};
  if (!p.columns) {
    p.parts = kTargetBlocks / C;
    const int64_t by_size = N * S / kMinPartElems;
    if (p.parts > by_size) p.parts = by_size;
    if (p.parts < 1) p.parts = 1;
  }
  return p;
}

/// `ptrs`: the tensors term reads, for column_sums' alignment test.
template <class Xs, class Term, class Finish>
void channel_sums(Term term, Finish finish, const ChannelPlan& plan, int64_t N, int64_t C,
                  int64_t S, std::initializer_list<const void*> ptrs, double* partial,
                  cudaStream_t stream) {
  if (plan.columns) {
    column_sums<Xs>(term, N, C, plan.chunks, ptrs, partial, stream);
  } else {
    constexpr int V = static_cast<int>(16 / sizeof(Xs));
    bool chunked = S % V == 0 && g_sums_variant.get() != 0;
    for (const void* p : ptrs) chunked = chunked && (p == nullptr || detail::aligned16(p));
    const unsigned grid = grid_for(C * plan.parts);
    if (chunked)
      strip_partials_kernel<V, true>
          <<<grid, kThreads, 0, stream>>>(term, N, C, S, plan.parts, partial);
    else
      strip_partials_kernel<V, false>
          <<<grid, kThreads, 0, stream>>>(term, N, C, S, plan.parts, partial);
    EMBER_CUDA_CHECK_LAUNCH();
  }
  column_finish_kernel<Pair><<<grid_for(ceil_div(C, kThreads)), kThreads, 0, stream>>>(
      finish, partial, plan.partials(), C);
  EMBER_CUDA_CHECK_LAUNCH();
}

// ---- layer_norm column sums ----

/// dw, db terms of row r, column k: dy xhat and dy.
template <class T, class Xs>
struct LayerNormParamTerm {
  const Xs* DY;
  const Xs* X;
  const T* Mean;
  const T* Rstd;
  __device__ Pair operator()(int64_t r, int64_t, int64_t off) const {
    const T dy = convert<T>(DY[off]);
    return {static_cast<double>(mul_rn(dy, (convert<T>(X[off]) - Mean[r]) * Rstd[r])),
            static_cast<double>(dy)};
  }
  template <int V>
  __device__ void chunk(int64_t r, int64_t, int64_t off, Pair (&t)[V]) const {
    const detail::Chunk<Xs, V> dy = *reinterpret_cast<const detail::Chunk<Xs, V>*>(DY + off);
    const detail::Chunk<Xs, V> x = *reinterpret_cast<const detail::Chunk<Xs, V>*>(X + off);
    const T m = Mean[r], rs = Rstd[r];
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const T g = convert<T>(dy.v[v]);
      t[v] = {static_cast<double>(mul_rn(g, (convert<T>(x.v[v]) - m) * rs)),
              static_cast<double>(g)};
    }
  }
};

template <class T>
struct LayerNormParamFinish {
  T* DW;
  T* DB;
  __device__ void operator()(int64_t k, Pair s) const {
    if (DW != nullptr) DW[k] = static_cast<T>(s.a);
    if (DB != nullptr) DB[k] = static_cast<T>(s.b);
  }
};

// ---- batch_norm terms and finishes ----

// T is the compute type (float, double), Xs the storage type of x, y, dy and dx (T, or the bits
// of a 16-bit float when T is float).

/// Forward, one pass: d = x - x0 and d^2 in double, x0 the channel's first value. The values of
/// float, float16 and bfloat16 x are exact in double and so is d (and d^2 to double's rounding),
/// so the shifted sums give the variance as E[d^2] - E[d]^2 without the cancellation that the
/// raw sum of squares suffers: its error relative to the variance is about 2^-52 (1 + k^2) for an
/// x0 k standard deviations from the mean. One read of x instead of two (mean, then squares).
template <class T, class Xs>
struct MomentsTerm {
  const Xs* X;
  int64_t S;
  __device__ Pair operator()(int64_t, int64_t c, int64_t off) const {
    const double d =
        static_cast<double>(convert<T>(X[off])) - static_cast<double>(convert<T>(X[c * S]));
    return {d, mul_rn(d, d)};
  }
  /// V values of channel c from off (the strip layout: one plane, whose first value is X[c S]).
  template <int V>
  __device__ void strip_chunk(int64_t c, int64_t off, Pair (&t)[V]) const {
    const detail::Chunk<Xs, V> x = *reinterpret_cast<const detail::Chunk<Xs, V>*>(X + off);
    const double x0 = static_cast<double>(convert<T>(X[c * S]));
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const double d = static_cast<double>(convert<T>(x.v[v])) - x0;
      t[v] = {d, mul_rn(d, d)};
    }
  }
  /// Columns k .. k + V - 1 (the column layout: S == 1, so their first values are X[k ..]).
  template <int V>
  __device__ void chunk(int64_t, int64_t k, int64_t off, Pair (&t)[V]) const {
    const detail::Chunk<Xs, V> x = *reinterpret_cast<const detail::Chunk<Xs, V>*>(X + off);
    const detail::Chunk<Xs, V> x0 = *reinterpret_cast<const detail::Chunk<Xs, V>*>(X + k);
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const double d =
          static_cast<double>(convert<T>(x.v[v])) - static_cast<double>(convert<T>(x0.v[v]));
      t[v] = {d, mul_rn(d, d)};
    }
  }
};

/// A running statistic blended in: r (1 - momentum) + v momentum in double, each product and the
/// sum rounded apart (the composite's float64 ops), rounded once to T.
template <class T>
__device__ __forceinline__ T blend(T r, double v, double momentum) {
  return static_cast<T>(
      __dadd_rn(__dmul_rn(static_cast<double>(r), 1.0 - momentum), __dmul_rn(v, momentum)));
}

/// From MomentsTerm's sums: mean = x0 + E[d] and var = E[d^2] - E[d]^2 (at least 0), each rounded
/// once to T; invstd; the affine coefficients Coef (2, C): scale = invstd w, shift = b; and the
/// running statistics blended in when RunMean is set.
template <class T, class Xs>
struct StatsFinish {
  T* Mean;
  T* Var;
  T* Invstd;
  T* Coef;
  const Xs* X;
  int64_t S;
  const T* W;
  const T* B;
  T* RunMean;
  T* RunVar;
  int64_t C;
  double count;
  double eps;
  double momentum;
  double unbias;
  __device__ void operator()(int64_t c, Pair s) const {
    const double shift = s.a / count;
    const double v = s.b / count - shift * shift;
    const T mean = static_cast<T>(static_cast<double>(convert<T>(X[c * S])) + shift);
    const T var = static_cast<T>(v > 0.0 ? v : 0.0);
    Mean[c] = mean;
    const T is = rsqrt_eps(var, eps);
    Var[c] = var;
    Invstd[c] = is;
    Coef[c] = W != nullptr ? is * W[c] : is;
    Coef[C + c] = B != nullptr ? B[c] : T(0);
    if (RunMean != nullptr) {
      RunMean[c] = blend(RunMean[c], static_cast<double>(mean), momentum);
      RunVar[c] = blend(RunVar[c], __dmul_rn(static_cast<double>(var), unbias), momentum);
    }
  }
};

/// (x - m) scale + shift, rounded to the storage type: batch_norm's y (one expression for both
/// maps below, so both round it alike).
template <class T, class Xs>
__device__ __forceinline__ Xs normalized(Xs x, T m, T scale, T shift) {
  return convert<Xs>((convert<T>(x) - m) * scale + shift);
}

template <class T, int V>
using Chunk = detail::Chunk<T, V>;

/// Y[i] = value(X[i], c) for every value i of channel c, as channel_map runs it: one value per
/// call, or a chunk of V.
template <class Xs, class Value>
struct ValueMap {
  Xs* Y;
  const Xs* X;
  Value value;
  __device__ void operator()(int64_t i, int64_t c) const { Y[i] = value(X[i], c); }
  template <int V>
  __device__ void chunk(int64_t j, int64_t c, int64_t cstep, bool live) const {
    if (!live) return;
    const Chunk<Xs, V> x = reinterpret_cast<const Chunk<Xs, V>*>(X)[j];
    Chunk<Xs, V> y;
#pragma unroll
    for (int k = 0; k < V; ++k) y.v[k] = value(x.v[k], c + k * cstep);
    reinterpret_cast<Chunk<Xs, V>*>(Y)[j] = y;
  }
};

/// y = (x - m) scale + shift.
template <class T, class Xs>
struct NormalizeValue {
  const T* Mean;
  const T* Coef;
  int64_t C;
  __device__ Xs operator()(Xs x, int64_t c) const {
    return normalized(x, Mean[c], Coef[c], Coef[C + c]);
  }
};

/// batch_norm_relu: z = relu(y + r) (r optional), each step rounded to the storage type as the
/// separate add and relu kernels round it, and bit i of Mask set where z is not <= 0 (relu's
/// threshold_backward passes the gradient there: z > 0 or NaN). The bits of 32 consecutive i come
/// from one warp's ballot, so this runs under channel_map_kernel only: blocks of whole warps, a
/// grid stride that is a multiple of 32, lane = i % 32, and the lanes of a warp past `total`
/// (the last word's) gone from the loop together.
template <class T, class Xs>
struct NormalizeReluMap {
  Xs* Z;
  uint32_t* Mask;
  const Xs* X;
  const Xs* R;  // nullptr: no residual
  const T* Mean;
  const T* Coef;
  int64_t C;
  int64_t total;
  /// z for value i of channel c (r its residual), rounded to Xs, and whether its bit is set.
  __device__ __forceinline__ Xs value(Xs x, int64_t c, const Xs* r, bool& pass) const {
    T v = convert<T>(normalized(x, Mean[c], Coef[c], Coef[C + c]));
    if (r != nullptr) v = convert<T>(convert<Xs>(v + convert<T>(*r)));
    if (v < T(0)) v = T(0);  // relu: NaN and -0 pass
    pass = !(v <= T(0));
    return convert<Xs>(v);
  }
  __device__ void operator()(int64_t i, int64_t c) const {
    bool pass;
    Z[i] = value(X[i], c, R != nullptr ? R + i : nullptr, pass);
    const int64_t live = total - (i & ~int64_t{31});  // lanes of this warp still in the loop
    const unsigned lanes = live >= 32 ? 0xffffffffu : (1u << live) - 1u;
    const unsigned bits = __ballot_sync(lanes, pass);
    if ((i & 31) == 0) Mask[i >> 5] = bits;
  }
  /// V values, V bits; the 32 / V lanes whose chunks share a mask word OR their bits together
  /// (every lane of the warp takes part, a lane past the end with none).
  template <int V>
  __device__ void chunk(int64_t j, int64_t c, int64_t cstep, bool live) const {
    unsigned bits = 0;
    if (live) {
      const Chunk<Xs, V> x = reinterpret_cast<const Chunk<Xs, V>*>(X)[j];
      Chunk<Xs, V> r, z;
      if (R != nullptr) r = reinterpret_cast<const Chunk<Xs, V>*>(R)[j];
#pragma unroll
      for (int k = 0; k < V; ++k) {
        bool pass;
        z.v[k] = value(x.v[k], c + k * cstep, R != nullptr ? &r.v[k] : nullptr, pass);
        bits |= (pass ? 1u : 0u) << k;
      }
      reinterpret_cast<Chunk<Xs, V>*>(Z)[j] = z;
    }
    constexpr int kGroup = 32 / V;  // lanes per mask word
    const int lane = static_cast<int>(threadIdx.x & 31);
    unsigned word = bits << ((lane % kGroup) * V);
#pragma unroll
    for (int o = 1; o < kGroup; o *= 2) word |= __shfl_xor_sync(0xffffffffu, word, o);
    if (live && lane % kGroup == 0) Mask[(j * V) >> 5] = word;
  }
};

/// The gradient that reaches batch_norm: dz, or under batch_norm_relu's Mask, dz where the bit of
/// element off is set and 0 elsewhere (relu's threshold_backward on the saved result).
template <class T, class Xs>
__device__ __forceinline__ T masked_grad(const Xs* DZ, const uint32_t* Mask, int64_t off) {
  if (Mask != nullptr && ((Mask[off >> 5] >> (off & 31)) & 1u) == 0u) return T(0);
  return convert<T>(DZ[off]);
}

/// Backward: dy and dy (x - m).
template <class T, class Xs>
struct BackwardTerm {
  const Xs* DY;
  const Xs* X;
  const T* Mean;
  const uint32_t* Mask;  // batch_norm_relu's, or nullptr
  __device__ Pair operator()(int64_t, int64_t c, int64_t off) const {
    const T dy = masked_grad<T>(DY, Mask, off);
    return {static_cast<double>(dy), static_cast<double>(mul_rn(dy, convert<T>(X[off]) - Mean[c]))};
  }
  /// Columns k .. k + V - 1 of one row (the column layout) from off.
  template <int V>
  __device__ void chunk(int64_t, int64_t k, int64_t off, Pair (&t)[V]) const {
    values<V, true>(k, off, t);
  }
  /// V values of channel c from off (the strip layout).
  template <int V>
  __device__ void strip_chunk(int64_t c, int64_t off, Pair (&t)[V]) const {
    values<V, false>(c, off, t);
  }
  /// The V terms from off: their channels c + v (kColumns) or all c.
  template <int V, bool kColumns>
  __device__ void values(int64_t c, int64_t off, Pair (&t)[V]) const {
    const detail::Chunk<Xs, V> g = *reinterpret_cast<const detail::Chunk<Xs, V>*>(DY + off);
    const detail::Chunk<Xs, V> x = *reinterpret_cast<const detail::Chunk<Xs, V>*>(X + off);
    const unsigned bits =
        Mask != nullptr ? Mask[off >> 5] >> (off & 31) : 0xffffffffu;  // V <= 8 bits, one word
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const T dy = (bits >> v) & 1u ? convert<T>(g.v[v]) : T(0);
      t[v] = {static_cast<double>(dy),
              static_cast<double>(mul_rn(dy, convert<T>(x.v[v]) - Mean[kColumns ? c + v : c]))};
    }
  }
};

/// dw = sum(dy xhat), db = sum(dy), and the dx coefficients Coef (3, C): k1 = w invstd,
/// a = mean(dy), k2 = mean(dy xhat) invstd.
template <class T>
struct BackwardFinish {
  T* DW;
  T* DB;
  T* Coef;  // nullptr: no dx
  const T* Invstd;
  const T* W;
  int64_t C;
  double count;
  __device__ void operator()(int64_t c, Pair s) const {
    const T is = Invstd[c];
    const double sum_dy = s.a;
    const double sum_dyx = s.b * static_cast<double>(is);  // sum(dy xhat)
    if (DW != nullptr) DW[c] = static_cast<T>(sum_dyx);
    if (DB != nullptr) DB[c] = static_cast<T>(sum_dy);
    if (Coef == nullptr) return;
    Coef[c] = W != nullptr ? W[c] * is : is;
    Coef[C + c] = static_cast<T>(sum_dy / count);
    Coef[2 * C + c] = static_cast<T>(sum_dyx / count) * is;
  }
};

/// dx = k1 ((dy - a) - (x - m) k2) where DX is set; under batch_norm_relu's Mask dy is the masked
/// gradient, which DR (the residual's gradient) receives where set.
template <class T, class Xs>
struct InputGradMap {
  Xs* DX;
  Xs* DR;
  const Xs* DY;
  const Xs* X;
  const T* Mean;
  const T* Coef;
  const uint32_t* Mask;
  int64_t C;
  __device__ __forceinline__ Xs dx(T dy, Xs x, int64_t c) const {
    return convert<Xs>(Coef[c] *
                       ((dy - Coef[C + c]) - (convert<T>(x) - Mean[c]) * Coef[2 * C + c]));
  }
  __device__ void operator()(int64_t i, int64_t c) const {
    const T dy = masked_grad<T>(DY, Mask, i);
    if (DR != nullptr) DR[i] = convert<Xs>(dy);
    if (DX != nullptr) DX[i] = dx(dy, X[i], c);
  }
  template <int V>
  __device__ void chunk(int64_t j, int64_t c, int64_t cstep, bool live) const {
    if (!live) return;
    const Chunk<Xs, V> g = reinterpret_cast<const Chunk<Xs, V>*>(DY)[j];
    const unsigned bits =
        Mask != nullptr ? Mask[(j * V) >> 5] >> ((j * V) & 31) : 0xffffffffu;  // V <= 8 bits
    Chunk<Xs, V> masked;
#pragma unroll
    for (int k = 0; k < V; ++k)  // through T as the scalar path (a NaN's payload included)
      masked.v[k] = convert<Xs>((bits >> k) & 1u ? convert<T>(g.v[k]) : T(0));
    if (DR != nullptr) reinterpret_cast<Chunk<Xs, V>*>(DR)[j] = masked;
    if (DX == nullptr) return;
    const Chunk<Xs, V> x = reinterpret_cast<const Chunk<Xs, V>*>(X)[j];
    Chunk<Xs, V> out;
#pragma unroll
    for (int k = 0; k < V; ++k) out.v[k] = dx(convert<T>(masked.v[k]), x.v[k], c + k * cstep);
    reinterpret_cast<Chunk<Xs, V>*>(DX)[j] = out;
  }
};

/// Eval mode: y = ((x - m) r) w + b, each op rounded apart (the composite's ops).
template <class T, class Xs>
struct EvalValue {
  const T* Mean;
  const T* R;
  const T* W;
  const T* B;
  __device__ Xs operator()(Xs x, int64_t c) const {
    T v = convert<T>(x) - Mean[c];
    v = mul_rn(v, R[c]);
    if (W != nullptr) v = mul_rn(v, W[c]);
    if (B != nullptr) v = add_rn(v, B[c]);
    return convert<Xs>(v);
  }
};

/// Eval-mode batch_norm_relu: z = relu(y + r) with y EvalValue's (r optional), y and the sum each
/// rounded to the storage type as the separate add and relu kernels round them.
template <class T, class Xs>
struct EvalReluMap {
  Xs* Z;
  const Xs* X;
  const Xs* R;  // nullptr: no residual
  EvalValue<T, Xs> value;
  __device__ __forceinline__ Xs z(Xs x, int64_t c, const Xs* r) const {
    T v = convert<T>(value(x, c));
    if (r != nullptr) v = convert<T>(convert<Xs>(v + convert<T>(*r)));
    if (v < T(0)) v = T(0);  // relu: NaN and -0 pass
    return convert<Xs>(v);
  }
  __device__ void operator()(int64_t i, int64_t c) const {
    Z[i] = z(X[i], c, R != nullptr ? R + i : nullptr);
  }
  template <int V>
  __device__ void chunk(int64_t j, int64_t c, int64_t cstep, bool live) const {
    if (!live) return;
    const Chunk<Xs, V> x = reinterpret_cast<const Chunk<Xs, V>*>(X)[j];
    Chunk<Xs, V> r, out;
    if (R != nullptr) r = reinterpret_cast<const Chunk<Xs, V>*>(R)[j];
#pragma unroll
    for (int k = 0; k < V; ++k)
      out.v[k] = z(x.v[k], c + k * cstep, R != nullptr ? &r.v[k] : nullptr);
    reinterpret_cast<Chunk<Xs, V>*>(Z)[j] = out;
  }
};

// ---- typed launchers ----

/// Chunks of 16 bytes per lane of layer_norm_forward_warp_kernel for rows of N: 1, 2, 4, 8 or
/// 16, or 0 where the row does not fit (or N, a pointer, is not 16-byte friendly).
template <class T>
int warp_row_chunks(int64_t N, std::initializer_list<const Tensor*> ts) {
  constexpr int64_t V = 16 / static_cast<int64_t>(sizeof(T));
  if (N == 0 || N % V != 0) return 0;
  for (const Tensor* t : ts)
    if (t->defined() && !detail::aligned16(t->data_ptr())) return 0;
  const int64_t need = (N / V + 31) / 32;
  for (int c = 1; c <= 16; c *= 2)
    if (need <= c) return c;
  return 0;
}

template <class T, class Xs>
void layer_norm_forward_typed(const Tensor& y, const Tensor& mean, const Tensor& rstd,
                              const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t M,
                              int64_t N, double eps) {
  constexpr int kRowsPerBlock = 4;  // warps per block
  const int chunks = warp_row_chunks<Xs>(N, {&y, &x, &weight, &bias});
  if (chunks > 0) {
    Xs* Y = static_cast<Xs*>(y.data_ptr());
    T* Mn = static_cast<T*>(mean.data_ptr());
    T* Rs = static_cast<T*>(rstd.data_ptr());
    const Xs* X = static_cast<const Xs*>(x.data_ptr());
    const T* W = ptr_or_null<T>(weight);
    const T* B = ptr_or_null<T>(bias);
    const unsigned grid = grid_for(ceil_div(M, kRowsPerBlock));
    const unsigned threads = 32 * kRowsPerBlock;
    const cudaStream_t stream = stream_of(y);
    const auto launch = [&](auto c) {  // c: the chunk count, a compile-time constant
      layer_norm_forward_warp_kernel<T, Xs, decltype(c)::value>
          <<<grid, threads, 0, stream>>>(Y, Mn, Rs, X, W, B, M, N, eps);
    };
    if (chunks == 1)
      launch(std::integral_constant<int, 1>{});
    else if (chunks == 2)
      launch(std::integral_constant<int, 2>{});
    else if (chunks == 4)
      launch(std::integral_constant<int, 4>{});
    else if (chunks == 8)
      launch(std::integral_constant<int, 8>{});
    else
      launch(std::integral_constant<int, 16>{});
    EMBER_CUDA_CHECK_LAUNCH();
    return;
  }
  layer_norm_forward_kernel<T, Xs><<<grid_for(M), row_threads(N), 0, stream_of(y)>>>(
      static_cast<Xs*>(y.data_ptr()), static_cast<T*>(mean.data_ptr()),
      static_cast<T*>(rstd.data_ptr()), static_cast<const Xs*>(x.data_ptr()),
      ptr_or_null<T>(weight), ptr_or_null<T>(bias), M, N, eps);
  EMBER_CUDA_CHECK_LAUNCH();
}

template <class T, class Xs>
void layer_norm_backward_typed(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                               const Tensor& dy, const Tensor& x, const Tensor& mean,
                               const Tensor& rstd, const Tensor& weight, int64_t M, int64_t N) {
  const cudaStream_t stream = stream_of(dy);
  const Xs* DY = static_cast<const Xs*>(dy.data_ptr());
  const Xs* X = static_cast<const Xs*>(x.data_ptr());
  const T* Mean = static_cast<const T*>(mean.data_ptr());
  const T* Rstd = static_cast<const T*>(rstd.data_ptr());
  if (dx.defined()) {
    layer_norm_dx_kernel<T, Xs><<<grid_for(M), row_threads(N), 0, stream>>>(
        static_cast<Xs*>(dx.data_ptr()), DY, X, Mean, Rstd, ptr_or_null<T>(weight), M, N);
    EMBER_CUDA_CHECK_LAUNCH();
  }
  if (!dweight.defined() && !dbias.defined()) return;
  const Chunks chunks = column_chunks(M, N);
  Tensor partial = scratch(chunks.count * 2 * N, kFloat64, dy);  // (chunks, 2, N)
  double* P = static_cast<double*>(partial.data_ptr());
  column_sums<Xs>(LayerNormParamTerm<T, Xs>{DY, X, Mean, Rstd}, M, N, chunks, {DY, X}, P, stream);
  column_finish_kernel<Pair><<<grid_for(ceil_div(N, kThreads)), kThreads, 0, stream>>>(
      LayerNormParamFinish<T>{mut_ptr_or_null<T>(dweight), mut_ptr_or_null<T>(dbias)}, P,
      chunks.count, N);
  EMBER_CUDA_CHECK_LAUNCH();
}

template <class T, class Xs>
void batch_norm_forward_typed(const Tensor& y, const Tensor& mean, const Tensor& invstd,
                              const Tensor& var, const Tensor& x, const Tensor& weight,
                              const Tensor& bias, double eps, const RunningStats& running,
                              const Tensor& residual, const Tensor& mask, int64_t N, int64_t C,
                              int64_t S) {
  const cudaStream_t stream = stream_of(y);
  const ChannelPlan plan = channel_plan(N, C, S);
  Tensor partial = scratch(plan.partials() * 2 * C, kFloat64, y);  // (partials, 2, C)
  Tensor coef = scratch(2 * C, mean.dtype(), y);                   // scale, shift (2, C)
  double* P = static_cast<double*>(partial.data_ptr());
  T* Coef = static_cast<T*>(coef.data_ptr());
  const Xs* X = static_cast<const Xs*>(x.data_ptr());
  T* Mean = static_cast<T*>(mean.data_ptr());
  const double count = static_cast<double>(N * S);
  channel_sums<Xs>(
      MomentsTerm<T, Xs>{X, S},
      StatsFinish<T, Xs>{Mean, static_cast<T*>(var.data_ptr()), static_cast<T*>(invstd.data_ptr()),
                         Coef, X, S, ptr_or_null<T>(weight), ptr_or_null<T>(bias),
                         mut_ptr_or_null<T>(running.mean), mut_ptr_or_null<T>(running.var), C,
                         count, eps, running.momentum, running.unbias},
      plan, N, C, S, {X}, P, stream);
  const int64_t total = N * C * S;
  Xs* Y = static_cast<Xs*>(y.data_ptr());
  if (mask.defined()) {
    const Xs* R = ptr_or_null<Xs>(residual);
    channel_map<Xs>(NormalizeReluMap<T, Xs>{Y, static_cast<uint32_t*>(mask.data_ptr()), X, R, Mean,
                                            Coef, C, total},
                    N, C, S, {Y, X, R}, stream);
  } else {
    using Map = ValueMap<Xs, NormalizeValue<T, Xs>>;
    channel_map<Xs>(Map{Y, X, {Mean, Coef, C}}, N, C, S, {Y, X}, stream);
  }
}

template <class T, class Xs>
void batch_norm_backward_typed(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                               const Tensor& dy, const Tensor& x, const Tensor& mean,
                               const Tensor& invstd, const Tensor& weight, const Tensor& dresidual,
                               const Tensor& mask, int64_t N, int64_t C, int64_t S) {
  const bool sums = dx.defined() || dweight.defined() || dbias.defined();
  if (!sums && !dresidual.defined()) return;
  const cudaStream_t stream = stream_of(dy);
  const ChannelPlan plan = channel_plan(N, C, S);
  Tensor partial = scratch(plan.partials() * 2 * C, kFloat64, dy);        // (partials, 2, C)
  Tensor coef = dx.defined() ? scratch(3 * C, mean.dtype(), dy) : Tensor();  // k1, a, k2 (3, C)
  double* P = static_cast<double*>(partial.data_ptr());
  T* Coef = mut_ptr_or_null<T>(coef);
  const Xs* DY = static_cast<const Xs*>(dy.data_ptr());
  const Xs* X = static_cast<const Xs*>(x.data_ptr());
  const T* Mean = static_cast<const T*>(mean.data_ptr());
  const uint32_t* Mask = ptr_or_null<uint32_t>(mask);
  const double count = static_cast<double>(N * S);
  if (sums)
    channel_sums<Xs>(BackwardTerm<T, Xs>{DY, X, Mean, Mask},
                     BackwardFinish<T>{mut_ptr_or_null<T>(dweight), mut_ptr_or_null<T>(dbias), Coef,
                                       static_cast<const T*>(invstd.data_ptr()),
                                       ptr_or_null<T>(weight), C, count},
                     plan, N, C, S, {DY, X}, P, stream);
  if (!dx.defined() && !dresidual.defined()) return;
  Xs* DX = mut_ptr_or_null<Xs>(dx);
  Xs* DR = mut_ptr_or_null<Xs>(dresidual);
  channel_map<Xs>(InputGradMap<T, Xs>{DX, DR, DY, X, Mean, Coef, Mask, C}, N, C, S, {DX, DR, DY, X},
                  stream);
}

/// x (N, C, *) as N, C and S (the product of the rest); false when it holds no value. A
/// channels-last x (with y, dy and dx laid out as it) is (N H W, C) rows of channels: N = N H W,
/// S = 1, which the kernels take as they take an (N, C) input.
inline bool channel_dims(const Tensor& x, int64_t& N, int64_t& C, int64_t& S) {
  N = x.size(0);
  C = x.size(1);
  S = N * C == 0 ? 0 : x.numel() / (N * C);
  if (N * C * S != 0 && !x.is_contiguous() && x.is_contiguous(MemoryFormat::ChannelsLast)) {
    N *= S;
    S = 1;
  }
  return N * C * S != 0;
}

}  // namespace

void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps) {
  const int64_t M = mean.numel();
  if (M == 0 || x.numel() == 0) return;
  const int64_t N = x.numel() / M;
  detail::DeviceGuard guard(y.device().index());
  detail::visit_device_widened(x.dtype(), "layer_norm", [&](auto tag) {
    using Xs = typename decltype(tag)::type;
    layer_norm_forward_typed<detail::compute_t<Xs>, Xs>(y, mean, rstd, x, weight, bias, M, N, eps);
  });
}

void layer_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                         const Tensor& weight) {
  const int64_t M = mean.numel();
  const int64_t N = M == 0 ? 0 : x.numel() / M;
  detail::DeviceGuard guard(x.device().index());
  if (M == 0 || N == 0) {  // no rows: the parameter gradients are sums over nothing
    for (const Tensor* g : {&dweight, &dbias})
      if (g->defined() && g->numel() > 0)
        EMBER_CUDA_CHECK(cudaMemsetAsync(g->data_ptr(), 0, g->nbytes(), stream_of(*g)));
    return;
  }
  detail::visit_device_widened(x.dtype(), "layer_norm_backward", [&](auto tag) {
    using Xs = typename decltype(tag)::type;
    layer_norm_backward_typed<detail::compute_t<Xs>, Xs>(dx, dweight, dbias, dy, x, mean, rstd,
                                                         weight, M, N);
  });
}

namespace {

/// batch_norm_forward (mask and residual undefined) or batch_norm_relu_forward.
void forward_entry(const char* op, const Tensor& y, const Tensor& mask, const Tensor& mean,
                   const Tensor& invstd, const Tensor& var, const Tensor& x, const Tensor& weight,
                   const Tensor& bias, const Tensor& residual, double eps,
                   const RunningStats& running) {
  int64_t N, C, S;
  if (!channel_dims(x, N, C, S)) return;
  detail::DeviceGuard guard(y.device().index());
  detail::visit_device_widened(x.dtype(), op, [&](auto tag) {
    using Xs = typename decltype(tag)::type;
    batch_norm_forward_typed<detail::compute_t<Xs>, Xs>(y, mean, invstd, var, x, weight, bias, eps,
                                                        running, residual, mask, N, C, S);
  });
}

/// batch_norm_backward (mask and dresidual undefined) or batch_norm_relu_backward.
void backward_entry(const char* op, const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                    const Tensor& dresidual, const Tensor& dy, const Tensor& x, const Tensor& mask,
                    const Tensor& mean, const Tensor& invstd, const Tensor& weight) {
  int64_t N, C, S;
  if (!channel_dims(x, N, C, S)) return;
  detail::DeviceGuard guard(x.device().index());
  detail::visit_device_widened(x.dtype(), op, [&](auto tag) {
    using Xs = typename decltype(tag)::type;
    batch_norm_backward_typed<detail::compute_t<Xs>, Xs>(dx, dweight, dbias, dy, x, mean, invstd,
                                                         weight, dresidual, mask, N, C, S);
  });
}

}  // namespace

void batch_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& invstd,
                        const Tensor& var, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, double eps, const RunningStats& running) {
  forward_entry("batch_norm", y, Tensor(), mean, invstd, var, x, weight, bias, Tensor(), eps,
                running);
}

void batch_norm_relu_forward(const Tensor& z, const Tensor& mask, const Tensor& mean,
                             const Tensor& invstd, const Tensor& var, const Tensor& x,
                             const Tensor& weight, const Tensor& bias, const Tensor& residual,
                             double eps, const RunningStats& running) {
  forward_entry("batch_norm_relu", z, mask, mean, invstd, var, x, weight, bias, residual, eps,
                running);
}

namespace {

/// batch_norm_eval, and with relu batch_norm_eval_relu (residual optional).
void eval_entry(const Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& r,
                const Tensor& weight, const Tensor& bias, const Tensor& residual, bool relu) {
  int64_t N, C, S;
  if (!channel_dims(x, N, C, S)) return;
  detail::DeviceGuard guard(y.device().index());
  detail::visit_device_widened(x.dtype(), relu ? "batch_norm_relu" : "batch_norm", [&](auto tag) {
    using Xs = typename decltype(tag)::type;
    using T = detail::compute_t<Xs>;
    Xs* Y = static_cast<Xs*>(y.data_ptr());
    const Xs* X = static_cast<const Xs*>(x.data_ptr());
    const EvalValue<T, Xs> value{static_cast<const T*>(mean.data_ptr()),
                                 static_cast<const T*>(r.data_ptr()), ptr_or_null<T>(weight),
                                 ptr_or_null<T>(bias)};
    if (relu) {
      const Xs* R = ptr_or_null<Xs>(residual);
      channel_map<Xs>(EvalReluMap<T, Xs>{Y, X, R, value}, N, C, S, {Y, X, R}, stream_of(y));
    } else {
      channel_map<Xs>(ValueMap<Xs, EvalValue<T, Xs>>{Y, X, value}, N, C, S, {Y, X}, stream_of(y));
    }
  });
}

}  // namespace

void batch_norm_eval(const Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& r,
                     const Tensor& weight, const Tensor& bias) {
  eval_entry(y, x, mean, r, weight, bias, Tensor(), false);
}

void batch_norm_eval_relu(const Tensor& z, const Tensor& x, const Tensor& mean, const Tensor& r,
                          const Tensor& weight, const Tensor& bias, const Tensor& residual) {
  eval_entry(z, x, mean, r, weight, bias, residual, true);
}

void batch_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         const Tensor& dy, const Tensor& x, const Tensor& mean,
                         const Tensor& invstd, const Tensor& weight) {
  backward_entry("batch_norm_backward", dx, dweight, dbias, Tensor(), dy, x, Tensor(), mean, invstd,
                 weight);
}

void batch_norm_relu_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                              const Tensor& dresidual, const Tensor& dz, const Tensor& x,
                              const Tensor& mask, const Tensor& mean, const Tensor& invstd,
                              const Tensor& weight) {
  backward_entry("batch_norm_relu_backward", dx, dweight, dbias, dresidual, dz, x, mask, mean,
                 invstd, weight);
}

void set_norm_sums_variant(int variant) { g_sums_variant.set(variant); }

}  // namespace ember::cuda
