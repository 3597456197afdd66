// safetensors: round trips of every dtype, files written by Python's safetensors (golden files
// from tests/io/make_golden.py) read value by value, Ember's output compared byte for byte with
// the reference writer's, the mapping's lifetime, and a table of crafted corrupt files.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "ember/io/checkpoint.hpp"
#include "ember/io/safetensors.hpp"
#include "io_test_util.hpp"
#include "test_util.hpp"

using namespace ember;
namespace fs = std::filesystem;

namespace {

std::string golden_path(const std::string& name) {
  return std::string(EMBER_SOURCE_DIR) + "/tests/io/golden/" + name;
}

using test::read_bytes;
using test::TempDir;
using test::write_bytes;

template <class T>
Tensor make(const std::vector<T>& v, const std::vector<int64_t>& shape) {
  return tensor(v).reshape(shape);
}

Tensor make_bf16(const std::vector<float>& v, const std::vector<int64_t>& shape) {
  std::vector<BFloat16> b(v.begin(), v.end());
  return tensor(b).reshape(shape);
}

Tensor make_half(const std::vector<float>& v, const std::vector<int64_t>& shape) {
  std::vector<Half> h(v.begin(), v.end());
  return tensor(h).reshape(shape);
}

// The tensors of make_golden.py's REFERENCE table.
StateDict reference_tensors() {
  const double inf = std::numeric_limits<double>::infinity();
  StateDict sd;
  sd.insert("weight.f64", make<double>({0.0, -1.5, 2.25, 1e300, -0.0, 5e-324}, {2, 3}));
  sd.insert("weight.f32", make<float>({0.5f, -2.5f, 3.25f, static_cast<float>(inf),
                                       -static_cast<float>(inf), 1e-45f},
                                      {3, 2}));
  sd.insert("half", make_half({1.0f, -0.5f, 65504.0f, std::ldexp(1.0f, -24)}, {4}));
  sd.insert("bf16", make_bf16({1.0f, -3.0f, 0.15625f, std::ldexp(1.0f, 100)}, {2, 2}));
  sd.insert("i64", make<int64_t>({std::numeric_limits<int64_t>::min(),
                                  std::numeric_limits<int64_t>::max(), 0},
                                 {3}));
  sd.insert("i32", make<int32_t>({std::numeric_limits<int32_t>::min(),
                                  std::numeric_limits<int32_t>::max(), -1, 7},
                                 {2, 2}));
  sd.insert("i8", make<int8_t>({-128, 127, 0, -1}, {4}));
  sd.insert("u8", make<uint8_t>({0, 255, 1, 128, 7, 42}, {2, 3}));
  sd.insert("mask", make<bool>({true, false, true}, {3}));
  sd.insert("scalar", make<float>({3.5f}, {}));
  sd.insert("empty", make<float>({}, {0, 3}));
  sd.insert("empty_i64", make<int64_t>({}, {0}));
  return sd;
}

// make_golden.py's NAMES table and its metadata.
StateDict names_tensors() {
  StateDict sd;
  sd.insert("z", make<float>({1.0f}, {1}));
  sd.insert("a", make<float>({2.0f}, {1}));
  sd.insert("B", make<float>({3.0f}, {1}));
  sd.insert("\xc3\xa9t\xc3\xa9", make<float>({4.0f}, {1}));
  sd.insert("tab\tquote\"back\\slash/", make<float>({5.0f}, {1}));
  sd.insert("ctrl\x01\x7f", make<int32_t>({6}, {1}));
  return sd;
}
const std::map<std::string, std::string> kNamesMetadata = {
    {"note", "line\nquote\" \xc3\xbcnicode \\ \x1f"}};

void check_same(const StateDict& got, const StateDict& want) {
  REQUIRE(got.size() == want.size());
  for (const auto& [name, t] : want) {
    INFO("tensor '" << name << "'");
    REQUIRE(got.contains(name));
    const Tensor& g = got.at(name);
    CHECK(g.dtype() == t.dtype());
    CHECK(g.sizes() == t.sizes());
    CHECK(test::bitwise_equal(g, t));
  }
}

std::string u64le(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return s;
}

// A file from a header string and a data buffer (no padding unless the header has it).
std::string file_of(const std::string& header, const std::string& data = "") {
  return u64le(header.size()) + header + data;
}

}  // namespace

