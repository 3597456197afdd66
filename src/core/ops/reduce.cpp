// Reductions: sum, mean, prod, max/min (whole tensor and along a dim with indices), amax/amin,
// argmax/argmin, var/std/var_mean, logsumexp, norm, all/any, and the scans cumsum, softmax and
// log_softmax.
//
// Shape rule: a reduction over `dims` (any set; empty means all dims; negative dims wrap; a
// repeated dim is an IndexError) computes into the keepdim shape (size 1 at the reduced dims);
// keepdim=false views the result without those dims. Kernels: cpu::reduce (sum, prod, max, min,
// all, any), cpu::arg_reduce, cpu::cumsum, cpu::softmax; the rest are composites of those and
// elementwise ops. dtypes follow PyTorch: sums and products of integers and bool give int64, mean,
// var, std, norm and softmax need a floating dtype, all/any give bool. Determinism (bitwise
// independent of strides and the thread count) comes from the kernels; see src/core/cpu/reduce.cpp.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/autocast.hpp"
#include "core/dispatch.hpp"
#include "core/record.hpp"
#include "core/tensor_impl.hpp"
#include "ember/autograd.hpp"
#include "ember/ops.hpp"

namespace ember {

// ---- Tensor member forms ----

Tensor Tensor::sum(std::optional<DType> dtype) const { return ember::sum(*this, {}, false, dtype); }
Tensor Tensor::sum(IntArrayRef dims, bool keepdim, std::optional<DType> dtype) const { return ember::sum(*this, dims, keepdim, dtype); }
Tensor Tensor::mean(std::optional<DType> dtype) const { return ember::mean(*this, {}, false, dtype); }
Tensor Tensor::mean(IntArrayRef dims, bool keepdim, std::optional<DType> dtype) const { return ember::mean(*this, dims, keepdim, dtype); }
Tensor Tensor::prod(std::optional<DType> dtype) const { return ember::prod(*this, std::nullopt, false, dtype); }
Tensor Tensor::prod(int64_t d, bool keepdim, std::optional<DType> dtype) const { return ember::prod(*this, d, keepdim, dtype); }
Tensor Tensor::max() const { return ember::max(*this); }
std::tuple<Tensor, Tensor> Tensor::max(int64_t d, bool keepdim) const { return ember::max(*this, d, keepdim); }
Tensor Tensor::min() const { return ember::min(*this); }
std::tuple<Tensor, Tensor> Tensor::min(int64_t d, bool keepdim) const { return ember::min(*this, d, keepdim); }
Tensor Tensor::amax(IntArrayRef dims, bool keepdim) const { return ember::amax(*this, dims, keepdim); }
Tensor Tensor::amin(IntArrayRef dims, bool keepdim) const { return ember::amin(*this, dims, keepdim); }
Tensor Tensor::argmax(std::optional<int64_t> d, bool keepdim) const { return ember::argmax(*this, d, keepdim); }
Tensor Tensor::argmin(std::optional<int64_t> d, bool keepdim) const { return ember::argmin(*this, d, keepdim); }
Tensor Tensor::var(IntArrayRef dims, int64_t correction, bool keepdim) const { return ember::var(*this, dims, correction, keepdim); }
Tensor Tensor::std(IntArrayRef dims, int64_t correction, bool keepdim) const { return ember::std(*this, dims, correction, keepdim); }
Tensor Tensor::logsumexp(IntArrayRef dims, bool keepdim) const { return ember::logsumexp(*this, dims, keepdim); }
Tensor Tensor::norm(Scalar p, IntArrayRef dims, bool keepdim) const { return ember::norm(*this, p, dims, keepdim); }
Tensor Tensor::all() const { return ember::all(*this); }
Tensor Tensor::all(int64_t d, bool keepdim) const { return ember::all(*this, d, keepdim); }
Tensor Tensor::any() const { return ember::any(*this); }
Tensor Tensor::any(int64_t d, bool keepdim) const { return ember::any(*this, d, keepdim); }
Tensor Tensor::cumsum(int64_t d, std::optional<DType> dtype) const { return ember::cumsum(*this, d, dtype); }
Tensor Tensor::softmax(int64_t d, std::optional<DType> dtype) const { return ember::softmax(*this, d, dtype); }
Tensor Tensor::log_softmax(int64_t d, std::optional<DType> dtype) const { return ember::log_softmax(*this, d, dtype); }

// ---- shape rule and launch ----

namespace {

struct ReducePlan {
  std::vector<int64_t> dims;        // wrapped, sorted, unique
  std::vector<int64_t> keep_shape;  // x's shape with 1 at dims
  std::vector<int64_t> out_shape;   // x's shape without dims
  int64_t count = 1;                // elements reduced into each output
};

/// wrap_dim with the input's shape in the message (a 0-d tensor accepts 0 and -1).
int64_t wrap_reduce_dim(int64_t d, const Tensor& x, const char* op) {
  const int64_t n = std::max<int64_t>(x.dim(), 1);
  EMBER_CHECK(d >= -n && d < n, IndexError, "[", op, "] dim ", d,
              " is out of range for a tensor of shape ", x.sizes(), " (expected to be in [", -n,
              ", ", n - 1, "])");
  return wrap_dim(d, x.dim(), op);
}

ReducePlan plan_reduce(const Tensor& x, IntArrayRef dims, const char* op) {
  const int64_t n = x.dim();
  ReducePlan p;
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(n, 1)), false);
  if (dims.empty()) {
    for (int64_t d = 0; d < n; ++d) p.dims.push_back(d);
  } else {
    for (int64_t raw : dims) {
      const int64_t d = wrap_reduce_dim(raw, x, op);
      EMBER_CHECK(!seen[d], IndexError, "[", op, "] dim ", d,
                  " appears multiple times in the list of dims ", dims, " for a tensor of shape ",
                  x.sizes());
      seen[d] = true;
      if (n > 0) p.dims.push_back(d);  // a 0-d tensor accepts dim 0 / -1 and reduces nothing
    }
    std::sort(p.dims.begin(), p.dims.end());
  }
  p.keep_shape = x.sizes().vec();
  for (int64_t d : p.dims) {
    p.count *= p.keep_shape[d];
    p.keep_shape[d] = 1;
  }
  for (int64_t d = 0; d < n; ++d)
    if (!std::binary_search(p.dims.begin(), p.dims.end(), d)) p.out_shape.push_back(x.sizes()[d]);
  return p;
}

