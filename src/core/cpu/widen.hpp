// Kernels that take float16/bfloat16 inputs and compute in float: a row (or a tile of rows) of
// 16-bit values widened into a per-task buffer, the float code run on it, and the float results
// rounded once into the 16-bit output. With X == T (float32/float64 inputs) each helper is a
// no-op that hands back the tensor's own memory, so one kernel body serves every dtype, and the
// 16-bit results are bitwise the float kernel's on x.to(float) rounded afterwards.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/dispatch.hpp"

namespace ember::cpu {

/// f(TypeTag<X>{}) for a kernel's input dtype X: float, double, Half or BFloat16 (computed in
/// compute_t<X>: float for the 16-bit ones); any other dtype is a DTypeError naming op.
template <class F>
void visit_widened(DType dt, const char* op, F&& f) {
  if (dt == kFloat16) return f(TypeTag<Half>{});
  if (dt == kBFloat16) return f(TypeTag<BFloat16>{});
  visit_float(dt, f, op);
}

/// The n values at p (consecutive, or `ld` apart in `rows` rows of n) as T: p itself when X is T,
/// else widened into buf (rows x n, rows n apart).
template <class T, class X>
const T* widen(const X* p, int64_t rows, int64_t n, int64_t ld, std::vector<T>& buf) {
  if constexpr (std::is_same_v<T, X>) {
    return p;
  } else {
    buf.resize(static_cast<size_t>(rows * n));
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < n; ++j)
        buf[static_cast<size_t>(i * n + j)] = static_cast<T>(p[i * ld + j]);
    return buf.data();
  }
}

/// Rounds rows x n values of buf (rows n apart) into out (rows ld apart); nothing when X is T (the
/// kernel wrote out itself).
template <class T, class X>
void narrow_into(X* out, int64_t rows, int64_t n, int64_t ld, const std::vector<T>& buf) {
  if constexpr (!std::is_same_v<T, X>) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < n; ++j)
        out[i * ld + j] = convert<X>(buf[static_cast<size_t>(i * n + j)]);
  }
}

/// Where a row or tile's T results go: out itself when X is T, else buf (rows x n) for
/// narrow_into; ld_out is set to the stride between the rows written.
template <class T, class X>
T* compute_out(X* out, int64_t rows, int64_t n, int64_t ld, std::vector<T>& buf, int64_t& ld_out) {
  if constexpr (std::is_same_v<T, X>) {
    ld_out = ld;
    return out;
  } else {
    buf.resize(static_cast<size_t>(rows * n));
    ld_out = n;
    return buf.data();
  }
}

}  // namespace ember::cpu
