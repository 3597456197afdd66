// Linear algebra ops: matmul (PyTorch's rules), mm, bmm, addmm, baddbmm, outer, dot, linear.
// Every op reduces to one kernel, gemm over (B, M, K) x (B, K, N) -> (B, M, N) with arbitrary
// strides: transposed operands and broadcast (stride-0) batch dimensions are handed to the kernel
// as views, never copied.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "core/autocast.hpp"
#include "core/dispatch.hpp"
#include "core/ops/derivatives.hpp"
#include "core/record.hpp"
#include "core/tensor_impl.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/ops.hpp"

namespace ember {

using autograd::Grads;
using autograd::Saved;

// ---- Tensor member forms ----

Tensor Tensor::matmul(const Tensor& o) const { return ember::matmul(*this, o); }
Tensor Tensor::mm(const Tensor& o) const { return ember::mm(*this, o); }
Tensor Tensor::bmm(const Tensor& o) const { return ember::bmm(*this, o); }
Tensor Tensor::dot(const Tensor& o) const { return ember::dot(*this, o); }
Tensor Tensor::outer(const Tensor& o) const { return ember::outer(*this, o); }

namespace {

// ---- checks ----

void check_defined(const Tensor& t, const char* op, const char* name) {
  EMBER_CHECK(t.defined(), ValueError, "[", op, "] argument ", name, " is undefined");
}

/// Both operands defined, on one usable device, of one (non-bool) dtype.
void check_operands(const Tensor& a, const Tensor& b, const char* op) {
  check_defined(a, op, "a");
  check_defined(b, op, "b");
  check_same_device({&a, &b}, op);
  check_device_usable(a.device(), op);
  EMBER_CHECK(a.dtype() == b.dtype(), DTypeError, "[", op,
              "] expected both operands to have the same dtype, got ", a.dtype(), " and ",
              b.dtype());
  EMBER_CHECK(a.dtype() != kBool, DTypeError, "[", op, "] bool tensors are not supported");
}

/// The `input` of addmm/baddbmm/linear: same device and dtype as the operands (or, with an
/// out_dtype, that dtype).
void check_input(const Tensor& input, const Tensor& a, const char* op, const char* name,
                 DType out_dtype) {
  check_same_device({&a, &input}, op);
  if (out_dtype == a.dtype())
    EMBER_CHECK(input.dtype() == a.dtype(), DTypeError, "[", op, "] expected ", name,
                " to have the operands' dtype ", a.dtype(), ", got ", input.dtype());
  else
    EMBER_CHECK(input.dtype() == a.dtype() || input.dtype() == out_dtype, DTypeError, "[", op,
                "] expected ", name, " to have the operands' dtype ", a.dtype(),
                " or the out_dtype ", out_dtype, ", got ", input.dtype());
}
void check_input(const Tensor& input, const Tensor& a, const char* op, const char* name) {
  check_input(input, a, op, name, a.dtype());
}

/// PyTorch's out_dtype: the operands' own dtype, or float32 for float16/bfloat16 operands.
void check_out_dtype(DType operands, DType out, const char* op) {
  EMBER_CHECK(
      out == operands || (out == kFloat32 && (operands == kFloat16 || operands == kBFloat16)),
      DTypeError, "[", op, "] out_dtype ", out, " is not supported for ", operands,
      " operands: it must be their dtype, or float32 for float16/bfloat16 ones");
}

/// PyTorch refuses floating alpha/beta for integer tensors (they would be truncated silently).
void check_coefficients(DType dtype, Scalar alpha, Scalar beta, const char* op) {
  if (is_floating(dtype)) return;
  EMBER_CHECK(!alpha.is_floating_point(), ValueError, "[", op,
              "] alpha must be an integer for integer tensors, got ", alpha);
  EMBER_CHECK(!beta.is_floating_point(), ValueError, "[", op,
              "] beta must be an integer for integer tensors, got ", beta);
}

// ---- reduction to the (B, M, K) x (B, K, N) kernel ----

/// The single stride of dims [first, last) of (sizes, strides) merged into one dim, or -1 when
/// they do not merge (size-1 dims are ignored; an all-size-1 range merges with stride 0).
int64_t merged_stride(IntArrayRef sizes, IntArrayRef strides, size_t first, size_t last) {
  int64_t stride = -1;  // stride of the innermost non-size-1 dim seen so far
  int64_t extent = 1;   // product of sizes from that dim to `last`
  for (size_t d = last; d-- > first;) {
    if (sizes[d] == 1) continue;
    if (stride == -1) {
      stride = strides[d];
    } else if (strides[d] != stride * extent) {
      return -1;
    }
    extent *= sizes[d];
  }
  return stride == -1 ? 0 : stride;
}

/// A (batch, R, C) view of t's last two dims (R, C) with the given batch extent and stride.
Tensor view3(const Tensor& t, int64_t batch, int64_t batch_stride) {
  const int64_t n = t.dim();
  return make_view(t, {batch, t.size(n - 2), t.size(n - 1)},
                   {batch_stride, t.stride(n - 2), t.stride(n - 1)}, t.storage_offset());
}

void launch_gemm(const Tensor& out, const Tensor& a, const Tensor& b, Scalar alpha, Scalar beta) {
  launch(out.device(), cpu::gemm, cuda::gemm, out, a, b, alpha, beta);
}

/// out(batch..., M, N) = beta * out + alpha * a(batch..., M, K) @ b(batch..., K, N); all three
/// have the same batch shape (any strides, stride 0 included). Batch dims are merged into one
/// without copying; when the strides do not allow it the outer dims are looped over.
void gemm_batched(const Tensor& out, const Tensor& a, const Tensor& b, Scalar alpha, Scalar beta) {
  const size_t nb = static_cast<size_t>(out.dim() - 2);
  int64_t batch = 1;
  for (size_t d = 0; d < nb; ++d) batch *= out.sizes()[d];
  if (nb == 0) {
    launch_gemm(out.unsqueeze(0), a.unsqueeze(0), b.unsqueeze(0), alpha, beta);
    return;
  }
  // b shared by every batch (a weight): fold the batch into M, one (batch * M, K) x (K, N).
  bool b_shared = true;
  for (size_t d = 0; d < nb; ++d) b_shared = b_shared && (b.sizes()[d] == 1 || b.strides()[d] == 0);
  if (b_shared) {
    const int64_t sa = merged_stride(a.sizes(), a.strides(), 0, nb + 1);
    const int64_t so = merged_stride(out.sizes(), out.strides(), 0, nb + 1);
    if (sa >= 0 && so >= 0) {
      const int64_t M = batch * a.size(-2);
      Tensor a3 = make_view(a, {1, M, a.size(-1)}, {0, sa, a.stride(-1)}, a.storage_offset());
      Tensor o3 =
          make_view(out, {1, M, out.size(-1)}, {0, so, out.stride(-1)}, out.storage_offset());
      launch_gemm(o3, a3, view3(b, 1, 0), alpha, beta);
      return;
    }
  }
  const int64_t sa = merged_stride(a.sizes(), a.strides(), 0, nb);
  const int64_t sb = merged_stride(b.sizes(), b.strides(), 0, nb);
  const int64_t so = merged_stride(out.sizes(), out.strides(), 0, nb);
  if (sa >= 0 && sb >= 0 && so >= 0) {
    launch_gemm(view3(out, batch, so), view3(a, batch, sa), view3(b, batch, sb), alpha, beta);
    return;
  }
  // Batch dims that no single stride describes (e.g. (2, 3) with strides (K*N, 0)): loop over
  // the outermost one.
  for (int64_t i = 0; i < out.size(0); ++i)
    gemm_batched(out.select(0, i), a.select(0, i), b.select(0, i), alpha, beta);
}

/// a (M, K) and b (K, N) 2-D: checked inner dims, output (M, N).
void check_inner(const Tensor& a, const Tensor& b, int64_t ka, int64_t kb, const char* op) {
  EMBER_CHECK(ka == kb, ShapeError, "[", op, "] inner dimensions differ: a ", a.sizes(), " vs b ",
              b.sizes());
}

/// out.copy_(input broadcast to out's shape) with an `[op]` message when it does not broadcast.
void fill_from_input(Tensor out, const Tensor& input, const char* op, const char* name) {
  std::vector<int64_t> shape = out.sizes().vec();
  bool ok = input.dim() <= out.dim();
  for (int64_t i = 0; ok && i < input.dim(); ++i) {
    int64_t have = input.size(input.dim() - 1 - i), want = shape[shape.size() - 1 - i];
    ok = have == want || have == 1;
  }
  EMBER_CHECK(ok, ShapeError, "[", op, "] ", name, " of shape ", input.sizes(),
              " cannot be broadcast to ", out.sizes());
  out.copy_(input.expand(shape));
}

Tensor dot_impl(const Tensor& a, const Tensor& b, const char* op) {
  EMBER_CHECK(a.size(0) == b.size(0), ShapeError, "[", op, "] inner dimensions differ: a ",
              a.sizes(), " vs b ", b.sizes());
  Tensor out = make_tensor({}, a.dtype(), a.device(), op);
  const int64_t K = a.size(0);
  // (1, 1, K) x (1, K, 1) -> (1, 1, 1)
  Tensor a3 = make_view(a, {1, 1, K}, {0, 0, a.stride(0)}, a.storage_offset());
  Tensor b3 = make_view(b, {1, K, 1}, {0, b.stride(0), 0}, b.storage_offset());
  Tensor o3 = make_view(out, {1, 1, 1}, {0, 0, 0}, 0);
  launch_gemm(o3, a3, b3, 1, 0);
  return out;
}


/// The gradient of a saved operand, or undefined when it does not require grad (skips a gemm).
bool wants(const Tensor& t) { return t.defined() && t.requires_grad(); }

/// matmul's backward over the broadcast batch: dA = dY @ B^T, dB = A^T @ dY, with 1-D operands
/// promoted as in the forward and their unit dim dropped again. Gradients keep the broadcast batch
/// shape; the engine sums them to each input's shape.
Grads matmul_backward(const Tensor& a, const Tensor& b, const Tensor& dy) {
  const int64_t da = a.dim(), db = b.dim();
  if (da == 1 && db == 1) return Grads{wants(a) ? dy * b : Tensor(), wants(b) ? dy * a : Tensor()};
  const Tensor a2 = da == 1 ? a.unsqueeze(0) : a;  // (batch_a..., M, K)
  const Tensor b2 = db == 1 ? b.unsqueeze(1) : b;  // (batch_b..., K, N)
  Tensor g = dy;                                   // (batch..., M, N)
  if (da == 1) g = g.unsqueeze(-2);
  if (db == 1) g = g.unsqueeze(-1);
  Tensor ga, gb;
  if (wants(a)) {
    ga = matmul(g, b2.transpose(-1, -2));  // (batch..., M, K)
    if (da == 1) ga = ga.squeeze(-2);
  }
  if (wants(b)) {
    if (b2.dim() == 2 && g.dim() > 2) {
      // b shared by every batch: fold the batch into M, one (K, batch * M) x (batch * M, N).
      const int64_t K = a2.size(-1), N = g.size(-1);
      gb = mm(a2.reshape({-1, K}).t(), g.reshape({-1, N}));
    } else {
      gb = matmul(a2.transpose(-1, -2), g);  // (batch..., K, N)
    }
    if (db == 1) gb = gb.squeeze(-1);
  }
  return Grads{ga, gb};
}

/// t scaled by a coefficient, skipping the multiply when it is 1.
Tensor scaled(const Tensor& t, double c) { return c == 1.0 ? t : t * c; }

}  // namespace

// ---- forwards (grad mode off) ----

namespace {

Tensor matmul_forward(const Tensor& a, const Tensor& b) {
  check_operands(a, b, "matmul");
  const int64_t da = a.dim(), db = b.dim();
  EMBER_CHECK(da >= 1 && db >= 1, ShapeError,
              "[matmul] both arguments need at least 1 dimension, got a ", a.sizes(), " and b ",
              b.sizes());
  if (da == 1 && db == 1) return dot_impl(a, b, "matmul");
  check_inner(a, b, a.size(-1), db == 1 ? b.size(0) : b.size(-2), "matmul");

  // Promote 1-D operands: a (K,) -> (1, K), b (K,) -> (K, 1); the added dims are dropped below.
  const Tensor a2 = da == 1 ? a.unsqueeze(0) : a;  // (batch_a..., M, K)
  const Tensor b2 = db == 1 ? b.unsqueeze(1) : b;  // (batch_b..., K, N)
  const IntArrayRef sa = a2.sizes(), sb = b2.sizes();
  const std::vector<int64_t> batch_a(sa.begin(), sa.end() - 2), batch_b(sb.begin(), sb.end() - 2);
  const size_t nb = std::max(batch_a.size(), batch_b.size());
  for (size_t i = 0; i < nb; ++i) {
    int64_t x = i < nb - batch_a.size() ? 1 : batch_a[i - (nb - batch_a.size())];
    int64_t y = i < nb - batch_b.size() ? 1 : batch_b[i - (nb - batch_b.size())];
    EMBER_CHECK(x == y || x == 1 || y == 1, ShapeError,
                "[matmul] batch dimensions cannot be broadcast: a ", a.sizes(), " vs b ",
                b.sizes());
  }
  const std::vector<int64_t> batch = broadcast_shapes(batch_a, batch_b, "matmul");
  const int64_t M = a2.size(-2), K = a2.size(-1), N = b2.size(-1);

  std::vector<int64_t> full = batch, shape_a = batch, shape_b = batch, result = batch;
  full.insert(full.end(), {M, N});
  shape_a.insert(shape_a.end(), {M, K});
  shape_b.insert(shape_b.end(), {K, N});
  if (da > 1) result.push_back(M);
  if (db > 1) result.push_back(N);

  Tensor out = make_tensor(result, a.dtype(), a.device(), "matmul");
  gemm_batched(out.view(full), a2.expand(shape_a), b2.expand(shape_b), 1, 0);
  return out;
}

Tensor mm_forward(const Tensor& a, const Tensor& b, DType out_dtype) {
  check_operands(a, b, "mm");
  check_out_dtype(a.dtype(), out_dtype, "mm");
  EMBER_CHECK(a.dim() == 2 && b.dim() == 2, ShapeError, "[mm] expected 2-D matrices, got a ",
              a.sizes(), " and b ", b.sizes());
  check_inner(a, b, a.size(1), b.size(0), "mm");
  Tensor out = make_tensor({a.size(0), b.size(1)}, out_dtype, a.device(), "mm");
  gemm_batched(out, a, b, 1, 0);
  return out;
}

Tensor bmm_forward(const Tensor& a, const Tensor& b, DType out_dtype) {
  check_operands(a, b, "bmm");
  check_out_dtype(a.dtype(), out_dtype, "bmm");
  EMBER_CHECK(a.dim() == 3 && b.dim() == 3, ShapeError, "[bmm] expected 3-D tensors, got a ",
              a.sizes(), " and b ", b.sizes());
  EMBER_CHECK(a.size(0) == b.size(0), ShapeError, "[bmm] batch sizes differ: a ", a.sizes(),
              " vs b ", b.sizes());
  check_inner(a, b, a.size(2), b.size(1), "bmm");
  Tensor out = make_tensor({a.size(0), a.size(1), b.size(2)}, out_dtype, a.device(), "bmm");
  launch_gemm(out, a, b, 1, 0);
  return out;
}

/// addmm/baddbmm's (batches, M, N) product with beta == 1 on CUDA under Ember's kernels: input
/// as the tensor-core GEMM's fused bias (a row of N, a Linear's bias) or residual (out's shape),
/// read once in the epilogue instead of copied into out and read back. False, out untouched,
/// when it does not apply or the kernel declines the layout.
bool fused_input(const Tensor& out3, const Tensor& input, const Tensor& a3, const Tensor& b3,
                 Scalar beta, Scalar alpha) {
  if (!out3.is_cuda() || cuda::backend() != cuda::Backend::kEmber || input.dtype() != out3.dtype())
    return false;
  if (beta.to<double>() != 1.0 || !is_floating(out3.dtype())) return false;
  GemmEpilogue e;
  e.alpha = alpha.to<double>();
  const int64_t N = out3.size(2);
  if (input.dim() == 1 && input.size(0) == N)
    e.bias = input;
  else if (input.sizes() == out3.sizes())
    e.residual = input;
  else if (input.dim() == 2 && input.size(0) == out3.size(1) && input.size(1) == N)
    e.residual = input.unsqueeze(0).expand(out3.sizes());  // one matrix for every batch
  else
    return false;
  return cuda::gemm_tc(out3, a3, b3, e);
}

Tensor addmm_forward(const Tensor& input, const Tensor& a, const Tensor& b, Scalar beta,
                     Scalar alpha, DType out_dtype) {
  check_operands(a, b, "addmm");
  check_out_dtype(a.dtype(), out_dtype, "addmm");
  check_defined(input, "addmm", "input");
  check_input(input, a, "addmm", "input", out_dtype);
  check_coefficients(a.dtype(), alpha, beta, "addmm");
  EMBER_CHECK(a.dim() == 2 && b.dim() == 2, ShapeError, "[addmm] expected 2-D matrices, got a ",
              a.sizes(), " and b ", b.sizes());
  check_inner(a, b, a.size(1), b.size(0), "addmm");
  Tensor out = make_tensor({a.size(0), b.size(1)}, out_dtype, a.device(), "addmm");
  if (fused_input(out.unsqueeze(0), input, a.unsqueeze(0), b.unsqueeze(0), beta, alpha)) return out;
  // Checks the input's shape even when beta == 0 (which then ignores its values), like PyTorch.
  fill_from_input(out, input, "addmm", "input");
  gemm_batched(out, a, b, alpha, beta);
  return out;
}

Tensor baddbmm_forward(const Tensor& input, const Tensor& a, const Tensor& b, Scalar beta,
                       Scalar alpha, DType out_dtype) {
  check_operands(a, b, "baddbmm");
  check_out_dtype(a.dtype(), out_dtype, "baddbmm");
  check_defined(input, "baddbmm", "input");
  check_input(input, a, "baddbmm", "input", out_dtype);
  check_coefficients(a.dtype(), alpha, beta, "baddbmm");
  EMBER_CHECK(a.dim() == 3 && b.dim() == 3, ShapeError, "[baddbmm] expected 3-D tensors, got a ",
              a.sizes(), " and b ", b.sizes());
  EMBER_CHECK(a.size(0) == b.size(0), ShapeError, "[baddbmm] batch sizes differ: a ", a.sizes(),
              " vs b ", b.sizes());
  check_inner(a, b, a.size(2), b.size(1), "baddbmm");
  Tensor out = make_tensor({a.size(0), a.size(1), b.size(2)}, out_dtype, a.device(), "baddbmm");
  if (fused_input(out, input, a, b, beta, alpha)) return out;
  fill_from_input(out, input, "baddbmm", "input");
  launch_gemm(out, a, b, alpha, beta);
  return out;
}

Tensor outer_forward(const Tensor& a, const Tensor& b) {
  check_defined(a, "outer", "a");
  check_defined(b, "outer", "b");
  check_same_device({&a, &b}, "outer");
  EMBER_CHECK(a.dim() == 1 && b.dim() == 1, ShapeError, "[outer] expected 1-D tensors, got a ",
              a.sizes(), " and b ", b.sizes());
  // outer(a, b) is a[:, None] * b[None, :], so it promotes like mul (bool x bool stays bool).
  const DType dt = promote_types(a.dtype(), b.dtype());
  const DType compute = dt == kBool ? kUInt8 : dt;
  const Tensor ac = a.to(compute), bc = b.to(compute);
  Tensor out = make_tensor({a.size(0), b.size(0)}, compute, a.device(), "outer");
  // (M, 1) x (1, N): one product per element, exact.
  gemm_batched(out, ac.unsqueeze(1), bc.unsqueeze(0), 1, 0);
  return dt == kBool ? out.to(kBool) : out;
}

Tensor dot_forward(const Tensor& a, const Tensor& b) {
  check_operands(a, b, "dot");
  EMBER_CHECK(a.dim() == 1 && b.dim() == 1, ShapeError, "[dot] expected 1-D tensors, got a ",
              a.sizes(), " and b ", b.sizes());
  return dot_impl(a, b, "dot");
}

Tensor linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_operands(x, weight, "linear");
  EMBER_CHECK(weight.dim() == 2, ShapeError,
              "[linear] expected a 2-D weight (out_features, "
              "in_features), got ",
              weight.sizes());
  EMBER_CHECK(x.dim() >= 1, ShapeError,
              "[linear] expected an input with at least 1 dimension, "
              "got ",
              x.sizes());
  EMBER_CHECK(x.size(-1) == weight.size(1), ShapeError, "[linear] input features differ: x ",
              x.sizes(), " vs weight ", weight.sizes());
  if (bias.defined()) check_input(bias, x, "linear", "bias");
  const int64_t K = weight.size(1), N = weight.size(0);
  std::vector<int64_t> result = x.sizes().vec();
  result.back() = N;
  Tensor out = make_tensor(result, x.dtype(), x.device(), "linear");

