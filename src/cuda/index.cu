// CUDA indexing kernels with the CPU kernels' results (src/core/cpu/index.cpp), bitwise: the
// index range check, gather / index_select (reads through an int64 index), scatter / index_add
// (writes through it), count_nonzero and nonzero. Every dtype; sources, indices and outputs may
// be strided views (stride 0 where expanded); at most 16 dims of size > 1 (ShapeError otherwise).
//
// check_index_range: one pass takes, per warp, the smallest row-major position of an index outside
//   [0, size) and folds it into one device word with an integer atomicMin (order-independent), and
//   one 8-byte copy brings it back; only when there is one, a second copy fetches its value for
//   the CPU's IndexError message. That is a host synchronization per checked op (the price of
//   raising a typed error before anything is written, where PyTorch uses device asserts).
// gather / index_select: loops.cuh's map over the output, x viewed with a 0 stride at dim plus the
//   index value times x's stride at dim; index_select views its 1-D index expanded to out's shape.
// scatter / index_add: the rows are index's shape with dim collapsed (R rows of L positions; for
//   index_add the 1-D index is expanded over source's shape, as on the CPU). Two positions in
//   different rows never hit one output element, so the CPU's order -- duplicates applied in
//   increasing position along dim, the last write winning without accumulate -- is kept by:
//   - the row walk, when L <= kWalkMaxLength or R >= kWalkMinRows: one thread per row applies its
//     L positions in order (the CPU's loop; no temporaries, L serial steps per thread);
//   - otherwise the sorted runs: each position gets the key (row, target) -- for index_add just
//     the target, the n-entry index being shared by every row -- and a stable radix sort of
//     (key, position) pairs (CUB's DeviceRadixSort, over the key's significant bits only) puts
//     each output element's contributions next to each other in position order; the thread at
//     the start of a run (one per run and row for index_add) applies it in order. Cost: the sort
//     of R*L (index_add: n) keys, four int64 buffers of that length plus CUB's scratch, and one
//     thread per position of the run starts' rows; a run is serial, so an index that sends
//     everything to one element runs in one thread (any reordering would round differently).
//   Accumulation is the CPU's per step: o = T(C(o) + alpha * C(v)) with C = compute_t<T> (float16
//   and bfloat16 rounded to T after every add), integers wrapping, bool as logical or. The
//   multiply-add is one fma, as the CPU build compiles it (GCC contracts it by default with
//   -march=native on FMA hardware); with alpha == 1 (scatter_add, every gradient) or a power of
//   two the product is exact and either form gives the same bits.
// count_nonzero: grid-stride count per thread, warp sums, one integer atomicAdd per warp (exact,
//   so deterministic). NaN counts as non-zero, -0.0 as zero.
// nonzero: a block-wise prefix-sum compaction over tiles of kThreads elements in row-major order:
//   per-tile counts, their exclusive scan (CUB DeviceScan), then each block re-reads its tile and
//   ranks its non-zeros with a block scan, writing their coordinates at the tile's offset plus the
//   rank. out (count, D) comes sized by the op (which counted first); rows beyond it are dropped.
//
// Deterministic throughout: the only atomics are on integers; every floating result is the CPU's.
#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include "core/int_math.hpp"
#include "core/kernels.hpp"
#include "cuda/loops.cuh"

namespace ember::cuda {
namespace {

using detail::compute_t;
using detail::convert;
using detail::kMaxDims;
using detail::kThreads;
using detail::Offsets;
using detail::Pointers;

constexpr unsigned long long kNone = ULLONG_MAX;  // "no position" for check_index_range
constexpr int64_t kWalkMaxLength = 32;            // scatter: rows this short always walk
constexpr int64_t kWalkMinRows = int64_t{1} << 16;  // ... and this many rows fill the GPU
constexpr int64_t kMaxBlocks = 65535 * 8;         // grid-stride beyond

// ---- shared helpers ----

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

unsigned blocks_capped(int64_t blocks) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(blocks, kMaxBlocks)));
}

