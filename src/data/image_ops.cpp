// Pixel kernels of the image transforms: plain loops over strided images, one output allocation
// per call. Arithmetic follows torchvision's tensor path: uint8 images are processed in float32
// (float64 images in float64) and converted back once.
#include "data/image_ops.hpp"

// One rounding for every input stride: without this GCC contracts a * b + c into fused
// multiply-adds differently in the stride-1 (vectorized) and the general copy of a loop, so a
// non-contiguous image would resample to slightly different values.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "ember/error.hpp"
#include "ember/ops.hpp"

namespace ember::data::image {

namespace {

// The arithmetic type of an image dtype: float for uint8 and float32, double for float64.
template <class T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

// Converts an arithmetic result back: uint8 rounds half to even (torch.round) and clamps.
template <class T, class A>
inline T store(A v) {
  if constexpr (std::is_same_v<T, uint8_t>) {
    v = std::nearbyint(v);
    return static_cast<uint8_t>(v < A(0) ? A(0) : (v > A(255) ? A(255) : v));
  } else {
    return static_cast<T>(v);
  }
}

template <class T>
inline T fill_value(double fill) {
  if constexpr (std::is_same_v<T, uint8_t>) {
    return store<uint8_t, double>(fill);
  } else {
    return static_cast<T>(fill);
  }
}

}  // namespace

void throw_image_dtype(DType d, const char* op) {
  throw DTypeError(
      detail::str_cat("[", op, "] expected a uint8, float32 or float64 image, got ", d));
}

Layout image_layout(const Tensor& x, const char* op) {
  EMBER_CHECK(x.defined(), ValueError, "[", op, "] the image tensor is undefined");
  EMBER_CHECK(x.is_cpu(), DeviceError, "[", op, "] expected a CPU image, got one on ", x.device());
  const DType d = x.dtype();
  EMBER_CHECK(d == kUInt8 || d == kFloat32 || d == kFloat64, DTypeError, "[", op,
              "] expected a uint8 (HWC or HW) or float32/float64 (CHW or HW) image, got ", d,
              " of shape ", x.sizes());
  EMBER_CHECK(x.dim() == 2 || x.dim() == 3, ShapeError, "[", op,
              "] expected an image of shape (H, W, C) or (H, W) for uint8, (C, H, W) or (H, W) "
              "for floats, got ",
              d, " of shape ", x.sizes());
  Layout l{};
  l.dtype = d;
  l.has_channel_dim = x.dim() == 3;
  l.channels_last = l.has_channel_dim && d == kUInt8;
  if (!l.has_channel_dim) {
    l.H = x.size(0), l.W = x.size(1), l.C = 1;
    l.sh = x.stride(0), l.sw = x.stride(1), l.sc = 0;
  } else if (l.channels_last) {
    l.H = x.size(0), l.W = x.size(1), l.C = x.size(2);
    l.sh = x.stride(0), l.sw = x.stride(1), l.sc = x.stride(2);
  } else {
    l.C = x.size(0), l.H = x.size(1), l.W = x.size(2);
    l.sc = x.stride(0), l.sh = x.stride(1), l.sw = x.stride(2);
  }
  EMBER_CHECK(l.H > 0 && l.W > 0 && l.C > 0, ShapeError, "[", op,
              "] expected a non-empty image, got shape ", x.sizes());
  return l;
}

Tensor new_image(const Layout& like, int64_t H, int64_t W, int64_t C) {
  if (!like.has_channel_dim) return empty({H, W}, like.dtype);
  if (like.channels_last) return empty({H, W, C}, like.dtype);
  return empty({C, H, W}, like.dtype);
}

// ---- index maps ----

int64_t pad_index(int64_t x, int64_t n, int64_t before, PadMode mode) {
  int64_t i = x - before;
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::Constant:
      return -1;
    case PadMode::Edge:
      return i < 0 ? 0 : n - 1;
    case PadMode::Reflect: {  // ... 2 1 | 0 1 2 ... n-1 | n-2 ...: period 2(n - 1)
      if (n == 1) return 0;
      const int64_t p = 2 * (n - 1);
      i = ((i % p) + p) % p;
      return i < n ? i : p - i;
    }
    case PadMode::Symmetric: {  // ... 1 0 | 0 1 ... n-1 | n-1 n-2 ...: period 2n
      const int64_t p = 2 * n;
      i = ((i % p) + p) % p;
      return i < n ? i : p - 1 - i;
    }
  }
  return -1;
}

