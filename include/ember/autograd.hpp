// Reverse-mode autograd: the graph nodes, the engine entry points, grad modes, and custom
// functions. Define-by-run like PyTorch: each differentiable op records a Node whose backward
// is written with differentiable ops, so create_graph=true gives higher-order gradients.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "ember/tensor.hpp"

namespace ember {
struct HookList;
}

namespace ember::autograd {

struct Node;

/// Where a gradient flows: input slot `input_nr` of node `fn` (null fn: the input needs no grad).
struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
  bool valid() const { return fn != nullptr; }
};

/// Shape, dtype and device of a node's forward input, used to reduce a broadcast gradient to the
/// input's shape once, centrally.
struct InputMeta {
  std::vector<int64_t> sizes;
  DType dtype = kFloat32;
  Device device = Device(kCPU);
};

/// A tensor saved for backward. Checks on unpack that it was not modified in place since it was
/// saved, and that the graph was not freed by an earlier backward.
class SavedVariable {
 public:
  SavedVariable() = default;
  /// is_output: the tensor is an output of the node saving it (stored without its grad_fn, so no
  /// reference cycle forms; restored on unpack).
  SavedVariable(const Tensor& t, bool is_output);
  /// The saved tensor. Throws ValueError naming `node_name` if it was modified in place or freed.
  Tensor unpack(const std::string& node_name, const std::shared_ptr<Node>& owner = nullptr) const;
  void reset();
  bool defined() const { return defined_; }

 private:
  Tensor data_;
  uint32_t saved_version_ = 0;
  bool defined_ = false;
  bool is_output_ = false;
  bool released_ = false;
  uint32_t output_nr_ = 0;
  bool requires_grad_ = false;
};

/// A node of the backward graph: takes the gradients of its forward outputs and returns the
/// gradients of its forward inputs (one per next edge, each in the *output's* broadcast shape or
/// the input's shape; the engine sums it to the input's shape).
struct Node : std::enable_shared_from_this<Node> {
  Node();
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// The op's name as users know it ("mul", "matmul", "MyFunction").
  virtual std::string name() const = 0;
  virtual std::vector<Tensor> apply(const std::vector<Tensor>& grad_outputs) = 0;
  /// Frees saved tensors (called after backward unless retain_graph).
  virtual void release_variables() {}
  /// A short description of the forward call for error messages: "mul(a (2, 3), b (3,))".
  std::string describe() const;

  std::vector<Edge> next_edges;       // one per forward input
  std::vector<InputMeta> input_meta;  // one per forward input
  std::vector<InputMeta> output_meta;  // one per forward output (zeros for a missing gradient)
  /// Hooks of the non-leaf tensors this node produced, per output slot (may be null).
  std::vector<std::shared_ptr<HookList>> output_hooks;
  uint32_t num_outputs = 1;
  uint64_t sequence_nr = 0;  // creation order: later nodes run first
  bool released = false;
};

/// Creates a node owned through a deleter that tears long graphs down without recursion.
void delete_node(Node* node);
template <class T, class... Args>
std::shared_ptr<T> make_node(Args&&... args) {
  return std::shared_ptr<T>(new T(std::forward<Args>(args)...), [](T* n) { delete_node(n); });
}

/// Inside its scope, a backward that produces NaN or Inf throws and names the node, like
/// torch.autograd.detect_anomaly.
class DetectAnomalyGuard {
 public:
  DetectAnomalyGuard();
  ~DetectAnomalyGuard();
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool prev_;
};
bool is_anomaly_enabled();

// ---- grad modes ----

/// True unless inside a NoGradGuard / InferenceMode or AutoGradMode(false) on this thread.
bool is_grad_enabled();
void set_grad_enabled(bool enabled);

/// Runs backward with the engine: accumulates into the .grad of the leaves that require grad.
/// `outputs` and `grad_outputs` pair up; an undefined grad_output means ones (scalars only).
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs = {},
              std::optional<bool> retain_graph = std::nullopt, bool create_graph = false);

/// Gradients of `outputs` with respect to `inputs`, returned instead of accumulated into .grad.
/// allow_unused: an input the outputs do not depend on gives an undefined tensor instead of an
/// error.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {},
                         std::optional<bool> retain_graph = std::nullopt, bool create_graph = false,
                         bool allow_unused = false);

// ---- recording (used by ops and custom functions) ----

/// Connects a new node to the graph: sets its next edges and input metadata from `inputs` and
/// makes it the grad_fn of `outputs` (which then require grad). Does nothing when grad mode is
/// off or no input requires grad; returns whether it recorded.
bool connect(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
             const std::vector<Tensor>& outputs);
/// The edge a gradient for `t` must follow: its grad_fn, or the accumulator of a leaf that
/// requires grad, or an invalid edge.
Edge gradient_edge(const Tensor& t);
/// Throws ValueError for an in-place op on a leaf that requires grad (while grad mode is on).
void check_inplace(const Tensor& self, const char* op);

// ---- custom functions ----