  // x (lead..., K) as (batch..., M, K) against weight^T (K, N) shared by every batch.
  const Tensor a = x.dim() == 1 ? x.unsqueeze(0) : x;
  std::vector<int64_t> shape_b(a.sizes().begin(), a.sizes().end() - 2);
  std::vector<int64_t> full = shape_b;
  shape_b.insert(shape_b.end(), {K, N});
  full.insert(full.end(), {a.size(-2), N});
  // On CUDA the tensor-core GEMM adds the bias in its epilogue (addmm's fused input): one pass
  // over out instead of a broadcast fill and a read-modify-write (declined layouts take the path
  // below).
  if (bias.defined() && x.is_cuda()) {
    const Tensor a3 = x.reshape({1, -1, K});
    if (fused_input(out.view({1, a3.size(1), N}), bias, a3, weight.t().unsqueeze(0), 1, 1))
      return out;
  }
  if (bias.defined()) fill_from_input(out, bias, "linear", "bias");
  gemm_batched(out.view(full), a, weight.t().expand(shape_b), 1, bias.defined() ? 1 : 0);
  return out;
}

}  // namespace

// ---- ops ----

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, a, b))
    return autocast_call(*dt, &matmul, a, b);
  Tensor out = forward_no_grad([&] { return matmul_forward(a, b); });
  if (is_floating(out.dtype()))
    autograd::record("matmul", {a, b}, out, {a, b}, [](const Saved& s, const Tensor& dy) {
      return matmul_backward(s[0], s[1], dy);
    });
  return out;
}

