// Normalization functionals (include/ember/nn/functional/normalization.hpp): batch_norm,
// layer_norm, group_norm, rms_norm, normalize. Each is a composite of differentiable ops: the
// statistics are part of the graph, so autograd yields the usual normalization backward (and its
// derivatives). float16 / bfloat16 inputs are computed in float32 and rounded back at the end.
//
// layer_norm and training-mode batch_norm on float32/float64 inputs run fused kernels instead
// (src/core/cpu/normalization.cpp, src/cuda/normalization.cu), recorded as one node each; both
// also on float16/bfloat16 inputs, computed in float32 by the same kernels (the 16-bit
// activations of a convolution under autocast, a model kept in bfloat16: no float32 copy, no
// chain of composite ops); the composites stay as
// layer_norm_reference and batch_norm_reference, which the tests compare them with. The fused
// backward kernels are first-order only. The engine runs a backward with grad mode on exactly
// under create_graph=true; the node then recomputes the composite at its saved inputs and
// differentiates that (as the fused attention op does), so higher-order gradients are the
// composite's.
#include "ember/nn/functional/normalization.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <vector>

#include "core/autocast.hpp"
#include "core/dispatch.hpp"
#include "core/kernels.hpp"
#include "core/record.hpp"
#include "core/tensor_impl.hpp"
#include "ember/autograd.hpp"
#include "ember/ops.hpp"

