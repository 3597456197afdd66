// The allocation cap (ember/memory.hpp): one limit for every allocation Ember makes, settable at
// run time; requests over it (a factory with a huge shape, a crafted file header) raise a typed
// error naming the op before any memory is asked for, never std::bad_alloc.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "ember/ember.hpp"
#include "ember/io/safetensors.hpp"
#include "io/io_test_util.hpp"
#include "test_util.hpp"

using namespace ember;

namespace {

/// Restores the cap when a test ends, whatever happened.
struct CapGuard {
  size_t saved = max_allocation_bytes();
  ~CapGuard() { set_max_allocation_bytes(saved); }
};

}  // namespace

TEST_CASE("allocation cap: default 1 TiB, settable, checked before allocating") {
  CapGuard guard;
  CHECK(max_allocation_bytes() == (size_t{1} << 40));
  // 2^60 bytes of float32 asked for by a shape: a typed error, not bad_alloc.
  EMBER_CHECK_THROWS(empty({int64_t{1} << 58}), ValueError, "exceeds the limit");
  EMBER_CHECK_THROWS(zeros({int64_t{1} << 20, int64_t{1} << 20, 1024}), ValueError,
                     "exceeds the limit");
  // A shape whose byte count overflows 64 bits is refused too (by the size check).
  CHECK_THROWS_AS(empty({int64_t{1} << 40, int64_t{1} << 40}), Error);

  CHECK(set_max_allocation_bytes(size_t{1} << 20) == (size_t{1} << 40));
  CHECK(max_allocation_bytes() == (size_t{1} << 20));
  CHECK(zeros({262144}).numel() == 262144);  // exactly 1 MiB of float32: allowed
  EMBER_CHECK_THROWS(zeros({262145}), ValueError, "allocation of 1048580 bytes");
  EMBER_CHECK_THROWS(ones({600, 600}, TensorOptions(kFloat64)), ValueError, "exceeds the limit");
  // Ops that allocate their outputs are capped the same way.
  const Tensor x = ones({512, 512});  // 1 MiB
  EMBER_CHECK_THROWS(x.to(kFloat64), ValueError, "exceeds the limit");
  EMBER_CHECK_THROWS(set_max_allocation_bytes(0), ValueError, "positive");
}

TEST_CASE("allocation cap: a crafted safetensors header asking for 2^60 bytes is an IOError") {
  test::TempDir dir;
  const std::string path = dir.file("huge.safetensors");
  // One float32 entry of shape (2^29, 2^29): 2^60 bytes claimed, 8 bytes present.
  const std::string header =
      "{\"w\":{\"dtype\":\"F32\",\"shape\":[536870912,536870912],"
      "\"data_offsets\":[0,1152921504606846976]}}";
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  test::write_bytes(path, bytes + header + std::string(8, '\0'));
  CHECK_THROWS_AS(load_safetensors(path), IOError);
}