// ---- round trips ----

TEST_CASE("safetensors: every dtype round-trips bitwise, in memory and through a mapped file") {
  StateDict sd = reference_tensors();
  sd.insert("noncontig.t", arange(12, kFloat32).reshape({3, 4}).transpose(0, 1));
  sd.insert("noncontig.slice", test::non_contiguous(arange(6, kInt64).reshape({2, 3})));
  sd.insert("offset_view", arange(10, kInt32).narrow(0, 3, 4));  // contiguous, storage offset 3
  sd.insert("expanded", arange(3, kFloat64).reshape({1, 3}).expand({4, 3}));  // stride 0
  sd.insert("zero_dim.i64", scalar_tensor(int64_t{-7}, kInt64));
  sd.insert("zero_dim.bool", scalar_tensor(true, kBool));
  sd.insert("empty.bf16", empty({2, 0, 3}, kBFloat16));
  sd.insert("nan.f32", full({2}, std::numeric_limits<double>::quiet_NaN(), kFloat32));
  REQUIRE_FALSE(sd.at("noncontig.t").is_contiguous());
  REQUIRE(sd.at("offset_view").storage_offset() == 3);
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"epoch", "3"}, {"", ""}};

  std::string bytes = serialize_safetensors(sd, meta);
  check_same(deserialize_safetensors(bytes), sd);
  CHECK(deserialize_safetensors_metadata(bytes) == meta);

  TempDir dir;
  save_safetensors(dir.file("all.safetensors"), sd, meta);
  CHECK(read_bytes(dir.file("all.safetensors")) == bytes);
  StateDict loaded = load_safetensors(dir.file("all.safetensors"));
  check_same(loaded, sd);
  CHECK(load_safetensors_metadata(dir.file("all.safetensors")) == meta);
  // Entries come back ordered by name.
  std::vector<std::string> keys = loaded.keys();
  CHECK(std::is_sorted(keys.begin(), keys.end()));
  for (const auto& [name, t] : loaded) CHECK(t.is_contiguous());
}

TEST_CASE("safetensors: an empty dict and a tensor-free file with metadata") {
  CHECK(deserialize_safetensors(serialize_safetensors({})).empty());
  std::string b = serialize_safetensors({}, {{"k", "v"}});
  CHECK(deserialize_safetensors(b).empty());
  CHECK(deserialize_safetensors_metadata(b) == std::map<std::string, std::string>{{"k", "v"}});
}

TEST_CASE(
    "safetensors: loading maps the file, tensors keep the mapping alive, writes stay private") {
  TempDir dir;
  const std::string path = dir.file("big.safetensors");
  Tensor w = arange(1 << 16, kFloat32).reshape({256, 256});
  save_safetensors(path, {{"w", w}, {"b", arange(4, kFloat64)}});
  const std::string before = read_bytes(path);

  const int64_t allocated = cpu_memory_stats().allocated;
  Tensor kept;
  {
    StateDict sd = load_safetensors(path);
    // Aligned tensors are views of the mapping, not allocations (from_blob memory is not counted).
    CHECK(cpu_memory_stats().allocated - allocated < 4096);
    kept = sd.at("w");
  }
  fs::remove(path);  // the mapping outlives the directory entry
  CHECK(test::bitwise_equal(kept, w));
  kept.add_(1.0);  // copy-on-write: the process's pages change, never the file
  CHECK(kept.index({0, 0}).item<float>() == 1.0f);
  write_bytes(path, before);
  CHECK(test::bitwise_equal(load_safetensors(path).at("w"), w));
}

