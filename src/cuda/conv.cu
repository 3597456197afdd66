// CUDA kernels of the convolution family, with the CPU kernels' semantics (src/core/cpu/conv.cpp):
// im2col / col2im (unfold and fold, behind conv2d and conv_transpose2d), max pooling over window
// tables (max_pool2d, adaptive_max_pool2d) and the direct depthwise convolution.
//
// Shapes: x (P, H, W) with P = N*C planes, any strides; cols (P, kh*kw, L) with L = OH*OW; the
// window geometry is kernels.hpp's Window2d. Every index is int64; no size limits beyond that.
//
// Design: each kernel runs one thread per (plane p, output position l) pair on a 2-D launch
// (positions along x in a warp-multiple block width, planes along y; grid-stride loops in both, so
// any size fits the grid limits), and that thread loops over the kh*kw taps in (i, j) order. The
// divisions that turn l into coordinates are paid once per tap loop.
//   im2col          (p, window l): writes its kh*kw column entries (coalesced along l).
//   col2im          (p, input pixel): a gather, the adjoint formulated so that no two threads
//                   write one element: it sums every cols element that reads its pixel, taps in
//                   (i, j) order -- exactly the order in which the CPU's scatter adds them -- in
//                   compute_t (float for float16/bfloat16, int64 for bool, wrapping integers).
//   max_pool2d      (p, window), x (N, C, H, W) any strides (channels-last: threads along the
//                   planes, so a warp reads one pixel's neighbouring channels): the CPU's scan,
//                   row-major; `>` keeps the first of equal maxima and a NaN always replaces the
//                   running best (so NaN wins).
//   depthwise       (p, output): taps in order from 0 in compute_t, each product and sum rounded
//                   separately (no fma contraction), as the CPU's ISO C++ build computes them.
// Determinism: every output element is written by one thread in a fixed order; no atomics. col2im,
// max_pool2d and depthwise_conv2d give the CPU's bits; im2col is a copy.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/int_math.hpp"
#include "core/kernels.hpp"
#include "cuda/loops.cuh"

namespace ember::cuda {
namespace {

using detail::compute_t;
using detail::convert;
using detail::kThreads;

// ---- the (plane, position) launch ----

/// Blocks in x times y at most: beyond this the grid-stride loops give threads several elements.
constexpr int64_t kMaxBlocks = int64_t{65535} * 8;

struct PlaneLaunch {
  dim3 grid, block;
};

/// Threads over (position, plane) for P planes of L positions: the block's x width is the warp
/// multiple covering L (at most kThreads), its y height fills the block with planes.
PlaneLaunch plane_launch(int64_t P, int64_t L) {
  const int64_t bx = std::min<int64_t>(kThreads, (L + 31) / 32 * 32);
  const int64_t by = kThreads / bx;
  const int64_t gx = std::min<int64_t>((L + bx - 1) / bx, kMaxBlocks);
  const int64_t gy =
      std::min<int64_t>({(P + by - 1) / by, int64_t{65535}, std::max<int64_t>(1, kMaxBlocks / gx)});
  return {dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)),
          dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by))};
}

/// Calls f(p, l) for every plane p < P and position l < L this thread owns.
template <class F>
__device__ __forceinline__ void for_each_plane_position(int64_t P, int64_t L, F f) {
  const int64_t l0 = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  const int64_t l_step = int64_t{gridDim.x} * blockDim.x;
  const int64_t p0 = blockIdx.y * int64_t{blockDim.y} + threadIdx.y;
  const int64_t p_step = int64_t{gridDim.y} * blockDim.y;
  for (int64_t p = p0; p < P; p += p_step)
    for (int64_t l = l0; l < L; l += l_step) f(p, l);
}

/// The sizes of a plane problem and x's element strides (P, H, W).
struct Planes {
  int64_t P, H, W, OH, OW;
  int64_t xp, xh, xw;
};

