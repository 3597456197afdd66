// Image transforms: parameter checks, random draws (in torchvision's order) and the index maps;
// the pixel loops are in image_ops.cpp.
#include "ember/data/transforms.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "data/image_ops.hpp"
#include "ember/error.hpp"
#include "ember/ops.hpp"

namespace ember::data::transforms {

using image::Layout;

namespace {

// (h, w) from an int or {h, w}; ValueError unless positive.
std::pair<int64_t, int64_t> parse_size(const IntList& size, const char* op) {
  EMBER_CHECK(size.size() == 1 || size.size() == 2, ValueError, "[", op,
              "] size must be one number or {h, w}, got ", IntArrayRef(size.vec()));
  const int64_t h = size[0], w = size.size() == 2 ? size[1] : size[0];
  EMBER_CHECK(h > 0 && w > 0, ValueError, "[", op, "] size must be positive, got ",
              IntArrayRef(size.vec()));
  return {h, w};
}

void check_probability(double p, const char* op) {
  EMBER_CHECK(p >= 0.0 && p <= 1.0, ValueError, "[", op, "] p must lie in [0, 1], got ", p);
}

std::vector<int64_t> identity_map(int64_t n) {
  std::vector<int64_t> m(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) m[static_cast<size_t>(i)] = i;
  return m;
}

// Index map of a window [start, start + n) of an axis of size `size`: -1 outside.
std::vector<int64_t> window_map(int64_t start, int64_t n, int64_t size) {
  std::vector<int64_t> m(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = start + i;
    m[static_cast<size_t>(i)] = s >= 0 && s < size ? s : -1;
  }
  return m;
}

Tensor remap_image(const Tensor& x, const Layout& l, const std::vector<int64_t>& rows,
                   const std::vector<int64_t>& cols, double fill) {
  Tensor out = image::new_image(l, static_cast<int64_t>(rows.size()),
                                static_cast<int64_t>(cols.size()), l.C);
  image::remap(out, l, x, l, rows, cols, fill);
  return out;
}

// A jitter strength: s -> [max(0, 1 - s), 1 + s], or a {lo, hi} pair with 0 <= lo <= hi;
// {1, 1} means "disabled" (torchvision's _check_input).
std::optional<std::pair<double, double>> jitter_range(const Range& r, const char* name) {
  const std::vector<double>& v = r.vec();
  EMBER_CHECK(v.size() == 1 || v.size() == 2, ValueError, "[ColorJitter] ", name,
              " must be one number or {lo, hi}, got ", v.size(), " values");
  double lo, hi;
  if (v.size() == 1) {
    EMBER_CHECK(v[0] >= 0, ValueError, "[ColorJitter] ", name, " must be non-negative, got ", v[0]);
    lo = std::max(0.0, 1.0 - v[0]), hi = 1.0 + v[0];
  } else {
    lo = v[0], hi = v[1];
    EMBER_CHECK(lo >= 0 && lo <= hi, ValueError, "[ColorJitter] ", name,
                " range must satisfy 0 <= lo <= hi, got {", lo, ", ", hi, "}");
  }
  if (lo == 1.0 && hi == 1.0) return std::nullopt;
  return std::make_pair(lo, hi);
}

}  // namespace

// ---- ToTensor, Normalize ----

Tensor ToTensor::operator()(const Tensor& x) const {
  const Layout l = image::image_layout(x, "ToTensor");
  if (l.dtype != kUInt8) return x;
  Tensor out = empty({l.C, l.H, l.W}, kFloat32);
  image::to_float_chw(out, x, l);
  return out;
}

Normalize::Normalize(std::vector<double> mean, std::vector<double> std)
    : mean_(std::move(mean)), std_(std::move(std)) {
  EMBER_CHECK(!mean_.empty() && !std_.empty(), ValueError,
              "[Normalize] mean and std need at least one value each, got ", mean_.size(), " and ",
              std_.size());
  for (double s : std_)
    EMBER_CHECK(s != 0.0, ValueError, "[Normalize] std must be non-zero, got 0 among ", std_.size(),
                " values");
}

Tensor Normalize::operator()(const Tensor& x) const {
  const Layout l = image::image_layout(x, "Normalize");
  EMBER_CHECK(l.dtype != kUInt8, DTypeError,
              "[Normalize] expected a float32/float64 image (apply ToTensor first), got uint8 of "
              "shape ",
              x.sizes());
  const size_t C = static_cast<size_t>(l.C);
  EMBER_CHECK((mean_.size() == 1 || mean_.size() == C) && (std_.size() == 1 || std_.size() == C),
              ValueError, "[Normalize] mean has ", mean_.size(), " and std ", std_.size(),
              " values for an image of shape ", x.sizes(), " with ", l.C, " channels");
  Tensor out = image::new_image(l, l.H, l.W, l.C);
  image::normalize(out, l, x, l, mean_, std_);
  return out;
}

// ---- RandomCrop ----

RandomCrop::RandomCrop(IntList size, IntList padding, bool pad_if_needed, double fill,
                       std::string padding_mode)
    : pad_if_needed_(pad_if_needed), fill_(fill) {
  std::tie(h_, w_) = parse_size(size, "RandomCrop");
  const std::vector<int64_t>& p = padding.vec();
  EMBER_CHECK(p.size() == 0 || p.size() == 1 || p.size() == 2 || p.size() == 4, ValueError,
              "[RandomCrop] padding must have 1, 2 or 4 values, got ", IntArrayRef(p));
  for (int64_t v : p)
    EMBER_CHECK(v >= 0, ValueError, "[RandomCrop] padding must be non-negative, got ",
                IntArrayRef(p));
  if (p.size() == 1) pad_l_ = pad_t_ = pad_r_ = pad_b_ = p[0];
  if (p.size() == 2) pad_l_ = pad_r_ = p[0], pad_t_ = pad_b_ = p[1];
  if (p.size() == 4) pad_l_ = p[0], pad_t_ = p[1], pad_r_ = p[2], pad_b_ = p[3];
  if (padding_mode == "constant") {
    mode_ = static_cast<int>(image::PadMode::Constant);
  } else if (padding_mode == "edge") {
    mode_ = static_cast<int>(image::PadMode::Edge);
  } else if (padding_mode == "reflect") {
    mode_ = static_cast<int>(image::PadMode::Reflect);
  } else if (padding_mode == "symmetric") {
    mode_ = static_cast<int>(image::PadMode::Symmetric);
  } else {
    throw ValueError(detail::str_cat(
        "[RandomCrop] padding_mode must be constant, edge, reflect or symmetric, got \"",
        padding_mode, "\""));
  }
}

Tensor RandomCrop::operator()(const Tensor& x) const {
  const Layout l = image::image_layout(x, "RandomCrop");
  const auto mode = static_cast<image::PadMode>(mode_);
  // torchvision pads in up to two steps: `padding`, then pad_if_needed's deficit on both sides
  // of each too-small axis. Each output coordinate is mapped back through both steps.
  int64_t H1 = l.H + pad_t_ + pad_b_, W1 = l.W + pad_l_ + pad_r_;
  int64_t extra_h = 0, extra_w = 0;
  if (pad_if_needed_ && W1 < w_) extra_w = w_ - W1;
  if (pad_if_needed_ && H1 < h_) extra_h = h_ - H1;
  const int64_t H2 = H1 + 2 * extra_h, W2 = W1 + 2 * extra_w;
  EMBER_CHECK(H2 >= h_ && W2 >= w_, ValueError, "[RandomCrop] crop size (", h_, ", ", w_,
              ") is larger than the padded image (", H2, ", ", W2, "); input shape ", x.sizes());
  int64_t top = 0, left = 0;
  if (H2 != h_ || W2 != w_) {
    Generator& gen = sample_generator();
    top = randint(gen, 0, H2 - h_ + 1);
    left = randint(gen, 0, W2 - w_ + 1);
  }
  auto axis = [mode](int64_t i, int64_t n, int64_t n1, int64_t before, int64_t extra) {
    const int64_t j = image::pad_index(i, n1, extra, mode);
    return j < 0 ? j : image::pad_index(j, n, before, mode);
  };
  std::vector<int64_t> rows(static_cast<size_t>(h_)), cols(static_cast<size_t>(w_));
  for (int64_t y = 0; y < h_; ++y)
    rows[static_cast<size_t>(y)] = axis(top + y, l.H, H1, pad_t_, extra_h);
  for (int64_t x1 = 0; x1 < w_; ++x1)
    cols[static_cast<size_t>(x1)] = axis(left + x1, l.W, W1, pad_l_, extra_w);
  return remap_image(x, l, rows, cols, fill_);
}

Tensor RandomCrop::operator()(const Tensor& x, Generator& gen) const {
  SampleGeneratorGuard g(gen);
  return (*this)(x);
}

// ---- flips ----

Tensor hflip(const Tensor& x) {
  const Layout l = image::image_layout(x, "hflip");
  std::vector<int64_t> cols(static_cast<size_t>(l.W));
  for (int64_t i = 0; i < l.W; ++i) cols[static_cast<size_t>(i)] = l.W - 1 - i;
  return remap_image(x, l, identity_map(l.H), cols, 0);
}

Tensor vflip(const Tensor& x) {
  const Layout l = image::image_layout(x, "vflip");
  std::vector<int64_t> rows(static_cast<size_t>(l.H));
  for (int64_t i = 0; i < l.H; ++i) rows[static_cast<size_t>(i)] = l.H - 1 - i;
  return remap_image(x, l, rows, identity_map(l.W), 0);
}

RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
  check_probability(p, "RandomHorizontalFlip");
}

