// Per-column sums over the rows of an (R, K) layout, K columns side by side in memory: coalesced
// and deterministic. Served to normalization.cu (batch_norm's statistics and backward sums on
// channels-last and (N, C) input, layer_norm's dweight and dbias) and reduce.cu (a sum over the
// leading dims of a tensor whose kept dim is contiguous: a Linear's bias gradient, sum(x, 0)).
//
// A term gives, for row r and column k, the value(s) to add: One (a plain sum) or Pair (two
// sums carried together, as the normalizations' moments). Blocks of kTileCols columns x
// kRowLanes row lanes cover fixed chunks of rows (Chunks, from R and K alone) and write one
// double partial per (chunk, part, column); column_finish_kernel then adds each column's partials
// in chunk order and hands the sums to a finish functor. Thread (x, y) of a block takes its
// column(s) and the chunk's rows y, y + kRowLanes, ... in order, and the lanes are added in lane
// order, so a result depends only on R, K and the values. Where the rows fall into 16-byte
// chunks each thread reads one chunk (V adjacent columns) per row, otherwise one value; the two
// kernels add the same values in the same order, so they agree bitwise.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>

#include "cuda/common.cuh"
#include "cuda/loops.cuh"

namespace ember::cuda::columns {

constexpr int kTileCols = 32;            // columns per block
constexpr int kRowLanes = 8;             // row lanes per block
constexpr int64_t kTargetBlocks = 2048;  // blocks the partial kernels aim for (~16 per H200 SM)
constexpr int64_t kMinChunkRows = 32;    // rows per chunk, at least

__host__ __device__ __forceinline__ int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

/// One sum; two sums carried together. part(s, i) is the i-th of kParts<Acc>.
struct One {
  double a;
};
struct Pair {
  double a, b;
};
template <class Acc>
constexpr int kParts = 1;
template <>
constexpr int kParts<Pair> = 2;
__host__ __device__ __forceinline__ double& part(One& s, int) { return s.a; }
__host__ __device__ __forceinline__ double& part(Pair& s, int i) { return i == 0 ? s.a : s.b; }

/// Fixed chunks of rows: enough (chunk, column tile) blocks to fill the GPU, at least
/// kMinChunkRows rows each. Depends on R and K only. The tiles counted are those of the 16-byte
/// chunk kernel at its widest (8 columns per thread, 256 per tile), so that it too gets about
/// kTargetBlocks blocks (a bias gradient's (8192, 768): 256 chunks of 32 rows, 768 blocks; planned
/// by 32-column tiles it had been 85 chunks and 255 blocks); the one-value kernel then runs up to
/// 8 times as many.
struct Chunks {
  int64_t rows;   // rows per chunk
  int64_t count;  // chunks
};
inline Chunks column_chunks(int64_t R, int64_t K) {
  const int64_t tiles = ceil_div(K, kTileCols * 8);
  int64_t want = kTargetBlocks / tiles;
  if (want > ceil_div(R, kMinChunkRows)) want = ceil_div(R, kMinChunkRows);
  if (want < 1) want = 1;
  const int64_t rows = ceil_div(R, want);
  return {rows, ceil_div(R, rows)};
}

/// partial (chunks.count, kParts, K): for every chunk of rows and column k, the sums of
/// term(row, k, row * K + k) over the chunk's rows.
template <class Term>
__global__ void column_partials_kernel(Term term, int64_t R, int64_t K, Chunks chunks,
                                       double* __restrict__ partial) {
  using Acc = decltype(term(int64_t{0}, int64_t{0}, int64_t{0}));
  constexpr int P = kParts<Acc>;
  __shared__ double sh[P][kRowLanes][kTileCols];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t tiles = ceil_div(K, kTileCols);
  for (int64_t chunk = blockIdx.y; chunk < chunks.count; chunk += gridDim.y) {
    const int64_t r0 = chunk * chunks.rows;
    const int64_t r1 = r0 + chunks.rows < R ? r0 + chunks.rows : R;
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const int64_t k = tile * kTileCols + tx;
      Acc s{};
      if (k < K) {
        for (int64_t r = r0 + ty; r < r1; r += kRowLanes) {
          Acc t = term(r, k, r * K + k);
#pragma unroll
          for (int i = 0; i < P; ++i) part(s, i) += part(t, i);
        }
      }
#pragma unroll
      for (int i = 0; i < P; ++i) sh[i][ty][tx] = part(s, i);
      __syncthreads();
      if (ty == 0 && k < K) {
#pragma unroll
        for (int i = 0; i < P; ++i) {
          for (int l = 1; l < kRowLanes; ++l) part(s, i) += sh[i][l][tx];
          partial[(chunk * P + i) * K + k] = part(s, i);
        }
      }
      __syncthreads();  // sh is reused by the next tile
    }
  }
}

