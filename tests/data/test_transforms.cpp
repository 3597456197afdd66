// Image transforms: hand-computed small cases, layouts (uint8 HWC vs float CHW), non-contiguous
// inputs, reproducibility and distributions of the random draws, errors, and torchvision golden
// outputs (tests/data/golden/transforms.txt, written by make_transforms_golden.py).

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ember/data/transforms.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::data::transforms;
using ember::data::Transform;
using ember::test::bitwise_equal;
using ember::test::values;

namespace {

Tensor u8_image(std::vector<int64_t> sizes, const std::vector<int>& v) {
  Tensor t = empty(sizes, kUInt8);
  REQUIRE(t.numel() == static_cast<int64_t>(v.size()));
  uint8_t* p = t.data_ptr<uint8_t>();
  for (size_t i = 0; i < v.size(); ++i) p[i] = static_cast<uint8_t>(v[i]);
  return t;
}

Tensor f32_image(std::vector<int64_t> sizes, const std::vector<double>& v) {
  Tensor t = empty(sizes, kFloat32);
  REQUIRE(t.numel() == static_cast<int64_t>(v.size()));
  float* p = t.data_ptr<float>();
  for (size_t i = 0; i < v.size(); ++i) p[i] = static_cast<float>(v[i]);
  return t;
}

// A 3x4 one-channel image with values 10 * (4 * row + col).
Tensor small_u8() {
  std::vector<int> v;
  for (int i = 0; i < 12; ++i) v.push_back(10 * i);
  return u8_image({3, 4}, v);
}

// A random-looking uint8 HWC image (deterministic).
Tensor pattern_u8(int64_t H, int64_t W, int64_t C) {
  std::vector<int> v;
  for (int64_t i = 0; i < H * W * C; ++i) v.push_back(static_cast<int>((i * 73 + 11) % 256));
  return u8_image({H, W, C}, v);
}

// The uint8 HWC image stored channel-major (a permuted, non-contiguous view with equal values).
Tensor hwc_non_contiguous(const Tensor& hwc) {
  return hwc.permute({2, 0, 1}).contiguous().permute({1, 2, 0});
}

std::vector<double> gather(const Tensor& img, const std::vector<int64_t>& rows,
                           const std::vector<int64_t>& cols) {
  const std::vector<double> v = values(img);
  const int64_t W = img.size(1);
  std::vector<double> out;
  for (int64_t r : rows)
    for (int64_t c : cols) out.push_back(r < 0 || c < 0 ? -1.0 : v[static_cast<size_t>(r * W + c)]);
  return out;
}

void check_close(const Tensor& got, const std::vector<double>& expected, double tol) {
  const std::vector<double> g = values(got);
  REQUIRE(g.size() == expected.size());
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("element " << i << ": got " << g[i] << ", expected " << expected[i]);
    CHECK(std::abs(g[i] - expected[i]) <= tol);
  }
}

}  // namespace

// ---- ToTensor, Normalize ----

TEST_CASE("ToTensor: uint8 HWC becomes float32 CHW divided by 255") {
  Tensor x = u8_image({1, 2, 3}, {0, 51, 255, 102, 1, 204});
  Tensor y = ToTensor()(x);
  CHECK(y.dtype() == kFloat32);
  CHECK(y.sizes() == IntArrayRef({3, 1, 2}));
  check_close(y, {0.0, 102 / 255.0, 51 / 255.0, 1 / 255.0, 1.0, 204 / 255.0}, 1e-7);
  Tensor hw = ToTensor()(small_u8());
  CHECK(hw.sizes() == IntArrayRef({1, 3, 4}));
  Tensor f = f32_image({1, 2, 2}, {0.5, 2, 3, 4});
  CHECK(ToTensor()(f).is_same(f));
}

TEST_CASE("Normalize: per-channel (x - mean) / std, one value broadcasts") {
  Tensor x = f32_image({2, 1, 2}, {1, 3, 2, 10});
  check_close(Normalize({1, 2}, {2, 4})(x), {0, 1, 0, 2}, 0);
  check_close(Normalize({1}, {0.5})(x), {0, 4, 2, 18}, 0);
  Tensor d = x.to(kFloat64);
  Tensor yd = Normalize({1, 2}, {2, 4})(d);
  CHECK(yd.dtype() == kFloat64);
  check_close(yd, {0, 1, 0, 2}, 0);
}

