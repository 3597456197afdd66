// The autograd engine: recording nodes, saved variables, and backward execution.
//
// Execution is iterative (no recursion, so a chain of 100,000 ops is fine): count each node's
// dependencies by an explicit-stack walk from the roots, then run nodes from a ready queue
// ordered by creation (latest first), adding each returned gradient, reduced to its input's
// shape (sum_to, the one central place broadcasting is undone), into the next node's input
// buffer. Graph teardown goes through delete_node, which defers nested deletions to a loop.
#include "ember/autograd.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <queue>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "core/autocast.hpp"
#include "core/tensor_impl.hpp"
#include "ember/ops.hpp"

namespace ember::autograd {

namespace {
thread_local bool g_grad_enabled = true;
thread_local bool g_anomaly = false;
std::atomic<uint64_t> g_sequence{0};
std::atomic<uint64_t> g_hook_id{1};

/// The gradient accumulator of a leaf tensor that requires grad.
struct AccumulateGrad : Node {
  std::shared_ptr<TensorImpl> leaf;
  std::string name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(const std::vector<Tensor>&) override { return {}; }
};

InputMeta meta_of(const Tensor& t) { return InputMeta{t.sizes().vec(), t.dtype(), t.device()}; }

/// Sums a gradient over broadcast dimensions so it has `sizes`.
Tensor sum_to(const Tensor& g, const std::vector<int64_t>& sizes) {
  if (g.sizes() == IntArrayRef(sizes)) return g;
  const int64_t lead = g.dim() - static_cast<int64_t>(sizes.size());
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < g.dim(); ++d) {
    if (d < lead || (sizes[d - lead] == 1 && g.size(d) != 1)) dims.push_back(d);
  }
  Tensor r = dims.empty() ? g : g.sum(dims, /*keepdim=*/true);
  return r.reshape(sizes);
}

/// A copy of g, the first gradient a leaf keeps, with the leaf's strides when the leaf is dense
/// (PyTorch's gradient layout contract): a channels-last weight gets a channels-last .grad
/// whichever kernel produced g, so the optimizers' fused updates walk parameter, gradient and
/// state alike. Otherwise g's own layout.
Tensor grad_laid_out_as(const Tensor& g, const TensorImpl& leaf) {
  if (g.sizes() != IntArrayRef(leaf.sizes) || g.strides() == IntArrayRef(leaf.strides))
    return g.clone();
  Tensor like = empty_strided(leaf.sizes, leaf.strides, g.options());
  if (!is_dense(like)) return g.clone();
  like.copy_(g);
  return like;
}

Tensor run_hooks(const std::shared_ptr<HookList>& hooks, Tensor g) {
  if (!hooks) return g;
  for (auto& [id, fn] : hooks->hooks) {
    Tensor r = fn(g);
    if (r.defined()) g = r;
  }
  if (hooks->retain_grad) {
    if (auto owner = hooks->owner.lock()) {
      Tensor& slot = owner->grad;
      slot = slot.defined() ? slot + g.detach() : g.detach().clone();
    }
  }
  return g;
}

std::string shapes_of(const std::vector<InputMeta>& metas) {
  std::ostringstream os;
  for (size_t i = 0; i < metas.size(); ++i) os << (i ? ", " : "") << IntArrayRef(metas[i].sizes);
  return os.str();
}

struct CaptureKey {
  Node* node;
  uint32_t slot;
  bool operator==(const CaptureKey& o) const { return node == o.node && slot == o.slot; }
};
struct CaptureHash {
  size_t operator()(const CaptureKey& k) const {
    return std::hash<const void*>()(k.node) ^ (static_cast<size_t>(k.slot) * 0x9e3779b97f4a7c15ull);
  }
};

/// Runs the backward graph from `roots`. With `captures` empty, accumulates into leaves' .grad;
/// otherwise returns the gradient arriving at each captured (node, slot) and accumulates nothing.
std::vector<Tensor> execute(const std::vector<Edge>& roots, const std::vector<Tensor>& root_grads,
                            bool keep_graph, bool create_graph,
                            const std::vector<Edge>& captures) {
  const bool capture_mode = !captures.empty();
  AutoGradMode mode(create_graph);
  autocast_detail::Suspend no_autocast;  // backward's dtypes follow the forward's (as PyTorch's)

  // ---- dependencies ----
  std::unordered_map<Node*, int> deps;
  std::unordered_map<Node*, std::shared_ptr<Node>> owner;
  std::vector<Node*> stack;
  std::vector<Node*> order;  // every reachable node
  for (const Edge& e : roots) {
    if (e.valid() && !owner.count(e.fn.get())) {
      owner[e.fn.get()] = e.fn;
      stack.push_back(e.fn.get());
    }
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    order.push_back(n);
    for (const Edge& e : n->next_edges) {
      if (!e.valid()) continue;
      deps[e.fn.get()]++;
      if (!owner.count(e.fn.get())) {
        owner[e.fn.get()] = e.fn;
        stack.push_back(e.fn.get());
      }
    }
  }

  // ---- what to capture, and which nodes must run for it ----
  std::unordered_map<CaptureKey, size_t, CaptureHash> capture_index;
  std::unordered_set<Node*> capture_nodes;
  for (size_t i = 0; i < captures.size(); ++i) {
    if (!captures[i].valid()) continue;
    capture_index[{captures[i].fn.get(), captures[i].input_nr}] = i;
    capture_nodes.insert(captures[i].fn.get());
  }
  std::unordered_set<Node*> must_run;
  if (capture_mode) {
    // Reverse creation order visits a node's successors before it (edges point to older nodes).
    std::vector<Node*> by_seq = order;
    std::sort(by_seq.begin(), by_seq.end(),
              [](Node* a, Node* b) { return a->sequence_nr < b->sequence_nr; });
    for (Node* n : by_seq) {
      for (const Edge& e : n->next_edges) {
        if (e.valid() && (capture_nodes.count(e.fn.get()) || must_run.count(e.fn.get()))) {
          must_run.insert(n);
          break;
        }
      }
    }
  }

  // ---- input buffers and the ready queue ----
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  auto add_to = [&](Node* n, uint32_t slot, const Tensor& g) {
    std::vector<Tensor>& buf = buffers[n];
    if (buf.size() < n->num_outputs) buf.resize(n->num_outputs);
    buf[slot] = buf[slot].defined() ? buf[slot] + g : g;
  };
  auto later_first = [](Node* a, Node* b) { return a->sequence_nr < b->sequence_nr; };
  std::priority_queue<Node*, std::vector<Node*>, decltype(later_first)> ready(later_first);
  for (size_t i = 0; i < roots.size(); ++i) {
    if (roots[i].valid()) add_to(roots[i].fn.get(), roots[i].input_nr, root_grads[i]);
  }
  std::unordered_set<Node*> queued;
  for (const Edge& e : roots) {
    if (e.valid() && deps[e.fn.get()] == 0 && !queued.count(e.fn.get())) {
      queued.insert(e.fn.get());
      ready.push(e.fn.get());
    }
  }

  std::vector<Tensor> captured(captures.size());
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    std::vector<Tensor> grads = std::move(buffers[n]);
    buffers.erase(n);
    grads.resize(n->num_outputs);

    // Hooks of the tensors this node produced, then captures.
    auto* acc = dynamic_cast<AccumulateGrad*>(n);
    for (uint32_t s = 0; s < n->num_outputs; ++s) {
      if (!grads[s].defined()) continue;
      const std::shared_ptr<HookList>& hooks =
          acc ? acc->leaf->hooks : (s < n->output_hooks.size() ? n->output_hooks[s] : nullptr);
      grads[s] = run_hooks(hooks, grads[s]);
      auto it = capture_index.find({n, s});
      if (it != capture_index.end()) captured[it->second] = grads[s];
    }

    if (acc) {
      if (!capture_mode && grads[0].defined()) {
        Tensor& slot = acc->leaf->grad;
        Tensor g = create_graph ? grads[0] : grads[0].detach();
        if (!slot.defined()) {
          slot = create_graph ? g : grad_laid_out_as(g, *acc->leaf);
        } else {
          slot = create_graph ? slot + g : slot.detach() + g;
        }
      }
      continue;
    }
    if (capture_mode && !must_run.count(n)) continue;

    EMBER_CHECK(!n->released, ValueError, "[autograd] trying to backward through the graph of ",
                n->name(), " a second time (its saved tensors were freed): pass retain_graph=true "
                "to the first backward");
    for (uint32_t s = 0; s < n->num_outputs; ++s) {
      if (!grads[s].defined() && s < n->output_meta.size()) {
        const InputMeta& m = n->output_meta[s];
        grads[s] = zeros(m.sizes, TensorOptions().dtype(m.dtype).device(m.device));
      }
    }
    std::vector<Tensor> out = n->apply(grads);
    EMBER_CHECK(out.size() == n->next_edges.size(), ValueError, "[autograd] backward of ",
                n->name(), " returned ", out.size(), " gradients, expected ",
                n->next_edges.size());
    if (!keep_graph) {
      n->release_variables();
      n->released = true;
    }
    for (size_t i = 0; i < out.size(); ++i) {
      const Edge& e = n->next_edges[i];
      if (!e.valid()) continue;
      Tensor g = out[i];
      if (g.defined()) {
        if (g_anomaly) {
          EMBER_CHECK(!(isnan(g).any().item<bool>() || isinf(g).any().item<bool>()), ValueError,
                      "[autograd] anomaly: the backward of ", n->describe(),
                      " produced NaN or Inf in the gradient of input ", i);
        }
        const InputMeta& m = n->input_meta[i];
        g = sum_to(g, m.sizes);
        if (g.dtype() != m.dtype) g = g.to(m.dtype);
        if (g.device() != m.device) g = g.to(m.device);  // a 0-d CPU operand of a CUDA op
        add_to(e.fn.get(), e.input_nr, g);
      }
      if (--deps[e.fn.get()] == 0 && !queued.count(e.fn.get())) {
        queued.insert(e.fn.get());
        ready.push(e.fn.get());
      }
    }
  }
  return captured;
}

