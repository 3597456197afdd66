// CPU fill and copy (with dtype conversion) over arbitrary strides.
#include "core/cpu/loops.hpp"
#include "core/dispatch.hpp"

namespace ember::cpu {

void fill(const Tensor& out, Scalar value) {
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T v = value.to<T>();
    map<T>(out, [v]() { return v; });
  });
}

void arange(const Tensor& out, Scalar start, Scalar step, bool integral) {
  const int64_t n = out.numel();
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = static_cast<T*>(out.data_ptr());
    if (integral) {
      const int64_t s = start.to_long(), st = step.to_long();
      for (int64_t i = 0; i < n; ++i) p[i] = convert<T>(s + i * st);
    } else {
      const double s = start.to_double(), st = step.to_double();
      for (int64_t i = 0; i < n; ++i) p[i] = convert<T>(s + static_cast<double>(i) * st);
    }
  });
}

/// linspace's value i of n (n >= 1) from s to e with step st = (e - s) / (n - 1).
inline double linspace_value(int64_t i, int64_t n, double s, double e, double st) {
  return i < n / 2 ? s + st * static_cast<double>(i) : e - st * static_cast<double>(n - 1 - i);
}

void linspace(const Tensor& out, double start, double end) {
  const int64_t n = out.numel();
  const double st = n > 1 ? (end - start) / static_cast<double>(n - 1) : 0.0;
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = static_cast<T*>(out.data_ptr());
    for (int64_t i = 0; i < n; ++i) p[i] = convert<T>(linspace_value(i, n, start, end, st));
  });
}

void copy(const Tensor& out, const Tensor& src) {
  visit_dtype(out.dtype(), [&](auto out_tag) {
    using O = typename decltype(out_tag)::type;
    visit_dtype(src.dtype(), [&](auto src_tag) {
      using S = typename decltype(src_tag)::type;
      map<O, S>(out, [](S v) { return convert<O>(v); }, src);
    });
  });
}

}  // namespace ember::cpu
