// Pixel kernels behind data/transforms.hpp. Every kernel reads an image through strides (so any
// layout and any non-contiguous view works) and writes a freshly allocated contiguous image.
//
// An image is (H, W, C) addressed as data[y * sh + x * sw + c * sc]: uint8 HWC, float CHW and
// HW (C = 1, sc = 0) are all the same thing to a kernel.
#pragma once

#include <cstdint>
#include <vector>

#include "ember/tensor.hpp"

namespace ember::data::image {

template <class T>
struct ImageRef {
  T* data;
  int64_t H, W, C;
  int64_t sh, sw, sc;
  T& at(int64_t y, int64_t x, int64_t c) const { return data[y * sh + x * sw + c * sc]; }
};

/// How a tensor holds an image: uint8 HWC / HW, float32 / float64 CHW / HW.
struct Layout {
  DType dtype;
  int64_t H, W, C;
  int64_t sh, sw, sc;  // element strides of the input
  bool channels_last;  // HWC (uint8 with 3 dims)
  bool has_channel_dim;
};

/// The layout of `x`, or a typed error naming `op` and the shape: DeviceError off the CPU,
/// DTypeError for dtypes other than uint8/float32/float64, ShapeError unless 2 or 3 dims.
Layout image_layout(const Tensor& x, const char* op);

/// A new contiguous tensor of x's layout kind and dtype with spatial size (H, W) and C channels.
Tensor new_image(const Layout& like, int64_t H, int64_t W, int64_t C);

template <class T>
ImageRef<const T> image_ref(const Tensor& x, const Layout& l) {
  return {x.data_ptr<T>(), l.H, l.W, l.C, l.sh, l.sw, l.sc};
}
/// The writable view of a tensor made by new_image.
template <class T>
ImageRef<T> output_ref(const Tensor& y, const Layout& like) {
  const int64_t H = like.has_channel_dim ? y.size(like.channels_last ? 0 : 1) : y.size(0);
  const int64_t W = like.has_channel_dim ? y.size(like.channels_last ? 1 : 2) : y.size(1);
  const int64_t C = like.has_channel_dim ? y.size(like.channels_last ? 2 : 0) : 1;
  if (like.channels_last || !like.has_channel_dim) return {y.data_ptr<T>(), H, W, C, W * C, C, 1};
  return {y.data_ptr<T>(), H, W, C, W, 1, H * W};
}

/// Calls f(T{}) for the image dtypes, DTypeError naming `op` otherwise.
template <class F>
decltype(auto) visit_image_dtype(DType d, const char* op, F&& f);

// ---- index maps: padding, cropping, flipping ----

enum class PadMode { Constant, Edge, Reflect, Symmetric };

/// Maps coordinate x of an axis padded with (before, after) back to [0, n), or -1 for a constant
/// fill. Reflect and symmetric repeat periodically, so any pad width works.
int64_t pad_index(int64_t x, int64_t n, int64_t before, PadMode mode);

/// out(y, x, c) = in(rows[y], cols[x], c), or `fill` where rows[y] or cols[x] is -1.
void remap(const Tensor& out, const Layout& out_layout, const Tensor& in, const Layout& in_layout,
           const std::vector<int64_t>& rows, const std::vector<int64_t>& cols, double fill);

// ---- resampling ----

enum class Filter { Nearest, Bilinear, BilinearAntialias };

/// Resizes the window (top, left, h, w) of `in` to all of `out`: nearest as F.interpolate
/// mode="nearest"; bilinear with half-pixel centers (align_corners=False); the antialiased filter
/// is PyTorch's separable triangle filter whose support grows with the downscale factor.
void resize(const Tensor& out, const Layout& out_layout, const Tensor& in, const Layout& in_layout,
            int64_t top, int64_t left, int64_t h, int64_t w, Filter filter);

/// Samples out(y, x) at in(M * (x, y, 1)) with M the 2x3 inverse affine matrix in torchvision's
/// centered coordinates; outside the image the value is `fill` (bilinear blends by the sampled
/// in-bounds mask as torchvision does).
void affine_sample(const Tensor& out, const Layout& out_layout, const Tensor& in,
                   const Layout& in_layout, const double matrix[6], bool bilinear, double fill);

// ---- color ----

/// uint8 HWC / HW -> float32 CHW scaled by 1/255.
void to_float_chw(const Tensor& out, const Tensor& in, const Layout& in_layout);

/// out = (in - mean[c]) / std[c] in the image dtype (float images; one value = all channels).
void normalize(const Tensor& out, const Layout& out_layout, const Tensor& in,
               const Layout& in_layout, const std::vector<double>& mean,
               const std::vector<double>& std);

/// One of torchvision's blends: out = clamp(f * x + (1 - f) * other), other = 0 (brightness),
/// the mean of the grayscale image (contrast) or the grayscale pixel (saturation).
enum class Blend { Brightness, Contrast, Saturation };
/// Returns a new image (contiguous, same layout) with the blend applied to `in`.
void blend(const Tensor& out, const Layout& out_layout, const Tensor& in, const Layout& in_layout,
           Blend kind, double factor);

// ---- implementation of visit_image_dtype ----

[[noreturn]] void throw_image_dtype(DType d, const char* op);

template <class F>
decltype(auto) visit_image_dtype(DType d, const char* op, F&& f) {
  switch (d) {
    case DType::UInt8:
      return f(uint8_t{});
    case DType::Float32:
      return f(float{});
    case DType::Float64:
      return f(double{});
    default:
      throw_image_dtype(d, op);
  }
}

}  // namespace ember::data::image