Tensor RandomHorizontalFlip::operator()(const Tensor& x) const {
  image::image_layout(x, "RandomHorizontalFlip");
  return uniform(sample_generator()) < p_ ? hflip(x) : x;
}

Tensor RandomHorizontalFlip::operator()(const Tensor& x, Generator& gen) const {
  SampleGeneratorGuard g(gen);
  return (*this)(x);
}

RandomVerticalFlip::RandomVerticalFlip(double p) : p_(p) {
  check_probability(p, "RandomVerticalFlip");
}

Tensor RandomVerticalFlip::operator()(const Tensor& x) const {
  image::image_layout(x, "RandomVerticalFlip");
  return uniform(sample_generator()) < p_ ? vflip(x) : x;
}

Tensor RandomVerticalFlip::operator()(const Tensor& x, Generator& gen) const {
  SampleGeneratorGuard g(gen);
  return (*this)(x);
}

// ---- RandomRotation ----

RandomRotation::RandomRotation(Range degrees, InterpolationMode interpolation, bool expand,
                               std::optional<std::pair<double, double>> center, double fill)
    : interpolation_(interpolation), expand_(expand), center_(center), fill_(fill) {
  const std::vector<double>& d = degrees.vec();
  EMBER_CHECK(d.size() == 1 || d.size() == 2, ValueError,
              "[RandomRotation] degrees must be one number or {lo, hi}, got ", d.size(), " values");
  if (d.size() == 1) {
    EMBER_CHECK(d[0] >= 0, ValueError,
                "[RandomRotation] a single degrees value must be non-negative, got ", d[0]);
    lo_ = -d[0], hi_ = d[0];
  } else {
    EMBER_CHECK(d[0] <= d[1], ValueError, "[RandomRotation] degrees must satisfy lo <= hi, got {",
                d[0], ", ", d[1], "}");
    lo_ = d[0], hi_ = d[1];
  }
}

