// CPU kernels of the convolution family: im2col / col2im (the sliding-window copy behind unfold,
// fold and every convolution), max pooling over window tables (max_pool2d, adaptive_max_pool2d)
// and the direct depthwise convolution (one filter per plane, accumulated tap by tap).
//
// Shapes: x is (P, H, W) with P = N*C planes; cols is (P, kh*kw, L), L = OH*OW, the row
// i*kw + j of plane p holding kernel tap (i, j) at every output position. Planes are independent,
// so every kernel runs its planes in parallel (parallel_for), each plane writing only its own
// output: results do not depend on the thread count.
//
// im2col walks (tap, oh) rows: the range of ow whose input column falls inside the plane is
// solved once per tap, so the inner loop is a bounds-free strided copy; rows outside the plane
// and the two edge runs are zero fills. col2im walks the same rows and accumulates in compute_t
// (float for Half/BFloat16, rounded once at the end) in a fixed order. The *_reference versions
// are the plain per-element loops the tests compare them with.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/dispatch.hpp"
#include "core/kernels.hpp"
#include "core/parallel.hpp"

namespace ember::cpu {
namespace {

/// Output positions along one dim: (size + 2 pad - dil (k - 1) - 1) / stride + 1 (>= 1 checked
/// by the op).
int64_t windows(int64_t size, int64_t k, int64_t dil, int64_t pad, int64_t stride) {
  return (size + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

/// [lo, hi) of output positions o in [0, n) with 0 <= o*stride + off < size.
void valid_range(int64_t n, int64_t stride, int64_t off, int64_t size, int64_t& lo, int64_t& hi) {
  // o*stride + off >= 0  <=>  o >= ceil(-off / stride);  o*stride + off < size  <=>
  // o <= floor((size - 1 - off) / stride).
  lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  const int64_t last = size - 1 - off;
  hi = last < 0 ? 0 : std::min(n, last / stride + 1);
  lo = std::min(lo, hi);
}

/// Planes per parallel chunk: about 32k elements of work per chunk.
int64_t plane_grain(int64_t work_per_plane) {
  return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(work_per_plane, 1));
}

}  // namespace

void im2col(const Tensor& cols, const Tensor& x, const Window2d& w) {
  const int64_t P = x.size(0), H = x.size(1), W = x.size(2);
  const int64_t OH = windows(H, w.kh, w.dh, w.ph, w.sh), OW = windows(W, w.kw, w.dw, w.pw, w.sw);
  const int64_t L = OH * OW, taps = w.kh * w.kw;
  const int64_t xp = x.stride(0), xh = x.stride(1), xw = x.stride(2);
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xd = x.data_ptr<T>();
    T* cd = cols.data_ptr<T>();
    const T zero = convert<T>(0.0f);
    parallel_for(P, plane_grain(taps * L), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const T* xplane = xd + p * xp;
        for (int64_t i = 0; i < w.kh; ++i) {
          for (int64_t j = 0; j < w.kw; ++j) {
            T* row = cd + (p * taps + i * w.kw + j) * L;  // (OH, OW)
            const int64_t col_off = j * w.dw - w.pw;
            int64_t lo = 0, hi = 0;
            valid_range(OW, w.sw, col_off, W, lo, hi);
            for (int64_t oh = 0; oh < OH; ++oh) {
              T* out = row + oh * OW;
              const int64_t ih = oh * w.sh - w.ph + i * w.dh;
              if (ih < 0 || ih >= H) {
                std::fill(out, out + OW, zero);
                continue;
              }
              std::fill(out, out + lo, zero);
              const T* src = xplane + ih * xh + (lo * w.sw + col_off) * xw;
              const int64_t step = w.sw * xw;
              if (step == 1) {  // stride 1 over a contiguous row: a plain copy
                std::copy(src, src + (hi - lo), out + lo);
              } else {
                for (int64_t ow = lo; ow < hi; ++ow, src += step) out[ow] = *src;
              }
              std::fill(out + hi, out + OW, zero);
            }
          }
        }
      }
    });
  });
}

