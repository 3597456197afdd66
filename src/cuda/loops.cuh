// The CUDA elementwise machinery shared by the kernel families: Ember's dtypes as device types,
// the CPU's conversion rules, and map(): one grid-stride kernel over any strides (up to 16 dims
// of size > 1) that calls a device lambda per element. Private to src/cuda.
//
//   map<float, float>(out, [] __device__ (float x) { return x * 2.0f; }, x);
//
// Every tensor must have out's shape (inputs already broadcast: stride 0 where expanded). When all
// are dense (no broadcast) and 16-byte aligned, each thread moves 16 bytes of the widest type per
// step as vector loads and stores (map_vector_kernel). When out is dense and each input is dense or
// one row of C elements repeated over the leading dims (a bias: stride 0 over the rows; binary and
// ternary maps, and unary ones that ask for it: the copies that materialize expansions), a 2-d
// grid of (chunk column, row) threads (map_rows_kernel) does the same with a row pointer per
// input and no per-element index arithmetic, 16-byte chunks where C and the pointers allow.
// Otherwise one element per step, its offsets i * itemsize when all are contiguous, else from
// i's coordinates (one division per dim).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <type_traits>

#include "core/tensor_impl.hpp"
#include "cuda/common.cuh"
#include "ember/cuda/cuda.hpp"

namespace ember::cuda::detail {

// ---- dtypes on the device ----

/// float16 and bfloat16 as their 16 bits (the arithmetic goes through float).
struct HalfBits {
  uint16_t v;
};
struct BF16Bits {
  uint16_t v;
};

template <class T>
struct Tag {
  using type = T;
};

template <class F>
void visit_device_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::Bool: f(Tag<bool>{}); return;
    case DType::UInt8: f(Tag<uint8_t>{}); return;
    case DType::Int8: f(Tag<int8_t>{}); return;
    case DType::Int32: f(Tag<int32_t>{}); return;
    case DType::Int64: f(Tag<int64_t>{}); return;
    case DType::Float16: f(Tag<HalfBits>{}); return;
    case DType::BFloat16: f(Tag<BF16Bits>{}); return;
    case DType::Float32: f(Tag<float>{}); return;
    case DType::Float64: f(Tag<double>{}); return;
  }
  throw DTypeError(ember::detail::str_cat("[cuda] unknown dtype ", dt));
}

/// The DType of a device type (visit_device_dtype's inverse): dtype_of's, with the 16-bit floats
/// as their bits.
template <class T>
constexpr DType device_dtype() {
  if constexpr (std::is_same_v<T, HalfBits>)
    return DType::Float16;
  else if constexpr (std::is_same_v<T, BF16Bits>)
    return DType::BFloat16;
  else
    return dtype_of<T>::value;
}

/// Element-size dispatch for kernels that only move bits (gather, index_select, transposes):
/// f(Tag<uintN_t>) for sizes 1, 2, 4 and 8 bytes.
template <class F>
void visit_bits(size_t size, F&& f) {
  switch (size) {
    case 1: f(Tag<uint8_t>{}); return;
    case 2: f(Tag<uint16_t>{}); return;
    case 4: f(Tag<uint32_t>{}); return;
    case 8: f(Tag<uint64_t>{}); return;
  }
  throw DTypeError(ember::detail::str_cat("[cuda] unsupported element size ", size));
}

/// f(Tag<float>{}) or f(Tag<double>{}): the kernels written for float32 and float64 only; any
/// other dtype is a DTypeError naming op.
template <class F>
void visit_device_float(DType dt, const char* op, F&& f) {
  if (dt == DType::Float32) return f(Tag<float>{});
  if (dt == DType::Float64) return f(Tag<double>{});
  throw DTypeError(ember::detail::str_cat("[", op, "] expected float32 or float64, got ", dt));
}

/// f(Tag<Xs>{}) for the kernels that read float32/float64 as they are and the 16-bit floats
/// widened to float (Xs: float, double, HalfBits, BF16Bits; compute_t<Xs> the arithmetic's type);
/// any other dtype is a DTypeError naming op.
template <class F>
void visit_device_widened(DType dt, const char* op, F&& f) {
  if (dt == DType::Float16) return f(Tag<HalfBits>{});
  if (dt == DType::BFloat16) return f(Tag<BF16Bits>{});
  visit_device_float(dt, op, f);
}

