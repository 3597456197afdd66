// Module: registration, traversal, modes, conversion, state_dict and printing; the containers.
#include "ember/nn/module.hpp"

#include <algorithm>
#include <iomanip>
#include <locale>
#include <ostream>
#include <set>
#include <sstream>
#include <typeinfo>
#include <unordered_set>

#include "core/zero_grad.hpp"
#include "ember/ops.hpp"
#include "nn/fused_stages.hpp"

namespace ember::nn {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s.append(", ");
    s.append(v[i]);
  }
  return s;
}

/// 1234567 -> "1,234,567".
std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string dotted(const std::string& prefix, const std::string& name) {
  if (prefix.empty()) return name;
  std::string s = prefix;
  s.append(".").append(name);
  return s;
}

}  // namespace

std::string Module::name() const {
  if (!name_.empty()) return name_;
  std::string n = autograd::demangle(typeid(*this).name());
  const size_t colon = n.rfind("::");
  if (colon != std::string::npos) n = n.substr(colon + 2);
  if (n.size() > 4 && n.compare(n.size() - 4, 4, "Impl") == 0) n.resize(n.size() - 4);
  return n;
}

// ---- registration ----

void Module::check_new_name(const std::string& name, const char* what) const {
  EMBER_CHECK(!name.empty(), ValueError, "[", this->name(), "] ", what, " name is empty");
  EMBER_CHECK(name.find('.') == std::string::npos, ValueError, "[", this->name(), "] ", what,
              " name '", name, "' contains a dot");
  auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& s) {
      if constexpr (std::is_same_v<std::decay_t<decltype(s)>, Slot>)
        return s.name == name;
      else
        return s.first == name;
    });
  };
  EMBER_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_), ValueError, "[",
              this->name(), "] ", what, " name '", name, "' is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_new_name(name, "parameter");
  if (t.defined()) {
    EMBER_CHECK(!requires_grad || t.is_floating_point(), DTypeError, "[", this->name(),
                "] parameter '", name, "' must be floating point to require grad, got ", t.dtype());
    // A parameter is a leaf: the graph that made its initial value is not kept.
    if (!t.is_leaf()) t = t.detach();
    t.requires_grad_(requires_grad);
  }
  parameters_.push_back({name, t, true});
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t, bool persistent) {
  check_new_name(name, "buffer");
  if (t.defined() && !t.is_leaf()) t = t.detach();
  buffers_.push_back({name, t, persistent});
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_new_name(name, "submodule");
  EMBER_CHECK(m != nullptr, ValueError, "[", this->name(), "] submodule '", name, "' is empty");
  EMBER_CHECK(m.get() != this, ValueError, "[", this->name(), "] a module cannot contain itself");
  children_.emplace_back(name, std::move(m));
}

void Module::replace_child(const std::string& name, std::shared_ptr<Module> m,
                           const TensorFn& forward) {
  EMBER_CHECK(m != nullptr, ValueError, "[", this->name(), "] submodule '", name, "' is empty");
  EMBER_CHECK(m.get() != this, ValueError, "[", this->name(), "] a module cannot contain itself");
  for (size_t i = 0; i < children_.size(); ++i) {
    if (children_[i].first == name) {
      on_replace(i, m, forward);
      children_[i].second = std::move(m);
      return;
    }
  }
  EMBER_CHECK(false, ValueError, "[", this->name(), "] no submodule '", name, "' to replace");
}

// ---- traversal ----

void Module::collect(const std::string& prefix, bool recurse, What what, StateDict& out) const {
  // Per module: its parameters, then its buffers, then its children (PyTorch's state_dict order).
  if (what != What::Buffers)
    for (const Slot& s : parameters_)
      if (s.tensor.defined()) out.insert(dotted(prefix, s.name), s.tensor);
  if (what != What::Parameters)
    for (const Slot& s : buffers_)
      if (s.tensor.defined() && (s.persistent || what == What::Buffers))
        out.insert(dotted(prefix, s.name), s.tensor);
  if (!recurse) return;
  for (const auto& c : children_) c.second->collect(dotted(prefix, c.first), true, what, out);
}

StateDict Module::named_parameters(bool recurse) const {
  StateDict all;
  collect("", recurse, What::Parameters, all);
  // A tensor shared by two modules (tied weights) is listed once, under its first name.
  StateDict out;
  std::unordered_set<const TensorImpl*> seen;
  for (const auto& it : all)
    if (seen.insert(it.second.unsafe_impl()).second) out.insert(it.first, it.second);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> v;
  for (const auto& it : named_parameters(recurse)) v.push_back(it.second);
  return v;
}