/// Byte offsets into each tensor of element i (row-major over the first tensor's shape).
template <int NT>
__device__ __forceinline__ void offsets_at(const Offsets<NT>& l, int64_t i, int64_t (&off)[NT]) {
  if (l.contiguous) {
#pragma unroll
    for (int k = 0; k < NT; ++k) off[k] = i * l.itemsize[k];
    return;
  }
#pragma unroll
  for (int k = 0; k < NT; ++k) off[k] = 0;
  for (int d = l.ndim - 1; d >= 0; --d) {
    const int64_t idx = i % l.sizes[d];
    i /= l.sizes[d];
#pragma unroll
    for (int k = 0; k < NT; ++k) off[k] += idx * l.strides[k][d];
  }
}

/// t viewed with `sizes` (each at most t's own) and t's strides, stride[dim] replaced by
/// dim_stride; same storage.
Tensor restrided(const Tensor& t, IntArrayRef sizes, int64_t dim, int64_t dim_stride) {
  std::vector<int64_t> strides = t.strides().vec();
  strides[static_cast<size_t>(dim)] = dim_stride;
  return make_view(t, sizes.vec(), strides, t.storage_offset());
}

/// The 1-D index viewed with `shape`: stride 0 everywhere except dim (the CPU's expand_index).
Tensor expand_index(const Tensor& index, IntArrayRef shape, int64_t dim) {
  std::vector<int64_t> strides(shape.size(), 0);
  strides[static_cast<size_t>(dim)] = index.stride(0);
  return make_view(index, shape.vec(), strides, index.storage_offset());
}

/// A device temporary of n elements of dtype on t's device (the caching allocator, t's stream).
Tensor scratch(int64_t n, DType dtype, const Tensor& t) {
  return make_tensor({std::max<int64_t>(n, 1)}, dtype, t.device(), "cuda index");
}

/// Runs a CUB device algorithm f(storage, bytes): once to size its scratch, once with it.
template <class F>
void run_cub(const Tensor& like, const char* what, F f) {
  size_t bytes = 0;
  detail::check(f(nullptr, bytes), what, __FILE__, __LINE__);
  Tensor storage = scratch(static_cast<int64_t>(bytes), kUInt8, like);
  detail::check(f(storage.data_ptr(), bytes), what, __FILE__, __LINE__);
}

// ---- check_index_range ----

/// first = min(first, the smallest position i < n whose index value lies outside [0, size)).
__global__ void first_out_of_range_kernel(unsigned long long* first, const char* index,
                                          Offsets<1> l, int64_t n, int64_t size) {
  unsigned long long best = kNone;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    int64_t off[1];
    offsets_at(l, i, off);
    const int64_t v = *reinterpret_cast<const int64_t*>(index + off[0]);
    if (v < 0 || v >= size) {
      best = static_cast<unsigned long long>(i);
      break;  // this thread's later positions are larger
    }
  }
  // Every thread of the (full) warp arrives here.
  for (int delta = 16; delta > 0; delta /= 2) {
    const unsigned long long other = __shfl_down_sync(0xffffffffu, best, delta);
    best = other < best ? other : best;
  }
  if (threadIdx.x % 32 == 0 && best != kNone) atomicMin(first, best);
}

// ---- gather / index_select ----

/// out[i] = x_rows[i] + index[i] * x_dim (bytes); out, index and x_rows share out's shape.
template <class B>
void gather_bits(const Tensor& out, const Tensor& index, const Tensor& x_rows, int64_t x_dim,
                 const char* op) {
  detail::launch_map<3>({&out, &index, &x_rows}, op, [x_dim] __device__(Pointers<3> p) {
    const int64_t j = *reinterpret_cast<const int64_t*>(p.p[1]);
    *reinterpret_cast<B*>(p.p[0]) = *reinterpret_cast<const B*>(p.p[2] + j * x_dim);
  });
}

/// out = x gathered along dim by index (index has out's shape).
void gather_along(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index,
                  const char* op) {
  const Tensor x_rows = restrided(x, out.sizes(), dim, 0);
  const int64_t x_dim = x.stride(dim) * static_cast<int64_t>(x.element_size());
  detail::visit_bits(out.element_size(), [&](auto tag) {
    gather_bits<typename decltype(tag)::type>(out, index, x_rows, x_dim, op);
  });
}

