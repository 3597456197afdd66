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
/// x cast to dtype when one is given (an op's autocast dtype), or x itself.
Tensor cast(const Tensor& x, std::optional<DType> dtype);
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

/// The operands of an op with parameters (the linear family, the convolutions): x and the weight
/// as the op's kernel reads them, and the weight and bias as the caller passed them. They differ
/// only under an autocast scope. There x goes through the recorded cast, as every autocast op's
/// inputs do, but the weight and bias (float32 parameters) are cast without a record: the op's
/// own node takes the caller's tensors as its inputs and returns their gradients in their dtype,
/// made in float32 by its kernels (a product's output cast, a sum into float32) where PyTorch's
/// autocast rounds both gradients to 16 bits and casts them back, two more passes per parameter.
/// An op whose kernel declines runs its other paths on weight_for_ops() and bias_for_ops().
struct ParamOperands {
  Tensor x, w;                    // as the kernel reads them
  Tensor w_in, b_in;              // the caller's weight and bias
  std::optional<DType> autocast;  // the scope's dtype, when one applies
  bool recast = false;            // whether w or the kernel's bias is a cast of w_in or b_in
  mutable std::optional<Tensor> bias_made;  // bias()'s result, once made

  /// The bias as dtype d (cast without a record, as autocast casts), or b_in as it is outside
  /// autocast.
  Tensor bias_as(DType d) const;
  /// The bias as the kernel reads it (made once).
  const Tensor& bias() const;
  /// The weight and the bias cast by recorded casts (autocast_call's operands), for the op's paths
  /// that record their own nodes: w and bias() where nothing was cast.
  Tensor weight_for_ops() const;
  Tensor bias_for_ops() const;
  /// t cast to the scope's dtype by a recorded cast (the composite of a create_graph backward).
  Tensor cast(const Tensor& t) const;
  /// The same operands with weight views f(w) and f(w_in) (conv1d's unsqueezed filter).
  template <class F>
  ParamOperands with_weight(F&& f) const {
    ParamOperands o = *this;
    o.w = f(w);
    o.w_in = w.is_same(w_in) ? o.w : f(w_in);
    return o;
  }
};

/// x, weight and bias as an op with parameters reads them (ParamOperands), for the thread's
/// autocast scope. own_node false (an op that will not record its own node here, such as a
/// convolution on the CPU): every cast recorded, w_in and b_in the casts, as autocast_call.
ParamOperands param_operands(const Tensor& x, const Tensor& weight, const Tensor& bias,
                             bool own_node = true);

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
