// Elementwise ops: arithmetic, unary math and activations, comparisons, logical ops, where and
// masked_fill, their in-place forms and the Tensor operators; plus result_type (PyTorch's type
// promotion) and the whole-tensor comparisons equal / allclose / isclose.
//
// Every op follows one pattern: check -> result dtype (result_type) and broadcast shape ->
// convert inputs to the compute dtype and expand them (stride 0) -> one kernel launch
// (cpu::unary / cpu::binary / cpu::where), run without grad mode -> record backward (floating
// outputs only; comparisons, logical ops and predicates are not differentiable). C++ numbers become
// 0-d "wrapped number" tensors, which take part in type promotion by category only (int8 tensor +
// 1000 stays int8) and never require grad.
#include <algorithm>
#include <cmath>
#include <optional>

#include "core/dispatch.hpp"
#include "core/ops/derivatives.hpp"
#include "core/record.hpp"
#include "core/tensor_impl.hpp"
#include "ember/ops.hpp"

namespace ember {

// ---- Tensor member forms ----

Tensor Tensor::add(const Tensor& o, Scalar alpha) const { return ember::add(*this, o, alpha); }
Tensor Tensor::add(Scalar o, Scalar alpha) const { return ember::add(*this, o, alpha); }
Tensor Tensor::sub(const Tensor& o, Scalar alpha) const { return ember::sub(*this, o, alpha); }
Tensor Tensor::sub(Scalar o, Scalar alpha) const { return ember::sub(*this, o, alpha); }
Tensor Tensor::mul(const Tensor& o) const { return ember::mul(*this, o); }
Tensor Tensor::mul(Scalar o) const { return ember::mul(*this, o); }
Tensor Tensor::div(const Tensor& o) const { return ember::div(*this, o); }
Tensor Tensor::div(Scalar o) const { return ember::div(*this, o); }
Tensor Tensor::eq(const Tensor& o) const { return ember::eq(*this, o); }
Tensor Tensor::eq(Scalar o) const { return ember::eq(*this, o); }
Tensor Tensor::ne(const Tensor& o) const { return ember::ne(*this, o); }
Tensor Tensor::ne(Scalar o) const { return ember::ne(*this, o); }
Tensor Tensor::lt(const Tensor& o) const { return ember::lt(*this, o); }
Tensor Tensor::lt(Scalar o) const { return ember::lt(*this, o); }
Tensor Tensor::le(const Tensor& o) const { return ember::le(*this, o); }
Tensor Tensor::le(Scalar o) const { return ember::le(*this, o); }
Tensor Tensor::gt(const Tensor& o) const { return ember::gt(*this, o); }
Tensor Tensor::gt(Scalar o) const { return ember::gt(*this, o); }
Tensor Tensor::ge(const Tensor& o) const { return ember::ge(*this, o); }
Tensor Tensor::ge(Scalar o) const { return ember::ge(*this, o); }
Tensor Tensor::pow(const Tensor& e) const { return ember::pow(*this, e); }
Tensor Tensor::pow(Scalar e) const { return ember::pow(*this, e); }
Tensor Tensor::neg() const { return ember::neg(*this); }
Tensor Tensor::exp() const { return ember::exp(*this); }
Tensor Tensor::exp2() const { return ember::exp2(*this); }
Tensor Tensor::log() const { return ember::log(*this); }
Tensor Tensor::log2() const { return ember::log2(*this); }
Tensor Tensor::log1p() const { return ember::log1p(*this); }
Tensor Tensor::expm1() const { return ember::expm1(*this); }
Tensor Tensor::sqrt() const { return ember::sqrt(*this); }
Tensor Tensor::rsqrt() const { return ember::rsqrt(*this); }
Tensor Tensor::abs() const { return ember::abs(*this); }
Tensor Tensor::sign() const { return ember::sign(*this); }
Tensor Tensor::sin() const { return ember::sin(*this); }
Tensor Tensor::cos() const { return ember::cos(*this); }
Tensor Tensor::tan() const { return ember::tan(*this); }
Tensor Tensor::tanh() const { return ember::tanh(*this); }
Tensor Tensor::sigmoid() const { return ember::sigmoid(*this); }
Tensor Tensor::relu() const { return ember::relu(*this); }
Tensor Tensor::erf() const { return ember::erf(*this); }
Tensor Tensor::reciprocal() const { return ember::reciprocal(*this); }
Tensor Tensor::square() const { return ember::square(*this); }
Tensor Tensor::floor() const { return ember::floor(*this); }
Tensor Tensor::ceil() const { return ember::ceil(*this); }
Tensor Tensor::round() const { return ember::round(*this); }
Tensor Tensor::logical_not() const { return ember::logical_not(*this); }
Tensor Tensor::isnan() const { return ember::isnan(*this); }
Tensor Tensor::isinf() const { return ember::isinf(*this); }
Tensor Tensor::isfinite() const { return ember::isfinite(*this); }
Tensor Tensor::minimum(const Tensor& o) const { return ember::minimum(*this, o); }
Tensor Tensor::maximum(const Tensor& o) const { return ember::maximum(*this, o); }
Tensor Tensor::logical_and(const Tensor& o) const { return ember::logical_and(*this, o); }
Tensor Tensor::logical_or(const Tensor& o) const { return ember::logical_or(*this, o); }
Tensor Tensor::clamp(std::optional<Scalar> min, std::optional<Scalar> max) const {
  return ember::clamp(*this, min, max);
}
Tensor Tensor::clamp_min(Scalar min) const { return ember::clamp_min(*this, min); }
Tensor Tensor::clamp_max(Scalar max) const { return ember::clamp_max(*this, max); }
Tensor Tensor::where(const Tensor& condition, const Tensor& other) const {
  return ember::where(condition, *this, other);
}
Tensor Tensor::masked_fill(const Tensor& mask, Scalar value) const {
  return ember::masked_fill(*this, mask, value);
}

// ---- type promotion ----

namespace {

/// PyTorch's ResultTypeState: the promoted dtype of dimensioned tensors, of 0-d tensors and of
/// wrapped numbers, kept apart; the higher-priority group wins unless a lower one lifts the
/// category (bool < integral < floating).
struct ResultTypeState {
  std::optional<DType> dim, zero, wrapped;