// ---- scatter / index_add ----

/// One step of the CPU's accumulation: T(C(o) + a * C(v)).
template <class T, class C>
__device__ __forceinline__ T add_scaled(T o, T v, C a) {
  if constexpr (std::is_same_v<T, bool>) {
    return o || (a && v);  // the CPU's int sum, != 0
  } else if constexpr (std::is_integral_v<T>) {
    return int_math::wrap_add(o, int_math::wrap_mul(a, v));
  } else if constexpr (std::is_same_v<C, float>) {
    return convert<T>(fmaf(a, convert<C>(v), convert<C>(o)));
  } else {
    return convert<T>(fma(a, convert<C>(v), convert<C>(o)));
  }
}

/// The rows of a scatter: index's shape with dim collapsed to 1, as views of out, index and src.
struct Rows {
  Tensor out, index, src;
  int64_t R = 0, L = 0, S = 0;                // rows, positions along dim, out.size(dim)
  int64_t out_dim = 0, index_dim = 0, src_dim = 0;  // byte strides along dim
};

Rows make_rows(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  std::vector<int64_t> sizes = index.sizes().vec();
  Rows r;
  r.L = sizes[static_cast<size_t>(dim)];
  sizes[static_cast<size_t>(dim)] = 1;
  r.out = make_view(out, sizes, out.strides().vec(), out.storage_offset());
  r.index = make_view(index, sizes, index.strides().vec(), index.storage_offset());
  r.src = make_view(src, sizes, src.strides().vec(), src.storage_offset());
  r.R = r.out.numel();
  r.S = out.size(dim);
  const int64_t item = static_cast<int64_t>(out.element_size());
  r.out_dim = out.stride(dim) * item;
  r.index_dim = index.stride(dim) * static_cast<int64_t>(sizeof(int64_t));
  r.src_dim = src.stride(dim) * item;
  return r;
}

/// The row walk: one thread per row applies its L positions in order.
template <class T, class C>
void scatter_walk(const Rows& r, bool accumulate, C a, const char* op) {
  const int64_t L = r.L, out_dim = r.out_dim, index_dim = r.index_dim, src_dim = r.src_dim;
  detail::launch_map<3>({&r.out, &r.index, &r.src}, op, [=] __device__(Pointers<3> p) {
    for (int64_t j = 0; j < L; ++j) {
      const int64_t t = *reinterpret_cast<const int64_t*>(p.p[1] + j * index_dim);
      T* o = reinterpret_cast<T*>(p.p[0] + t * out_dim);
      const T v = *reinterpret_cast<const T*>(p.p[2] + j * src_dim);
      *o = accumulate ? add_scaled<T, C>(*o, v, a) : v;
    }
  });
}

/// keys[e] = row * S + index[row, j] and positions[e] = e for e = row * L + j < Rk * L; the index
/// element (row, j) is at index + rows' index offset of row + j * index_dim.
__global__ void make_keys_kernel(unsigned long long* keys, int64_t* positions, const char* index,
                                 Offsets<3> rows, int64_t Rk, int64_t L, int64_t S,
                                 int64_t index_dim) {
  const int64_t K = Rk * L;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < K;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t row = e / L, j = e - row * L;
    int64_t off[3];
    offsets_at(rows, row, off);
    const int64_t t = *reinterpret_cast<const int64_t*>(index + off[1] + j * index_dim);
    keys[e] = static_cast<unsigned long long>(row * S + t);
    positions[e] = e;
  }
}

