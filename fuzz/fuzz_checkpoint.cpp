// libFuzzer target: load_checkpoint on arbitrary bytes. A mutated file almost never carries a
// matching checksum, so each input is tried twice: as it is (the checksum check and everything
// before it), and, when its header holds the checksum field, with the field patched to the XXH64
// of the mutated bytes, so the fuzzer also reaches the metadata, RNG-state and section checks
// behind it. Seeds: fuzz/corpus/checkpoint/.
#include <string>
#include <string_view>

#include "ember/io/checkpoint.hpp"
#include "fuzz_util.hpp"
#include "io/safetensors_impl.hpp"

namespace {

std::string g_path;

// The bytes with the 16 hex digits after the (single) checksum field replaced by the XXH64 of
// the whole file with those digits read as '0', as save_checkpoint computes it; "" when the
// needle is missing, repeated or truncated.
std::string with_valid_checksum(std::string bytes) {
  constexpr std::string_view kNeedle = "\"ember.checksum\":\"xxh64:";
  const size_t at = bytes.find(kNeedle);
  if (at == std::string::npos || bytes.find(kNeedle, at + 1) != std::string::npos) return "";
  const size_t hex_at = at + kNeedle.size();
  if (hex_at + 16 > bytes.size()) return "";
  bytes.replace(hex_at, 16, std::string(16, '0'));
  ember::io_detail::XXH64 hash;
  hash.update(bytes.data(), bytes.size());
  const uint64_t h = hash.digest();
  static const char* digits = "0123456789abcdef";
  for (size_t i = 0; i < 16; ++i) bytes[hex_at + 15 - i] = digits[(h >> (4 * i)) & 15];
  return bytes;
}

void load(const std::string& bytes) {
  ember::fuzz::write_file(g_path, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  try {
    ember::Checkpoint c = ember::load_checkpoint(g_path);
    uint64_t sum = ember::fuzz::touch(c.model) + ember::fuzz::touch(c.optimizer) +
                   ember::fuzz::touch(c.scheduler) + static_cast<uint64_t>(c.step);
    for (const auto& [name, s] : c.rng) sum += name.size() + s.seed + s.offset;
    for (const auto& [k, v] : c.metadata) sum += k.size() + v.size();
    ember::fuzz::consume(sum);
  } catch (const ember::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ember::fuzz::init("checkpoint");
  g_path = ember::fuzz::scratch_dir() + "/input.safetensors";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  load(bytes);
  const std::string fixed = with_valid_checksum(bytes);
  if (!fixed.empty() && fixed != bytes) load(fixed);
  return 0;
}