/// Window positions along one dim, as the CPU: (size + 2 pad - dil (k - 1) - 1) / stride + 1.
int64_t windows(int64_t size, int64_t k, int64_t dil, int64_t pad, int64_t stride) {
  return (size + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

Planes planes_of(const Tensor& x, int64_t OH, int64_t OW) {
  return Planes{x.size(0), x.size(1), x.size(2), OH, OW, x.stride(0), x.stride(1), x.stride(2)};
}

/// The window position o in [0, n) whose tap lands at `offset` = o * stride (offset = input
/// coordinate + padding - tap * dilation), or -1 when there is none.
__device__ __forceinline__ int64_t window_at(int64_t offset, int64_t stride, int64_t n) {
  if (offset < 0) return -1;
  int64_t o = offset;
  if (stride != 1) {
    if (offset % stride != 0) return -1;
    o = offset / stride;
  }
  return o < n ? o : -1;
}

// ---- im2col ----

template <class T>
__global__ void im2col_kernel(T* cols, const T* x, Planes g, Window2d w) {
  const int64_t L = g.OH * g.OW, taps = w.kh * w.kw;
  for_each_plane_position(g.P, L, [&](int64_t p, int64_t l) {
    const int64_t oh = l / g.OW, ow = l - oh * g.OW;
    const T* plane = x + p * g.xp;        // (H, W) with strides (xh, xw)
    T* column = cols + p * taps * L + l;  // tap r at column[r * L]
    for (int64_t i = 0; i < w.kh; ++i) {
      const int64_t ih = oh * w.sh - w.ph + i * w.dh;
      const bool row_inside = ih >= 0 && ih < g.H;
      for (int64_t j = 0; j < w.kw; ++j) {
        const int64_t iw = ow * w.sw - w.pw + j * w.dw;
        const bool inside = row_inside && iw >= 0 && iw < g.W;
        column[(i * w.kw + j) * L] = inside ? plane[ih * g.xh + iw * g.xw] : T{};  // T{}: +0
      }
    }
  });
}

template <class T>
void im2col_typed(const Tensor& cols, const Tensor& x, const Window2d& w) {
  const Planes g = planes_of(x, windows(x.size(1), w.kh, w.dh, w.ph, w.sh),
                             windows(x.size(2), w.kw, w.dw, w.pw, w.sw));
  const PlaneLaunch pl = plane_launch(g.P, g.OH * g.OW);
  im2col_kernel<T><<<pl.grid, pl.block, 0, detail::stream_of(cols)>>>(
      static_cast<T*>(cols.data_ptr()), static_cast<const T*>(x.data_ptr()), g, w);
  EMBER_CUDA_CHECK_LAUNCH();
}

// ---- col2im ----

/// col2im's accumulator: compute_t (float for the 16-bit floats), int64 for bool (as the CPU).
template <class T>
using col2im_acc_t = std::conditional_t<std::is_same_v<T, bool>, int64_t, compute_t<T>>;

/// acc + v, wrapping like two's complement for integers (the CPU's narrowing `+=`).
template <class A>
__device__ __forceinline__ A accumulate(A acc, A v) {
  if constexpr (std::is_integral_v<A>)
    return int_math::wrap_add(acc, v);
  else
    return acc + v;
}

/// out (P, H, W) contiguous; cols (P, kh*kw, OH*OW) with element strides (cp, cr, cl).
template <class T>
__global__ void col2im_kernel(T* out, const T* cols, Planes g, int64_t cp, int64_t cr, int64_t cl,
                              Window2d w) {
  using A = col2im_acc_t<T>;
  const int64_t HW = g.H * g.W;
  for_each_plane_position(g.P, HW, [&](int64_t p, int64_t e) {
    const int64_t ih = e / g.W, iw = e - ih * g.W;
    const T* plane = cols + p * cp;  // (kh*kw, OH*OW) with strides (cr, cl)
    A acc = A(0);
    for (int64_t i = 0; i < w.kh; ++i) {
      const int64_t oh = window_at(ih + w.ph - i * w.dh, w.sh, g.OH);
      if (oh < 0) continue;
      for (int64_t j = 0; j < w.kw; ++j) {
        const int64_t ow = window_at(iw + w.pw - j * w.dw, w.sw, g.OW);
        if (ow < 0) continue;
        acc = accumulate(acc, convert<A>(plane[(i * w.kw + j) * cr + (oh * g.OW + ow) * cl]));
      }
    }
    out[p * HW + e] = convert<T>(acc);
  });
}

template <class T>
void col2im_typed(const Tensor& out, const Tensor& cols, const Window2d& w) {
  // out is contiguous: only its sizes are used.
  const Planes g = planes_of(out, windows(out.size(1), w.kh, w.dh, w.ph, w.sh),
                             windows(out.size(2), w.kw, w.dw, w.pw, w.sw));
  const PlaneLaunch pl = plane_launch(g.P, g.H * g.W);
  col2im_kernel<T><<<pl.grid, pl.block, 0, detail::stream_of(out)>>>(
      static_cast<T*>(out.data_ptr()), static_cast<const T*>(cols.data_ptr()), g, cols.stride(0),
      cols.stride(1), cols.stride(2), w);
  EMBER_CUDA_CHECK_LAUNCH();
}

// ---- max_pool2d ----

/// The sizes and element strides of a max_pool2d problem: x (N, C, H, W), values and indices
/// (N, C, OH, OW) with one set of strides.
struct PoolDims {
  int64_t C, P, W, OH, OW;
  int64_t xn, xc, xh, xw;
  int64_t vn, vc, vh, vw;
};

/// rows (OH, 2), cols (OW, 2) the windows' [begin, end). Plane p = n C + c. channels_fast (a
/// channels-last x): threads along planes, so a warp reads neighbouring channels of one pixel
/// (consecutive addresses); else along positions, neighbouring pixels of one plane.
template <class T>
__global__ void max_pool2d_kernel(T* values, int64_t* indices, const T* x, const int64_t* rows,
                                  const int64_t* cols, PoolDims g, int64_t dh, int64_t dw,
                                  bool channels_fast) {
  using C = compute_t<T>;
  const int64_t L = g.OH * g.OW;
  const auto window = [&](int64_t p, int64_t l) {
    const int64_t n = p / g.C, c = p - n * g.C;
    const int64_t oh = l / g.OW, ow = l - oh * g.OW;
    const int64_t h0 = rows[2 * oh], h1 = rows[2 * oh + 1];
    const int64_t w0 = cols[2 * ow], w1 = cols[2 * ow + 1];
    const T* plane = x + n * g.xn + c * g.xc;
    C best = -std::numeric_limits<C>::infinity();
    int64_t best_index = h0 * g.W + w0;
    for (int64_t ih = h0; ih < h1; ih += dh) {
      for (int64_t iw = w0; iw < w1; iw += dw) {
        const C v = convert<C>(plane[ih * g.xh + iw * g.xw]);
        if (v > best || v != v) {  // v != v: NaN
          best = v;
          best_index = ih * g.W + iw;
        }
      }
    }
    const int64_t o = n * g.vn + c * g.vc + oh * g.vh + ow * g.vw;
    values[o] = convert<T>(best);
    indices[o] = best_index;
  };
  if (channels_fast)
    for_each_plane_position(L, g.P, [&](int64_t l, int64_t p) { window(p, l); });
  else
    for_each_plane_position(g.P, L, window);
}

template <class T>
void max_pool2d_typed(const Tensor& values, const Tensor& indices, const Tensor& x,
                      const Tensor& rows, const Tensor& cols, int64_t dh, int64_t dw) {
  const PoolDims g{x.size(1),       x.size(0) * x.size(1), x.size(3),        rows.size(0),
                   cols.size(0),    x.stride(0),           x.stride(1),      x.stride(2),
                   x.stride(3),     values.stride(0),      values.stride(1), values.stride(2),
                   values.stride(3)};
  const bool channels_fast = g.xc == 1 && g.C > 1;
  const int64_t L = g.OH * g.OW;
  const PlaneLaunch pl = channels_fast ? plane_launch(L, g.P) : plane_launch(g.P, L);
  max_pool2d_kernel<T><<<pl.grid, pl.block, 0, detail::stream_of(values)>>>(
      static_cast<T*>(values.data_ptr()), static_cast<int64_t*>(indices.data_ptr()),
      static_cast<const T*>(x.data_ptr()), static_cast<const int64_t*>(rows.data_ptr()),
      static_cast<const int64_t*>(cols.data_ptr()), g, dh, dw, channels_fast);
  EMBER_CUDA_CHECK_LAUNCH();
}

// ---- depthwise_conv2d ----

/// acc + a * b with the product and the sum each rounded (never contracted to an fma).
__device__ __forceinline__ float add_product(float acc, float a, float b) {
  return __fadd_rn(acc, __fmul_rn(a, b));
}
__device__ __forceinline__ double add_product(double acc, double a, double b) {
  return __dadd_rn(acc, __dmul_rn(a, b));
}

/// out (P, OH, OW) contiguous; weight (C, kh*kw) contiguous, plane p filtered by row p % C.
template <class T>
__global__ void depthwise_conv2d_kernel(T* out, const T* x, const T* weight, int64_t C, Planes g,
                                        Window2d w) {
  using A = compute_t<T>;
  const int64_t L = g.OH * g.OW, taps = w.kh * w.kw;
  for_each_plane_position(g.P, L, [&](int64_t p, int64_t l) {
    const int64_t oh = l / g.OW, ow = l - oh * g.OW;
    const T* plane = x + p * g.xp;
    const T* filter = weight + (p % C) * taps;
    A acc = A(0);
    for (int64_t i = 0; i < w.kh; ++i) {
      const int64_t ih = oh * w.sh - w.ph + i * w.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t j = 0; j < w.kw; ++j) {
        const int64_t iw = ow * w.sw - w.pw + j * w.dw;
        if (iw < 0 || iw >= g.W) continue;
        acc = add_product(acc, convert<A>(filter[i * w.kw + j]),
                          convert<A>(plane[ih * g.xh + iw * g.xw]));
      }
    }
    out[p * L + l] = convert<T>(acc);
  });
}

template <class T>
void depthwise_conv2d_typed(const Tensor& out, const Tensor& x, const Tensor& weight,
                            const Window2d& w) {
  const Planes g = planes_of(x, out.size(1), out.size(2));
  const PlaneLaunch pl = plane_launch(g.P, g.OH * g.OW);
  depthwise_conv2d_kernel<T><<<pl.grid, pl.block, 0, detail::stream_of(out)>>>(
      static_cast<T*>(out.data_ptr()), static_cast<const T*>(x.data_ptr()),
      static_cast<const T*>(weight.data_ptr()), weight.size(0), g, w);
  EMBER_CUDA_CHECK_LAUNCH();
}

template <class T>
inline constexpr bool is_floating_v = std::is_floating_point_v<compute_t<T>>;

}  // namespace

