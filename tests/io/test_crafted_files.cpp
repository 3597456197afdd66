// Replays the fuzzers' files (tools/make_fuzz_corpus.py writes them) through the readers the fuzz
// targets in fuzz/ drive: every file in fuzz/crafted/<format>/ breaks one validation rule and must
// raise IOError (no other exception type, no crash), and every seed in fuzz/corpus/<format>/ must
// load. Runs with the fuzz targets' allocation cap (256 MiB), so a file claiming more gets the
// typed error the fuzzers rely on. Where one folder serves two readers, the file name's prefix
// picks it: cifar10_ / cifar100_, bpe_ / char_.
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ember/data/datasets.hpp"
#include "ember/data/text.hpp"
#include "ember/io/checkpoint.hpp"
#include "ember/io/safetensors.hpp"
#include "ember/io/tensorboard.hpp"
#include "ember/memory.hpp"
#include "io/io_test_util.hpp"

using namespace ember;
using ember::test::TempDir;

namespace {

namespace fs = std::filesystem;

constexpr size_t kMinCraftedPerFormat = 25;

/// The files of fuzz/<kind>/<format>/ whose name starts with prefix, sorted.
std::vector<std::string> files_in(const std::string& kind, const std::string& format,
                                  const std::string& prefix = "") {
  const fs::path dir = fs::path(EMBER_SOURCE_DIR) / "fuzz" / kind / format;
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.compare(0, prefix.size(), prefix) == 0)
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string name_of(const std::string& path) { return fs::path(path).filename().string(); }

/// The fuzz targets' allocation cap (fuzz/fuzz_util.hpp) while in scope.
struct FuzzAllocationCap {
  size_t previous;
  FuzzAllocationCap() : previous(set_max_allocation_bytes(size_t{256} << 20)) {}
  ~FuzzAllocationCap() { set_max_allocation_bytes(previous); }
  FuzzAllocationCap(const FuzzAllocationCap&) = delete;
  FuzzAllocationCap& operator=(const FuzzAllocationCap&) = delete;
};

enum class Outcome { kLoaded, kIOError, kOtherEmberError, kForeignException };

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kLoaded:
      return "loaded";
    case Outcome::kIOError:
      return "IOError";
    case Outcome::kOtherEmberError:
      return "an ember::Error other than IOError";
    case Outcome::kForeignException:
      return "an exception that is not an ember::Error";
  }
  return "?";
}

struct Result {
  Outcome outcome;
  std::string message;
};

/// What fn does: returns, throws IOError, another ember::Error, or anything else.
template <class Fn>
Result run(Fn&& fn) {
  try {
    fn();
    return {Outcome::kLoaded, ""};
  } catch (const IOError& e) {
    return {Outcome::kIOError, e.what()};
  } catch (const Error& e) {
    return {Outcome::kOtherEmberError, e.what()};
  } catch (const std::exception& e) {
    return {Outcome::kForeignException, e.what()};
  } catch (...) {
    return {Outcome::kForeignException, "(not a std::exception)"};
  }
}

/// Crafted files that reproduce a parser fix, and a piece of the message the fix gives; the
/// generic IOError check alone would also pass with some of the old behaviour.
const std::map<std::string, std::string>& fix_messages() {
  static const std::map<std::string, std::string> m = {
      {"dims_zero_with_int64_stride_overflow.idx", "overflows int64 strides"},
      {"dims_zero_with_stride_2pow64.idx", "overflows int64 strides"},
      {"png_16384x16384_rgba16_tiny_idat.png", "over the allocation limit"},
      {"hdr_8192x8192_tiny.hdr", "over the allocation limit"},
      {"png_idat_length_2pow30.png", "declares 1073741824 bytes"},
      {"bpe_token_length_doubles_40_times.json", "in all"},
      {"bpe_version_nested_30000_deep.json", "unsupported version [[[[[...]]]]]"},
      {"bpe_top_level_nested_30000_deep.json", "expected a JSON object, got [[[[[...]]]]]"},
      {"char_vocab_entry_nested_30000_deep.json", "is not an integer: [[[[[...]]]]]"},
  };
  return m;
}