Tensor RandomRotation::rotate(const Tensor& x, double angle) const {
  const Layout l = image::image_layout(x, "RandomRotation");
  const double W = static_cast<double>(l.W), H = static_cast<double>(l.H);
  // torchvision: center relative to the image center, then _get_inverse_affine_matrix(center,
  // -angle, translate 0, scale 1, shear 0).
  double cx = 0, cy = 0;
  if (center_) cx = center_->first - 0.5 * W, cy = center_->second - 0.5 * H;
  const double rot = -angle * std::numbers::pi / 180.0;
  const double a = std::cos(rot), b = -std::sin(rot), c = std::sin(rot), d = std::cos(rot);
  double m[6] = {d, -b, 0.0, -c, a, 0.0};
  m[2] += m[0] * -cx + m[1] * -cy + cx;
  m[5] += m[3] * -cx + m[4] * -cy + cy;
  int64_t ow = l.W, oh = l.H;
  if (expand_) {
    // The bounding box of the mapped corners (torchvision's _compute_affine_output_size), in
    // float32 as there: the 1e-4 truncation decides 1/1e-4 = 10000 exactly only in float32.
    const float fw = static_cast<float>(W), fh = static_cast<float>(H);
    const float px[4] = {-0.5f * fw, -0.5f * fw, 0.5f * fw, 0.5f * fw};
    const float py[4] = {-0.5f * fh, 0.5f * fh, 0.5f * fh, -0.5f * fh};
    float fm[6];
    for (int k = 0; k < 6; ++k) fm[k] = static_cast<float>(m[k]);
    float lo[2] = {1e30f, 1e30f}, hi[2] = {-1e30f, -1e30f};
    for (int k = 0; k < 4; ++k) {
      const float nx = fm[0] * px[k] + fm[1] * py[k] + fm[2];
      const float ny = fm[3] * px[k] + fm[4] * py[k] + fm[5];
      lo[0] = std::min(lo[0], nx), hi[0] = std::max(hi[0], nx);
      lo[1] = std::min(lo[1], ny), hi[1] = std::max(hi[1], ny);
    }
    const float tol = 1e-4f, half[2] = {0.5f * fw, 0.5f * fh};
    int64_t sz[2];
    for (int k = 0; k < 2; ++k) {
      const float cmax = std::ceil(std::trunc((hi[k] + half[k]) / tol) * tol);
      const float cmin = std::floor(std::trunc((lo[k] + half[k]) / tol) * tol);
      sz[k] = static_cast<int64_t>(cmax - cmin);
    }
    ow = sz[0], oh = sz[1];
  }
  Tensor out = image::new_image(l, oh, ow, l.C);
  image::affine_sample(out, l, x, l, m, interpolation_ == InterpolationMode::Bilinear, fill_);
  return out;
}

