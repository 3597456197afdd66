// Index ops: gather / scatter / scatter_add (PyTorch's dim-wise indexing), index_select /
// index_add / embedding (a 1-D index along one dim), sort / argsort / topk, nonzero.
// Index tensors are int64 (int32 also for index_select, index_add and embedding; those are
// converted to int64 here). Out-of-range indices raise IndexError before anything is written.
// index_add and scatter_add apply duplicate indices in order, so results are deterministic.
#include <tuple>
#include <vector>

#include "core/dispatch.hpp"
#include "core/record.hpp"
#include "core/tensor_impl.hpp"
#include "ember/ops.hpp"

namespace ember {

using autograd::Grads;
using autograd::Saved;

// ---- Tensor member forms ----

Tensor Tensor::gather(int64_t d, const Tensor& index) const { return ember::gather(*this, d, index); }
Tensor Tensor::scatter(int64_t d, const Tensor& index, const Tensor& src) const { return ember::scatter(*this, d, index, src); }
Tensor Tensor::scatter(int64_t d, const Tensor& index, Scalar value) const { return ember::scatter(*this, d, index, value); }
Tensor Tensor::scatter_add(int64_t d, const Tensor& index, const Tensor& src) const { return ember::scatter_add(*this, d, index, src); }
Tensor Tensor::index_select(int64_t d, const Tensor& index) const { return ember::index_select(*this, d, index); }
Tensor Tensor::index_add(int64_t d, const Tensor& index, const Tensor& source, Scalar alpha) const { return ember::index_add(*this, d, index, source, alpha); }
std::tuple<Tensor, Tensor> Tensor::topk(int64_t k, int64_t d, bool largest, bool sorted) const { return ember::topk(*this, k, d, largest, sorted); }
std::tuple<Tensor, Tensor> Tensor::sort(int64_t d, bool descending, bool stable) const { return ember::sort(*this, d, descending, stable); }
Tensor Tensor::argsort(int64_t d, bool descending, bool stable) const { return ember::argsort(*this, d, descending, stable); }

// ---- helpers ----

namespace {

/// DTypeError unless index is int64 (or int32 where PyTorch accepts it).
void check_index_dtype(const Tensor& index, const char* op, bool int32_ok) {
  EMBER_CHECK(index.dtype() == kInt64 || (int32_ok && index.dtype() == kInt32), DTypeError, "[", op,
              "] expected an int64", int32_ok ? " or int32" : "", " index tensor, got ",
              index.dtype());
}

/// gather/scatter/index ops treat a 0-d tensor as 1-d of size 1 (PyTorch's ensure_nonempty_dim).
Tensor nonempty(const Tensor& t) { return t.dim() == 0 ? t.reshape({1}) : t; }

/// ValueError when several elements of the in-place destination share one memory location.
void check_no_internal_overlap(const Tensor& t, const char* op) {
  for (int64_t i = 0; i < t.dim(); ++i)
    EMBER_CHECK(t.size(i) <= 1 || t.stride(i) != 0, ValueError, "[", op, "] the destination ",
                t.sizes(), " has several elements in one memory location (expanded, strides ",
                t.strides(), "); clone it first");
}

/// A copy of `t` when it shares memory with the in-place destination, else t itself.
Tensor unaliased(const Tensor& t, const Tensor& self) {
  return t.is_alias_of(self) ? t.clone() : t;
}

/// PyTorch's gather/scatter shape rule: same rank; index fits in x outside dim (and in src
/// everywhere, for scatter). Returns the wrapped dim.
int64_t check_gather_scatter(const Tensor& x, int64_t d, const Tensor& index, const Tensor* src,
                             const char* op) {
  check_same_device({&x, &index, src ? src : &index}, op);
  check_index_dtype(index, op, false);
  const int64_t dim = wrap_dim(d, x.dim(), op);
  Tensor x1 = nonempty(x), index1 = nonempty(index);
  EMBER_CHECK(index1.dim() == x1.dim(), ShapeError, "[", op, "] index ", index.sizes(),
              " must have as many dimensions as the input ", x.sizes());
  for (int64_t i = 0; i < x1.dim(); ++i)
    EMBER_CHECK(i == dim || index1.size(i) <= x1.size(i), ShapeError, "[", op, "] index ",
                index.sizes(), " is larger than the input ", x.sizes(), " in dimension ", i);
  if (src) {
    EMBER_CHECK(src->dtype() == x.dtype(), DTypeError, "[", op, "] src dtype ", src->dtype(),
                " does not match self dtype ", x.dtype());
    Tensor src1 = nonempty(*src);
    EMBER_CHECK(src1.dim() == x1.dim(), ShapeError, "[", op, "] src ", src->sizes(),
                " must have as many dimensions as the input ", x.sizes());
    for (int64_t i = 0; i < x1.dim(); ++i)
      EMBER_CHECK(index1.size(i) <= src1.size(i), ShapeError, "[", op, "] index ", index.sizes(),
                  " is larger than src ", src->sizes(), " in dimension ", i);
  }
  return dim;
}

/// Writes src into out (in place) at index along dim; checks already done.
void scatter_into(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                  bool accumulate, const char* op) {
  if (index.numel() == 0) return;
  Tensor out1 = nonempty(out), index1 = nonempty(index), src1 = nonempty(src);
  launch(out.device(), cpu::check_index_range, cuda::check_index_range, index1, out1.size(dim), op,
         dim);
  launch(out.device(), cpu::scatter, cuda::scatter, out1, dim, index1, src1, accumulate);
}

/// The Scalar form of scatter: value in self's dtype, broadcast (stride 0) to index's shape.
Tensor scalar_source(const Tensor& self, const Tensor& index, Scalar value) {
  return full({}, value, self.options()).expand(index.sizes());
}

/// index_add's shape rule; returns the wrapped dim. The index comes back as contiguous 1-D int64.
int64_t check_index_add(const Tensor& x, int64_t d, Tensor& index, const Tensor& source,
                        Scalar alpha) {
  check_same_device({&x, &index, &source}, "index_add");
  check_index_dtype(index, "index_add", true);
  EMBER_CHECK(index.dim() <= 1, ShapeError, "[index_add] index must be 0-d or 1-d, got shape ",
              index.sizes());
  EMBER_CHECK(source.dtype() == x.dtype(), DTypeError, "[index_add] source dtype ", source.dtype(),
              " does not match self dtype ", x.dtype());
  EMBER_CHECK(!is_integral(x.dtype()) || !alpha.is_floating_point(), ValueError,
              "[index_add] alpha must be an integer for a ", x.dtype(), " tensor, got ", alpha);
  const int64_t dim = wrap_dim(d, x.dim(), "index_add");
  Tensor x1 = nonempty(x), s1 = nonempty(source);
  EMBER_CHECK(s1.dim() == x1.dim(), ShapeError, "[index_add] source ", source.sizes(),
              " must have as many dimensions as self ", x.sizes());
  index = index.reshape({-1}).to(kInt64).contiguous();
  EMBER_CHECK(s1.size(dim) == index.numel(), ShapeError, "[index_add] source ", source.sizes(),
              " has ", s1.size(dim), " entries in dimension ", dim, " but there are ",
              index.numel(), " indices");
  for (int64_t i = 0; i < x1.dim(); ++i)
    EMBER_CHECK(i == dim || s1.size(i) == x1.size(i), ShapeError, "[index_add] source ",
                source.sizes(), " does not match self ", x.sizes(), " outside dimension ", dim);
  return dim;
}

/// out[..., index[i], ...] += alpha * source[..., i, ...] along dim, in place; index int64,
/// contiguous, 1-D. Its values are range-checked first (on CUDA a host wait) unless
/// index_checked: the caller's forward already checked them.
void index_add_into(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& source,
                    Scalar alpha, bool index_checked = false) {
  if (index.numel() == 0) return;
  Tensor out1 = nonempty(out);
  if (!index_checked)
    launch(out.device(), cpu::check_index_range, cuda::check_index_range, index, out1.size(dim),
           "index_add", dim);
  launch(out.device(), cpu::index_add, cuda::index_add, out1, dim, index, nonempty(source), alpha);
}

// ---- backward helpers ----


/// The gradient of scatter's src: dY gathered at index (index's shape), zero-padded to src's
/// shape, since src may be larger than index in any dimension (the extra elements are unused).
Tensor scatter_src_grad(const Tensor& dy, int64_t dim, const Tensor& index,
                        const std::vector<int64_t>& src_sizes) {
  Tensor g = dy.gather(dim, index);  // index's shape
  if (g.sizes() == IntArrayRef(src_sizes)) return g;
  if (g.dim() == 0) g = g.reshape({1});
  std::vector<int64_t> want = src_sizes.empty() ? std::vector<int64_t>{1} : src_sizes;
  std::vector<int64_t> pads;  // (left, right) pairs from the last dim backwards
  bool any = false;
  for (int64_t d = g.dim(); d-- > 0;) {
    const int64_t extra = want[static_cast<size_t>(d)] - g.size(d);
    pads.insert(pads.end(), {0, extra});
    any = any || extra != 0;
  }
  if (any) g = pad(g, pads);
  return g.reshape(src_sizes);
}

/// t scaled by a coefficient, skipping the multiply when it is 1.
Tensor scaled(const Tensor& t, double c) { return c == 1.0 ? t : t * c; }

/// Records scatter/scatter_ (src form): self gets dY with the written positions zeroed, src gets
/// dY gathered at index.
void record_scatter(const char* op, const Tensor& self, const Tensor& index, const Tensor& src,
                    const Tensor& out, int64_t dim) {
  if (!is_floating(out.dtype())) return;
  autograd::record(op, {self, index, src}, out, {index},
                   [dim, src_sizes = src.sizes().vec()](const Saved& s, const Tensor& dy) {
                     return Grads{dy.scatter(dim, s[0], 0.0), Tensor(),
                                  scatter_src_grad(dy, dim, s[0], src_sizes)};
                   });
}

/// Records scatter_add/scatter_add_: self gets dY, src gets dY gathered at index.
void record_scatter_add(const char* op, const Tensor& self, const Tensor& index, const Tensor& src,
                        const Tensor& out, int64_t dim) {
  if (!is_floating(out.dtype())) return;
  autograd::record(op, {self, index, src}, out, {index},
                   [dim, src_sizes = src.sizes().vec()](const Saved& s, const Tensor& dy) {
                     return Grads{dy, Tensor(), scatter_src_grad(dy, dim, s[0], src_sizes)};
                   });
}

/// Records index_add/index_add_: self gets dY, source gets alpha * dY selected at index.
void record_index_add(const char* op, const Tensor& self, const Tensor& index, const Tensor& idx,
                      const Tensor& source, const Tensor& out, int64_t dim, Scalar alpha) {
  if (!is_floating(out.dtype())) return;
  autograd::record(op, {self, index, source}, out, {idx},
                   [dim, al = alpha.to<double>()](const Saved& s, const Tensor& dy) {
                     return Grads{dy, Tensor(), scaled(dy.index_select(dim, s[0]), al)};
                   });
}

/// zeros(sizes) with source index-added along dim at idx (int64, contiguous, 1-D, range-checked
/// by the forward that made it): index_select's and embedding's gradient. No second range check
/// (on CUDA a host wait) and no copy of the zeros: index_add_into straight into them.
/// Recorded as index_add, so differentiable again.
Tensor index_add_to_zeros(const std::vector<int64_t>& sizes, int64_t dim, const Tensor& idx,
                          const Tensor& source) {
  Tensor out = forward_no_grad([&] {
    Tensor o = zeros(sizes, source.options());
    index_add_into(o, dim, idx, source, 1, /*index_checked=*/true);
    return o;
  });
  record_index_add("index_add", Tensor(), idx, idx, source, out, dim, 1);
  return out;
}

/// Records sort/topk: values gathered x at indices along dim, so dX is dY scattered back there.
/// The indices output is not differentiable (not an output of the node).
void record_values_at(const char* op, const Tensor& x, const Tensor& values, const Tensor& indices,
                      int64_t dim) {
  if (!is_floating(values.dtype())) return;
  autograd::record(op, {x}, values, {indices},
                   [dim, sizes = x.sizes().vec()](const Saved& s, const Tensor& dy) {
                     return Grads{zeros(sizes, dy.options()).scatter_add(dim, s[0], dy)};
                   });
}

}  // namespace

// ---- gather / scatter ----

Tensor gather(const Tensor& x, int64_t d, const Tensor& index) {
  const int64_t dim = check_gather_scatter(x, d, index, nullptr, "gather");
  Tensor out = make_tensor(index.sizes(), x.dtype(), x.device(), "gather");  // index's shape
  if (out.numel() > 0) {
    NoGradGuard no_grad;
    Tensor x1 = nonempty(x), index1 = nonempty(index);
    launch(x.device(), cpu::check_index_range, cuda::check_index_range, index1, x1.size(dim),
           "gather", dim);
    launch(x.device(), cpu::gather, cuda::gather, nonempty(out), x1, dim, index1);
  }
  // dX = zeros scatter-added with dY at index (repeated indices accumulate).
  if (is_floating(out.dtype()))
    autograd::record(
        "gather", {x, index}, out, {index},
        [dim, sizes = x.sizes().vec()](const Saved& s, const Tensor& dy) {
          return Grads{zeros(sizes, dy.options()).scatter_add(dim, s[0], dy), Tensor()};
        });
  return out;
}

Tensor scatter(const Tensor& x, int64_t d, const Tensor& index, const Tensor& src) {
  const int64_t dim = check_gather_scatter(x, d, index, &src, "scatter");
  Tensor out = forward_no_grad([&] {
    Tensor o = x.clone();
    scatter_into(o, dim, index, src, false, "scatter");
    return o;
  });
  record_scatter("scatter", x, index, src, out, dim);
  return out;
}

Tensor scatter(const Tensor& x, int64_t d, const Tensor& index, Scalar value) {
  const int64_t dim = check_gather_scatter(x, d, index, nullptr, "scatter");
  Tensor out = forward_no_grad([&] {
    Tensor o = x.clone();
    scatter_into(o, dim, index, scalar_source(x, index, value), false, "scatter");
    return o;
  });
  // dX is dY with the written positions zeroed.
  if (is_floating(out.dtype()))
    autograd::record("scatter", {x, index}, out, {index}, [dim](const Saved& s, const Tensor& dy) {
      return Grads{dy.scatter(dim, s[0], 0.0), Tensor()};
    });
  return out;
}

Tensor scatter_add(const Tensor& x, int64_t d, const Tensor& index, const Tensor& src) {
  const int64_t dim = check_gather_scatter(x, d, index, &src, "scatter_add");
  Tensor out = forward_no_grad([&] {
    Tensor o = x.clone();
    scatter_into(o, dim, index, src, true, "scatter_add");
    return o;
  });
  record_scatter_add("scatter_add", x, index, src, out, dim);
  return out;
}

Tensor& Tensor::scatter_(int64_t d, const Tensor& index, const Tensor& src) {
  autograd::check_inplace(*this, "scatter_");
  const int64_t dim = check_gather_scatter(*this, d, index, &src, "scatter_");
  check_no_internal_overlap(*this, "scatter_");
  {
    NoGradGuard no_grad;
    scatter_into(*this, dim, unaliased(index, *this), unaliased(src, *this), false, "scatter_");
  }
  bump_version();
  record_scatter("scatter_", *this, index, src, *this, dim);
  return *this;
}

Tensor& Tensor::scatter_add_(int64_t d, const Tensor& index, const Tensor& src) {
  autograd::check_inplace(*this, "scatter_add_");
  const int64_t dim = check_gather_scatter(*this, d, index, &src, "scatter_add_");
  check_no_internal_overlap(*this, "scatter_add_");
  {
    NoGradGuard no_grad;
    scatter_into(*this, dim, unaliased(index, *this), unaliased(src, *this), true, "scatter_add_");
  }
  bump_version();
  record_scatter_add("scatter_add_", *this, index, src, *this, dim);
  return *this;
}

// ---- index_select / index_add / embedding ----

Tensor index_select(const Tensor& x, int64_t d, const Tensor& index) {
  check_same_device({&x, &index}, "index_select");
  check_index_dtype(index, "index_select", true);
  EMBER_CHECK(index.dim() <= 1, ShapeError, "[index_select] index must be 0-d or 1-d, got shape ",
              index.sizes());
  const int64_t dim = wrap_dim(d, x.dim(), "index_select");
  Tensor idx, out;
  {
    NoGradGuard no_grad;
    idx = index.reshape({-1}).to(kInt64).contiguous();  // (n,)
    std::vector<int64_t> sizes = x.sizes().vec();
    if (x.dim() == 0) {
      EMBER_CHECK(idx.numel() == 1, ShapeError,
                  "[index_select] a 0-d input takes exactly one index, got ", idx.numel());
    } else {
      sizes[dim] = idx.numel();
    }
    Tensor x1 = nonempty(x);
    launch(x.device(), cpu::check_index_range, cuda::check_index_range, idx, x1.size(dim),
           "index_select", dim);
    out = make_tensor(sizes, x.dtype(), x.device(), "index_select");
    if (out.numel() > 0)
      launch(x.device(), cpu::index_select, cuda::index_select, nonempty(out), x1, dim, idx);
  }
  // dX = zeros index-added with dY along dim (repeated indices accumulate).
  if (is_floating(out.dtype()))
    autograd::record("index_select", {x, index}, out, {idx},
                     [dim, sizes = x.sizes().vec()](const Saved& s, const Tensor& dy) {
                       return Grads{index_add_to_zeros(sizes, dim, s[0], dy), Tensor()};
                     });
  return out;
}

Tensor index_add(const Tensor& x, int64_t d, const Tensor& index, const Tensor& source,
                 Scalar alpha) {
  Tensor idx = index;
  const int64_t dim = forward_no_grad([&] { return check_index_add(x, d, idx, source, alpha); });
  Tensor out = forward_no_grad([&] {
    Tensor o = x.clone();
    index_add_into(o, dim, idx, source, alpha);
    return o;
  });
  record_index_add("index_add", x, index, idx, source, out, dim, alpha);
  return out;
}

Tensor& Tensor::index_add_(int64_t d, const Tensor& index, const Tensor& source, Scalar alpha) {
  autograd::check_inplace(*this, "index_add_");
  Tensor idx = index;
  const int64_t dim =
      forward_no_grad([&] { return check_index_add(*this, d, idx, source, alpha); });
  check_no_internal_overlap(*this, "index_add_");
  {
    NoGradGuard no_grad;
    index_add_into(*this, dim, unaliased(idx, *this), unaliased(source, *this), alpha);
  }
  bump_version();
  record_index_add("index_add_", *this, index, idx, source, *this, dim, alpha);
  return *this;
}

Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx) {
  check_same_device({&weight, &indices}, "embedding");
  check_index_dtype(indices, "embedding", true);
  EMBER_CHECK(weight.dim() == 2, ShapeError,
              "[embedding] weight must be 2-D (num_embeddings, embedding_dim), got ",
              weight.sizes());
  const int64_t num = weight.size(0), D = weight.size(1);
  // -1 means "no padding index", as in libtorch's at::embedding.
  EMBER_CHECK(padding_idx == -1 || (padding_idx >= 0 && padding_idx < num), IndexError,
              "[embedding] padding_idx ", padding_idx, " is out of range for ", num,
              " embeddings (use -1 for none)");
  Tensor flat, out;
  {
    NoGradGuard no_grad;
    flat = indices.reshape({-1}).to(kInt64).contiguous();  // (n,)
    launch(weight.device(), cpu::check_index_range, cuda::check_index_range, flat, num, "embedding",
           int64_t{0});
    std::vector<int64_t> sizes = indices.sizes().vec();
    sizes.push_back(D);  // indices.sizes() + (embedding_dim,)
    out = make_tensor({flat.numel(), D}, weight.dtype(), weight.device(), "embedding");
    if (out.numel() > 0)
      launch(weight.device(), cpu::index_select, cuda::index_select, out, weight, int64_t{0}, flat);
    out = out.view(sizes);
  }
  // dW = zeros index-added with the rows of dY; rows looked up at padding_idx contribute nothing.
  if (is_floating(out.dtype()))
    autograd::record(
        "embedding", {weight, indices}, out, {flat},
        [num, D, padding_idx](const Saved& s, const Tensor& dy) {
          Tensor rows = dy.reshape({-1, D});  // (n, D)
          if (padding_idx >= 0) rows = rows * ne(s[0], padding_idx).to(dy.dtype()).unsqueeze(1);
          return Grads{index_add_to_zeros({num, D}, 0, s[0], rows), Tensor()};
        });
  return out;
}

