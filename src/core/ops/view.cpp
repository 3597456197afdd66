// View ops: new sizes/strides/offset over the same storage, never a copy (reshape copies only
// when no view exists, like PyTorch). Also broadcast_shapes, which every binary op uses.
#include <algorithm>
#include <numeric>

#include <functional>

#include "core/record.hpp"
#include "core/tensor_impl.hpp"
#include "ember/ops.hpp"

namespace ember {

namespace {
using ViewFn = std::function<Tensor(const Tensor&)>;

/// Records a view op whose gradient is `bw(dy)` (a differentiable function of dy).
void record_view(const char* op, const Tensor& in, const Tensor& out, ViewFn bw) {
  if (!autograd::needs_grad({&in})) return;
  autograd::record(op, {in}, out, {},
                   [bw = std::move(bw)](const autograd::Saved&, const Tensor& dy) {
                     return autograd::Grads{bw(dy)};
                   });
}

/// The gradient of a view op that picks a subset of its input (slice, select, diagonal): zeros of
/// the input's shape with dy written through the same view. Recorded as its own node whose backward
/// is the view again, so it is differentiable to any order.
Tensor view_scatter(const char* op, const Tensor& dy, const std::vector<int64_t>& input_sizes,
                    const ViewFn& view_fn) {
  Tensor base;
  {
    NoGradGuard no_grad;
    base = zeros(input_sizes, dy.options());
    Tensor dst = view_fn(base);
    if (dst.numel() > 0) dst.copy_(dy);
  }
  record_view(op, dy, base, view_fn);
  return base;
}

/// Records a view op that picks a subset of its input; backward is view_scatter.
void record_subset_view(const char* op, const char* backward_op, const Tensor& in,
                        const Tensor& out, ViewFn view_fn) {
  if (!autograd::needs_grad({&in})) return;
  std::vector<int64_t> in_sizes = in.sizes().vec();
  record_view(op, in, out, [backward_op, in_sizes, view_fn = std::move(view_fn)](const Tensor& dy) {
    return view_scatter(backward_op, dy, in_sizes, view_fn);
  });
}

/// Records a view op whose gradient is dy reshaped to the input's shape.
void record_reshape_like(const char* op, const Tensor& in, const Tensor& out) {
  if (!autograd::needs_grad({&in})) return;
  std::vector<int64_t> in_sizes = in.sizes().vec();
  record_view(op, in, out, [in_sizes](const Tensor& dy) { return dy.reshape(in_sizes); });
}
}  // namespace

std::vector<int64_t> broadcast_shapes(IntArrayRef a, IntArrayRef b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    EMBER_CHECK(da == db || da == 1 || db == 1, ShapeError, "[", op, "] shapes ", a, " and ", b,
                " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<Tensor> broadcast_tensors(const std::vector<Tensor>& tensors) {
  std::vector<int64_t> shape;
  for (const Tensor& t : tensors) shape = broadcast_shapes(shape, t.sizes(), "broadcast_tensors");
  std::vector<Tensor> out;
  for (const Tensor& t : tensors) out.push_back(t.expand(shape));
  return out;
}

namespace {
/// Resolves one -1 in a view/reshape size list against numel.
std::vector<int64_t> infer_size(IntArrayRef sizes, int64_t numel, const char* op,
                                IntArrayRef from) {
  std::vector<int64_t> out = sizes.vec();
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      EMBER_CHECK(infer < 0, ShapeError, "[", op, "] only one dimension can be -1, got ", sizes);
      infer = static_cast<int>(i);
    } else {
      EMBER_CHECK(out[i] >= 0, ShapeError, "[", op, "] invalid size ", out[i], " in ", sizes);
      EMBER_CHECK(!__builtin_mul_overflow(known, out[i], &known), ValueError, "[", op,
                  "] size overflows: ", sizes);
    }
  }
  if (infer >= 0) {
    EMBER_CHECK(known != 0 && numel % known == 0, ShapeError, "[", op, "] shape ", sizes,
                " is invalid for input of size ", numel, " (shape ", from, ")");
    out[infer] = numel / known;
  } else {
    EMBER_CHECK(known == numel, ShapeError, "[", op, "] shape ", sizes,
                " is invalid for input of size ", numel, " (shape ", from, ")");
  }
  return out;
}

/// Strides for viewing (sizes, strides) as new_sizes without copying, or nullopt when impossible
/// (PyTorch's computeStride: each run of merged dims must be contiguous within itself).
std::optional<std::vector<int64_t>> view_strides(IntArrayRef sizes, IntArrayRef strides,
                                                 IntArrayRef new_sizes) {
  std::vector<int64_t> out(new_sizes.size());
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  if (sizes.empty()) return std::vector<int64_t>(new_sizes.size(), 1);  // 0-d: all sizes are 1
  if (numel == 0) {
    if (sizes.equals(new_sizes)) return strides.vec();
    return contiguous_strides(new_sizes);
  }
  int64_t view_d = static_cast<int64_t>(new_sizes.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= sizes[d];
    if (d == 0 || (sizes[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_sizes[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_sizes[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}
}  // namespace

Tensor view(const Tensor& t, IntArrayRef sizes) {
  std::vector<int64_t> ns = infer_size(sizes, t.numel(), "view", t.sizes());
  auto st = view_strides(t.sizes(), t.strides(), ns);
  EMBER_CHECK(st.has_value(), ShapeError, "[view] cannot view shape ", t.sizes(), " with strides ",
              t.strides(), " as ", IntArrayRef(ns), ": the memory is not laid out for it (use reshape)");
  Tensor out = make_view(t, ns, *st, t.storage_offset());
  record_reshape_like("view", t, out);
  return out;
}

Tensor reshape(const Tensor& t, IntArrayRef sizes) {
  std::vector<int64_t> ns = infer_size(sizes, t.numel(), "reshape", t.sizes());
  auto st = view_strides(t.sizes(), t.strides(), ns);
  if (st) {
    Tensor out = make_view(t, ns, *st, t.storage_offset());
    record_reshape_like("reshape", t, out);
    return out;
  }
  // clone (row-major, whatever t's layout) and view record their own backward
  return t.clone(MemoryFormat::Contiguous).view(ns);
}

Tensor permute(const Tensor& t, IntArrayRef dims) {
  const int64_t n = t.dim();
  EMBER_CHECK(static_cast<int64_t>(dims.size()) == n, ShapeError, "[permute] expected ", n,
              " dims for a tensor of shape ", t.sizes(), ", got ", dims);
  std::vector<int64_t> sz(n), st(n);
  std::vector<bool> seen(n, false);
  for (int64_t i = 0; i < n; ++i) {
    int64_t d = wrap_dim(dims[i], n, "permute", false);
    EMBER_CHECK(!seen[d], IndexError, "[permute] repeated dim in ", dims);
    seen[d] = true;
    sz[i] = t.sizes()[d];
    st[i] = t.strides()[d];
  }
  Tensor out = make_view(t, sz, st, t.storage_offset());
  if (autograd::needs_grad({&t})) {
    std::vector<int64_t> inverse(n);
    for (int64_t i = 0; i < n; ++i) inverse[wrap_dim(dims[i], n, "permute", false)] = i;
    record_view("permute", t, out, [inverse](const Tensor& dy) { return dy.permute(inverse); });
  }
  return out;
}

Tensor transpose(const Tensor& t, int64_t d0, int64_t d1) {
  const int64_t n = t.dim();
  if (n == 0) {
    wrap_dim(d0, n, "transpose");
    wrap_dim(d1, n, "transpose");
    Tensor out = make_view(t, {}, {}, t.storage_offset());
    record_view("transpose", t, out, [](const Tensor& dy) { return dy; });
    return out;
  }
  d0 = wrap_dim(d0, n, "transpose", false);
  d1 = wrap_dim(d1, n, "transpose", false);
  std::vector<int64_t> sz = t.sizes().vec(), st = t.strides().vec();
  std::swap(sz[d0], sz[d1]);
  std::swap(st[d0], st[d1]);
  Tensor out = make_view(t, sz, st, t.storage_offset());
  record_view("transpose", t, out, [d0, d1](const Tensor& dy) { return dy.transpose(d0, d1); });
  return out;
}

Tensor squeeze(const Tensor& t) {
  std::vector<int64_t> sz, st;
  for (int64_t i = 0; i < t.dim(); ++i)
    if (t.sizes()[i] != 1) {
      sz.push_back(t.sizes()[i]);
      st.push_back(t.strides()[i]);
    }
  Tensor out = make_view(t, sz, st, t.storage_offset());
  record_reshape_like("squeeze", t, out);
  return out;
}

Tensor squeeze(const Tensor& t, int64_t d) {
  if (t.dim() == 0) {
    wrap_dim(d, 0, "squeeze");
    Tensor out = make_view(t, {}, {}, t.storage_offset());
    record_reshape_like("squeeze", t, out);
    return out;
  }
  d = wrap_dim(d, t.dim(), "squeeze", false);
  std::vector<int64_t> sz = t.sizes().vec(), st = t.strides().vec();
  if (sz[d] == 1) {
    sz.erase(sz.begin() + d);
    st.erase(st.begin() + d);
  }
  Tensor out = make_view(t, sz, st, t.storage_offset());
  record_reshape_like("squeeze", t, out);
  return out;
}

Tensor unsqueeze(const Tensor& t, int64_t d) {
  d = wrap_dim(d, t.dim() + 1, "unsqueeze", false);
  std::vector<int64_t> sz = t.sizes().vec(), st = t.strides().vec();
  int64_t stride = d < t.dim() ? sz[d] * st[d] : 1;
  sz.insert(sz.begin() + d, 1);
  st.insert(st.begin() + d, stride);
  Tensor out = make_view(t, sz, st, t.storage_offset());
  record_view("unsqueeze", t, out, [d](const Tensor& dy) { return dy.squeeze(d); });
  return out;
}

Tensor expand(const Tensor& t, IntArrayRef sizes) {
  const int64_t n = static_cast<int64_t>(sizes.size());
  EMBER_CHECK(n >= t.dim(), ShapeError, "[expand] the number of sizes ", sizes,
              " must be at least the tensor's dims ", t.sizes());
  std::vector<int64_t> sz(n), st(n);
  for (int64_t i = n - 1; i >= 0; --i) {
    int64_t j = i - (n - t.dim());
    int64_t want = sizes[i];
    if (j >= 0) {
      int64_t have = t.sizes()[j];
      if (want == -1) want = have;
      EMBER_CHECK(have == want || have == 1, ShapeError, "[expand] cannot expand shape ",
                  t.sizes(), " to ", sizes, ": dim ", i, " has size ", have, " (must be 1 or ",
                  want, ")");
      sz[i] = want;
      st[i] = have == want ? t.strides()[j] : 0;
    } else {
      EMBER_CHECK(want >= 0, ShapeError, "[expand] new leading dims need explicit sizes, got ",
                  sizes);
      sz[i] = want;
      st[i] = 0;
    }
  }
  Tensor out = make_view(t, sz, st, t.storage_offset());
  // The engine sums a gradient over broadcast (new leading and size-1) dims: exactly expand's.
  record_view("expand", t, out, [](const Tensor& dy) { return dy; });
  return out;
}

Tensor slice(const Tensor& t, int64_t d, std::optional<int64_t> start_opt,
             std::optional<int64_t> end_opt, int64_t step) {
  EMBER_CHECK(t.dim() > 0, IndexError, "[slice] cannot slice a 0-d tensor");
  d = wrap_dim(d, t.dim(), "slice", false);
  EMBER_CHECK(step > 0, ValueError, "[slice] step must be positive, got ", step);
  const int64_t len = t.sizes()[d];
  int64_t start = start_opt.value_or(0), end = end_opt.value_or(len);
  if (start < 0) start += len;
  if (end < 0) end += len;
  start = std::clamp<int64_t>(start, 0, len);
  end = std::clamp<int64_t>(end, start, len);
  std::vector<int64_t> sz = t.sizes().vec(), st = t.strides().vec();
  sz[d] = (end - start + step - 1) / step;
  int64_t offset = t.storage_offset() + start * st[d];
  st[d] *= step;
  Tensor out = make_view(t, sz, st, offset);
  record_subset_view("slice", "slice_backward", t, out, [d, start, end, step](const Tensor& g) {
    return g.slice(d, start, end, step);
  });
  return out;
}

Tensor narrow(const Tensor& t, int64_t d, int64_t start, int64_t length) {
  EMBER_CHECK(t.dim() > 0, IndexError, "[narrow] cannot narrow a 0-d tensor");
  d = wrap_dim(d, t.dim(), "narrow", false);
  const int64_t len = t.sizes()[d];
  if (start < 0) start += len;
  EMBER_CHECK(start >= 0 && length >= 0 && start <= len && length <= len - start, IndexError,
              "[narrow] start ", start, " + length ", length, " exceeds dim ", d, " of size ", len,
              " (shape ", t.sizes(), ")");
  return slice(t, d, start, start + length, 1);
}

Tensor select(const Tensor& t, int64_t d, int64_t index) {
  EMBER_CHECK(t.dim() > 0, IndexError, "[select] cannot select from a 0-d tensor");
  d = wrap_dim(d, t.dim(), "select", false);
  const int64_t len = t.sizes()[d];
  EMBER_CHECK(index >= -len && index < len, IndexError, "[select] index ", index,
              " is out of bounds for dim ", d, " with size ", len, " (shape ", t.sizes(), ")");
  if (index < 0) index += len;
  std::vector<int64_t> sz = t.sizes().vec(), st = t.strides().vec();
  int64_t offset = t.storage_offset() + index * st[d];
  sz.erase(sz.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = make_view(t, sz, st, offset);
  record_subset_view("select", "select_backward", t, out,
                     [d, index](const Tensor& g) { return g.select(d, index); });
  return out;
}

Tensor flatten(const Tensor& t, int64_t start_dim, int64_t end_dim) {
  if (t.dim() == 0) return t.reshape({1});
  start_dim = wrap_dim(start_dim, t.dim(), "flatten", false);
  end_dim = wrap_dim(end_dim, t.dim(), "flatten", false);
  EMBER_CHECK(start_dim <= end_dim, IndexError, "[flatten] start_dim ", start_dim,
              " is after end_dim ", end_dim);
  std::vector<int64_t> sz;
  for (int64_t i = 0; i < start_dim; ++i) sz.push_back(t.sizes()[i]);
  int64_t m = 1;
  for (int64_t i = start_dim; i <= end_dim; ++i) m *= t.sizes()[i];
  sz.push_back(m);
  for (int64_t i = end_dim + 1; i < t.dim(); ++i) sz.push_back(t.sizes()[i]);
  return t.reshape(sz);
}

Tensor unflatten(const Tensor& t, int64_t d, IntArrayRef sizes) {
  d = wrap_dim(d, t.dim(), "unflatten", false);
  EMBER_CHECK(!sizes.empty(), ShapeError, "[unflatten] sizes must be non-empty");
  std::vector<int64_t> inner = infer_size(sizes, t.sizes()[d], "unflatten", t.sizes());
  std::vector<int64_t> sz;
  for (int64_t i = 0; i < d; ++i) sz.push_back(t.sizes()[i]);
  sz.insert(sz.end(), inner.begin(), inner.end());
  for (int64_t i = d + 1; i < t.dim(); ++i) sz.push_back(t.sizes()[i]);
  return t.view(sz);
}

Tensor as_strided(const Tensor& t, IntArrayRef sizes, IntArrayRef strides,
                  std::optional<int64_t> storage_offset) {
  EMBER_CHECK(sizes.size() == strides.size(), ShapeError, "[as_strided] sizes ", sizes,
              " and strides ", strides, " differ in length");
  int64_t offset = storage_offset.value_or(t.storage_offset());
  EMBER_CHECK(offset >= 0, IndexError, "[as_strided] negative storage offset ", offset);
  // Every reachable element must lie inside the storage.
  int64_t max_index = offset;
  bool empty = false;
  for (size_t i = 0; i < sizes.size(); ++i) {
    EMBER_CHECK(sizes[i] >= 0 && strides[i] >= 0, ValueError,
                "[as_strided] sizes and strides must be non-negative, got ", sizes, " and ", strides);
    if (sizes[i] == 0) empty = true;
    int64_t span = 0;
    EMBER_CHECK(!__builtin_mul_overflow(sizes[i] == 0 ? 0 : sizes[i] - 1, strides[i], &span) &&
                    !__builtin_add_overflow(max_index, span, &max_index),
                ValueError, "[as_strided] size overflow for sizes ", sizes, " strides ", strides);
  }
  const size_t storage_elems = t.unsafe_impl()->storage->nbytes / t.element_size();
  EMBER_CHECK(empty || static_cast<size_t>(max_index) < storage_elems, IndexError,
              "[as_strided] sizes ", sizes, " strides ", strides, " offset ", offset,
              " reach element ", max_index, " but the storage holds ", storage_elems);
  Tensor out = make_view(t, sizes.vec(), strides.vec(), offset);
  if (autograd::needs_grad({&t})) {
    // Gradient over the storage: each output element adds dy into the storage position it reads,
    // then the input reads its own positions back. Needs an input whose elements do not overlap.
    std::vector<int64_t> in_sizes = t.sizes().vec(), in_strides = t.strides().vec();
    const int64_t in_offset = t.storage_offset();
    bool overlapping = false;
    {
      std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size) of non-trivial dims
      for (int64_t i = 0; i < t.dim(); ++i)
        if (in_sizes[i] > 1) dims.push_back({in_strides[i], in_sizes[i]});
      std::sort(dims.begin(), dims.end());
      int64_t span = 1;  // elements covered by the smaller-stride dims
      for (auto [stride, size] : dims) {
        if (stride < span) overlapping = true;
        span = stride * (size - 1) + span;
      }
    }
    EMBER_CHECK(!overlapping, ValueError, "[as_strided] backward through an input with overlapping "
                "memory (shape ", t.sizes(), ", strides ", t.strides(), ") is not supported");
    std::vector<int64_t> out_sizes = sizes.vec(), out_strides = strides.vec();
    const int64_t n = static_cast<int64_t>(storage_elems);
    record_view("as_strided", t, out, [=](const Tensor& dy) {
      TensorOptions idx = TensorOptions(kInt64).device(dy.device());
      Tensor read = arange(n, idx).as_strided(out_sizes, out_strides, offset).reshape({-1});
      Tensor flat = zeros({n}, dy.options()).index_add(0, read, dy.reshape({-1}));
      Tensor back = arange(n, idx).as_strided(in_sizes, in_strides, in_offset).reshape({-1});
      return flat.index_select(0, back).view(in_sizes);
    });
  }
  return out;
}

namespace {
/// Records the pieces (views of t, made without recording) as one node whose gradient is
/// combine(the pieces' gradients), the engine's zeros for a piece that gets none (PyTorch's
/// SplitBackward and UnbindBackward). Recorded one by one, each slice would scatter its gradient
/// into zeros of t's shape and the engine would sum those: for a transformer's q, k, v split of
/// (B, T, 3C), 3 zero fills, 3 copies and 2 additions of (B, T, 3C) against one concatenation.
std::vector<Tensor> record_pieces(const char* op, const Tensor& t, std::vector<Tensor> pieces,
                                  std::function<Tensor(const std::vector<Tensor>&)> combine) {
  autograd::record(
      op, {t}, pieces, {},
      [combine = std::move(combine)](const autograd::Saved&, const std::vector<Tensor>& g) {
        return autograd::Grads{combine(g)};
      });
  return pieces;
}

/// t's pieces of the given sizes along d (they sum to t.size(d)), one node for all.
std::vector<Tensor> split_pieces(const char* op, const Tensor& t, const std::vector<int64_t>& sizes,
                                 int64_t d) {
  std::vector<Tensor> out;
  {
    NoGradGuard no_grad;
    int64_t start = 0;
    for (int64_t s : sizes) {
      out.push_back(t.narrow(d, start, s));
      start += s;
    }
  }
  return record_pieces(op, t, std::move(out),
                       [d](const std::vector<Tensor>& g) { return cat(g, d); });
}
}  // namespace

std::vector<Tensor> split_with_sizes(const Tensor& t, IntArrayRef sizes, int64_t d) {
  d = wrap_dim(d, t.dim(), "split_with_sizes", false);
  int64_t total = 0;
  for (int64_t s : sizes) {
    EMBER_CHECK(s >= 0, ValueError, "[split_with_sizes] negative size in ", sizes);
    total += s;
  }
  EMBER_CHECK(total == t.sizes()[d], ShapeError, "[split_with_sizes] sizes ", sizes, " sum to ",
              total, " but dim ", d, " has size ", t.sizes()[d]);
  return split_pieces("split_with_sizes", t, sizes.vec(), d);
}

std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t d) {
  d = wrap_dim(d, t.dim(), "split", false);
  EMBER_CHECK(split_size > 0 || (split_size == 0 && t.sizes()[d] == 0), ValueError,
              "[split] split_size must be positive, got ", split_size);
  const int64_t len = t.sizes()[d];
  if (len == 0) return {t};
  std::vector<int64_t> sizes;
  for (int64_t s = 0; s < len; s += split_size) sizes.push_back(std::min(split_size, len - s));
  return split_pieces("split", t, sizes, d);
}

std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t d) {
  EMBER_CHECK(chunks > 0, ValueError, "[chunk] chunks must be positive, got ", chunks);
  d = wrap_dim(d, t.dim(), "chunk", false);
  int64_t size = (t.sizes()[d] + chunks - 1) / chunks;
  if (size == 0) size = 1;
  return split(t, size, d);
}

std::vector<Tensor> unbind(const Tensor& t, int64_t d) {
  d = wrap_dim(d, t.dim(), "unbind", false);
  std::vector<Tensor> out;
  {
    NoGradGuard no_grad;
    for (int64_t i = 0; i < t.sizes()[d]; ++i) out.push_back(t.select(d, i));
  }
  if (out.empty()) return out;
  return record_pieces("unbind", t, std::move(out),
                       [d](const std::vector<Tensor>& g) { return stack(g, d); });
}

Tensor diagonal(const Tensor& t, int64_t offset, int64_t d1, int64_t d2) {
  EMBER_CHECK(t.dim() >= 2, ShapeError, "[diagonal] expected at least 2 dims, got shape ", t.sizes());
  d1 = wrap_dim(d1, t.dim(), "diagonal", false);
  d2 = wrap_dim(d2, t.dim(), "diagonal", false);
  EMBER_CHECK(d1 != d2, IndexError, "[diagonal] dims must differ, got ", d1, " and ", d2);
  const int64_t n1 = t.sizes()[d1], n2 = t.sizes()[d2];
  int64_t len = offset >= 0 ? std::max<int64_t>(std::min(n1, n2 - offset), 0)
                            : std::max<int64_t>(std::min(n1 + offset, n2), 0);
  int64_t start = t.storage_offset();
  if (len > 0) start += offset >= 0 ? offset * t.strides()[d2] : -offset * t.strides()[d1];
  std::vector<int64_t> sz, st;
  for (int64_t i = 0; i < t.dim(); ++i)
    if (i != d1 && i != d2) {
      sz.push_back(t.sizes()[i]);
      st.push_back(t.strides()[i]);
    }
  sz.push_back(len);
  st.push_back(t.strides()[d1] + t.strides()[d2]);
  Tensor out = make_view(t, sz, st, start);
  record_subset_view("diagonal", "diagonal_backward", t, out,
                     [offset, d1, d2](const Tensor& g) { return g.diagonal(offset, d1, d2); });
  return out;
}

// ---- Tensor member forms ----

Tensor Tensor::view(IntArrayRef sizes) const { return ember::view(*this, sizes); }
Tensor Tensor::view_as(const Tensor& other) const { return ember::view(*this, other.sizes()); }
Tensor Tensor::reshape(IntArrayRef sizes) const { return ember::reshape(*this, sizes); }
Tensor Tensor::reshape_as(const Tensor& other) const { return ember::reshape(*this, other.sizes()); }
Tensor Tensor::permute(IntArrayRef dims) const { return ember::permute(*this, dims); }
Tensor Tensor::transpose(int64_t d0, int64_t d1) const { return ember::transpose(*this, d0, d1); }
Tensor Tensor::squeeze() const { return ember::squeeze(*this); }
Tensor Tensor::squeeze(int64_t d) const { return ember::squeeze(*this, d); }
Tensor Tensor::unsqueeze(int64_t d) const { return ember::unsqueeze(*this, d); }
Tensor Tensor::expand(IntArrayRef sizes) const { return ember::expand(*this, sizes); }
Tensor Tensor::expand_as(const Tensor& other) const { return ember::expand(*this, other.sizes()); }
Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const { return ember::narrow(*this, d, start, length); }
Tensor Tensor::slice(int64_t d, std::optional<int64_t> start, std::optional<int64_t> end, int64_t step) const { return ember::slice(*this, d, start, end, step); }
Tensor Tensor::select(int64_t d, int64_t index) const { return ember::select(*this, d, index); }
Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const { return ember::flatten(*this, start_dim, end_dim); }
Tensor Tensor::unflatten(int64_t d, IntArrayRef sizes) const { return ember::unflatten(*this, d, sizes); }
Tensor Tensor::as_strided(IntArrayRef sizes, IntArrayRef strides, std::optional<int64_t> storage_offset) const { return ember::as_strided(*this, sizes, strides, storage_offset); }
std::vector<Tensor> Tensor::chunk(int64_t chunks, int64_t d) const { return ember::chunk(*this, chunks, d); }
std::vector<Tensor> Tensor::split(int64_t split_size, int64_t d) const { return ember::split(*this, split_size, d); }
std::vector<Tensor> Tensor::split_with_sizes(IntArrayRef split_sizes, int64_t d) const { return ember::split_with_sizes(*this, split_sizes, d); }
std::vector<Tensor> Tensor::unbind(int64_t d) const { return ember::unbind(*this, d); }
Tensor Tensor::diagonal(int64_t offset, int64_t d1, int64_t d2) const { return ember::diagonal(*this, offset, d1, d2); }
Tensor Tensor::t() const { return dim() < 2 ? ember::transpose(*this, 0, 0) : ember::transpose(*this, 0, 1); }

Tensor contiguous(const Tensor& t) { return t.contiguous(); }
Tensor clone(const Tensor& t) { return t.clone(); }

}  // namespace ember