std::vector<Tensor> make_root_grads(const std::vector<Tensor>& outputs,
                                    const std::vector<Tensor>& grad_outputs, const char* op) {
  EMBER_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), ValueError, "[", op,
              "] got ", outputs.size(), " outputs but ", grad_outputs.size(), " gradients");
  std::vector<Tensor> grads;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& o = outputs[i];
    EMBER_CHECK(o.defined() && o.requires_grad(), ValueError, "[", op, "] element ", i,
                " of the outputs does not require grad and has no grad_fn");
    Tensor g = grad_outputs.empty() ? Tensor() : grad_outputs[i];
    if (!g.defined()) {
      EMBER_CHECK(o.numel() == 1, ValueError, "[", op,
                  "] a gradient can be created implicitly only for one-element outputs; got "
                  "shape ",
                  o.sizes());
      g = ones_like(o);
    } else {
      EMBER_CHECK(g.sizes() == o.sizes(), ShapeError, "[", op, "] gradient shape ", g.sizes(),
                  " does not match output shape ", o.sizes());
    }
    grads.push_back(g);
  }
  return grads;
}
}  // namespace

// ---- nodes ----

Node::Node() : sequence_nr(g_sequence.fetch_add(1)) {}

std::string Node::describe() const {
  return ::ember::detail::str_cat(name(), "(inputs of shape ", shapes_of(input_meta), ")");
}