// ---- sort / topk ----

std::tuple<Tensor, Tensor> sort(const Tensor& x, int64_t d, bool descending, bool stable) {
  const int64_t dim = wrap_dim(d, x.dim(), "sort");
  Tensor values = make_tensor(x.sizes(), x.dtype(), x.device(), "sort");
  Tensor indices = make_tensor(x.sizes(), kInt64, x.device(), "sort");
  if (x.numel() > 0) {
    NoGradGuard no_grad;
    launch(x.device(), cpu::sort, cuda::sort, nonempty(values), nonempty(indices), nonempty(x), dim,
           descending, stable);
  }
  record_values_at("sort", x, values, indices, dim);
  return {values, indices};
}

Tensor argsort(const Tensor& x, int64_t d, bool descending, bool stable) {
  NoGradGuard no_grad;  // only the (non-differentiable) indices are returned
  return std::get<1>(sort(x, d, descending, stable));
}

std::tuple<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t d, bool largest, bool sorted) {
  const int64_t dim = wrap_dim(d, x.dim(), "topk");
  const int64_t L = x.dim() == 0 ? 1 : x.size(dim);
  EMBER_CHECK(k >= 0 && k <= L, IndexError, "[topk] k = ", k, " is out of range for dimension ",
              dim, " of size ", L, " (input shape ", x.sizes(), ")");
  std::vector<int64_t> sizes = x.sizes().vec();
  if (x.dim() > 0) {
    sizes[dim] = k;
  } else if (k == 0) {
    sizes = {0};  // a 0-d input holds one element; selecting none gives an empty (0,)
  }
  Tensor values = make_tensor(sizes, x.dtype(), x.device(), "topk");
  Tensor indices = make_tensor(sizes, kInt64, x.device(), "topk");
  if (values.numel() > 0) {
    NoGradGuard no_grad;
    launch(x.device(), cpu::topk, cuda::topk, nonempty(values), nonempty(indices), nonempty(x), k,
           dim, largest, sorted);
  }
  record_values_at("topk", x, values, indices, dim);
  return {values, indices};
}

// ---- nonzero ----

Tensor nonzero(const Tensor& x) {
  Tensor count = make_tensor({}, kInt64, x.device(), "nonzero");
  launch(x.device(), cpu::count_nonzero, cuda::count_nonzero, count, x);
  const int64_t n = count.item<int64_t>();
  Tensor out = make_tensor({n, x.dim()}, kInt64, x.device(), "nonzero");  // (count, dim)
  if (out.numel() == 0) return out;
  launch(x.device(), cpu::nonzero, cuda::nonzero, out, x.contiguous());
  return out;
}

}  // namespace ember
