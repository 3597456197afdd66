// The safetensors header: the format's dtype table, a strict parser that validates a header
// against the format's safety rules, and the writer that encodes one byte for byte like the
// reference implementation (huggingface/safetensors, safetensors/src/tensor.rs).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ember/dtype.hpp"
#include "ember/io/safetensors.hpp"

namespace ember::io_detail {

/// The reference's header size cap (MAX_HEADER_SIZE).
inline constexpr uint64_t kMaxHeaderSize = 100'000'000;
/// Ember's own cap on a tensor's rank (the format has none; no real file comes near it).
inline constexpr size_t kMaxRank = 64;

/// One dtype of the format. `bits` is its size (F4 and F6_* are sub-byte); `order` is its
/// position in the reference's Dtype enum (safetensors 0.8), which the writer sorts by
/// (descending) so that larger alignments come first.
struct FormatDType {
  const char* name;
  size_t bits;
  int order;
  std::optional<DType> ember;  // the Ember dtype a tensor is read as (widened when larger)
};

/// The format dtype called `name` ("F32"), or null.
const FormatDType* find_format_dtype(std::string_view name);
/// The format dtype an Ember dtype is written as.
const FormatDType& format_dtype_of(DType t);

/// Parses and validates the JSON header (the N bytes after the size prefix, padding included)
/// of a file whose data buffer is `data_size` bytes. `where` starts every error message, e.g.
/// "[load_safetensors] 'model.safetensors'". Throws IOError on any violation.
SafetensorsHeader parse_header(std::string_view json, uint64_t data_size, const std::string& where);

/// Validates the size prefix of a file of `file_size` bytes and returns N; `prefix` holds the
/// first 8 bytes (or fewer when the file is shorter).
uint64_t check_header_size(std::string_view prefix, uint64_t file_size, const std::string& where);

/// The compact JSON the reference writes for these entries (offsets already assigned, in
/// order) and metadata, padded with spaces to a multiple of 8. `op` names the caller in errors.
std::string encode_header(const std::vector<SafetensorsEntry>& entries,
                          const std::map<std::string, std::string>& metadata, const char* op);

/// Whether s is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace ember::io_detail