  static void merge(std::optional<DType>& slot, DType t) {
    slot = slot ? promote_types(*slot, t) : t;
  }
  void add_wrapped(DType t) { merge(wrapped, is_floating(t) ? get_default_dtype() : t); }
  void add(const Tensor& t) {
    if (t.is_wrapped_number()) {
      add_wrapped(t.dtype());
    } else if (t.dim() > 0) {
      merge(dim, t.dtype());
    } else {
      merge(zero, t.dtype());
    }
  }
  void add(Scalar s) { add_wrapped(s.type()); }

  static std::optional<DType> combine(std::optional<DType> higher, std::optional<DType> lower) {
    if (!higher) return lower;
    if (!lower || is_floating(*higher)) return higher;
    if (*higher == kBool || is_floating(*lower)) return promote_types(*higher, *lower);
    return higher;
  }
  DType result() const {
    return combine(dim, combine(zero, wrapped)).value_or(get_default_dtype());
  }
};

void check_defined(const Tensor& t, const char* op) {
  EMBER_CHECK(t.defined(), ValueError, "[", op,
              "] expected a defined tensor, got an undefined one");
}

/// A C++ number as a 0-d CPU tensor: bool, int64 or float64 (so a float64 operand sees the number
/// at full precision), flagged as a wrapped number for type promotion. As in PyTorch it stays on
/// the host: the CUDA kernels take its value as an argument (kernel_input).
Tensor wrap(Scalar s) {
  DType t = s.is_floating_point() ? kFloat64 : s.is_boolean() ? kBool : kInt64;
  Tensor w = full({}, s, TensorOptions(t));
  w.unsafe_impl()->wrapped_number = true;
  return w;
}

/// An operand of the binary and where kernels on `device`: a 0-d CPU tensor (a wrapped Scalar, or
/// a user's CPU scalar tensor) stays on the host, converted there, and the CUDA kernels read its
/// value from their arguments (src/cuda/loops.cuh's Single); anything else goes to `device`.
Tensor kernel_input(const Tensor& t, Device device) {
  return t.defined() && t.dim() == 0 && t.is_cpu() ? t : on_device(t, device);
}

/// PyTorch's canCast: no floating -> integral and no non-bool -> bool.
bool can_cast(DType from, DType to) {
  if (is_floating(from) && !is_floating(to)) return false;
  if (from != kBool && to == kBool) return false;
  return true;
}

void check_alpha(const char* op, DType t, Scalar alpha) {
  EMBER_CHECK(!alpha.is_boolean() || t == kBool, DTypeError, "[", op,
              "] a bool alpha is only supported for bool results, got ", t);
  EMBER_CHECK(is_floating(t) || alpha.is_integral(true), DTypeError, "[", op,
              "] alpha must not be a floating point number for integral results (", t, ")");
}

/// The b operand converted for the kernel: to `compute`, except that a 0-d operand of
/// add/sub/mul/div on float16/bfloat16 goes in as float32, so `x * 0.1` multiplies by 0.1f and
/// not by 0.1 rounded to half (PyTorch's opmath scalar).
Tensor kernel_operand_b(const Tensor& b, DType compute, BinaryOp k) {
  bool arithmetic =
      k == BinaryOp::Add || k == BinaryOp::Sub || k == BinaryOp::Mul || k == BinaryOp::Div;
  if (arithmetic && is_reduced_float(compute) && b.dim() == 0) return b.to(kFloat32);
  return b.to(compute);
}

/// out = kernel(a, b) over the broadcast shape; inputs are converted to `compute`.
Tensor binary_op(const char* op, const Tensor& a, const Tensor& b, BinaryOp k, DType compute,
                 DType out_dtype, Scalar alpha = 1) {
  NoGradGuard no_grad;  // conversions and expands are internal: only the op itself records
  const Device device = common_device({&a, &b}, op);
  std::vector<int64_t> shape = broadcast_shapes(a.sizes(), b.sizes(), op);
  Tensor out = make_tensor(shape, out_dtype, device, op, result_format(shape, {&a, &b}));
  launch(device, cpu::binary, cuda::binary, out, kernel_input(a, device).to(compute).expand(shape),
         kernel_operand_b(kernel_input(b, device), compute, k).expand(shape), k, alpha);
  return out;
}

/// out = kernel(x) with x converted to `compute`.
Tensor unary_op(const char* op, const Tensor& x, UnaryOp k, DType compute, DType out_dtype,
                double p0 = 0.0, double p1 = 0.0) {
  NoGradGuard no_grad;
  check_defined(x, op);
  Tensor out = make_tensor(x.sizes(), out_dtype, x.device(), op, result_format(x.sizes(), {&x}));
  launch(out.device(), cpu::unary, cuda::unary, out, x.to(compute), k, p0, p1);
  return out;
}

/// Floating functions (exp, sin, gelu, ...): integer and bool inputs compute in the default
/// float dtype, as in PyTorch.
Tensor float_unary(const char* op, const Tensor& x, UnaryOp k, double p0 = 0.0, double p1 = 0.0) {
  check_defined(x, op);
  DType t = is_floating(x.dtype()) ? x.dtype() : get_default_dtype();
  return unary_op(op, x, k, t, t, p0, p1);
}

/// Ops that keep integer dtypes (abs, sign, relu, ...).
Tensor same_dtype_unary(const char* op, const Tensor& x, UnaryOp k) {
  check_defined(x, op);
  return unary_op(op, x, k, x.dtype(), x.dtype());
}

Tensor predicate_unary(const char* op, const Tensor& x, UnaryOp k) {
  check_defined(x, op);
  return unary_op(op, x, k, x.dtype(), kBool);
}

bool all_true(const Tensor& mask) {
  Tensor m = mask.cpu().contiguous();
  const bool* p = m.data_ptr<bool>();
  return std::all_of(p, p + m.numel(), [](bool v) { return v; });
}

// ---- in place ----

/// Throws unless self can hold a result of dtype `result` and shape broadcast(self, other).
void check_inplace(const char* op, const Tensor& self, IntArrayRef other_sizes, DType result) {
  EMBER_CHECK(can_cast(result, self.dtype()), DTypeError, "[", op, "] result type ", result,
              " can't be cast to the desired output type ", self.dtype());
  std::vector<int64_t> shape = broadcast_shapes(self.sizes(), other_sizes, op);
  EMBER_CHECK(IntArrayRef(shape) == self.sizes(), ShapeError, "[", op, "] output with shape ",
              self.sizes(), " doesn't match the broadcast shape ", IntArrayRef(shape));
  for (int64_t d = 0; d < self.dim(); ++d) {
    EMBER_CHECK(self.stride(d) != 0 || self.size(d) <= 1, ValueError, "[", op,
                "] unsupported operation: more than one element of the written-to tensor "
                "refers to a single memory location (an expanded tensor of shape ",
                self.sizes(), "); clone() it first");
  }
}

/// An input that shares memory with self but not element-for-element is copied first, so that
/// writing self never changes input elements that are still to be read.
Tensor unaliased(const Tensor& in, const Tensor& self) {
  if (!in.is_alias_of(self)) return in;
  if (in.sizes() == self.sizes() && in.strides() == self.strides() &&
      in.storage_offset() == self.storage_offset()) {
    return in;
  }
  return in.clone();
}

/// Writes a kernel result of dtype `compute` into self: directly when the dtypes agree, else
/// through a temporary converted back (float16 += float32 computes in float32).
template <class Kernel>
void write_into(Tensor& self, DType compute, const char* op, Kernel&& kernel) {
  if (self.dtype() == compute) {
    kernel(self, self);
  } else {
    Tensor tmp =
        make_tensor(self.sizes(), compute, self.device(), op, self.suggest_memory_format());
    kernel(tmp, self.to(compute));
    launch(self.device(), cpu::copy, cuda::copy, self, tmp);
  }
  self.bump_version();
}

Tensor& inplace_binary(const char* op, Tensor& self, const Tensor& other, BinaryOp k, DType compute,
                       Scalar alpha = 1) {
  NoGradGuard no_grad;
  check_defined(self, op);
  check_defined(other, op);
  EMBER_CHECK(common_device({&self, &other}, op) == self.device(), DeviceError, "[", op,
              "] expected all tensors on the same device, got ", self.device(), " and ",
              other.device());
  check_inplace(op, self, other.sizes(), compute);
  Tensor b = unaliased(kernel_operand_b(kernel_input(other, self.device()), compute, k), self)
                 .expand(self.sizes());
  write_into(self, compute, op, [&](const Tensor& out, const Tensor& a) {
    launch(out.device(), cpu::binary, cuda::binary, out, a, b, k, alpha);
  });
  return self;
}

DType clamp_result_type(const char* op, const Tensor& x, const std::optional<Scalar>& min,
                        const std::optional<Scalar>& max) {
  check_defined(x, op);
  EMBER_CHECK(min.has_value() || max.has_value(), ValueError, "[", op,
              "] at least one of min and max must be given");
  ResultTypeState s;
  s.add(x);
  if (min) s.add(*min);
  if (max) s.add(*max);
  DType t = s.result();
  EMBER_CHECK(t != kBool, DTypeError, "[", op, "] is not supported for bool tensors");
  return t;
}

UnaryOp clamp_kind(const std::optional<Scalar>& min, const std::optional<Scalar>& max, double* p0,
                   double* p1) {
  if (min && max) {
    *p0 = min->to_double();
    *p1 = max->to_double();
    return UnaryOp::Clamp;
  }
  *p0 = min ? min->to_double() : max->to_double();
  return min ? UnaryOp::ClampMin : UnaryOp::ClampMax;
}

void check_bool_mask(const char* op, const Tensor& mask) {
  check_defined(mask, op);
  EMBER_CHECK(mask.dtype() == kBool, DTypeError, "[", op, "] expected a bool mask, got ",
              mask.dtype());
}

// ---- backward recording ----

using autograd::Grads;
using autograd::Saved;

bool wants(const Tensor& t) { return t.defined() && t.requires_grad(); }

/// An op records only for a floating output, in grad mode, when some input requires grad.
bool should_record(const Tensor& out, std::initializer_list<const Tensor*> inputs) {
  return is_floating(out.dtype()) && autograd::needs_grad(inputs);
}

/// Records a one-input op: dx = f(saved, dy).
template <class F>
void record_unary(const char* op, const Tensor& x, const Tensor& out,
                  const std::vector<Tensor>& saved, F f) {
  if (!should_record(out, {&x})) return;
  autograd::record(op, {x}, out, saved,
                   [f](const Saved& s, const Tensor& dy) { return Grads{f(s, dy)}; });
}

/// add/sub (and add_/sub_): da = dy, db = sign * alpha * dy.
void record_add_sub(const char* op, const Tensor& a, const Tensor& b, const Tensor& out,
                    Scalar alpha, bool negate) {
  if (!should_record(out, {&a, &b})) return;
  const bool ga = wants(a), gb = wants(b);
  const double scale = (negate ? -1.0 : 1.0) * alpha.to_double();
  autograd::record(op, {a, b}, out, {}, [ga, gb, scale](const Saved&, const Tensor& dy) {
    Tensor db;
    if (gb) db = scale == 1.0 ? dy : scale == -1.0 ? neg(dy) : dy * scale;
    return Grads{ga ? dy : Tensor(), db};
  });
}

/// mul (and mul_): da = dy * b, db = dy * a. `a_value` is a's value before the op.
void record_mul(const char* op, const Tensor& a, const Tensor& a_value, const Tensor& b,
                const Tensor& b_value, const Tensor& out) {
  if (!should_record(out, {&a, &b})) return;
  const bool ga = wants(a), gb = wants(b);
  autograd::record(op, {a, b}, out, {gb ? a_value : Tensor(), ga ? b_value : Tensor()},
                   [ga, gb](const Saved& s, const Tensor& dy) {
                     return Grads{ga ? dy * s[1] : Tensor(), gb ? dy * s[0] : Tensor()};
                   });
}

/// div (and div_): da = dy / b, db = -dy * out / b (out = a / b).
void record_div(const char* op, const Tensor& a, const Tensor& b, const Tensor& b_value,
                const Tensor& out) {
  if (!should_record(out, {&a, &b})) return;
  const bool ga = wants(a), gb = wants(b);
  autograd::record(op, {a, b}, out, {b_value, gb ? out : Tensor()},
                   [ga, gb](const Saved& s, const Tensor& dy) {
                     Tensor da = ga ? dy / s[0] : Tensor();
                     Tensor db = gb ? neg(dy) * s[1] / s[0] : Tensor();
                     return Grads{da, db};
                   });
}

/// The mask of elements that clamp leaves unchanged (PyTorch: min <= x <= max; NaN gets none).
Tensor clamp_pass_mask(const Tensor& x, const std::optional<Scalar>& min,
                       const std::optional<Scalar>& max) {
  NoGradGuard no_grad;
  if (min && max) return logical_and(ge(x, *min), le(x, *max));
  return min ? ge(x, *min) : le(x, *max);
}

}  // namespace

namespace detail {

Tensor gelu_grad(const Tensor& x, bool tanh_form) {
  if (tanh_form) {
    const double k = std::sqrt(2.0 / M_PI), c = 0.044715;
    Tensor x2 = x * x;
    Tensor t = tanh((x + x2 * x * c) * k);
    Tensor dinner = (x2 * (3.0 * c) + 1.0) * k;
    return (t + 1.0) * 0.5 + x * 0.5 * (1.0 - t * t) * dinner;
  }
  Tensor cdf = (erf(x * M_SQRT1_2) + 1.0) * 0.5;
  Tensor pdf = exp(x * x * -0.5) * (0.5 * M_2_SQRTPI * M_SQRT1_2);  // 1/sqrt(2 pi)
  return cdf + x * pdf;
}

Tensor activation_grad(const Tensor& dy, const Tensor& at, ActGrad kind, double p0, double p1,
                       const std::function<Tensor()>& composite) {
  if (autograd::is_grad_enabled() || !is_floating(dy.dtype()) || at.dtype() != dy.dtype() ||
      at.device() != dy.device() || at.sizes() != dy.sizes())
    return composite();
  Tensor dx = make_tensor(dy.sizes(), dy.dtype(), dy.device(), "activation_backward",
                          result_format(dy.sizes(), {&dy, &at}));
  launch(dy.device(), cpu::activation_backward, cuda::activation_backward, dx, dy, at, kind, p0,
         p1);
  return dx;
}

Tensor gelu_backward(const Tensor& dy, const Tensor& x, bool tanh_form) {
  return activation_grad(dy, x, tanh_form ? ActGrad::GeluTanh : ActGrad::GeluErf, 0, 0,
                         [&] { return dy * gelu_grad(x, tanh_form); });
}

Tensor relu_grad(const Tensor& dy, const Tensor& y) {
  return activation_grad(dy, y, ActGrad::Relu, 0, 0,
                         [&] { return masked_fill(dy, le(y, 0.0), 0.0); });
}

}  // namespace detail

DType result_type(const Tensor& a, const Tensor& b) {
  check_defined(a, "result_type");
  check_defined(b, "result_type");
  ResultTypeState s;
  s.add(a);
  s.add(b);
  return s.result();
}

DType result_type(const Tensor& a, Scalar b) {
  check_defined(a, "result_type");
  ResultTypeState s;
  s.add(a);
  s.add(b);
  return s.result();
}

// ---- arithmetic ----

Tensor add(const Tensor& a, const Tensor& b, Scalar alpha) {
  DType t = result_type(a, b);
  check_alpha("add", t, alpha);
  Tensor out = binary_op("add", a, b, BinaryOp::Add, t, t, alpha);
  record_add_sub("add", a, b, out, alpha, /*negate=*/false);
  return out;
}
Tensor add(const Tensor& a, Scalar b, Scalar alpha) { return add(a, wrap(b), alpha); }

Tensor sub(const Tensor& a, const Tensor& b, Scalar alpha) {
  DType t = result_type(a, b);
  EMBER_CHECK(a.dtype() != kBool && b.dtype() != kBool, DTypeError,
              "[sub] subtraction with a bool tensor is not supported; use logical_xor or "
              "logical_not instead (got ",
              a.dtype(), " and ", b.dtype(), ")");
  check_alpha("sub", t, alpha);
  Tensor out = binary_op("sub", a, b, BinaryOp::Sub, t, t, alpha);
  record_add_sub("sub", a, b, out, alpha, /*negate=*/true);
  return out;
}
Tensor sub(const Tensor& a, Scalar b, Scalar alpha) { return sub(a, wrap(b), alpha); }

Tensor mul(const Tensor& a, const Tensor& b) {
  DType t = result_type(a, b);
  Tensor out = binary_op("mul", a, b, BinaryOp::Mul, t, t);
  record_mul("mul", a, a, b, b, out);
  return out;
}
Tensor mul(const Tensor& a, Scalar b) { return mul(a, wrap(b)); }

Tensor div(const Tensor& a, const Tensor& b) {
  DType t = result_type(a, b);
  if (!is_floating(t)) t = get_default_dtype();
  Tensor out = binary_op("div", a, b, BinaryOp::Div, t, t);
  record_div("div", a, b, b, out);
  return out;
}
Tensor div(const Tensor& a, Scalar b) { return div(a, wrap(b)); }

Tensor pow(const Tensor& a, const Tensor& e) {
  DType t = result_type(a, e);
  Tensor out = binary_op("pow", a, e, BinaryOp::Pow, t, t);
  if (should_record(out, {&a, &e})) {
    const bool ga = wants(a), ge_ = wants(e);
    // PyTorch's pow_backward_self / pow_backward_exponent: zero where e == 0 (self), and where
    // a == 0 with e >= 0 (exponent, where log(a) is -inf); a < 0 gives NaN as in PyTorch.
    autograd::record("pow", {a, e}, out, {a, e, ge_ ? out : Tensor()},
                     [ga, ge_](const Saved& s, const Tensor& dy) {
                       const Tensor &x = s[0], &p = s[1];
                       Tensor da, de;
                       if (ga) da = masked_fill(dy * p * pow(x, p - 1.0), eq(p, 0.0), 0.0);
                       if (ge_) {
                         Tensor zero_base = logical_and(eq(x, 0.0), ge(p, 0.0));
                         de = masked_fill(dy * s[2] * log(x), zero_base, 0.0);
                       }
                       return Grads{da, de};
                     });
  }
  return out;
}
Tensor pow(const Tensor& a, Scalar e) {
  DType t = result_type(a, e);
  if (t == kBool) return pow(a, wrap(e));
  EMBER_CHECK(is_floating(t) || !e.is_integral() || e.to_long() >= 0, ValueError,
              "[pow] integers to negative integer powers are not allowed (", a.dtype(), " ** ", e,
              ")");
  Tensor out = unary_op("pow", a, UnaryOp::PowScalar, t, t, e.to_double());
  const double p = e.to_double();
  record_unary("pow", a, out, {a}, [p](const Saved& s, const Tensor& dy) {
    if (p == 0.0) return zeros_like(dy);
    if (p == 1.0) return dy;
    if (p == 2.0) return dy * s[0] * 2.0;
    return dy * pow(s[0], p - 1.0) * p;
  });
  return out;
}
Tensor pow(Scalar a, const Tensor& e) {
  check_defined(e, "pow");
  return pow(wrap(a), e);
}

namespace {
/// minimum/maximum: the gradient goes to the selected input, split half/half on ties (PyTorch).
/// `loses_a` is where a is not selected (a > b for minimum).
void record_min_max(const char* op, const Tensor& a, const Tensor& b, const Tensor& out,
                    bool is_min) {
  if (!should_record(out, {&a, &b})) return;
  const bool ga = wants(a), gb = wants(b);
  autograd::record(op, {a, b}, out, {a, b}, [ga, gb, is_min](const Saved& s, const Tensor& dy) {
    Tensor tie = eq(s[0], s[1]);
    Tensor shared = where(tie, dy * 0.5, dy);
    Tensor da, db;
    if (ga) da = masked_fill(shared, is_min ? gt(s[0], s[1]) : lt(s[0], s[1]), 0.0);
    if (gb) db = masked_fill(shared, is_min ? lt(s[0], s[1]) : gt(s[0], s[1]), 0.0);
    return Grads{da, db};
  });
}
}  // namespace

Tensor minimum(const Tensor& a, const Tensor& b) {
  DType t = result_type(a, b);
  Tensor out = binary_op("minimum", a, b, BinaryOp::Minimum, t, t);
  record_min_max("minimum", a, b, out, /*is_min=*/true);
  return out;
}
Tensor maximum(const Tensor& a, const Tensor& b) {
  DType t = result_type(a, b);
  Tensor out = binary_op("maximum", a, b, BinaryOp::Maximum, t, t);
  record_min_max("maximum", a, b, out, /*is_min=*/false);
  return out;
}

// ---- unary math ----
// Each backward is dx = dy * f'(x), written with differentiable ops; functions whose derivative
// is cheaper from the result (exp, sqrt, tanh, sigmoid, ...) save the output instead of x.

namespace {
Tensor zero_grad(const Saved&, const Tensor& dy) { return zeros_like(dy); }
}  // namespace

Tensor neg(const Tensor& x) {
  check_defined(x, "neg");
  EMBER_CHECK(x.dtype() != kBool, DTypeError,
              "[neg] negation of a bool tensor is not supported; use logical_not() or ~ instead");
  Tensor out = same_dtype_unary("neg", x, UnaryOp::Neg);
  record_unary("neg", x, out, {}, [](const Saved&, const Tensor& dy) { return neg(dy); });
  return out;
}
Tensor exp(const Tensor& x) {
  Tensor out = float_unary("exp", x, UnaryOp::Exp);
  record_unary("exp", x, out, {out}, [](const Saved& s, const Tensor& dy) { return dy * s[0]; });
  return out;
}
Tensor exp2(const Tensor& x) {
  Tensor out = float_unary("exp2", x, UnaryOp::Exp2);
  record_unary("exp2", x, out, {out},
               [](const Saved& s, const Tensor& dy) { return dy * s[0] * M_LN2; });
  return out;
}
Tensor log(const Tensor& x) {
  Tensor out = float_unary("log", x, UnaryOp::Log);
  record_unary("log", x, out, {x}, [](const Saved& s, const Tensor& dy) { return dy / s[0]; });
  return out;
}
Tensor log2(const Tensor& x) {
  Tensor out = float_unary("log2", x, UnaryOp::Log2);
  record_unary("log2", x, out, {x},
               [](const Saved& s, const Tensor& dy) { return dy / (s[0] * M_LN2); });
  return out;
}
Tensor log1p(const Tensor& x) {
  Tensor out = float_unary("log1p", x, UnaryOp::Log1p);
  record_unary("log1p", x, out, {x},
               [](const Saved& s, const Tensor& dy) { return dy / (s[0] + 1.0); });
  return out;
}
Tensor expm1(const Tensor& x) {
  Tensor out = float_unary("expm1", x, UnaryOp::Expm1);
  record_unary("expm1", x, out, {out},
               [](const Saved& s, const Tensor& dy) { return dy * (s[0] + 1.0); });
  return out;
}
Tensor sqrt(const Tensor& x) {
  Tensor out = float_unary("sqrt", x, UnaryOp::Sqrt);
  record_unary("sqrt", x, out, {out},
               [](const Saved& s, const Tensor& dy) { return dy / (s[0] * 2.0); });
  return out;
}
Tensor rsqrt(const Tensor& x) {
  Tensor out = float_unary("rsqrt", x, UnaryOp::Rsqrt);
  record_unary("rsqrt", x, out, {out},
               [](const Saved& s, const Tensor& dy) { return dy * s[0] * s[0] * s[0] * -0.5; });
  return out;
}
Tensor abs(const Tensor& x) {
  Tensor out = same_dtype_unary("abs", x, UnaryOp::Abs);
  record_unary("abs", x, out, {x},
               [](const Saved& s, const Tensor& dy) { return dy * sign(s[0]); });
  return out;
}
Tensor sign(const Tensor& x) {
  Tensor out = same_dtype_unary("sign", x, UnaryOp::Sign);
  record_unary("sign", x, out, {}, zero_grad);
  return out;
}
Tensor sin(const Tensor& x) {
  Tensor out = float_unary("sin", x, UnaryOp::Sin);
  record_unary("sin", x, out, {x}, [](const Saved& s, const Tensor& dy) { return dy * cos(s[0]); });
  return out;
}
Tensor cos(const Tensor& x) {
  Tensor out = float_unary("cos", x, UnaryOp::Cos);
  record_unary("cos", x, out, {x},
               [](const Saved& s, const Tensor& dy) { return neg(dy) * sin(s[0]); });
  return out;
}
Tensor tan(const Tensor& x) {
  Tensor out = float_unary("tan", x, UnaryOp::Tan);
  record_unary("tan", x, out, {out},
               [](const Saved& s, const Tensor& dy) { return dy * (s[0] * s[0] + 1.0); });
  return out;
}
Tensor tanh(const Tensor& x) {
  Tensor out = float_unary("tanh", x, UnaryOp::Tanh);
  record_unary("tanh", x, out, {out}, [](const Saved& s, const Tensor& dy) {
    return detail::activation_grad(dy, s[0], ActGrad::Tanh, 0, 0,
                                   [&] { return dy * (1.0 - s[0] * s[0]); });
  });
  return out;
}
Tensor sigmoid(const Tensor& x) {
  Tensor out = float_unary("sigmoid", x, UnaryOp::Sigmoid);
  record_unary("sigmoid", x, out, {out}, [](const Saved& s, const Tensor& dy) {
    return detail::activation_grad(dy, s[0], ActGrad::Sigmoid, 0, 0,
                                   [&] { return dy * s[0] * (1.0 - s[0]); });
  });
  return out;
}
Tensor relu(const Tensor& x) {
  check_defined(x, "relu");
  EMBER_CHECK(x.dtype() != kBool, DTypeError, "[relu] is not supported for bool tensors");
  Tensor out = same_dtype_unary("relu", x, UnaryOp::Relu);
  // PyTorch's threshold_backward: no gradient where the result is <= 0.
  record_unary("relu", x, out, {out},
               [](const Saved& s, const Tensor& dy) { return detail::relu_grad(dy, s[0]); });
  return out;
}
Tensor gelu(const Tensor& x, const std::string& approximate) {
  EMBER_CHECK(approximate == "none" || approximate == "tanh", ValueError,
              "[gelu] approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
  const bool tanh_form = approximate == "tanh";
  Tensor out = float_unary("gelu", x, tanh_form ? UnaryOp::GeluTanh : UnaryOp::GeluErf);
  record_unary("gelu", x, out, {x}, [tanh_form](const Saved& s, const Tensor& dy) {
    return detail::gelu_backward(dy, s[0], tanh_form);
  });
  return out;
}
Tensor silu(const Tensor& x) {
  Tensor out = float_unary("silu", x, UnaryOp::Silu);
  record_unary("silu", x, out, {x}, [](const Saved& s, const Tensor& dy) {
    return detail::activation_grad(dy, s[0], ActGrad::Silu, 0, 0, [&] {
      Tensor sg = sigmoid(s[0]);
      return dy * sg * (s[0] * (1.0 - sg) + 1.0);
    });
  });
  return out;
}
Tensor leaky_relu(const Tensor& x, Scalar negative_slope) {
  const double slope = negative_slope.to_double();
  Tensor out = float_unary("leaky_relu", x, UnaryOp::LeakyRelu, slope);
  record_unary("leaky_relu", x, out, {x}, [slope](const Saved& s, const Tensor& dy) {
    return detail::activation_grad(dy, s[0], ActGrad::LeakyRelu, slope, 0,
                                   [&] { return where(gt(s[0], 0.0), dy, dy * slope); });
  });
  return out;
}
Tensor elu(const Tensor& x, Scalar alpha) {
  const double a = alpha.to_double();
  Tensor out = float_unary("elu", x, UnaryOp::Elu, a);
  record_unary("elu", x, out, {x}, [a](const Saved& s, const Tensor& dy) {
    return detail::activation_grad(dy, s[0], ActGrad::Elu, a, 0,
                                   [&] { return where(gt(s[0], 0.0), dy, dy * exp(s[0]) * a); });
  });
  return out;
}
Tensor softplus(const Tensor& x, Scalar beta, Scalar threshold) {
  EMBER_CHECK(beta.to_double() != 0.0, ValueError, "[softplus] beta must be non-zero");
  const double b = beta.to_double(), th = threshold.to_double();
  Tensor out = float_unary("softplus", x, UnaryOp::Softplus, b, th);
  // Linear above the threshold (x * beta > threshold), as in the forward.
  record_unary("softplus", x, out, {x}, [b, th](const Saved& s, const Tensor& dy) {
    return detail::activation_grad(dy, s[0], ActGrad::Softplus, b, th, [&] {
      Tensor bx = s[0] * b;
      return where(gt(bx, th), dy, dy * sigmoid(bx));
    });
  });
  return out;
}
Tensor erf(const Tensor& x) {
  Tensor out = float_unary("erf", x, UnaryOp::Erf);
  record_unary("erf", x, out, {x}, [](const Saved& s, const Tensor& dy) {
    return dy * exp(neg(s[0] * s[0])) * M_2_SQRTPI;
  });
  return out;
}
Tensor reciprocal(const Tensor& x) {
  Tensor out = float_unary("reciprocal", x, UnaryOp::Reciprocal);
  record_unary("reciprocal", x, out, {out},
               [](const Saved& s, const Tensor& dy) { return neg(dy) * s[0] * s[0]; });
  return out;
}
Tensor square(const Tensor& x) {
  check_defined(x, "square");
  if (x.dtype() == kBool) return unary_op("square", x, UnaryOp::Square, kInt64, kInt64);
  Tensor out = same_dtype_unary("square", x, UnaryOp::Square);
  record_unary("square", x, out, {x},
               [](const Saved& s, const Tensor& dy) { return dy * s[0] * 2.0; });
  return out;
}
Tensor floor(const Tensor& x) {
  Tensor out = same_dtype_unary("floor", x, UnaryOp::Floor);
  record_unary("floor", x, out, {}, zero_grad);
  return out;
}
Tensor ceil(const Tensor& x) {
  Tensor out = same_dtype_unary("ceil", x, UnaryOp::Ceil);
  record_unary("ceil", x, out, {}, zero_grad);
  return out;
}
Tensor round(const Tensor& x) {
  Tensor out = same_dtype_unary("round", x, UnaryOp::Round);
  record_unary("round", x, out, {}, zero_grad);
  return out;
}

Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max) {
  DType t = clamp_result_type("clamp", x, min, max);
  double p0 = 0.0, p1 = 0.0;
  UnaryOp k = clamp_kind(min, max, &p0, &p1);
  Tensor out = unary_op("clamp", x, k, t, t, p0, p1);
  record_unary("clamp", x, out, {x}, [min, max](const Saved& s, const Tensor& dy) {
    return masked_fill(dy, logical_not(clamp_pass_mask(s[0], min, max)), 0.0);
  });
  return out;
}
Tensor clamp_min(const Tensor& x, Scalar min) { return clamp(x, min, std::nullopt); }
Tensor clamp_max(const Tensor& x, Scalar max) { return clamp(x, std::nullopt, max); }

// ---- comparisons and logical ops (bool results) ----

namespace {
Tensor compare(const char* op, const Tensor& a, const Tensor& b, BinaryOp k) {
  return binary_op(op, a, b, k, result_type(a, b), kBool);
}
}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare("eq", a, b, BinaryOp::Eq); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare("ne", a, b, BinaryOp::Ne); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare("lt", a, b, BinaryOp::Lt); }
Tensor le(const Tensor& a, const Tensor& b) { return compare("le", a, b, BinaryOp::Le); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare("gt", a, b, BinaryOp::Gt); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare("ge", a, b, BinaryOp::Ge); }
Tensor eq(const Tensor& a, Scalar b) { return eq(a, wrap(b)); }
Tensor ne(const Tensor& a, Scalar b) { return ne(a, wrap(b)); }
Tensor lt(const Tensor& a, Scalar b) { return lt(a, wrap(b)); }
Tensor le(const Tensor& a, Scalar b) { return le(a, wrap(b)); }
Tensor gt(const Tensor& a, Scalar b) { return gt(a, wrap(b)); }
Tensor ge(const Tensor& a, Scalar b) { return ge(a, wrap(b)); }
Tensor logical_and(const Tensor& a, const Tensor& b) {
  return compare("logical_and", a, b, BinaryOp::LogicalAnd);
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
  return compare("logical_or", a, b, BinaryOp::LogicalOr);
}
Tensor logical_not(const Tensor& x) {
  return predicate_unary("logical_not", x, UnaryOp::LogicalNot);
}
Tensor isnan(const Tensor& x) { return predicate_unary("isnan", x, UnaryOp::IsNan); }
Tensor isinf(const Tensor& x) { return predicate_unary("isinf", x, UnaryOp::IsInf); }
Tensor isfinite(const Tensor& x) { return predicate_unary("isfinite", x, UnaryOp::IsFinite); }

