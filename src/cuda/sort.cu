// CUDA sort and topk along one dimension, with the CPU kernels' results (src/core/cpu/sort.cpp):
// every sort is stable (equal keys keep input order, ascending and descending), NaN is larger
// than every number (last ascending, first descending), -0.0 and 0.0 compare equal, float16 and
// bfloat16 compare by their float value; topk takes the k largest (smallest) with ties to the
// smaller index, in sorted order or (sorted=false) in input order. Indices are int64.
//
// Shapes: x any strides (a view, stride 0 where expanded); the rows are x's lines along dim
// (R rows of length L); values and indices have x's shape with k at dim, any strides.
//
// Design: each element becomes an unsigned key whose integer order is the CPU's order (NaN
// largest, -0.0 made +0.0, signed and floating bit patterns flipped; complemented for descending)
// and is sorted as the pair (key, position in the row). All pairs of a row differ, so any correct
// sort of the pairs gives exactly the stable result, whatever the algorithm.
//   1. block_sort_kernel: segments of S = next power of two >= L (at most kTile = 4096) are
//      bitonic-sorted in shared memory, several short rows per block (padding slots sort last);
//      dynamic shared memory tile * (key + 2 bytes) <= 40 KiB, at most 512 threads a block.
//   2. rows longer than kTile: a bottom-up merge of the sorted runs, one pass per doubling of the
//      run width, through global (key, position) buffers. Each element's output is its rank in its
//      own run plus its rank in the partner run (a binary search), so a pass has no cooperation.
//   3. write_kernel: values[j] = x[perm[j]], indices[j] = perm[j] for j < k.
// topk sorts the whole row and keeps the first k: O(L log^2 L) work per row whatever k is (a full
// sort even for k = 1). sorted=false then sorts the k chosen positions ascending with the same
// machinery (positions as int64 keys) and composes the two permutations.
// Temporaries: (R, L) keys and int64 positions, twice for rows longer than kTile.
//
// Deterministic: the output is a function of the input only (a total order, no atomics).
// Limits: at most 16 dims of size > 1 besides dim (ShapeError otherwise).
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "core/kernels.hpp"
#include "cuda/loops.cuh"
#include "ember/ops.hpp"

namespace ember::cuda {
namespace {

using detail::compute_t;
using detail::convert;
using detail::kMaxDims;
using detail::kThreads;

constexpr int kTile = 4096;        // elements sorted by one block in shared memory
constexpr int kSortThreads = 512;  // threads of a block_sort_kernel block (at most)
constexpr int64_t kMaxGrid = 65535 * 4;

__host__ __device__ __forceinline__ int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// ---- keys ----

/// The key type of T: 32 bits for everything that compares as a 32-bit value or less.
template <class T>
using sort_key_t = std::conditional_t<sizeof(compute_t<T>) <= 4, uint32_t, uint64_t>;

/// An unsigned key whose integer order is the CPU's ascending order of v (descending: reversed):
/// equal values (-0.0 and 0.0 included) give equal keys, NaN the largest key of all.
template <class K, class T>
__device__ __forceinline__ K sort_key(T raw, bool descending) {
  using C = compute_t<T>;
  constexpr K kTop = K(1) << (sizeof(K) * 8 - 1);
  const C v = convert<C>(raw);
  K key;
  if constexpr (std::is_unsigned_v<C>) {  // bool, uint8
    key = static_cast<K>(v);
  } else if constexpr (std::is_integral_v<C>) {  // sign-extended, then the sign bit flipped
    key = static_cast<K>(static_cast<std::make_signed_t<K>>(v)) ^ kTop;
  } else if (v != v) {
    key = ~K(0);
  } else {
    const C w = v == C(0) ? C(0) : v;  // -0.0 -> +0.0
    K bits;
    if constexpr (std::is_same_v<C, float>)
      bits = __float_as_uint(w);
    else
      bits = static_cast<K>(__double_as_longlong(w));
    key = (bits & kTop) ? ~bits : (bits | kTop);  // negatives reversed below the positives
  }
  return descending ? ~key : key;
}

/// (ka, pa) comes before (kb, pb): by key, then by position.
template <class K, class P>
__device__ __forceinline__ bool before(K ka, P pa, K kb, P pb) {
  return ka < kb || (ka == kb && pa < pb);
}

// ---- rows ----

/// The rows along dim of NT tensors that share sizes outside dim: the outer dims of size > 1 and
/// each tensor's element strides along them and along dim.
template <int NT>
struct Rows {
  int n = 0;
  int64_t size[kMaxDims];
  int64_t stride[NT][kMaxDims];
  int64_t along[NT];  // element stride along dim
};

template <int NT>
Rows<NT> make_rows(const std::array<const Tensor*, NT>& ts, int64_t dim, const char* op) {
  Rows<NT> g;
  const Tensor& x = *ts[NT - 1];
  for (int k = 0; k < NT; ++k) g.along[k] = ts[static_cast<size_t>(k)]->stride(dim);
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d == dim || x.size(d) == 1) continue;
    EMBER_CHECK(g.n < kMaxDims, ShapeError, "[", op, "] CUDA kernels take at most ", kMaxDims,
                " dims of size > 1 besides the sorted one, got ", x.sizes());
    g.size[g.n] = x.size(d);
    for (int k = 0; k < NT; ++k) g.stride[k][g.n] = ts[static_cast<size_t>(k)]->stride(d);
    ++g.n;
  }
  return g;
}

