// Pieces of the safetensors reader and writer that checkpoints reuse.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ember/io/safetensors.hpp"
#include "io/file.hpp"

namespace ember::io_detail {

/// Tensors ready to write: header entries with offsets assigned in the reference's order
/// (dtype alignment descending, then name), the matching contiguous CPU tensors, and the
/// encoded (padded) header.
struct PreparedWrite {
  std::vector<SafetensorsEntry> entries;
  std::vector<Tensor> tensors;
  std::string header;
  uint64_t data_size = 0;
};
PreparedWrite prepare_write(const StateDict& tensors,
                            const std::map<std::string, std::string>& metadata, const char* op);

/// The 8-byte little-endian header size.
std::string size_prefix(uint64_t n);

/// A mapped, validated safetensors file.
struct MappedSafetensors {
  std::shared_ptr<MappedFile> file;
  SafetensorsHeader header;
  uint64_t data_offset = 0;  // 8 + N
};
MappedSafetensors map_safetensors(const std::string& path, const std::string& where);

/// The entries as Ember tensors, ordered by name. With a mapping, aligned tensors are views of
/// it; otherwise (or when misaligned or widened) they are copies.
StateDict make_tensors(const SafetensorsHeader& header, const uint8_t* buffer,
                       const std::shared_ptr<MappedFile>& mapping, const std::string& where);

/// XXH64 (Yann Collet's xxHash, 64-bit, seed 0), streaming: update() any number of times, then
/// digest(). Chosen over FNV-1a for speed: it consumes 32 bytes per round in four independent
/// lanes (about 20x FNV-1a's byte-serial chain), so verifying a checkpoint costs little next to
/// reading it.
class XXH64 {
 public:
  void update(const void* data, size_t n);
  uint64_t digest() const;

 private:
  static constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull, kP2 = 0xC2B2AE3D27D4EB4Full,
                            kP3 = 0x165667B19E3779F9ull, kP4 = 0x85EBCA77C2B2AE63ull,
                            kP5 = 0x27D4EB2F165667C5ull;
  uint64_t acc_[4] = {kP1 + kP2, kP2, 0, 0 - kP1};
  unsigned char buf_[32] = {};
  size_t buffered_ = 0;
  uint64_t total_ = 0;
  friend struct XXH64Impl;
};

}  // namespace ember::io_detail