namespace {

template <class T>
void remap_kernel(ImageRef<T> out, ImageRef<const T> in, const std::vector<int64_t>& rows,
                  const std::vector<int64_t>& cols, T fill, bool channels_last) {
  const int64_t H = out.H, W = out.W, C = out.C;
  if (channels_last) {
    for (int64_t y = 0; y < H; ++y) {
      const int64_t sy = rows[static_cast<size_t>(y)];
      T* o = out.data + y * out.sh;
      for (int64_t x = 0; x < W; ++x, o += C) {
        const int64_t sx = cols[static_cast<size_t>(x)];
        if (sy < 0 || sx < 0) {
          for (int64_t c = 0; c < C; ++c) o[c] = fill;
        } else {
          const T* p = in.data + sy * in.sh + sx * in.sw;
          for (int64_t c = 0; c < C; ++c) o[c] = p[c * in.sc];
        }
      }
    }
    return;
  }
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t y = 0; y < H; ++y) {
      const int64_t sy = rows[static_cast<size_t>(y)];
      T* o = out.data + c * out.sc + y * out.sh;
      if (sy < 0) {
        std::fill(o, o + W, fill);
        continue;
      }
      const T* p = in.data + c * in.sc + sy * in.sh;
      for (int64_t x = 0; x < W; ++x) {
        const int64_t sx = cols[static_cast<size_t>(x)];
        o[x] = sx < 0 ? fill : p[sx * in.sw];
      }
    }
  }
}

}  // namespace

void remap(const Tensor& out, const Layout& out_layout, const Tensor& in, const Layout& in_layout,
           const std::vector<int64_t>& rows, const std::vector<int64_t>& cols, double fill) {
  visit_image_dtype(in_layout.dtype, "remap", [&](auto tag) {
    using T = decltype(tag);
    remap_kernel<T>(output_ref<T>(out, out_layout), image_ref<T>(in, in_layout), rows, cols,
                    fill_value<T>(fill), out_layout.channels_last);
  });
}

// ---- resampling ----

namespace {

// One output coordinate of a separable filter: taps start at `first`, weights w[0..n).
template <class A>
struct Taps {
  int64_t first = 0, n = 0;
  std::vector<A> w;
};

// F.interpolate(mode="nearest"): floor(dst * in/out) in float, with PyTorch's exact shortcuts.
std::vector<int64_t> nearest_indices(int64_t in, int64_t out) {
  std::vector<int64_t> idx(static_cast<size_t>(out));
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t i = 0; i < out; ++i) {
    int64_t s;
    if (out == in) {
      s = i;
    } else if (out == 2 * in) {
      s = i >> 1;
    } else {
      s = std::min(static_cast<int64_t>(std::floor(static_cast<float>(i) * scale)), in - 1);
    }
    idx[static_cast<size_t>(i)] = s;
  }
  return idx;
}

// Linear taps with half-pixel centers (align_corners=False): src = scale * (dst + 0.5) - 0.5,
// clamped at 0; at the last pixel both taps are that pixel (PyTorch's zero index offset).
template <class A>
std::vector<Taps<A>> linear_taps(int64_t in, int64_t out) {
  std::vector<Taps<A>> taps(static_cast<size_t>(out));
  const A scale = static_cast<A>(in) / static_cast<A>(out);
  for (int64_t i = 0; i < out; ++i) {
    A src = scale * (static_cast<A>(i) + A(0.5)) - A(0.5);
    if (src < A(0)) src = A(0);
    const int64_t i0 = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
    const A l1 = std::min(std::max(src - static_cast<A>(i0), A(0)), A(1));
    Taps<A>& t = taps[static_cast<size_t>(i)];
    t.first = i0;
    t.n = i0 < in - 1 ? 2 : 1;  // n == 1: the second tap repeats the first
    t.w = {A(1) - l1, l1};
  }
  return taps;
}