template <class T>
inline constexpr bool is_reduced_v = std::is_same_v<T, HalfBits> || std::is_same_v<T, BF16Bits>;

/// The type arithmetic on T runs in: float for the 16-bit floats, T otherwise.
template <class T>
using compute_t = std::conditional_t<is_reduced_v<T>, float, T>;

/// v converted by the CPU's rules (core/dispatch.hpp's convert): 16-bit floats through float with
/// round to nearest even, bool is != 0, else static_cast.
template <class O, class I>
__device__ __forceinline__ O convert(I v) {
  if constexpr (std::is_same_v<O, I>) {
    return v;
  } else if constexpr (std::is_same_v<I, HalfBits>) {
    return convert<O>(__half2float(__ushort_as_half(v.v)));
  } else if constexpr (std::is_same_v<I, BF16Bits>) {
    return convert<O>(__bfloat162float(__ushort_as_bfloat16(v.v)));
  } else if constexpr (std::is_same_v<O, HalfBits>) {
    return HalfBits{__half_as_ushort(__float2half_rn(static_cast<float>(v)))};
  } else if constexpr (std::is_same_v<O, BF16Bits>) {
    return BF16Bits{__bfloat16_as_ushort(__float2bfloat16_rn(static_cast<float>(v)))};
  } else if constexpr (std::is_same_v<O, bool>) {
    return v != I(0);
  } else if constexpr (std::is_floating_point_v<I> && std::is_integral_v<O> &&
                       sizeof(O) < sizeof(int64_t)) {
    // Through int64, then wrapped, as the CPU's convert (a direct cvt saturates on the GPU).
    return static_cast<O>(static_cast<int64_t>(v));
  } else {
    return static_cast<O>(v);
  }
}

// ---- map ----

constexpr int kMaxDims = 16;
constexpr int kThreads = 256;

/// Sizes of out's dims of size > 1, and each tensor's byte strides along them.
template <int NT>
struct Offsets {
  int ndim = 0;
  bool contiguous = true;  // all tensors contiguous: offset = i * itemsize
  int64_t itemsize[NT];
  int64_t sizes[kMaxDims];
  int64_t strides[NT][kMaxDims];
};

template <int NT>
Offsets<NT> make_offsets(const std::array<const Tensor*, NT>& ts, const char* op) {
  Offsets<NT> l;
  const Tensor& out = *ts[0];
  for (int k = 0; k < NT; ++k) {
    l.itemsize[k] = static_cast<int64_t>(ts[static_cast<size_t>(k)]->element_size());
    l.contiguous = l.contiguous && ts[static_cast<size_t>(k)]->is_contiguous();
  }
  for (int64_t d = 0; d < out.dim(); ++d) {
    if (out.size(d) == 1) continue;
    EMBER_CHECK(l.ndim < kMaxDims, ShapeError, "[", op, "] CUDA kernels take at most ", kMaxDims,
                " dims of size > 1, got ", out.sizes());
    l.sizes[l.ndim] = out.size(d);
    for (int k = 0; k < NT; ++k)
      l.strides[k][l.ndim] = ts[static_cast<size_t>(k)]->stride(d) * l.itemsize[k];
    ++l.ndim;
  }
  return l;
}

template <int NT>
struct Pointers {
  char* p[NT];
};

template <int NT, class F>
__global__ void map_kernel(Pointers<NT> base, Offsets<NT> l, int64_t n, F f) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    Pointers<NT> at;
    if (l.contiguous) {
#pragma unroll
      for (int k = 0; k < NT; ++k) at.p[k] = base.p[k] + i * l.itemsize[k];
    } else {
      int64_t off[NT] = {};
      int64_t r = i;
      for (int d = l.ndim - 1; d >= 0; --d) {
        const int64_t idx = r % l.sizes[d];
        r /= l.sizes[d];
#pragma unroll
        for (int k = 0; k < NT; ++k) off[k] += idx * l.strides[k][d];
      }
#pragma unroll
      for (int k = 0; k < NT; ++k) at.p[k] = base.p[k] + off[k];
    }
    f(at);
  }
}