/// Thread (p, c) for p < K sorted entries and c < ncols: when p starts a run of equal keys, it
/// applies the run in order to the output element of row (key / S) * ncols + c at target key % S.
/// Scatter: ncols 1, keys (row, target); index_add: keys are targets (row 0), c is the row.
template <class T, class C>
__global__ void apply_runs_kernel(char* out, const char* src, Offsets<3> rows,
                                  const unsigned long long* keys, const int64_t* positions,
                                  int64_t K, int64_t ncols, int64_t S, int64_t L, int64_t out_dim,
                                  int64_t src_dim, bool accumulate, C a) {
  const int64_t n = K * ncols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t p = i / ncols, c = i - p * ncols;
    const unsigned long long key = keys[p];
    if (p > 0 && keys[p - 1] == key) continue;  // not the start of a run
    const int64_t key_row = static_cast<int64_t>(key / static_cast<unsigned long long>(S));
    const int64_t target = static_cast<int64_t>(key) - key_row * S;
    int64_t off[3];
    offsets_at(rows, key_row * ncols + c, off);
    T* o = reinterpret_cast<T*>(out + off[0] + target * out_dim);
    const char* s = src + off[2];
    T acc = *o;
    for (int64_t q = p; q < K && keys[q] == key; ++q) {
      const int64_t j = positions[q] - key_row * L;
      const T v = *reinterpret_cast<const T*>(s + j * src_dim);
      acc = accumulate ? add_scaled<T, C>(acc, v, a) : v;
    }
    *o = acc;
  }
}

/// The sorted runs. index1d (index_add) supplies the keys once for every row; otherwise each
/// row's own index values do.
template <class T, class C>
void scatter_sorted(const Tensor& out, const Rows& r, const Tensor* index1d, bool accumulate, C a,
                    const char* op) {
  cudaStream_t stream = detail::stream_of(out);
  const detail::Offsets<3> g = detail::make_offsets<3>({&r.out, &r.index, &r.src}, op);
  const int64_t Rk = index1d ? 1 : r.R, ncols = index1d ? r.R : 1, K = Rk * r.L;
  const char* key_index = static_cast<const char*>(index1d ? index1d->data_ptr()
                                                           : r.index.data_ptr());
  const int64_t key_dim =
      index1d ? index1d->stride(0) * static_cast<int64_t>(sizeof(int64_t)) : r.index_dim;

  Tensor keys = scratch(K, kInt64, out), positions = scratch(K, kInt64, out);
  make_keys_kernel<<<detail::blocks_for(K), kThreads, 0, stream>>>(
      static_cast<unsigned long long*>(keys.data_ptr()),
      static_cast<int64_t*>(positions.data_ptr()), key_index, g, Rk, r.L, r.S, key_dim);
  EMBER_CUDA_CHECK_LAUNCH();

  // Keys are below Rk * S (<= out.numel()); sort only their significant bits.
  const int end_bit =
      std::max(1, static_cast<int>(std::bit_width(static_cast<uint64_t>(Rk * r.S - 1))));
  Tensor sorted_keys = scratch(K, kInt64, out), sorted_positions = scratch(K, kInt64, out);
  const auto* k_in = static_cast<const unsigned long long*>(keys.data_ptr());
  auto* k_out = static_cast<unsigned long long*>(sorted_keys.data_ptr());
  const auto* p_in = static_cast<const int64_t*>(positions.data_ptr());
  auto* p_out = static_cast<int64_t*>(sorted_positions.data_ptr());
  run_cub(out, "cub::DeviceRadixSort::SortPairs", [&](void* storage, size_t& bytes) {
    return cub::DeviceRadixSort::SortPairs(storage, bytes, k_in, k_out, p_in, p_out, K, 0,
                                           end_bit, stream);
  });

  apply_runs_kernel<T, C><<<detail::blocks_for(K * ncols), kThreads, 0, stream>>>(
      static_cast<char*>(out.data_ptr()), static_cast<const char*>(r.src.data_ptr()), g, k_out,
      p_out, K, ncols, r.S, r.L, r.out_dim, r.src_dim, accumulate, a);
  EMBER_CUDA_CHECK_LAUNCH();
}

/// out[..., index[..., j, ...], ...] (+)= alpha * src[..., j, ...] over index's shape, in order
/// along dim; index1d: index_add's 1-D index, of which `index` is the expanded view.
void scatter_along(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                   bool accumulate, Scalar alpha, const Tensor* index1d, const char* op) {
  if (index.numel() == 0 || out.numel() == 0) return;
  detail::DeviceGuard guard(out.device().index());
  const Rows r = make_rows(out, dim, index, src);
  const bool walk = r.L <= kWalkMaxLength || r.R >= kWalkMinRows;
  detail::visit_device_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const C a = alpha.to<C>();
    if (walk)
      scatter_walk<T, C>(r, accumulate, a, op);
    else
      scatter_sorted<T, C>(out, r, index1d, accumulate, a, op);
  });
}

