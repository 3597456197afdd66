// Checkpoints: one safetensors file with model./optimizer./scheduler./rng. tensors and
// ember.* metadata (format, version, step, checksum). The checksum is XXH64 over every byte of
// the file with the 16 hex digits of the checksum itself read as '0', so a change to any byte
// (size prefix, header, padding, data) is detected.
#include "ember/io/checkpoint.hpp"

#include <charconv>
#include <cstring>

#include "ember/ops.hpp"
#include "io/safetensors_impl.hpp"

namespace ember {

namespace {

constexpr const char* kFormatKey = "ember.format";
constexpr const char* kFormatValue = "ember.checkpoint";
constexpr const char* kVersionKey = "ember.format_version";
constexpr const char* kStepKey = "ember.step";
constexpr const char* kChecksumKey = "ember.checksum";
constexpr std::string_view kChecksumNeedle = "\"ember.checksum\":\"xxh64:";
constexpr size_t kHexDigits = 16;
constexpr std::string_view kChecksumAlgorithm = "xxh64:";
const char* const kSections[] = {"model", "optimizer", "scheduler"};

std::string hex16(uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s(kHexDigits, '0');
  for (size_t i = 0; i < kHexDigits; ++i) s[kHexDigits - 1 - i] = digits[(v >> (4 * i)) & 15];
  return s;
}

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::string_view(s).substr(0, prefix.size()) == prefix;
}

// Where the checksum's hex digits sit within the header (the needle occurs exactly once).
size_t checksum_position(std::string_view header, const std::string& where) {
  size_t at = header.find(kChecksumNeedle);
  EMBER_CHECK(at != std::string_view::npos && header.rfind(kChecksumNeedle) == at, IOError, where,
              ": the header does not hold exactly one '", kChecksumKey,
              "' field in canonical form");
  size_t pos = at + kChecksumNeedle.size();
  EMBER_CHECK(pos + kHexDigits <= header.size(), IOError, where, ": truncated checksum field");
  return pos;
}

int64_t parse_int(const std::string& s, const std::string& what, const std::string& where) {
  int64_t v = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  EMBER_CHECK(ec == std::errc() && p == end && !s.empty(), IOError, where, ": ", what, " '", s,
              "' is not an integer");
  return v;
}

}  // namespace

GeneratorState GeneratorState::capture(const Generator& gen) {
  return GeneratorState{gen.current_seed(), gen.offset()};
}

void GeneratorState::restore(Generator& gen) const {
  gen.set_current_seed(seed);
  gen.set_offset(offset);
}

void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  std::map<std::string, std::string> meta;
  for (const auto& [k, v] : ckpt.metadata) {
    EMBER_CHECK(!starts_with(k, "ember."), ValueError, "[save_checkpoint] metadata key '", k,
                "' uses the reserved prefix 'ember.'");
    meta.emplace(k, v);
  }
  meta[kFormatKey] = kFormatValue;
  meta[kVersionKey] = std::to_string(kCheckpointFormatVersion);
  meta[kStepKey] = std::to_string(ckpt.step);
  meta[kChecksumKey] = std::string(kChecksumAlgorithm) +
                       std::string(kHexDigits, '0');  // the digits are patched below

  StateDict all;
  all.update(ckpt.model, "model");
  all.update(ckpt.optimizer, "optimizer");
  all.update(ckpt.scheduler, "scheduler");
  std::map<std::string, GeneratorState> rng = ckpt.rng;
  if (!rng.count("default")) rng["default"] = GeneratorState::capture(default_generator());
  for (const auto& [name, s] : rng) {
    Tensor t = empty({2}, kInt64);
    int64_t* p = t.data_ptr<int64_t>();
    std::memcpy(&p[0], &s.seed, 8);  // uint64 bit patterns in int64 slots
    std::memcpy(&p[1], &s.offset, 8);
    all.insert("rng." + name, t);
  }

  io_detail::PreparedWrite w = io_detail::prepare_write(all, meta, "save_checkpoint");
  const std::string where = "[save_checkpoint] '" + path + "'";
  const size_t hex_at = 8 + checksum_position(w.header, where);

  io_detail::XXH64 hash;
  io_detail::AtomicWriter out(path, "save_checkpoint");
  const std::string prefix = io_detail::size_prefix(w.header.size());
  hash.update(prefix.data(), prefix.size());
  hash.update(w.header.data(), w.header.size());
  out.write(prefix.data(), prefix.size());
  out.write(w.header.data(), w.header.size());
  for (const Tensor& t : w.tensors) {
    if (t.nbytes() == 0) continue;
    hash.update(t.data_ptr(), t.nbytes());
    out.write(t.data_ptr(), t.nbytes());
  }
  const std::string digits = hex16(hash.digest());
  out.write_at(hex_at, digits.data(), digits.size());
  out.commit();
}