TEST_CASE("Normalize: errors name the op and the shapes") {
  EMBER_CHECK_THROWS(Normalize({0.5}, {0.0}), ValueError, "[Normalize]", "non-zero");
  Tensor x = zeros({3, 2, 2});
  EMBER_CHECK_THROWS(Normalize({1, 2}, {1})(x), ValueError, "[Normalize]", "(3, 2, 2)");
  EMBER_CHECK_THROWS(Normalize({1}, {1})(small_u8()), DTypeError, "[Normalize]", "uint8");
}

// ---- RandomCrop: padding modes ----

TEST_CASE("RandomCrop: padding {2, 1} in each mode, crop = padded size (hand-computed maps)") {
  Tensor x = small_u8();  // (3, 4): rows 0..2, cols 0..3
  // Padded axes: rows -1..3 (pad 1), cols -2..5 (pad 2); -1 in a map is the fill.
  struct Mode {
    std::string name;
    std::vector<int64_t> rows, cols;
  };
  const std::vector<Mode> modes = {
      {"constant", {-1, 0, 1, 2, -1}, {-1, -1, 0, 1, 2, 3, -1, -1}},
      {"edge", {0, 0, 1, 2, 2}, {0, 0, 0, 1, 2, 3, 3, 3}},
      {"reflect", {1, 0, 1, 2, 1}, {2, 1, 0, 1, 2, 3, 2, 1}},
      {"symmetric", {0, 0, 1, 2, 2}, {1, 0, 0, 1, 2, 3, 3, 2}},
  };
  for (const Mode& m : modes) {
    INFO("padding_mode " << m.name);
    Tensor y = RandomCrop({5, 8}, {2, 1}, false, 7, m.name)(x);
    std::vector<double> expected = gather(x, m.rows, m.cols);
    for (double& e : expected)
      if (e < 0) e = 7;  // the fill
    REQUIRE(y.sizes() == IntArrayRef({5, 8}));
    check_close(y, expected, 0);
  }
}

TEST_CASE("RandomCrop: four-value padding is left, top, right, bottom") {
  Tensor x = small_u8();
  Tensor y = RandomCrop({3 + 2 + 0, 4 + 1 + 3}, {1, 2, 3, 0})(x);
  const std::vector<double> expected = gather(x, {-1, -1, 0, 1, 2}, {-1, 0, 1, 2, 3, -1, -1, -1});
  std::vector<double> e = expected;
  for (double& v : e) v = v < 0 ? 0 : v;
  check_close(y, e, 0);
}

TEST_CASE("RandomCrop: the crop is at (randint top, then randint left) of the padded image") {
  Tensor x = pattern_u8(6, 7, 2);
  RandomCrop t({4, 5}, {2}, false, 0, "reflect");
  for (uint64_t seed : {1u, 2u, 3u, 99u}) {
    Generator g(seed), g2 = g.clone();
    Tensor y = t(x, g);
    const int64_t top = data::randint(g2, 0, 10 - 4 + 1), left = data::randint(g2, 0, 11 - 5 + 1);
    Tensor full = RandomCrop({10, 11}, {2}, false, 0, "reflect")(x);  // no draws: equal size
    Tensor expected = full.slice(0, top, top + 4).slice(1, left, left + 5);
    CHECK(bitwise_equal(y, expected));
    CHECK(g.offset() == g2.offset());
  }
}

TEST_CASE("RandomCrop: pad_if_needed pads the deficit on both sides") {
  Tensor x = small_u8();                       // (3, 4)
  Tensor y = RandomCrop({5, 6}, {}, true)(x);  // pads to (3 + 4, 4 + 4) and crops 5x6
  CHECK(y.sizes() == IntArrayRef({5, 6}));
  // Without pad_if_needed the crop does not fit.
  EMBER_CHECK_THROWS(RandomCrop({5, 6})(x), ValueError, "[RandomCrop]", "(5, 6)", "(3, 4)");
  // Edge padding to rows -2..4, cols -2..5, then a crop at (randint(0, 3), randint(0, 3)).
  Generator g(17), g2 = g.clone();
  Tensor z = RandomCrop({5, 6}, {}, true, 0, "edge")(x, g);
  const int64_t top = data::randint(g2, 0, 3), left = data::randint(g2, 0, 3);
  const std::vector<int64_t> rows = {0, 0, 0, 1, 2, 2, 2}, cols = {0, 0, 0, 1, 2, 3, 3, 3};
  check_close(z,
              gather(x, std::vector<int64_t>(rows.begin() + top, rows.begin() + top + 5),
                     std::vector<int64_t>(cols.begin() + left, cols.begin() + left + 6)),
              0);
}

