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

/// 64-bit FNV-1a (Fowler, Noll, Vo): offset basis 0xcbf29ce484222325, prime 0x100000001b3.
struct Fnv1a64 {
  uint64_t state = 0xcbf29ce484222325ull;
  void update(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    uint64_t h = state;
    for (size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 0x100000001b3ull;
    }
    state = h;
  }
};

}  // namespace ember::io_detail
