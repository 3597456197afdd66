// libtorch-style indexing: t.index({Slice(1, None, 2), 0, None, "...", mask}) and index_put_.
//
// Two phases, as in PyTorch. Basic indices (integers, slices, None, Ellipsis, bools) are applied
// first as views (select, slice, unsqueeze) and never copy. Tensor indices (int64/int32 index
// tensors, bool/uint8 masks) are recorded with the dim of the view they index; a mask over k dims
// becomes k index tensors (its nonzero columns). Then the index tensors are broadcast together to
// a shape B and gathered: the B dims replace the indexed dims where those are adjacent, else they
// go in front (NumPy's rule). index_put_ writes through the same machinery.
#include <algorithm>
#include <sstream>
#include <vector>

#include "core/record.hpp"
#include "core/tensor_impl.hpp"
#include "ember/ops.hpp"

namespace ember {

namespace {

using indexing::TensorIndex;
using Kind = TensorIndex::Kind;

/// The result of applying the basic indices: a view plus the recorded tensor indices.
struct Parsed {
  Tensor view;                  // self after basic indexing; shares self's storage
  std::vector<int64_t> dims;    // dims of `view` indexed by tensors, ascending
  std::vector<Tensor> indices;  // one int64 index tensor per entry of dims, in range [0, size)
  Tensor mask;                  // set when the only tensor index is one bool mask
  int64_t mask_dim = -1;        // the first dim of `view` the mask covers
};

bool is_mask(const Tensor& t) { return t.dtype() == kBool || t.dtype() == kUInt8; }

/// A 0-d bool tensor index behaves as a Python bool.
bool is_bool_scalar(const TensorIndex& ix) {
  return ix.kind() == Kind::Boolean ||
         (ix.kind() == Kind::Tensor && ix.tensor().dim() == 0 && is_mask(ix.tensor()));
}
bool bool_value(const TensorIndex& ix) {
  return ix.kind() == Kind::Boolean ? ix.boolean() : ix.tensor().item<bool>();
}

/// Checks an integer index tensor against a dim of `size` and wraps negative entries.
Tensor normalize_index(const Tensor& index, int64_t size, int64_t self_dim, const char* op) {
  if (index.numel() == 0) return index;
  const int64_t lo = index.min().item<int64_t>(), hi = index.max().item<int64_t>();
  EMBER_CHECK(hi < size, IndexError, "[", op, "] index ", hi, " is out of bounds for dimension ",
              self_dim, " with size ", size);
  EMBER_CHECK(lo >= -size, IndexError, "[", op, "] index ", lo, " is out of bounds for dimension ",
              self_dim, " with size ", size);
  if (lo >= 0) return index;
  return where(index < 0, index + size, index);
}

Parsed apply_basic(const Tensor& self, const std::vector<TensorIndex>& indices, const char* op) {
  EMBER_CHECK(self.defined(), ValueError, "[", op, "] the tensor is undefined");
  // How many of self's dims the indices consume, to size the ellipsis.
  int64_t consumed = 0, ellipses = 0;
  bool advanced = false;
  for (const TensorIndex& ix : indices) {
    switch (ix.kind()) {
      case Kind::Integer:
      case Kind::Slice:
        ++consumed;
        break;
      case Kind::Ellipsis:
        ++ellipses;
        break;
      case Kind::None:
      case Kind::Boolean:
        break;
      case Kind::Tensor: {
        const Tensor& t = ix.tensor();
        EMBER_CHECK(t.defined(), ValueError, "[", op, "] an index tensor is undefined");
        if (is_bool_scalar(ix)) break;
        advanced = true;
        consumed += is_mask(t) ? t.dim() : 1;
        break;
      }
    }
  }
  EMBER_CHECK(ellipses <= 1, IndexError, "[", op, "] an index can only have a single ellipsis");
  EMBER_CHECK(consumed <= self.dim(), IndexError, "[", op,
              "] too many indices for tensor of dimension ", self.dim(), " (shape ", self.sizes(),
              ")");

  Parsed p;
  p.view = make_view(self, self.sizes().vec(), self.strides().vec(), self.storage_offset());
  autograd::record("alias", {self}, p.view, {}, [](const autograd::Saved&, const Tensor& dy) {
    return autograd::Grads{dy};
  });
  Tensor& r = p.view;  // the basic indices below are view ops, which record themselves
  int64_t d = 0, self_dim = 0;  // position in r, and in self (for messages)
  int masks = 0;
  for (const TensorIndex& ix : indices) {
    if (is_bool_scalar(ix)) {
      // A new axis of size 1 (true) or 0 (false); an index tensor when others are present.
      const bool b = bool_value(ix);
      r = r.unsqueeze(d);
      if (advanced) {
        Tensor idx = b ? zeros({1}, TensorOptions(kInt64).device(self.device()))
                       : empty({0}, TensorOptions(kInt64).device(self.device()));
        p.dims.push_back(d);
        p.indices.push_back(idx);
        masks += 2;  // disables the single-mask fast path
      } else if (!b) {
        r = r.slice(d, 0, 0);
      }
      ++d;
      continue;
    }
    switch (ix.kind()) {
      case Kind::None:
        r = r.unsqueeze(d);
        ++d;
        break;
      case Kind::Ellipsis: {
        const int64_t span = self.dim() - consumed;
        d += span;
        self_dim += span;
        break;
      }
      case Kind::Integer: {
        const int64_t n = r.sizes()[d], i = ix.integer();
        EMBER_CHECK(i >= -n && i < n, IndexError, "[", op, "] index ", i,
                    " is out of bounds for dimension ", self_dim, " with size ", n);
        r = r.select(d, i);
        ++self_dim;
        break;
      }
      case Kind::Slice: {
        const indexing::Slice& s = ix.slice();
        r = r.slice(d, s.start(), s.stop(), s.step());
        ++d;
        ++self_dim;
        break;
      }
      case Kind::Tensor: {
        const Tensor& t = ix.tensor();
        check_same_device({&self, &t}, op);
        if (is_mask(t)) {
          const int64_t k = t.dim();
          IntArrayRef covered(r.sizes().data() + d, static_cast<size_t>(k));
          EMBER_CHECK(covered == t.sizes(), IndexError, "[", op, "] the shape of the mask ",
                      t.sizes(), " does not match the shape ", covered,
                      " of the indexed tensor at dimension ", self_dim, " (shape ", self.sizes(),
                      ")");
          Tensor nz = nonzero(t);  // (count, k)
          for (int64_t j = 0; j < k; ++j) {
            p.dims.push_back(d + j);
            p.indices.push_back(nz.select(1, j));
          }
          p.mask = t.dtype() == kBool ? t : t.to(kBool);
          p.mask_dim = d;
          ++masks;
          d += k;
          self_dim += k;
        } else {
          EMBER_CHECK(t.dtype() == kInt64 || t.dtype() == kInt32, IndexError, "[", op,
                      "] tensors used as indices must be int64, int32, bool or uint8, got ",
                      t.dtype());
          Tensor idx = t.dtype() == kInt64 ? t : t.to(kInt64);
          p.dims.push_back(d);
          p.indices.push_back(normalize_index(idx, r.sizes()[d], self_dim, op));
          masks += 2;
          ++d;
          ++self_dim;
        }
        break;
      }
      case Kind::Boolean:
        break;  // handled above
    }
  }
  if (masks != 1) {
    p.mask = Tensor();
    p.mask_dim = -1;
  }
  return p;
}

/// Gathers src at the recorded tensor indices (see the file comment for the result layout).
Tensor gather_advanced(const Tensor& src, const std::vector<int64_t>& dims,
                       const std::vector<Tensor>& indices, const char* op) {
  std::vector<int64_t> B;
  for (const Tensor& t : indices) {
    const int64_t nb = static_cast<int64_t>(B.size()), nt = t.dim(), n = std::max(nb, nt);
    std::vector<int64_t> out(n);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t a = i < n - nb ? 1 : B[i - (n - nb)];
      const int64_t b = i < n - nt ? 1 : t.sizes()[i - (n - nt)];
      if (a != b && a != 1 && b != 1) {
        std::ostringstream shapes;
        for (size_t k = 0; k < indices.size(); ++k) shapes << (k ? ", " : "") << indices[k].sizes();
        throw IndexError(detail::str_cat("[", op, "] shape mismatch: indexing tensors could not ",
                                         "be broadcast together with shapes ", shapes.str()));
      }
      out[i] = a == 1 ? b : a;
    }
    B = out;
  }
  const int64_t k = static_cast<int64_t>(dims.size());
  if (k == 1) {
    const int64_t d = dims[0];
    Tensor sel = src.index_select(d, indices[0].reshape({-1}));
    std::vector<int64_t> shape(src.sizes().begin(), src.sizes().begin() + d);
    shape.insert(shape.end(), B.begin(), B.end());
    shape.insert(shape.end(), src.sizes().begin() + d + 1, src.sizes().end());
    return sel.reshape(shape);
  }
  // Indexed dims first, flattened into one dim addressed by a row-major linear index.
  std::vector<int64_t> perm = dims, rest;
  int64_t M = 1;
  for (int64_t d : dims) M *= src.sizes()[d];
  for (int64_t d = 0; d < src.dim(); ++d)
    if (std::find(dims.begin(), dims.end(), d) == dims.end()) {
      perm.push_back(d);
      rest.push_back(src.sizes()[d]);
    }
  std::vector<int64_t> flat_shape{M};
  flat_shape.insert(flat_shape.end(), rest.begin(), rest.end());
  Tensor flat = src.permute(perm).reshape(flat_shape);
  Tensor linear = indices[k - 1].expand(B);
  int64_t stride = src.sizes()[dims[k - 1]];
  for (int64_t i = k - 2; i >= 0; --i) {
    linear = linear + indices[i].expand(B) * stride;
    stride *= src.sizes()[dims[i]];
  }
  Tensor sel = flat.index_select(0, linear.reshape({-1}));  // (numel(B), rest...)
  std::vector<int64_t> shape = B;
  shape.insert(shape.end(), rest.begin(), rest.end());
  Tensor out = sel.reshape(shape);
  bool adjacent = true;
  for (int64_t i = 1; i < k; ++i) adjacent = adjacent && dims[i] == dims[i - 1] + 1;
  if (!adjacent || dims[0] == 0) return out;
  // Move the B dims to where the first indexed dim was.
  const int64_t nb = static_cast<int64_t>(B.size()), first = dims[0];
  std::vector<int64_t> order;
  for (int64_t i = 0; i < first; ++i) order.push_back(nb + i);
  for (int64_t i = 0; i < nb; ++i) order.push_back(i);
  for (int64_t i = nb + first; i < out.dim(); ++i) order.push_back(i);
  return out.permute(order).contiguous();
}

/// value with surplus leading size-1 dims dropped, checked to broadcast to `shape`.
Tensor fit_value(const Tensor& value, IntArrayRef shape, const char* op) {
  Tensor v = value;
  while (v.dim() > static_cast<int64_t>(shape.size()) && v.sizes()[0] == 1) v = v.squeeze(0);
  bool ok = v.dim() <= static_cast<int64_t>(shape.size());
  for (int64_t i = 1; ok && i <= v.dim(); ++i) {
    const int64_t a = v.sizes()[v.dim() - i], b = shape[shape.size() - i];
    ok = a == b || a == 1;
  }
  EMBER_CHECK(ok, ShapeError, "[", op, "] shape mismatch: value tensor of shape ", value.sizes(),
              " cannot be broadcast to indexing result of shape ", shape);
  return v;
}

/// value's gradient: g (the indexing result's shape) summed to value's shape.
Tensor reduce_to(Tensor g, IntArrayRef value_sizes) {
  const int64_t nv = static_cast<int64_t>(value_sizes.size()), ng = g.dim();
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < ng; ++d) {
    const int64_t j = d - (ng - nv);
    if (j < 0 || (value_sizes[j] == 1 && g.size(d) != 1)) dims.push_back(d);
  }
  if (!dims.empty()) g = g.sum(dims, /*keepdim=*/true);
  return g.reshape(value_sizes);
}

