// Dropout functionals (include/ember/nn/functional/dropout.hpp): a Bernoulli keep-mask from the
// default generator, drawn without grad, times the input. The product is the only recorded op, so
// the gradient is dy * mask (and its derivatives are those of a product).
#include "ember/nn/functional/dropout.hpp"

#include <cmath>
#include <vector>

#include "ember/autograd.hpp"
#include "ember/ops.hpp"

namespace ember::nn::functional {

namespace {

void check_args(const Tensor& input, double p, const char* op) {
  EMBER_CHECK(input.defined(), ValueError, "[", op, "] input is an undefined tensor");
  EMBER_CHECK(p >= 0.0 && p <= 1.0, ValueError, "[", op,
              "] dropout probability has to be between 0 and 1, got ", p);
  EMBER_CHECK(is_floating(input.dtype()), DTypeError, "[", op, "] expected a floating input, got ",
              input.dtype());
}

/// input * mask / (1 - p) with a keep-mask of `mask_shape` (input's shape, or 1 along the dims
/// whose elements are dropped together). p = 1 gives zeros.
Tensor masked_scale(const Tensor& input, double p, IntArrayRef mask_shape) {
  if (p == 1.0) return input * 0.0;  // a zero gradient, not 0 * inf
  Tensor mask;
  {
    NoGradGuard no_grad;
    mask = bernoulli(empty(mask_shape, input.options().requires_grad(false)), 1.0 - p);
    mask.mul_(1.0 / (1.0 - p));
  }
  return input * mask;
}

/// Channel dropout for inputs (N, C, spatial...) or unbatched (C, spatial...).
Tensor feature_dropout(const Tensor& input, double p, bool training, int64_t spatial,
                       const char* op, const char* layouts) {
  check_args(input, p, op);
  EMBER_CHECK(input.dim() == spatial + 1 || input.dim() == spatial + 2, ShapeError, "[", op,
              "] expected input ", layouts, ", got shape ", input.sizes());
  if (!training || p == 0.0) return input;
  std::vector<int64_t> shape = input.sizes().vec();
  for (int64_t d = input.dim() - spatial; d < input.dim(); ++d) shape[static_cast<size_t>(d)] = 1;
  return masked_scale(input, p, shape);
}

}  // namespace

Tensor dropout(const Tensor& input, double p, bool training) {
  check_args(input, p, "dropout");
  if (!training || p == 0.0) return input;
  return masked_scale(input, p, input.sizes());
}

Tensor dropout1d(const Tensor& input, double p, bool training) {
  return feature_dropout(input, p, training, 1, "dropout1d", "(N, C, L) or (C, L)");
}

Tensor dropout2d(const Tensor& input, double p, bool training) {
  return feature_dropout(input, p, training, 2, "dropout2d", "(N, C, H, W) or (C, H, W)");
}

Tensor alpha_dropout(const Tensor& input, double p, bool training) {
  check_args(input, p, "alpha_dropout");
  if (!training || p == 0.0) return input;
  if (p == 1.0) return input * 0.0;  // PyTorch: p = 1 gives zeros here too
  // SELU's negative saturation -lambda * alpha: dropped elements take this value; a and b restore
  // zero mean and unit variance for standardized inputs (Klambauer et al., 2017).
  constexpr double kAlpha = 1.7580993408473766;
  const double a = 1.0 / std::sqrt((kAlpha * kAlpha * p + 1.0) * (1.0 - p));
  Tensor keep, shift;
  {
    NoGradGuard no_grad;
    keep = bernoulli(empty(input.sizes(), input.options().requires_grad(false)), 1.0 - p);
    // b = a * alpha * (p - (1 - keep)): added where dropped and kept alike.
    shift = (keep - 1.0) * (kAlpha * a) + kAlpha * a * p;
    keep.mul_(a);
  }
  return input * keep + shift;
}

}  // namespace ember::nn::functional