/// A gradient in the reduced output's shape -> the keepdim shape (size 1 at the reduced dims),
/// so it broadcasts against the input.
Tensor unreduce(const Tensor& dy, const std::vector<int64_t>& keep_shape, bool keepdim) {
  return keepdim ? dy : dy.reshape(keep_shape);
}

/// Gradient of an extremum reduction (max/min/amax/amin/norm inf): dy split evenly among the
/// elements equal to the result (ties share it, as in PyTorch). `x` and `out_keep` are compared
/// as given; `dims` are the reduced (wrapped) dims; the mask is a constant, so the result is
/// linear in dy and its own gradient w.r.t. x is zero.
Tensor extremum_grad(const Tensor& x, const Tensor& out_keep, const Tensor& dy_keep,
                     const std::vector<int64_t>& dims) {
  Tensor mask;
  {
    NoGradGuard guard;
    Tensor hit = eq(x, out_keep);
    Tensor count = sum(hit, dims, /*keepdim=*/true).to(dy_keep.dtype());
    mask = div(hit.to(dy_keep.dtype()), count);
  }
  return dy_keep * mask;
}

/// keepdim-shaped result -> the requested shape.
Tensor finish(const Tensor& keep, const ReducePlan& p, bool keepdim) {
  return keepdim ? keep : keep.view(p.out_shape);
}

Tensor run_reduce(const Tensor& x, const ReducePlan& p, bool keepdim, ReduceOp op, DType dtype,
                  const char* name) {
  Tensor out = make_tensor(p.keep_shape, dtype, x.device(), name);
  launch(x.device(), cpu::reduce, cuda::reduce, out, x, IntArrayRef(p.dims), op);
  return finish(out, p, keepdim);
}

