// Linear algebra ops: matmul (PyTorch's rules), mm, bmm, addmm, baddbmm, outer, dot, linear.
// Every op reduces to one kernel, gemm over (B, M, K) x (B, K, N) -> (B, M, N) with arbitrary
// strides: transposed operands and broadcast (stride-0) batch dimensions are handed to the kernel
// as views, never copied.
#include <algorithm>
#include <functional>
#include <optional>
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

/// Whether bias is a (N) vector of `dtype` on `device` for weight (N, K).
bool linear_bias_fits(const Tensor& bias, const Tensor& weight, DType dtype, Device device) {
  return bias.dim() == 1 && bias.size(0) == weight.size(0) && bias.dtype() == dtype &&
         bias.device() == device;
}

/// Whether x @ weight^T (+ bias, when defined) is a product the fused tensor-core epilogues take:
/// CUDA under Ember's backend, weight (N, K) and x (..., K) of one dtype and device, bias
/// undefined or (N) of x's dtype and device.
bool tc_linear_operands(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (!x.defined() || !weight.defined() || !x.is_cuda() || cuda::backend() != cuda::Backend::kEmber)
    return false;
  if (weight.dim() != 2 || x.dim() < 1 || x.size(-1) != weight.size(1) ||
      weight.dtype() != x.dtype() || weight.device() != x.device())
    return false;
  return !bias.defined() || linear_bias_fits(bias, weight, x.dtype(), x.device());
}

/// linear's gradients for dH (the gradient at x @ w^T + b) with respect to x, w_in and b_in (w
/// is w_in as the product read it): dX in dH's dtype, dW and db in w_in's and b_in's dtypes
/// (float32 from 16-bit dH by the product's output cast and a sum into float32; other dtypes
/// through the engine's cast). Differentiable again; with respect to w_in only where w is w_in.
Grads linear_grads(const Tensor& x, const Tensor& w, const Tensor& w_in, const Tensor& b_in,
                   const Tensor& dh) {
  const int64_t N = w.size(0), K = w.size(1);
  Tensor dw, db;
  if (wants(w_in)) {
    const Tensor dht = dh.reshape({-1, N}).t(), x2 = x.reshape({-1, K});
    const bool widen = w_in.dtype() == kFloat32 && is_reduced_float(dh.dtype());
    dw = widen ? mm(dht, x2, kFloat32) : mm(dht, x2);
  }
  if (wants(b_in))  // dH itself when the dtypes agree: the engine sums it to b's shape
    db = b_in.dtype() == dh.dtype() ? dh : dh.reshape({-1, N}).sum({0}, false, b_in.dtype());
  return Grads{wants(x) ? matmul(dh, w) : Tensor(), dw, db};
}

/// Records a linear-family node for out: inputs (x, w_in, b_in) and, for linear_residual, the
/// residual (whose gradient is dY); saved (x, w_in, b_in, w) and then `extra`. Its backward forms
/// dH, the gradient at the product, by dh_of(saved, dy) (dY cast to x's dtype for
/// linear_residual) and returns linear_grads. Under create_graph it differentiates
/// post(linear(x, w_in, b_in)) with the casts recorded instead, when dh_of is first-order only
/// or the weight or bias was cast (linear_grads reads the cast, which has no record).
void record_linear(const char* op, const ParamOperands& o, const Tensor& out,
                   const std::vector<Tensor>& extra, bool first_order,
                   std::function<Tensor(const Tensor&)> post,
                   std::function<Tensor(const Saved&, const Tensor&)> dh_of,
                   const Tensor& residual = {}) {
  std::vector<Tensor> inputs{o.x, o.w_in, o.b_in};
  if (residual.defined()) inputs.push_back(residual);
  std::vector<Tensor> saved{o.x, o.w_in, o.b_in, o.w};
  saved.insert(saved.end(), extra.begin(), extra.end());
  const bool composite = first_order || o.recast;
  autograd::record(
      op, inputs, out, saved,
      [composite, dt = o.autocast, with_residual = residual.defined(), post = std::move(post),
       dh_of = std::move(dh_of)](const Saved& s, const Tensor& dy_out) {
        const Tensor dy = with_residual ? grad_as(dy_out, s[0].dtype()) : dy_out;
        Grads g;
        if (composite && autograd::is_grad_enabled()) {
          g = autograd::composite_grads(
              [&](const Saved& in) {
                autocast_detail::Suspend off;
                return post(linear(in[0], autocast_detail::cast(in[1], dt),
                                   autocast_detail::cast(in[2], dt)));
              },
              s, dy, 3);
        } else {
          g = linear_grads(s[0], s[3], s[1], s[2], dh_of(s, dy));
        }
        if (with_residual) g.push_back(dy_out);
        return g;
      });
}

Tensor identity(const Tensor& h) { return h; }
Tensor dy_itself(const Saved&, const Tensor& dy) { return dy; }

/// linear on operands o (after the op's autocast step).
Tensor linear_of(const ParamOperands& o) {
  Tensor out = forward_no_grad([&] { return linear_forward(o.x, o.w, o.bias()); });
  // out = x @ W^T + b: dX = dY @ W; dW = dY^T @ x over all leading dims; db = dY summed.
  if (is_floating(out.dtype())) record_linear("linear", o, out, {}, false, identity, dy_itself);
  return out;
}