void im2col(const Tensor& cols, const Tensor& x, const Window2d& w) {
  if (cols.numel() == 0) return;
  detail::DeviceGuard guard(cols.device().index());
  detail::visit_device_dtype(
      x.dtype(), [&](auto tag) { im2col_typed<typename decltype(tag)::type>(cols, x, w); });
}

void col2im(const Tensor& out, const Tensor& cols, const Window2d& w) {
  if (out.numel() == 0) return;
  detail::DeviceGuard guard(out.device().index());
  detail::visit_device_dtype(
      out.dtype(), [&](auto tag) { col2im_typed<typename decltype(tag)::type>(out, cols, w); });
}

void max_pool2d(const Tensor& values, const Tensor& indices, const Tensor& x, const Tensor& rows,
                const Tensor& cols, int64_t dh, int64_t dw) {
  detail::visit_device_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (is_floating_v<T>) {
      if (values.numel() == 0) return;
      detail::DeviceGuard guard(values.device().index());
      max_pool2d_typed<T>(values, indices, x, rows, cols, dh, dw);
    } else {
      throw DTypeError("[max_pool2d] expected a floating tensor");
    }
  });
}

void depthwise_conv2d(const Tensor& out, const Tensor& x, const Tensor& weight, const Window2d& w) {
  detail::visit_device_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (is_floating_v<T>) {
      if (out.numel() == 0) return;
      detail::DeviceGuard guard(out.device().index());
      depthwise_conv2d_typed<T>(out, x, weight, w);
    } else {
      throw DTypeError("[depthwise_conv2d] expected a floating tensor");
    }
  });
}

}  // namespace ember::cuda
