// Losses (include/ember/nn/functional/loss.hpp): composites of differentiable ops, so every loss
// has gradients of any order and runs wherever its ops run. Each follows PyTorch's formula and
// reduction rules; the choices that keep them finite are noted at each loss and in
// docs/nn_losses.md.
//
// cross_entropy with class-index targets runs a fused kernel instead
// (src/core/cpu/cross_entropy.cpp, src/cuda/cross_entropy.cu: log_softmax and the likelihood in one
// pass per row, keeping only the per-row log-sum-exp, as max and log-sum), recorded as one node;
// the composite stays as cross_entropy_reference, which the tests compare it with. float16/bfloat16
// logits are computed in float32 by the same kernels, read as they are (no float32 copy, also under
// autocast). The fused backward kernel is first-order only; under create_graph=true the node
// differentiates the composite at its saved inputs (autograd::composite_grads), so higher-order
// gradients are the composite's.
#include "ember/nn/functional/loss.hpp"

#include <string>
#include <vector>

#include "core/autocast.hpp"
#include "core/dispatch.hpp"
#include "core/kernels.hpp"
#include "core/record.hpp"
#include "ember/autograd.hpp"
#include "ember/ops.hpp"

namespace ember::nn::functional {

/// cross_entropy as a composite of ops (log_softmax, then the likelihood): every case, and the
/// reference the fused kernel is tested against. Arguments and results as cross_entropy.
Tensor cross_entropy_reference(const Tensor& input, const Tensor& target, const Tensor& weight,
                               int64_t ignore_index, const std::string& reduction,
                               double label_smoothing);

namespace {

// ---- checks and reductions shared by every loss ----

void check_reduction(const std::string& reduction, const char* op, bool batchmean = false) {
  const bool ok = reduction == "none" || reduction == "mean" || reduction == "sum" ||
                  (batchmean && reduction == "batchmean");
  EMBER_CHECK(
      ok, ValueError, "[", op, "] reduction must be ",
      batchmean ? "\"none\", \"mean\", \"batchmean\" or \"sum\"" : "\"none\", \"mean\" or \"sum\"",
      ", got \"", reduction, "\"");
}

void check_defined(const Tensor& t, const char* op, const char* what) {
  EMBER_CHECK(t.defined(), ValueError, "[", op, "] ", what, " is an undefined tensor");
}

void check_floating(const Tensor& t, const char* op, const char* what) {
  check_defined(t, op, what);
  EMBER_CHECK(is_floating(t.dtype()), DTypeError, "[", op, "] expected a floating ", what, ", got ",
              t.dtype());
}

void check_same_shape(const Tensor& input, const Tensor& other, const char* op, const char* what) {
  EMBER_CHECK(input.sizes() == other.sizes(), ShapeError, "[", op, "] ", what, " shape ",
              other.sizes(), " must equal the input shape ", input.sizes());
}

/// "none" keeps the per-element losses; "mean" and "sum" reduce over every element.
Tensor reduce(const Tensor& loss, const std::string& reduction) {
  if (reduction == "none") return loss;
  if (reduction == "sum") return loss.sum();
  return loss.mean();
}

/// Losses of two tensors that broadcast (mse, l1, smooth l1, huber): the difference.
Tensor difference(const Tensor& input, const Tensor& target, const char* op) {
  check_defined(input, op, "input");
  check_defined(target, op, "target");
  EMBER_CHECK(is_floating(result_type(input, target)), DTypeError, "[", op,
              "] expected floating input or target, got ", input.dtype(), " and ", target.dtype());
  broadcast_shapes(input.sizes(), target.sizes(), op);  // ShapeError naming the loss
  return input - target;
}

// ---- class-index targets (nll_loss, cross_entropy) ----

/// Input and target of a class-index loss in batched layout: input (N, C, d...), target (N, d...)
/// int64 with every value in [0, C) or ignore_index.
struct ClassTargets {
  Tensor input;
  Tensor target;
  bool unbatched = false;
};

ClassTargets class_targets(const Tensor& input, const Tensor& target, const Tensor& weight,
                           int64_t ignore_index, const char* op) {
  check_floating(input, op, "input");
  check_defined(target, op, "target");
  EMBER_CHECK(is_integral(target.dtype()), DTypeError, "[", op,
              "] expected int64 class-index targets, got ", target.dtype());
  EMBER_CHECK(input.dim() >= 1, ShapeError, "[", op,
              "] expected input (C,), (N, C) or (N, C, d1, ...), got shape ", input.sizes());
  ClassTargets r;
  r.unbatched = input.dim() == 1;
  if (r.unbatched) {
    EMBER_CHECK(target.dim() == 0, ShapeError, "[", op, "] unbatched input of shape ",
                input.sizes(), " expects a 0-d target, got shape ", target.sizes());
    r.input = input.unsqueeze(0);
    r.target = target.to(kInt64).unsqueeze(0);
  } else {
    std::vector<int64_t> expected = input.sizes().vec();
    expected.erase(expected.begin() + 1);
    EMBER_CHECK(target.sizes() == IntArrayRef(expected), ShapeError, "[", op, "] input of shape ",
                input.sizes(), " expects a target of shape ", IntArrayRef(expected), ", got ",
                target.sizes());
    r.input = input;
    r.target = target.to(kInt64);
  }
  const int64_t C = r.input.size(1);
  if (weight.defined()) {
    EMBER_CHECK(is_floating(weight.dtype()), DTypeError, "[", op,
                "] expected a floating weight, got ", weight.dtype());
    EMBER_CHECK(weight.dim() == 1 && weight.size(0) == C, ShapeError, "[", op, "] weight of shape ",
                weight.sizes(), " must be (", C, ",) for input of shape ", input.sizes());
  }
  if (r.target.numel() > 0) {
    NoGradGuard no_grad;
    const Tensor& t = r.target;
    Tensor bad = logical_and(logical_or(lt(t, Scalar(0)), ge(t, Scalar(C))), ne(t, ignore_index));
    if (any(bad).item<bool>()) {
      const int64_t v = masked_select(t, bad)[0].item<int64_t>();
      throw IndexError(detail::str_cat("[", op, "] target ", v, " is out of bounds for ", C,
                                       " classes (input shape ", input.sizes(), ")"));
    }
  }
  return r;
}

/// Negative log-likelihood with PyTorch's weight, ignore_index and label-smoothing rules, on
/// log-probabilities `logp` (N, C, d...) and checked targets (N, d...).
Tensor nll_from_log_probs(const ClassTargets& ct, const Tensor& logp, const Tensor& weight,
                          int64_t ignore_index, const std::string& reduction,
                          double label_smoothing) {
  const Tensor& t = ct.target;
  const int64_t C = logp.size(1);
  Tensor ignored, safe, w;  // w: the weight of each target, 0 where ignored
  Tensor cw;                // the class weights in logp's dtype
  {
    NoGradGuard no_grad;
    ignored = eq(t, ignore_index);
    safe = where(ignored, Scalar(int64_t{0}), t);  // a valid index to gather at ignored targets
  }
  if (weight.defined()) {
    cw = weight.to(logp.dtype());
    w = where(ignored, Scalar(0.0), index_select(cw, 0, safe.flatten()).view(t.sizes()));
  } else {
    NoGradGuard no_grad;
    w = logical_not(ignored).to(logp.dtype());
  }
  Tensor picked = gather(logp, 1, safe.unsqueeze(1)).squeeze(1);  // (N, d...)
  // where, not a product with the mask: an ignored target's -inf log-probability gives 0, not NaN.
  Tensor loss = where(ignored, Scalar(0.0), neg(picked));
  if (weight.defined()) loss = loss * w;
  if (label_smoothing > 0.0) {
    // The uniform part: -sum_c w_c log p_c at every non-ignored target.
    Tensor lp = logp;
    if (weight.defined()) {
      std::vector<int64_t> shape(static_cast<size_t>(logp.dim()), 1);
      shape[1] = C;
      lp = logp * cw.view(shape);
    }
    Tensor smooth = where(ignored, Scalar(0.0), neg(lp.sum({1})));
    loss = loss * (1.0 - label_smoothing) + smooth * (label_smoothing / static_cast<double>(C));
  }
  if (reduction == "none") return ct.unbatched ? loss.squeeze(0) : loss;
  if (reduction == "sum") return loss.sum();
  return loss.sum() / w.sum();  // PyTorch: divide by the total weight of the counted targets
}

// ---- fused cross-entropy (class-index targets, CPU or CUDA) ----

/// The loss as the composite computes it, in the compute dtype, on the logits x.
Tensor ce_reference_computed(const Tensor& x, const Tensor& target, const Tensor& weight,
                             int64_t ignore_index, const std::string& reduction,
                             double label_smoothing) {
  return cross_entropy_reference(x.to(opmath_dtype(x.dtype())), target, weight, ignore_index,
                                 reduction, label_smoothing);
}

/// cross_entropy by the fused kernels: ct checked (input (N, C, d...) float16, bfloat16, float32
/// or float64 with at least one element, target (N, d...) int64 on its device), weight contiguous
/// of the compute dtype (opmath_dtype) on the input's device without grad, or undefined. The
/// loss has the compute dtype; the input's gradient the input's dtype. Nothing is read back to
/// the host.
Tensor cross_entropy_fused(const ClassTargets& ct, const Tensor& weight, int64_t ignore_index,
                           const std::string& reduction, double label_smoothing) {
  // ---- shape rule: per-row losses, max, log-sum like the target (N, d...); sums (2) ----
  Tensor x = ct.input.contiguous();
  Tensor t = ct.target.contiguous();
  const DType cdt = opmath_dtype(x.dtype());
  const TensorOptions opts = TensorOptions(cdt).device(x.device());
  Tensor rows = empty(t.sizes(), opts);
  Tensor max = empty(t.sizes(), opts), log_sum = empty(t.sizes(), opts);
  Tensor sums =
      reduction == "none" ? Tensor() : empty({2}, TensorOptions(kFloat64).device(x.device()));
  // ---- launch ----
  launch(x.device(), cpu::cross_entropy_forward, cuda::cross_entropy_forward, rows, max, log_sum,
         sums, x, t, weight, ignore_index, label_smoothing);
  // ---- reduce, on the device: as the composite's loss.sum() / w.sum(), each sum rounded once
  // to the compute dtype ----
  Tensor loss = rows;
  Tensor total;  // the divisor of "mean": the weight of the counted targets
  if (reduction != "none") {
    NoGradGuard no_grad;
    Tensor s = sums.to(cdt);
    if (reduction == "sum") {
      loss = s.select(0, 0).clone();
    } else {
      total = s.select(0, 1);
      loss = s.select(0, 0) / total;
    }
  }
  // ---- record: the fused backward (first order), the composite's under create_graph ----
  autograd::record(
      "cross_entropy", {x}, loss, {x, t, weight, max, log_sum, total},
      [ignore_index, reduction, label_smoothing](const autograd::Saved& s, const Tensor& dy) {
        if (autograd::is_grad_enabled()) {
          return autograd::composite_grads(
              [&](const autograd::Saved& in) {
                return ce_reference_computed(in[0], in[1], in[2], ignore_index, reduction,
                                             label_smoothing);
              },
              s, dy, 1);
        }
        const DType cdt = s[3].dtype();
        // The gradient of each row's loss: dy per row ("none"), dy ("sum"), dy / total ("mean").
        Tensor dloss = dy.to(s[0].device(), cdt);  // dy itself when it is already so
        if (reduction == "mean") dloss = dloss / s[5];
        dloss = dloss.contiguous();
        Tensor dx = empty(s[0].sizes(), TensorOptions(s[0].dtype()).device(s[0].device()));
        launch(s[0].device(), cpu::cross_entropy_backward, cuda::cross_entropy_backward, dx, dloss,
               s[0], s[1], s[2], s[3], s[4], ignore_index, label_smoothing);
        return autograd::Grads{dx};
      });
  if (reduction == "none" && ct.unbatched) return loss.squeeze(0);
  return loss;
}

}  // namespace

// ---- cross_entropy / nll_loss ----

Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight,
                int64_t ignore_index, const std::string& reduction) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kFloat32, input, weight))
    return autocast_call(*dt, &nll_loss, input, target, weight, ignore_index, reduction);
  check_reduction(reduction, "nll_loss");
  ClassTargets ct = class_targets(input, target, weight, ignore_index, "nll_loss");
  return nll_from_log_probs(ct, ct.input, weight, ignore_index, reduction, 0.0);
}

