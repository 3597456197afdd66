// CUDA reductions: reduce (sum, prod, max, min, all, any over any set of dims), arg_reduce (max or
// min along one dim with the index of the first extremum), cumsum and softmax / log_softmax, with
// the CPU kernels' semantics (src/core/cpu/reduce.cpp): sums and products accumulate in double for
// floating inputs and in wrapping int64 for integer and bool inputs, max/min propagate NaN, the
// first NaN or the first of equal extrema wins arg_reduce.
//
// Deterministic: one block per output element (grid-stride over outputs), each thread folding a
// fixed strided subset of the reduced elements in order, then a fixed shuffle-and-shared-memory
// tree; fewer than 1024 outputs of 65536 elements or more are each split into at most 1024
// fixed chunks reduced the same way, then combined in order by a second kernel (run_reduce);
// 1024 or more outputs along a unit-stride dim get one warp each (reduce_rows_kernel: 16-byte
// chunks, a fixed lane order and shuffle tree); floating sums over the rows of contiguous columns
// take the column kernels (column_sum). The
// result depends only on the input's shape and values and the block size (kThreads), never on
// the GPU or timing. It
// is not bitwise the CPU's (a different summation tree). cumsum runs one thread per line
// (sequential, as the CPU); softmax one block per line: over the innermost dim of dense tensors
// with the line cached in shared memory (read from global memory once, 16-byte chunks; lines up
// to the opt-in shared memory less 1 KiB, 226 KiB on an H200: 57K float32, 28K float64 values),
// else reading the strided line three times.
#include <cuda_runtime.h>

#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/kernels.hpp"
#include "cuda/column_sums.cuh"
#include "cuda/dims.hpp"
#include "cuda/loops.cuh"
#include "cuda/variant.hpp"
#include "ember/ops.hpp"

namespace ember::cuda {
namespace {

using detail::compute_t;
using detail::convert;
using detail::kMaxDims;
using detail::kThreads;

/// The outputs (outer dims: sizes, x's and each output's element strides) and the reduced dims
/// (sizes, x's strides) of a reduction; K outputs of R elements each.
struct Geometry {
  int64_t K = 1, R = 1;
  int nouter = 0, nred = 0;
  int64_t osize[kMaxDims], ox[kMaxDims], o0[kMaxDims], o1[kMaxDims];
  int64_t rsize[kMaxDims], rx[kMaxDims], r0[kMaxDims];
};

/// outs: the outputs (keepdim shape of x, size 1 at the reduced dims); reduced[d] marks x's dims.
/// Adjacent outer dims, and adjacent reduced dims, that walk x and the outputs as one are merged
/// (detail::coalesce_dims): fewer divisions per offset, the same elements in the same order, and
/// layouts such as sum(x, 0) of a contiguous (B, T, C) become (B, T C), which the column kernels
/// take.
Geometry make_geometry(const Tensor& x, const std::vector<bool>& reduced,
                       const Tensor* out0, const Tensor* out1, const char* op) {
  Geometry g;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.size(d) == 1) continue;
    EMBER_CHECK(g.nouter < kMaxDims && g.nred < kMaxDims, ShapeError, "[", op,
                "] CUDA kernels take at most ", kMaxDims, " dims of size > 1, got ", x.sizes());
    if (reduced[static_cast<size_t>(d)]) {
      g.rsize[g.nred] = x.size(d);
      g.rx[g.nred] = x.stride(d);
      // cumsum/softmax: the output moves along too (a size-1 dim of out0 never moves it)
      g.r0[g.nred] = out0 && out0->size(d) != 1 ? out0->stride(d) : 0;
      g.R *= x.size(d);
      ++g.nred;
    } else {
      g.osize[g.nouter] = x.size(d);
      g.ox[g.nouter] = x.stride(d);
      g.o0[g.nouter] = out0 ? out0->stride(d) : 0;
      g.o1[g.nouter] = out1 ? out1->stride(d) : 0;
      g.K *= x.size(d);
      ++g.nouter;
    }
  }
  detail::coalesce_dims(g.nouter, g.osize, {g.ox, g.o0, g.o1});
  detail::coalesce_dims(g.nred, g.rsize, {g.rx, g.r0});
  return g;
}

/// Offsets of output k: into x, out0 and out1.
__device__ __forceinline__ void outer_offsets(const Geometry& g, int64_t k, int64_t& xo,
                                              int64_t& a, int64_t& b) {
  xo = a = b = 0;
  for (int d = g.nouter - 1; d >= 0; --d) {
    const int64_t idx = k % g.osize[d];
    k /= g.osize[d];
    xo += idx * g.ox[d];
    a += idx * g.o0[d];
    b += idx * g.o1[d];
  }
}