// ---- selection ----

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  check_bool_mask("where", condition);
  check_defined(a, "where");
  check_defined(b, "where");
  const Device device = common_device({&condition, &a, &b}, "where");
  std::vector<int64_t> shape =
      broadcast_shapes(broadcast_shapes(condition.sizes(), a.sizes(), "where"), b.sizes(), "where");
  DType t = result_type(a, b);
  Tensor out = make_tensor(shape, t, device, "where", result_format(shape, {&a, &b, &condition}));
  {
    NoGradGuard no_grad;
    Tensor ka = kernel_input(a, device);  // one of the branches may stay on the host
    Tensor kb = ka.device() == device ? kernel_input(b, device) : on_device(b, device);
    launch(device, cpu::where, cuda::where, out, on_device(condition, device).expand(shape),
           ka.to(t).expand(shape), kb.to(t).expand(shape));
  }
  if (should_record(out, {&a, &b})) {
    const bool ga = wants(a), gb = wants(b);
    autograd::record("where", {a, b}, out, {condition}, [ga, gb](const Saved& s, const Tensor& dy) {
      return Grads{ga ? masked_fill(dy, logical_not(s[0]), 0.0) : Tensor(),
                   gb ? masked_fill(dy, s[0], 0.0) : Tensor()};
    });
  }
  return out;
}
Tensor where(const Tensor& condition, const Tensor& a, Scalar b) {
  check_defined(a, "where");
  return where(condition, a, wrap(b));
}
Tensor where(const Tensor& condition, Scalar a, const Tensor& b) {
  check_defined(b, "where");
  return where(condition, wrap(a), b);
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value) {
  check_defined(x, "masked_fill");
  check_bool_mask("masked_fill", mask);
  const Device device = common_device({&x, &mask}, "masked_fill");
  std::vector<int64_t> shape = broadcast_shapes(x.sizes(), mask.sizes(), "masked_fill");
  Tensor out =
      make_tensor(shape, x.dtype(), device, "masked_fill", result_format(shape, {&x, &mask}));
  {
    NoGradGuard no_grad;
    Tensor v = full({}, value, TensorOptions(x.dtype()));  // read by value on CUDA too
    launch(device, cpu::where, cuda::where, out, on_device(mask, device).expand(shape),
           v.expand(shape), on_device(x, device).expand(shape));
  }
  record_unary("masked_fill", x, out, {mask},
               [](const Saved& s, const Tensor& dy) { return masked_fill(dy, s[0], 0.0); });
  return out;
}