void col2im(const Tensor& out, const Tensor& cols, const Window2d& w) {
  const int64_t P = out.size(0), H = out.size(1), W = out.size(2);
  const int64_t OH = windows(H, w.kh, w.dh, w.ph, w.sh), OW = windows(W, w.kw, w.dw, w.pw, w.sw);
  const int64_t cp = cols.stride(0), cr = cols.stride(1), cl = cols.stride(2);
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = std::conditional_t<std::is_same_v<T, bool>, int64_t, compute_t<T>>;
    const T* cd = cols.data_ptr<T>();
    T* od = out.data_ptr<T>();
    parallel_for(P, plane_grain(w.kh * w.kw * OH * OW), [&](int64_t p0, int64_t p1) {
      std::vector<C> acc(static_cast<size_t>(H * W));  // (H, W) accumulator of one plane
      for (int64_t p = p0; p < p1; ++p) {
        std::fill(acc.begin(), acc.end(), C(0));
        for (int64_t i = 0; i < w.kh; ++i) {
          for (int64_t j = 0; j < w.kw; ++j) {
            const T* row = cd + p * cp + (i * w.kw + j) * cr;  // (OH*OW,) with stride cl
            const int64_t col_off = j * w.dw - w.pw;
            int64_t lo = 0, hi = 0;
            valid_range(OW, w.sw, col_off, W, lo, hi);
            for (int64_t oh = 0; oh < OH; ++oh) {
              const int64_t ih = oh * w.sh - w.ph + i * w.dh;
              if (ih < 0 || ih >= H) continue;
              C* dst = acc.data() + ih * W + lo * w.sw + col_off;
              const T* src = row + (oh * OW + lo) * cl;
              if (w.sw == 1 && cl == 1) {  // contiguous on both sides: vectorisable
                for (int64_t k = 0; k < hi - lo; ++k) dst[k] += convert<C>(src[k]);
              } else {
                for (int64_t ow = lo; ow < hi; ++ow, dst += w.sw, src += cl)
                  *dst += convert<C>(*src);
              }
            }
          }
        }
        T* o = od + p * H * W;
        for (int64_t e = 0; e < H * W; ++e) o[e] = convert<T>(acc[static_cast<size_t>(e)]);
      }
    });
  });
}

void max_pool2d(const Tensor& values, const Tensor& indices, const Tensor& x, const Tensor& rows,
                const Tensor& cols, int64_t dh, int64_t dw) {
  const int64_t C = x.size(1), W = x.size(3), P = x.size(0) * C;
  const int64_t OH = rows.size(0), OW = cols.size(0);
  const int64_t xn = x.stride(0), xc = x.stride(1), xh = x.stride(2), xw = x.stride(3);
  const int64_t vn = values.stride(0), vc = values.stride(1), vh = values.stride(2),
                vw = values.stride(3);
  const int64_t* rt = rows.data_ptr<int64_t>();  // (OH, 2) [begin, end)
  const int64_t* ct = cols.data_ptr<int64_t>();  // (OW, 2)
  int64_t* id = indices.data_ptr<int64_t>();
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      using Cm = compute_t<T>;
      const T* xd = x.data_ptr<T>();
      T* vd = values.data_ptr<T>();
      parallel_for(P, plane_grain(OH * OW * 4), [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t n = p / C, c = p - n * C;
          const T* plane = xd + n * xn + c * xc;
          for (int64_t oh = 0; oh < OH; ++oh) {
            const int64_t h0 = rt[2 * oh], h1 = rt[2 * oh + 1];
            for (int64_t ow = 0; ow < OW; ++ow) {
              const int64_t w0 = ct[2 * ow], w1 = ct[2 * ow + 1];
              Cm best = -std::numeric_limits<Cm>::infinity();
              int64_t best_index = h0 * W + w0;
              for (int64_t ih = h0; ih < h1; ih += dh) {
                for (int64_t iw = w0; iw < w1; iw += dw) {
                  const Cm v = convert<Cm>(plane[ih * xh + iw * xw]);
                  if (v > best || std::isnan(v)) {
                    best = v;
                    best_index = ih * W + iw;
                  }
                }
              }
              const int64_t o = n * vn + c * vc + oh * vh + ow * vw;
              vd[o] = convert<T>(best);
              id[o] = best_index;
            }
          }
        }
      });
    } else {
      throw DTypeError("[max_pool2d] expected a floating tensor");
    }
  });
}