/// act(x @ weight^T + bias) from one tensor-core GEMM with the bias and the activation in its
/// epilogue (CUDA, Ember's backend, bias defined, one dtype), and the pre-activation when
/// keep_pre (GELU's backward needs it; ReLU's reads the output); undefined tensors when that does
/// not apply or the kernel declines the layout.
std::pair<Tensor, Tensor> linear_act_fused(const ParamOperands& o, GemmAct act, bool keep_pre,
                                           const char* op) {
  if (!o.b_in.defined() || !tc_linear_operands(o.x, o.w, o.bias())) return {};
  const Tensor &x = o.x, &weight = o.w;
  const int64_t K = weight.size(1), N = weight.size(0);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = N;
  NoGradGuard no_grad;
  Tensor out = make_tensor(shape, x.dtype(), x.device(), op);
  Tensor pre = keep_pre ? make_tensor(shape, x.dtype(), x.device(), op) : Tensor();
  const Tensor a3 = x.reshape({1, -1, K});
  GemmEpilogue e;
  e.bias = o.bias();
  e.act = act;
  if (keep_pre) e.pre_act = pre.view({1, a3.size(1), N});
  if (!cuda::gemm_tc(out.view({1, a3.size(1), N}), a3, weight.t().unsqueeze(0), e)) return {};
  return {out, pre};
}

}  // namespace

Tensor linear_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias,
                   const std::string& approximate) {
  EMBER_CHECK(approximate == "none" || approximate == "tanh", ValueError,
              "[linear_gelu] approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
  const ParamOperands o = param_operands(x, weight, bias);
  autocast_detail::Suspend off;
  const bool tanh_form = approximate == "tanh";
  auto [out, pre] =
      linear_act_fused(o, tanh_form ? GemmAct::kGeluTanh : GemmAct::kGelu, true, "linear_gelu");
  if (!out.defined()) return gelu(linear_of(o), approximate);
  // dH = dY gelu'(H) from the saved pre-activation (first order: under create_graph the
  // composite is differentiated, pre not being connected to x and weight).
  record_linear(
      "linear_gelu", o, out, {pre}, true,
      [approximate](const Tensor& h) { return gelu(h, approximate); },
      [tanh_form](const Saved& s, const Tensor& dy) {
        return detail::gelu_backward(dy, s[4], tanh_form);
      });
  return out;
}

Tensor linear_relu(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const ParamOperands o = param_operands(x, weight, bias);
  autocast_detail::Suspend off;
  const Tensor out = linear_act_fused(o, GemmAct::kRelu, false, "linear_relu").first;
  if (!out.defined()) return relu(linear_of(o));
  // relu's backward from the output (no gradient where it is <= 0), then linear's; both
  // differentiable again.
  record_linear(
      "linear_relu", o, out, {out}, false, [](const Tensor& h) { return relu(h); },
      [](const Saved& s, const Tensor& dy) { return detail::relu_grad(dy, s[4]); });
  return out;
}

namespace {

/// residual + x @ weight^T + bias from one tensor-core GEMM with the bias and the residual in its
/// epilogue, written in the residual's dtype (x's, or float32 for 16-bit x: the output cast):
/// CUDA, Ember's backend, x and weight of one dtype, the bias undefined or (N) of x's dtype (under
/// autocast any floating bias, cast straight to the result's dtype: a float32 bias as it is),
/// the residual of the result's shape. Undefined when that does not apply or the kernel
/// declines the layout.
Tensor linear_residual_fused(const ParamOperands& o, const Tensor& residual) {
  const Tensor &x = o.x, &weight = o.w;
  if (!tc_linear_operands(x, weight, Tensor()) || residual.device() != x.device()) return {};
  const int64_t K = weight.size(1), N = weight.size(0);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = N;
  const DType od = residual.dtype();
  if (residual.sizes() != IntArrayRef(shape) ||
      (od != x.dtype() && !(od == kFloat32 && is_reduced_float(x.dtype()))))
    return {};
  // The epilogue's bias has out's dtype.
  Tensor bias = o.autocast ? o.bias_as(od) : o.b_in;
  if (bias.defined() && !linear_bias_fits(bias, weight, o.autocast ? od : x.dtype(), x.device()))
    return {};
  NoGradGuard no_grad;
  Tensor out = make_tensor(shape, od, x.device(), "linear_residual");
  const Tensor a3 = x.reshape({1, -1, K});
  GemmEpilogue e;
  if (bias.defined()) e.bias = bias.to(od);
  e.residual = residual.reshape({1, a3.size(1), N});
  if (!cuda::gemm_tc(out.view({1, a3.size(1), N}), a3, weight.t().unsqueeze(0), e)) return {};
  return out;
}

}  // namespace

Tensor linear_residual(const Tensor& x, const Tensor& weight, const Tensor& bias,
                       const Tensor& residual) {
  check_defined(residual, "linear_residual", "residual");
  // autocast: x, weight and bias as linear's; the residual keeps its dtype.
  const ParamOperands o = param_operands(x, weight, bias);
  autocast_detail::Suspend off;
  const Tensor out = linear_residual_fused(o, residual);
  if (!out.defined()) {
    Tensor h = linear_of(o);
    EMBER_CHECK(broadcast_shapes(residual.sizes(), h.sizes(), "linear_residual") == h.sizes(),
                ShapeError, "[linear_residual] residual of shape ", residual.sizes(),
                " does not broadcast to the result's shape ", h.sizes());
    return residual + h;
  }
  // The composite's gradients: dY for the residual; dY in x's dtype (as the add's backward gives
  // the product) through linear's gradients. Differentiable again.
  record_linear("linear_residual", o, out, {}, false, identity, dy_itself, residual);
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const ParamOperands o = param_operands(x, weight, bias);
  autocast_detail::Suspend off;
  return linear_of(o);
}

}  // namespace ember