inline unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 * 8 ? b : 65535 * 8);  // grid-stride beyond
}

/// The calling thread's current stream on t's device.
inline cudaStream_t stream_of(const Tensor& t) {
  return current_stream_handle(t.device().index());
}

/// Throws DeviceError unless every tensor is on out's device: a kernel given a CPU address fails
/// on a GPU (and under the emulator, whose device memory is host memory, would silently work).
/// Host operands reach the kernels only by value (Single, below).
template <class... Ts>
void check_on_device(const char* op, const Tensor& out, const Ts&... in) {
  const bool same = ((in.device() == out.device()) && ...);
  EMBER_CHECK(same, DeviceError, "[", op, "] a kernel operand is not on ", out.device(), " (out ",
              out.sizes(), ")");
}

/// Runs g(pointers) for every element of out (ts[0]) on out's device and current stream.
template <int NT, class G>
void launch_map(const std::array<const Tensor*, NT>& ts, const char* op, G g) {
  const Tensor& out = *ts[0];
  for (const Tensor* t : ts) check_on_device(op, out, *t);
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index());
  const Offsets<NT> l = make_offsets<NT>(ts, op);
  Pointers<NT> base;
  for (int k = 0; k < NT; ++k)
    base.p[k] = static_cast<char*>(ts[static_cast<size_t>(k)]->data_ptr());
  map_kernel<NT><<<blocks_for(n), kThreads, 0, stream_of(out)>>>(base, l, n, g);
  EMBER_CUDA_CHECK_LAUNCH();
}

// ---- the vector path: every tensor dense and 16-byte friendly ----

/// V consecutive elements of T, aligned so one load or store moves them all (16 bytes at most).
template <class T, int V>
struct alignas(sizeof(T) * V) Chunk {
  T v[V];
};

/// Elements of a row at p (n of them, p aligned to sizeof(T)) before the first 16-byte boundary:
/// the scalar head of a row walked in 16-byte chunks (at most n).
template <class T>
__host__ __device__ __forceinline__ int64_t vector_head(const T* p, int64_t n) {
  const int64_t h = static_cast<int64_t>((16 - (reinterpret_cast<uintptr_t>(p) & 15)) & 15) /
                    static_cast<int64_t>(sizeof(T));
  return h < n ? h : n;
}

/// Elements per thread step of the vector path: 16 bytes of the widest type.
template <class O, class... In>
constexpr int vector_width() {
  size_t widest = sizeof(O);
  ((widest = sizeof(In) > widest ? sizeof(In) : widest), ...);
  return static_cast<int>(16 / widest);
}

/// out[i] = f(in[i]...) over n dense elements: thread steps of V elements moved as Chunks
/// (vector loads and stores), then the n % V tail one element at a time. No __restrict__: in-place
/// ops pass out as an input (each chunk is read, then written, by one thread).
template <int V, class O, class F, class... In>
__global__ void map_vector_kernel(O* out, int64_t n, F f, const In*... in) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  const int64_t first = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  const int64_t chunks = n / V;
  for (int64_t c = first; c < chunks; c += stride) {
    Chunk<O, V> o;
    [&](const auto... chunk) {  // by value: one vector load each
#pragma unroll
      for (int j = 0; j < V; ++j) o.v[j] = f(chunk.v[j]...);
    }(reinterpret_cast<const Chunk<In, V>*>(in)[c]...);
    reinterpret_cast<Chunk<O, V>*>(out)[c] = o;
  }
  for (int64_t i = chunks * V + first; i < n; i += stride) out[i] = f(in[i]...);
}

/// True when t has out's shape and strides (size-1 dims aside): both walk their memory in the
/// same order.
inline bool same_layout(const Tensor& t, const Tensor& out) {
  if (t.sizes() != out.sizes()) return false;
  for (int64_t d = 0; d < out.dim(); ++d)
    if (out.size(d) != 1 && t.stride(d) != out.stride(d)) return false;
  return true;
}