Tensor& index_put_forward(Tensor& self, const std::vector<TensorIndex>& indices,
                          const Tensor& value);

/// index_put_ with autograd: self's indexed elements get no gradient (overwritten); value gets
/// dy at the indexed positions, summed over broadcasting.
Tensor& index_put_impl(Tensor& self, const std::vector<TensorIndex>& indices, const Tensor& value) {
  EMBER_CHECK(self.defined(), ValueError, "[index_put_] the tensor is undefined");
  autograd::check_inplace(self, "index_put_");
  const bool record = is_floating(self.dtype()) && value.defined() &&
                      autograd::needs_grad({&self, &value});
  if (record) autograd::check_not_view_write(self, "index_put_");
  {
    NoGradGuard no_grad;
    index_put_forward(self, indices, value);
  }
  if (record) {
    std::vector<int64_t> value_sizes = value.sizes().vec();
    const bool value_floating = is_floating(value.dtype());
    autograd::record("index_put_", {self, value}, self, {},
                     [indices, value_sizes, value_floating](const autograd::Saved&,
                                                            const Tensor& dy) {
                       Tensor g_self = dy.clone();
                       g_self.index_put_(indices, zeros({}, dy.options()));
                       Tensor g_value =
                           value_floating ? reduce_to(dy.index(indices), value_sizes) : Tensor();
                       return autograd::Grads{g_self, g_value};
                     });
  }
  return self;
}