// PyTorch's antialiased bilinear (upsample_bilinear2d_aa): a triangle filter whose support is
// scaled by the downscale factor, weights normalized to sum 1.
template <class A>
std::vector<Taps<A>> antialias_taps(int64_t in, int64_t out) {
  std::vector<Taps<A>> taps(static_cast<size_t>(out));
  const A scale = static_cast<A>(in) / static_cast<A>(out);
  const A support = scale >= A(1) ? scale : A(1);
  const A invscale = scale >= A(1) ? A(1) / scale : A(1);
  for (int64_t i = 0; i < out; ++i) {
    const A center = scale * (static_cast<A>(i) + A(0.5));
    const int64_t xmin = std::max(static_cast<int64_t>(center - support + A(0.5)), int64_t{0});
    const int64_t xsize = std::min(static_cast<int64_t>(center + support + A(0.5)), in) - xmin;
    Taps<A>& t = taps[static_cast<size_t>(i)];
    t.first = xmin;
    t.n = xsize;
    t.w.resize(static_cast<size_t>(std::max<int64_t>(xsize, 0)));
    A total = 0;
    for (int64_t j = 0; j < xsize; ++j) {
      A d = (static_cast<A>(j + xmin) - center + A(0.5)) * invscale;
      d = d < A(0) ? -d : d;
      const A w = d < A(1) ? A(1) - d : A(0);
      t.w[static_cast<size_t>(j)] = w;
      total += w;
    }
    if (total != A(0))
      for (A& w : t.w) w /= total;
  }
  return taps;
}

template <class T>
void resize_nearest(ImageRef<T> out, ImageRef<const T> in, int64_t top, int64_t left, int64_t h,
                    int64_t w) {
  const std::vector<int64_t> ry = nearest_indices(h, out.H), rx = nearest_indices(w, out.W);
  for (int64_t c = 0; c < out.C; ++c)
    for (int64_t y = 0; y < out.H; ++y) {
      const T* row = in.data + c * in.sc + (top + ry[static_cast<size_t>(y)]) * in.sh;
      for (int64_t x = 0; x < out.W; ++x)
        out.at(y, x, c) = row[(left + rx[static_cast<size_t>(x)]) * in.sw];
    }
}

// Plain bilinear: each output is a blend of its 2x2 neighbours, height weights outermost.
template <class T>
void resize_bilinear(ImageRef<T> out, ImageRef<const T> in, int64_t top, int64_t left, int64_t h,
                     int64_t w) {
  using A = Acc<T>;
  const std::vector<Taps<A>> ty = linear_taps<A>(h, out.H), tx = linear_taps<A>(w, out.W);
  for (int64_t c = 0; c < out.C; ++c)
    for (int64_t y = 0; y < out.H; ++y) {
      const Taps<A>& a = ty[static_cast<size_t>(y)];
      const T* r0 = in.data + c * in.sc + (top + a.first) * in.sh;
      const T* r1 = a.n == 2 ? r0 + in.sh : r0;
      const A h0 = a.w[0], h1 = a.w[1];
      for (int64_t x = 0; x < out.W; ++x) {
        const Taps<A>& b = tx[static_cast<size_t>(x)];
        const int64_t x0 = (left + b.first) * in.sw, x1 = b.n == 2 ? x0 + in.sw : x0;
        const A w0 = b.w[0], w1 = b.w[1];
        const A v = h0 * (w0 * static_cast<A>(r0[x0]) + w1 * static_cast<A>(r0[x1])) +
                    h1 * (w0 * static_cast<A>(r1[x0]) + w1 * static_cast<A>(r1[x1]));
        out.at(y, x, c) = store<T, A>(v);
      }
    }
}

// Separable antialiased filter: horizontal pass into a (h, OW) buffer, then vertical, as PyTorch.
template <class T>
void resize_antialias(ImageRef<T> out, ImageRef<const T> in, int64_t top, int64_t left, int64_t h,
                      int64_t w) {
  using A = Acc<T>;
  const std::vector<Taps<A>> ty = antialias_taps<A>(h, out.H), tx = antialias_taps<A>(w, out.W);
  const int64_t OW = out.W;
  std::vector<A> tmp(static_cast<size_t>(h * OW));
  for (int64_t c = 0; c < out.C; ++c) {
    for (int64_t y = 0; y < h; ++y) {
      const T* row = in.data + c * in.sc + (top + y) * in.sh + left * in.sw;
      A* t = tmp.data() + y * OW;
      for (int64_t x = 0; x < OW; ++x) {
        const Taps<A>& b = tx[static_cast<size_t>(x)];
        A s = 0;
        for (int64_t j = 0; j < b.n; ++j)
          s += b.w[static_cast<size_t>(j)] * static_cast<A>(row[(b.first + j) * in.sw]);
        t[x] = s;
      }
    }
    for (int64_t y = 0; y < out.H; ++y) {
      const Taps<A>& a = ty[static_cast<size_t>(y)];
      for (int64_t x = 0; x < OW; ++x) {
        A s = 0;
        for (int64_t j = 0; j < a.n; ++j)
          s += a.w[static_cast<size_t>(j)] * tmp[static_cast<size_t>((a.first + j) * OW + x)];
        out.at(y, x, c) = store<T, A>(s);
      }
    }
  }
}

}  // namespace

