// TensorBoard event files: a writer like torch.utils.tensorboard.SummaryWriter (scalars, images,
// histograms) and a reader that checks every record, for tests and tools.
//
//   ember::TensorBoardWriter tb("runs/resnet20");
//   tb.add_scalar("train/loss", loss.item<double>(), step);
//   tb.add_image("samples", grid, epoch);   // uint8 (H, W, C) or float (C, H, W) in [0, 1]
//
// Format: TFRecord framing (u64 little-endian length, masked CRC-32C of the length, the data,
// masked CRC-32C of the data) around serialized tensorflow.Event protocol buffers. The first
// record is Event{wall_time, file_version: "brain.Event:2"}; the file is named
// events.out.tfevents.<unix time>.<host>.<pid>.<n><suffix>, which TensorBoard picks up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "ember/tensor.hpp"

namespace ember {

/// CRC-32C (Castagnoli; reflected polynomial 0x82F63B78, init and xorout 0xFFFFFFFF) of n bytes,
/// continuing from `crc` (the CRC of the bytes before). crc32c("123456789") == 0xE3069283.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
/// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t n);

/// Appends events to a new event file in `log_dir` (created with its parents). Each record is
/// flushed to the operating system when written, so a killed process loses no complete record.
class TensorBoardWriter {
 public:
  explicit TensorBoardWriter(const std::string& log_dir, const std::string& filename_suffix = "");
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  /// A scalar (stored as float32, like TensorBoard). wall_time defaults to now (seconds).
  void add_scalar(const std::string& tag, double value, int64_t step,
                  std::optional<double> wall_time = std::nullopt);
  /// An image, PNG-encoded: uint8 (H, W) or (H, W, C), or float32/float64 (C, H, W) or (H, W)
  /// with values in [0, 1] (clamped, times 255, rounded). C is 1, 3 or 4.
  void add_image(const std::string& tag, const Tensor& image, int64_t step,
                 std::optional<double> wall_time = std::nullopt);
  /// A histogram of the values (any real dtype) in `bins` equal-width buckets between their
  /// minimum and maximum, as torch's add_histogram(bins=N). Non-finite values raise ValueError.
  void add_histogram(const std::string& tag, const Tensor& values, int64_t step, int64_t bins = 30,
                     std::optional<double> wall_time = std::nullopt);
  void flush();
  /// Flushes and closes; later adds raise IOError. The destructor closes too.
  void close();
  /// The event file's path.
  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& event);
  std::string path_;
  std::FILE* file_ = nullptr;
};

/// One Summary.Value of an event, as read back.
struct TensorBoardValue {
  std::string tag;
  std::optional<float> simple_value;
  // Image (when has_image): height, width, colorspace (1 gray, 3 RGB, 4 RGBA), PNG bytes.
  bool has_image = false;
  int64_t height = 0, width = 0, colorspace = 0;
  std::string encoded_image;
  // Histogram (when has_histogram).
  bool has_histogram = false;
  double min = 0, max = 0, num = 0, sum = 0, sum_squares = 0;
  std::vector<double> bucket_limit, bucket;
};

/// One event, as read back.
struct TensorBoardEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<TensorBoardValue> values;
};

/// Reads every record of an event file, checking both CRCs of each and decoding the Event
/// fields above (unknown fields are skipped). IOError naming the file and the record on a bad
/// CRC, a truncated record or a malformed protocol buffer.
std::vector<TensorBoardEvent> read_tensorboard_events(const std::string& path);

}  // namespace ember