/// Checks one crafted file's outcome: IOError, with the fix's message where there is one.
void check_rejected(const std::string& path, const Result& r, const char* reader) {
  INFO(reader << " on " << path << "\n  outcome: " << outcome_name(r.outcome)
              << "\n  message: " << r.message);
  CHECK(r.outcome == Outcome::kIOError);
  const auto it = fix_messages().find(name_of(path));
  if (it != fix_messages().end()) {
    INFO("expected the message to contain: " << it->second);
    CHECK(r.message.find(it->second) != std::string::npos);
  }
}

void check_loaded(const std::string& path, const Result& r, const char* reader) {
  INFO(reader << " on seed " << path << "\n  outcome: " << outcome_name(r.outcome)
              << "\n  message: " << r.message);
  CHECK(r.outcome == Outcome::kLoaded);
}

/// A header-only reader may accept a file whose problem lies in the data, never crash on it.
void check_rejected_or_loaded(const std::string& path, const Result& r, const char* reader) {
  INFO(reader << " on " << path << "\n  outcome: " << outcome_name(r.outcome)
              << "\n  message: " << r.message);
  CHECK((r.outcome == Outcome::kIOError || r.outcome == Outcome::kLoaded));
}

/// The sum of a tensor's bytes, so every loaded byte is read (and ASan checks it).
uint64_t byte_sum(const Tensor& t) {
  if (!t.defined() || t.numel() == 0) return 0;
  const Tensor c = t.contiguous();
  const auto* p = static_cast<const unsigned char*>(c.data_ptr());
  uint64_t s = 0;
  for (size_t i = 0; i < c.nbytes(); ++i) s += p[i];
  return s;
}

uint64_t byte_sum(const StateDict& d) {
  uint64_t s = 0;
  for (const auto& [name, t] : d) s += name.size() + byte_sum(t);
  return s;
}

}  // namespace

TEST_CASE("crafted files: safetensors readers reject each crafted file with IOError") {
  FuzzAllocationCap cap;
  const std::vector<std::string> crafted = files_in("crafted", "safetensors");
  REQUIRE(crafted.size() >= kMinCraftedPerFormat);
  for (const std::string& path : crafted) {
    const std::string bytes = test::read_bytes(path);
    check_rejected(path, run([&] { byte_sum(load_safetensors(path)); }), "load_safetensors");
    check_rejected(path, run([&] { byte_sum(deserialize_safetensors(bytes)); }),
                   "deserialize_safetensors");
    check_rejected_or_loaded(path, run([&] { read_safetensors_header(path); }),
                             "read_safetensors_header");
    check_rejected_or_loaded(path, run([&] { deserialize_safetensors_metadata(bytes); }),
                             "deserialize_safetensors_metadata");
  }
}

TEST_CASE("crafted files: safetensors seeds load through every reader alike") {
  FuzzAllocationCap cap;
  const std::vector<std::string> seeds = files_in("corpus", "safetensors");
  REQUIRE(!seeds.empty());
  for (const std::string& path : seeds) {
    INFO(path);
    const std::string bytes = test::read_bytes(path);
    StateDict mapped, copied;
    check_loaded(path, run([&] { mapped = load_safetensors(path); }), "load_safetensors");
    check_loaded(path, run([&] { copied = deserialize_safetensors(bytes); }),
                 "deserialize_safetensors");
    check_loaded(path, run([&] { read_safetensors_header(path); }), "read_safetensors_header");
    check_loaded(path, run([&] { deserialize_safetensors_metadata(bytes); }),
                 "deserialize_safetensors_metadata");
    CHECK(mapped.size() == copied.size());
    CHECK(byte_sum(mapped) == byte_sum(copied));
  }
}