namespace ember::nn::functional {

namespace {

void check_input(const Tensor& input, const char* op) {
  EMBER_CHECK(input.defined(), ValueError, "[", op, "] input is an undefined tensor");
  EMBER_CHECK(is_floating(input.dtype()), DTypeError, "[", op, "] expected a floating input, got ",
              input.dtype());
}

/// A per-channel parameter (C,) or undefined.
void check_channel_param(const Tensor& p, int64_t C, const Tensor& input, const char* op,
                         const char* what) {
  if (!p.defined()) return;
  EMBER_CHECK(is_floating(p.dtype()), DTypeError, "[", op, "] expected a floating ", what, ", got ",
              p.dtype());
  EMBER_CHECK(p.dim() == 1 && p.size(0) == C, ShapeError, "[", op, "] ", what, " of shape ",
              p.sizes(), " must be (", C, ",) for input of shape ", input.sizes());
}

/// (1, C, 1, ..., 1) with input's rank: a per-channel tensor broadcast over the rest.
std::vector<int64_t> channel_shape(const Tensor& input) {
  std::vector<int64_t> s(static_cast<size_t>(input.dim()), 1);
  s[1] = input.size(1);
  return s;
}

/// y * weight + bias, each optional, already viewed to broadcast against y.
Tensor affine(Tensor y, const Tensor& weight, const Tensor& bias) {
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

/// The trailing `normalized_shape` dims of input, checked; returns their (negative) dims.
std::vector<int64_t> trailing_dims(const Tensor& input, IntArrayRef normalized_shape,
                                   const char* op) {
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  EMBER_CHECK(k >= 1, ShapeError, "[", op, "] normalized_shape must name at least one dim, got ()");
  bool ok = input.dim() >= k;
  for (int64_t i = 0; ok && i < k; ++i)
    ok = input.size(input.dim() - k + i) == normalized_shape[static_cast<size_t>(i)];
  EMBER_CHECK(ok, ShapeError, "[", op, "] normalized_shape ", normalized_shape,
              " does not match the last dims of input of shape ", input.sizes());
  std::vector<int64_t> dims;
  for (int64_t i = -k; i < 0; ++i) dims.push_back(i);
  return dims;
}

void check_shaped_param(const Tensor& p, IntArrayRef normalized_shape, const char* op,
                        const char* what) {
  if (!p.defined()) return;
  EMBER_CHECK(is_floating(p.dtype()), DTypeError, "[", op, "] expected a floating ", what, ", got ",
              p.dtype());
  EMBER_CHECK(p.sizes() == normalized_shape, ShapeError, "[", op, "] ", what, " of shape ",
              p.sizes(), " must equal normalized_shape ", normalized_shape);
}

/// (x - mean) / sqrt(var + eps) over dims, biased variance, with the statistics in the graph.
Tensor standardize(const Tensor& x, IntArrayRef dims, double eps) {
  Tensor centered = x - x.mean(dims, /*keepdim=*/true);
  Tensor var = square(centered).mean(dims, /*keepdim=*/true);
  return centered * rsqrt(var + eps);
}

/// The running statistics update of training-mode batch_norm, from the batch mean and biased
/// variance (C,) of `count` values per channel.
void update_running_stats(const Tensor& running_mean, const Tensor& running_var,
                          const Tensor& mean, const Tensor& var, int64_t count, double momentum) {
  NoGradGuard no_grad;
  // The running variance is unbiased (n / (n - 1)), as PyTorch. Blended in float64, then copied
  // into the buffers in their own dtype.
  const double n = static_cast<double>(count);
  Tensor m = mean.to(kFloat64);
  Tensor v = var.to(kFloat64) * (n / (n - 1.0));
  Tensor rm = running_mean, rv = running_var;
  rm.copy_(rm.to(kFloat64) * (1.0 - momentum) + m * momentum);
  rv.copy_(rv.to(kFloat64) * (1.0 - momentum) + v * momentum);
}

// ---- fused layer_norm / batch_norm (float32 / float64, CPU or CUDA) ----

using autograd::composite_grads;
using autograd::Grads;
using autograd::Saved;

/// t is undefined or on `device` (the fused kernels take every tensor on one device).
bool on(const Tensor& t, Device device) { return !t.defined() || t.device() == device; }

/// A parameter as the fused node takes it: in the input's dtype (the composite converts it the
/// same way) and contiguous; both steps differentiable, recorded before the node.
Tensor fused_param(const Tensor& p, DType dtype) {
  if (!p.defined()) return p;
  return (p.dtype() == dtype ? p : p.to(dtype)).contiguous();
}

/// An output gradient as the fused backward kernels take it: x's dtype and layout (contiguous,
/// or channels-last for a channels-last x).
Tensor kernel_grad(const Tensor& dy, const Tensor& x) {
  return (dy.dtype() == x.dtype() ? dy : dy.to(x.dtype())).contiguous(x.suggest_memory_format());
}

/// An uninitialized gradient for saved input t when t requires one, in t's layout, else
/// undefined (the kernel then skips it).
Tensor grad_slot(const Tensor& t) {
  return t.defined() && t.requires_grad()
             ? empty(t.sizes(), TensorOptions(t.dtype()).device(t.device()),
                     t.suggest_memory_format())
             : Tensor();
}

using NormBackward = void (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, const Tensor&, const Tensor&, const Tensor&);

/// Records a fused normalization node whose first n_inputs saved tensors are its inputs (saved[0]
/// the normalized x): first order, `kernel(saved, dy)` with dy as the kernels take it (x's dtype,
/// device and layout) returns the inputs' gradients; under create_graph, the gradients of
/// `composite(saved)`, recorded (differentiable again).
template <class Composite, class Kernel>
void record_fused(const char* op, const Tensor& y, std::vector<Tensor> saved, size_t n_inputs,
                  Composite composite, Kernel kernel) {
  std::vector<Tensor> inputs(saved.begin(), saved.begin() + static_cast<std::ptrdiff_t>(n_inputs));
  autograd::record(op, inputs, y, std::move(saved),
                   [composite, kernel, n_inputs](const Saved& s, const Tensor& dy) {
                     if (autograd::is_grad_enabled())
                       return composite_grads(composite, s, dy, n_inputs);
                     return kernel(s, kernel_grad(on_device(dy, s[0].device()), s[0]));
                   });
}

/// record_fused for saved = {x, weight, bias, statistic, statistic}: the kernel's backward
/// `backward(dx, dw, db, dy, x, s3, s4, weight)` (cpu_backward or cuda_backward by x's device).
template <class Composite>
void record_fused_norm(const char* op, const Tensor& y, std::vector<Tensor> saved,
                       Composite composite, NormBackward cpu_backward, NormBackward cuda_backward) {
  record_fused(op, y, std::move(saved), 3, composite,
               [cpu_backward, cuda_backward](const Saved& s, const Tensor& dy) {
                 Tensor dx = grad_slot(s[0]), dw = grad_slot(s[1]), db = grad_slot(s[2]);
                 launch(s[0].device(), cpu_backward, cuda_backward, dx, dw, db, dy, s[0], s[3],
                        s[4], s[1]);
                 return Grads{dx, dw, db};
               });
}

/// layer_norm by the fused kernels. x contiguous float32/float64, or float16/bfloat16 computed in
/// float32, with at least one element, checked; weight and bias contiguous of the compute dtype
/// (opmath_dtype(x)) on x's device, or undefined. y has x's dtype, mean and rstd the compute
/// dtype.
Tensor layer_norm_fused(const Tensor& x, IntArrayRef normalized_shape, const Tensor& weight,
                        const Tensor& bias, double eps) {
  // ---- shape rule: y like x; mean, rstd (M,) over the leading dims ----
  int64_t N = 1;
  for (int64_t s : normalized_shape) N *= s;
  const int64_t M = x.numel() / N;
  const TensorOptions opts = TensorOptions(opmath_dtype(x.dtype())).device(x.device());
  Tensor y = empty(x.sizes(), TensorOptions(x.dtype()).device(x.device()));
  Tensor mean = empty({M}, opts), rstd = empty({M}, opts);
  // ---- launch ----
  launch(x.device(), cpu::layer_norm_forward, cuda::layer_norm_forward, y, mean, rstd, x, weight,
         bias, eps);
  // ---- record: the fused backward (first order), the composite's under create_graph ----
  std::vector<int64_t> shape = normalized_shape.vec();
  record_fused_norm(
      "layer_norm", y, {x, weight, bias, mean, rstd},
      [shape, eps](const Saved& in) {
        return layer_norm_reference(in[0], shape, in[1], in[2], eps);
      },
      cpu::layer_norm_backward, cuda::layer_norm_backward);
  return y;
}

/// Training-mode batch_norm by the fused kernels, the running statistics updated as the
/// composite does. x contiguous (or channels-last on CUDA, whose kernels read it as (N H W, C)
/// rows) float32/float64, or float16/bfloat16 computed in float32, with
/// more than one value per channel, checked; weight and bias contiguous of the compute dtype
/// (opmath_dtype(x)) on x's device, or undefined. y has x's dtype, the statistics the compute
/// dtype. relu (CUDA only): the result is relu(y + residual) by batch_norm_relu's kernels,
/// residual of x's sizes, dtype and memory layout, or undefined; one node "batch_norm_relu".
Tensor batch_norm_fused(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                        const Tensor& weight, const Tensor& bias, double momentum, double eps,
                        bool relu = false, const Tensor& residual = {}) {
  // ---- shape rule: y like x; mean, invstd, var (C,) ----
  const int64_t C = x.size(1);
  const TensorOptions opts = TensorOptions(opmath_dtype(x.dtype())).device(x.device());
  Tensor y =
      empty(x.sizes(), TensorOptions(x.dtype()).device(x.device()), x.suggest_memory_format());
  Tensor mean = empty({C}, opts), invstd = empty({C}, opts), var = empty({C}, opts);
  // ---- launch: the running statistics blended by the kernel when they have its dtype and
  // layout, else by update_running_stats (the same arithmetic) ----
  const int64_t count = x.numel() / C;
  const auto kernel_ready = [&](const Tensor& t) {
    return t.dtype() == mean.dtype() && t.is_contiguous() && t.device() == x.device();
  };
  RunningStats running;
  if (running_mean.defined() && kernel_ready(running_mean) && kernel_ready(running_var)) {
    running.mean = running_mean;
    running.var = running_var;
    running.momentum = momentum;
    running.unbias = static_cast<double>(count) / (static_cast<double>(count) - 1.0);
  }
  Tensor mask;  // batch_norm_relu: one bit per value of y, in memory order
  if (relu) {
    mask = empty({(x.numel() + 31) / 32}, TensorOptions(kInt32).device(x.device()));
    cuda::batch_norm_relu_forward(y, mask, mean, invstd, var, x, weight, bias, residual, eps,
                                  running);
  } else {
    launch(x.device(), cpu::batch_norm_forward, cuda::batch_norm_forward, y, mean, invstd, var, x,
           weight, bias, eps, running);
  }
  if (running.mean.defined()) {  // written in place, as copy_ would
    running_mean.bump_version();
    running_var.bump_version();
  } else if (running_mean.defined()) {
    update_running_stats(running_mean, running_var, mean, var, count, momentum);
  }
  // ---- record: the fused backward (first order), the composite's under create_graph ----
  if (relu) {
    record_fused(
        "batch_norm_relu", y, {x, weight, bias, residual, mean, invstd, mask}, 4,
        [momentum, eps](const Saved& in) {
          Tensor v =
              batch_norm_reference(in[0], {}, {}, in[1], in[2], /*training=*/true, momentum, eps);
          return ember::relu(in[3].defined() ? v + in[3] : v);
        },
        [](const Saved& s, const Tensor& dz) {
          Tensor dx = grad_slot(s[0]), dw = grad_slot(s[1]), db = grad_slot(s[2]),
                 dr = grad_slot(s[3]);
          cuda::batch_norm_relu_backward(dx, dw, db, dr, dz, s[0], s[6], s[4], s[5], s[1]);
          return Grads{dx, dw, db, dr};
        });
    return y;
  }
  record_fused_norm(
      "batch_norm", y, {x, weight, bias, mean, invstd},
      [momentum, eps](const Saved& in) {
        return batch_norm_reference(in[0], {}, {}, in[1], in[2], /*training=*/true, momentum,
                                    eps);
      },
      cpu::batch_norm_backward, cuda::batch_norm_backward);
  return y;
}

/// The layout the fused batch_norm kernels take input in: channels-last on CUDA when input is
/// laid out so (the kernels read it as (N H W, C) rows; the result keeps the layout), else
/// contiguous (on the CPU a channels-last input is copied to NCHW first).
MemoryFormat batch_norm_format(const Tensor& input) {
  return input.is_cuda() ? input.suggest_memory_format() : MemoryFormat::Contiguous;
}

/// Whether a training-mode batch_norm of these tensors can take the fused kernels: floating input
/// (N, C, ...) with more than one value per channel, every tensor on input's device.
bool batch_norm_fusable(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                        const Tensor& weight, const Tensor& bias) {
  return input.defined() && is_floating(input.dtype()) && input.dim() >= 2 && input.size(1) > 0 &&
         input.numel() / input.size(1) > 1 && on(running_mean, input.device()) &&
         on(running_var, input.device()) && on(weight, input.device()) && on(bias, input.device());
}

/// batch_norm's per-channel tensors checked against input (N, C, ...), as the composite checks
/// them: each undefined or floating (C,), the running statistics both defined or both undefined.
void check_batch_norm_params(const Tensor& input, const Tensor& running_mean,
                             const Tensor& running_var, const Tensor& weight, const Tensor& bias) {
  const char* op = "batch_norm";
  const int64_t C = input.size(1);
  check_channel_param(running_mean, C, input, op, "running_mean");
  check_channel_param(running_var, C, input, op, "running_var");
  check_channel_param(weight, C, input, op, "weight");
  check_channel_param(bias, C, input, op, "bias");
  EMBER_CHECK(running_mean.defined() == running_var.defined(), ValueError, "[", op,
              "] running_mean and running_var must both be defined or both undefined");
}

/// Whether eval-mode batch_norm of these tensors can take the eval kernel: floating input (N, C,
/// ...) with values, running statistics on its device that want no gradient, weight and bias on
/// its device or undefined.
bool batch_norm_eval_fusable(const Tensor& input, const Tensor& running_mean,
                             const Tensor& running_var, const Tensor& weight, const Tensor& bias) {
  return input.defined() && is_floating(input.dtype()) && input.dim() >= 2 && input.size(1) > 0 &&
         input.numel() > 0 && running_mean.defined() && running_var.defined() &&
         running_mean.device() == input.device() && running_var.device() == input.device() &&
         on(weight, input.device()) && on(bias, input.device()) &&
         !autograd::needs_grad({&running_mean, &running_var});
}

/// The eval kernels' per-channel mean and r = rsqrt(running_var + eps), in the compute dtype ct
/// (the composite's ops), not recorded. The mean may be the running_mean buffer itself.
std::pair<Tensor, Tensor> eval_stats(const Tensor& running_mean, const Tensor& running_var,
                                     DType ct, double eps) {
  NoGradGuard no_grad;
  return {running_mean.to(ct).contiguous(), rsqrt(running_var.to(ct) + eps).contiguous()};
}

/// Eval-mode batch_norm without gradients by one fused pass: the composite's per-channel
/// rsqrt(running_var + eps) as an op, then ((x - running_mean) r) w + b per element with the
/// composite's roundings, so the result is bitwise the composite's; with relu, batch_norm_relu's
/// relu(y + residual) in the same pass, bitwise the ops (residual of input's sizes and dtype, or
/// undefined). Arguments checked; every tensor on the input's device.
Tensor batch_norm_eval_fused(const Tensor& input, const Tensor& running_mean,
                             const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                             double eps, bool relu = false, const Tensor& residual = {}) {
  NoGradGuard no_grad;
  const DType ct = opmath_dtype(input.dtype());
  const MemoryFormat format = batch_norm_format(input);
  const Tensor x = input.contiguous(format);
  const auto [m, r] = eval_stats(running_mean, running_var, ct, eps);
  Tensor y = empty(x.sizes(), TensorOptions(input.dtype()).device(input.device()),
                   x.suggest_memory_format());
  if (relu)
    launch(x.device(), cpu::batch_norm_eval_relu, cuda::batch_norm_eval_relu, y, x, m, r,
           fused_param(weight, ct), fused_param(bias, ct),
           residual.defined() ? residual.contiguous(format) : Tensor());
  else
    launch(x.device(), cpu::batch_norm_eval, cuda::batch_norm_eval, y, x, m, r,
           fused_param(weight, ct), fused_param(bias, ct));
  return y;
}

/// Eval-mode batch_norm with a gradient wanted (input gradients of a model in eval mode,
/// fine-tuning with frozen statistics): the eval pass forward, and one node "batch_norm" whose
/// first-order backward is dx = (dy weight) r by the same eval kernel (a zero mean, weight in r's
/// place and r in weight's: the composite's order of products, so bitwise its dx) and dweight,
/// dbias by batch_norm_backward's per-channel sums at the running mean and r (its dx skipped).
/// Under create_graph the composite is differentiated. Arguments checked; every tensor on the
/// input's device; the running statistics want no gradient.
Tensor batch_norm_eval_node(const Tensor& input, const Tensor& running_mean,
                            const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                            double eps) {
  const DType ct = opmath_dtype(input.dtype());
  const Tensor x = input.contiguous(batch_norm_format(input));
  const Tensor w = fused_param(weight, ct),
               b = fused_param(bias, ct);  // recorded, as the composite
  auto [m, r] = eval_stats(running_mean, running_var, ct, eps);
  Tensor y;
  {
    NoGradGuard no_grad;
    if (m.data_ptr() == running_mean.data_ptr()) m = m.clone();  // saved apart from the buffer
    y = empty(x.sizes(), TensorOptions(input.dtype()).device(input.device()),
              x.suggest_memory_format());
    launch(x.device(), cpu::batch_norm_eval, cuda::batch_norm_eval, y, x, m, r, w, b);
  }
  record_fused(
      "batch_norm", y, {x, w, b, m, r}, 3,
      [](const Saved& in) {
        const std::vector<int64_t> shape = channel_shape(in[0]);
        const DType c = opmath_dtype(in[0].dtype());
        Tensor v = (in[0].to(c) - in[3].view(shape)) * in[4].view(shape);
        return affine(v, in[1].defined() ? in[1].view(shape) : Tensor(),
                      in[2].defined() ? in[2].view(shape) : Tensor())
            .to(in[0].dtype());
      },
      [](const Saved& s, const Tensor& dy) {
        Tensor dx = grad_slot(s[0]), dw = grad_slot(s[1]), db = grad_slot(s[2]);
        const Device device = s[0].device();
        if (dw.defined() || db.defined())
          launch(device, cpu::batch_norm_backward, cuda::batch_norm_backward, Tensor(), dw, db, dy,
                 s[0], s[3], s[4], s[1]);
        if (dx.defined()) {  // ((dy - 0) w) r, or (dy - 0) r without a weight
          const bool w = s[1].defined();
          launch(device, cpu::batch_norm_eval, cuda::batch_norm_eval, dx, dy, zeros_like(s[3]),
                 w ? s[1] : s[4], w ? s[4] : Tensor(), Tensor());
        }
        return Grads{dx, dw, db};
      });
  return y;
}

}  // namespace

// ---- batch_norm ----

Tensor batch_norm_reference(const Tensor& input, const Tensor& running_mean,
                            const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                            bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  check_input(input, op);
  EMBER_CHECK(input.dim() >= 2, ShapeError, "[", op,
              "] expected input (N, C), (N, C, L) or (N, C, H, W), got shape ", input.sizes());
  const int64_t C = input.size(1);
  check_batch_norm_params(input, running_mean, running_var, weight, bias);
  const std::vector<int64_t> shape = channel_shape(input);
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < input.dim(); ++d) dims.push_back(d);
  const DType ct = opmath_dtype(input.dtype());
  Tensor x = input.to(ct);
  Tensor y;
  if (training) {
    const int64_t count = C == 0 ? 0 : input.numel() / C;
    EMBER_CHECK(count > 1, ValueError, "[", op,
                "] expected more than 1 value per channel when training, got input of shape ",
                input.sizes());
    Tensor mean = x.mean(dims, /*keepdim=*/true);
    Tensor centered = x - mean;
    Tensor var = square(centered).mean(dims, /*keepdim=*/true);  // biased: normalizes the batch
    y = centered * rsqrt(var + eps);
    if (running_mean.defined())
      update_running_stats(running_mean, running_var, mean.detach().view({C}),
                           var.detach().view({C}), count, momentum);
  } else {
    EMBER_CHECK(running_mean.defined(), ValueError, "[", op,
                "] running_mean and running_var must be defined when training is false");
    y = (x - running_mean.to(ct).view(shape)) * rsqrt(running_var.to(ct).view(shape) + eps);
  }
  y = affine(y, weight.defined() ? weight.to(ct).view(shape) : Tensor(),
             bias.defined() ? bias.to(ct).view(shape) : Tensor());
  return y.to(input.dtype());
}

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  // The fused kernels take training mode on floating input (16-bit computed in float32, as the
  // composite does) with every tensor on one device and valid arguments; everything else (eval
  // mode, mixed devices, invalid arguments) goes to the composite, which also raises the errors.
  const bool fused = training && batch_norm_fusable(input, running_mean, running_var, weight, bias);
  // Eval mode: one pass, and where a gradient is wanted (not of the running statistics) one
  // node with the fused backward.
  if (!training && batch_norm_eval_fusable(input, running_mean, running_var, weight, bias)) {
    check_batch_norm_params(input, running_mean, running_var, weight, bias);
    // A channels-last input gives a channels-last result (the CPU kernels take NCHW: copied back).
    const bool grad = autograd::needs_grad({&input, &weight, &bias});
    return laid_out(
        grad ? batch_norm_eval_node(input, running_mean, running_var, weight, bias, eps)
             : batch_norm_eval_fused(input, running_mean, running_var, weight, bias, eps),
        input.suggest_memory_format());
  }
  if (!fused)
    return batch_norm_reference(input, running_mean, running_var, weight, bias, training, momentum,
                                eps);
  check_batch_norm_params(input, running_mean, running_var, weight, bias);
  const DType dt = opmath_dtype(input.dtype());
  return laid_out(
      batch_norm_fused(input.contiguous(batch_norm_format(input)), running_mean, running_var,
                       fused_param(weight, dt), fused_param(bias, dt), momentum, eps),
      input.suggest_memory_format());
}