void delete_node(Node* node) {
  thread_local bool active = false;
  thread_local std::vector<Node*> pending;
  if (active) {
    pending.push_back(node);
    return;
  }
  active = true;
  delete node;
  while (!pending.empty()) {
    Node* n = pending.back();
    pending.pop_back();
    delete n;
  }
  active = false;
}

std::string demangle(const char* mangled) {
  int status = 0;
  char* s = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string out = (status == 0 && s) ? s : mangled;
  std::free(s);
  return out;
}

// ---- modes ----

bool is_grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool enabled) { g_grad_enabled = enabled; }
DetectAnomalyGuard::DetectAnomalyGuard() : prev_(g_anomaly) { g_anomaly = true; }
DetectAnomalyGuard::~DetectAnomalyGuard() { g_anomaly = prev_; }
bool is_anomaly_enabled() { return g_anomaly; }

// ---- saved variables ----

SavedVariable::SavedVariable(const Tensor& t, bool is_output)
    : defined_(t.defined()), is_output_(is_output) {
  if (!defined_) return;
  saved_version_ = t._version();
  requires_grad_ = t.requires_grad();
  if (is_output) {
    // An alias without grad_fn: the node does not own itself through its own output.
    data_ = make_view(t, t.sizes().vec(), t.strides().vec(), t.storage_offset());
    output_nr_ = t.output_nr();
  } else {
    data_ = t;
  }
}