Tensor RandomRotation::operator()(const Tensor& x) const {
  image::image_layout(x, "RandomRotation");
  return rotate(x, uniform(sample_generator(), lo_, hi_));
}

Tensor RandomRotation::operator()(const Tensor& x, Generator& gen) const {
  SampleGeneratorGuard g(gen);
  return (*this)(x);
}

// ---- Resize ----

namespace {

image::Filter filter_of(InterpolationMode mode, bool antialias) {
  if (mode == InterpolationMode::Nearest) return image::Filter::Nearest;
  return antialias ? image::Filter::BilinearAntialias : image::Filter::Bilinear;
}

Tensor resize_window(const Tensor& x, const Layout& l, const CropBox& box, int64_t oh, int64_t ow,
                     image::Filter filter) {
  Tensor out = image::new_image(l, oh, ow, l.C);
  image::resize(out, l, x, l, box.top, box.left, box.height, box.width, filter);
  return out;
}

}  // namespace

Resize::Resize(IntList size, InterpolationMode interpolation, bool antialias)
    : size_(size.vec()), interpolation_(interpolation), antialias_(antialias) {
  EMBER_CHECK(size_.size() == 1 || size_.size() == 2, ValueError,
              "[Resize] size must be one number (the smaller edge) or {h, w}, got ",
              IntArrayRef(size_));
  for (int64_t s : size_)
    EMBER_CHECK(s > 0, ValueError, "[Resize] size must be positive, got ", IntArrayRef(size_));
}