// ---- whole-tensor comparisons ----

bool equal(const Tensor& a, const Tensor& b) {
  check_defined(a, "equal");
  check_defined(b, "equal");
  check_same_device({&a, &b}, "equal");
  if (a.sizes() != b.sizes() || a.dtype() != b.dtype()) return false;
  return all_true(eq(a, b));
}

Tensor isclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  check_defined(a, "isclose");
  check_defined(b, "isclose");
  EMBER_CHECK(rtol >= 0.0 && atol >= 0.0, ValueError,
              "[isclose] rtol and atol must be non-negative, got rtol=", rtol, " atol=", atol);
  // Integers and bools compare in float64 (exact below 2^53) so a - b cannot wrap.
  DType t = result_type(a, b);
  if (!is_floating(t)) t = kFloat64;
  Tensor x = a.to(t), y = b.to(t);
  Tensor close = eq(x, y);  // also equal infinities
  if (equal_nan) close = logical_or(close, logical_and(isnan(x), isnan(y)));
  Tensor diff = abs(sub(x, y));
  Tensor tol = add(mul(abs(y), rtol), atol);
  return logical_or(close, logical_and(isfinite(diff), le(diff, tol)));
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  return all_true(isclose(a, b, rtol, atol, equal_nan));
}

// ---- in place ----

