// dtypes: 16-bit float conversion, promotion, names; devices; scalars.
#include <cmath>
#include <cstring>

#include "test_util.hpp"

using namespace ember;

TEST_CASE("float16: conversion matches the compiler's _Float16 for all 65536 patterns") {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    _Float16 ref;
    uint16_t b16 = static_cast<uint16_t>(bits);
    std::memcpy(&ref, &b16, 2);
    float want = static_cast<float>(ref);
    float got = static_cast<float>(Half::from_bits(b16));
    if (std::isnan(want)) {
      REQUIRE(std::isnan(got));
      continue;
    }
    REQUIRE(std::memcmp(&want, &got, 4) == 0);
    // float -> half round trip is exact for every representable value.
    REQUIRE(Half(want).x == b16);
  }
}

TEST_CASE("float16: float to half rounds to nearest even like _Float16") {
  // Walk float bit patterns with a stride that covers all exponents, plus neighbours of halfway.
  for (uint64_t u = 0; u < 0x100000000ull; u += 4093) {
    uint32_t b = static_cast<uint32_t>(u);
    float f;
    std::memcpy(&f, &b, 4);
    _Float16 ref = static_cast<_Float16>(f);
    uint16_t want;
    std::memcpy(&want, &ref, 2);
    uint16_t got = Half(f).x;
    if (std::isnan(f)) {
      REQUIRE(std::isnan(static_cast<float>(Half::from_bits(got))));
    } else {
      REQUIRE(got == want);
    }
  }
  CHECK(Half(65504.f).x == 0x7bff);
  CHECK(Half(65520.f).x == 0x7c00);  // rounds to Inf
  CHECK(Half(1.0f + 1.0f / 2048).x == 0x3c00);  // tie to even (down)
  CHECK(Half(1.0f + 3.0f / 2048).x == 0x3c02);  // tie to even (up)
  CHECK(Half(-INFINITY).x == 0xfc00);
}

TEST_CASE("bfloat16: round to nearest even, NaN and Inf kept") {
  CHECK(BFloat16(1.0f).x == 0x3f80);
  uint32_t tie_down = 0x3f808000u, tie_up = 0x3f818000u, above = 0x3f808001u;
  float f;
  std::memcpy(&f, &tie_down, 4);
  CHECK(BFloat16(f).x == 0x3f80);
  std::memcpy(&f, &tie_up, 4);
  CHECK(BFloat16(f).x == 0x3f82);
  std::memcpy(&f, &above, 4);
  CHECK(BFloat16(f).x == 0x3f81);
  CHECK(BFloat16(INFINITY).x == 0x7f80);
  CHECK(std::isnan(static_cast<float>(BFloat16(NAN))));
  CHECK(BFloat16(3.4e38f).x == 0x7f80);  // rounds up to Inf
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    BFloat16 b = BFloat16::from_bits(static_cast<uint16_t>(bits));
    float v = b;
    if (!std::isnan(v)) REQUIRE(BFloat16(v).x == bits);
  }
}

TEST_CASE("dtype: names, sizes and promotion follow PyTorch") {
  CHECK(std::string(dtype_name(kBFloat16)) == "bfloat16");
  CHECK(element_size(kFloat64) == 8);
  CHECK(element_size(kBool) == 1);
  CHECK(promote_types(kInt32, kFloat32) == kFloat32);
  CHECK(promote_types(kInt64, kFloat16) == kFloat16);
  CHECK(promote_types(kFloat16, kBFloat16) == kFloat32);
  CHECK(promote_types(kBool, kInt8) == kInt8);
  CHECK(promote_types(kUInt8, kInt8) == kInt32);
  CHECK(promote_types(kInt32, kInt64) == kInt64);
  CHECK(promote_types(kFloat32, kFloat64) == kFloat64);
  CHECK(promote_types(kBool, kBool) == kBool);
  std::ostringstream os;
  os << kFloat16;
  CHECK(os.str() == "float16");
}

TEST_CASE("dtype: default dtype is settable and only floating") {
  CHECK(get_default_dtype() == kFloat32);
  set_default_dtype(kFloat64);
  CHECK(zeros({2}).dtype() == kFloat64);
  set_default_dtype(kFloat32);
  EMBER_CHECK_THROWS(set_default_dtype(kInt32), DTypeError, "[set_default_dtype]", "int32");
}

TEST_CASE("device: parsing and printing") {
  CHECK(Device("cpu").is_cpu());
  CHECK(Device("cuda:1").index() == 1);
  CHECK(Device("cuda").is_cuda());
  CHECK(Device(kCUDA, 0).str() == "cuda:0");
  CHECK(Device(kCPU) == Device("cpu"));
  EMBER_CHECK_THROWS(Device("tpu"), ValueError, "[Device]", "tpu");
  EMBER_CHECK_THROWS(Device("cuda:x"), ValueError, "[Device]");
}

TEST_CASE("device: CUDA tensors raise DeviceError, queries say no GPU") {
  CHECK_FALSE(cuda::is_available());
  CHECK(cuda::device_count() == 0);
  EMBER_CHECK_THROWS(zeros({2}, Device("cuda")), DeviceError, "[full]", "cuda");
  EMBER_CHECK_THROWS(ones({2}).to(Device(kCUDA, 0)), DeviceError, "cuda:0");
  EMBER_CHECK_THROWS(ones({2}).cuda(), DeviceError, "cuda");
}

TEST_CASE("scalar: kinds and conversions") {
  Scalar a = 3, b = 2.5, c = true;
  CHECK(a.is_integral());
  CHECK(b.is_floating_point());
  CHECK(c.is_boolean());
  CHECK(a.type() == kInt64);
  CHECK(b.type() == kFloat32);
  CHECK(b.to<int>() == 2);
  CHECK(static_cast<float>(Scalar(1.0).to<Half>()) == 1.0f);
}