Tensor SavedVariable::unpack(const std::string& node_name, const std::shared_ptr<Node>& owner) const {
  EMBER_CHECK(!released_, ValueError, "[autograd] trying to backward through the graph of ",
              node_name, " a second time (its saved tensors were freed): pass retain_graph=true "
              "to the first backward");
  if (!defined_) return Tensor();
  EMBER_CHECK(data_._version() == saved_version_, ValueError, "[autograd] a tensor saved by ",
              node_name, " was modified in place: version ", data_._version(), ", expected ",
              saved_version_);
  if (is_output_ && owner && requires_grad_) {
    Tensor t = make_view(data_, data_.sizes().vec(), data_.strides().vec(), data_.storage_offset());
    t.unsafe_impl()->grad_fn = owner;
    t.unsafe_impl()->output_nr = output_nr_;
    t.unsafe_impl()->requires_grad = true;
    return t;
  }
  return data_;
}

void SavedVariable::reset() {
  data_ = Tensor();
  released_ = true;
}

// ---- recording ----

Edge gradient_edge(const Tensor& t) {
  if (!t.defined()) return {};
  TensorImpl* impl = t.unsafe_impl();
  if (impl->grad_fn) return {impl->grad_fn, impl->output_nr};
  if (!impl->requires_grad) return {};
  std::shared_ptr<Node> acc = impl->grad_accumulator.lock();
  if (!acc) {
    auto a = make_node<AccumulateGrad>();
    a->leaf = t.impl_ptr();
    a->output_meta = {meta_of(t)};
    acc = a;
    impl->grad_accumulator = acc;
  }
  return {acc, 0};
}