/// Offset in x (and out0 when `out` is given) of the j-th reduced element.
__device__ __forceinline__ int64_t reduced_offset(const Geometry& g, int64_t j,
                                                  int64_t* out = nullptr) {
  int64_t xo = 0, oo = 0;
  for (int d = g.nred - 1; d >= 0; --d) {
    const int64_t idx = j % g.rsize[d];
    j /= g.rsize[d];
    xo += idx * g.rx[d];
    oo += idx * g.r0[d];
  }
  if (out) *out = oo;
  return xo;
}

unsigned grid_for(int64_t K) { return static_cast<unsigned>(K < 65535 * 4 ? K : 65535 * 4); }

// ---- the block tree ----

template <class A>
__device__ __forceinline__ A shfl_down(A v, int delta) {
  if constexpr (std::is_same_v<A, bool>) {
    return __shfl_down_sync(0xffffffffu, static_cast<int>(v), delta) != 0;
  } else if constexpr (sizeof(A) == 1) {
    return static_cast<A>(__shfl_down_sync(0xffffffffu, static_cast<int>(v), delta));
  } else {
    return __shfl_down_sync(0xffffffffu, v, delta);
  }
}

/// Combines every thread's value with op in a fixed tree; the result is valid in thread 0.
template <class A, class Op>
__device__ A block_reduce(A v, Op op, A* shared /* [32] */) {
  for (int delta = 16; delta > 0; delta /= 2) v = op.combine(v, shfl_down(v, delta));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) / 32;
  v = threadIdx.x < warps ? shared[threadIdx.x] : op.identity();
  if (warp == 0)
    for (int delta = 16; delta > 0; delta /= 2) v = op.combine(v, shfl_down(v, delta));
  __syncthreads();  // shared is reused by the next output
  return v;
}

/// As block_reduce, the result broadcast to every thread.
template <class A, class Op>
__device__ A block_all_reduce(A v, Op op, A* shared) {
  v = block_reduce(v, op, shared);
  if (threadIdx.x == 0) shared[0] = v;
  __syncthreads();
  v = shared[0];
  __syncthreads();
  return v;
}

template <class A>
__device__ __forceinline__ bool is_nan(A v) {
  if constexpr (std::is_floating_point_v<A>)
    return v != v;
  else
    return false;
}

template <class A>
struct SumOp {
  __device__ A identity() const { return A(0); }
  __device__ A combine(A a, A b) const {
    if constexpr (std::is_integral_v<A>)
      return static_cast<A>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
    else
      return a + b;
  }
};
template <class A>
struct ProdOp {
  __device__ A identity() const { return A(1); }
  __device__ A combine(A a, A b) const {
    if constexpr (std::is_integral_v<A>)
      return static_cast<A>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
    else
      return a * b;
  }
};
template <class A>
struct MaxOp {
  __device__ A identity() const {
    if constexpr (std::is_floating_point_v<A>)
      return -std::numeric_limits<A>::infinity();
    else
      return std::numeric_limits<A>::lowest();
  }
  __device__ A combine(A a, A b) const {
    if (is_nan(a)) return a;
    return (b > a || is_nan(b)) ? b : a;
  }
};
template <class A>
struct MinOp {
  __device__ A identity() const {
    if constexpr (std::is_floating_point_v<A>)
      return std::numeric_limits<A>::infinity();
    else
      return std::numeric_limits<A>::max();
  }
  __device__ A combine(A a, A b) const {
    if (is_nan(a)) return a;
    return (b < a || is_nan(b)) ? b : a;
  }
};
struct AllOp {
  __device__ bool identity() const { return true; }
  __device__ bool combine(bool a, bool b) const { return a && b; }
};
struct AnyOp {
  __device__ bool identity() const { return false; }
  __device__ bool combine(bool a, bool b) const { return a || b; }
};

template <class T>
using sum_acc_t = std::conditional_t<std::is_floating_point_v<compute_t<T>>, double, int64_t>;

// ---- reduce ----

/// Splitting one output's reduction (run_reduce): at least this many elements per partial block,
/// at most kMaxSplits partials per output, and only while there are fewer outputs than
/// kSplitBelowOutputs (else one block per output already fills the GPU).
constexpr int64_t kSplitChunk = 32768;
constexpr int64_t kMaxSplits = 1024;
constexpr int64_t kSplitBelowOutputs = 1024;

/// This thread's fold of reduced elements begin + threadIdx.x, + blockDim.x, ... < end of the
/// output at x offset xb. kOneDim: one reduced dim, offset j * stride without index arithmetic.
template <class T, class A, bool kOneDim, class Op>
__device__ __forceinline__ A fold_range(const T* x, const Geometry& g, int64_t xb, int64_t begin,
                                        int64_t end, Op op) {
  A acc = op.identity();
  for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
    const int64_t off = kOneDim ? j * g.rx[0] : reduced_offset(g, j);
    acc = op.combine(acc, convert<A>(convert<compute_t<T>>(x[xb + off])));
  }
  return acc;
}