/// max/min/amax/amin/argmax/argmin have no identity: every reduced dim must be non-empty.
void check_nonempty(const Tensor& x, const ReducePlan& p, bool all_dims, const char* op) {
  if (x.numel() != 0) return;
  EMBER_CHECK(!all_dims, ValueError, "[", op, "] cannot reduce an empty tensor of shape ",
              x.sizes(), " over all dims (the op has no identity); specify a dim");
  for (int64_t d : p.dims)
    EMBER_CHECK(x.sizes()[d] != 0, IndexError, "[", op, "] expected reduction dim ", d,
                " to have non-zero size, got input of shape ", x.sizes());
}

/// Sum/prod result dtype: the requested one, else int64 for integers and bool.
DType sum_dtype(const Tensor& x, std::optional<DType> dtype) {
  if (dtype) return *dtype;
  return is_integral(x.dtype(), /*include_bool=*/true) ? kInt64 : x.dtype();
}

/// PyTorch casts the input to an explicit dtype first. Within one category (integer or floating)
/// the kernel's wide accumulator already gives that result, so only a category change copies.
Tensor cast_for(const Tensor& x, DType dtype) {
  return is_floating(x.dtype()) == is_floating(dtype) ? x : x.to(dtype);
}

void check_floating(DType dtype, const char* op) {
  EMBER_CHECK(is_floating(dtype), DTypeError, "[", op,
              "] expected a floating point input dtype, got ", dtype);
}

Tensor sum_prod(const Tensor& x, const ReducePlan& p, bool keepdim, std::optional<DType> dtype,
                ReduceOp op, const char* name) {
  const DType dt = sum_dtype(x, dtype);
  return run_reduce(cast_for(x, dt), p, keepdim, op, dt, name);
}

/// (sum over the plan in float64, keepdim) / count: the mean in double, rounded once by callers.
Tensor mean_double(const Tensor& x, const ReducePlan& p, bool keepdim) {
  Tensor s = run_reduce(x, p, keepdim, ReduceOp::Sum, kFloat64, "mean");
  return div(s, static_cast<double>(p.count));
}

std::tuple<Tensor, Tensor> max_min_dim(const Tensor& x, int64_t d, bool keepdim, bool is_max,
                                       const char* op) {
  const int64_t w = wrap_reduce_dim(d, x, op);
  if (x.dim() == 0) return {x.clone(), zeros({}, TensorOptions(kInt64).device(x.device()))};
  EMBER_CHECK(x.sizes()[w] != 0, IndexError, "[", op, "] expected reduction dim ", w,
              " to have non-zero size, got input of shape ", x.sizes());
  std::vector<int64_t> keep = x.sizes().vec();
  keep[w] = 1;
  Tensor values = make_tensor(keep, x.dtype(), x.device(), op);
  Tensor indices = make_tensor(keep, kInt64, x.device(), op);
  launch(x.device(), cpu::arg_reduce, cuda::arg_reduce, values, indices, x, w, is_max);
  if (keepdim) return {values, indices};
  return {values.squeeze(w), indices.squeeze(w)};
}

Tensor arg_max_min(const Tensor& x, std::optional<int64_t> d, bool keepdim, bool is_max,
                   const char* op) {
  if (d) return std::get<1>(max_min_dim(x, *d, keepdim, is_max, op));
  EMBER_CHECK(x.numel() != 0, ValueError, "[", op, "] cannot reduce an empty tensor of shape ",
              x.sizes(), " over all dims (the op has no identity); specify a dim");
  Tensor flat = x.reshape({-1});
  Tensor idx = std::get<1>(max_min_dim(flat, 0, false, is_max, op));  // 0-d
  if (!keepdim) return idx;
  return idx.reshape(std::vector<int64_t>(static_cast<size_t>(x.dim()), 1));
}

std::tuple<Tensor, Tensor> var_mean_impl(const Tensor& x, IntArrayRef dims, int64_t correction,
                                         bool keepdim, const char* op) {
  check_floating(x.dtype(), op);
  const ReducePlan p = plan_reduce(x, dims, op);
  // Two passes in float64: the mean, then the sum of squared deviations (x - m promotes to
  // float64, so x itself is never copied).
  Tensor m = mean_double(x, p, /*keepdim=*/true);
  Tensor ss = run_reduce(square(x - m), p, keepdim, ReduceOp::Sum, kFloat64, op);
  const double denom = static_cast<double>(std::max<int64_t>(0, p.count - correction));
  return {div(ss, denom), finish(m, p, keepdim)};  // float64; callers round
}

