// Recording an op's backward: the fourth step of every op (STYLE.md).
//
//   Tensor y = ...;                                          // forward result
//   record("mul", {a, b}, y, {a, b}, [](const Saved& s, const Tensor& dy) {
//     return Grads{dy * s[1], dy * s[0]};                    // one gradient per input
//   });
//
// Backward formulas are written with differentiable ops, so create_graph=true works. Each
// returned gradient may have the output's (broadcast) shape: the engine sums it to the input's
// shape. Return an undefined Tensor for an input that gets no gradient. Saved tensors are
// checked against in-place modification and freed after backward.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ember/autograd.hpp"

namespace ember::autograd {

using Grads = std::vector<Tensor>;
using Saved = std::vector<Tensor>;
using BackwardFn = std::function<Grads(const Saved& saved, const std::vector<Tensor>& grads)>;

/// A node whose backward is a closure over saved tensors.
struct FunctionNode : Node {
  std::string op;
  std::vector<SavedVariable> saved;
  BackwardFn fn;
  std::string name() const override { return op; }
  std::vector<Tensor> apply(const std::vector<Tensor>& grad_outputs) override;
  void release_variables() override;
};

/// True when an op on these inputs must record a node (grad mode on, some input requires grad).
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

/// Records a node for a multi-output op. `saved` may contain inputs and outputs.
void record(const char* op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            const std::vector<Tensor>& saved, BackwardFn fn);

/// Single-output form: fn(saved, dy) returns one gradient per input.
void record(const char* op, const std::vector<Tensor>& inputs, const Tensor& output,
            const std::vector<Tensor>& saved,
            std::function<Grads(const Saved& saved, const Tensor& dy)> fn);

/// Refuses (ValueError naming op) an in-place write that records a node into self when self is a
/// view recorded by a view op (view, slice, split's pieces, ...) of a tensor that requires grad:
/// the view's base would not learn about the write (no view rebase yet).
void check_not_view_write(const Tensor& self, const char* op);

/// The gradients of composite(saved) with respect to the saved inputs saved[0..n_inputs) that
/// require grad, recorded (create_graph): the double-backward path of a fused node whose backward
/// kernel is first-order only (the node calls it when grad mode is on inside its backward, which
/// the engine does exactly for create_graph=true). Inputs that need no gradient get undefined.
Grads composite_grads(const std::function<Tensor(const Saved&)>& composite, const Saved& saved,
                      const Tensor& dy, size_t n_inputs);

}  // namespace ember::autograd

namespace ember {
/// Runs an op's forward with grad mode off, so its internal views, copies and helper ops are not
/// part of the graph when the op records one node with an explicit formula.
template <class F>
auto forward_no_grad(F&& f) {
  NoGradGuard no_grad;
  return f();
}
}  // namespace ember
