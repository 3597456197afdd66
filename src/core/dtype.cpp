// Element types: sizes, names, float16 conversion, type promotion, default dtype.
#include "ember/dtype.hpp"

#include <atomic>
#include <ostream>

#include "ember/device.hpp"
#include "ember/error.hpp"
#include "ember/scalar.hpp"
#include "ember/version.hpp"

namespace ember {

const char* version() { return "0.1.0"; }

namespace detail {

uint16_t float_to_half_bits(float f) {
  uint32_t u = float_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow or Inf
  if (abs < 0x38800000u) {  // subnormal half (or zero): value = abs_float / 2^-24
    // Add 0.5 (in float) to shift the mantissa into place with hardware round-to-nearest-even.
    float magic = bits_float(0x3f000000u);  // 0.5f
    float v = bits_float(abs) + magic;  // exponents align so the low bits are the half mantissa
    return static_cast<uint16_t>(sign | (float_bits(v) - float_bits(magic)));
  }
  // Normal: rebias exponent (127 -> 15), round the 13 dropped mantissa bits to nearest even.
  uint32_t mant_odd = (abs >> 13) & 1u;
  abs += 0xc8000fffu + mant_odd;  // (15 - 127) << 23 plus rounding bias
  return static_cast<uint16_t>(sign | (abs >> 13));
}

float half_bits_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1fu) return bits_float(sign | 0x7f800000u | (mant << 13));  // Inf / NaN
  if (exp == 0) {
    if (mant == 0) return bits_float(sign);
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;  // 2^-24
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

}  // namespace detail

size_t element_size(DType t) {
  switch (t) {
    case kBool: case kUInt8: case kInt8: return 1;
    case kFloat16: case kBFloat16: return 2;
    case kInt32: case kFloat32: return 4;
    case kInt64: case kFloat64: return 8;
  }
  throw DTypeError("[element_size] unknown dtype");
}

const char* dtype_name(DType t) {
  switch (t) {
    case kBool: return "bool";
    case kUInt8: return "uint8";
    case kInt8: return "int8";
    case kInt32: return "int32";
    case kInt64: return "int64";
    case kFloat16: return "float16";
    case kBFloat16: return "bfloat16";
    case kFloat32: return "float32";
    case kFloat64: return "float64";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  if (a == kBool) return b;
  if (b == kBool) return a;
  const bool fa = is_floating(a), fb = is_floating(b);
  if (fa && !fb) return a;
  if (fb && !fa) return b;
  if (fa && fb) {
    if (a == kFloat64 || b == kFloat64) return kFloat64;
    return kFloat32;  // float16 with bfloat16 or float32, bfloat16 with float32
  }
  // Both integers. uint8 with int8 needs int16, which Ember lacks: int32 holds both.
  auto rank = [](DType t) {
    switch (t) {
      case kUInt8: return 1;
      case kInt8: return 1;
      case kInt32: return 3;
      default: return 4;
    }
  };
  if ((a == kUInt8 && b == kInt8) || (a == kInt8 && b == kUInt8)) return kInt32;
  return rank(a) >= rank(b) ? a : b;
}

namespace {
std::atomic<DType> g_default_dtype{kFloat32};
}
void set_default_dtype(DType t) {
  EMBER_CHECK(is_floating(t), DTypeError, "[set_default_dtype] expected a floating dtype, got ", t);
  g_default_dtype.store(t);
}
DType get_default_dtype() { return g_default_dtype.load(); }

// ---- Scalar ----

DType Scalar::type() const {
  switch (kind_) {
    case Kind::Bool: return kBool;
    case Kind::Int: return kInt64;
    case Kind::Double: return get_default_dtype();
  }
  return kFloat64;
}

std::ostream& operator<<(std::ostream& os, const Scalar& s) {
  switch (s.kind()) {
    case Scalar::Kind::Bool: return os << (s.to_bool() ? "True" : "False");
    case Scalar::Kind::Int: return os << s.to_long();
    case Scalar::Kind::Double: return os << s.to_double();
  }
  return os;
}

// ---- Device ----

Device::Device(DeviceType type, int index) : type_(type), index_(type == kCPU ? -1 : index) {
  EMBER_CHECK(index >= -1, ValueError, "[Device] device index must be >= -1, got ", index);
}

Device::Device(const std::string& spec) : type_(kCPU), index_(-1) {
  if (spec == "cpu") return;
  if (spec == "cuda") {
    type_ = kCUDA;
    return;
  }
  if (spec.rfind("cuda:", 0) == 0 && spec.size() > 5 && spec.size() <= 9) {
    int idx = 0;
    for (size_t i = 5; i < spec.size(); ++i) {
      EMBER_CHECK(spec[i] >= '0' && spec[i] <= '9', ValueError,
                  "[Device] expected \"cpu\", \"cuda\" or \"cuda:<index>\", got \"", spec, "\"");
      idx = idx * 10 + (spec[i] - '0');
    }
    type_ = kCUDA;
    index_ = idx;
    return;
  }
  throw ValueError(detail::str_cat("[Device] expected \"cpu\", \"cuda\" or \"cuda:<index>\", got \"",
                                   spec, "\""));
}

std::string Device::str() const {
  if (type_ == kCPU) return "cpu";
  return index_ >= 0 ? "cuda:" + std::to_string(index_) : "cuda";
}

std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }
std::ostream& operator<<(std::ostream& os, DeviceType t) { return os << (t == kCPU ? "cpu" : "cuda"); }

}  // namespace ember