Tensor batch_norm_relu(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, bool training, double momentum,
                       double eps, const Tensor& residual) {
  const char* op = "batch_norm_relu";
  check_input(input, op);
  EMBER_CHECK(!residual.defined() || residual.sizes() == input.sizes(), ShapeError, "[", op,
              "] expected residual of input's shape ", input.sizes(), ", got ", residual.sizes());
  // One fused node on CUDA in training mode, on batch_norm's conditions for its fused kernels,
  // with a residual of input's dtype on its device (or none); elsewhere the three ops.
  const bool fused = training && input.is_cuda() &&
                     batch_norm_fusable(input, running_mean, running_var, weight, bias) &&
                     (!residual.defined() ||
                      (residual.dtype() == input.dtype() && residual.device() == input.device()));
  // Eval mode where no gradient is wanted (inference, evaluation): one pass, the residual add and
  // the ReLU in batch_norm's eval kernel, on every device.
  if (!training && batch_norm_eval_fusable(input, running_mean, running_var, weight, bias) &&
      (!residual.defined() ||
       (residual.dtype() == input.dtype() && residual.device() == input.device())) &&
      !autograd::needs_grad({&input, &weight, &bias, &residual})) {
    check_batch_norm_params(input, running_mean, running_var, weight, bias);
    return laid_out(batch_norm_eval_fused(input, running_mean, running_var, weight, bias, eps,
                                          /*relu=*/true, residual),
                    input.suggest_memory_format());
  }
  if (!fused) {
    const Tensor y =
        batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps);
    return relu(residual.defined() ? y + residual : y);
  }
  check_batch_norm_params(input, running_mean, running_var, weight, bias);
  const DType dt = opmath_dtype(input.dtype());
  const MemoryFormat format = batch_norm_format(input);
  return batch_norm_fused(input.contiguous(format), running_mean, running_var,
                          fused_param(weight, dt), fused_param(bias, dt), momentum, eps,
                          /*relu=*/true,
                          residual.defined() ? residual.contiguous(format) : Tensor());
}