Checkpoint load_checkpoint(const std::string& path) {
  const std::string where = "[load_checkpoint] '" + path + "'";
  io_detail::MappedSafetensors f = io_detail::map_safetensors(path, where);
  const std::map<std::string, std::string>& meta = f.header.metadata;
  auto get = [&](const char* key) -> const std::string& {
    auto it = meta.find(key);
    EMBER_CHECK(it != meta.end(), IOError, where, ": not an Ember checkpoint (no '", key,
                "' in the metadata)");
    return it->second;
  };
  EMBER_CHECK(get(kFormatKey) == kFormatValue, IOError, where, ": '", kFormatKey, "' is '",
              get(kFormatKey), "', not '", kFormatValue, "'");
  const int64_t version = parse_int(get(kVersionKey), "format version", where);
  EMBER_CHECK(version >= 1 && version <= kCheckpointFormatVersion, IOError, where,
              ": format version ", version, " is not supported (this build reads 1 to ",
              kCheckpointFormatVersion, ")");

  // Verify the checksum before trusting anything else in the file.
  const std::string& stored = get(kChecksumKey);
  const uint8_t* bytes = f.file->data;
  std::string_view header(reinterpret_cast<const char*>(bytes) + 8, f.header.header_size);
  const size_t hex_at = 8 + checksum_position(header, where);
  const size_t algo = kChecksumAlgorithm.size();
  EMBER_CHECK(stored.size() == algo + kHexDigits &&
                  std::string_view(reinterpret_cast<const char*>(bytes) + hex_at, kHexDigits) ==
                      std::string_view(stored).substr(algo),
              IOError, where, ": malformed checksum '", stored, "'");
  io_detail::XXH64 hash;
  const std::string zeros(kHexDigits, '0');
  hash.update(bytes, hex_at);
  hash.update(zeros.data(), zeros.size());
  hash.update(bytes + hex_at + kHexDigits, f.file->size - hex_at - kHexDigits);
  EMBER_CHECK(hex16(hash.digest()) == stored.substr(algo), IOError, where,
              ": checksum mismatch (file ", "says ", stored.substr(algo), ", contents hash to ",
              hex16(hash.digest()), "): the file is corrupt");

  Checkpoint c;
  c.step = parse_int(get(kStepKey), "step", where);
  for (const auto& [k, v] : meta)
    if (!starts_with(k, "ember.")) c.metadata.emplace(k, v);

  StateDict all = io_detail::make_tensors(f.header, bytes + f.data_offset, f.file, where);
  for (const auto& [name, t] : all) {
    if (starts_with(name, "rng.")) {
      EMBER_CHECK(t.dtype() == kInt64 && t.dim() == 1 && t.size(0) == 2, IOError, where,
                  ": generator state '", name, "' is ", t.dtype(), " ", t.sizes(),
                  ", expected int64 (2,)");
      GeneratorState s;
      const int64_t* p = t.data_ptr<int64_t>();
      std::memcpy(&s.seed, &p[0], 8);
      std::memcpy(&s.offset, &p[1], 8);
      c.rng[name.substr(4)] = s;
      continue;
    }
    StateDict* section = nullptr;
    size_t skip = 0;
    StateDict* targets[] = {&c.model, &c.optimizer, &c.scheduler};
    for (size_t i = 0; i < 3; ++i) {
      const std::string p = std::string(kSections[i]) + ".";
      if (starts_with(name, p)) {
        section = targets[i];
        skip = p.size();
        break;
      }
    }
    EMBER_CHECK(section != nullptr, IOError, where, ": unexpected tensor '", name,
                "' (checkpoint tensors start with model., optimizer., scheduler. or rng.)");
    section->insert(name.substr(skip), t);
  }
  return c;
}

void restore_rng(const Checkpoint& ckpt, const std::map<std::string, Generator>& generators) {
  auto it = ckpt.rng.find("default");
  EMBER_CHECK(it != ckpt.rng.end(), IOError,
              "[restore_rng] the checkpoint holds no state for the default generator");
  for (const auto& [name, gen] : generators)
    EMBER_CHECK(ckpt.rng.count(name), IOError,
                "[restore_rng] the checkpoint holds no state for "
                "generator '",
                name, "'");
  it->second.restore(default_generator());
  for (const auto& [name, gen] : generators) {
    Generator g = gen;  // copies share state: restoring g restores the caller's generator
    ckpt.rng.at(name).restore(g);
  }
}

}  // namespace ember
