// Helpers shared by the tests.
#pragma once

#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "ember/ember.hpp"

/// Checks that `expr` throws `Type` whose message contains every given substring
/// (e.g. the op name "[add]" and a shape "(2, 3)").
#define EMBER_CHECK_THROWS(expr, Type, ...)                                          \
  do {                                                                               \
    bool ember_thrown_ = false;                                                      \
    try {                                                                            \
      (void)(expr);                                                                  \
    } catch (const Type& e) {                                                        \
      ember_thrown_ = true;                                                          \
      const std::string ember_msg_ = e.what();                                       \
      for (const char* ember_sub_ : std::vector<const char*>{__VA_ARGS__}) {         \
        INFO("message: " << ember_msg_ << "\nexpected to contain: " << ember_sub_);  \
        CHECK(ember_msg_.find(ember_sub_) != std::string::npos);                     \
      }                                                                              \
    }                                                                                \
    INFO("expected " #Type " from " #expr);                                          \
    CHECK(ember_thrown_);                                                            \
  } while (0)

namespace ember::test {

/// Values of a tensor (any dtype, any strides) as doubles in row-major order.
inline std::vector<double> values(const Tensor& t) {
  Tensor c = t.to(kFloat64).contiguous();
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

/// A non-contiguous copy of t with the same values: stored transposed/strided in a larger buffer.
inline Tensor non_contiguous(const Tensor& t) {
  if (t.dim() == 0) return t.clone();
  std::vector<int64_t> big = t.sizes().vec();
  big.back() *= 2;
  Tensor buf = zeros(big, t.options());
  Tensor view = buf.slice(-1, 0, std::nullopt, 2);
  view.copy_(t);
  return view;
}

/// Bitwise equality of two tensors' bytes (same dtype and shape; strides may differ).
inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.sizes() != b.sizes()) return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

/// max |a - b| / max(1, max |b|) in float64 (0 when both are undefined, infinity for a NaN):
/// the error measure of the fused-kernel tests.
inline double rel_err(const Tensor& a, const Tensor& b) {
  if (!a.defined() && !b.defined()) return 0.0;
  if (a.defined() != b.defined() || a.sizes() != b.sizes()) return INFINITY;
  std::vector<double> x = values(a), y = values(b);
  double err = 0, mag = 1;
  for (size_t i = 0; i < x.size(); ++i) {
    err = std::max(err, std::abs(x[i] - y[i]));
    mag = std::max(mag, std::abs(y[i]));
  }
  return std::isnan(err) ? INFINITY : err / mag;
}

/// The message of the ember::Error fn throws ("" if it throws none).
inline std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

/// The name of y's autograd node ("" for a leaf): fused ops record one node named after the op.
inline std::string node_name(const Tensor& y) { return y.grad_fn() ? y.grad_fn()->name() : ""; }

}  // namespace ember::test