/// Block t of K * splits: output t / splits, the (t % splits)-th of `splits` equal chunks of
/// its R elements. splits == 1 writes the output; else the chunk's result goes to partial[t].
template <class T, class O, class A, bool kOneDim, class Op>
__global__ void reduce_kernel(const T* x, O* out, A* partial, Geometry g, int64_t splits, Op op) {
  __shared__ A shared[32];
  const int64_t chunk = (g.R + splits - 1) / splits;
  for (int64_t t = blockIdx.x; t < g.K * splits; t += gridDim.x) {
    const int64_t k = t / splits, begin = (t % splits) * chunk;
    const int64_t end = begin + chunk < g.R ? begin + chunk : g.R;
    int64_t xb = 0, ob = 0, unused = 0;
    outer_offsets(g, k, xb, ob, unused);
    A acc = fold_range<T, A, kOneDim>(x, g, xb, begin, end, op);
    acc = block_reduce(acc, op, shared);
    if (threadIdx.x == 0) {
      if (splits == 1)
        out[ob] = convert<O>(acc);
      else
        partial[t] = acc;
    }
  }
}

/// Output k from its `splits` partial results, in order through the same block tree.
template <class O, class A, class Op>
__global__ void reduce_partials_kernel(const A* partial, O* out, Geometry g, int64_t splits,
                                       Op op) {
  __shared__ A shared[32];
  for (int64_t k = blockIdx.x; k < g.K; k += gridDim.x) {
    int64_t xb = 0, ob = 0, unused = 0;
    outer_offsets(g, k, xb, ob, unused);
    A acc = op.identity();
    for (int64_t s = threadIdx.x; s < splits; s += blockDim.x)
      acc = op.combine(acc, partial[k * splits + s]);
    acc = block_reduce(acc, op, shared);
    if (threadIdx.x == 0) out[ob] = convert<O>(acc);
  }
}

/// set_reduce_layout_variant's choice: -1 automatic (the row kernel for many outputs along
/// contiguous rows, the column kernels for sums over rows of contiguous columns, where the layout
/// allows), 0 the general kernel (one block per output) always.
detail::VariantSwitch g_layout_variant{"EMBER_REDUCE_LAYOUT_VARIANT", "set_reduce_layout_variant",
                                       -1, 0};

/// Warps per block of reduce_rows_kernel.
constexpr int kRowWarps = 8;

/// One warp per output (grid-stride over the outputs by the grid's warps), whose R reduced
/// elements are contiguous in x (one reduced dim of unit stride). Lane l folds the row's groups
/// of V = 16 / sizeof(T) values l, l + 32, ... (the V values of each in order), then the values
/// past the last whole group, l, l + 32, ...; the lanes combine in a fixed shuffle tree. kChunked
/// (every row starts 16-byte aligned) reads each group as one 16-byte chunk, else value by value:
/// the same values in the same order, so the two agree bitwise. The general kernel gives each
/// output a block of kThreads threads making one 4-byte load each per pass: a 1024-value float32
/// row kept a block for 4 loads per thread, a reduction tree with two barriers and one store.
template <class T, class O, class A, bool kChunked, class Op>
__global__ void reduce_rows_kernel(const T* __restrict__ x, O* __restrict__ out, Geometry g,
                                   Op op) {
  constexpr int V = static_cast<int>(16 / sizeof(T));
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int64_t warps = int64_t{gridDim.x} * (blockDim.x / 32);
  const int64_t groups = g.R / V;
  for (int64_t k = int64_t{blockIdx.x} * (blockDim.x / 32) + threadIdx.x / 32; k < g.K;
       k += warps) {
    int64_t xb = 0, ob = 0, unused = 0;
    outer_offsets(g, k, xb, ob, unused);
    const T* const row = x + xb;
    A acc = op.identity();
#pragma unroll 4
    for (int64_t i = lane; i < groups; i += 32) {
      detail::Chunk<T, V> c;
      if constexpr (kChunked) {
        c = reinterpret_cast<const detail::Chunk<T, V>*>(row)[i];
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j) c.v[j] = row[i * V + j];
      }
#pragma unroll
      for (int j = 0; j < V; ++j) acc = op.combine(acc, convert<A>(convert<compute_t<T>>(c.v[j])));
    }
    for (int64_t j = groups * V + lane; j < g.R; j += 32)
      acc = op.combine(acc, convert<A>(convert<compute_t<T>>(row[j])));
    for (int delta = 16; delta > 0; delta /= 2) acc = op.combine(acc, shfl_down(acc, delta));
    if (lane == 0) out[ob] = convert<O>(acc);
  }
}