/// True when out is dense (contiguous, or a permutation of it such as channels-last), every input
/// is laid out as out (no broadcast), and their data start on `align`-byte boundaries: the
/// vector path applies, each tensor read as n consecutive elements in memory order.
template <class... Ts>
bool vector_path(int64_t align, const Tensor& out, const Ts&... in) {
  auto fits = [&](const Tensor& t) {
    return same_layout(t, out) &&
           reinterpret_cast<uintptr_t>(t.data_ptr()) % static_cast<uintptr_t>(align) == 0;
  };
  return fits(out) && (fits(in) && ...) && is_dense(out);
}

/// t's dims permuted by order, as a view without autograd: map_rows takes its operands in out's
/// memory order.
inline Tensor permuted(const Tensor& t, const std::vector<int64_t>& order) {
  std::vector<int64_t> sizes, strides;
  for (int64_t d : order) {
    sizes.push_back(t.size(d));
    strides.push_back(t.stride(d));
  }
  return make_view(t, std::move(sizes), std::move(strides), t.storage_offset());
}

/// The vector path of map: out[i] = f(in[i]...), all dense; false (nothing launched) when it does
/// not apply or the width would be 1.
template <class O, class... In, class F, class... Ts>
bool map_vector(const Tensor& out, F f, const Ts&... in) {
  constexpr int V = vector_width<O, In...>();
  if constexpr (V < 2) {
    return false;
  } else {
    // Every pointer aligned to the largest chunk (fresh allocations are 512-byte aligned).
    size_t align = sizeof(O) * V;
    ((align = sizeof(In) * V > align ? sizeof(In) * V : align), ...);
    if (!vector_path(static_cast<int64_t>(align), out, in...)) return false;
    check_on_device("map", out, in...);
    const int64_t n = out.numel();
    if (n == 0) return true;
    DeviceGuard guard(out.device().index());
    map_vector_kernel<V, O, F, In...>
        <<<blocks_for((n + V - 1) / V), kThreads, 0, stream_of(out)>>>(
            static_cast<O*>(out.data_ptr()), n, f, static_cast<const In*>(in.data_ptr())...);
    EMBER_CUDA_CHECK_LAUNCH();
    return true;
  }
}

// ---- the row path: dense out, each input dense or one row repeated over out's leading dims ----

/// C when t (with out's shape) is a row of C contiguous elements repeated over out's leading dims
/// (stride 0 there; a (C) bias expanded to (R, C)); t.numel() when t is dense; 0 otherwise.
inline int64_t repeated_row(const Tensor& t, const Tensor& out) {
  if (t.sizes() != out.sizes()) return 0;
  int64_t d = out.dim() - 1, C = 1;
  for (; d >= 0; --d) {  // the inner block: strides of a contiguous tensor
    if (out.size(d) == 1) continue;
    if (t.stride(d) != C) break;
    C *= out.size(d);
  }
  for (; d >= 0; --d)  // the outer dims: stride 0
    if (out.size(d) != 1 && t.stride(d) != 0) return 0;
  return C;
}

/// An input of the row path: its data, and the elements between consecutive rows: C (dense) or
/// 0 (a repeated row).
template <class T>
struct RowPtr {
  const T* p;
  int64_t step;
};

/// out (R, C / V chunks of V) = f(in...) with block (bx, by): thread x takes chunk column
/// blockIdx.x * bx + x of rows blockIdx.y * by + y, + gridDim.y * by, ...; input k's row r starts
/// at in_k.p + r * in_k.step. No index arithmetic beyond that and no division.
template <int V, class O, class F, class... In>
__global__ void map_rows_kernel(O* out, int64_t R, int64_t chunks_per_row, F f, RowPtr<In>... in) {
  const int64_t cc = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (cc >= chunks_per_row) return;
  const int64_t C = chunks_per_row * V;
  for (int64_t r = blockIdx.y * int64_t{blockDim.y} + threadIdx.y; r < R;
       r += int64_t{gridDim.y} * blockDim.y) {
    Chunk<O, V> o;
    [&](const auto... chunk) {  // by value: one vector load each
#pragma unroll
      for (int j = 0; j < V; ++j) o.v[j] = f(chunk.v[j]...);
    }(reinterpret_cast<const Chunk<In, V>*>(in.p + r * in.step)[cc]...);
    reinterpret_cast<Chunk<O, V>*>(out + r * C)[cc] = o;
  }
}

