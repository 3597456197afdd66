// make_grid, encode_png (stb_image_write into memory) and save_image.
#include "ember/io/image.hpp"

#include <stb_image_write.h>

#include "ember/error.hpp"
#include "ember/ops.hpp"
#include "io/file.hpp"
#include "io/png.hpp"

namespace ember {

Tensor make_grid(const Tensor& images, int64_t nrow, int64_t padding,
                 std::optional<std::pair<double, double>> value_range, double pad_value) {
  EMBER_CHECK(images.defined() && images.dim() == 4, ShapeError,
              "[make_grid] expected images (N, C, H, W), got ",
              images.defined() ? images.sizes() : IntArrayRef());
  EMBER_CHECK(nrow >= 1 && padding >= 0, ValueError,
              "[make_grid] expected nrow >= 1 and padding >= 0, got ", nrow, " and ", padding);
  Tensor x = images.detach().to(kFloat32);
  if (value_range) {
    const auto [lo, hi] = *value_range;
    EMBER_CHECK(hi > lo, ValueError, "[make_grid] value_range needs lo < hi, got (", lo, ", ", hi,
                ")");
    x = ((x - lo) / (hi - lo)).clamp(0.0, 1.0);
  }
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t cols = std::min(nrow, std::max<int64_t>(n, 1));
  const int64_t rows = (n + cols - 1) / cols;
  Tensor grid = full({c, rows * (h + padding) + padding, cols * (w + padding) + padding}, pad_value);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t top = (i / cols) * (h + padding) + padding;
    const int64_t left = (i % cols) * (w + padding) + padding;
    grid.narrow(1, top, h).narrow(2, left, w).copy_(x[i]);
  }
  return grid;
}

namespace io_detail {

PngImage encode_png_image(const Tensor& image, const char* op) {
  EMBER_CHECK(image.defined(), ValueError, "[", op, "] the image is undefined");
  EMBER_CHECK(image.device().is_cpu(), DeviceError, "[", op, "] expected a CPU tensor, got ",
              image.device());
  Tensor hwc;  // uint8 (H, W, C)
  if (image.dtype() == kUInt8) {
    EMBER_CHECK(image.dim() == 2 || image.dim() == 3, ShapeError,
                "[", op, "] expected a uint8 image (H, W) or (H, W, C), got ", image.sizes());
    hwc = image.dim() == 2 ? image.unsqueeze(2) : image;
  } else {
    EMBER_CHECK(image.dtype() == kFloat32 || image.dtype() == kFloat64, DTypeError,
                "[", op, "] expected uint8, float32 or float64, got ", image.dtype());
    EMBER_CHECK(image.dim() == 2 || image.dim() == 3, ShapeError,
                "[", op, "] expected a float image (C, H, W) or (H, W), got ", image.sizes());
    Tensor chw = image.dim() == 2 ? image.unsqueeze(0) : image;
    hwc = (chw.detach().permute({1, 2, 0}).clamp(0.0, 1.0) * 255.0).round().to(kUInt8);
  }
  hwc = hwc.contiguous();
  const int64_t h = hwc.size(0), w = hwc.size(1), c = hwc.size(2);
  EMBER_CHECK(c == 1 || c == 3 || c == 4, ShapeError,
              "[", op, "] expected 1, 3 or 4 channels, got image ", image.sizes());
  EMBER_CHECK(h >= 1 && w >= 1 && h <= 65535 && w <= 65535, ShapeError,
              "[", op, "] image sides must lie in [1, 65535], got ", image.sizes());
  PngImage png{std::string(), h, w, c};
  auto sink = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data),
                                           static_cast<size_t>(size));
  };
  const int ok = stbi_write_png_to_func(sink, &png.bytes, static_cast<int>(w), static_cast<int>(h),
                                        static_cast<int>(c), hwc.data_ptr<uint8_t>(),
                                        static_cast<int>(w * c));
  EMBER_CHECK(ok != 0, IOError, "[", op, "] PNG encoding failed for image ", image.sizes());
  return png;
}

}  // namespace io_detail

std::string encode_png(const Tensor& image) {
  return io_detail::encode_png_image(image, "encode_png").bytes;
}

void save_image(const Tensor& image, const std::string& path) {
  const std::string png = io_detail::encode_png_image(image, "save_image").bytes;
  io_detail::AtomicWriter out(path, "save_image");
  out.write(png.data(), png.size());
  out.commit();
}

}  // namespace ember