namespace {

/// dY of a product asked for in another dtype (out_dtype), as the operands' dtype: the backward
/// multiplies in the operands' precision, as the plain op's does.
Tensor grad_as(const Tensor& dy, DType operands) {
  return dy.dtype() == operands ? dy : dy.to(operands);
}

/// Records the node of out = beta input + alpha (a @ b): mm and bmm (input undefined), addmm and
/// baddbmm; `batched` picks bmm over mm for the gradients dA = dY B^T, dB = A^T dY (times
/// alpha; d input = beta dY, which the engine sums to input's shape).
void record_product(const char* op, bool batched, const Tensor& input, const Tensor& a,
                    const Tensor& b, const Tensor& out, double beta, double alpha) {
  if (!is_floating(out.dtype())) return;
  const bool has_input = input.defined();
  const bool need_input = wants(input);  // skips the beta * dY multiply otherwise
  auto fn = [batched, has_input, need_input, beta, alpha](const Saved& s, const Tensor& dy_out) {
    const Tensor dy = grad_as(dy_out, s[0].dtype());
    auto product = [batched](const Tensor& x, const Tensor& y) {
      return batched ? bmm(x, y) : mm(x, y);
    };
    const Tensor ga = wants(s[0]) ? scaled(product(dy, s[1].transpose(-2, -1)), alpha) : Tensor();
    const Tensor gb = wants(s[1]) ? scaled(product(s[0].transpose(-2, -1), dy), alpha) : Tensor();
    if (!has_input) return Grads{ga, gb};
    return Grads{need_input ? scaled(dy_out, beta) : Tensor(), ga, gb};
  };
  if (has_input)
    autograd::record(op, {input, a, b}, out, {a, b}, fn);
  else
    autograd::record(op, {a, b}, out, {a, b}, fn);
}

// The public overloads as plain function pointers, for autocast_call.
using Mm = Tensor (*)(const Tensor&, const Tensor&);
using MmAs = Tensor (*)(const Tensor&, const Tensor&, DType);
using Addmm = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, Scalar, Scalar);
using AddmmAs = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, DType, Scalar, Scalar);

}  // namespace