// ---- count_nonzero / nonzero ----

template <class T>
__device__ __forceinline__ bool nonzero_at(const char* x, const Offsets<1>& l, int64_t i) {
  int64_t off[1];
  offsets_at(l, i, off);
  return convert<bool>(*reinterpret_cast<const T*>(x + off[0]));
}

template <class T>
__global__ void count_nonzero_kernel(unsigned long long* count, const char* x, Offsets<1> l,
                                     int64_t n) {
  unsigned long long c = 0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    c += nonzero_at<T>(x, l, i) ? 1 : 0;
  for (int delta = 16; delta > 0; delta /= 2) c += __shfl_down_sync(0xffffffffu, c, delta);
  if (threadIdx.x % 32 == 0 && c != 0) atomicAdd(count, c);
}

/// counts[tile] = the non-zeros among elements [tile * kThreads, (tile + 1) * kThreads) of x.
template <class T>
__global__ void tile_count_kernel(int64_t* counts, const char* x, Offsets<1> l, int64_t n,
                                  int64_t ntiles) {
  using Reduce = cub::BlockReduce<int, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  for (int64_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {  // uniform per block
    const int64_t i = tile * kThreads + threadIdx.x;
    const int flag = (i < n && nonzero_at<T>(x, l, i)) ? 1 : 0;
    const int total = Reduce(temp).Sum(flag);
    if (threadIdx.x == 0) counts[tile] = total;
    __syncthreads();  // temp is reused by the next tile
  }
}

/// x's dims of size > 1 (row-major) and the column of out each one fills; the others are 0.
struct Coords {
  int64_t D = 0;
  int nd = 0;
  int64_t sizes[kMaxDims];
  int64_t cols[kMaxDims];
};

/// out[offsets[tile] + rank] = the coordinates of each non-zero element of the tile, rank being
/// its place among the tile's non-zeros; rows at or beyond N are dropped.
template <class T>
__global__ void nonzero_write_kernel(int64_t* out, const char* x, Offsets<1> l, int64_t n,
                                     int64_t ntiles, const int64_t* offsets, int64_t N, Coords c) {
  using Scan = cub::BlockScan<int, kThreads>;
  __shared__ typename Scan::TempStorage temp;
  for (int64_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {  // uniform per block
    const int64_t i = tile * kThreads + threadIdx.x;
    const int flag = (i < n && nonzero_at<T>(x, l, i)) ? 1 : 0;
    int rank = 0;
    Scan(temp).ExclusiveSum(flag, rank);
    const int64_t row = offsets[tile] + rank;
    if (flag && row < N) {
      int64_t* o = out + row * c.D;
      int64_t rem = i;
      int k = c.nd - 1;
      for (int64_t d = c.D - 1; d >= 0; --d) {
        int64_t v = 0;
        if (k >= 0 && c.cols[k] == d) {
          v = rem % c.sizes[k];
          rem /= c.sizes[k];
          --k;
        }
        o[d] = v;
      }
    }
    __syncthreads();  // temp is reused by the next tile
  }
}

}  // namespace

void check_index_range(const Tensor& index, int64_t size, const char* op, int64_t dim) {
  const int64_t n = index.numel();
  if (n == 0) return;
  detail::DeviceGuard guard(index.device().index());
  cudaStream_t stream = detail::stream_of(index);
  const Offsets<1> l = detail::make_offsets<1>({&index}, op);
  Tensor first = scratch(1, kInt64, index);
  auto* first_ptr = static_cast<unsigned long long*>(first.data_ptr());
  EMBER_CUDA_CHECK(cudaMemsetAsync(first_ptr, 0xFF, sizeof(unsigned long long), stream));  // kNone
  first_out_of_range_kernel<<<detail::blocks_for(n), kThreads, 0, stream>>>(
      first_ptr, static_cast<const char*>(index.data_ptr()), l, n, size);
  EMBER_CUDA_CHECK_LAUNCH();
  unsigned long long pos = kNone;
  EMBER_CUDA_CHECK(
      cudaMemcpyAsync(&pos, first_ptr, sizeof(pos), cudaMemcpyDeviceToHost, stream));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (pos == kNone) return;
  // The bad value, for the CPU's message: the element at row-major position pos.
  int64_t rem = static_cast<int64_t>(pos), offset = 0;
  for (int64_t d = index.dim() - 1; d >= 0; --d) {
    offset += (rem % index.size(d)) * index.stride(d);
    rem /= index.size(d);
  }
  int64_t value = 0;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(&value, static_cast<const int64_t*>(index.data_ptr()) + offset,
                                   sizeof(value), cudaMemcpyDeviceToHost, stream));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
  throw IndexError(ember::detail::str_cat("[", op, "] index ", value,
                                          " is out of bounds for dimension ", dim, " with size ",
                                          size));
}