Tensor softmax_impl(const Tensor& x, int64_t d, std::optional<DType> dtype, bool log,
                    const char* op) {
  const DType dt = dtype.value_or(x.dtype());
  check_floating(dt, op);
  const int64_t w = wrap_reduce_dim(d, x, op);
  Tensor xin = x.to(dt);
  Tensor out = make_tensor(x.sizes(), dt, x.device(), op);
  if (x.dim() == 0) {
    launch(x.device(), cpu::softmax, cuda::softmax, out.view({1}), xin.reshape({1}), int64_t{0},
           log);
  } else {
    launch(x.device(), cpu::softmax, cuda::softmax, out, xin, w, log);
  }
  return out;
}

}  // namespace

// ---- sum / mean / prod ----

Tensor sum(const Tensor& x, IntArrayRef dims, bool keepdim, std::optional<DType> dtype) {
  const ReducePlan p = plan_reduce(x, dims, "sum");
  Tensor out;
  {
    NoGradGuard guard;
    out = sum_prod(x, p, keepdim, dtype, ReduceOp::Sum, "sum");
  }
  if (is_floating(out.dtype()) && is_floating(x.dtype())) {
    // d sum / dx = 1: dy broadcast back over the reduced dims.
    autograd::record("sum", {x}, out, {},
                     [keep = p.keep_shape, sizes = x.sizes().vec(), keepdim](
                         const autograd::Saved&, const Tensor& dy) {
                       return autograd::Grads{unreduce(dy, keep, keepdim).expand(sizes)};
                     });
  }
  return out;
}

Tensor mean(const Tensor& x, IntArrayRef dims, bool keepdim, std::optional<DType> dtype) {
  const DType dt = dtype.value_or(x.dtype());
  EMBER_CHECK(is_floating(dt), DTypeError,
              "[mean] could not infer output dtype: input dtype must be floating point, got ", dt,
              " (pass dtype= to average integers)");
  const ReducePlan p = plan_reduce(x, dims, "mean");
  Tensor out;
  {
    NoGradGuard guard;
    out = mean_double(cast_for(x, dt), p, keepdim).to(dt);
  }
  if (is_floating(x.dtype())) {
    // d mean / dx = 1 / count over the reduced dims.
    autograd::record("mean", {x}, out, {},
                     [keep = p.keep_shape, sizes = x.sizes().vec(), keepdim,
                      count = static_cast<double>(p.count)](const autograd::Saved&,
                                                              const Tensor& dy) {
                       Tensor g = unreduce(dy, keep, keepdim).expand(sizes);
                       return autograd::Grads{div(g, count)};
                     });
  }
  return out;
}

Tensor prod(const Tensor& x, std::optional<int64_t> d, bool keepdim, std::optional<DType> dtype) {
  const ReducePlan p = d ? plan_reduce(x, {*d}, "prod") : plan_reduce(x, {}, "prod");
  const bool kd = d ? keepdim : false;
  Tensor out;
  {
    NoGradGuard guard;
    out = sum_prod(x, p, kd, dtype, ReduceOp::Prod, "prod");
  }
  if (is_floating(out.dtype()) && is_floating(x.dtype())) {
    // d prod / dx_i = product of the other elements of x_i's slice. With xs = x where 0 -> 1 and
    // pz = prod(xs): no zero in the slice gives pz / x_i; exactly one zero gives pz at the zero and
    // 0 elsewhere; two or more zeros give 0 everywhere (as PyTorch). xs keeps every division
    // finite, so double backward sees no inf * 0.
    autograd::record(
        "prod", {x}, out, {x},
        [keep = p.keep_shape, keepdim = kd, d](const autograd::Saved& s, const Tensor& dy) {
          const Tensor& xv = s[0];
          Tensor is_zero, zeros_in_slice;
          {
            NoGradGuard guard;
            is_zero = eq(xv, 0.0);
            zeros_in_slice = d ? sum(is_zero, {*d}, true) : sum(is_zero);
          }
          Tensor xs = where(is_zero, Scalar(1.0), xv);
          Tensor pz = d ? prod(xs, *d, true) : prod(xs);
          Tensor at_zero = where(eq(zeros_in_slice, 1), pz, Scalar(0.0));
          Tensor at_other = where(eq(zeros_in_slice, 0), pz / xs, Scalar(0.0));
          return autograd::Grads{unreduce(dy, keep, keepdim) * where(is_zero, at_zero, at_other)};
        });
  }
  return out;
}

