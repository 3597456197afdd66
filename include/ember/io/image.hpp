// Images to files: torchvision.utils' make_grid and save_image, as PNG.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "ember/tensor.hpp"

namespace ember {

/// Tiles images (N, C, H, W) into one (C, H', W') image of ceil(N / nrow) rows of nrow cells,
/// with `padding` pixels of `pad_value` around every cell, as torchvision.utils.make_grid. With
/// value_range = {lo, hi}, values are first mapped to [0, 1] by (x - lo) / (hi - lo) and clamped.
Tensor make_grid(const Tensor& images, int64_t nrow = 8, int64_t padding = 2,
                 std::optional<std::pair<double, double>> value_range = std::nullopt,
                 double pad_value = 0.0);

/// PNG bytes of an image: uint8 (H, W) or (H, W, C), or float32/float64 (C, H, W) or (H, W) with
/// values in [0, 1] (clamped, times 255, rounded); C is 1, 3 or 4.
std::string encode_png(const Tensor& image);

/// Writes encode_png(image) to path atomically (a temporary file renamed over the target).
void save_image(const Tensor& image, const std::string& path);

}  // namespace ember
