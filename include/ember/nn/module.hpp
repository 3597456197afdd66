// The module system: Module (parameters, buffers, submodules, train/eval, state_dict), the
// ModuleHolder handle that libtorch users know (`nn::Linear fc{nullptr}; fc = nn::Linear(4, 3)`),
// and the containers Sequential, ModuleList and ModuleDict.
//
// A user-defined model is a short class:
//
//   struct NetImpl : ember::nn::Module {
//     NetImpl() {
//       fc1 = register_module("fc1", nn::Linear(784, 64));
//       fc2 = register_module("fc2", nn::Linear(64, 10));
//     }
//     Tensor forward(const Tensor& x) { return fc2(ember::relu(fc1(x))); }
//     nn::Linear fc1{nullptr}, fc2{nullptr};
//   };
//   EMBER_MODULE(Net);            // Net is a shared handle to a NetImpl
//   Net net;                      // net->parameters(), net(x), net->state_dict()
//
// Modules are owned through shared_ptr: a member handle and the parent's registry share the
// submodule, so neither can dangle, and copying a handle never copies parameters.
#pragma once

#include <concepts>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/autograd.hpp"
#include "ember/state_dict.hpp"
#include "ember/tensor.hpp"

namespace ember::nn {

class Module;

/// What load_state_dict found: keys the module has but the dict lacks, and the reverse.
struct LoadStateDictResult {
  std::vector<std::string> missing_keys;
  std::vector<std::string> unexpected_keys;
};

class Module : public std::enable_shared_from_this<Module> {
 public:
  Module() = default;
  /// `name` replaces the type name shown when printing.
  explicit Module(std::string name) : name_(std::move(name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The type name ("Linear", "Net"): the class name without namespace and `Impl` suffix.
  std::string name() const;

  // ---- registration ----
  /// Registers `t` as a parameter called `name` and returns the same tensor (a shared handle:
  /// keep it as a member). An undefined tensor registers an absent parameter (bias=false).
  Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  /// Registers a buffer (running statistics): in state_dict() unless persistent is false, moved
  /// by to(), never trained.
  Tensor register_buffer(const std::string& name, Tensor t, bool persistent = true);
  /// Registers a submodule and returns it.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  template <class Holder, class = typename std::decay_t<Holder>::ContainedType>
  std::decay_t<Holder> register_module(const std::string& name, Holder&& holder) {
    add_child(name, holder.ptr());
    return std::forward<Holder>(holder);
  }
  /// Replaces a registered submodule (same name), e.g. a classifier head for fine-tuning. A
  /// container's own forward then runs the new module (Sequential: ValueError, nothing replaced,
  /// when the new module's forward does not take one Tensor).
  template <class M>
  std::shared_ptr<M> replace_module(const std::string& name, std::shared_ptr<M> module) {
    replace_child(name, module, one_tensor_forward(module.get()));
    return module;
  }
  template <class Holder, class = typename std::decay_t<Holder>::ContainedType>
  std::decay_t<Holder> replace_module(const std::string& name, Holder&& holder) {
    replace_child(name, holder.ptr(), one_tensor_forward(holder.ptr().get()));
    return std::forward<Holder>(holder);
  }

  // ---- traversal (registration order; names dotted like PyTorch's) ----
  std::vector<Tensor> parameters(bool recurse = true) const;
  StateDict named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  StateDict named_buffers(bool recurse = true) const;
  std::vector<std::shared_ptr<Module>> children() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  /// This module and every descendant, depth first. A module not owned by a shared_ptr (a stack
  /// object) appears through a non-owning pointer: do not keep it beyond the module's life.
  std::vector<std::shared_ptr<Module>> modules();
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules(
      const std::string& prefix = "");
  /// Calls fn on this module and every descendant (children first, as torch's apply).
  void apply(const std::function<void(Module&)>& fn);
  void apply(const std::function<void(const std::string&, Module&)>& fn,
             const std::string& prefix = "");
  /// Total number of parameter elements (each shared tensor counted once).
  int64_t num_parameters(bool trainable_only = false) const;

  // ---- modes and conversion ----
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  /// Moves/converts parameters and buffers in place (member handles stay valid). to(dtype)
  /// converts floating-point tensors only, as PyTorch does.
  void to(Device device);
  void to(DType dtype);
  void to(Device device, DType dtype);
  /// Lays out the 4-d floating parameters and buffers (convolution weights) in `format`
  /// (ChannelsLast or Contiguous), as PyTorch's module.to(memory_format=...): with channels-last
  /// inputs, convolutions then read their filters without a repack and the optimizers keep their
  /// state in the same layout.
  void to(MemoryFormat format);
  /// Clears parameter gradients (set_to_none) or zeroes them.
  void zero_grad(bool set_to_none = true);

  // ---- state ----
  /// Parameters and persistent buffers by dotted name (`layer1.0.conv1.weight`), in PyTorch's
  /// order (each module's parameters, then its buffers, then its children). The tensors are
  /// detached handles sharing the module's storage.
  StateDict state_dict() const;
  /// Copies values from `dict` into this module's parameters and buffers (dtype converted).
  /// Every key with a different shape is a ShapeError; with strict, missing or unexpected keys are
  /// a ValueError; each message lists all offending keys. Nothing is modified on error.
  LoadStateDictResult load_state_dict(const StateDict& dict, bool strict = true);

  /// A module's forward as a one-tensor function (empty when its forward takes anything else).
  /// It holds a raw pointer: the module must outlive it (a container's child does).
  using TensorFn = std::function<Tensor(const Tensor&)>;
  template <class M>
  static TensorFn one_tensor_forward(M* m) {
    if constexpr (requires(M & mm, const Tensor& x) {
                    { mm.forward(x) } -> std::convertible_to<Tensor>;
                  })
      return [m](const Tensor& x) { return m->forward(x); };
    else
      return {};
  }

  // ---- printing ----
  /// The text inside the parentheses when printed: "in_features=4, out_features=3, bias=true".
  virtual std::string extra_repr() const { return ""; }
  /// The tree: one line per module with its extra_repr and parameter count.
  void pretty_print(std::ostream& os, int indent = 0) const;

 private:
  struct Slot {
    std::string name;
    Tensor tensor;
    bool persistent = true;
  };
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void replace_child(const std::string& name, std::shared_ptr<Module> m, const TensorFn& forward);
  void check_new_name(const std::string& name, const char* what) const;
  /// Parameters, all buffers, or the state (parameters and persistent buffers).
  enum class What { Parameters, Buffers, State };
  void collect(const std::string& prefix, bool recurse, What what, StateDict& out) const;
  void convert(const std::function<Tensor(const Tensor&)>& f);

  std::string name_;
  std::vector<Slot> parameters_;
  std::vector<Slot> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;

 protected:
  /// Called by replace_module before the child at `index` (registration order) is swapped for
  /// `module`, so that a container keeping its own handles on its children can update them; a
  /// throw leaves everything unchanged. `forward` is the new module's one-tensor forward.
  virtual void on_replace(size_t index, const std::shared_ptr<Module>& module,
                          const TensorFn& forward) {
    (void)index, (void)module, (void)forward;
  }
};

/// Prints the module tree (Module::pretty_print).
std::ostream& operator<<(std::ostream& os, const Module& m);

// ---- ModuleHolder: the libtorch-style handle ----

/// A shared handle to a module implementation `Impl`. Made by EMBER_MODULE(Name) for NameImpl.
/// `Name m(args...)` constructs an Impl; `Name m{nullptr}` is empty until assigned; `m(x)` calls
/// forward; `m->` reaches the Impl.
template <class Impl>
class ModuleHolder {
 public:
  using ContainedType = Impl;

  /// An Impl built with its default constructor.
  ModuleHolder() requires std::is_default_constructible_v<Impl> : impl_(std::make_shared<Impl>()) {}
  /// Empty: assign a module before use.
  ModuleHolder(std::nullptr_t) {}                                       // NOLINT
  ModuleHolder(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}  // NOLINT
  template <class A, class... Args>
  requires(!std::is_base_of_v<ModuleHolder, std::decay_t<A>> &&
           !std::is_same_v<std::decay_t<A>, std::shared_ptr<Impl>> &&
           !std::is_same_v<std::decay_t<A>, std::nullptr_t> &&
           std::is_constructible_v<Impl, A, Args...>) explicit ModuleHolder(A&& a, Args&&... args)
      : impl_(std::make_shared<Impl>(std::forward<A>(a), std::forward<Args>(args)...)) {}

  Impl* operator->() const { return get(); }
  Impl& operator*() const { return *get(); }
  Impl* get() const {
    EMBER_CHECK(impl_ != nullptr, ValueError, "[ModuleHolder] the module handle is empty");
    return impl_.get();
  }
  const std::shared_ptr<Impl>& ptr() const { return impl_; }
  bool is_empty() const { return impl_ == nullptr; }
  explicit operator bool() const { return impl_ != nullptr; }

  /// Calls Impl::forward.
  template <class... Args>
  decltype(auto) operator()(Args&&... args) const {
    return get()->forward(std::forward<Args>(args)...);
  }

 private:
  std::shared_ptr<Impl> impl_;
};

template <class Impl>
std::ostream& operator<<(std::ostream& os, const ModuleHolder<Impl>& m) {
  return os << *m;
}

// ---- containers ----

/// Runs its modules in order; each takes and returns one Tensor. Children are named "0", "1", ...
/// A BatchNorm1d/BatchNorm2d directly followed by a ReLU runs as the BatchNorm's forward_relu
/// (the same values and gradients; one fused node on CUDA while training).
class SequentialImpl : public Module {
 public:
  SequentialImpl() = default;
  template <class... Ms>
  requires(sizeof...(Ms) > 0) explicit SequentialImpl(Ms&&... modules) {
    (push_back(std::forward<Ms>(modules)), ...);
  }
  /// Appends a module handle or shared_ptr whose forward takes one Tensor.
  template <class M>
  void push_back(M&& module) {
    push_back(std::to_string(size()), std::forward<M>(module));
  }
  template <class M>
  requires(
      requires(M m) { m.ptr(); } ||
      std::is_base_of_v<
          Module, typename std::decay_t<M>::element_type>) void push_back(const std::string& name,
                                                                          M&& module) {
    auto ptr = as_ptr(std::forward<M>(module));
    using T = typename decltype(ptr)::element_type;
    static_assert(std::is_invocable_r_v<Tensor, decltype(&T::forward), T&, const Tensor&>,
                  "Sequential: a module's forward must take one Tensor and return a Tensor");
    register_module(name, ptr);
    stages_.push_back(ptr.get());
    forwards_.push_back(one_tensor_forward(ptr.get()));
  }
  /// A type-erased one-tensor function as a stage (ember::relu, a lambda).
  void push_back(const std::string& name, std::function<Tensor(const Tensor&)> fn);

  Tensor forward(const Tensor& x);
  size_t size() const { return forwards_.size(); }
  std::shared_ptr<Module> operator[](size_t i) const;
  /// The i-th module as its Impl type; ValueError on a type mismatch.
  template <class T>
  std::shared_ptr<T> at(size_t i) const {
    auto p = std::dynamic_pointer_cast<T>((*this)[i]);
    EMBER_CHECK(p != nullptr, ValueError, "[Sequential] module ", i, " is a ", (*this)[i]->name());
    return p;
  }

 private:
  template <class M>
  static auto as_ptr(M&& m) {
    if constexpr (requires { m.ptr(); })
      return m.ptr();
    else
      return std::shared_ptr<typename std::decay_t<M>::element_type>(std::forward<M>(m));
  }
  void on_replace(size_t index, const std::shared_ptr<Module>& module,
                  const TensorFn& forward) override;
  std::vector<TensorFn> forwards_;
  std::vector<Module*> stages_;  // forwards_[i]'s module (owned as a child), for forward's fusion
};

/// Holds submodules in a list (named "0", "1", ...) for the model's own forward to use.
class ModuleListImpl : public Module {
 public:
  ModuleListImpl() = default;
  template <class... Ms>
  requires(sizeof...(Ms) > 0) explicit ModuleListImpl(Ms&&... modules) {
    (push_back(std::forward<Ms>(modules)), ...);
  }
  template <class M>
  void push_back(M&& module) {
    if constexpr (requires { module.ptr(); })
      items_.push_back(module.ptr());
    else
      items_.push_back(module);
    register_module(std::to_string(items_.size() - 1), items_.back());
  }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  std::shared_ptr<Module> operator[](size_t i) const;
  template <class T>
  std::shared_ptr<T> at(size_t i) const {
    auto p = std::dynamic_pointer_cast<T>((*this)[i]);
    EMBER_CHECK(p != nullptr, ValueError, "[ModuleList] module ", i, " is a ", (*this)[i]->name());
    return p;
  }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  void on_replace(size_t index, const std::shared_ptr<Module>& module, const TensorFn&) override {
    items_.at(index) = module;
  }
  std::vector<std::shared_ptr<Module>> items_;
};

/// Holds submodules by name, in insertion order.
class ModuleDictImpl : public Module {
 public:
  ModuleDictImpl() = default;
  template <class M>
  void insert(const std::string& key, M&& module) {
    std::shared_ptr<Module> p;
    if constexpr (requires { module.ptr(); })
      p = module.ptr();
    else
      p = module;
    register_module(key, p);
    keys_.push_back(key);
  }
  bool contains(const std::string& key) const;
  std::shared_ptr<Module> operator[](const std::string& key) const;
  template <class T>
  std::shared_ptr<T> at(const std::string& key) const {
    auto p = std::dynamic_pointer_cast<T>((*this)[key]);
    EMBER_CHECK(p != nullptr, ValueError, "[ModuleDict] module '", key, "' is a ",
                (*this)[key]->name());
    return p;
  }
  const std::vector<std::string>& keys() const { return keys_; }
  size_t size() const { return keys_.size(); }

 private:
  std::vector<std::string> keys_;
};

}  // namespace ember::nn

/// Declares `Name`, a ModuleHolder for `NameImpl` (libtorch's TORCH_MODULE).
#define EMBER_MODULE(Name)                                     \
  class Name : public ::ember::nn::ModuleHolder<Name##Impl> {  \
   public:                                                     \
    using ::ember::nn::ModuleHolder<Name##Impl>::ModuleHolder; \
  }

namespace ember::nn {
EMBER_MODULE(Sequential);
EMBER_MODULE(ModuleList);
EMBER_MODULE(ModuleDict);
}  // namespace ember::nn