Tensor cross_entropy_reference(const Tensor& input, const Tensor& target, const Tensor& weight,
                               int64_t ignore_index, const std::string& reduction,
                               double label_smoothing) {
  const char* op = "cross_entropy";
  check_reduction(reduction, op);
  EMBER_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, ValueError, "[", op,
              "] label_smoothing must be in [0, 1], got ", label_smoothing);
  check_floating(input, op, "input");
  check_defined(target, op, "target");
  if (!is_floating(target.dtype())) {
    ClassTargets ct = class_targets(input, target, weight, ignore_index, op);
    // log_softmax subtracts the row max before exponentiating: finite for any finite logits.
    return nll_from_log_probs(ct, log_softmax(ct.input, 1), weight, ignore_index, reduction,
                              label_smoothing);
  }
  // Class probabilities of the input's shape.
  EMBER_CHECK(ignore_index < 0, ValueError, "[", op,
              "] ignore_index is not supported for class-probability targets, got ", ignore_index);
  EMBER_CHECK(input.dim() >= 1, ShapeError, "[", op,
              "] expected input (C,), (N, C) or (N, C, d1, ...), got shape ", input.sizes());
  EMBER_CHECK(target.sizes() == input.sizes(), ShapeError, "[", op, "] probability target shape ",
              target.sizes(), " must equal the input shape ", input.sizes(),
              " (class-index targets are int64)");
  const int64_t cd = input.dim() == 1 ? 0 : 1;
  const int64_t C = input.size(cd);
  Tensor logp = log_softmax(input, cd);
  Tensor y = target.to(logp.dtype());
  if (label_smoothing > 0.0)
    y = y * (1.0 - label_smoothing) + label_smoothing / static_cast<double>(C);
  Tensor prod = logp * y;
  if (weight.defined()) {
    EMBER_CHECK(is_floating(weight.dtype()), DTypeError, "[", op,
                "] expected a floating weight, got ", weight.dtype());
    EMBER_CHECK(weight.dim() == 1 && weight.size(0) == C, ShapeError, "[", op, "] weight of shape ",
                weight.sizes(), " must be (", C, ",) for input of shape ", input.sizes());
    std::vector<int64_t> shape(static_cast<size_t>(input.dim()), 1);
    shape[static_cast<size_t>(cd)] = C;
    prod = prod * weight.to(logp.dtype()).view(shape);
  }
  // "mean" divides by the number of samples (every element but the class dim), not by weights.
  return reduce(neg(prod.sum({cd})), reduction);
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight,
                     int64_t ignore_index, const std::string& reduction, double label_smoothing) {
  // The fused kernel takes class-index targets with floating logits (at least one), every tensor
  // on one device, and a weight that needs no gradient (PyTorch gives none; the composite does);
  // everything else goes to the composite. The checks and their errors are the composite's.
  const bool fused = input.defined() && is_floating(input.dtype()) && input.numel() > 0 &&
                     target.defined() && !is_floating(target.dtype()) &&
                     target.device() == input.device() &&
                     (!weight.defined() ||
                      (weight.device() == input.device() && !autograd::needs_grad({&weight})));
  const bool reduced = input.defined() && opmath_dtype(input.dtype()) != input.dtype();
  const std::optional<DType> cast = autocast_dtype(AutocastPolicy::kFloat32, input, target, weight);
  // Under autocast, 16-bit logits go to the fused kernel as they are: it computes in float32 and
  // gives the float32 loss that casting them first would, without the float32 copy.
  if (cast && !(fused && reduced))
    return autocast_call(*cast, &cross_entropy, input, target, weight, ignore_index, reduction,
                         label_smoothing);
  if (!fused)
    return cross_entropy_reference(input, target, weight, ignore_index, reduction, label_smoothing);
  const char* op = "cross_entropy";
  check_reduction(reduction, op);
  EMBER_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, ValueError, "[", op,
              "] label_smoothing must be in [0, 1], got ", label_smoothing);
  ClassTargets ct = class_targets(input, target, weight, ignore_index, op);
  const DType cdt = opmath_dtype(input.dtype());
  Tensor w;
  if (weight.defined()) w = (weight.dtype() == cdt ? weight : weight.to(cdt)).detach().contiguous();
  Tensor loss = cross_entropy_fused(ct, w, ignore_index, reduction, label_smoothing);
  // Outside autocast, 16-bit logits give a loss of their dtype (PyTorch's), computed in float32
  // and rounded once.
  return reduced && !cast ? loss.to(input.dtype()) : loss;
}