/// Whether reduce_rows_kernel takes g: at least kSplitBelowOutputs outputs (so one warp each
/// fills the GPU; fewer, long ones are split, short ones are cheap either way) of one reduced dim
/// with unit stride.
bool rows_layout(const Geometry& g) {
  return g_layout_variant.get() != 0 && g.nred == 1 && g.rx[0] == 1 && g.R > 1 &&
         g.K >= kSplitBelowOutputs;
}

/// Few outputs of long reductions (a full sum) would leave most of the GPU idle with one block
/// each: their elements are split into fixed chunks (the count from K and R alone, so the result
/// does not depend on the GPU or on timing) whose results a second kernel combines.
template <class T, class O, class A, class Op>
void run_reduce(const Tensor& out, const Tensor& x, const Geometry& g, Op op) {
  int64_t splits = 1;
  if (g.K < kSplitBelowOutputs) {
    splits = g.R / kSplitChunk;
    splits = splits < 1 ? 1 : (splits > kMaxSplits ? kMaxSplits : splits);
  }
  const cudaStream_t stream = detail::stream_of(out);
  const T* const xp = static_cast<const T*>(x.data_ptr());
  O* const op_out = static_cast<O*>(out.data_ptr());
  if (rows_layout(g)) {
    // Every row starts 16-byte aligned: x's base and each outer stride in whole chunks.
    bool chunked = detail::aligned16(xp);
    for (int d = 0; d < g.nouter; ++d)
      chunked = chunked && (g.ox[d] * static_cast<int64_t>(sizeof(T))) % 16 == 0;
    const unsigned blocks = grid_for((g.K + kRowWarps - 1) / kRowWarps);
    if (chunked)
      reduce_rows_kernel<T, O, A, true><<<blocks, 32 * kRowWarps, 0, stream>>>(xp, op_out, g, op);
    else
      reduce_rows_kernel<T, O, A, false><<<blocks, 32 * kRowWarps, 0, stream>>>(xp, op_out, g, op);
    EMBER_CUDA_CHECK_LAUNCH();
    return;
  }
  Tensor partial;
  if (splits > 1)
    partial = empty({g.K * splits * static_cast<int64_t>(sizeof(A))},
                    TensorOptions(kUInt8).device(x.device()));
  A* const partial_ptr = splits > 1 ? static_cast<A*>(partial.data_ptr()) : nullptr;
  if (g.nred == 1)
    reduce_kernel<T, O, A, true><<<grid_for(g.K * splits), kThreads, 0, stream>>>(
        xp, op_out, partial_ptr, g, splits, op);
  else
    reduce_kernel<T, O, A, false><<<grid_for(g.K * splits), kThreads, 0, stream>>>(
        xp, op_out, partial_ptr, g, splits, op);
  EMBER_CUDA_CHECK_LAUNCH();
  if (splits > 1) {
    reduce_partials_kernel<O, A><<<grid_for(g.K), kThreads, 0, stream>>>(partial_ptr, op_out, g,
                                                                         splits, op);
    EMBER_CUDA_CHECK_LAUNCH();
  }
}

/// The reduction into out, whose dtype is any, accumulating in A: the kernels write only T or R
/// (the result's own type: the accumulator of sum and prod, T for max and min, whose result is
/// one of x's values, bool for all and any), so each (T, op) compiles one or two output types
/// instead of nine. Another output dtype gets the result in R, then converted by copy with the
/// conversion the kernel would have applied, so its values are those of a direct write.
template <class T, class A, class R, class Op>
void reduce_into(const Tensor& out, const Tensor& x, const std::vector<bool>& reduced, Op op) {
  constexpr DType t = detail::device_dtype<T>(), r = detail::device_dtype<R>();
  if (out.dtype() == t || out.dtype() == r) {
    const Geometry g = make_geometry(x, reduced, &out, nullptr, "reduce");
    if (out.dtype() == t) return run_reduce<T, T, A>(out, x, g, op);
    if constexpr (r != t) return run_reduce<T, R, A>(out, x, g, op);
  }
  if constexpr (std::is_same_v<R, double>) {
    // float32 from a sum or product kept in double (a 16-bit tensor summed into float32): the
    // kernel rounds the double result once, as the copy below would.
    if (out.dtype() == kFloat32)
      return run_reduce<T, float, A>(out, x, make_geometry(x, reduced, &out, nullptr, "reduce"),
                                     op);
  }
  const Tensor result = empty(out.sizes(), TensorOptions(r).device(out.device()));
  reduce_into<T, A, R>(result, x, reduced, op);
  cuda::copy(out, result);
}

// ---- sums over rows of contiguous columns ----