Tensor mm(const Tensor& a, const Tensor& b) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, a, b))
    return autocast_call(*dt, static_cast<Mm>(&mm), a, b);
  check_defined(a, "mm", "a");
  return mm(a, b, a.dtype());
}

Tensor mm(const Tensor& a, const Tensor& b, DType out_dtype) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, a, b))
    return autocast_call(*dt, static_cast<MmAs>(&mm), a, b, out_dtype);
  Tensor out = forward_no_grad([&] { return mm_forward(a, b, out_dtype); });
  record_product("mm", false, Tensor(), a, b, out, 0, 1);
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, a, b))
    return autocast_call(*dt, static_cast<Mm>(&bmm), a, b);
  check_defined(a, "bmm", "a");
  return bmm(a, b, a.dtype());
}

Tensor bmm(const Tensor& a, const Tensor& b, DType out_dtype) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, a, b))
    return autocast_call(*dt, static_cast<MmAs>(&bmm), a, b, out_dtype);
  Tensor out = forward_no_grad([&] { return bmm_forward(a, b, out_dtype); });
  record_product("bmm", true, Tensor(), a, b, out, 0, 1);
  return out;
}

Tensor addmm(const Tensor& input, const Tensor& a, const Tensor& b, Scalar beta, Scalar alpha) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, input, a, b))
    return autocast_call(*dt, static_cast<Addmm>(&addmm), input, a, b, beta, alpha);
  check_defined(a, "addmm", "a");
  return addmm(input, a, b, a.dtype(), beta, alpha);
}

