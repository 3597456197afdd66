// Copying shape ops: cat, stack, pad, flip, roll, repeat, tril/triu, one_hot, masked_select.
// All are composites of views (narrow, expand, unsqueeze) plus copy_, index_select and elementwise
// ops, so they need no kernels of their own and run on any device those ops run on.
#include <algorithm>
#include <string>

#include "core/record.hpp"
#include "core/tensor_impl.hpp"
#include "ember/ops.hpp"

namespace ember {

// ---- Tensor member forms ----

Tensor Tensor::flip(IntArrayRef dims) const { return ember::flip(*this, dims); }
Tensor Tensor::roll(IntArrayRef shifts, IntArrayRef dims) const { return ember::roll(*this, shifts, dims); }
Tensor Tensor::repeat(IntArrayRef repeats) const { return ember::repeat(*this, repeats); }
Tensor Tensor::tril(int64_t diagonal) const { return ember::tril(*this, diagonal); }
Tensor Tensor::triu(int64_t diagonal) const { return ember::triu(*this, diagonal); }
Tensor Tensor::masked_select(const Tensor& mask) const { return ember::masked_select(*this, mask); }

// ---- cat / stack ----

Tensor cat(const std::vector<Tensor>& tensors, int64_t d) {
  EMBER_CHECK(!tensors.empty(), ValueError, "[cat] expected a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i)
    EMBER_CHECK(tensors[i].defined(), ValueError, "[cat] tensor ", i, " is undefined");
  DType dtype = tensors[0].dtype();
  for (const Tensor& t : tensors) {
    check_same_device({&tensors[0], &t}, "cat");
    dtype = promote_types(dtype, t.dtype());
  }
  // Legacy behaviour kept by PyTorch: 1-D empty tensors of shape (0,) are skipped.
  auto skipped = [](const Tensor& t) { return t.dim() == 1 && t.sizes()[0] == 0; };
  int64_t ref = -1;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (skipped(tensors[i])) continue;
    EMBER_CHECK(tensors[i].dim() > 0, ShapeError, "[cat] zero-dimensional tensor ", i,
                " cannot be concatenated");
    if (ref < 0) ref = static_cast<int64_t>(i);
  }
  if (ref < 0) return make_tensor({0}, dtype, tensors[0].device(), "cat");
  const Tensor& first = tensors[ref];
  d = wrap_dim(d, first.dim(), "cat", false);
  std::vector<int64_t> out_sizes = first.sizes().vec();
  out_sizes[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (skipped(t)) continue;
    bool match = t.dim() == first.dim();
    for (int64_t k = 0; match && k < t.dim(); ++k)
      if (k != d && t.sizes()[k] != first.sizes()[k]) match = false;
    EMBER_CHECK(match, ShapeError, "[cat] sizes must match except in dim ", d, ": tensor ", i,
                " has shape ", t.sizes(), " but tensor ", ref, " has shape ", first.sizes());
    out_sizes[d] += t.sizes()[d];
  }
  Tensor out = make_tensor(out_sizes, dtype, first.device(), "cat");
  {
    NoGradGuard no_grad;  // the copies into views of `out` are recorded once, below
    int64_t offset = 0;
    for (const Tensor& t : tensors) {
      if (skipped(t) || t.sizes()[d] == 0) continue;
      out.narrow(d, offset, t.sizes()[d]).copy_(t);
      offset += t.sizes()[d];
    }
  }
  if (is_floating(dtype) && autograd::needs_grad(tensors)) {
    // Each input's gradient is its slice of dy along d; skipped (0,) inputs get zeros.
    std::vector<int64_t> starts, lengths;
    int64_t offset = 0;
    for (const Tensor& t : tensors) {
      starts.push_back(skipped(t) ? -1 : offset);
      lengths.push_back(skipped(t) ? 0 : t.sizes()[d]);
      if (!skipped(t)) offset += t.sizes()[d];
    }
    autograd::record("cat", tensors, out, {},
                     [d, starts, lengths](const autograd::Saved&, const Tensor& dy) {
                       autograd::Grads g;
                       for (size_t i = 0; i < starts.size(); ++i)
                         g.push_back(starts[i] < 0 ? zeros({0}, dy.options())
                                                   : dy.narrow(d, starts[i], lengths[i]));
                       return g;
                     });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t d) {
  EMBER_CHECK(!tensors.empty(), ValueError, "[stack] expected a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i) {
    EMBER_CHECK(tensors[i].defined(), ValueError, "[stack] tensor ", i, " is undefined");
    EMBER_CHECK(tensors[i].sizes() == tensors[0].sizes(), ShapeError,
                "[stack] expects each tensor to be equal size, but got ", tensors[0].sizes(),
                " at entry 0 and ", tensors[i].sizes(), " at entry ", i);
  }
  d = wrap_dim(d, tensors[0].dim() + 1, "stack", false);
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(t.unsqueeze(d));
  return cat(parts, d);
}

// ---- pad ----

namespace {
/// One dimension of reflect/replicate padding: [left border | x cropped | right border].
/// Negative amounts crop. Borders come from x itself, so crops and pads compose as in PyTorch.
Tensor pad_border_dim(const Tensor& x, int64_t d, int64_t left, int64_t right, bool reflect) {
  const int64_t n = x.sizes()[d];
  const int64_t crop_l = std::max<int64_t>(-left, 0), crop_r = std::max<int64_t>(-right, 0);
  std::vector<Tensor> parts;
  auto border = [&](int64_t amount, bool at_left) {
    if (reflect) {  // mirror without repeating the edge element
      int64_t start = at_left ? 1 : n - 1 - amount;
      return flip(x.narrow(d, start, amount), {d});
    }
    std::vector<int64_t> sz = x.sizes().vec();
    sz[d] = amount;
    return x.narrow(d, at_left ? 0 : n - 1, 1).expand(sz);
  };
  if (left > 0) parts.push_back(border(left, true));
  parts.push_back(x.narrow(d, crop_l, n - crop_l - crop_r));
  if (right > 0) parts.push_back(border(right, false));
  return parts.size() == 1 ? parts[0] : cat(parts, d);
}
}  // namespace

Tensor pad(const Tensor& x, IntArrayRef pad, const std::string& mode, double value) {
  EMBER_CHECK(pad.size() % 2 == 0, ValueError, "[pad] padding length must be even, got ", pad);
  const int64_t npad = static_cast<int64_t>(pad.size()) / 2;
  EMBER_CHECK(npad <= x.dim(), ValueError, "[pad] padding ", pad, " pads ", npad,
              " dims but the input has shape ", x.sizes());
  const bool constant = mode == "constant";
  EMBER_CHECK(constant || mode == "reflect" || mode == "replicate", ValueError,
              "[pad] unknown mode '", mode, "'; expected constant, reflect or replicate");
  std::vector<int64_t> out_sizes = x.sizes().vec();
  for (int64_t i = 0; i < npad; ++i) {
    const int64_t d = x.dim() - 1 - i, n = x.sizes()[d], l = pad[2 * i], r = pad[2 * i + 1];
    EMBER_CHECK(std::max<int64_t>(-l, 0) + std::max<int64_t>(-r, 0) <= n, ShapeError,
                "[pad] padding (", l, ", ", r, ") crops more than dim ", d, " of input shape ",
                x.sizes());
    if (mode == "reflect")
      EMBER_CHECK(l < n && r < n, ValueError, "[pad] reflect padding (", l, ", ", r,
                  ") must be smaller than dim ", d, " of input shape ", x.sizes());
    if (mode == "replicate")
      EMBER_CHECK(n > 0 || (l <= 0 && r <= 0), ValueError, "[pad] replicate padding of dim ", d,
                  " needs a non-empty input, got shape ", x.sizes());
    out_sizes[d] = n + l + r;
  }
  if (constant) {
    Tensor out = full(out_sizes, value, x.options());
    {
      NoGradGuard no_grad;  // recorded once, below
      Tensor src = x, dst = out;
      for (int64_t i = 0; i < npad; ++i) {
        const int64_t d = x.dim() - 1 - i, n = x.sizes()[d], l = pad[2 * i], r = pad[2 * i + 1];
        const int64_t keep = n - std::max<int64_t>(-l, 0) - std::max<int64_t>(-r, 0);
        src = src.narrow(d, std::max<int64_t>(-l, 0), keep);
        dst = dst.narrow(d, std::max<int64_t>(l, 0), keep);
      }
      if (dst.numel() > 0) dst.copy_(src);
    }
    if (autograd::needs_grad({&x})) {
      // Padding by the negated amounts crops the padding off (and zero-fills what was cropped).
      std::vector<int64_t> inverse;
      for (int64_t p : pad) inverse.push_back(-p);
      autograd::record("pad", {x}, out, {}, [inverse](const autograd::Saved&, const Tensor& dy) {
        return autograd::Grads{ember::pad(dy, inverse, "constant", 0.0)};
      });
    }
    return out;
  }
  // reflect / replicate: a composite of narrow, flip, expand and cat, which record themselves.
  Tensor out = x;
  for (int64_t i = 0; i < npad; ++i)
    out = pad_border_dim(out, x.dim() - 1 - i, pad[2 * i], pad[2 * i + 1], mode == "reflect");
  // Always a new tensor, even for all-zero padding.
  return out.is_same(x) || out.is_alias_of(x) ? out.clone() : out;
}

// ---- flip / roll / repeat ----

Tensor flip(const Tensor& x, IntArrayRef dims) {
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(x.dim(), 1)), false);
  Tensor out = x;
  {
    NoGradGuard no_grad;  // flip is its own gradient: recorded once, below
    for (int64_t raw : dims) {
      const int64_t d = wrap_dim(raw, x.dim(), "flip");
      EMBER_CHECK(!seen[d], IndexError, "[flip] dim ", d, " appears multiple times in ", dims);
      seen[d] = true;
      if (x.dim() == 0 || x.sizes()[d] <= 1) continue;
      const int64_t n = x.sizes()[d];
      // Ember has no negative strides, so the reversal is an index_select with n-1, ..., 0.
      out = out.index_select(d, arange(n - 1, -1, -1, TensorOptions(kInt64).device(x.device())));
    }
    if (out.is_same(x)) out = x.clone();
  }
  if (autograd::needs_grad({&x})) {
    std::vector<int64_t> flip_dims = dims.vec();
    autograd::record("flip", {x}, out, {}, [flip_dims](const autograd::Saved&, const Tensor& dy) {
      return autograd::Grads{flip(dy, flip_dims)};
    });
  }
  return out;
}