// ---- max / min / amax / amin / argmax / argmin ----

namespace {

/// max/min/amax/amin over a plan, recording a backward that splits dy evenly among ties.
Tensor extremum(const Tensor& x, IntArrayRef dims, bool keepdim, bool all_dims, ReduceOp op,
                const char* name) {
  const ReducePlan p = plan_reduce(x, dims, name);
  check_nonempty(x, p, all_dims, name);
  Tensor out;
  {
    NoGradGuard guard;
    out = run_reduce(x, p, keepdim, op, x.dtype(), name);
  }
  if (is_floating(x.dtype())) {
    autograd::record(name, {x}, out, {x, out},
                     [keep = p.keep_shape, dims = p.dims, keepdim](const autograd::Saved& s,
                                                                  const Tensor& dy) {
                       return autograd::Grads{extremum_grad(s[0], unreduce(s[1], keep, keepdim),
                                                            unreduce(dy, keep, keepdim), dims)};
                     });
  }
  return out;
}

/// max/min along a dim: the values get dy at the returned index (one element even among ties,
/// as PyTorch); the indices are not differentiable, so the node has the values as its only
/// output and saves the indices.
std::tuple<Tensor, Tensor> max_min_dim_grad(const Tensor& x, int64_t d, bool keepdim, bool is_max,
                                            const char* op) {
  Tensor values, indices;
  {
    NoGradGuard guard;
    std::tie(values, indices) = max_min_dim(x, d, keepdim, is_max, op);
  }
  if (is_floating(x.dtype())) {
    const int64_t w = x.dim() == 0 ? 0 : wrap_dim(d, x.dim(), op);
    autograd::record(
        op, {x}, values, {indices},
        [w, keepdim, sizes = x.sizes().vec()](const autograd::Saved& s, const Tensor& dy) {
          if (sizes.empty()) return autograd::Grads{dy};
          std::vector<int64_t> keep = sizes;
          keep[w] = 1;
          Tensor hit;
          {
            NoGradGuard guard;
            std::vector<int64_t> line(sizes.size(), 1);
            line[w] = sizes[w];
            Tensor positions = arange(sizes[w], TensorOptions(kInt64).device(dy.device()));
            hit = eq(positions.view(line), unreduce(s[0], keep, keepdim)).to(dy.dtype());
          }
          return autograd::Grads{unreduce(dy, keep, keepdim) * hit};
        });
  }
  return {values, indices};
}

}  // namespace

Tensor max(const Tensor& x) { return extremum(x, {}, false, true, ReduceOp::Max, "max"); }
Tensor min(const Tensor& x) { return extremum(x, {}, false, true, ReduceOp::Min, "min"); }
std::tuple<Tensor, Tensor> max(const Tensor& x, int64_t d, bool keepdim) {
  return max_min_dim_grad(x, d, keepdim, true, "max");
}
std::tuple<Tensor, Tensor> min(const Tensor& x, int64_t d, bool keepdim) {
  return max_min_dim_grad(x, d, keepdim, false, "min");
}
Tensor amax(const Tensor& x, IntArrayRef dims, bool keepdim) {
  return extremum(x, dims, keepdim, dims.empty(), ReduceOp::Max, "amax");
}
Tensor amin(const Tensor& x, IntArrayRef dims, bool keepdim) {
  return extremum(x, dims, keepdim, dims.empty(), ReduceOp::Min, "amin");
}
Tensor argmax(const Tensor& x, std::optional<int64_t> d, bool keepdim) {
  return arg_max_min(x, d, keepdim, true, "argmax");
}
Tensor argmin(const Tensor& x, std::optional<int64_t> d, bool keepdim) {
  return arg_max_min(x, d, keepdim, false, "argmin");
}