bool connect(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
             const std::vector<Tensor>& outputs) {
  if (!is_grad_enabled()) return false;
  bool any = false;
  for (const Tensor& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return false;
  node->next_edges.clear();
  node->input_meta.clear();
  for (const Tensor& t : inputs) {
    node->next_edges.push_back(gradient_edge(t));
    node->input_meta.push_back(t.defined() ? meta_of(t) : InputMeta{});
  }
  node->num_outputs = static_cast<uint32_t>(outputs.size());
  node->output_meta.clear();
  node->output_hooks.assign(outputs.size(), nullptr);
  for (uint32_t i = 0; i < outputs.size(); ++i) {
    const Tensor& o = outputs[i];
    node->output_meta.push_back(o.defined() ? meta_of(o) : InputMeta{});
    if (!o.defined()) continue;
    TensorImpl* impl = o.unsafe_impl();
    impl->grad_fn = node;
    impl->output_nr = i;
    impl->requires_grad = true;
    impl->grad_accumulator.reset();
    if (impl->hooks) impl->hooks.reset();  // hooks belong to the tensor's previous history
  }
  return true;
}

void check_inplace(const Tensor& self, const char* op) {
  EMBER_CHECK(!(is_grad_enabled() && self.requires_grad() && self.is_leaf()), ValueError, "[", op,
              "] a leaf tensor that requires grad is being used in an in-place operation; "
              "wrap it in NoGradGuard or use an out-of-place op");
}

void check_not_view_write(const Tensor& self, const char* op) {
  if (self.is_leaf()) return;
  static const char* const kViews[] = {"view",    "reshape",          "permute",    "transpose",
                                       "squeeze", "unsqueeze",        "expand",     "slice",
                                       "select",  "diagonal",         "as_strided", "alias",
                                       "split",   "split_with_sizes", "unbind"};
  const std::string fn = self.grad_fn()->name();
  for (const char* v : kViews)
    EMBER_CHECK(fn != v, ValueError, "[", op,
                "] in-place operation on a view of a tensor that "
                "requires grad is not supported yet (the view comes from ",
                fn, ")");
}

// ---- custom functions ----

void AutogradContext::save_for_backward(const std::vector<Tensor>& tensors) { to_save_ = tensors; }

std::vector<Tensor> AutogradContext::get_saved_variables() const {
  std::vector<Tensor> out;
  std::shared_ptr<Node> node = node_.lock();
  for (const SavedVariable& v : saved_) out.push_back(v.unpack(name_, node));
  return out;
}

void AutogradContext::mark_non_differentiable(const std::vector<Tensor>& outputs) {
  for (const Tensor& t : outputs) non_differentiable_.push_back(t.unsafe_impl());
}

void CustomNodeBase::release_variables() {
  for (SavedVariable& v : ctx.saved_) v.reset();
}

void CustomNodeBase::finish(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) {
  ctx.name_ = name_;
  // An output that is an input returned as is becomes an alias, so the input keeps its history.
  for (Tensor& o : outputs) {
    for (const Tensor& in : inputs) {
      if (o.defined() && o.is_same(in)) o = make_view(in, in.sizes().vec(), in.strides().vec(), in.storage_offset());
    }
  }
  std::vector<Tensor> differentiable;
  for (Tensor& o : outputs) {
    bool nd = false;
    for (TensorImpl* p : ctx.non_differentiable_) nd = nd || p == o.unsafe_impl();
    differentiable.push_back(nd ? Tensor() : o);
  }
  bool recorded = connect(shared_from_this(), inputs, differentiable);
  if (recorded) {
    num_outputs = static_cast<uint32_t>(outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (!differentiable[i].defined()) output_meta[i] = meta_of(outputs[i]);
    }
  }
  ctx.node_ = weak_from_this();
  for (const Tensor& t : ctx.to_save_) {
    bool is_output = false;
    for (const Tensor& o : outputs) is_output = is_output || (t.defined() && o.is_same(t));
    ctx.saved_.emplace_back(t, is_output && recorded);
  }
  ctx.to_save_.clear();
}

// ---- engine entry points ----

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
              std::optional<bool> retain_graph, bool create_graph) {
  std::vector<Tensor> grads = make_root_grads(outputs, grad_outputs, "backward");
  std::vector<Edge> roots;
  for (const Tensor& o : outputs) roots.push_back(gradient_edge(o));
  execute(roots, grads, retain_graph.value_or(create_graph), create_graph, {});
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, std::optional<bool> retain_graph,
                         bool create_graph, bool allow_unused) {
  std::vector<Tensor> grads = make_root_grads(outputs, grad_outputs, "grad");
  std::vector<Edge> roots, captures;
  for (const Tensor& o : outputs) roots.push_back(gradient_edge(o));
  for (size_t i = 0; i < inputs.size(); ++i) {
    EMBER_CHECK(inputs[i].defined() && inputs[i].requires_grad(), ValueError, "[grad] input ", i,
                " does not require grad");
    captures.push_back(gradient_edge(inputs[i]));
  }
  std::vector<Tensor> out =
      execute(roots, grads, retain_graph.value_or(create_graph), create_graph, captures);
  for (size_t i = 0; i < out.size(); ++i) {
    EMBER_CHECK(out[i].defined() || allow_unused, ValueError, "[grad] input ", i,
                " (shape ", inputs[i].sizes(),
                ") was not used to compute the outputs; pass allow_unused=true");
  }
  return out;
}

}  // namespace ember::autograd

