// Image transforms in the manner of torchvision.transforms, for data augmentation.
//
// Layout convention: uint8 tensors are images (H, W, C) or (H, W) (one channel), as decoded from
// files; float32 and float64 tensors are (C, H, W) or (H, W), as after ToTensor. Each transform
// keeps its input's layout and dtype (ToTensor converts). Inputs may be non-contiguous; outputs
// are new contiguous tensors, except that a flip which does not happen and ToTensor of a float
// image return the input itself.
//
// Random transforms draw from data::sample_generator() (the DataLoader's per-sample stream) or
// from an explicit generator: t(x, gen). Every transform is copyable into a data::Transform.
// Parameters, draw order and differences from torchvision: docs/data_transforms.md.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ember/data/dataset.hpp"
#include "ember/random.hpp"
#include "ember/tensor.hpp"

namespace ember::data::transforms {

/// One integer or a braced list of them: `24`, `{24, 20}`, `{4, 2, 4, 2}`.
class IntList {
 public:
  IntList() = default;
  IntList(int64_t v) : v_{v} {}                          // NOLINT: implicit
  IntList(std::initializer_list<int64_t> l) : v_(l) {}   // NOLINT
  IntList(std::vector<int64_t> v) : v_(std::move(v)) {}  // NOLINT
  const std::vector<int64_t>& vec() const { return v_; }
  size_t size() const { return v_.size(); }
  bool empty() const { return v_.empty(); }
  int64_t operator[](size_t i) const { return v_[i]; }

 private:
  std::vector<int64_t> v_;
};

/// One number or a braced {lo, hi} pair (degrees, jitter strengths).
class Range {
 public:
  Range(double v) : v_{v} {}                         // NOLINT: implicit
  Range(std::initializer_list<double> l) : v_(l) {}  // NOLINT
  const std::vector<double>& vec() const { return v_; }

 private:
  std::vector<double> v_;
};

/// torchvision.transforms.InterpolationMode (the two modes implemented).
enum class InterpolationMode { Nearest, Bilinear };

/// A crop window: rows [top, top + height), columns [left, left + width).
struct CropBox {
  int64_t top, left, height, width;
};

/// uint8 HWC/HW -> float32 CHW ((1, H, W) for HW) divided by 255. A float image is returned
/// unchanged; other dtypes raise DTypeError.
class ToTensor {
 public:
  Tensor operator()(const Tensor& x) const;
};

/// Float CHW/HW: x[c] = (x[c] - mean[c]) / std[c], in the image dtype. A single mean or std
/// value applies to every channel. ValueError for a zero std or a count that is neither 1 nor C.
class Normalize {
 public:
  Normalize(std::vector<double> mean, std::vector<double> std);
  Tensor operator()(const Tensor& x) const;

 private:
  std::vector<double> mean_, std_;
};

/// Pads (optionally), then crops a random size[0] x size[1] window: top = randint(0, H - h + 1)
/// is drawn first, then left = randint(0, W - w + 1); nothing is drawn when the padded image
/// already has the crop size. `padding`: p (all sides), {left/right, top/bottom} or
/// {left, top, right, bottom}; `padding_mode`: "constant" (with `fill`), "edge", "reflect",
/// "symmetric". pad_if_needed pads each too-small side by the deficit on both sides, as
/// torchvision. Padding and cropping are one pass: no padded image is built.
class RandomCrop {
 public:
  explicit RandomCrop(IntList size, IntList padding = {}, bool pad_if_needed = false,
                      double fill = 0, std::string padding_mode = "constant");
  /// RandomCrop({h, w}): without it the braces could also mean a copy of RandomCrop(h, w).
  explicit RandomCrop(std::initializer_list<int64_t> size) : RandomCrop(IntList(size)) {}
  Tensor operator()(const Tensor& x) const;
  Tensor operator()(const Tensor& x, Generator& gen) const;

 private:
  int64_t h_, w_;
  int64_t pad_l_ = 0, pad_t_ = 0, pad_r_ = 0, pad_b_ = 0;
  bool pad_if_needed_;
  double fill_;
  int mode_;
};

/// Flips left-right when uniform() < p (one draw per call); otherwise returns x itself.
class RandomHorizontalFlip {
 public:
  explicit RandomHorizontalFlip(double p = 0.5);
  Tensor operator()(const Tensor& x) const;
  Tensor operator()(const Tensor& x, Generator& gen) const;

 private:
  double p_;
};

/// Flips top-bottom when uniform() < p (one draw per call); otherwise returns x itself.
class RandomVerticalFlip {
 public:
  explicit RandomVerticalFlip(double p = 0.5);
  Tensor operator()(const Tensor& x) const;
  Tensor operator()(const Tensor& x, Generator& gen) const;