/// The row path of map: out contiguous, every input dense or the same row of C > 1 elements
/// repeated (at least one of them), so out is (n / C, C) and no element needs its coordinates.
/// V = 16 bytes of the widest type when C % V == 0 and every pointer is chunk-aligned, else 1.
/// False (nothing launched) when it does not apply.
template <class O, class... In, class F, class... Ts>
bool map_rows(const Tensor& out, F f, const Ts&... in) {
  constexpr int NI = sizeof...(In);
  if constexpr (NI == 0) {
    return false;
  } else {
    const int64_t n = out.numel();
    if (n <= 1) return false;
    if (!out.is_contiguous()) {  // channels-last: a (C) bias is a row of NHWC memory
      const std::vector<int64_t> order = memory_order(out);
      return !order.empty() && map_rows<O, In...>(permuted(out, order), f, permuted(in, order)...);
    }
    const int64_t rows_of[NI] = {repeated_row(in, out)...};
    int64_t C = 0;
    for (int k = 0; k < NI; ++k) {
      if (rows_of[k] == 0 || rows_of[k] == 1) return false;  // strided, or a broadcast scalar
      if (rows_of[k] == n) continue;                         // dense
      if (C != 0 && rows_of[k] != C) return false;           // two different row lengths
      C = rows_of[k];
    }
    if (C == 0) return false;  // all dense: the vector path (or the general one, misaligned)
    check_on_device("map", out, in...);
    const int64_t R = n / C;
    constexpr int VW = vector_width<O, In...>();
    size_t align = sizeof(O) * VW;
    ((align = sizeof(In) * VW > align ? sizeof(In) * VW : align), ...);
    auto aligned = [&](const Tensor& t) {
      return reinterpret_cast<uintptr_t>(t.data_ptr()) % align == 0;
    };
    const bool vec = VW > 1 && C % VW == 0 && aligned(out) && (aligned(in) && ...);
    DeviceGuard guard(out.device().index());
    auto launch = [&](auto v_tag) {
      constexpr int V = decltype(v_tag)::value;
      const int64_t cpr = C / V;
      int bx = 1;
      while (bx < kThreads && bx < cpr) bx *= 2;
      const int by = kThreads / bx;
      const int64_t gx = (cpr + bx - 1) / bx, gy = (R + by - 1) / by;
      const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy < 65535 ? gy : 65535));
      map_rows_kernel<V, O><<<grid, dim3(bx, by), 0, stream_of(out)>>>(
          static_cast<O*>(out.data_ptr()), R, cpr, f,
          RowPtr<In>{static_cast<const In*>(in.data_ptr()),
                     repeated_row(in, out) == n ? C : 0}...);
      EMBER_CUDA_CHECK_LAUNCH();
    };
    if (vec)
      launch(std::integral_constant<int, (VW > 1 ? VW : 1)>{});
    else
      launch(std::integral_constant<int, 1>{});
    return true;
  }
}

/// out[i] = f() (types: out's device type O).
template <class O, class F>
void map(const Tensor& out, F f) {
  if (map_vector<O>(out, f)) return;
  launch_map<1>({&out}, "map",
                [f] __device__(Pointers<1> p) { *reinterpret_cast<O*>(p.p[0]) = f(); });
}

/// out[i] = f(a[i]). The row path (a an expanded row) only when kRowPath: copies materialize
/// expanded tensors, but a unary op on one is rare, and each path is one more kernel per op and
/// dtype to compile (the general path serves it).
template <class O, class A, bool kRowPath = false, class F>
void map(const Tensor& out, F f, const Tensor& a) {
  if (map_vector<O, A>(out, f, a)) return;
  if constexpr (kRowPath)
    if (map_rows<O, A>(out, f, a)) return;
  launch_map<2>({&out, &a}, "map", [f] __device__(Pointers<2> p) {
    *reinterpret_cast<O*>(p.p[0]) = f(*reinterpret_cast<const A*>(p.p[1]));
  });
}

