// Devices: where a tensor's storage lives.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

namespace ember {

enum class DeviceType : uint8_t { CPU, CUDA };
inline constexpr DeviceType kCPU = DeviceType::CPU;
inline constexpr DeviceType kCUDA = DeviceType::CUDA;

/// A device type plus an index (-1 means "the current one" for CUDA; CPU is always index -1).
class Device {
 public:
  Device(DeviceType type, int index = -1);  // NOLINT: implicit, like c10::Device(kCUDA)
  /// Parses "cpu", "cuda", "cuda:1". Throws ValueError on anything else.
  explicit Device(const std::string& spec);
  explicit Device(const char* spec) : Device(std::string(spec)) {}

  DeviceType type() const { return type_; }
  int index() const { return index_; }
  bool has_index() const { return index_ >= 0; }
  bool is_cpu() const { return type_ == kCPU; }
  bool is_cuda() const { return type_ == kCUDA; }
  /// "cpu", "cuda", "cuda:0".
  std::string str() const;

  bool operator==(const Device& o) const { return type_ == o.type_ && index_ == o.index_; }
  bool operator!=(const Device& o) const { return !(*this == o); }

 private:
  DeviceType type_;
  int index_;
};

std::ostream& operator<<(std::ostream& os, const Device& d);
std::ostream& operator<<(std::ostream& os, DeviceType t);

}  // namespace ember