Tensor addmm(const Tensor& input, const Tensor& a, const Tensor& b, DType out_dtype, Scalar beta,
             Scalar alpha) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, input, a, b))
    return autocast_call(*dt, static_cast<AddmmAs>(&addmm), input, a, b, out_dtype, beta, alpha);
  Tensor out = forward_no_grad([&] { return addmm_forward(input, a, b, beta, alpha, out_dtype); });
  record_product("addmm", false, input, a, b, out, beta.to<double>(), alpha.to<double>());
  return out;
}

Tensor baddbmm(const Tensor& input, const Tensor& a, const Tensor& b, Scalar beta, Scalar alpha) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, input, a, b))
    return autocast_call(*dt, static_cast<Addmm>(&baddbmm), input, a, b, beta, alpha);
  check_defined(a, "baddbmm", "a");
  return baddbmm(input, a, b, a.dtype(), beta, alpha);
}

Tensor baddbmm(const Tensor& input, const Tensor& a, const Tensor& b, DType out_dtype, Scalar beta,
               Scalar alpha) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, input, a, b))
    return autocast_call(*dt, static_cast<AddmmAs>(&baddbmm), input, a, b, out_dtype, beta, alpha);
  Tensor out =
      forward_no_grad([&] { return baddbmm_forward(input, a, b, beta, alpha, out_dtype); });
  record_product("baddbmm", true, input, a, b, out, beta.to<double>(), alpha.to<double>());
  return out;
}