// ---- layer_norm / group_norm / rms_norm ----

Tensor layer_norm_reference(const Tensor& input, IntArrayRef normalized_shape,
                            const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  check_input(input, op);
  const std::vector<int64_t> dims = trailing_dims(input, normalized_shape, op);
  check_shaped_param(weight, normalized_shape, op, "weight");
  check_shaped_param(bias, normalized_shape, op, "bias");
  const DType ct = opmath_dtype(input.dtype());
  Tensor y = standardize(input.to(ct), dims, eps);
  y = affine(y, weight.defined() ? weight.to(ct) : Tensor(),
             bias.defined() ? bias.to(ct) : Tensor());
  return y.to(input.dtype());
}

Tensor layer_norm(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kFloat32, input, weight, bias))
    return autocast_call(*dt, &layer_norm, input, normalized_shape, weight, bias, eps);
  // The fused kernels take floating inputs (16-bit computed in float32) with valid arguments, at
  // least one element and every tensor on one device; everything else goes to the composite,
  // which also raises the errors.
  const bool fused = input.defined() && is_floating(input.dtype()) && input.numel() > 0 &&
                     on(weight, input.device()) && on(bias, input.device());
  if (!fused) return layer_norm_reference(input, normalized_shape, weight, bias, eps);
  const char* op = "layer_norm";
  trailing_dims(input, normalized_shape, op);
  check_shaped_param(weight, normalized_shape, op, "weight");
  check_shaped_param(bias, normalized_shape, op, "bias");
  const DType dt = opmath_dtype(input.dtype());
  return layer_norm_fused(input.contiguous(), normalized_shape, fused_param(weight, dt),
                          fused_param(bias, dt), eps);
}

Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight, const Tensor& bias,
                  double eps) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kFloat32, input, weight, bias))
    return autocast_call(*dt, &group_norm, input, num_groups, weight, bias, eps);
  const char* op = "group_norm";
  check_input(input, op);
  EMBER_CHECK(input.dim() >= 2, ShapeError, "[", op, "] expected input (N, C, *), got shape ",
              input.sizes());
  EMBER_CHECK(num_groups > 0, ValueError, "[", op, "] num_groups must be positive, got ",
              num_groups);
  const int64_t N = input.size(0), C = input.size(1);
  EMBER_CHECK(C % num_groups == 0, ShapeError, "[", op, "] the ", C, " channels of input of shape ",
              input.sizes(), " are not divisible by num_groups ", num_groups);
  check_channel_param(weight, C, input, op, "weight");
  check_channel_param(bias, C, input, op, "bias");
  const DType ct = opmath_dtype(input.dtype());
  int64_t spatial = 1;
  for (int64_t d = 2; d < input.dim(); ++d) spatial *= input.size(d);
  // (N, G, C/G * spatial): each (sample, group) row normalized on its own.
  Tensor grouped = input.to(ct).reshape({N, num_groups, C / num_groups * spatial});
  Tensor y = standardize(grouped, {2}, eps).reshape(input.sizes());
  const std::vector<int64_t> shape = channel_shape(input);
  y = affine(y, weight.defined() ? weight.to(ct).view(shape) : Tensor(),
             bias.defined() ? bias.to(ct).view(shape) : Tensor());
  return y.to(input.dtype());
}