// Each records after writing self, with self among the inputs: the node's edges are taken from
// self's previous history before self becomes the node's output.

Tensor& Tensor::add_(const Tensor& o, Scalar alpha) {
  autograd::check_inplace(*this, "add_");
  DType t = result_type(*this, o);
  check_alpha("add_", t, alpha);
  inplace_binary("add_", *this, o, BinaryOp::Add, t, alpha);
  record_add_sub("add_", *this, o, *this, alpha, /*negate=*/false);
  return *this;
}
Tensor& Tensor::add_(Scalar o, Scalar alpha) { return add_(wrap(o), alpha); }
Tensor& Tensor::sub_(const Tensor& o, Scalar alpha) {
  autograd::check_inplace(*this, "sub_");
  DType t = result_type(*this, o);
  EMBER_CHECK(dtype() != kBool && o.dtype() != kBool, DTypeError,
              "[sub_] subtraction with a bool tensor is not supported (got ", dtype(), " and ",
              o.dtype(), ")");
  check_alpha("sub_", t, alpha);
  inplace_binary("sub_", *this, o, BinaryOp::Sub, t, alpha);
  record_add_sub("sub_", *this, o, *this, alpha, /*negate=*/true);
  return *this;
}
Tensor& Tensor::sub_(Scalar o, Scalar alpha) { return sub_(wrap(o), alpha); }
Tensor& Tensor::mul_(const Tensor& o) {
  autograd::check_inplace(*this, "mul_");
  DType t = result_type(*this, o);
  Tensor self_old, o_value = o;  // the values backward needs, as they were before the write
  if (is_floating(dtype()) && autograd::needs_grad({this, &o})) {
    if (wants(o)) self_old = clone();
    if (o.is_alias_of(*this)) o_value = o.clone();
  }
  inplace_binary("mul_", *this, o, BinaryOp::Mul, t);
  record_mul("mul_", *this, self_old, o, o_value, *this);
  return *this;
}
Tensor& Tensor::mul_(Scalar o) { return mul_(wrap(o)); }
Tensor& Tensor::div_(const Tensor& o) {
  autograd::check_inplace(*this, "div_");
  DType t = result_type(*this, o);
  if (!is_floating(t)) t = get_default_dtype();
  Tensor o_value = o;
  if (o.is_alias_of(*this) && is_floating(dtype()) && autograd::needs_grad({this, &o})) {
    o_value = o.clone();
  }
  inplace_binary("div_", *this, o, BinaryOp::Div, t);
  record_div("div_", *this, o, o_value, *this);
  return *this;
}
Tensor& Tensor::div_(Scalar o) { return div_(wrap(o)); }