Tensor outer(const Tensor& a, const Tensor& b) {
  Tensor out = forward_no_grad([&] { return outer_forward(a, b); });
  if (is_floating(out.dtype()))
    // out = a[:, None] * b[None, :]: dA = dY @ b, dB = a @ dY (operands cast to the result dtype).
    autograd::record("outer", {a, b}, out, {a, b}, [](const Saved& s, const Tensor& dy) {
      auto as = [&](const Tensor& t) { return t.dtype() == dy.dtype() ? t : t.to(dy.dtype()); };
      return Grads{wants(s[0]) ? matmul(dy, as(s[1])) : Tensor(),
                   wants(s[1]) ? matmul(as(s[0]), dy) : Tensor()};
    });
  return out;
}

Tensor dot(const Tensor& a, const Tensor& b) {
  Tensor out = forward_no_grad([&] { return dot_forward(a, b); });
  if (is_floating(out.dtype()))
    autograd::record("dot", {a, b}, out, {a, b}, [](const Saved& s, const Tensor& dy) {
      return Grads{wants(s[0]) ? dy * s[1] : Tensor(), wants(s[1]) ? dy * s[0] : Tensor()};
    });
  return out;
}

namespace {

/// Whether x @ weight^T (+ bias, when defined) is a product the fused tensor-core epilogues take:
/// CUDA under Ember's backend, weight (N, K) and x (..., K) of one dtype and device, bias
/// undefined or (N) of x's dtype and device.
bool tc_linear_operands(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (!x.defined() || !weight.defined() || !x.is_cuda() || cuda::backend() != cuda::Backend::kEmber)
    return false;
  if (weight.dim() != 2 || x.dim() < 1 || x.size(-1) != weight.size(1) ||
      weight.dtype() != x.dtype() || weight.device() != x.device())
    return false;
  return !bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0) &&
                             bias.dtype() == x.dtype() && bias.device() == x.device());
}