std::pair<int64_t, int64_t> Resize::output_size(int64_t H, int64_t W) const {
  if (size_.size() == 2) return {size_[0], size_[1]};
  const int64_t shorter = std::min(H, W), longer = std::max(H, W);
  const int64_t new_short = size_[0];
  const auto new_long =
      static_cast<int64_t>(static_cast<double>(new_short * longer) / static_cast<double>(shorter));
  return W <= H ? std::make_pair(new_long, new_short) : std::make_pair(new_short, new_long);
}

Tensor Resize::operator()(const Tensor& x) const {
  const Layout l = image::image_layout(x, "Resize");
  const auto [oh, ow] = output_size(l.H, l.W);
  EMBER_CHECK(oh > 0 && ow > 0, ValueError, "[Resize] output size (", oh, ", ", ow,
              ") is empty for input shape ", x.sizes());
  return resize_window(x, l, {0, 0, l.H, l.W}, oh, ow, filter_of(interpolation_, antialias_));
}

// ---- CenterCrop, crop ----

CenterCrop::CenterCrop(IntList size) { std::tie(h_, w_) = parse_size(size, "CenterCrop"); }

Tensor CenterCrop::operator()(const Tensor& x) const {
  const Layout l = image::image_layout(x, "CenterCrop");
  // torchvision pads a too-small axis by (d // 2, (d + 1) // 2) with 0, then crops at
  // int(round((size - crop) / 2.0)) (half to even) of the padded axis.
  auto start = [](int64_t n, int64_t crop) {
    const int64_t before = crop > n ? (crop - n) / 2 : 0;
    const int64_t padded = crop > n ? n + (crop - n) / 2 + (crop - n + 1) / 2 : n;
    return static_cast<int64_t>(std::nearbyint(static_cast<double>(padded - crop) / 2.0)) - before;
  };
  return remap_image(x, l, window_map(start(l.H, h_), h_, l.H), window_map(start(l.W, w_), w_, l.W),
                     0);
}

Tensor crop(const Tensor& x, int64_t top, int64_t left, int64_t height, int64_t width) {
  const Layout l = image::image_layout(x, "crop");
  EMBER_CHECK(height > 0 && width > 0, ValueError, "[crop] size must be positive, got (", height,
              ", ", width, ")");
  return remap_image(x, l, window_map(top, height, l.H), window_map(left, width, l.W), 0);
}

// ---- RandomResizedCrop ----

RandomResizedCrop::RandomResizedCrop(IntList size, std::pair<double, double> scale,
                                     std::pair<double, double> ratio,
                                     InterpolationMode interpolation, bool antialias)
    : scale_(scale), ratio_(ratio), interpolation_(interpolation), antialias_(antialias) {
  std::tie(h_, w_) = parse_size(size, "RandomResizedCrop");
  EMBER_CHECK(scale.first > 0 && scale.first <= scale.second, ValueError,
              "[RandomResizedCrop] scale must satisfy 0 < lo <= hi, got {", scale.first, ", ",
              scale.second, "}");
  EMBER_CHECK(ratio.first > 0 && ratio.first <= ratio.second, ValueError,
              "[RandomResizedCrop] ratio must satisfy 0 < lo <= hi, got {", ratio.first, ", ",
              ratio.second, "}");
}

CropBox RandomResizedCrop::get_params(int64_t H, int64_t W, Generator& gen) const {
  const double area = static_cast<double>(H * W);
  const double log_lo = std::log(ratio_.first), log_hi = std::log(ratio_.second);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * uniform(gen, scale_.first, scale_.second);
    const double aspect = std::exp(uniform(gen, log_lo, log_hi));
    const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area * aspect)));
    const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area / aspect)));
    if (0 < w && w <= W && 0 < h && h <= H) {
      const int64_t top = randint(gen, 0, H - h + 1);
      const int64_t left = randint(gen, 0, W - w + 1);
      return {top, left, h, w};
    }
  }
  // Fallback: the central crop, its ratio clamped into [lo, hi].
  const double in_ratio = static_cast<double>(W) / static_cast<double>(H);
  int64_t w = W, h = H;
  if (in_ratio < ratio_.first) {
    h = static_cast<int64_t>(std::nearbyint(static_cast<double>(w) / ratio_.first));
  } else if (in_ratio > ratio_.second) {
    w = static_cast<int64_t>(std::nearbyint(static_cast<double>(h) * ratio_.second));
  }
  return {(H - h) / 2, (W - w) / 2, h, w};
}

