// How an op takes part in autocast (include/ember/autocast.hpp): at its top,
//
//   Tensor matmul(const Tensor& a, const Tensor& b) {
//     if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, a, b))
//       return autocast_call(*dt, &matmul, a, b);
//     ... the op as usual ...
//
// autocast_dtype says whether a scope applies to these inputs (and to what dtype they go);
// autocast_call casts every floating Tensor argument that the policy casts and calls the op again
// with autocast suspended, so the op's own inner calls are not cast a second time.
#pragma once

#include <optional>

#include "ember/autocast.hpp"
#include "ember/tensor.hpp"

namespace ember {

enum class AutocastPolicy {
  kLower,    // float32 and the other reduced float go to the scope's dtype
  kFloat32,  // float16 and bfloat16 go to float32
};

namespace autocast_detail {
/// The dtype `policy` casts x to in the thread's scope, or nullopt when x stays as it is.
std::optional<DType> target(AutocastPolicy policy, const Tensor& x);
inline std::optional<DType> target(AutocastPolicy, const std::optional<Tensor>&) {
  return std::nullopt;
}
/// Whether cast(x, dtype) changes x: a defined floating x other than float64, of another dtype.
bool changes(const Tensor& x, DType dtype);
/// x cast as its policy says (the dtype was chosen by autocast_dtype), or x itself.
Tensor cast(const Tensor& x, DType dtype);
template <class T>
const T& cast(const T& x, DType) {
  return x;
}
/// Suspends the thread's autocast settings in its scope.
class Suspend {
 public:
  Suspend();
  ~Suspend();
  Suspend(const Suspend&) = delete;
  Suspend& operator=(const Suspend&) = delete;

 private:
  AutocastState prev_;
};
}  // namespace autocast_detail

/// Whether an autocast scope applies to an op with these tensor inputs, and the dtype to cast to:
/// the first defined input decides the device; nullopt when no input would change dtype.
template <class... Ts>
std::optional<DType> autocast_dtype(AutocastPolicy policy, const Ts&... inputs) {
  std::optional<DType> dt;
  ((dt = dt ? dt : autocast_detail::target(policy, inputs)), ...);
  return dt;
}

/// op(args...) with each Tensor argument whose dtype the policy changes cast to `dtype`, with
/// autocast suspended inside.
template <class... P, class... A>
Tensor autocast_call(DType dtype, Tensor (*op)(P...), const A&... args) {
  autocast_detail::Suspend off;
  return op(autocast_detail::cast(args, dtype)...);
}

}  // namespace ember