/// act(x @ weight^T + bias) from one tensor-core GEMM with the bias and the activation in its
/// epilogue (CUDA, Ember's backend, bias defined, one dtype), and the pre-activation when
/// keep_pre (GELU's backward needs it; ReLU's reads the output); undefined tensors when that does
/// not apply or the kernel declines the layout.
std::pair<Tensor, Tensor> linear_act_fused(const Tensor& x, const Tensor& weight,
                                           const Tensor& bias, GemmAct act, bool keep_pre,
                                           const char* op) {
  if (!bias.defined() || !tc_linear_operands(x, weight, bias)) return {};
  const int64_t K = weight.size(1), N = weight.size(0);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = N;
  NoGradGuard no_grad;
  Tensor out = make_tensor(shape, x.dtype(), x.device(), op);
  Tensor pre = keep_pre ? make_tensor(shape, x.dtype(), x.device(), op) : Tensor();
  const Tensor a3 = x.reshape({1, -1, K});
  GemmEpilogue e;
  e.bias = bias;
  e.act = act;
  if (keep_pre) e.pre_act = pre.view({1, a3.size(1), N});
  if (!cuda::gemm_tc(out.view({1, a3.size(1), N}), a3, weight.t().unsqueeze(0), e)) return {};
  return {out, pre};
}

/// linear's gradients for dH (the gradient at x @ weight^T + bias), differentiable again.
Grads linear_grads(const Tensor& x, const Tensor& w, const Tensor& dh) {
  const int64_t N = w.size(0), K = w.size(1);
  return Grads{wants(x) ? matmul(dh, w) : Tensor(),
               wants(w) ? mm(dh.reshape({-1, N}).t(), x.reshape({-1, K})) : Tensor(), dh};
}

}  // namespace

Tensor linear_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias,
                   const std::string& approximate) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, x, weight, bias))
    return autocast_call(*dt, &linear_gelu, x, weight, bias, approximate);
  EMBER_CHECK(approximate == "none" || approximate == "tanh", ValueError,
              "[linear_gelu] approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
  const bool tanh_form = approximate == "tanh";
  auto [out, pre] = linear_act_fused(
      x, weight, bias, tanh_form ? GemmAct::kGeluTanh : GemmAct::kGelu, true, "linear_gelu");
  if (!out.defined()) return gelu(linear(x, weight, bias), approximate);
  // dH = dY gelu'(H) from the saved pre-activation, then linear's gradients. Under create_graph
  // the composite is differentiated instead (pre is not connected to x and weight).
  autograd::record(
      "linear_gelu", {x, weight, bias}, out, {x, weight, bias, pre},
      [tanh_form, approximate](const Saved& s, const Tensor& dy) {
        if (autograd::is_grad_enabled())
          return autograd::composite_grads(
              [&](const Saved& in) { return gelu(linear(in[0], in[1], in[2]), approximate); }, s,
              dy, 3);
        return linear_grads(s[0], s[1], detail::gelu_backward(dy, s[3], tanh_form));
      });
  return out;
}