// ---- Tensor members ----
namespace ember {

uint32_t Tensor::output_nr() const { return impl_ ? impl_->output_nr : 0; }

void Tensor::backward(const Tensor& gradient, std::optional<bool> retain_graph,
                      bool create_graph) const {
  autograd::backward({*this}, {gradient}, retain_graph, create_graph);
}

namespace {
std::shared_ptr<HookList> hooks_of(const Tensor& t, const char* op) {
  EMBER_CHECK(t.defined() && t.requires_grad(), ValueError, "[", op,
              "] cannot register a hook on a tensor that does not require grad");
  TensorImpl* impl = t.unsafe_impl();
  if (!impl->hooks) {
    impl->hooks = std::make_shared<HookList>();
    impl->hooks->owner = t.impl_ptr();
  }
  if (impl->grad_fn) {
    auto& slots = impl->grad_fn->output_hooks;
    if (slots.size() <= impl->output_nr) slots.resize(impl->output_nr + 1);
    slots[impl->output_nr] = impl->hooks;
  }
  return impl->hooks;
}
}  // namespace

void Tensor::retain_grad() const {
  if (is_leaf()) return;  // leaves keep their gradient anyway
  hooks_of(*this, "retain_grad")->retain_grad = true;
}
bool Tensor::retains_grad() const {
  return impl_ && !is_leaf() && impl_->hooks && impl_->hooks->retain_grad;
}

uint64_t Tensor::register_hook(std::function<Tensor(const Tensor&)> hook) const {
  uint64_t id = autograd::g_hook_id.fetch_add(1);
  hooks_of(*this, "register_hook")->hooks.emplace_back(id, std::move(hook));
  return id;
}

void Tensor::remove_hook(uint64_t handle) const {
  if (!impl_ || !impl_->hooks) return;
  auto& h = impl_->hooks->hooks;
  h.erase(std::remove_if(h.begin(), h.end(), [&](const auto& p) { return p.first == handle; }),
          h.end());
}

Tensor Tensor::detach() const {
  EMBER_CHECK(defined(), ValueError, "[detach] the tensor is undefined");
  return make_view(*this, sizes().vec(), strides().vec(), storage_offset());
}

Tensor& Tensor::detach_() {
  EMBER_CHECK(defined(), ValueError, "[detach_] the tensor is undefined");
  impl_->grad_fn.reset();
  impl_->requires_grad = false;
  impl_->output_nr = 0;
  return *this;
}

void Tensor::set_data(const Tensor& data) {
  EMBER_CHECK(defined() && data.defined(), ValueError, "[set_data] the tensor is undefined");
  EMBER_CHECK(is_leaf(), ValueError, "[set_data] only a leaf tensor can take new data");
  TensorImpl& self = *impl_;
  const TensorImpl& src = *data.impl_;
  const bool same_kind = self.sizes == src.sizes && self.dtype == src.dtype && self.device == src.device;
  EMBER_CHECK(!self.requires_grad || is_floating(src.dtype), DTypeError,
              "[set_data] a tensor that requires grad cannot take ", src.dtype, " data");
  self.storage = src.storage;
  self.sizes = src.sizes;
  self.strides = src.strides;
  self.offset = src.offset;
  self.dtype = src.dtype;
  self.device = src.device;
  self.version = src.version;
  if (!same_kind) self.grad = Tensor();
}

}  // namespace ember

// ---- op recording (src/core/record.hpp) ----
#include "core/record.hpp"

namespace ember::autograd {

std::vector<Tensor> FunctionNode::apply(const std::vector<Tensor>& grad_outputs) {
  Saved s;
  s.reserve(saved.size());
  std::shared_ptr<Node> self = shared_from_this();
  for (const SavedVariable& v : saved) s.push_back(v.unpack(op, self));
  return fn(s, grad_outputs);
}

void FunctionNode::release_variables() {
  for (SavedVariable& v : saved) v.reset();
}

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Grads composite_grads(const std::function<Tensor(const Saved&)>& composite, const Saved& saved,
                      const Tensor& dy, size_t n_inputs) {
  Grads g(n_inputs);
  std::vector<Tensor> wrt;
  std::vector<size_t> slot;
  for (size_t i = 0; i < n_inputs; ++i) {
    if (saved[i].defined() && saved[i].requires_grad()) {
      wrt.push_back(saved[i]);
      slot.push_back(i);
    }
  }
  if (wrt.empty()) return g;
  Tensor y = composite(saved);
  // retain_graph: the recomputation may reach nodes of the outer graph, which must survive.
  std::vector<Tensor> r = grad({y}, wrt, {dy}, /*retain_graph=*/true, /*create_graph=*/true,
                               /*allow_unused=*/true);
  for (size_t k = 0; k < r.size(); ++k) g[slot[k]] = r[k];
  return g;
}

void record(const char* op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            const std::vector<Tensor>& saved, BackwardFn fn) {
  if (!needs_grad(inputs)) return;
  auto node = make_node<FunctionNode>();
  node->op = op;
  node->fn = std::move(fn);
  connect(node, inputs, outputs);
  // An output is saved as an alias without grad_fn (no cycle) and gets it back on unpack.
  for (const Tensor& t : saved) {
    bool is_output = false;
    for (const Tensor& o : outputs) is_output = is_output || (t.defined() && o.is_same(t));
    node->saved.emplace_back(t, is_output);
  }
}

void record(const char* op, const std::vector<Tensor>& inputs, const Tensor& output,
            const std::vector<Tensor>& saved,
            std::function<Grads(const Saved& saved, const Tensor& dy)> fn) {
  record(op, inputs, std::vector<Tensor>{output}, saved,
         [fn = std::move(fn)](const Saved& s, const std::vector<Tensor>& g) { return fn(s, g[0]); });
}

}  // namespace ember::autograd