/// The value of x at row r, column k (rows `row` elements apart, columns adjacent).
template <class T>
struct ColumnTerm {
  const T* X;
  int64_t row;
  __device__ columns::One operator()(int64_t r, int64_t k, int64_t) const {
    return {convert<double>(convert<compute_t<T>>(X[r * row + k]))};
  }
  template <int V>
  __device__ void chunk(int64_t r, int64_t k, int64_t, columns::One (&t)[V]) const {
    const detail::Chunk<T, V> c = *reinterpret_cast<const detail::Chunk<T, V>*>(X + r * row + k);
#pragma unroll
    for (int v = 0; v < V; ++v) t[v] = {convert<double>(convert<compute_t<T>>(c.v[v]))};
  }
};

/// Stores column k's sum (double) as O at out[k * stride].
template <class O>
struct ColumnStore {
  O* out;
  int64_t stride;
  __device__ void operator()(int64_t k, columns::One s) const { out[k * stride] = convert<O>(s.a); }
};

/// A floating sum whose kept dims are one of unit stride in x (K columns side by side) and whose
/// reduced dims fold into one of R rows (each dim's stride its inner neighbour's size times
/// stride): e.g. sum(x, 0) of a row-major matrix, a Linear's bias gradient summed over (B, T), a
/// position embedding's gradient summed over the batch of (B, T, C).
/// The general kernel gives each output a block that reads its column with a stride of a whole
/// row (one value per 32-byte sector); here blocks of 32 columns x 8 row lanes read whole rows
/// (16-byte chunks where they fall so), columns::column_sums, in double, in a fixed order (the
/// chunks depend on R and K only). The result is stored as out's dtype: x's, float32 or float64.
/// False (nothing written) when the layout or the dtypes do not fit.
template <class T>
bool column_sum(const Tensor& out, const Tensor& x, const std::vector<bool>& reduced) {
  if (g_layout_variant.get() == 0) return false;
  const Geometry g = make_geometry(x, reduced, &out, nullptr, "reduce");
  // Reduced dims that fold into one of R rows are one dim here (make_geometry coalesces them).
  if (g.nouter != 1 || g.ox[0] != 1 || g.nred != 1 || g.R < 2) return false;
  const int64_t R = g.R, K = g.K, row = g.rx[0];
  constexpr DType t = detail::device_dtype<T>();
  const cudaStream_t stream = detail::stream_of(out);
  const columns::Chunks chunks = columns::column_chunks(R, K);
  const T* const xp = static_cast<const T*>(x.data_ptr());
  auto finish = [&](auto* op_out) {
    using O = std::remove_pointer_t<decltype(op_out)>;
    const Tensor partial = empty({chunks.count * K * static_cast<int64_t>(sizeof(double))},
                                 TensorOptions(kUInt8).device(x.device()));
    double* const pp = static_cast<double*>(partial.data_ptr());
    // Every row starts 16-byte aligned where x does and a row is whole chunks.
    const bool rows_aligned = (row * static_cast<int64_t>(sizeof(T))) % 16 == 0;
    columns::column_sums<T>(ColumnTerm<T>{xp, row}, R, K, chunks, {xp}, rows_aligned, pp, stream);
    columns::column_finish_kernel<columns::One>
        <<<grid_for(columns::ceil_div(K, kThreads)), kThreads, 0, stream>>>(
            ColumnStore<O>{op_out, g.o0[0]}, pp, chunks.count, K);
    EMBER_CUDA_CHECK_LAUNCH();
  };
  if (out.dtype() == t)
    finish(static_cast<T*>(out.data_ptr()));
  else if (out.dtype() == kFloat32)
    finish(static_cast<float*>(out.data_ptr()));
  else if (out.dtype() == kFloat64)
    finish(static_cast<double*>(out.data_ptr()));
  else
    return false;
  return true;
}

template <class T>
void reduce_typed(const Tensor& out, const Tensor& x, const std::vector<bool>& reduced,
                  ReduceOp op) {
  using S = sum_acc_t<T>;
  using C = compute_t<T>;
  switch (op) {
    case ReduceOp::Sum:
      if constexpr (std::is_same_v<S, double>)
        if (column_sum<T>(out, x, reduced)) return;
      return reduce_into<T, S, S>(out, x, reduced, SumOp<S>{});
    case ReduceOp::Prod: return reduce_into<T, S, S>(out, x, reduced, ProdOp<S>{});
    case ReduceOp::Max: return reduce_into<T, C, T>(out, x, reduced, MaxOp<C>{});
    case ReduceOp::Min: return reduce_into<T, C, T>(out, x, reduced, MinOp<C>{});
    case ReduceOp::All: return reduce_into<T, bool, bool>(out, x, reduced, AllOp{});
    case ReduceOp::Any: return reduce_into<T, bool, bool>(out, x, reduced, AnyOp{});
  }
}

// ---- arg_reduce ----

template <class C>
struct ArgBest {
  C v;
  int64_t i;
};