/// off[k] = element offset of row r's first element in tensor k.
template <int NT>
__device__ __forceinline__ void row_offsets(const Rows<NT>& g, int64_t r, int64_t (&off)[NT]) {
#pragma unroll
  for (int k = 0; k < NT; ++k) off[k] = 0;
  for (int d = g.n - 1; d >= 0; --d) {
    const int64_t idx = r % g.size[d];
    r /= g.size[d];
#pragma unroll
    for (int k = 0; k < NT; ++k) off[k] += idx * g.stride[k][d];
  }
}

// ---- 1. sorting segments in shared memory ----

/// Segment s (s < nseg) is chunk s % chunks of row s / chunks: positions [c * S, c * S + S) of the
/// row, those below L. Each block sorts spb consecutive segments (tile = spb * S <= kTile slots)
/// with a bitonic network and writes them sorted to keys/perm (R, L) at the same positions:
/// keys the sort keys, perm the positions in the row. S is a power of two >= 2.
template <class T, class K>
__global__ void block_sort_kernel(K* keys, int64_t* perm, const T* x, Rows<1> g, int64_t L, int S,
                                  int64_t chunks, int64_t nseg, int spb, bool descending) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int tile = spb * S;
  K* skey = reinterpret_cast<K*>(smem);                       // (tile)
  uint16_t* slot = reinterpret_cast<uint16_t*>(skey + tile);  // (tile) position in the segment
  const int64_t nblocks = ceil_div(nseg, spb);
  for (int64_t b = blockIdx.x; b < nblocks; b += gridDim.x) {  // uniform over the block
    const int64_t seg0 = b * spb;
    for (int t = threadIdx.x; t < tile; t += blockDim.x) {
      const int64_t seg = seg0 + t / S;
      const int local = t % S;
      K key = ~K(0);  // padding: the largest key, and a slot after every real one
      if (seg < nseg) {
        const int64_t row = seg / chunks, pos = (seg % chunks) * S + local;
        if (pos < L) {
          int64_t off[1];
          row_offsets(g, row, off);
          key = sort_key<K>(x[off[0] + pos * g.along[0]], descending);
        }
      }
      skey[t] = key;
      slot[t] = static_cast<uint16_t>(local);
    }
    __syncthreads();
    // Bitonic sort of each segment: stage k builds sorted runs of k (alternating directions,
    // all ascending at k == S); step j compares slots i and i + j.
    for (int k = 2; k <= S; k *= 2) {
      for (int j = k / 2; j > 0; j /= 2) {
        for (int p = threadIdx.x; p < tile / 2; p += blockDim.x) {
          const int i = (p / j) * 2 * j + p % j, l = i + j;
          const bool ascending = k == S || (i & k) == 0;
          const K ki = skey[i], kl = skey[l];
          const uint16_t si = slot[i], sl = slot[l];
          if (before(kl, sl, ki, si) == ascending) {
            skey[i] = kl;
            skey[l] = ki;
            slot[i] = sl;
            slot[l] = si;
          }
        }
        __syncthreads();
      }
    }
    for (int t = threadIdx.x; t < tile; t += blockDim.x) {
      const int64_t seg = seg0 + t / S;
      if (seg >= nseg) continue;
      const int64_t row = seg / chunks, start = (seg % chunks) * S;
      const int64_t local = t % S;
      if (start + local >= L) continue;  // the padding sorted last: the slots past the row's end
      keys[row * L + start + local] = skey[t];
      perm[row * L + start + local] = start + slot[t];
    }
    __syncthreads();  // the shared arrays are refilled for the next group of segments
  }
}

// ---- 2. merging sorted runs ----

/// One bottom-up merge pass over (R, L) rows made of sorted runs of w (the last may be shorter):
/// runs 2q and 2q + 1 of a row become one sorted run of 2w in (keys_out, perm_out).
template <class K>
__global__ void merge_kernel(K* keys_out, int64_t* perm_out, const K* keys_in,
                             const int64_t* perm_in, int64_t L, int64_t n, int64_t w) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t row = i / L, pos = i - row * L;
    const int64_t run = pos / w, start = run * w;
    const int64_t other = (run % 2 == 0) ? start + w : start - w;
    // The partner run: none for the last run of a row with an even number (other >= L).
    const int64_t other_len = other >= L ? 0 : (L - other < w ? L - other : w);
    const K key = keys_in[i];
    const int64_t p = perm_in[i];
    // Rank among the partner's elements: how many come before (key, p).
    const int64_t base = row * L + other;
    int64_t lo = 0, hi = other_len;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (before(keys_in[base + mid], perm_in[base + mid], key, p))
        lo = mid + 1;
      else
        hi = mid;
    }
    const int64_t out = row * L + (run - run % 2) * w + (pos - start) + lo;
    keys_out[out] = key;
    perm_out[out] = p;
  }
}