void depthwise_conv2d(const Tensor& out, const Tensor& x, const Tensor& weight, const Window2d& w) {
  const int64_t P = x.size(0), H = x.size(1), W = x.size(2), C = weight.size(0);
  const int64_t OH = out.size(1), OW = out.size(2);
  const int64_t xp = x.stride(0), xh = x.stride(1), xw = x.stride(2);
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      using Acc = compute_t<T>;
      const T* xd = x.data_ptr<T>();
      const T* wd = weight.data_ptr<T>();  // (C, kh*kw)
      T* od = out.data_ptr<T>();
      parallel_for(P, plane_grain(w.kh * w.kw * OH * OW), [&](int64_t p0, int64_t p1) {
        std::vector<Acc> acc(static_cast<size_t>(OH * OW));  // (OH, OW) of one plane
        for (int64_t p = p0; p < p1; ++p) {
          std::fill(acc.begin(), acc.end(), Acc(0));
          const T* plane = xd + p * xp;
          const T* filter = wd + (p % C) * w.kh * w.kw;
          for (int64_t i = 0; i < w.kh; ++i) {
            for (int64_t j = 0; j < w.kw; ++j) {
              const Acc wv = convert<Acc>(filter[i * w.kw + j]);
              const int64_t col_off = j * w.dw - w.pw;
              int64_t lo = 0, hi = 0;
              valid_range(OW, w.sw, col_off, W, lo, hi);
              for (int64_t oh = 0; oh < OH; ++oh) {
                const int64_t ih = oh * w.sh - w.ph + i * w.dh;
                if (ih < 0 || ih >= H) continue;
                Acc* dst = acc.data() + oh * OW + lo;
                const T* src = plane + ih * xh + (lo * w.sw + col_off) * xw;
                const int64_t step = w.sw * xw, n = hi - lo;
                if (step == 1) {  // contiguous row: vectorisable
                  for (int64_t k = 0; k < n; ++k) dst[k] += wv * convert<Acc>(src[k]);
                } else {
                  for (int64_t k = 0; k < n; ++k) dst[k] += wv * convert<Acc>(src[k * step]);
                }
              }
            }
          }
          T* o = od + p * OH * OW;
          for (int64_t e = 0; e < OH * OW; ++e) o[e] = convert<T>(acc[static_cast<size_t>(e)]);
        }
      });
    } else {
      throw DTypeError("[depthwise_conv2d] expected a floating tensor");
    }
  });
}

// ---- references ----

void im2col_reference(const Tensor& cols, const Tensor& x, const Window2d& w) {
  const int64_t P = x.size(0), H = x.size(1), W = x.size(2);
  const int64_t OH = windows(H, w.kh, w.dh, w.ph, w.sh), OW = windows(W, w.kw, w.dw, w.pw, w.sw);
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xd = x.data_ptr<T>();
    T* cd = cols.data_ptr<T>();
    const T zero = convert<T>(0.0f);
    for (int64_t p = 0; p < P; ++p)
      for (int64_t r = 0; r < w.kh * w.kw; ++r)
        for (int64_t l = 0; l < OH * OW; ++l) {
          const int64_t ih = (l / OW) * w.sh - w.ph + (r / w.kw) * w.dh;
          const int64_t iw = (l % OW) * w.sw - w.pw + (r % w.kw) * w.dw;
          const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
          cd[(p * w.kh * w.kw + r) * OH * OW + l] =
              inside ? xd[p * x.stride(0) + ih * x.stride(1) + iw * x.stride(2)] : zero;
        }
  });
}

void col2im_reference(const Tensor& out, const Tensor& cols, const Window2d& w) {
  const int64_t P = out.size(0), H = out.size(1), W = out.size(2);
  const int64_t OH = windows(H, w.kh, w.dh, w.ph, w.sh), OW = windows(W, w.kw, w.dw, w.pw, w.sw);
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* cd = cols.data_ptr<T>();
    T* od = out.data_ptr<T>();
    std::vector<double> acc(static_cast<size_t>(P * H * W), 0.0);
    for (int64_t p = 0; p < P; ++p)
      for (int64_t r = 0; r < w.kh * w.kw; ++r)
        for (int64_t l = 0; l < OH * OW; ++l) {
          const int64_t ih = (l / OW) * w.sh - w.ph + (r / w.kw) * w.dh;
          const int64_t iw = (l % OW) * w.sw - w.pw + (r % w.kw) * w.dw;
          if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
          acc[static_cast<size_t>((p * H + ih) * W + iw)] +=
              convert<double>(cd[p * cols.stride(0) + r * cols.stride(1) + l * cols.stride(2)]);
        }
    for (int64_t e = 0; e < P * H * W; ++e) od[e] = convert<T>(acc[static_cast<size_t>(e)]);
  });
}

}  // namespace ember::cpu
