// PNG encoding with the image's geometry, shared by save_image/encode_png and the TensorBoard
// writer (whose image summaries carry height, width and channel count beside the bytes).
#pragma once

#include <cstdint>
#include <string>

#include "ember/tensor.hpp"

namespace ember::io_detail {

struct PngImage {
  std::string bytes;
  int64_t height = 0, width = 0, channels = 0;
};

/// See ember::encode_png for the accepted layouts; `op` names the caller in errors.
PngImage encode_png_image(const Tensor& image, const char* op);

}  // namespace ember::io_detail