/// perm (R, L) int64, contiguous: row r of x along dim, as positions in the CPU's sorted order.
template <class T>
Tensor sorted_positions(const Tensor& x, int64_t dim, bool descending, cudaStream_t stream) {
  using K = sort_key_t<T>;
  const int64_t L = x.size(dim), R = x.numel() / L;
  const Rows<1> g = make_rows<1>({&x}, dim, "sort");
  const TensorOptions key_options =
      TensorOptions(sizeof(K) == 4 ? kInt32 : kInt64).device(x.device());
  const TensorOptions pos_options = TensorOptions(kInt64).device(x.device());
  Tensor keys = empty({R, L}, key_options), perm = empty({R, L}, pos_options);

  int S = 2;  // the segment: the row rounded up to a power of two, or kTile
  while (S < L && S < kTile) S *= 2;
  const int64_t chunks = ceil_div(L, S), nseg = R * chunks;
  const int spb = static_cast<int>(std::min<int64_t>(kTile / S, nseg));
  const int tile = spb * S;
  const int threads = std::min(kSortThreads, (tile / 2 + 31) / 32 * 32);
  const unsigned blocks = static_cast<unsigned>(std::min(ceil_div(nseg, spb), kMaxGrid));
  const size_t smem = static_cast<size_t>(tile) * (sizeof(K) + sizeof(uint16_t));
  block_sort_kernel<T, K><<<blocks, threads, smem, stream>>>(
      static_cast<K*>(keys.data_ptr()), static_cast<int64_t*>(perm.data_ptr()),
      static_cast<const T*>(x.data_ptr()), g, L, S, chunks, nseg, spb, descending);
  EMBER_CUDA_CHECK_LAUNCH();

  if (L > S) {
    Tensor keys2 = empty({R, L}, key_options), perm2 = empty({R, L}, pos_options);
    for (int64_t w = S; w < L; w *= 2) {
      merge_kernel<K><<<detail::blocks_for(R * L), kThreads, 0, stream>>>(
          static_cast<K*>(keys2.data_ptr()), static_cast<int64_t*>(perm2.data_ptr()),
          static_cast<const K*>(keys.data_ptr()), static_cast<const int64_t*>(perm.data_ptr()), L,
          R * L, w);
      EMBER_CUDA_CHECK_LAUNCH();
      std::swap(keys, keys2);
      std::swap(perm, perm2);
    }
  }
  return perm;
}

// ---- 3. writing the outputs ----

/// For row r and j < k: src = perm[r][order ? order[r][j] : j] (perm (R, L), order (R, k));
/// values[r][j] = x[r][src], indices[r][j] = src.
template <class T>
__global__ void write_kernel(T* values, int64_t* indices, const T* x, Rows<3> g,
                             const int64_t* perm, const int64_t* order, int64_t L, int64_t k,
                             int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t row = i / k, j = i - row * k;
    const int64_t src = perm[row * L + (order ? order[row * k + j] : j)];
    int64_t off[3];
    row_offsets(g, row, off);
    values[off[0] + j * g.along[0]] = x[off[2] + src * g.along[2]];
    indices[off[1] + j * g.along[1]] = src;
  }
}

template <class T>
void topk_typed(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t k,
                int64_t dim, bool largest, bool sorted) {
  const cudaStream_t stream = detail::stream_of(values);
  const int64_t L = x.size(dim), R = x.numel() / L;
  const Rows<3> g = make_rows<3>({&values, &indices, &x}, dim, "topk");
  const Tensor perm = sorted_positions<T>(x, dim, largest, stream);  // (R, L)
  Tensor order;  // (R, k): the chosen positions' ranks in input order (sorted=false)
  if (!sorted) order = sorted_positions<int64_t>(perm.slice(1, 0, k), 1, false, stream);
  write_kernel<T><<<detail::blocks_for(R * k), kThreads, 0, stream>>>(
      static_cast<T*>(values.data_ptr()), static_cast<int64_t*>(indices.data_ptr()),
      static_cast<const T*>(x.data_ptr()), g, static_cast<const int64_t*>(perm.data_ptr()),
      order.defined() ? static_cast<const int64_t*>(order.data_ptr()) : nullptr, L, k, R * k);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace

void topk(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t k, int64_t dim,
          bool largest, bool sorted) {
  if (values.numel() == 0 || k == 0 || x.numel() == 0) return;
  detail::DeviceGuard guard(values.device().index());
  detail::visit_device_dtype(x.dtype(), [&](auto tag) {
    topk_typed<typename decltype(tag)::type>(values, indices, x, k, dim, largest, sorted);
  });
}

void sort(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim,
          bool descending, bool stable) {
  (void)stable;  // the total order (key, position) makes every sort stable
  // A full sort is the top L of L in order; descending is "largest first".
  topk(values, indices, x, x.size(dim), dim, descending, /*sorted=*/true);
}

}  // namespace ember::cuda
