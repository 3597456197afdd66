// dtypes: 16-bit float conversion, promotion, names; devices; scalars.
#include <cmath>
#include <cstring>

#include "test_util.hpp"

using namespace ember;

namespace {
// Independent references: decode a half from its fields with ldexp, and round a float to the
// nearest half (ties to even) by binary search over the ordered positive half patterns.
double half_ref_decode(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v;
  if (exp == 0x1f) {
    v = mant ? NAN : INFINITY;
  } else if (exp == 0) {
    v = std::ldexp(static_cast<double>(mant), -24);
  } else {
    v = std::ldexp(1.0 + mant / 1024.0, exp - 15);
  }
  return sign ? -v : v;
}

uint16_t half_ref_round(float f) {
  double a = std::fabs(static_cast<double>(f));
  uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (a >= 65520.0) return sign | 0x7c00;  // halfway between 65504 and 2^16 rounds to Inf
  uint16_t lo = 0, hi = 0x7bff;  // largest pattern whose value <= a
  while (lo < hi) {
    uint16_t mid = static_cast<uint16_t>((lo + hi + 1) / 2);
    if (half_ref_decode(mid) <= a) lo = mid; else hi = static_cast<uint16_t>(mid - 1);
  }
  if (half_ref_decode(lo) == a || lo == 0x7bff) return sign | lo;
  double below = half_ref_decode(lo), above = half_ref_decode(static_cast<uint16_t>(lo + 1));
  if (a - below < above - a) return sign | lo;
  if (a - below > above - a) return sign | static_cast<uint16_t>(lo + 1);
  return sign | ((lo & 1) ? static_cast<uint16_t>(lo + 1) : lo);  // tie: even mantissa
}
}  // namespace

TEST_CASE("float16: half to float is exact for all 65536 patterns") {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    uint16_t b16 = static_cast<uint16_t>(bits);
    double want = half_ref_decode(b16);
    float got = static_cast<float>(Half::from_bits(b16));
    if (std::isnan(want)) {
      REQUIRE(std::isnan(got));
      continue;
    }
    REQUIRE(static_cast<double>(got) == want);
    REQUIRE(std::signbit(got) == std::signbit(want));
    REQUIRE(Half(got).x == b16);  // float -> half round trip is exact
#if defined(__FLT16_MAX__) && !defined(__clang__)
    _Float16 ref;
    std::memcpy(&ref, &b16, 2);
    REQUIRE(static_cast<float>(ref) == got);
#endif
  }
}

TEST_CASE("float16: float to half rounds to nearest even") {
  // Walk float bit patterns with a stride that covers all exponents, plus exact halfway points.
  for (uint64_t u = 0; u < 0x100000000ull; u += 4093) {
    uint32_t b = static_cast<uint32_t>(u);
    float f;
    std::memcpy(&f, &b, 4);
    uint16_t got = Half(f).x;
    if (std::isnan(f)) {
      REQUIRE(std::isnan(static_cast<float>(Half::from_bits(got))));
      continue;
    }
    REQUIRE(got == half_ref_round(f));
#if defined(__FLT16_MAX__) && !defined(__clang__)
    _Float16 ref = static_cast<_Float16>(f);
    uint16_t want;
    std::memcpy(&want, &ref, 2);
    REQUIRE(got == want);
#endif
  }
  for (uint16_t h = 0; h < 0x7bff; h = static_cast<uint16_t>(h + 7)) {  // exact midpoints
    float mid = static_cast<float>((half_ref_decode(h) + half_ref_decode(h + 1)) / 2);
    REQUIRE(Half(mid).x == half_ref_round(mid));
    REQUIRE(Half(mid).x == ((h & 1) ? h + 1 : h));
  }
  CHECK(Half(65504.f).x == 0x7bff);
  CHECK(Half(65520.f).x == 0x7c00);  // rounds to Inf
  CHECK(Half(1.0f + 1.0f / 2048).x == 0x3c00);  // tie to even (down)
  CHECK(Half(1.0f + 3.0f / 2048).x == 0x3c02);  // tie to even (up)
  CHECK(Half(-INFINITY).x == 0xfc00);
  CHECK(Half(5.9604644775390625e-8f).x == 0x0001);  // smallest subnormal
  CHECK(Half(2.98023223876953125e-8f).x == 0x0000);  // half of it ties to even zero
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
  if (cuda::is_available()) return;  // a GPU machine: tests/cuda covers CUDA tensors
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

TEST_CASE("dtype: floating to narrow integers truncates through int64 and wraps") {
  // PyTorch's CPU results; a plain cast would be undefined (and saturates on a GPU).
  const Tensor x = tensor(std::vector<double>{-1.5, -256.7, 300.2, 255.9, 200.5, -129.0});
  for (DType from : {kFloat64, kFloat32, kFloat16, kBFloat16}) {
    INFO(from);
    const Tensor v = x.to(from);
    const Tensor held = v.to(kFloat64).contiguous();  // the values `from` holds
    const Tensor u8 = v.to(kUInt8).contiguous(), i8 = v.to(kInt8).contiguous();
    for (int64_t k = 0; k < x.numel(); ++k) {
      const auto t = static_cast<int64_t>(std::trunc(held.data_ptr<double>()[k]));
      CHECK(static_cast<int64_t>(u8.data_ptr<uint8_t>()[k]) == ((t % 256) + 256) % 256);
      CHECK(static_cast<int64_t>(i8.data_ptr<int8_t>()[k]) == ((t + 128) % 256 + 256) % 256 - 128);
    }
  }
  const Tensor u8 = x.to(kUInt8).to(kInt64);
  CHECK(equal(u8, tensor(std::vector<int64_t>{255, 0, 44, 255, 200, 127})));
  const Tensor i32 = tensor(std::vector<double>{-70000.9, 3e9}).to(kInt32).to(kInt64);
  CHECK(equal(i32, tensor(std::vector<int64_t>{-70000, int64_t{3000000000} - 4294967296})));
}