/// Better of two candidates: the first NaN wins for good, else the larger (smaller) value, ties
/// to the smaller index: the CPU's "first extremum" whatever order the tree combines in.
template <class C>
struct ArgOp {
  bool is_max;
  __device__ ArgBest<C> identity() const {
    return {is_max ? MaxOp<C>{}.identity() : MinOp<C>{}.identity(),
            std::numeric_limits<int64_t>::max()};
  }
  __device__ ArgBest<C> combine(ArgBest<C> a, ArgBest<C> b) const {
    const bool an = is_nan(a.v), bn = is_nan(b.v);
    if (an || bn) return (an && bn) ? (b.i < a.i ? b : a) : (an ? a : b);
    if (a.v != b.v) return ((b.v > a.v) == is_max) ? b : a;
    return b.i < a.i ? b : a;
  }
};

template <class C>
__device__ __forceinline__ ArgBest<C> shfl_down_best(ArgBest<C> v, int delta) {
  return {shfl_down(v.v, delta), shfl_down(v.i, delta)};
}

template <class T>
__global__ void arg_reduce_kernel(const T* x, T* values, int64_t* indices, Geometry g,
                                  ArgOp<compute_t<T>> op) {
  using C = compute_t<T>;
  __shared__ C sv[32];
  __shared__ int64_t si[32];
  for (int64_t k = blockIdx.x; k < g.K; k += gridDim.x) {
    int64_t xb = 0, vo = 0, io = 0;
    outer_offsets(g, k, xb, vo, io);
    ArgBest<C> best = op.identity();
    for (int64_t j = threadIdx.x; j < g.R; j += blockDim.x)
      best = op.combine(best, {convert<C>(x[xb + j * g.rx[0]]), j});
    for (int delta = 16; delta > 0; delta /= 2) best = op.combine(best, shfl_down_best(best, delta));
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) {
      sv[warp] = best.v;
      si[warp] = best.i;
    }
    __syncthreads();
    const int warps = (blockDim.x + 31) / 32;
    best = threadIdx.x < warps ? ArgBest<C>{sv[threadIdx.x], si[threadIdx.x]} : op.identity();
    if (warp == 0)
      for (int delta = 16; delta > 0; delta /= 2)
        best = op.combine(best, shfl_down_best(best, delta));
    if (threadIdx.x == 0) {
      values[vo] = x[xb + best.i * g.rx[0]];
      indices[io] = best.i;
    }
    __syncthreads();
  }
}

// ---- cumsum ----

template <class T>
__global__ void cumsum_kernel(T* out, const T* x, Geometry g) {
  using A = sum_acc_t<T>;
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < g.K;
       k += int64_t{gridDim.x} * blockDim.x) {
    int64_t xb = 0, ob = 0, unused = 0;
    outer_offsets(g, k, xb, ob, unused);
    A acc = A(0);
    for (int64_t j = 0; j < g.R; ++j) {
      acc = SumOp<A>{}.combine(acc, convert<A>(convert<compute_t<T>>(x[xb + j * g.rx[0]])));
      out[ob + j * g.r0[0]] = convert<T>(acc);
    }
  }
}

// ---- softmax ----

template <class T>
__global__ void softmax_kernel(T* out, const T* x, Geometry g, bool log) {
  using C = compute_t<T>;
  __shared__ C smax[32];
  __shared__ double ssum[32];
  for (int64_t k = blockIdx.x; k < g.K; k += gridDim.x) {
    int64_t xb = 0, ob = 0, unused = 0;
    outer_offsets(g, k, xb, ob, unused);
    const int64_t xs = g.rx[0], os = g.r0[0];
    C m = MaxOp<C>{}.identity();
    for (int64_t j = threadIdx.x; j < g.R; j += blockDim.x)
      m = MaxOp<C>{}.combine(m, convert<C>(x[xb + j * xs]));
    m = block_all_reduce(m, MaxOp<C>{}, smax);
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < g.R; j += blockDim.x)
      s += static_cast<double>(::exp(convert<C>(x[xb + j * xs]) - m));
    s = block_all_reduce(s, SumOp<double>{}, ssum);
    const C kk = log ? static_cast<C>(::log(s)) : static_cast<C>(1.0 / s);
    for (int64_t j = threadIdx.x; j < g.R; j += blockDim.x) {
      const C d = convert<C>(x[xb + j * xs]) - m;
      out[ob + j * os] = convert<T>(log ? d - kk : ::exp(d) * kk);
    }
  }
}