 private:
  double p_;
};

/// Rotates by an angle drawn uniformly from [lo, hi] degrees (a single a means [-a, a]),
/// counter-clockwise positive, about `center` ((x, y) in pixels, default the image center),
/// with torchvision's geometry (affine grid + grid_sample, align_corners=False). `expand`
/// enlarges the output to hold the whole rotated image. Pixels from outside get `fill`.
class RandomRotation {
 public:
  explicit RandomRotation(Range degrees,
                          InterpolationMode interpolation = InterpolationMode::Nearest,
                          bool expand = false,
                          std::optional<std::pair<double, double>> center = std::nullopt,
                          double fill = 0);
  Tensor operator()(const Tensor& x) const;
  Tensor operator()(const Tensor& x, Generator& gen) const;
  /// The deterministic rotation by `angle` degrees (torchvision.transforms.functional.rotate).
  Tensor rotate(const Tensor& x, double angle) const;

 private:
  double lo_, hi_;
  InterpolationMode interpolation_;
  bool expand_;
  std::optional<std::pair<double, double>> center_;
  double fill_;
};

/// Resizes to {h, w}, or with one size s the smaller edge to s and the longer to
/// int(s * long / short). Bilinear uses half-pixel centers; with antialias it is PyTorch's
/// antialiased (triangle filter, support scaled by the downscale factor) resampling. uint8 is
/// computed in float32 and rounded. Nearest is F.interpolate(mode="nearest").
class Resize {
 public:
  explicit Resize(IntList size, InterpolationMode interpolation = InterpolationMode::Bilinear,
                  bool antialias = true);
  Tensor operator()(const Tensor& x) const;
  /// The output (height, width) for an H x W input.
  std::pair<int64_t, int64_t> output_size(int64_t H, int64_t W) const;

 private:
  std::vector<int64_t> size_;
  InterpolationMode interpolation_;
  bool antialias_;
};

/// Crops the central size[0] x size[1] window: top = int(round((H - h) / 2.0)) (half to even),
/// left likewise; a crop larger than the image pads with 0 first, as torchvision.
class CenterCrop {
 public:
  explicit CenterCrop(IntList size);
  Tensor operator()(const Tensor& x) const;

 private:
  int64_t h_, w_;
};

/// Crops a random window of random area and aspect ratio (torchvision's get_params) and resizes
/// it to `size`.
class RandomResizedCrop {
 public:
  explicit RandomResizedCrop(IntList size, std::pair<double, double> scale = {0.08, 1.0},
                             std::pair<double, double> ratio = {3.0 / 4.0, 4.0 / 3.0},
                             InterpolationMode interpolation = InterpolationMode::Bilinear,
                             bool antialias = true);
  Tensor operator()(const Tensor& x) const;
  Tensor operator()(const Tensor& x, Generator& gen) const;
  /// The crop window for an H x W image: up to 10 attempts, each drawing uniform(scale), then
  /// uniform(log ratio), and on success randint top, then randint left; else the central crop.
  CropBox get_params(int64_t H, int64_t W, Generator& gen) const;

 private:
  int64_t h_, w_;
  std::pair<double, double> scale_, ratio_;
  InterpolationMode interpolation_;
  bool antialias_;
};

/// Randomly changes brightness, contrast and saturation. Each strength is a number s (factor
/// uniform in [max(0, 1 - s), 1 + s]) or a {lo, hi} pair; 0 (or {1, 1}) disables it. Each call
/// draws randperm(4) for the order, then one factor per enabled adjustment (brightness,
/// contrast, saturation), as torchvision (hue, index 3, is not implemented).
class ColorJitter {
 public:
  explicit ColorJitter(Range brightness = 0.0, Range contrast = 0.0, Range saturation = 0.0);
  /// ColorJitter({lo, hi}) is a brightness range (not a copy of ColorJitter(lo, hi)).
  explicit ColorJitter(std::initializer_list<double> brightness) : ColorJitter(Range(brightness)) {}
  Tensor operator()(const Tensor& x) const;
  Tensor operator()(const Tensor& x, Generator& gen) const;

 private:
  std::optional<std::pair<double, double>> brightness_, contrast_, saturation_;
};

/// Applies the transforms in order.
class Compose {
 public:
  explicit Compose(std::vector<Transform> transforms);
  Tensor operator()(const Tensor& x) const;

 private:
  std::vector<Transform> transforms_;
};

/// A user function as a transform.
class Lambda {
 public:
  explicit Lambda(Transform fn);
  Tensor operator()(const Tensor& x) const;

 private:
  Transform fn_;
};

// ---- functional forms (deterministic parameters) ----

/// Brightness/contrast/saturation blends with a fixed factor (torchvision.transforms.functional).
Tensor adjust_brightness(const Tensor& x, double factor);
Tensor adjust_contrast(const Tensor& x, double factor);
Tensor adjust_saturation(const Tensor& x, double factor);
/// The window (top, left, height, width) of x; parts outside the image are 0.
Tensor crop(const Tensor& x, int64_t top, int64_t left, int64_t height, int64_t width);
Tensor hflip(const Tensor& x);
Tensor vflip(const Tensor& x);

}  // namespace ember::data::transforms