/// out[i] = f(a[i], b[i]).
template <class O, class A, class B, class F>
void map(const Tensor& out, F f, const Tensor& a, const Tensor& b) {
  if (map_vector<O, A, B>(out, f, a, b) || map_rows<O, A, B>(out, f, a, b)) return;
  launch_map<3>({&out, &a, &b}, "map", [f] __device__(Pointers<3> p) {
    *reinterpret_cast<O*>(p.p[0]) =
        f(*reinterpret_cast<const A*>(p.p[1]), *reinterpret_cast<const B*>(p.p[2]));
  });
}

/// out[i] = f(a[i], b[i], c[i]).
template <class O, class A, class B, class C, class F>
void map(const Tensor& out, F f, const Tensor& a, const Tensor& b, const Tensor& c) {
  if (map_vector<O, A, B, C>(out, f, a, b, c) || map_rows<O, A, B, C>(out, f, a, b, c)) return;
  launch_map<4>({&out, &a, &b, &c}, "map", [f] __device__(Pointers<4> p) {
    *reinterpret_cast<O*>(p.p[0]) =
        f(*reinterpret_cast<const A*>(p.p[1]), *reinterpret_cast<const B*>(p.p[2]),
          *reinterpret_cast<const C*>(p.p[3]));
  });
}

// ---- operands of one element ----

/// An input whose one element every output element reads, passed to the kernel in its arguments:
/// either the value itself, read on the host from a CPU 0-d tensor (a Scalar argument of the op:
/// `x * 0.5` is one launch, as PyTorch's CPU scalars, with no fill, cast or copy to the device
/// before it), or the device address of a tensor broadcast from one element (a 0-d device
/// tensor expanded: every thread loads that address, so the others take the vector path).
template <class T>
struct Single {
  const T* p;  // the device element, or nullptr: v
  T v;
  __device__ __forceinline__ T get() const { return p != nullptr ? *p : v; }
};

/// True when t (expanded to out's shape) is read as a Single: a CPU tensor (the ops pass one only
/// as a 0-d operand), or one device element under stride-0 dims while out has more than one.
inline bool is_single(const Tensor& t, const Tensor& out) {
  if (t.is_cpu()) return true;
  if (out.numel() <= 1) return false;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.size(d) != 1 && t.stride(d) != 0) return false;
  return true;
}

/// t as a Single of device type T (t's dtype must be T's).
template <class T>
Single<T> single_of(const Tensor& t) {
  if (t.is_cpu()) return {nullptr, *static_cast<const T*>(t.data_ptr())};
  return {static_cast<const T*>(t.data_ptr()), T{}};
}

/// t on out's device: a CPU operand (a 0-d tensor, expanded) is copied there as one element,
/// which the copy's pinned upload ring queues without a wait (copy.cu), and expanded as t was;
/// other tensors are t.
inline Tensor on_out_device(const Tensor& t, const Tensor& out) {
  if (!t.is_cpu()) return t;
  return t.as_strided({}, {}, t.storage_offset()).to(out.device()).expand(t.sizes());
}

/// out[i] = f(a[i], b[i]) where b may be a Single (is_single; `x * 0.5`, `x < 0`, a clipping
/// coefficient): when a is dense, a one-input vector map over it (one launch, 16-byte accesses,
/// the Single's value in the arguments). Otherwise map's other paths, with a host operand first
/// copied to the device. Only that one form is compiled per op beyond map's: a Single a
/// (`1 - x`, `2 / x`) and a strided a are rare next to a Single b, and each form is one more
/// kernel per op and dtype (elementwise.cu's compile time).
template <class O, class A, class B, class F>
void map_binary(const Tensor& out, F f, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(!(a.is_cpu() && b.is_cpu()), DeviceError, "[map] two host operands for a kernel on ",
              out.device());
  if (!a.is_cpu() && is_single(b, out)) {
    const Single<B> s = single_of<B>(b);
    if (map_vector<O, A>(
            out, [f, s] __device__(A x) { return f(x, s.get()); }, a))
      return;
  }
  map<O, A, B>(out, f, on_out_device(a, out), on_out_device(b, out));
}

}  // namespace ember::cuda::detail