TEST_CASE("safetensors: data misaligned for its dtype is copied out") {
  // Header padded to 12 bytes: the data buffer starts at byte 20, so an F64 at offset 0 is
  // 4-byte aligned only; the reference writer never makes such files but others may.
  std::string header = R"({"x":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})";
  while ((8 + header.size()) % 8 != 4) header += ' ';
  double v[2] = {1.25, -7.5};
  std::string data(reinterpret_cast<const char*>(v), 16);
  TempDir dir;
  write_bytes(dir.file("m.safetensors"), file_of(header, data));
  Tensor x = load_safetensors(dir.file("m.safetensors")).at("x");
  CHECK(reinterpret_cast<uintptr_t>(x.data_ptr()) % 8 == 0);
  CHECK(x.index({0}).item<double>() == 1.25);
  CHECK(x.index({1}).item<double>() == -7.5);
}

TEST_CASE("safetensors: save errors are typed and leave no file") {
  TempDir dir;
  EMBER_CHECK_THROWS(save_safetensors(dir.file("missing/x.safetensors"), {{"a", ones({2})}}),
                     IOError, "[save_safetensors]", "missing/x.safetensors");
  CHECK_FALSE(fs::exists(dir.file("missing")));
  EMBER_CHECK_THROWS(serialize_safetensors({{"a", Tensor()}}), ValueError, "'a' is undefined");
  EMBER_CHECK_THROWS(serialize_safetensors({{"__metadata__", ones({1})}}), ValueError, "reserved");
  EMBER_CHECK_THROWS(serialize_safetensors({{"bad\xff", ones({1})}}), ValueError, "UTF-8");
  EMBER_CHECK_THROWS(serialize_safetensors({}, {{"k", "\xc0\x80"}}), ValueError, "UTF-8");
  EMBER_CHECK_THROWS(load_safetensors(dir.file("nope.safetensors")), IOError, "[load_safetensors]",
                     "nope.safetensors", "cannot open");
  EMBER_CHECK_THROWS(load_safetensors(dir.path.string()), IOError, "not a regular file");
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir.path)) left.push_back(e.path().string());
  CHECK(left.empty());
}

// ---- the reference implementation's files and bytes ----