void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  gather_along(out, x, dim, index, "gather");
}

void scatter(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
             bool accumulate) {
  scatter_along(out, dim, index, src, accumulate, Scalar(1), nullptr, "scatter");
}

void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  if (out.numel() == 0) return;
  gather_along(out, x, dim, expand_index(index, out.sizes(), dim), "index_select");
}

void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& source,
               Scalar alpha) {
  if (source.numel() == 0) return;
  scatter_along(out, dim, expand_index(index, source.sizes(), dim), source, true, alpha, &index,
                "index_add");
}

void count_nonzero(const Tensor& count, const Tensor& x) {
  detail::DeviceGuard guard(count.device().index());
  cudaStream_t stream = detail::stream_of(count);
  auto* c = static_cast<unsigned long long*>(count.data_ptr());
  EMBER_CUDA_CHECK(cudaMemsetAsync(c, 0, sizeof(unsigned long long), stream));
  const int64_t n = x.numel();
  if (n == 0) return;
  const Offsets<1> l = detail::make_offsets<1>({&x}, "count_nonzero");
  detail::visit_device_dtype(x.dtype(), [&](auto tag) {
    count_nonzero_kernel<typename decltype(tag)::type>
        <<<detail::blocks_for(n), kThreads, 0, stream>>>(
            c, static_cast<const char*>(x.data_ptr()), l, n);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void nonzero(const Tensor& out, const Tensor& x) {
  const int64_t n = x.numel(), N = out.size(0);
  if (n == 0 || out.numel() == 0) return;
  detail::DeviceGuard guard(out.device().index());
  cudaStream_t stream = detail::stream_of(out);
  const Offsets<1> l = detail::make_offsets<1>({&x}, "nonzero");
  Coords c;
  c.D = x.dim();
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.size(d) == 1) continue;
    c.sizes[c.nd] = x.size(d);  // make_offsets checked that at most kMaxDims dims are > 1
    c.cols[c.nd] = d;
    ++c.nd;
  }
  const int64_t ntiles = ceil_div(n, kThreads);
  Tensor counts = scratch(ntiles, kInt64, out), offsets = scratch(ntiles, kInt64, out);
  const auto* xp = static_cast<const char*>(x.data_ptr());
  auto* counts_ptr = static_cast<int64_t*>(counts.data_ptr());
  auto* offsets_ptr = static_cast<int64_t*>(offsets.data_ptr());
  detail::visit_device_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    tile_count_kernel<T><<<blocks_capped(ntiles), kThreads, 0, stream>>>(counts_ptr, xp, l, n,
                                                                         ntiles);
    EMBER_CUDA_CHECK_LAUNCH();
    run_cub(out, "cub::DeviceScan::ExclusiveSum", [&](void* storage, size_t& bytes) {
      return cub::DeviceScan::ExclusiveSum(storage, bytes, counts_ptr, offsets_ptr, ntiles,
                                           stream);
    });
    nonzero_write_kernel<T><<<blocks_capped(ntiles), kThreads, 0, stream>>>(
        out.data_ptr<int64_t>(), xp, l, n, ntiles, offsets_ptr, N, c);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ember::cuda