void resize(const Tensor& out, const Layout& out_layout, const Tensor& in, const Layout& in_layout,
            int64_t top, int64_t left, int64_t h, int64_t w, Filter filter) {
  visit_image_dtype(in_layout.dtype, "resize", [&](auto tag) {
    using T = decltype(tag);
    const ImageRef<T> o = output_ref<T>(out, out_layout);
    const ImageRef<const T> i = image_ref<T>(in, in_layout);
    switch (filter) {
      case Filter::Nearest:
        return resize_nearest<T>(o, i, top, left, h, w);
      case Filter::Bilinear:
        return resize_bilinear<T>(o, i, top, left, h, w);
      case Filter::BilinearAntialias:
        return resize_antialias<T>(o, i, top, left, h, w);
    }
  });
}

// ---- affine sampling ----

namespace {

// grid_sample(align_corners=False) of the affine grid torchvision builds: output pixel centers
// in coordinates centered on the output image, mapped by M, shifted to input pixel indices.
template <class T>
void affine_kernel(ImageRef<T> out, ImageRef<const T> in, const double m[6], bool bilinear,
                   double fill) {
  using A = Acc<T>;
  const int64_t H = in.H, W = in.W;
  const double ox0 = 0.5 - 0.5 * static_cast<double>(out.W);
  const double oy0 = 0.5 - 0.5 * static_cast<double>(out.H);
  const double ix0 = 0.5 * static_cast<double>(W) - 0.5, iy0 = 0.5 * static_cast<double>(H) - 0.5;
  const T fill_t = fill_value<T>(fill);
  const A fill_a = static_cast<A>(fill);
  for (int64_t y = 0; y < out.H; ++y) {
    const double yc = static_cast<double>(y) + oy0;
    for (int64_t x = 0; x < out.W; ++x) {
      const double xc = static_cast<double>(x) + ox0;
      const double sx = m[0] * xc + m[1] * yc + m[2] + ix0;
      const double sy = m[3] * xc + m[4] * yc + m[5] + iy0;
      if (!bilinear) {
        const double rx = std::nearbyint(sx), ry = std::nearbyint(sy);
        const bool inside =
            rx >= 0 && rx < static_cast<double>(W) && ry >= 0 && ry < static_cast<double>(H);
        const int64_t px = inside ? static_cast<int64_t>(rx) : 0;
        const int64_t py = inside ? static_cast<int64_t>(ry) : 0;
        for (int64_t c = 0; c < out.C; ++c) out.at(y, x, c) = inside ? in.at(py, px, c) : fill_t;
        continue;
      }
      const double fx = std::floor(sx), fy = std::floor(sy);
      const int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
      const A ax = static_cast<A>(sx - fx), ay = static_cast<A>(sy - fy);
      const A wts[4] = {(A(1) - ax) * (A(1) - ay), ax * (A(1) - ay), (A(1) - ax) * ay, ax * ay};
      const int64_t xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
      bool ok[4];
      A mask = 0;
      for (int k = 0; k < 4; ++k) {
        ok[k] = xs[k] >= 0 && xs[k] < W && ys[k] >= 0 && ys[k] < H;
        if (ok[k]) mask += wts[k];
      }
      for (int64_t c = 0; c < out.C; ++c) {
        A s = 0;
        for (int k = 0; k < 4; ++k)
          if (ok[k]) s += wts[k] * static_cast<A>(in.at(ys[k], xs[k], c));
        // torchvision samples a ones-channel alongside and blends: img * mask + (1 - mask) * fill.
        out.at(y, x, c) = store<T, A>(s * mask + (A(1) - mask) * fill_a);
      }
    }
  }
}

}  // namespace

void affine_sample(const Tensor& out, const Layout& out_layout, const Tensor& in,
                   const Layout& in_layout, const double matrix[6], bool bilinear, double fill) {
  visit_image_dtype(in_layout.dtype, "affine", [&](auto tag) {
    using T = decltype(tag);
    affine_kernel<T>(output_ref<T>(out, out_layout), image_ref<T>(in, in_layout), matrix, bilinear,
                     fill);
  });
}