/// Contiguous rows (x and out dense, the softmax dim innermost) of R elements that fit in shared
/// memory: one block per row (grid-stride), the row read from global memory once into shared
/// memory (as T, in 16-byte chunks when kVec: x and out then share their offset from a 16-byte
/// boundary, so one scalar head per row aligns both), the max taken on the way; the exp sum and
/// the output are then computed from shared memory, the output written in 16-byte chunks. The
/// same formulas as softmax_kernel. Dynamic shared memory: R + V - 1 elements of T.
template <class T, bool kVec>
__global__ void softmax_rows_kernel(T* __restrict__ out, const T* __restrict__ x, int64_t K,
                                    int64_t R, bool log) {
  using C = compute_t<T>;
  constexpr int V = kVec ? 16 / static_cast<int>(sizeof(T)) : 1;
  using Vec = detail::Chunk<T, V>;
  extern __shared__ __align__(16) unsigned char row_bytes[];
  __shared__ C smax[32];
  __shared__ double ssum[32];
  for (int64_t k = blockIdx.x; k < K; k += gridDim.x) {
    const T* xr = x + k * R;  // (R)
    T* yr = out + k * R;
    const int64_t h = kVec ? detail::vector_head(xr, R) : 0;
    // row[j] is xr[j]; row + h is 16-byte aligned, as xr + h.
    T* row = reinterpret_cast<T*>(row_bytes) + (V - h % V) % V;
    const int64_t nch = (R - h) / V, tail = h + nch * V;
    C m = MaxOp<C>{}.identity();
    for (int64_t j = threadIdx.x; j < h; j += blockDim.x) {
      row[j] = xr[j];
      m = MaxOp<C>{}.combine(m, convert<C>(row[j]));
    }
    const Vec* xv = reinterpret_cast<const Vec*>(xr + h);
    Vec* rv = reinterpret_cast<Vec*>(row + h);
#pragma unroll 4
    for (int64_t c = threadIdx.x; c < nch; c += blockDim.x) {
      const Vec v = xv[c];
      rv[c] = v;
#pragma unroll
      for (int i = 0; i < V; ++i) m = MaxOp<C>{}.combine(m, convert<C>(v.v[i]));
    }
    for (int64_t j = tail + threadIdx.x; j < R; j += blockDim.x) {
      row[j] = xr[j];
      m = MaxOp<C>{}.combine(m, convert<C>(row[j]));
    }
    m = block_all_reduce(m, MaxOp<C>{}, smax);  // its barriers also publish row
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < R; j += blockDim.x)
      s += static_cast<double>(::exp(convert<C>(row[j]) - m));
    s = block_all_reduce(s, SumOp<double>{}, ssum);
    const C kk = log ? static_cast<C>(::log(s)) : static_cast<C>(1.0 / s);
    auto value = [&](T v) {
      const C d = convert<C>(v) - m;
      return convert<T>(log ? d - kk : ::exp(d) * kk);
    };
    for (int64_t j = threadIdx.x; j < h; j += blockDim.x) yr[j] = value(row[j]);
    Vec* yv = reinterpret_cast<Vec*>(yr + h);
    for (int64_t c = threadIdx.x; c < nch; c += blockDim.x) {
      const Vec v = rv[c];
      Vec o;
#pragma unroll
      for (int i = 0; i < V; ++i) o.v[i] = value(v.v[i]);
      yv[c] = o;
    }
    for (int64_t j = tail + threadIdx.x; j < R; j += blockDim.x) yr[j] = value(row[j]);
    __syncthreads();  // row is refilled for the next line
  }
}

std::vector<bool> one_dim(const Tensor& x, int64_t dim) {
  std::vector<bool> r(static_cast<size_t>(x.dim()), false);
  r[static_cast<size_t>(dim)] = true;
  return r;
}

/// Geometry along one dim that keeps it even when its size is 1 (a line of one element).
Geometry line_geometry(const Tensor& x, int64_t dim, const Tensor* out0, const Tensor* out1,
                       const char* op) {
  Geometry g = make_geometry(x, one_dim(x, dim), out0, out1, op);
  if (g.nred == 0) {  // size-1 dim: one element per line
    g.nred = 1;
    g.rsize[0] = 1;
    g.rx[0] = 0;
    g.r0[0] = 0;
  }
  return g;
}

template <class T>
void arg_reduce_typed(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim,
                      bool is_max) {
  const Geometry g = line_geometry(x, dim, &values, &indices, "arg_reduce");
  arg_reduce_kernel<T><<<grid_for(g.K), kThreads, 0, detail::stream_of(x)>>>(
      static_cast<const T*>(x.data_ptr()), static_cast<T*>(values.data_ptr()),
      static_cast<int64_t*>(indices.data_ptr()), g, ArgOp<compute_t<T>>{is_max});
  EMBER_CUDA_CHECK_LAUNCH();
}

template <class T>
void cumsum_typed(const Tensor& out, const Tensor& x, int64_t dim) {
  const Geometry g = line_geometry(x, dim, &out, nullptr, "cumsum");
  cumsum_kernel<T><<<detail::blocks_for(g.K), kThreads, 0, detail::stream_of(x)>>>(
      static_cast<T*>(out.data_ptr()), static_cast<const T*>(x.data_ptr()), g);
  EMBER_CUDA_CHECK_LAUNCH();
}