// ---- var / std / var_mean ----

// The forward runs float64 kernels, so each op records one node. d var / dx = 2 (x - mean) /
// (count - correction), written with mean() so the second derivative is right too.

namespace {

struct VarGradInfo {
  std::vector<int64_t> dims, keep;
  bool keepdim;
  double count, denom;
};

VarGradInfo var_grad_info(const Tensor& x, IntArrayRef dims, int64_t correction, bool keepdim,
                          const char* op) {
  const ReducePlan p = plan_reduce(x, dims, op);
  return {p.dims, p.keep_shape, keepdim, static_cast<double>(p.count),
          static_cast<double>(std::max<int64_t>(0, p.count - correction))};
}

/// 2 (x - mean) / denom: the gradient of var with respect to x, without dy.
Tensor var_dx(const Tensor& x, const VarGradInfo& g) {
  Tensor centered = x - mean(x, g.dims, /*keepdim=*/true);
  return centered * (2.0 / g.denom);
}

}  // namespace

Tensor var(const Tensor& x, IntArrayRef dims, int64_t correction, bool keepdim) {
  Tensor out;
  {
    NoGradGuard guard;
    out = std::get<0>(var_mean_impl(x, dims, correction, keepdim, "var")).to(x.dtype());
  }
  if (autograd::needs_grad({&x})) {
    autograd::record("var", {x}, out, {x},
                     [g = var_grad_info(x, dims, correction, keepdim, "var")](
                         const autograd::Saved& s, const Tensor& dy) {
                       return autograd::Grads{unreduce(dy, g.keep, g.keepdim) * var_dx(s[0], g)};
                     });
  }
  return out;
}
Tensor std(const Tensor& x, IntArrayRef dims, int64_t correction, bool keepdim) {
  Tensor out;
  {
    NoGradGuard guard;
    out = sqrt(std::get<0>(var_mean_impl(x, dims, correction, keepdim, "std"))).to(x.dtype());
  }
  if (autograd::needs_grad({&x})) {
    // d std = d var / (2 std).
    autograd::record("std", {x}, out, {x, out},
                     [g = var_grad_info(x, dims, correction, keepdim, "std")](
                         const autograd::Saved& s, const Tensor& dy) {
                       Tensor scale = unreduce(dy, g.keep, g.keepdim) /
                                      (unreduce(s[1], g.keep, g.keepdim) * 2.0);
                       return autograd::Grads{scale * var_dx(s[0], g)};
                     });
  }
  return out;
}
std::tuple<Tensor, Tensor> var_mean(const Tensor& x, IntArrayRef dims, int64_t correction,
                                    bool keepdim) {
  Tensor v, m;
  {
    NoGradGuard guard;
    auto [vd, md] = var_mean_impl(x, dims, correction, keepdim, "var_mean");
    v = vd.to(x.dtype());
    m = md.to(x.dtype());
  }
  if (autograd::needs_grad({&x})) {
    autograd::record("var_mean", {x}, {v, m}, {x},
                     [g = var_grad_info(x, dims, correction, keepdim, "var_mean")](
                         const autograd::Saved& s, const std::vector<Tensor>& dys) {
                       Tensor dv = unreduce(dys[0], g.keep, g.keepdim) * var_dx(s[0], g);
                       Tensor dm = unreduce(dys[1], g.keep, g.keepdim) / g.count;
                       return autograd::Grads{dv + dm};
                     });
  }
  return {v, m};
}

// ---- logsumexp / norm ----