// ---- regression losses ----

Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kFloat32, input, target))
    return autocast_call(*dt, &mse_loss, input, target, reduction);
  check_reduction(reduction, "mse_loss");
  return reduce(square(difference(input, target, "mse_loss")), reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kFloat32, input, target))
    return autocast_call(*dt, &l1_loss, input, target, reduction);
  check_reduction(reduction, "l1_loss");
  return reduce(abs(difference(input, target, "l1_loss")), reduction);
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction,
                      double beta) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kFloat32, input, target))
    return autocast_call(*dt, &smooth_l1_loss, input, target, reduction, beta);
  check_reduction(reduction, "smooth_l1_loss");
  EMBER_CHECK(beta >= 0.0, ValueError, "[smooth_l1_loss] beta must be >= 0, got ", beta);
  Tensor d = difference(input, target, "smooth_l1_loss");
  Tensor ad = abs(d);
  if (beta == 0.0) return reduce(ad, reduction);  // the quadratic branch would divide by zero
  return reduce(where(lt(ad, beta), square(d) * (0.5 / beta), ad - 0.5 * beta), reduction);
}

Tensor huber_loss(const Tensor& input, const Tensor& target, const std::string& reduction,
                  double delta) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kFloat32, input, target))
    return autocast_call(*dt, &huber_loss, input, target, reduction, delta);
  check_reduction(reduction, "huber_loss");
  EMBER_CHECK(delta > 0.0, ValueError, "[huber_loss] delta must be > 0, got ", delta);
  Tensor d = difference(input, target, "huber_loss");
  Tensor ad = abs(d);
  return reduce(where(lt(ad, delta), square(d) * 0.5, (ad - 0.5 * delta) * delta), reduction);
}

