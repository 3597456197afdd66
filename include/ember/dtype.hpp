// Element types, the 16-bit float types, and PyTorch's type-promotion lattice.
#pragma once

#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <limits>
#include <string>

namespace ember {

/// Element type of a tensor. Names and promotion follow PyTorch.
enum class DType : uint8_t { Bool, UInt8, Int8, Int32, Int64, Float16, BFloat16, Float32, Float64 };
using ScalarType = DType;  // libtorch's name

inline constexpr DType kBool = DType::Bool;
inline constexpr DType kUInt8 = DType::UInt8;
inline constexpr DType kByte = DType::UInt8;
inline constexpr DType kInt8 = DType::Int8;
inline constexpr DType kChar = DType::Int8;
inline constexpr DType kInt32 = DType::Int32;
inline constexpr DType kInt = DType::Int32;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kLong = DType::Int64;
inline constexpr DType kFloat16 = DType::Float16;
inline constexpr DType kHalf = DType::Float16;
inline constexpr DType kBFloat16 = DType::BFloat16;
inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kDouble = DType::Float64;
inline constexpr int kNumDTypes = 9;

// ---- 16-bit floats: bit storage, round-to-nearest-even from float, NaN and Inf kept ----

namespace detail {
inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t float_to_half_bits(float f);
float half_bits_to_float(uint16_t h);
inline uint16_t float_to_bfloat16_bits(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>((u + rounding) >> 16);
}
inline float bfloat16_bits_to_float(uint16_t b) { return bits_float(static_cast<uint32_t>(b) << 16); }
}  // namespace detail

/// IEEE 754 binary16. Arithmetic converts to float.
struct Half {
  uint16_t x = 0;
  Half() = default;
  Half(float f) : x(detail::float_to_half_bits(f)) {}  // NOLINT: implicit like at::Half
  operator float() const { return detail::half_bits_to_float(x); }
  static Half from_bits(uint16_t bits) {
    Half h;
    h.x = bits;
    return h;
  }
};

/// bfloat16: the upper half of a float32. Arithmetic converts to float.
struct BFloat16 {
  uint16_t x = 0;
  BFloat16() = default;
  BFloat16(float f) : x(detail::float_to_bfloat16_bits(f)) {}  // NOLINT: implicit like at::BFloat16
  operator float() const { return detail::bfloat16_bits_to_float(x); }
  static BFloat16 from_bits(uint16_t bits) {
    BFloat16 b;
    b.x = bits;
    return b;
  }
};

// ---- dtype <-> C++ type ----

template <class T>
struct dtype_of;
template <> struct dtype_of<bool> { static constexpr DType value = kBool; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = kUInt8; };
template <> struct dtype_of<int8_t> { static constexpr DType value = kInt8; };
template <> struct dtype_of<int32_t> { static constexpr DType value = kInt32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = kInt64; };
template <> struct dtype_of<Half> { static constexpr DType value = kFloat16; };
template <> struct dtype_of<BFloat16> { static constexpr DType value = kBFloat16; };
template <> struct dtype_of<float> { static constexpr DType value = kFloat32; };
template <> struct dtype_of<double> { static constexpr DType value = kFloat64; };
template <class T>
inline constexpr DType dtype_of_v = dtype_of<T>::value;

/// Bytes per element.
size_t element_size(DType t);
/// "float32", "int64", ... as PyTorch prints them without the "torch." prefix.
const char* dtype_name(DType t);
std::ostream& operator<<(std::ostream& os, DType t);

inline bool is_floating(DType t) {
  return t == kFloat16 || t == kBFloat16 || t == kFloat32 || t == kFloat64;
}
inline bool is_floating_point(DType t) { return is_floating(t); }
inline bool is_integral(DType t, bool include_bool = false) {
  return t == kUInt8 || t == kInt8 || t == kInt32 || t == kInt64 || (include_bool && t == kBool);
}
inline bool is_reduced_float(DType t) { return t == kFloat16 || t == kBFloat16; }
/// The dtype an op computes and accumulates in: float16 and bfloat16 widen to float32 (PyTorch's
/// opmath type), every other dtype computes in itself.
inline DType opmath_dtype(DType t) { return is_reduced_float(t) ? kFloat32 : t; }

/// PyTorch's promote_types: the smallest type that holds both (uint8 + int8 -> int16 is not a
/// dtype here, so it gives int32; float16 + bfloat16 -> float32).
DType promote_types(DType a, DType b);

/// Sets and reads the default floating dtype used by factories and integer-to-float promotion.
void set_default_dtype(DType t);
DType get_default_dtype();

}  // namespace ember