TEST_CASE("crafted files: load_checkpoint rejects each crafted file with IOError") {
  FuzzAllocationCap cap;
  const std::vector<std::string> crafted = files_in("crafted", "checkpoint");
  REQUIRE(crafted.size() >= kMinCraftedPerFormat);
  for (const std::string& path : crafted) {
    check_rejected(path, run([&] {
                     Checkpoint c = load_checkpoint(path);
                     byte_sum(c.model);
                   }),
                   "load_checkpoint");
  }
  const std::vector<std::string> seeds = files_in("corpus", "checkpoint");
  REQUIRE(!seeds.empty());
  for (const std::string& path : seeds) {
    check_loaded(path, run([&] {
                   const Checkpoint c = load_checkpoint(path);
                   byte_sum(c.model);
                   byte_sum(c.optimizer);
                   byte_sum(c.scheduler);
                 }),
                 "load_checkpoint");
  }
}

TEST_CASE("crafted files: read_idx rejects each crafted file with IOError") {
  FuzzAllocationCap cap;
  const std::vector<std::string> crafted = files_in("crafted", "idx");
  REQUIRE(crafted.size() >= kMinCraftedPerFormat);
  for (const std::string& path : crafted)
    check_rejected(path, run([&] { byte_sum(data::read_idx(path)); }), "read_idx");
  const std::vector<std::string> seeds = files_in("corpus", "idx");
  REQUIRE(!seeds.empty());
  for (const std::string& path : seeds)
    check_loaded(path, run([&] { byte_sum(data::read_idx(path)); }), "read_idx");
}

TEST_CASE("crafted files: the CIFAR readers reject each crafted file with IOError") {
  FuzzAllocationCap cap;
  const std::vector<std::string> crafted = files_in("crafted", "cifar");
  REQUIRE(crafted.size() >= kMinCraftedPerFormat);
  REQUIRE(!files_in("crafted", "cifar", "cifar10_").empty());
  REQUIRE(!files_in("crafted", "cifar", "cifar100_").empty());
  // CIFAR10(root, train=false) reads root/test_batch.bin, CIFAR100(root, false) root/test.bin.
  auto load = [](const std::string& path, bool coarse) {
    TempDir root;
    const bool cifar100 = name_of(path).compare(0, 9, "cifar100_") == 0;
    const std::string copy = root.file(cifar100 ? "test.bin" : "test_batch.bin");
    fs::copy_file(path, copy);
    if (cifar100) {
      const data::CIFAR100 d(root.path.string(), false, nullptr, nullptr, coarse);
      return d.size() + static_cast<int64_t>(byte_sum(d.images()) + byte_sum(d.labels()));
    }
    const data::CIFAR10 d(root.path.string(), false);
    return d.size() + static_cast<int64_t>(byte_sum(d.images()) + byte_sum(d.labels()));
  };
  for (const std::string& path : crafted) {
    check_rejected(path, run([&] { load(path, false); }), "CIFAR (fine labels)");
    check_rejected(path, run([&] { load(path, true); }), "CIFAR (coarse labels)");
  }
  const std::vector<std::string> seeds = files_in("corpus", "cifar");
  REQUIRE(!seeds.empty());
  for (const std::string& path : seeds) {
    check_loaded(path, run([&] { load(path, false); }), "CIFAR (fine labels)");
    check_loaded(path, run([&] { load(path, true); }), "CIFAR (coarse labels)");
  }
}

TEST_CASE("crafted files: ImageFolder rejects each crafted image with IOError") {
  FuzzAllocationCap cap;
  // As the fuzz target does: the file becomes root/cls/x.png (stb_image detects the format by
  // content), then ImageFolder(root).get(0).
  auto load = [](const std::string& path) {
    TempDir root;
    fs::create_directories(root.path / "cls");
    fs::copy_file(path, root.path / "cls" / "x.png");
    const data::ImageFolder folder(root.path.string());
    const data::Example e = folder.get(0);
    if (e.data.dim() != 3 || e.data.size(2) != 3)
      throw std::runtime_error("the image is not uint8 (H, W, 3)");
    return byte_sum(e.data);
  };
  const std::vector<std::string> crafted = files_in("crafted", "image");
  REQUIRE(crafted.size() >= kMinCraftedPerFormat);
  for (const std::string& path : crafted)
    check_rejected(path, run([&] { load(path); }), "ImageFolder");
  const std::vector<std::string> seeds = files_in("corpus", "image");
  REQUIRE(!seeds.empty());
  for (const std::string& path : seeds) check_loaded(path, run([&] { load(path); }), "ImageFolder");
}