// ---- binary cross-entropy ----

namespace {

/// max(log(x), -100) whose gradient is finite everywhere: the log never sees x <= 0 (its branch
/// of the where gets x = 1 there), so x = 0 gives -100 with gradient 0 instead of 0 * inf.
Tensor clamped_log(const Tensor& x) {
  Tensor pos = gt(x, 0.0);
  return where(pos, clamp_min(log(where(pos, x, Scalar(1.0))), -100.0), Scalar(-100.0));
}
Tensor clamped_log1m(const Tensor& x) {  // max(log(1 - x), -100), likewise finite at x = 1
  Tensor below = lt(x, 1.0);
  return where(below, clamp_min(log1p(neg(where(below, x, Scalar(0.0)))), -100.0), Scalar(-100.0));
}

void check_weight_broadcasts(const Tensor& weight, const Tensor& input, const char* op,
                             const char* what) {
  if (!weight.defined()) return;
  EMBER_CHECK(is_floating(weight.dtype()), DTypeError, "[", op, "] expected a floating ", what,
              ", got ", weight.dtype());
  // Broadcasts to the input's shape (never enlarges it): aligned from the last dim, each size 1
  // or equal.
  bool ok = weight.dim() <= input.dim();
  for (int64_t i = 1; ok && i <= weight.dim(); ++i)
    ok = weight.size(-i) == 1 || weight.size(-i) == input.size(-i);
  EMBER_CHECK(ok, ShapeError, "[", op, "] ", what, " of shape ", weight.sizes(),
              " does not broadcast to the input shape ", input.sizes());
}

}  // namespace

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight,
                            const std::string& reduction) {
  const char* op = "binary_cross_entropy";
  check_reduction(reduction, op);
  check_floating(input, op, "input");
  check_floating(target, op, "target");
  check_same_shape(input, target, op, "target");
  check_weight_broadcasts(weight, input, op, "weight");
  {
    NoGradGuard no_grad;
    EMBER_CHECK(!any(logical_or(lt(input, 0.0), gt(input, 1.0))).item<bool>(), ValueError, "[", op,
                "] every input element must be a probability in [0, 1]");
  }
  Tensor loss = neg(target * clamped_log(input) + (1.0 - target) * clamped_log1m(input));
  if (weight.defined()) loss = loss * weight;
  return reduce(loss, reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight, const std::string& reduction,
                                        const Tensor& pos_weight) {
  if (std::optional<DType> dt =
          autocast_dtype(AutocastPolicy::kFloat32, input, target, weight, pos_weight))
    return autocast_call(*dt, &binary_cross_entropy_with_logits, input, target, weight, reduction,
                         pos_weight);
  const char* op = "binary_cross_entropy_with_logits";
  check_reduction(reduction, op);
  check_floating(input, op, "input");
  check_floating(target, op, "target");
  check_same_shape(input, target, op, "target");
  check_weight_broadcasts(weight, input, op, "weight");
  check_weight_broadcasts(pos_weight, input, op, "pos_weight");
  // max(x, 0) and -|x| with both kinks taken on the x >= 0 side: then the gradient at x = 0 is
  // that of the smooth branch, sigmoid(0) - t = 0.5 - t (abs and relu alone would give -t).
  const Tensor& x = input;
  Tensor nonneg = ge(x, 0.0);
  Tensor neg_abs = where(nonneg, neg(x), x);
  Tensor log_term = log1p(exp(neg_abs));  // exp of a non-positive number: never overflows
  Tensor loss;
  if (pos_weight.defined()) {
    // PyTorch: (1 - t) x + (1 + (pw - 1) t) (log1p(exp(-|x|)) + max(-x, 0)).
    Tensor log_weight = (pos_weight - 1.0) * target + 1.0;
    loss = (1.0 - target) * x + log_weight * (log_term + where(nonneg, Scalar(0.0), neg(x)));
  } else {
    loss = where(nonneg, x, Scalar(0.0)) - x * target + log_term;
  }
  if (weight.defined()) loss = loss * weight;
  return reduce(loss, reduction);
}

// ---- kl_div ----

Tensor kl_div(const Tensor& input, const Tensor& target, const std::string& reduction,
              bool log_target) {
  if (std::optional<DType> dt = autocast_dtype(AutocastPolicy::kFloat32, input, target))
    return autocast_call(*dt, &kl_div, input, target, reduction, log_target);
  const char* op = "kl_div";
  check_reduction(reduction, op, /*batchmean=*/true);
  check_floating(input, op, "input");
  check_floating(target, op, "target");
  broadcast_shapes(input.sizes(), target.sizes(), op);
  Tensor loss;
  if (log_target) {
    loss = exp(target) * (target - input);
  } else {
    // xlogy(t, t) - t x, with 0 log 0 = 0; the log's branch never sees t = 0, so no 0 * inf.
    Tensor zero = eq(target, 0.0);
    Tensor t_log_t = where(zero, Scalar(0.0), target * log(where(zero, Scalar(1.0), target)));
    loss = t_log_t - target * input;
  }
  if (reduction == "batchmean") {
    Tensor s = loss.sum();
    return input.dim() == 0 ? s : s / static_cast<double>(input.size(0));
  }
  return reduce(loss, reduction);
}

}  // namespace ember::nn::functional