TEST_CASE("RandomCrop: offsets cover the whole range, seeds reproduce") {
  Tensor x = pattern_u8(28, 28, 1);
  RandomCrop t(28, 4);
  std::set<std::pair<int64_t, int64_t>> seen;
  std::set<int64_t> tops, lefts;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    Generator g(seed), g2 = g.clone();
    (void)t(x, g);
    const int64_t top = data::randint(g2, 0, 9), left = data::randint(g2, 0, 9);
    tops.insert(top), lefts.insert(left), seen.insert({top, left});
  }
  CHECK(tops.size() == 9);
  CHECK(lefts.size() == 9);
  CHECK(seen.size() > 70);  // of 81
  Generator a(5), b(5), c(6);
  Tensor ya = t(x, a), yb = t(x, b);
  CHECK(bitwise_equal(ya, yb));
  int differ = 0;
  for (uint64_t s = 10; s < 20; ++s) {
    Generator g1(s), g2(s + 100);
    differ += bitwise_equal(t(x, g1), t(x, g2)) ? 0 : 1;
  }
  CHECK(differ >= 8);
}

TEST_CASE("RandomCrop: errors name the op and the shape") {
  EMBER_CHECK_THROWS(RandomCrop(-1), ValueError, "[RandomCrop]", "positive");
  EMBER_CHECK_THROWS(RandomCrop(2, {1, 2, 3}), ValueError, "[RandomCrop]", "padding");
  EMBER_CHECK_THROWS(RandomCrop(2, 1, false, 0, "wrap"), ValueError, "[RandomCrop]", "wrap");
  EMBER_CHECK_THROWS(RandomCrop(2)(zeros({3, 4}, kInt64)), DTypeError, "[RandomCrop]", "int64");
  EMBER_CHECK_THROWS(RandomCrop(2)(zeros({1, 2, 3, 4})), ShapeError, "[RandomCrop]",
                     "(1, 2, 3, 4)");
  EMBER_CHECK_THROWS(RandomCrop(5)(zeros({3, 4, 4})), ValueError, "[RandomCrop]", "(5, 5)",
                     "(3, 4, 4)");
}

// ---- flips ----

TEST_CASE("RandomHorizontalFlip: p = 1 flips, p = 0 returns the input") {
  Tensor x = small_u8();
  check_close(RandomHorizontalFlip(1.0)(x), gather(x, {0, 1, 2}, {3, 2, 1, 0}), 0);
  check_close(RandomVerticalFlip(1.0)(x), gather(x, {2, 1, 0}, {0, 1, 2, 3}), 0);
  CHECK(RandomHorizontalFlip(0.0)(x).is_same(x));
  CHECK(RandomVerticalFlip(0.0)(x).is_same(x));
  Tensor hwc = pattern_u8(2, 3, 3);
  Tensor f = hflip(hwc);
  const std::vector<double> a = values(hwc), b = values(f);
  for (int64_t y = 0; y < 2; ++y)
    for (int64_t x1 = 0; x1 < 3; ++x1)
      for (int64_t c = 0; c < 3; ++c)
        CHECK(b[static_cast<size_t>((y * 3 + x1) * 3 + c)] ==
              a[static_cast<size_t>((y * 3 + 2 - x1) * 3 + c)]);
}

TEST_CASE("RandomHorizontalFlip: flips about p of the time over 2000 draws") {
  Tensor x = small_u8();
  for (double p : {0.3, 0.5}) {
    RandomHorizontalFlip t(p);
    RandomVerticalFlip v(p);
    Generator g(42);
    int flips = 0, vflips = 0;
    for (int i = 0; i < 2000; ++i) {
      flips += t(x, g).is_same(x) ? 0 : 1;
      vflips += v(x, g).is_same(x) ? 0 : 1;
    }
    CHECK(std::abs(flips / 2000.0 - p) < 0.04);  // ~4 standard deviations
    CHECK(std::abs(vflips / 2000.0 - p) < 0.04);
  }
  EMBER_CHECK_THROWS(RandomHorizontalFlip(1.5), ValueError, "[RandomHorizontalFlip]", "1.5");
  EMBER_CHECK_THROWS(RandomVerticalFlip(-0.1), ValueError, "[RandomVerticalFlip]");
}