/// State shared between a custom function's forward and backward.
struct AutogradContext {
  /// Saves tensors for backward with version checks (inputs or outputs of forward).
  void save_for_backward(const std::vector<Tensor>& tensors);
  /// The saved tensors; ValueError if one was modified in place since it was saved.
  std::vector<Tensor> get_saved_variables() const;
  /// Outputs that get no gradient (e.g. integer indices); backward receives zeros for them.
  void mark_non_differentiable(const std::vector<Tensor>& outputs);
  /// Free-form values for backward (sizes, flags).
  std::vector<double> saved_data;

 private:
  friend struct CustomNodeBase;
  std::vector<Tensor> to_save_;
  std::vector<SavedVariable> saved_;
  std::vector<TensorImpl*> non_differentiable_;
  std::string name_;
  std::weak_ptr<Node> node_;
};

struct CustomNodeBase : Node {
  AutogradContext ctx;
  std::string name_;
  std::string name() const override { return name_; }
  void release_variables() override;
  /// Called by Function::apply after forward: saves variables, connects the node.
  void finish(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs);
};

/// A user-defined differentiable function, like torch::autograd::Function:
///
///   struct MulByTwo : ember::autograd::Function<MulByTwo> {
///     static Tensor forward(AutogradContext* ctx, const Tensor& x) { return x * 2; }
///     static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g) {
///       return {g[0] * 2};
///     }
///   };
///   Tensor y = MulByTwo::apply(x);
///
/// forward runs with grad mode off and returns a Tensor or std::vector<Tensor>; backward gets one
/// gradient per output and returns one per Tensor argument of forward (undefined: no gradient).
template <class Derived>
struct Function {
  template <class... Args>
  static auto apply(Args&&... args);
};

// ---- guards ----
class AutoGradMode {
 public:
  explicit AutoGradMode(bool enabled) : prev_(is_grad_enabled()) { set_grad_enabled(enabled); }
  ~AutoGradMode() { set_grad_enabled(prev_); }
  AutoGradMode(const AutoGradMode&) = delete;
  AutoGradMode& operator=(const AutoGradMode&) = delete;

 private:
  bool prev_;
};

}  // namespace ember::autograd

namespace ember {
/// Disables gradient recording in its scope (torch::NoGradGuard).
struct NoGradGuard : autograd::AutoGradMode {
  NoGradGuard() : autograd::AutoGradMode(false) {}
};
/// Like NoGradGuard for inference code. (Ember has no separate inference-tensor type: tensors made
/// inside are ordinary tensors that do not require grad.)
struct InferenceMode : autograd::AutoGradMode {
  explicit InferenceMode(bool enabled = true) : autograd::AutoGradMode(!enabled) {}
};
/// Gradient checkpointing, like torch.utils.checkpoint: runs fn(inputs) without keeping its
/// intermediate activations, and recomputes them (with the same random numbers from the default
/// generator) when backward reaches this point. Outputs are differentiable w.r.t. the inputs.
std::vector<Tensor> checkpoint(
    const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn,
    const std::vector<Tensor>& inputs);
Tensor checkpoint(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                  const std::vector<Tensor>& inputs);
/// Handle returned by Tensor::register_hook, for remove_hook.
using HookHandle = uint64_t;
}  // namespace ember

// ---- Function<Derived>::apply ----
namespace ember::autograd {
/// A readable C++ type name.
std::string demangle(const char* mangled);
namespace detail {
inline void collect_tensors(std::vector<Tensor>&) {}
template <class A, class... Rest>
void collect_tensors(std::vector<Tensor>& out, A&& a, Rest&&... rest) {
  if constexpr (std::is_same_v<std::decay_t<A>, Tensor>) out.push_back(a);
  collect_tensors(out, std::forward<Rest>(rest)...);
}
template <class D>
struct CustomNode : CustomNodeBase {
  std::vector<Tensor> apply(const std::vector<Tensor>& grad_outputs) override {
    std::vector<Tensor> g = grad_outputs;
    return D::backward(&ctx, g);
  }
};
}  // namespace detail

template <class Derived>
template <class... Args>
auto Function<Derived>::apply(Args&&... args) {
  std::vector<Tensor> inputs;
  detail::collect_tensors(inputs, args...);
  auto node = make_node<detail::CustomNode<Derived>>();
  node->name_ = demangle(typeid(Derived).name());
  using Result = decltype(Derived::forward(&node->ctx, std::forward<Args>(args)...));
  Result result = [&] {
    AutoGradMode no_grad(false);
    return Derived::forward(&node->ctx, std::forward<Args>(args)...);
  }();
  std::vector<Tensor> outputs;
  if constexpr (std::is_same_v<Result, Tensor>) {
    outputs.push_back(result);
  } else {
    outputs = result;
  }
  node->finish(inputs, outputs);
  if constexpr (std::is_same_v<Result, Tensor>) {
    return outputs[0];
  } else {
    return outputs;
  }
}
}  // namespace ember::autograd