Tensor linear_relu(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, x, weight, bias))
    return autocast_call(*dt, &linear_relu, x, weight, bias);
  const Tensor out = linear_act_fused(x, weight, bias, GemmAct::kRelu, false, "linear_relu").first;
  if (!out.defined()) return relu(linear(x, weight, bias));
  // relu's backward from the output (no gradient where it is <= 0), then linear's; both
  // differentiable again, so create_graph needs no recomputation.
  autograd::record("linear_relu", {x, weight, bias}, out, {x, weight, out},
                   [](const Saved& s, const Tensor& dy) {
                     return linear_grads(s[0], s[1], detail::relu_grad(dy, s[2]));
                   });
  return out;
}

namespace {

/// residual + x @ weight^T + bias from one tensor-core GEMM with the bias and the residual in its
/// epilogue, written in the residual's dtype (x's, or float32 for 16-bit x: the output cast):
/// CUDA, Ember's backend, x and weight of one dtype, bias undefined or (N) of x's dtype, the
/// residual of the result's shape. Undefined when that does not apply or the kernel declines the
/// layout.
Tensor linear_residual_fused(const Tensor& x, const Tensor& weight, const Tensor& bias,
                             const Tensor& residual) {
  if (!tc_linear_operands(x, weight, bias) || residual.device() != x.device()) return {};
  const int64_t K = weight.size(1), N = weight.size(0);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = N;
  const DType od = residual.dtype();
  if (residual.sizes() != IntArrayRef(shape) ||
      (od != x.dtype() && !(od == kFloat32 && is_reduced_float(x.dtype()))))
    return {};
  NoGradGuard no_grad;
  Tensor out = make_tensor(shape, od, x.device(), "linear_residual");
  const Tensor a3 = x.reshape({1, -1, K});
  GemmEpilogue e;
  if (bias.defined()) e.bias = bias.to(od);  // the epilogue's bias has out's dtype
  e.residual = residual.reshape({1, a3.size(1), N});
  if (!cuda::gemm_tc(out.view({1, a3.size(1), N}), a3, weight.t().unsqueeze(0), e)) return {};
  return out;
}

}  // namespace

Tensor linear_residual(const Tensor& x, const Tensor& weight, const Tensor& bias,
                       const Tensor& residual) {
  // autocast: x, weight and bias as linear's; the residual keeps its dtype.
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, x, weight, bias)) {
    autocast_detail::Suspend off;
    return linear_residual(autocast_detail::cast(x, *dt), autocast_detail::cast(weight, *dt),
                           autocast_detail::cast(bias, *dt), residual);
  }
  check_defined(residual, "linear_residual", "residual");
  const Tensor out = linear_residual_fused(x, weight, bias, residual);
  if (!out.defined()) {
    Tensor h = linear(x, weight, bias);
    EMBER_CHECK(broadcast_shapes(residual.sizes(), h.sizes(), "linear_residual") == h.sizes(),
                ShapeError, "[linear_residual] residual of shape ", residual.sizes(),
                " does not broadcast to the result's shape ", h.sizes());
    return residual + h;
  }
  // The composite's gradients: dY for the residual; dY in x's dtype (as the add's backward gives
  // the product) through linear's gradients. Differentiable again.
  autograd::record("linear_residual", {x, weight, bias, residual}, out, {x, weight},
                   [](const Saved& s, const Tensor& dy) {
                     Grads g = linear_grads(s[0], s[1], grad_as(dy, s[0].dtype()));
                     g.push_back(dy);
                     return g;
                   });
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kLower, x, weight, bias))
    return autocast_call(*dt, &linear, x, weight, bias);
  Tensor out = forward_no_grad([&] { return linear_forward(x, weight, bias); });
  if (is_floating(out.dtype())) {
    // out = x @ W^T + b: dX = dY @ W; dW = dY^T @ x over all leading dims; db = dY (the engine
    // sums it to b's shape).
    autograd::record("linear", {x, weight, bias}, out, {x, weight},
                     [](const Saved& s, const Tensor& dy) { return linear_grads(s[0], s[1], dy); });
  }
  return out;
}

}  // namespace ember