namespace {

Tensor logsumexp_forward(const Tensor& x, const ReducePlan& p, bool keepdim) {
  // Integers promote to the default float dtype (as in PyTorch); 16-bit floats compute in float32.
  const DType dt = is_floating(x.dtype()) ? x.dtype() : get_default_dtype();
  const DType ct = opmath_dtype(dt);
  Tensor xc = x.to(ct);
  if (p.count == 0)  // log of an empty sum
    return full(keepdim ? p.keep_shape : p.out_shape, -std::numeric_limits<double>::infinity(),
                TensorOptions(dt).device(x.device()));
  // Stable: log(sum(exp(x - m))) + m with m the max, taken as 0 where it is infinite so that a
  // row of -inf gives -inf (not NaN) and a +inf gives +inf.
  Tensor m = run_reduce(xc, p, true, ReduceOp::Max, ct, "logsumexp");
  Tensor m_safe = where(isinf(m), Scalar(0.0), m);
  Tensor s = run_reduce(exp(xc - m_safe), p, true, ReduceOp::Sum, kFloat64, "logsumexp");
  Tensor r = add(log(s), m_safe);
  return finish(r, p, keepdim).to(dt);
}

}  // namespace

Tensor logsumexp(const Tensor& x, IntArrayRef dims, bool keepdim) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kFloat32, x))
    return autocast_call(*dt, &logsumexp, x, dims, keepdim);
  const ReducePlan p = plan_reduce(x, dims, "logsumexp");
  Tensor out;
  {
    NoGradGuard guard;
    out = logsumexp_forward(x, p, keepdim);
  }
  if (is_floating(x.dtype())) {
    // d lse / dx = exp(x - lse): the softmax over the reduced dims.
    autograd::record("logsumexp", {x}, out, {x, out},
                     [keep = p.keep_shape, keepdim](const autograd::Saved& s, const Tensor& dy) {
                       return autograd::Grads{unreduce(dy, keep, keepdim) *
                                              exp(s[0] - unreduce(s[1], keep, keepdim))};
                     });
  }
  return out;
}

namespace {

Tensor norm_forward(const Tensor& x, Scalar p, const ReducePlan& plan, bool keepdim,
                    IntArrayRef dims) {
  const double pv = p.to_double();
  const DType ct = opmath_dtype(x.dtype());
  Tensor a = abs(x.to(ct));
  if (std::isinf(pv)) {
    check_nonempty(x, plan, dims.empty(), "norm");  // max has no identity
    return run_reduce(a, plan, keepdim, ReduceOp::Max, ct, "norm").to(x.dtype());
  }
  // Sums in float64 until the final rounding.
  if (pv == 1.0) return run_reduce(a, plan, keepdim, ReduceOp::Sum, kFloat64, "norm").to(x.dtype());
  if (pv == 2.0)
    return sqrt(run_reduce(a * a, plan, keepdim, ReduceOp::Sum, kFloat64, "norm")).to(x.dtype());
  Tensor s = run_reduce(pow(a, p), plan, keepdim, ReduceOp::Sum, kFloat64, "norm");
  return pow(s, 1.0 / pv).to(x.dtype());
}

/// d ||x||_p / dx (times the keepdim-shaped dy), PyTorch's choices at the kinks: sign(0) = 0 for
/// p = 1, 0 where the norm is 0 for p > 1, ties share dy for p = inf.
Tensor norm_grad(const Tensor& x, const Tensor& n_keep, const Tensor& dy_keep, double pv,
                 const std::vector<int64_t>& dims) {
  if (pv == 1.0) return dy_keep * sign(x);
  if (std::isinf(pv)) return extremum_grad(abs(x), n_keep, dy_keep, dims) * sign(x);
  Tensor zero_norm;
  {
    NoGradGuard guard;
    zero_norm = eq(n_keep, 0.0);
  }
  if (pv == 2.0) return dy_keep * x / where(zero_norm, Scalar(1.0), n_keep);
  // x |x|^(p-2) / n^(p-1), written as sign(x) |x|^(p-1) so that x = 0 gives 0 for p > 1.
  Tensor g = sign(x) * pow(abs(x), pv - 1.0) /
             pow(where(zero_norm, Scalar(1.0), n_keep), pv - 1.0);
  return where(zero_norm, Scalar(0.0), dy_keep * g);
}

}  // namespace