TEST_CASE("crafted files: the tokenizers' load rejects each crafted JSON file with IOError") {
  FuzzAllocationCap cap;
  const std::vector<std::string> crafted = files_in("crafted", "tokenizer");
  REQUIRE(crafted.size() >= kMinCraftedPerFormat);
  const std::vector<std::string> bpe = files_in("crafted", "tokenizer", "bpe_");
  const std::vector<std::string> chr = files_in("crafted", "tokenizer", "char_");
  REQUIRE(!bpe.empty());
  REQUIRE(!chr.empty());
  REQUIRE(bpe.size() + chr.size() == crafted.size());
  for (const std::string& path : bpe)
    check_rejected(path, run([&] { data::BPETokenizer::load(path); }), "BPETokenizer::load");
  for (const std::string& path : chr)
    check_rejected(path, run([&] { data::CharTokenizer::load(path); }), "CharTokenizer::load");
  const std::vector<std::string> bpe_seeds = files_in("corpus", "tokenizer", "bpe_");
  const std::vector<std::string> chr_seeds = files_in("corpus", "tokenizer", "char_");
  REQUIRE(!bpe_seeds.empty());
  REQUIRE(!chr_seeds.empty());
  for (const std::string& path : bpe_seeds) {
    check_loaded(path, run([&] {
                   const data::BPETokenizer t = data::BPETokenizer::load(path);
                   const std::string text = "hello world \xc3\xa9";
                   if (t.decode(t.encode(text)) != text)
                     throw std::runtime_error("decode(encode(text)) != text");
                 }),
                 "BPETokenizer::load");
  }
  for (const std::string& path : chr_seeds)
    check_loaded(path, run([&] { data::CharTokenizer::load(path); }), "CharTokenizer::load");
}

TEST_CASE("crafted files: read_tensorboard_events rejects each crafted file with IOError") {
  FuzzAllocationCap cap;
  const std::vector<std::string> crafted = files_in("crafted", "tensorboard");
  REQUIRE(crafted.size() >= kMinCraftedPerFormat);
  for (const std::string& path : crafted)
    check_rejected(path, run([&] { read_tensorboard_events(path); }), "read_tensorboard_events");
  const std::vector<std::string> seeds = files_in("corpus", "tensorboard");
  REQUIRE(!seeds.empty());
  for (const std::string& path : seeds)
    check_loaded(path, run([&] { read_tensorboard_events(path); }), "read_tensorboard_events");
}

TEST_CASE("crafted files: a truncated PNM, TGA or flat HDR image decodes its missing pixels as 0") {
  // stb_image 2.27 copied these pixels with an unchecked read and returned whatever the buffer
  // held (ASan fills fresh heap memory with 0xbe, so the old behaviour fails here under ASan).
  struct Case {
    const char* seed;
    int64_t h, w;
    int64_t nonzero;  // bytes of the decoded (H, W, 3) image the file holds, all non-zero
  };
  const Case cases[] = {{"ppm_truncated_pixels_zero_filled.ppm", 4, 4, 10},
                        {"tga_truncated_rows_zero_filled.tga", 4, 4, 9},
                        {"hdr_flat_truncated_zero_filled.hdr", 2, 2, 3}};
  for (const Case& c : cases) {
    INFO(c.seed);
    const fs::path path = fs::path(EMBER_SOURCE_DIR) / "fuzz" / "corpus" / "image" / c.seed;
    const Tensor img = data::load_image_rgb(path.string());
    REQUIRE(img.sizes() == IntArrayRef({c.h, c.w, 3}));
    const Tensor flat = img.contiguous();
    const auto* p = flat.data_ptr<uint8_t>();
    int64_t nonzero = 0;
    for (int64_t i = 0; i < flat.numel(); ++i) nonzero += p[i] != 0;
    CHECK(nonzero == c.nonzero);
  }
}