/// column_partials_kernel with each thread on V adjacent columns, one 16-byte chunk of each row:
/// term.chunk<V>(r, k, off, t) gives the sums of columns k .. k + V - 1 of row r (off = r K + k,
/// aligned to the chunk). Thread (x, y) of a tile takes column chunk tile * kTileCols + x (K / V
/// per row) and the chunk's rows y, y + kRowLanes, ..., as the scalar kernel takes each column,
/// and the lanes are added in lane order: with the same Chunks, every partial is bitwise the
/// scalar kernel's. Each thread keeps 16 bytes per row in flight where the scalar one kept 2
/// (bf16).
template <int V, class Term>
__global__ void column_chunk_partials_kernel(Term term, int64_t R, int64_t K, Chunks chunks,
                                             double* __restrict__ partial) {
  using Acc = decltype(term(int64_t{0}, int64_t{0}, int64_t{0}));
  constexpr int P = kParts<Acc>;
  __shared__ double sh[P][kRowLanes][kTileCols * V];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t KC = K / V;
  const int64_t tiles = ceil_div(KC, kTileCols);
  for (int64_t chunk = blockIdx.y; chunk < chunks.count; chunk += gridDim.y) {
    const int64_t r0 = chunk * chunks.rows;
    const int64_t r1 = r0 + chunks.rows < R ? r0 + chunks.rows : R;
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const int64_t kc = tile * kTileCols + tx, k = kc * V;
      Acc s[V];
#pragma unroll
      for (int v = 0; v < V; ++v) s[v] = Acc{};
      if (kc < KC) {
        for (int64_t r = r0 + ty; r < r1; r += kRowLanes) {
          Acc t[V];
          term.template chunk<V>(r, k, r * K + k, t);
#pragma unroll
          for (int v = 0; v < V; ++v)
#pragma unroll
            for (int i = 0; i < P; ++i) part(s[v], i) += part(t[v], i);
        }
      }
#pragma unroll
      for (int v = 0; v < V; ++v)
#pragma unroll
        for (int i = 0; i < P; ++i) sh[i][ty][tx * V + v] = part(s[v], i);
      __syncthreads();
      if (ty == 0 && kc < KC) {
#pragma unroll
        for (int v = 0; v < V; ++v) {
#pragma unroll
          for (int i = 0; i < P; ++i) {
            for (int l = 1; l < kRowLanes; ++l) part(s[v], i) += sh[i][l][tx * V + v];
            partial[(chunk * P + i) * K + k + v] = part(s[v], i);
          }
        }
      }
      __syncthreads();  // sh is reused by the next tile
    }
  }
}

/// The column sums of term over R rows of K into partial (chunks.count, kParts, K): by
/// column_chunk_partials_kernel when `allow_chunks` and the rows fall into 16-byte chunks of Xs
/// (K whole chunks, every pointer in `ptrs` aligned; each row r starting at r K from them), else
/// by column_partials_kernel; bitwise the same either way.
template <class Xs, class Term>
void column_sums(Term term, int64_t R, int64_t K, Chunks chunks,
                 std::initializer_list<const void*> ptrs, bool allow_chunks, double* partial,
                 cudaStream_t stream) {
  constexpr int V = static_cast<int>(16 / sizeof(Xs));
  bool chunked = allow_chunks && K % V == 0;
  for (const void* p : ptrs) chunked = chunked && (p == nullptr || detail::aligned16(p));
  auto grid_for = [](int64_t blocks, int64_t cap) {
    return static_cast<unsigned>(blocks < 1 ? 1 : (blocks < cap ? blocks : cap));
  };
  const unsigned chunk_blocks = grid_for(chunks.count, 65535);
  if (chunked) {
    const dim3 grid(grid_for(ceil_div(K / V, kTileCols), int64_t{1} << 20), chunk_blocks);
    column_chunk_partials_kernel<V>
        <<<grid, dim3(kTileCols, kRowLanes), 0, stream>>>(term, R, K, chunks, partial);
  } else {
    const dim3 grid(grid_for(ceil_div(K, kTileCols), int64_t{1} << 20), chunk_blocks);
    column_partials_kernel<<<grid, dim3(kTileCols, kRowLanes), 0, stream>>>(term, R, K, chunks,
                                                                            partial);
  }
  EMBER_CUDA_CHECK_LAUNCH();
}

/// For every column k of partial (chunks, kParts<Acc>, K): the sums over the chunks in chunk
/// order, passed to finish(k, Acc).
template <class Acc, class Finish>
__global__ void column_finish_kernel(Finish finish, const double* __restrict__ partial,
                                     int64_t chunks, int64_t K) {
  constexpr int P = kParts<Acc>;
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < K;
       k += int64_t{gridDim.x} * blockDim.x) {
    Acc s{};
    for (int64_t c = 0; c < chunks; ++c)
#pragma unroll
      for (int i = 0; i < P; ++i) part(s, i) += partial[(c * P + i) * K + k];
    finish(k, s);
  }
}

}  // namespace ember::cuda::columns