// ---- color ----

void to_float_chw(const Tensor& out, const Tensor& in, const Layout& l) {
  static const std::vector<float> lut = [] {
    std::vector<float> t(256);
    for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = static_cast<float>(i) / 255.0f;
    return t;
  }();
  const uint8_t* src = in.data_ptr<uint8_t>();
  float* dst = out.data_ptr<float>();
  const int64_t H = l.H, W = l.W, C = l.C;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y) {
      const uint8_t* p = src + y * l.sh + c * l.sc;
      float* o = dst + (c * H + y) * W;
      if (l.sw == 1) {
        for (int64_t x = 0; x < W; ++x) o[x] = lut[p[x]];
      } else {
        for (int64_t x = 0; x < W; ++x) o[x] = lut[p[x * l.sw]];
      }
    }
}

void normalize(const Tensor& out, const Layout& out_layout, const Tensor& in,
               const Layout& in_layout, const std::vector<double>& mean,
               const std::vector<double>& std) {
  visit_image_dtype(in_layout.dtype, "Normalize", [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, uint8_t>) {
      const ImageRef<T> o = output_ref<T>(out, out_layout);
      const ImageRef<const T> i = image_ref<T>(in, in_layout);
      for (int64_t c = 0; c < i.C; ++c) {
        const T m = static_cast<T>(mean[mean.size() == 1 ? 0 : static_cast<size_t>(c)]);
        const T s = static_cast<T>(std[std.size() == 1 ? 0 : static_cast<size_t>(c)]);
        for (int64_t y = 0; y < i.H; ++y) {
          const T* p = i.data + c * i.sc + y * i.sh;
          T* q = o.data + c * o.sc + y * o.sh;  // output rows are contiguous (CHW or HW)
          if (i.sw == 1) {
            for (int64_t x = 0; x < i.W; ++x) q[x] = (p[x] - m) / s;
          } else {
            for (int64_t x = 0; x < i.W; ++x) q[x] = (p[x * i.sw] - m) / s;
          }
        }
      }
    }
  });
}

namespace {

// torchvision's rgb_to_grayscale in the image dtype (truncated for uint8).
template <class T>
inline T gray(ImageRef<const T> in, int64_t y, int64_t x) {
  if (in.C == 1) return in.at(y, x, 0);
  using A = Acc<T>;
  const A g = A(0.2989) * static_cast<A>(in.at(y, x, 0)) +
              A(0.587) * static_cast<A>(in.at(y, x, 1)) + A(0.114) * static_cast<A>(in.at(y, x, 2));
  return static_cast<T>(g);
}

template <class T>
void blend_kernel(ImageRef<T> out, ImageRef<const T> in, Blend kind, double factor) {
  using A = Acc<T>;
  const A bound = std::is_same_v<T, uint8_t> ? A(255) : A(1);
  const A r = static_cast<A>(factor), q = static_cast<A>(1.0 - factor);
  A mean = 0;
  if (kind == Blend::Contrast) {
    double sum = 0;
    for (int64_t y = 0; y < in.H; ++y)
      for (int64_t x = 0; x < in.W; ++x) sum += static_cast<double>(gray(in, y, x));
    mean = static_cast<A>(sum / static_cast<double>(in.H * in.W));
  }
  for (int64_t y = 0; y < in.H; ++y)
    for (int64_t x = 0; x < in.W; ++x) {
      const A other = kind == Blend::Brightness ? A(0)
                      : kind == Blend::Contrast ? mean
                                                : static_cast<A>(gray(in, y, x));
      for (int64_t c = 0; c < in.C; ++c) {
        A v = r * static_cast<A>(in.at(y, x, c)) + q * other;
        v = v < A(0) ? A(0) : (v > bound ? bound : v);
        out.at(y, x, c) = static_cast<T>(v);  // uint8 truncates, as torchvision's .to(uint8)
      }
    }
}

}  // namespace

void blend(const Tensor& out, const Layout& out_layout, const Tensor& in, const Layout& in_layout,
           Blend kind, double factor) {
  visit_image_dtype(in_layout.dtype, "ColorJitter", [&](auto tag) {
    using T = decltype(tag);
    blend_kernel<T>(output_ref<T>(out, out_layout), image_ref<T>(in, in_layout), kind, factor);
  });
}

}  // namespace ember::data::image