// ---- gradient checkpointing ----
namespace ember {
namespace {

using CheckpointFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

/// Holds the inputs (not the activations) and recomputes fn in backward.
struct CheckpointNode : autograd::Node {
  CheckpointFn fn;
  std::vector<autograd::SavedVariable> inputs;
  uint64_t seed = 0, offset = 0;  // default generator state at forward time
  std::string name() const override { return "checkpoint"; }
  void release_variables() override {
    for (auto& v : inputs) v.reset();
  }
  std::vector<Tensor> apply(const std::vector<Tensor>& grads) override {
    const bool create_graph = autograd::is_grad_enabled();
    std::vector<Tensor> leaves, wrt;
    std::vector<int> wrt_slot;
    for (size_t i = 0; i < inputs.size(); ++i) {
      Tensor t = inputs[i].unpack("checkpoint");
      // First order: recompute on detached leaves, apart from the outer graph. With create_graph
      // the recomputation must hang off the real inputs, so the gradients it returns are
      // differentiable with respect to them.
      Tensor leaf = (t.defined() && !create_graph) ? t.detach() : t;
      if (t.defined() && t.requires_grad()) {
        if (!create_graph) leaf.requires_grad_(true);
        wrt.push_back(leaf);
        wrt_slot.push_back(static_cast<int>(i));
      }
      leaves.push_back(leaf);
    }
    // Replay the forward's random numbers, then put the generator back where backward found it.
    Generator& gen = default_generator();
    const uint64_t seed_now = gen.current_seed(), offset_now = gen.offset();
    gen.set_current_seed(seed);
    gen.set_offset(offset);
    std::vector<Tensor> outs;
    {
      autograd::AutoGradMode on(true);
      outs = fn(leaves);
    }
    gen.set_current_seed(seed_now);
    gen.set_offset(offset_now);
    std::vector<Tensor> roots, root_grads;
    for (size_t i = 0; i < outs.size() && i < grads.size(); ++i) {
      if (outs[i].defined() && outs[i].requires_grad()) {
        roots.push_back(outs[i]);
        root_grads.push_back(grads[i]);
      }
    }
    std::vector<Tensor> result(inputs.size());
    if (roots.empty() || wrt.empty()) return result;
    std::vector<Tensor> g =
        autograd::grad(roots, wrt, root_grads, /*retain_graph=*/create_graph, create_graph,
                       /*allow_unused=*/true);
    for (size_t k = 0; k < g.size(); ++k) result[static_cast<size_t>(wrt_slot[k])] = g[k];
    return result;
  }
};

}  // namespace

std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs) {
  if (!autograd::needs_grad(inputs)) return fn(inputs);
  auto node = autograd::make_node<CheckpointNode>();
  node->fn = fn;
  node->seed = default_generator().current_seed();
  node->offset = default_generator().offset();
  std::vector<Tensor> outs;
  {
    NoGradGuard no_grad;
    outs = fn(inputs);
  }
  std::vector<Tensor> differentiable;
  for (Tensor& o : outs) {
    for (const Tensor& in : inputs) {  // an input returned as is becomes an alias
      if (o.defined() && o.is_same(in)) o = make_view(in, in.sizes().vec(), in.strides().vec(), in.storage_offset());
    }
    differentiable.push_back(o.defined() && o.is_floating_point() ? o : Tensor());
  }
  autograd::connect(node, inputs, differentiable);
  for (const Tensor& t : inputs) node->inputs.emplace_back(t, false);
  return outs;
}

Tensor checkpoint(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                  const std::vector<Tensor>& inputs) {
  return checkpoint(CheckpointFn([fn](const std::vector<Tensor>& in) {
                      return std::vector<Tensor>{fn(in)};
                    }),
                    inputs)[0];
}

}  // namespace ember