Tensor norm(const Tensor& x, Scalar p, IntArrayRef dims, bool keepdim) {
  check_floating(x.dtype(), "norm");
  const double pv = p.to_double();
  EMBER_CHECK(pv > 0, ValueError, "[norm] expected p in {1, 2, inf} or any positive real, got ", p);
  const ReducePlan plan = plan_reduce(x, dims, "norm");
  Tensor out;
  {
    NoGradGuard guard;
    out = norm_forward(x, p, plan, keepdim, dims);
  }
  autograd::record("norm", {x}, out, {x, out},
                   [keep = plan.keep_shape, dims = plan.dims, keepdim, pv](
                       const autograd::Saved& s, const Tensor& dy) {
                     return autograd::Grads{norm_grad(s[0], unreduce(s[1], keep, keepdim),
                                                      unreduce(dy, keep, keepdim), pv, dims)};
                   });
  return out;
}

// ---- all / any ----

Tensor all(const Tensor& x) {
  return run_reduce(x, plan_reduce(x, {}, "all"), false, ReduceOp::All, kBool, "all");
}
Tensor all(const Tensor& x, int64_t d, bool keepdim) {
  return run_reduce(x, plan_reduce(x, {d}, "all"), keepdim, ReduceOp::All, kBool, "all");
}
Tensor any(const Tensor& x) {
  return run_reduce(x, plan_reduce(x, {}, "any"), false, ReduceOp::Any, kBool, "any");
}
Tensor any(const Tensor& x, int64_t d, bool keepdim) {
  return run_reduce(x, plan_reduce(x, {d}, "any"), keepdim, ReduceOp::Any, kBool, "any");
}

// ---- cumsum / softmax / log_softmax ----

Tensor cumsum(const Tensor& x, int64_t d, std::optional<DType> dtype) {
  const int64_t w = wrap_reduce_dim(d, x, "cumsum");
  const DType dt = sum_dtype(x, dtype);
  Tensor out = make_tensor(x.sizes(), dt, x.device(), "cumsum");
  {
    NoGradGuard guard;
    Tensor xin = x.to(dt);
    if (x.dim() == 0) {
      launch(x.device(), cpu::cumsum, cuda::cumsum, out.view({1}), xin.reshape({1}), int64_t{0});
    } else {
      launch(x.device(), cpu::cumsum, cuda::cumsum, out, xin, w);
    }
  }
  if (is_floating(dt) && is_floating(x.dtype())) {
    // dx_i = sum_{j >= i} dy_j: a cumsum of dy taken from the end.
    autograd::record("cumsum", {x}, out, {}, [w](const autograd::Saved&, const Tensor& dy) {
      if (dy.dim() == 0) return autograd::Grads{dy};
      return autograd::Grads{flip(cumsum(flip(dy, {w}), w), {w})};
    });
  }
  return out;
}

Tensor softmax(const Tensor& x, int64_t d, std::optional<DType> dtype) {
  if (!dtype)
    if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kFloat32, x))
      return autocast_call(*dt, &softmax, x, d, dtype);
  Tensor y;
  {
    NoGradGuard guard;
    y = softmax_impl(x, d, dtype, false, "softmax");
  }
  if (is_floating(x.dtype())) {
    // dx = y * (dy - sum(dy * y)) along d.
    autograd::record("softmax", {x}, y, {y}, [d](const autograd::Saved& s, const Tensor& dy) {
      const Tensor& yv = s[0];
      return autograd::Grads{yv * (dy - sum(dy * yv, {d}, /*keepdim=*/true))};
    });
  }
  return y;
}
Tensor log_softmax(const Tensor& x, int64_t d, std::optional<DType> dtype) {
  if (!dtype)
    if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kFloat32, x))
      return autocast_call(*dt, &log_softmax, x, d, dtype);
  Tensor y;
  {
    NoGradGuard guard;
    y = softmax_impl(x, d, dtype, true, "log_softmax");
  }
  if (is_floating(x.dtype())) {
    // dx = dy - exp(y) * sum(dy) along d.
    autograd::record("log_softmax", {x}, y, {y}, [d](const autograd::Saved& s, const Tensor& dy) {
      return autograd::Grads{dy - exp(s[0]) * sum(dy, {d}, /*keepdim=*/true)};
    });
  }
  return y;
}

}  // namespace ember
