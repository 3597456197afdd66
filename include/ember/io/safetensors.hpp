// safetensors: the tensor file format of Hugging Face's `safetensors` package, read and written
// byte for byte like its reference implementation, so weights move between Ember, PyTorch and
// Python's safetensors. See docs/serialization.md for the format, the validation rules and the
// dtype mapping.
//
// Layout: an 8-byte little-endian header size N, N bytes of UTF-8 JSON
//   {"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [2, 3],
//    "data_offsets": [begin, end]}, ...}
// padded with spaces to a multiple of 8, then the data buffer (tensors in C order, little
// endian, offsets relative to the buffer).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ember/state_dict.hpp"

namespace ember {

/// Writes `tensors` (any device, any strides; written contiguous, from the CPU) and `metadata` to
/// `path` atomically: a temporary file in the same directory, fsync, rename over `path`, fsync of
/// the directory. On failure `path` is untouched and IOError is thrown.
void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// The bytes save_safetensors would write.
std::string serialize_safetensors(const StateDict& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

/// Reads a file by memory-mapping it: the tensors are CPU views of one private (copy-on-write)
/// mapping that stays alive while any of them does, so in-place ops never reach the file. A
/// tensor whose data is not aligned for its dtype is copied out. Entries are ordered by name.
/// I16 and U16 are read as int32 and U32 as int64 (exact widening copies); a tensor of another
/// dtype Ember lacks (U64, F8_*, ...) raises IOError. Every failure, a malformed file included, is
/// an IOError whose message names the file and the problem; a crafted file never crashes the
/// reader or makes it allocate more than the file's size.
StateDict load_safetensors(const std::string& path);

/// The header's `__metadata__` map (empty when absent); reads and validates only the header.
std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);

/// Parses safetensors bytes held in memory; the tensors are copies that own their data.
StateDict deserialize_safetensors(std::string_view bytes);
std::map<std::string, std::string> deserialize_safetensors_metadata(std::string_view bytes);

/// One header entry as the file declares it, before any conversion to an Ember dtype.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;           // "F32", "BF16", "U64", ...
  std::vector<int64_t> shape;  // [] for a 0-d tensor
  uint64_t begin = 0;          // byte range within the data buffer, end exclusive
  uint64_t end = 0;
};

/// The validated header of a file: its entries ordered by offset and its metadata.
struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;
  std::map<std::string, std::string> metadata;
  uint64_t header_size = 0;  // N, the JSON length including padding
};
SafetensorsHeader read_safetensors_header(const std::string& path);

}  // namespace ember