TEST_CASE("safetensors: the reference implementation's own test vectors") {
  // safetensors/src/tensor.rs: test_serialization, test_serialization_forced_alignement,
  // test_empty.
  std::string f32_bytes(24, '\0');
  for (int i = 0; i < 6; ++i) {
    float f = static_cast<float>(i);
    std::memcpy(&f32_bytes[static_cast<size_t>(4 * i)], &f, 4);
  }
  Tensor t = arange(6, kFloat32).reshape({1, 2, 3});
  CHECK(serialize_safetensors({{"attn.0", t}}) ==
        u64le(64) + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" +
            f32_bytes);
  CHECK(serialize_safetensors({{"attn0", t.reshape({1, 1, 2, 3})}}) ==
        u64le(72) + R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" +
            "       " + f32_bytes);
  CHECK(serialize_safetensors({}) == u64le(8) + "{}      ");
  CHECK(serialize_safetensors({}, {{"framework", "pt"}}) ==
        u64le(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ");
}

TEST_CASE("safetensors: files written by Python's safetensors load value by value") {
  StateDict ref = load_safetensors(golden_path("reference.safetensors"));
  check_same(ref, reference_tensors());
  CHECK(load_safetensors_metadata(golden_path("reference.safetensors")) ==
        std::map<std::string, std::string>{{"format", "pt"}});
  check_same(load_safetensors(golden_path("names.safetensors")), names_tensors());
  CHECK(load_safetensors_metadata(golden_path("names.safetensors")) == kNamesMetadata);
  CHECK(load_safetensors(golden_path("empty.safetensors")).empty());

  // A torch.nn.Sequential(Conv2d(1, 2, 3), BatchNorm2d(2), Flatten(), Linear(8, 3)) state_dict.
  StateDict m = load_safetensors(golden_path("torch_model.safetensors"));
  CHECK(m.keys() == std::vector<std::string>{"0.bias", "0.weight", "1.bias",
                                             "1.num_batches_tracked", "1.running_mean",
                                             "1.running_var", "1.weight", "3.bias", "3.weight"});
  CHECK(m.at("0.weight").sizes() == IntArrayRef({2, 1, 3, 3}));
  CHECK(m.at("3.weight").sizes() == IntArrayRef({3, 8}));
  CHECK(m.at("1.num_batches_tracked").dim() == 0);
  CHECK(m.at("1.num_batches_tracked").dtype() == kInt64);
  CHECK(m.get_int("1.num_batches_tracked") == 5);
  CHECK(equal(m.at("1.running_var"), ones({2})));
  // PyTorch's default Linear init: |w| <= 1/sqrt(in_features).
  CHECK(m.at("3.weight").abs().max().item<double>() <= 1.0 / std::sqrt(8.0));
}

TEST_CASE("safetensors: Ember's bytes equal the reference writer's for the same tensors") {
  CHECK(serialize_safetensors(reference_tensors(), {{"format", "pt"}}) ==
        read_bytes(golden_path("reference.safetensors")));
  CHECK(serialize_safetensors(names_tensors(), kNamesMetadata) ==
        read_bytes(golden_path("names.safetensors")));
  CHECK(serialize_safetensors({}) == read_bytes(golden_path("empty.safetensors")));
  // Reading a reference file and writing it back reproduces it exactly.
  for (const char* name :
       {"reference.safetensors", "torch_model.safetensors", "names.safetensors"}) {
    INFO(name);
    const std::string path = golden_path(name);
    CHECK(serialize_safetensors(load_safetensors(path), load_safetensors_metadata(path)) ==
          read_bytes(path));
  }
}

TEST_CASE("safetensors: I16, U16 and U32 are widened, U64 is a typed error") {
  StateDict w = load_safetensors(golden_path("widen.safetensors"));
  CHECK(w.at("i16").dtype() == kInt32);
  CHECK(equal(w.at("i16"), make<int32_t>({-32768, 32767, 0, -2}, {4})));
  CHECK(w.at("u16").dtype() == kInt32);
  CHECK(equal(w.at("u16"), make<int32_t>({0, 65535, 1234}, {3})));
  CHECK(w.at("u32").dtype() == kInt64);
  CHECK(equal(w.at("u32"), make<int64_t>({0, 4294967295LL, 70000}, {3})));
  // The header reader lists the file's own dtypes.
  SafetensorsHeader h = read_safetensors_header(golden_path("widen.safetensors"));
  REQUIRE(h.entries.size() == 3);
  CHECK(h.entries[0].name == "u32");
  CHECK(h.entries[0].dtype == "U32");
  CHECK(h.entries[2].dtype == "I16");
  CHECK(h.entries[2].begin == 18);
  EMBER_CHECK_THROWS(load_safetensors(golden_path("unsupported_u64.safetensors")), IOError,
                     "unsupported_u64.safetensors", "'u64'", "U64", "cannot represent");
  CHECK(read_safetensors_header(golden_path("unsupported_u64.safetensors")).entries.size() == 1);
}

TEST_CASE("safetensors: export for Python (set EMBER_IO_EXPORT_DIR, see make_golden.py --check)") {
  const char* dir = std::getenv("EMBER_IO_EXPORT_DIR");
  if (!dir) return;
  save_safetensors(std::string(dir) + "/ember_reference.safetensors", reference_tensors(),
                   {{"format", "pt"}});
  save_safetensors(std::string(dir) + "/ember_names.safetensors", names_tensors(), kNamesMetadata);
  Checkpoint c;
  c.model.insert("fc.weight", arange(6, kFloat32).reshape({2, 3}));
  c.optimizer.insert("state.0.momentum_buffer", zeros({2, 3}));
  c.optimizer.set_double("param_groups.0.lr", 0.1);
  c.scheduler.set_int("last_epoch", 4);
  c.step = 42;
  c.metadata["run"] = "demo";
  save_checkpoint(std::string(dir) + "/ember_checkpoint.safetensors", c);
}

// ---- crafted corrupt files ----

namespace {

struct CorruptCase {
  const char* what;
  std::string bytes;
  const char* message;  // a substring the IOError must contain
};

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":" + offsets + "}";
}

std::vector<CorruptCase> corrupt_cases() {
  const std::string f32x2 = entry("a", "F32", "[2]", "[0,8]");
  const std::string d8(8, '\0'), d16(16, '\0');
  std::vector<CorruptCase> c = {
      {"empty file", "", "shorter than the 8-byte header size"},
      {"truncated size prefix", std::string(7, '\0'), "shorter than the 8-byte header size"},
      {"header size over the 100 MB cap", u64le(100'000'001) + "{}", "exceeds the limit"},
      {"header size 2^64 - 1", u64le(~0ull) + "{}", "exceeds the limit"},
      {"header size past the end of the file", u64le(100) + "{}      ", "runs past the end"},
      {"zero-length header", u64le(0), "not a JSON object"},
      {"header of spaces", file_of("        "), "not a JSON object"},
      {"non-JSON header", file_of("hello!!!"), "not a JSON object"},
      {"JSON array", file_of("[]      "), "not a JSON object"},
      {"JSON string", file_of("\"x\"     "), "not a JSON object"},
      {"truncated JSON", file_of("{\"a\":{\"dtype\":\"F32\""), "unexpected end"},
      {"bytes after the object", file_of("{}x     "), "unexpected bytes after"},
      {"NUL padding", file_of(std::string("{}") + std::string(6, '\0')), "unexpected bytes after"},
      {"trailing comma", file_of("{" + f32x2 + ",}", d8), "expected a string"},
      {"invalid UTF-8", file_of("{\"\xff\":{}}"), "not valid UTF-8"},
      {"overlong UTF-8", file_of("{\"\xc0\xaf\":{}}"), "not valid UTF-8"},
      {"UTF-8 surrogate", file_of("{\"\xed\xa0\x80\":{}}"), "not valid UTF-8"},
      {"raw control character in a name", file_of("{\"a\nb\":{}}"), "control character"},
      {"bad escape", file_of("{\"\\q\":{}}"), "bad escape"},
      {"lone surrogate escape", file_of("{\"\\ud800\":{}}"), "lone high surrogate"},
      {"entry not an object", file_of("{\"a\":5}"), "is not an object"},
      {"empty entry", file_of("{\"a\":{}}"), "has no 'dtype'"},
      {"missing dtype", file_of("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", d8),
       "has no 'dtype'"},
      {"missing shape", file_of("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", d8),
       "has no 'shape'"},
      {"missing data_offsets", file_of("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", d8),
       "has no 'data_offsets'"},
      {"unknown dtype", file_of("{" + entry("a", "F128", "[2]", "[0,8]") + "}", d8),
       "unknown dtype 'F128'"},
      {"lowercase dtype", file_of("{" + entry("a", "f32", "[2]", "[0,8]") + "}", d8),
       "unknown dtype 'f32'"},
      {"dtype not a string",
       file_of("{\"a\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", d8),
       "'dtype' is not a string"},
      {"duplicate dtype field",
       file_of("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
               d8),
       "duplicate 'dtype'"},
      {"shape not an array",
       file_of("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", d8),
       "'shape' is not an array"},
      {"negative shape", file_of("{" + entry("a", "F32", "[-2]", "[0,8]") + "}", d8), "negative"},
      {"fractional shape", file_of("{" + entry("a", "F32", "[2.0]", "[0,8]") + "}", d8),
       "not an integer"},
      {"exponent shape", file_of("{" + entry("a", "F32", "[2e0]", "[0,8]") + "}", d8),
       "not an integer"},
      {"leading zero in shape", file_of("{" + entry("a", "F32", "[02]", "[0,8]") + "}", d8),
       "leading zero"},
      {"shape entry past uint64",
       file_of("{" + entry("a", "F32", "[18446744073709551616]", "[0,8]") + "}", d8),
       "overflows 64 bits"},
      {"shape entry past int64",
       file_of("{" + entry("a", "F32", "[9223372036854775808]", "[0,8]") + "}", d8),
       "exceeds int64"},
      {"shape product overflow",
       file_of("{" + entry("a", "F32", "[4294967296,4294967296,2]", "[0,8]") + "}", d8),
       "overflows the element count"},
      {"element count times dtype size overflow",
       file_of("{" + entry("a", "F64", "[2305843009213693952]", "[0,8]") + "}", d8),
       "overflows the byte count"},
      {"zero-size tensor whose strides overflow",
       file_of("{" + entry("a", "F32", "[0,4294967296,4294967296]", "[0,0]") + "}"),
       "overflows int64 strides"},
      {"rank over 64",
       file_of("{" +
                   entry(
                       "a", "F32",
                       "[" +
                           [] {
                             std::string s = "1";
                             for (int i = 0; i < 64; ++i) s += ",1";
                             return s;
                           }() +
                           "]",
                       "[0,4]") +
                   "}",
               std::string(4, '\0')),
       "more than 64 dimensions"},
      {"data_offsets not an array",
       file_of("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":8}}", d8),
       "not an array of two integers"},
      {"three data_offsets", file_of("{" + entry("a", "F32", "[2]", "[0,8,8]") + "}", d8),
       "not an array of two integers"},
      {"one data_offset", file_of("{" + entry("a", "F32", "[2]", "[8]") + "}", d8),
       "not an array of two integers"},
      {"negative data_offset", file_of("{" + entry("a", "F32", "[2]", "[-8,0]") + "}", d8),
       "negative"},
      {"offsets out of bounds", file_of("{" + entry("a", "F32", "[100]", "[0,400]") + "}", d8),
       "past the end of the 8-byte data buffer"},
      {"huge offsets from a tiny file",
       file_of("{" + entry("a", "U8", "[1152921504606846976]", "[0,1152921504606846976]") + "}"),
       "past the end"},
      {"end before begin", file_of("{" + entry("a", "F32", "[2]", "[8,0]") + "}", d8),
       "end before begin"},
      {"first tensor not at offset 0", file_of("{" + entry("a", "F32", "[2]", "[8,16]") + "}", d16),
       "(gap)"},
      {"overlapping ranges",
       file_of(
           "{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[4,12]") + "}",
           std::string(12, '\0')),
       "(overlap)"},
      {"same range twice",
       file_of(
           "{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[0,8]") + "}",
           d8),
       "(overlap)"},
      {"gap between ranges",
       file_of(
           "{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("b", "F32", "[1]", "[8,12]") + "}",
           std::string(12, '\0')),
       "(gap)"},
      {"data not covering the buffer", file_of("{" + f32x2 + "}", d16), "the tensors cover 8"},
      {"bytes in a tensor-free file", file_of("{}      ", "x"), "the tensors cover 0"},
      {"byte count != numel * size",
       file_of("{" + entry("a", "F32", "[2]", "[0,4]") + "}", std::string(4, '\0')),
       "needs 8 bytes"},
      {"sub-byte dtype not filling bytes",
       file_of("{" + entry("a", "F4", "[3]", "[0,1]") + "}", std::string(1, '\0')),
       "does not fill whole bytes"},
      {"duplicate tensor name",
       file_of(
           "{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("a", "F32", "[1]", "[4,8]") + "}",
           d8),
       "duplicate tensor name 'a'"},
      {"duplicate __metadata__", file_of("{\"__metadata__\":{},\"__metadata__\":{}}"),
       "duplicate key '__metadata__'"},
      {"non-string metadata value", file_of("{\"__metadata__\":{\"epoch\":3}}"),
       "'epoch' is not a string"},
      {"nested metadata value", file_of("{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}"),
       "is not a string"},
      {"metadata not an object", file_of("{\"__metadata__\":[\"a\"]}"), "not an object of strings"},
      {"duplicate metadata key", file_of("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}"),
       "duplicate '__metadata__' key 'k'"},
      {"unknown field nested too deeply",
       file_of("{\"a\":{\"x\":" + std::string(200, '[') + std::string(200, ']') +
               ",\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"),
       "nested too deeply"},
      {"BOOL byte that is not 0 or 1",
       file_of("{" + entry("m", "BOOL", "[3]", "[0,3]") + "}", std::string("\x01\x02\x00", 3)),
       "holds byte 2 at element 1"},
      {"valid layout, dtype Ember lacks (F8_E4M3)",
       file_of("{" + entry("f8", "F8_E4M3", "[2]", "[0,2]") + "}", std::string(2, '\0')),
       "cannot represent"},
  };
  return c;
}

}  // namespace