Tensor roll(const Tensor& x, IntArrayRef shifts, IntArrayRef dims) {
  if (dims.empty()) {
    EMBER_CHECK(shifts.size() == 1, ValueError,
                "[roll] without dims, expected exactly one shift, got ", shifts);
    return roll(x.flatten(), shifts, {0}).view(x.sizes());
  }
  EMBER_CHECK(shifts.size() == dims.size(), ValueError, "[roll] shifts ", shifts, " and dims ",
              dims, " must have the same length");
  Tensor out = x;
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], x.dim(), "roll", false);
    const int64_t n = x.sizes()[d];
    if (n == 0) continue;
    const int64_t s = ((shifts[i] % n) + n) % n;
    if (s == 0) continue;
    // Element j moves to (j + s) mod n: the last s elements come first.
    out = cat({out.narrow(d, n - s, s), out.narrow(d, 0, n - s)}, d);
  }
  return out.is_same(x) ? x.clone() : out;
}

Tensor repeat(const Tensor& x, IntArrayRef repeats) {
  const int64_t k = static_cast<int64_t>(repeats.size());
  EMBER_CHECK(k >= x.dim(), ShapeError, "[repeat] number of repeats ", repeats,
              " can not be smaller than the number of dims of the tensor of shape ", x.sizes());
  for (int64_t r : repeats)
    EMBER_CHECK(r >= 0, ValueError, "[repeat] repeats must be non-negative, got ", repeats);
  // x viewed as (1, s0, 1, s1, ...) and expanded to (r0, s0, r1, s1, ...) is the result laid out
  // as (r0 * s0, r1 * s1, ...).
  std::vector<int64_t> padded(k - x.dim(), 1);
  padded.insert(padded.end(), x.sizes().begin(), x.sizes().end());
  Tensor v = x.reshape(padded);
  std::vector<int64_t> expanded, out_sizes;
  for (int64_t i = 0; i < k; ++i) {
    v = v.unsqueeze(2 * i);
    expanded.push_back(repeats[i]);
    expanded.push_back(padded[i]);
    out_sizes.push_back(repeats[i] * padded[i]);
  }
  checked_numel(out_sizes, "repeat");
  Tensor out = make_tensor(out_sizes, x.dtype(), x.device(), "repeat");
  {
    NoGradGuard no_grad;  // recorded once, below
    if (out.numel() > 0) out.view(expanded).copy_(v.expand(expanded));
  }
  if (autograd::needs_grad({&x})) {
    // dy laid out as (r0, s0, r1, s1, ...) summed over the repeat dims r_i.
    std::vector<int64_t> repeat_dims, in_sizes = x.sizes().vec();
    for (int64_t i = 0; i < k; ++i) repeat_dims.push_back(2 * i);
    autograd::record("repeat", {x}, out, {},
                     [expanded, repeat_dims, in_sizes](const autograd::Saved&, const Tensor& dy) {
                       Tensor g = dy.reshape(expanded);
                       if (!repeat_dims.empty()) g = g.sum(repeat_dims);
                       return autograd::Grads{g.reshape(in_sizes)};
                     });
  }
  return out;
}