Tensor& Tensor::clamp_(std::optional<Scalar> min, std::optional<Scalar> max) {
  autograd::check_inplace(*this, "clamp_");
  DType t = clamp_result_type("clamp_", *this, min, max);
  check_inplace("clamp_", *this, sizes(), t);
  double p0 = 0.0, p1 = 0.0;
  UnaryOp k = clamp_kind(min, max, &p0, &p1);
  const bool rec = should_record(*this, {this});
  Tensor pass = rec ? clamp_pass_mask(*this, min, max) : Tensor();  // from the old values
  {
    NoGradGuard no_grad;
    write_into(*this, t, "clamp_", [&](const Tensor& out, const Tensor& x) {
      launch(out.device(), cpu::unary, cuda::unary, out, x, k, p0, p1);
    });
  }
  if (rec) {
    autograd::record("clamp_", {*this}, *this, {pass}, [](const Saved& s, const Tensor& dy) {
      return Grads{ember::masked_fill(dy, ember::logical_not(s[0]), 0.0)};
    });
  }
  return *this;
}

Tensor& Tensor::masked_fill_(const Tensor& mask, Scalar value) {
  check_defined(*this, "masked_fill_");
  autograd::check_inplace(*this, "masked_fill_");
  check_bool_mask("masked_fill_", mask);
  EMBER_CHECK(common_device({this, &mask}, "masked_fill_") == device(), DeviceError,
              "[masked_fill_] expected all tensors on the same device, got ", device(), " and ",
              mask.device());
  check_inplace("masked_fill_", *this, mask.sizes(), dtype());
  {
    NoGradGuard no_grad;
    Tensor m = unaliased(on_device(mask, device()), *this).expand(sizes());
    Tensor v = full({}, value, TensorOptions(dtype()));  // read by value on CUDA too
    launch(device(), cpu::where, cuda::where, *this, m, v.expand(sizes()), *this);
  }
  bump_version();
  if (should_record(*this, {this})) {
    autograd::record("masked_fill_", {*this}, *this, {mask}, [](const Saved& s, const Tensor& dy) {
      return Grads{ember::masked_fill(dy, s[0], 0.0)};
    });
  }
  return *this;
}