Tensor RandomResizedCrop::operator()(const Tensor& x) const {
  const Layout l = image::image_layout(x, "RandomResizedCrop");
  const CropBox box = get_params(l.H, l.W, sample_generator());
  return resize_window(x, l, box, h_, w_, filter_of(interpolation_, antialias_));
}

Tensor RandomResizedCrop::operator()(const Tensor& x, Generator& gen) const {
  SampleGeneratorGuard g(gen);
  return (*this)(x);
}

// ---- color ----

namespace {

Tensor blend_image(const Tensor& x, const char* op, image::Blend kind, double factor) {
  EMBER_CHECK(factor >= 0 && std::isfinite(factor), ValueError, "[", op,
              "] factor must be non-negative, got ", factor);
  const Layout l = image::image_layout(x, op);
  if (kind != image::Blend::Brightness) {
    EMBER_CHECK(l.C == 1 || l.C == 3, ShapeError, "[", op,
                "] expected an image with 1 or 3 channels, got shape ", x.sizes());
  }
  if (kind == image::Blend::Saturation && l.C == 1) return x;  // grayscale: unchanged
  Tensor out = image::new_image(l, l.H, l.W, l.C);
  image::blend(out, l, x, l, kind, factor);
  return out;
}

}  // namespace

Tensor adjust_brightness(const Tensor& x, double factor) {
  return blend_image(x, "adjust_brightness", image::Blend::Brightness, factor);
}
Tensor adjust_contrast(const Tensor& x, double factor) {
  return blend_image(x, "adjust_contrast", image::Blend::Contrast, factor);
}
Tensor adjust_saturation(const Tensor& x, double factor) {
  return blend_image(x, "adjust_saturation", image::Blend::Saturation, factor);
}

ColorJitter::ColorJitter(Range brightness, Range contrast, Range saturation)
    : brightness_(jitter_range(brightness, "brightness")),
      contrast_(jitter_range(contrast, "contrast")),
      saturation_(jitter_range(saturation, "saturation")) {}

Tensor ColorJitter::operator()(const Tensor& x) const {
  image::image_layout(x, "ColorJitter");
  Generator& gen = sample_generator();
  const std::vector<int64_t> order = data::permutation(int64_t{4}, gen);
  auto draw = [&gen](const std::optional<std::pair<double, double>>& r) -> std::optional<double> {
    if (!r) return std::nullopt;
    return uniform(gen, r->first, r->second);
  };
  const std::optional<double> b = draw(brightness_), c = draw(contrast_), s = draw(saturation_);
  Tensor y = x;
  for (int64_t id : order) {
    if (id == 0 && b) y = adjust_brightness(y, *b);
    if (id == 1 && c) y = adjust_contrast(y, *c);
    if (id == 2 && s) y = adjust_saturation(y, *s);
  }
  return y;
}

Tensor ColorJitter::operator()(const Tensor& x, Generator& gen) const {
  SampleGeneratorGuard g(gen);
  return (*this)(x);
}

// ---- Compose, Lambda ----

Compose::Compose(std::vector<Transform> transforms) : transforms_(std::move(transforms)) {
  for (const Transform& t : transforms_)
    EMBER_CHECK(static_cast<bool>(t), ValueError, "[Compose] a transform is empty");
}

Tensor Compose::operator()(const Tensor& x) const {
  Tensor y = x;
  for (const Transform& t : transforms_) y = t(y);
  return y;
}

Lambda::Lambda(Transform fn) : fn_(std::move(fn)) {
  EMBER_CHECK(static_cast<bool>(fn_), ValueError, "[Lambda] the function is empty");
}

Tensor Lambda::operator()(const Tensor& x) const { return fn_(x); }

}  // namespace ember::data::transforms