// ---- tril / triu ----

namespace {
/// Keeps x where (col - row) <= diagonal (lower) or >= diagonal (upper) over the last two dims.
Tensor triangle(const Tensor& x, int64_t diagonal, bool lower, const char* op) {
  EMBER_CHECK(x.dim() >= 2, ShapeError, "[", op,
              "] expected a tensor with at least 2 dims, got shape ", x.sizes());
  const int64_t rows = x.size(-2), cols = x.size(-1);
  TensorOptions idx = TensorOptions(kInt64).device(x.device());
  Tensor col_minus_row = arange(cols, idx).unsqueeze(0) - arange(rows, idx).unsqueeze(1);
  Tensor keep = lower ? col_minus_row <= diagonal : col_minus_row >= diagonal;  // (rows, cols)
  return where(keep, x, zeros({}, x.options()));
}
}  // namespace

Tensor tril(const Tensor& x, int64_t diagonal) { return triangle(x, diagonal, true, "tril"); }
Tensor triu(const Tensor& x, int64_t diagonal) { return triangle(x, diagonal, false, "triu"); }

// ---- one_hot / masked_select ----

Tensor one_hot(const Tensor& indices, int64_t num_classes) {
  EMBER_CHECK(indices.dtype() == kInt64, DTypeError, "[one_hot] expected int64 class indices, got ",
              indices.dtype());
  EMBER_CHECK(num_classes >= -1, ValueError,
              "[one_hot] num_classes must be -1 or non-negative, got ", num_classes);
  if (indices.numel() > 0) {
    const int64_t lo = indices.min().item<int64_t>(), hi = indices.max().item<int64_t>();
    EMBER_CHECK(lo >= 0, ValueError, "[one_hot] class values must be non-negative, got ", lo,
                " in indices of shape ", indices.sizes());
    if (num_classes == -1) num_classes = hi + 1;
    EMBER_CHECK(hi < num_classes, IndexError, "[one_hot] class value ", hi,
                " is out of range for num_classes ", num_classes, " (indices of shape ",
                indices.sizes(), ")");
  } else {
    EMBER_CHECK(num_classes != -1, ValueError,
                "[one_hot] cannot infer num_classes from an empty tensor of shape ",
                indices.sizes());
  }
  Tensor classes = arange(num_classes, TensorOptions(kInt64).device(indices.device()));
  return eq(indices.unsqueeze(-1), classes).to(kInt64);  // indices.sizes() + (num_classes,)
}

Tensor masked_select(const Tensor& x, const Tensor& mask) {
  EMBER_CHECK(mask.dtype() == kBool, DTypeError, "[masked_select] expected a bool mask, got ",
              mask.dtype());
  check_same_device({&x, &mask}, "masked_select");
  std::vector<int64_t> shape = broadcast_shapes(x.sizes(), mask.sizes(), "masked_select");
  Tensor positions = nonzero(mask.expand(shape).reshape({-1})).reshape({-1});
  return x.expand(shape).reshape({-1}).index_select(0, positions);
}

}  // namespace ember