// ---- operators ----

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, Scalar b) { return add(a, b); }
Tensor operator-(const Tensor& a, Scalar b) { return sub(a, b); }
Tensor operator*(const Tensor& a, Scalar b) { return mul(a, b); }
Tensor operator/(const Tensor& a, Scalar b) { return div(a, b); }
Tensor operator+(Scalar a, const Tensor& b) { return add(b, a); }
Tensor operator-(Scalar a, const Tensor& b) {
  check_defined(b, "sub");
  return sub(wrap(a), b);
}
Tensor operator*(Scalar a, const Tensor& b) { return mul(b, a); }
Tensor operator/(Scalar a, const Tensor& b) {
  check_defined(b, "div");
  return div(wrap(a), b);
}
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, Scalar b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, Scalar b) { return ne(a, b); }
Tensor operator<(const Tensor& a, Scalar b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, Scalar b) { return le(a, b); }
Tensor operator>(const Tensor& a, Scalar b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, Scalar b) { return ge(a, b); }

namespace {
void check_bool_operands(const char* op, const Tensor& a, const Tensor* b) {
  check_defined(a, op);
  if (b) check_defined(*b, op);
  EMBER_CHECK(a.dtype() == kBool && (!b || b->dtype() == kBool), DTypeError, "[", op,
              "] is only supported on bool tensors, got ", a.dtype(),
              b ? detail::str_cat(" and ", b->dtype()) : std::string());
}
}  // namespace

Tensor operator&(const Tensor& a, const Tensor& b) {
  check_bool_operands("bitwise_and", a, &b);
  return logical_and(a, b);
}
Tensor operator|(const Tensor& a, const Tensor& b) {
  check_bool_operands("bitwise_or", a, &b);
  return logical_or(a, b);
}
Tensor operator~(const Tensor& a) {
  check_bool_operands("bitwise_not", a, nullptr);
  return logical_not(a);
}
Tensor& operator+=(Tensor& a, const Tensor& b) { return a.add_(b); }
Tensor& operator-=(Tensor& a, const Tensor& b) { return a.sub_(b); }
Tensor& operator*=(Tensor& a, const Tensor& b) { return a.mul_(b); }
Tensor& operator/=(Tensor& a, const Tensor& b) { return a.div_(b); }
Tensor& operator+=(Tensor& a, Scalar b) { return a.add_(b); }
Tensor& operator-=(Tensor& a, Scalar b) { return a.sub_(b); }
Tensor& operator*=(Tensor& a, Scalar b) { return a.mul_(b); }
Tensor& operator/=(Tensor& a, Scalar b) { return a.div_(b); }

}  // namespace ember