/// Bytes of static shared memory softmax_rows_kernel may use besides its row, at most.
constexpr int64_t kSoftmaxStaticSmem = 1024;

template <class T, bool kVec>
void launch_softmax_rows(const Tensor& out, const Tensor& x, int64_t K, int64_t R, int smem,
                         int limit, bool log) {
  constexpr int64_t V = 16 / static_cast<int64_t>(sizeof(T));
  if (smem > 48 * 1024)
    detail::opt_in_smem<softmax_rows_kernel<T, kVec>>(limit, x.device().index());
  // About 4 chunks (or, unvectorized, 4 V elements) per thread, a power of two in [32, 1024].
  int threads = 32;
  while (threads < 1024 && threads * 4 * V < R) threads *= 2;
  softmax_rows_kernel<T, kVec><<<grid_for(K), threads, smem, detail::stream_of(x)>>>(
      static_cast<T*>(out.data_ptr()), static_cast<const T*>(x.data_ptr()), K, R, log);
  EMBER_CUDA_CHECK_LAUNCH();
}

/// Dense rows (softmax over the innermost dim of contiguous x and out) that fit in shared memory
/// take softmax_rows_kernel; false (nothing launched) otherwise.
template <class T>
bool softmax_rows(const Tensor& out, const Tensor& x, int64_t dim, bool log) {
  if (!x.is_contiguous() || !out.is_contiguous()) return false;
  for (int64_t d = dim + 1; d < x.dim(); ++d)
    if (x.size(d) != 1) return false;
  const int64_t R = x.size(dim), K = x.numel() / R;
  constexpr int64_t V = 16 / static_cast<int64_t>(sizeof(T));
  const int64_t smem = (R + V - 1) * static_cast<int64_t>(sizeof(T));
  // The largest shared memory one block may opt in to (bytes).
  const int limit =
      detail::device_attribute<cudaDevAttrMaxSharedMemoryPerBlockOptin>(x.device().index());
  if (smem + kSoftmaxStaticSmem > limit) return false;
  const uintptr_t xa = reinterpret_cast<uintptr_t>(x.data_ptr());
  const uintptr_t oa = reinterpret_cast<uintptr_t>(out.data_ptr());
  if (V > 1 && (xa - oa) % 16 == 0)  // the same head in every row of x and out
    launch_softmax_rows<T, true>(out, x, K, R, static_cast<int>(smem), limit, log);
  else
    launch_softmax_rows<T, false>(out, x, K, R, static_cast<int>(smem), limit, log);
  return true;
}

template <class T>
void softmax_typed(const Tensor& out, const Tensor& x, int64_t dim, bool log) {
  if (softmax_rows<T>(out, x, dim, log)) return;
  const Geometry g = line_geometry(x, dim, &out, nullptr, "softmax");
  softmax_kernel<T><<<grid_for(g.K), kThreads, 0, detail::stream_of(x)>>>(
      static_cast<T*>(out.data_ptr()), static_cast<const T*>(x.data_ptr()), g, log);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace

void reduce(const Tensor& out, const Tensor& x, IntArrayRef dims, ReduceOp op) {
  if (out.numel() == 0) return;
  detail::DeviceGuard guard(x.device().index());
  std::vector<bool> reduced(static_cast<size_t>(x.dim()), false);
  for (int64_t d : dims) reduced[static_cast<size_t>(d)] = true;
  detail::visit_device_dtype(x.dtype(), [&](auto xt) {
    reduce_typed<typename decltype(xt)::type>(out, x, reduced, op);
  });
}

void set_reduce_layout_variant(int variant) { g_layout_variant.set(variant); }

void arg_reduce(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim,
                bool is_max) {
  if (values.numel() == 0) return;
  detail::DeviceGuard guard(x.device().index());
  detail::visit_device_dtype(x.dtype(), [&](auto xt) {
    arg_reduce_typed<typename decltype(xt)::type>(values, indices, x, dim, is_max);
  });
}

void cumsum(const Tensor& out, const Tensor& x, int64_t dim) {
  if (out.numel() == 0) return;
  detail::DeviceGuard guard(x.device().index());
  detail::visit_device_dtype(x.dtype(), [&](auto xt) {
    cumsum_typed<typename decltype(xt)::type>(out, x, dim);
  });
}

void softmax(const Tensor& out, const Tensor& x, int64_t dim, bool log) {
  if (out.numel() == 0) return;
  detail::DeviceGuard guard(x.device().index());
  detail::visit_device_dtype(x.dtype(), [&](auto xt) {
    using T = typename decltype(xt)::type;
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      softmax_typed<T>(out, x, dim, log);
    } else {
      throw DTypeError(ember::detail::str_cat("[softmax] expected a floating tensor, got ",
                                              x.dtype()));
    }
  });
}

}  // namespace ember::cuda
