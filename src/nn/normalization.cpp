// Normalization functionals (include/ember/nn/functional/normalization.hpp): batch_norm,
// layer_norm, group_norm, rms_norm, normalize. Each is a composite of differentiable ops: the
// statistics are part of the graph, so autograd yields the usual normalization backward (and its
// derivatives). float16 / bfloat16 inputs are computed in float32 and rounded back at the end.
#include "ember/nn/functional/normalization.hpp"

#include <algorithm>
#include <limits>
#include <vector>

#include "ember/autograd.hpp"
#include "ember/ops.hpp"

namespace ember::nn::functional {

namespace {

void check_input(const Tensor& input, const char* op) {
  EMBER_CHECK(input.defined(), ValueError, "[", op, "] input is an undefined tensor");
  EMBER_CHECK(is_floating(input.dtype()), DTypeError, "[", op, "] expected a floating input, got ",
              input.dtype());
}

/// The dtype the statistics are computed in: float32 for the 16-bit floats.
DType compute_dtype(DType t) { return is_reduced_float(t) ? kFloat32 : t; }

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

}  // namespace

// ---- batch_norm ----

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  const char* op = "batch_norm";
  check_input(input, op);
  EMBER_CHECK(input.dim() >= 2, ShapeError, "[", op,
              "] expected input (N, C), (N, C, L) or (N, C, H, W), got shape ", input.sizes());
  const int64_t C = input.size(1);
  check_channel_param(running_mean, C, input, op, "running_mean");
  check_channel_param(running_var, C, input, op, "running_var");
  check_channel_param(weight, C, input, op, "weight");
  check_channel_param(bias, C, input, op, "bias");
  EMBER_CHECK(running_mean.defined() == running_var.defined(), ValueError, "[", op,
              "] running_mean and running_var must both be defined or both undefined");
  const std::vector<int64_t> shape = channel_shape(input);
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < input.dim(); ++d) dims.push_back(d);
  const DType ct = compute_dtype(input.dtype());
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
    if (running_mean.defined()) {
      NoGradGuard no_grad;
      // The running variance is unbiased (n / (n - 1)), as PyTorch. Blended in float64, then
      // copied into the buffers in their own dtype.
      const double n = static_cast<double>(count);
      Tensor m = mean.detach().view({C}).to(kFloat64);
      Tensor v = var.detach().view({C}).to(kFloat64) * (n / (n - 1.0));
      Tensor rm = running_mean, rv = running_var;
      rm.copy_(rm.to(kFloat64) * (1.0 - momentum) + m * momentum);
      rv.copy_(rv.to(kFloat64) * (1.0 - momentum) + v * momentum);
    }
  } else {
    EMBER_CHECK(running_mean.defined(), ValueError, "[", op,
                "] running_mean and running_var must be defined when training is false");
    y = (x - running_mean.to(ct).view(shape)) * rsqrt(running_var.to(ct).view(shape) + eps);
  }
  y = affine(y, weight.defined() ? weight.to(ct).view(shape) : Tensor(),
             bias.defined() ? bias.to(ct).view(shape) : Tensor());
  return y.to(input.dtype());
}

// ---- layer_norm / group_norm / rms_norm ----

Tensor layer_norm(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  check_input(input, op);
  const std::vector<int64_t> dims = trailing_dims(input, normalized_shape, op);
  check_shaped_param(weight, normalized_shape, op, "weight");
  check_shaped_param(bias, normalized_shape, op, "bias");
  const DType ct = compute_dtype(input.dtype());
  Tensor y = standardize(input.to(ct), dims, eps);
  y = affine(y, weight.defined() ? weight.to(ct) : Tensor(),
             bias.defined() ? bias.to(ct) : Tensor());
  return y.to(input.dtype());
}

Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight, const Tensor& bias,
                  double eps) {
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
  const DType ct = compute_dtype(input.dtype());
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
  const char* op = "rms_norm";
  check_input(input, op);
  const std::vector<int64_t> dims = trailing_dims(input, normalized_shape, op);
  check_shaped_param(weight, normalized_shape, op, "weight");
  const DType ct = compute_dtype(input.dtype());
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