Tensor rms_norm(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight,
                std::optional<double> eps) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kFloat32, input, weight))
    return autocast_call(*dt, &rms_norm, input, normalized_shape, weight, eps);
  const char* op = "rms_norm";
  check_input(input, op);
  const std::vector<int64_t> dims = trailing_dims(input, normalized_shape, op);
  check_shaped_param(weight, normalized_shape, op, "weight");
  const DType ct = opmath_dtype(input.dtype());
  // PyTorch's default: the epsilon of the dtype the norm is computed in (float32 for the 16-bit
  // floats, whose own epsilons would swamp small activations).
  const double e = eps.value_or(ct == kFloat64 ? std::numeric_limits<double>::epsilon()
                                               : std::numeric_limits<float>::epsilon());
  Tensor x = input.to(ct);
  Tensor y = x * rsqrt(square(x).mean(dims, /*keepdim=*/true) + e);
  if (weight.defined()) y = y * weight.to(ct);
  return y.to(input.dtype());
}

// ---- normalize ----

Tensor normalize(const Tensor& input, double p, int64_t dim, double eps) {
  const char* op = "normalize";
  check_input(input, op);
  EMBER_CHECK(p > 0.0, ValueError, "[", op, "] p must be positive, got ", p);
  const int64_t rank = std::max<int64_t>(input.dim(), 1);
  EMBER_CHECK(dim >= -rank && dim < rank, IndexError, "[", op, "] dim ", dim,
              " is out of range for input of shape ", input.sizes());
  // norm's gradient is 0 where the norm is 0, so an all-zero vector stays 0 with a finite
  // gradient.
  Tensor n = norm(input, p, {dim}, /*keepdim=*/true);
  return input / clamp_min(n, eps);
}

}  // namespace ember::nn::functional