Tensor& index_put_forward(Tensor& self, const std::vector<TensorIndex>& indices,
                          const Tensor& value) {
  const char* op = "index_put_";
  EMBER_CHECK(value.defined(), ValueError, "[", op, "] the value tensor is undefined");
  EMBER_CHECK(value.device() == self.device() || (value.dim() == 0 && value.is_cpu()), DeviceError,
              "[", op, "] value is on ", value.device(), " but the tensor is on ", self.device());
  const uint32_t version = self._version();
  Parsed p = apply_basic(self, indices, op);
  Tensor& sub = p.view;
  if (p.dims.empty()) {
    sub.copy_(fit_value(value, sub.sizes(), op));
  } else if (p.mask.defined() && value.numel() == 1) {
    // x[mask] = v: a masked fill of the view, the mask spanning dims [mask_dim, mask_dim + k).
    std::vector<int64_t> mshape = p.mask.sizes().vec();
    mshape.resize(static_cast<size_t>(sub.dim() - p.mask_dim), 1);
    sub.masked_fill_(p.mask.reshape(mshape), value.item());
  } else {
    // Linear positions (row-major over sub) of every element the index selects, then a scatter.
    Tensor positions = arange(sub.numel(), TensorOptions(kInt64).device(sub.device()));
    positions = gather_advanced(positions.view(sub.sizes()), p.dims, p.indices, op);
    Tensor v = fit_value(value, positions.sizes(), op).to(self.device(), self.dtype());
    Tensor src = v.expand(positions.sizes()).reshape({-1});
    Tensor target = sub.contiguous();
    if (src.numel() > 0) target.view({-1}).scatter_(0, positions.reshape({-1}), src);
    if (!target.is_same(sub)) sub.copy_(target);
  }
  if (self._version() == version) self.bump_version();
  return self;
}

}  // namespace

Tensor Tensor::index(const std::vector<indexing::TensorIndex>& indices) const {
  Parsed p = apply_basic(*this, indices, "index");
  if (p.dims.empty()) return p.view;
  return gather_advanced(p.view, p.dims, p.indices, "index");
}

Tensor Tensor::index(std::initializer_list<indexing::TensorIndex> indices) const {
  return index(std::vector<indexing::TensorIndex>(indices));
}

Tensor& Tensor::index_put_(const std::vector<indexing::TensorIndex>& indices, const Tensor& value) {
  return index_put_impl(*this, indices, value);
}

Tensor& Tensor::index_put_(std::initializer_list<indexing::TensorIndex> indices,
                           const Tensor& value) {
  return index_put_impl(*this, std::vector<indexing::TensorIndex>(indices), value);
}

Tensor& Tensor::index_put_(std::initializer_list<indexing::TensorIndex> indices, Scalar value) {
  EMBER_CHECK(defined(), ValueError, "[index_put_] the tensor is undefined");
  return index_put_impl(*this, std::vector<indexing::TensorIndex>(indices),
                        full({}, value, options()));
}

}  // namespace ember