TEST_CASE("safetensors: each crafted corrupt file raises IOError naming the file and the problem") {
  std::vector<CorruptCase> cases = corrupt_cases();
  CHECK(cases.size() >= 25);
  TempDir dir;
  int n = 0;
  for (const CorruptCase& c : cases) {
    INFO("case: " << c.what);
    EMBER_CHECK_THROWS(deserialize_safetensors(c.bytes), IOError, "[deserialize_safetensors]",
                       c.message);
    const std::string path = dir.file("corrupt_" + std::to_string(n++) + ".safetensors");
    write_bytes(path, c.bytes);
    EMBER_CHECK_THROWS(load_safetensors(path), IOError, "[load_safetensors]", path.c_str(),
                       c.message);
  }
  INFO(cases.size() << " corrupt cases");
}

TEST_CASE("safetensors: the reader accepts what the format allows") {
  // Unknown fields are ignored (as the reference does), whitespace is free, escapes decode,
  // __metadata__ may be null, zero-size tensors may share an offset.
  std::string h =
      " {\n \"\\u00e9\\ud83d\\ude00\" : {\"extra\": [1, -2.5e3, {\"k\": null}, true], "
      "\"data_offsets\":[0,0], \"shape\":[3,0], \"dtype\":\"I64\"},"
      "\"__metadata__\": null, \"b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
      "\"c\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}\t\r\n";
  StateDict sd = deserialize_safetensors(file_of(h, "\x05"));
  REQUIRE(sd.size() == 3);
  CHECK(sd.at("\xc3\xa9\xf0\x9f\x98\x80").sizes() == IntArrayRef({3, 0}));
  CHECK(sd.at("b").numel() == 0);
  CHECK(sd.at("c").dim() == 0);
  CHECK(sd.at("c").item<int64_t>() == 5);
}

TEST_CASE("safetensors: random corruption of a valid file never crashes: IOError or a clean load") {
  StateDict sd = reference_tensors();
  const std::string good = serialize_safetensors(sd, {{"format", "pt"}});
  std::mt19937 rng(1234);
  int errors = 0, loads = 0;
  for (size_t len = 0; len < good.size(); ++len) {  // every truncation
    try {
      deserialize_safetensors(std::string_view(good).substr(0, len));
      ++loads;
    } catch (const IOError&) {
      ++errors;
    }
  }
  CHECK(loads == 0);  // a truncated file never covers its data buffer
  for (int i = 0; i < 3000; ++i) {
    std::string b = good;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k) {
      size_t at = rng() % 8 == 0 ? rng() % 8 : rng() % b.size();  // the size prefix too
      b[at] = static_cast<char>(rng() & 0xFF);
    }
    try {
      StateDict r = deserialize_safetensors(b);
      ++loads;
    } catch (const IOError&) {
      ++errors;
    }
  }
  INFO(errors << " errors, " << loads << " clean loads");
  CHECK(errors > 1000);
  CHECK(loads > 100);  // flips in the data buffer load fine (the format has no checksum)
}