StateDict Module::named_buffers(bool recurse) const {
  StateDict out;
  collect("", recurse, What::Buffers, out);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> v;
  for (const auto& it : named_buffers(recurse)) v.push_back(it.second);
  return v;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> v;
  for (const auto& c : children_) v.push_back(c.second);
  return v;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const {
  return children_;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules(
    const std::string& prefix) {
  std::shared_ptr<Module> self = weak_from_this().lock();
  if (!self) self = std::shared_ptr<Module>(std::shared_ptr<Module>(), this);  // non-owning
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out{{prefix, self}};
  for (const auto& c : children_) {
    auto sub = c.second->named_modules(dotted(prefix, c.first));
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<std::shared_ptr<Module>> Module::modules() {
  std::vector<std::shared_ptr<Module>> v;
  for (auto& it : named_modules()) v.push_back(it.second);
  return v;
}

void Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& c : children_) c.second->apply(fn);
  fn(*this);
}

void Module::apply(const std::function<void(const std::string&, Module&)>& fn,
                   const std::string& prefix) {
  for (auto& c : children_) c.second->apply(fn, dotted(prefix, c.first));
  fn(prefix, *this);
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (const Tensor& p : parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

// ---- modes and conversion ----

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

void Module::convert(const std::function<Tensor(const Tensor&)>& f) {
  NoGradGuard no_grad;
  for (Slot& s : parameters_) {
    if (!s.tensor.defined()) continue;
    // set_data drops a gradient of the old dtype or device: convert it alongside.
    const Tensor grad = s.tensor.grad();
    Tensor converted = f(s.tensor);
    if (!converted.is_same(s.tensor)) s.tensor.set_data(converted);
    if (grad.defined()) s.tensor.mutable_grad() = f(grad);
  }
  for (Slot& s : buffers_) {
    if (!s.tensor.defined()) continue;
    Tensor converted = f(s.tensor);
    if (!converted.is_same(s.tensor)) s.tensor.set_data(converted);
  }
  for (auto& c : children_) c.second->convert(f);
}

void Module::to(Device device) {
  convert([&](const Tensor& t) { return t.device() == device ? t : t.to(device); });
}

void Module::to(DType dtype) {
  convert([&](const Tensor& t) {
    return t.is_floating_point() && t.dtype() != dtype ? t.to(dtype) : t;
  });
}

void Module::to(MemoryFormat format) {
  if (format == MemoryFormat::Preserve) return;
  // A copy also where the memory already reads as `format` but the strides name the other
  // layout (a 1x1 filter (O, C, 1, 1)): suggest_memory_format() then reports `format`.
  convert([&](const Tensor& t) {
    return t.dim() == 4 && t.is_floating_point() && t.suggest_memory_format() != format
               ? t.clone(format)
               : t;
  });
}

void Module::to(Device device, DType dtype) {
  to(device);
  to(dtype);
}

void Module::zero_grad(bool set_to_none) {
  for (const Tensor& p : parameters()) zero_grad_of(p, set_to_none);
}

// ---- state ----

StateDict Module::state_dict() const {
  StateDict all;
  collect("", true, What::State, all);
  StateDict out;
  for (const auto& it : all) out.insert(it.first, it.second.detach());
  return out;
}

LoadStateDictResult Module::load_state_dict(const StateDict& dict, bool strict) {
  StateDict own;
  collect("", true, What::State, own);
  LoadStateDictResult r;
  std::vector<std::string> mismatched;
  for (const auto& it : own) {
    const Tensor* src = dict.find(it.first);
    if (!src) {
      r.missing_keys.push_back(it.first);
      continue;
    }
    if (src->sizes() != it.second.sizes()) {
      std::ostringstream os;
      os << it.first << ": checkpoint " << src->sizes() << " vs model " << it.second.sizes();
      mismatched.push_back(os.str());
    }
  }
  for (const auto& it : dict)
    if (!own.contains(it.first)) r.unexpected_keys.push_back(it.first);

  const std::string op = detail::str_cat("[", name(), ".load_state_dict] ");
  const bool key_problem = strict && (!r.missing_keys.empty() || !r.unexpected_keys.empty());
  if (key_problem || !mismatched.empty()) {
    std::ostringstream os;
    os << op << "cannot load the state dict:";
    std::vector<std::string> parts;
    if (!r.missing_keys.empty() && strict)
      parts.push_back(detail::str_cat("missing keys: ", join(r.missing_keys)));
    if (!r.unexpected_keys.empty() && strict)
      parts.push_back(detail::str_cat("unexpected keys: ", join(r.unexpected_keys)));
    if (!mismatched.empty())
      parts.push_back(detail::str_cat("shape mismatches: ", join(mismatched)));
    for (size_t i = 0; i < parts.size(); ++i) os << (i ? "; " : " ") << parts[i];
    const std::string msg = os.str();
    if (key_problem) throw ValueError(msg);
    throw ShapeError(msg);
  }
  NoGradGuard no_grad;
  for (const auto& it : own) {
    const Tensor* src = dict.find(it.first);
    if (!src) continue;
    Tensor dst = it.second;
    dst.copy_(*src);
  }
  return r;
}

// ---- printing ----

void Module::pretty_print(std::ostream& os, int indent) const {
  const std::string pad(static_cast<size_t>(indent), ' ');
  const std::string params = with_commas(num_parameters());
  os << name() << "(" << extra_repr();
  if (children_.empty()) {
    os << ")";
    if (num_parameters() > 0) os << "  # " << params << " parameters";
    return;
  }
  os << "  # " << params << " parameters\n";
  for (const auto& c : children_) {
    os << pad << "  (" << c.first << "): ";
    c.second->pretty_print(os, indent + 2);
    os << "\n";
  }
  os << pad << ")";
}

std::ostream& operator<<(std::ostream& os, const Module& m) {
  m.pretty_print(os);
  return os;
}

// ---- containers ----

void SequentialImpl::push_back(const std::string& name, std::function<Tensor(const Tensor&)> fn) {
  struct FunctionalImpl : Module {
    explicit FunctionalImpl(std::function<Tensor(const Tensor&)> f)
        : Module("Functional"), fn(std::move(f)) {}
    Tensor forward(const Tensor& x) { return fn(x); }
    std::function<Tensor(const Tensor&)> fn;
  };
  auto m = std::make_shared<FunctionalImpl>(std::move(fn));
  register_module(name, m);
  stages_.push_back(m.get());
  forwards_.push_back(one_tensor_forward(m.get()));
}

void SequentialImpl::on_replace(size_t index, const std::shared_ptr<Module>& module,
                                const TensorFn& forward) {
  // Children and stages are registered together, so a child's index is its stage's.
  EMBER_CHECK(forward != nullptr, ValueError, "[Sequential] replacement for stage ", index, " (a ",
              module->name(), ") has no forward taking one Tensor");
  stages_.at(index) = module.get();
  forwards_.at(index) = forward;
}

Tensor SequentialImpl::forward(const Tensor& x) {
  // A BatchNorm followed by a ReLU runs as one stage (stages::batch_norm_relu in
  // src/nn/fused_stages.hpp): the same values and gradients, one fused node on CUDA while
  // training.
  Tensor y = x;
  for (size_t i = 0; i < forwards_.size(); ++i) {
    if (i + 1 < stages_.size() && stages::batch_norm_relu(*stages_[i], *stages_[i + 1], y)) {
      ++i;
      continue;
    }
    y = forwards_[i](y);
  }
  return y;
}

std::shared_ptr<Module> SequentialImpl::operator[](size_t i) const {
  EMBER_CHECK(i < size(), IndexError, "[Sequential] index ", i, " out of range for ", size(),
              " modules");
  return children()[i];
}

std::shared_ptr<Module> ModuleListImpl::operator[](size_t i) const {
  EMBER_CHECK(i < items_.size(), IndexError, "[ModuleList] index ", i, " out of range for ",
              items_.size(), " modules");
  return items_[i];
}

bool ModuleDictImpl::contains(const std::string& key) const {
  return std::find(keys_.begin(), keys_.end(), key) != keys_.end();
}

std::shared_ptr<Module> ModuleDictImpl::operator[](const std::string& key) const {
  for (const auto& c : named_children())
    if (c.first == key) return c.second;
  EMBER_CHECK(false, IndexError, "[ModuleDict] no module '", key, "'");
  return nullptr;
}

}  // namespace ember::nn