// ---- RandomRotation ----

TEST_CASE("RandomRotation: 90 degrees counter-clockwise is exact on a square image") {
  Tensor x = u8_image({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  for (InterpolationMode m : {InterpolationMode::Nearest, InterpolationMode::Bilinear}) {
    RandomRotation t({90, 90}, m);
    check_close(t(x), {3, 6, 9, 2, 5, 8, 1, 4, 7}, 0);
    check_close(RandomRotation({-90, -90}, m)(x), {7, 4, 1, 8, 5, 2, 9, 6, 3}, 0);
    check_close(RandomRotation({180, 180}, m)(x), {9, 8, 7, 6, 5, 4, 3, 2, 1}, 0);
    Tensor f = ToTensor()(x);
    check_close(t(f),
                {3 / 255.0, 6 / 255.0, 9 / 255.0, 2 / 255.0, 5 / 255.0, 8 / 255.0, 1 / 255.0,
                 4 / 255.0, 7 / 255.0},
                1e-6);
  }
}

TEST_CASE("RandomRotation: expand holds the whole image, outside pixels get fill") {
  Tensor x = u8_image({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor y = RandomRotation({90, 90}, InterpolationMode::Nearest, true)(x);
  CHECK(y.sizes() == IntArrayRef({4, 2}));
  check_close(y, {4, 8, 3, 7, 2, 6, 1, 5}, 0);
  Tensor z = RandomRotation({45, 45}, InterpolationMode::Nearest, false, std::nullopt,
                            200)(u8_image({5, 5}, std::vector<int>(25, 1)));
  // The corners of a 5x5 image rotated by 45 degrees come from outside, the center from inside.
  const std::vector<double> v = values(z);
  CHECK(v[0] == 200);
  CHECK(v[24] == 200);
  CHECK(v[12] == 1);
  EMBER_CHECK_THROWS(RandomRotation(-5), ValueError, "[RandomRotation]");
  EMBER_CHECK_THROWS(RandomRotation({10, 5}), ValueError, "[RandomRotation]");
}

TEST_CASE("RandomRotation: the angle is uniform in [lo, hi] and reproducible") {
  Tensor x = pattern_u8(9, 9, 1);
  RandomRotation t({-30, 30});
  Generator a(3), b(3);
  CHECK(bitwise_equal(t(x, a), t(x, b)));
  Generator g(7), g2 = g.clone();
  Tensor y = t(x, g);
  const double angle = data::uniform(g2, -30, 30);
  CHECK(bitwise_equal(y, t.rotate(x, angle)));
}

// ---- Resize ----

TEST_CASE("Resize: bilinear with and without antialias, nearest (hand-computed)") {
  Tensor x = f32_image({1, 1, 4}, {0, 2, 4, 6});
  // Plain bilinear: sources 0.5 and 2.5.
  check_close(Resize({1, 2}, InterpolationMode::Bilinear, false)(x), {1, 5}, 1e-6);
  // Antialias: triangle of support 2 centred at 1 and 3; weights (3, 3, 1)/7 and (1, 3, 3)/7.
  check_close(Resize({1, 2})(x), {10.0 / 7, 32.0 / 7}, 1e-6);
  check_close(Resize({1, 2}, InterpolationMode::Nearest)(x), {0, 4}, 0);
  // Upscaling 2 -> 4: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to the last pixel).
  Tensor u = f32_image({1, 2}, {0, 4});
  check_close(Resize({1, 4}, InterpolationMode::Bilinear, false)(u), {0, 1, 3, 4}, 1e-6);
  check_close(Resize({1, 4})(u), {0, 1, 3, 4}, 1e-6);
  check_close(Resize({1, 4}, InterpolationMode::Nearest)(u), {0, 0, 4, 4}, 0);
  // uint8 rounds: 1.75 -> 2, 3.25 -> 3.
  Tensor b = u8_image({1, 2}, {1, 4});
  check_close(Resize({1, 4}, InterpolationMode::Bilinear, false)(b), {1, 2, 3, 4}, 0);
}

TEST_CASE("Resize: one size sets the smaller edge, the longer one truncates") {
  CHECK(Resize(6).output_size(12, 16) == std::make_pair<int64_t, int64_t>(6, 8));
  CHECK(Resize(6).output_size(16, 12) == std::make_pair<int64_t, int64_t>(8, 6));
  CHECK(Resize(4).output_size(10, 15) == std::make_pair<int64_t, int64_t>(4, 6));
  CHECK(Resize(7).output_size(10, 15) == std::make_pair<int64_t, int64_t>(7, 10));  // 10.5
  CHECK(Resize({3, 5}).output_size(10, 15) == std::make_pair<int64_t, int64_t>(3, 5));
  Tensor y = Resize(6)(pattern_u8(12, 16, 3));
  CHECK(y.sizes() == IntArrayRef({6, 8, 3}));
  EMBER_CHECK_THROWS(Resize(0), ValueError, "[Resize]");
  EMBER_CHECK_THROWS(Resize({1, 2, 3}), ValueError, "[Resize]");
  EMBER_CHECK_THROWS(Resize(4)(zeros({2, 3, 4}, kInt32)), DTypeError, "[Resize]", "int32");
}

// ---- CenterCrop ----

TEST_CASE("CenterCrop: torchvision's rounding, zero padding when larger") {
  Tensor x = small_u8();  // (3, 4)
  // top = round(0.5) = 0, left = round(1.0) = 1.
  check_close(CenterCrop({2, 2})(x), gather(x, {0, 1}, {1, 2}), 0);
  // top = round(1.0) = 1, left = round(1.5) = 2.
  check_close(CenterCrop(1)(x), {60}, 0);
  // Height 3 -> 4: pads (0 above, 1 below).
  std::vector<double> e = gather(x, {0, 1, 2, -1}, {0, 1, 2, 3});
  for (double& v : e) v = v < 0 ? 0 : v;
  check_close(CenterCrop({4, 4})(x), e, 0);
  // Height 3 -> 5 and width 4 -> 2: pads 1 above and below, crops columns 1..2.
  e = gather(x, {-1, 0, 1, 2, -1}, {1, 2});
  for (double& v : e) v = v < 0 ? 0 : v;
  check_close(CenterCrop({5, 2})(x), e, 0);
  EMBER_CHECK_THROWS(CenterCrop({2, 0}), ValueError, "[CenterCrop]");
}

// ---- RandomResizedCrop ----

TEST_CASE("RandomResizedCrop: crop boxes lie inside, output is the resized crop") {
  Tensor x = pattern_u8(20, 30, 3);
  RandomResizedCrop t({8, 8});
  std::set<int64_t> heights;
  for (uint64_t s = 0; s < 300; ++s) {
    Generator g(s);
    const CropBox b = t.get_params(20, 30, g);
    CHECK(b.top >= 0);
    CHECK(b.left >= 0);
    CHECK(b.height > 0);
    CHECK(b.width > 0);
    CHECK(b.top + b.height <= 20);
    CHECK(b.left + b.width <= 30);
    heights.insert(b.height);
  }
  CHECK(heights.size() > 10);
  Generator g(11), g2 = g.clone();
  Tensor y = t(x, g);
  const CropBox b = t.get_params(20, 30, g2);
  Tensor c = x.slice(0, b.top, b.top + b.height).slice(1, b.left, b.left + b.width);
  CHECK(y.sizes() == IntArrayRef({8, 8, 3}));
  CHECK(bitwise_equal(y, Resize({8, 8})(c)));
  // A full-area, exact-ratio crop always succeeds and is the whole image.
  RandomResizedCrop full({5, 5}, {1.0, 1.0}, {1.5, 1.5});
  Generator g3(0);
  const CropBox w = full.get_params(20, 30, g3);
  CHECK((w.top == 0 && w.left == 0 && w.height == 20 && w.width == 30));
  // Impossible ratio: the fallback central crop clamps the ratio.
  RandomResizedCrop narrow({5, 5}, {1.0, 1.0}, {4.0, 5.0});
  const CropBox f = narrow.get_params(20, 30, g3);
  CHECK((f.height == 8 && f.width == 30 && f.top == 6 && f.left == 0));  // h = round(30 / 4)
  EMBER_CHECK_THROWS(RandomResizedCrop(8, {0.5, 0.1}), ValueError, "[RandomResizedCrop]");
}

// ---- ColorJitter ----

TEST_CASE("ColorJitter: fixed factors through degenerate ranges") {
  Tensor x = u8_image({2, 2}, {10, 100, 200, 60});
  check_close(ColorJitter({1.5, 1.5})(x), {15, 150, 255, 90}, 0);
  // Contrast 0.5 with mean 92.5: 0.5 x + 46.25, truncated.
  check_close(ColorJitter(0.0, {0.5, 0.5})(x), {51, 96, 146, 76}, 0);
  Tensor f = f32_image({1, 1, 3}, {0.2, 0.8, 0.5});
  check_close(ColorJitter({1.5, 1.5})(f), {0.3, 1.0, 0.75}, 1e-6);
  check_close(ColorJitter(0.0, {2.0, 2.0})(f), {0.0, 1.0, 0.5}, 1e-6);  // mean 0.5
  // RGB contrast uses the grayscale mean 0.2989 R + 0.587 G + 0.114 B.
  Tensor rgb = f32_image({3, 1, 1}, {1.0, 0.0, 0.0});
  check_close(adjust_contrast(rgb, 0.5), {0.5 + 0.5 * 0.2989, 0.5 * 0.2989, 0.5 * 0.2989}, 1e-6);
  // Saturation 0 is the grayscale image in every channel.
  check_close(adjust_saturation(rgb, 0.0), {0.2989, 0.2989, 0.2989}, 1e-6);
  EMBER_CHECK_THROWS(ColorJitter(-0.5), ValueError, "[ColorJitter]", "brightness");
  EMBER_CHECK_THROWS(adjust_contrast(zeros({2, 3, 3}), 0.5), ShapeError, "[adjust_contrast]",
                     "(2, 3, 3)");
}

TEST_CASE("ColorJitter: draws randperm(4) then the enabled factors, reproducibly") {
  Tensor x = pattern_u8(5, 6, 3);
  ColorJitter t(0.4, 0.4, 0.4);
  Generator a(1), b(1);
  CHECK(bitwise_equal(t(x, a), t(x, b)));
  Generator g(9), g2 = g.clone();
  Tensor y = t(x, g);
  const std::vector<int64_t> order = data::permutation(int64_t{4}, g2);
  const double fb = data::uniform(g2, 0.6, 1.4), fc = data::uniform(g2, 0.6, 1.4),
               fs = data::uniform(g2, 0.6, 1.4);
  Tensor e = x;
  for (int64_t id : order) {
    if (id == 0) e = adjust_brightness(e, fb);
    if (id == 1) e = adjust_contrast(e, fc);
    if (id == 2) e = adjust_saturation(e, fs);
  }
  CHECK(bitwise_equal(y, e));
  CHECK(bitwise_equal(ColorJitter()(x), x));  // nothing enabled
}

// ---- composition ----

TEST_CASE("Compose: the CIFAR pipeline as one Transform, Lambda") {
  Transform t =
      Compose({RandomCrop(28, 4), RandomHorizontalFlip(), ToTensor(), Normalize({0.1307}, {0.3081}),
               Lambda([](const Tensor& v) { return v * 2.0; })});
  Tensor x = pattern_u8(28, 28, 1);
  data::SampleGeneratorGuard guard(Generator(3));
  Tensor y = t(x);
  CHECK(y.sizes() == IntArrayRef({1, 28, 28}));
  CHECK(y.dtype() == kFloat32);
  EMBER_CHECK_THROWS(Compose({Transform()}), ValueError, "[Compose]");
  EMBER_CHECK_THROWS(Lambda(Transform()), ValueError, "[Lambda]");
}

// ---- layouts, strides ----

TEST_CASE("transforms: uint8 HWC and float CHW follow the same geometry") {
  Tensor hwc = pattern_u8(7, 9, 3);
  Tensor chw = ToTensor()(hwc);
  const std::vector<Transform> ts = {
      RandomCrop({5, 6}, {2, 1, 0, 3}, false, 0, "reflect"),
      RandomCrop({9, 9}, {}, true, 0, "symmetric"),
      RandomHorizontalFlip(1.0),
      RandomVerticalFlip(1.0),
      RandomRotation(40),
      RandomRotation(40, InterpolationMode::Nearest, true),
      CenterCrop({4, 11}),
      Resize({4, 13}, InterpolationMode::Nearest),
      RandomResizedCrop(5, {0.08, 1.0}, {0.75, 4.0 / 3}, InterpolationMode::Nearest),
  };
  for (size_t i = 0; i < ts.size(); ++i) {
    INFO("transform " << i);
    data::SampleGeneratorGuard g1(Generator(i + 1));
    Tensor a = ToTensor()(ts[i](hwc));
    data::SampleGeneratorGuard g2(Generator(i + 1));
    Tensor b = ts[i](chw);
    CHECK(bitwise_equal(a, b));
  }
}

TEST_CASE("transforms: non-contiguous inputs give bitwise the contiguous result") {
  Tensor hwc = pattern_u8(8, 10, 3);
  Tensor hwc_nc = hwc_non_contiguous(hwc);
  REQUIRE(!hwc_nc.is_contiguous());
  Tensor chw = ToTensor()(hwc);
  Tensor chw_nc = ember::test::non_contiguous(chw);
  Tensor hw_nc = ember::test::non_contiguous(hwc.select(2, 0).contiguous());
  REQUIRE(!chw_nc.is_contiguous());
  const std::vector<Transform> ts = {
      RandomCrop({6, 7}, 2, false, 3, "edge"),
      RandomHorizontalFlip(1.0),
      RandomVerticalFlip(1.0),
      RandomRotation(30, InterpolationMode::Bilinear),
      Resize({5, 5}),
      Resize({13, 4}, InterpolationMode::Bilinear, false),
      CenterCrop(5),
      RandomResizedCrop(6),
      ColorJitter(0.5, 0.5, 0.5),
      ToTensor(),
  };
  for (size_t i = 0; i < ts.size(); ++i) {
    INFO("transform " << i);
    int layout = 0;
    for (const auto& [c, nc] : {std::pair{hwc, hwc_nc}, std::pair{chw, chw_nc},
                                std::pair{hwc.select(2, 0).contiguous(), hw_nc}}) {
      INFO("layout " << layout++ << " shape " << c.sizes());
      data::SampleGeneratorGuard g1{Generator(i)};
      Tensor a = ts[i](c);
      data::SampleGeneratorGuard g2{Generator(i)};
      Tensor b = ts[i](nc);
      CHECK(bitwise_equal(a, b));
    }
  }
  Tensor f = Normalize({0.5, 0.4, 0.3}, {0.2, 0.3, 0.4})(chw);
  CHECK(bitwise_equal(f, Normalize({0.5, 0.4, 0.3}, {0.2, 0.3, 0.4})(chw_nc)));
}

// ---- torchvision golden outputs ----

namespace {

struct GoldenTensor {
  DType dtype = kFloat32;
  std::vector<int64_t> sizes;
  std::vector<double> values;
};

GoldenTensor parse_tensor(std::istringstream& in) {
  GoldenTensor t;
  std::string dt, tok;
  in >> dt;
  t.dtype = dt == "uint8" ? kUInt8 : dt == "float64" ? kFloat64 : kFloat32;
  while (in >> tok && tok != ":") t.sizes.push_back(std::stoll(tok));
  double v;
  while (in >> v) t.values.push_back(v);
  return t;
}

Tensor to_tensor(const GoldenTensor& g) {
  return tensor(g.values, kFloat64).reshape(g.sizes).to(g.dtype);
}

struct GoldenCase {
  std::string name, op;
  std::map<std::string, std::string> params;
  std::string input;
  GoldenTensor out;
};

Tensor run_case(const GoldenCase& c, const Tensor& x) {
  auto num = [&](const std::string& k) { return std::stod(c.params.at(k)); };
  auto integer = [&](const std::string& k) {
    return static_cast<int64_t>(std::stoll(c.params.at(k)));
  };
  auto interp = [&]() {
    return c.params.at("interp") == "nearest" ? InterpolationMode::Nearest
                                              : InterpolationMode::Bilinear;
  };
  if (c.op == "rotate") {
    std::optional<std::pair<double, double>> center;
    if (c.params.count("cx")) center = std::make_pair(num("cx"), num("cy"));
    const double fill = c.params.count("fill") ? num("fill") : 0.0;
    const double a = num("angle");
    return RandomRotation({a, a}, interp(), integer("expand") != 0, center, fill)(x);
  }
  if (c.op == "resize") {
    const IntList size =
        integer("w") == 0 ? IntList(integer("h")) : IntList({integer("h"), integer("w")});
    return Resize(size, interp(), integer("antialias") != 0)(x);
  }
  if (c.op == "center_crop") return CenterCrop({integer("h"), integer("w")})(x);
  if (c.op == "pad") {
    const int64_t l = integer("l"), t = integer("t"), r = integer("r"), b = integer("b");
    const int64_t H = x.size(x.dtype() == kUInt8 ? 0 : 1), W = x.size(x.dtype() == kUInt8 ? 1 : 2);
    return RandomCrop({H + t + b, W + l + r}, {l, t, r, b}, false, num("fill"),
                      c.params.at("mode"))(x);
  }
  if (c.op == "brightness") return adjust_brightness(x, num("factor"));
  if (c.op == "contrast") return adjust_contrast(x, num("factor"));
  if (c.op == "saturation") return adjust_saturation(x, num("factor"));
  if (c.op == "to_tensor_normalize")
    return Normalize({0.5, 0.4, 0.3}, {0.2, 0.25, 0.3})(ToTensor()(x));
  FAIL("unknown golden op " << c.op);
  return {};
}

// Tolerances: float outputs within 2e-6 * max(1, max |value|) (float32 rounding of a different
// operation order); uint8 within 1 (a float32 rounding difference just below .5). Nearest-neighbour
// rotations may pick the other neighbour where the source coordinate is a near-exact tie in
// float32; at most 2% of such pixels may differ.
struct Stats {
  double max_diff = 0;
  int64_t differing = 0, total = 0;
};

double max_abs(const GoldenTensor& t) {
  double m = 1;
  for (double v : t.values) m = std::max(m, std::abs(v));
  return m;
}

Stats compare(const Tensor& got, const GoldenTensor& want, double tol) {
  Stats s;
  const std::vector<double> g = values(got);
  for (size_t i = 0; i < g.size(); ++i) {
    const double d = std::abs(g[i] - want.values[i]);
    s.max_diff = std::max(s.max_diff, d);
    s.differing += d > tol ? 1 : 0;
  }
  s.total = static_cast<int64_t>(g.size());
  return s;
}

std::vector<GoldenCase> read_golden(std::map<std::string, Tensor>& inputs) {
  std::ifstream f(EMBER_SOURCE_DIR "/tests/data/golden/transforms.txt");
  REQUIRE(f.good());
  std::vector<GoldenCase> cases;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string kind;
    in >> kind;
    if (kind == "input") {
      std::string id;
      in >> id;
      inputs[id] = to_tensor(parse_tensor(in));
    } else if (kind == "case") {
      GoldenCase c;
      in >> c.name >> c.op;
      std::string kv;
      while (in >> kv) {
        const size_t eq = kv.find('=');
        c.params[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
      c.input = c.params.at("in");
      cases.push_back(c);
    } else if (kind == "out") {
      cases.back().out = parse_tensor(in);
    }
  }
  return cases;
}

}  // namespace

TEST_CASE("transforms: rotate, resize, center crop, pad and color match torchvision golden data") {
  std::map<std::string, Tensor> inputs;
  const std::vector<GoldenCase> cases = read_golden(inputs);
  REQUIRE(cases.size() > 90);
  for (const GoldenCase& c : cases) {
    INFO("case " << c.name);
    Tensor y = run_case(c, inputs.at(c.input));
    REQUIRE(y.sizes() == IntArrayRef(c.out.sizes));
    REQUIRE(y.dtype() == c.out.dtype);
    const bool is_u8 = c.out.dtype == kUInt8;
    const bool nearest_rotate = c.op == "rotate" && c.params.at("interp") == "nearest";
    const Stats s = compare(y, c.out, is_u8 ? 0.0 : 2e-6 * max_abs(c.out));
    INFO("max |diff| " << s.max_diff << ", " << s.differing << " of " << s.total
                       << " values differ");
    if (nearest_rotate) {
      CHECK(s.differing <= s.total / 50);
    } else {
      CHECK(s.max_diff <= (is_u8 ? 1.0 : 2e-6 * max_abs(c.out)));
      if (is_u8) CHECK(s.differing <= s.total / 50);
    }
    if (std::getenv("EMBER_GOLDEN_REPORT") != nullptr)
      WARN(c.name << ": max |diff| " << s.max_diff << ", " << s.differing << "/" << s.total);
  }
}
