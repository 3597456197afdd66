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
