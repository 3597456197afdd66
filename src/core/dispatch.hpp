// The one device switch (`launch`) and the dtype switch (`visit_dtype`).
#pragma once

#include <type_traits>
#include <utility>

#include "core/kernels.hpp"
#include "ember/error.hpp"
#include "ember/tensor.hpp"

namespace ember {

/// Runs the kernel for `device`. Adding a backend changes only this function.
template <class... Params, class... Args>
void launch(Device device, void (*cpu_fn)(Params...), void (*cuda_fn)(Params...), Args&&... args) {
  switch (device.type()) {
    case DeviceType::CPU:
      cpu_fn(std::forward<Args>(args)...);
      return;
    case DeviceType::CUDA:
      cuda_fn(std::forward<Args>(args)...);
      return;
  }
}

template <class T>
struct TypeTag {
  using type = T;
};

/// Calls f(TypeTag<T>{}) with T the C++ type of dtype.
template <class F>
decltype(auto) visit_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Bool: return f(TypeTag<bool>{});
    case DType::UInt8: return f(TypeTag<uint8_t>{});
    case DType::Int8: return f(TypeTag<int8_t>{});
    case DType::Int32: return f(TypeTag<int32_t>{});
    case DType::Int64: return f(TypeTag<int64_t>{});
    case DType::Float16: return f(TypeTag<Half>{});
    case DType::BFloat16: return f(TypeTag<BFloat16>{});
    case DType::Float32: return f(TypeTag<float>{});
    case DType::Float64: return f(TypeTag<double>{});
  }
  throw DTypeError("[visit_dtype] unknown dtype");
}

/// Calls f(TypeTag<float>{}) or f(TypeTag<double>{}): the kernels written for float32 and
/// float64 only. Any other dtype is a DTypeError naming `op`.
template <class F>
decltype(auto) visit_float(DType dtype, F&& f, const char* op = "visit_float") {
  if (dtype == DType::Float32) return f(TypeTag<float>{});
  if (dtype == DType::Float64) return f(TypeTag<double>{});
  throw DTypeError(detail::str_cat("[", op, "] expected float32 or float64, got ", dtype));
}

/// The type arithmetic on T is done in: float for Half/BFloat16, T otherwise.
template <class T>
struct compute_type {
  using type = T;
};
template <>
struct compute_type<Half> {
  using type = float;
};
template <>
struct compute_type<BFloat16> {
  using type = float;
};
template <class T>
using compute_t = typename compute_type<T>::type;

/// Converts between element types, rounding to nearest even into Half/BFloat16.
template <class To, class From>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<From, Half> || std::is_same_v<From, BFloat16>) {
    return convert<To>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) {
    return To(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To> &&
                       sizeof(To) < sizeof(int64_t)) {
    // Truncated toward zero through int64, then wrapped into To (e.g. -1.5 -> uint8 255), as
    // PyTorch does on the CPU. A direct cast is undefined for values To cannot hold and differs
    // between machines: a GPU saturates. Same rule in src/cuda/loops.cuh's convert.
    return static_cast<To>(static_cast<int64_t>(v));
  } else {
    return static_cast<To>(v);
  }
}

}  // namespace ember
