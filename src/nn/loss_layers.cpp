// The loss modules: each forwards to its functional form with the stored options.
#include <sstream>

#include "ember/nn/functional/loss.hpp"
#include "ember/nn/modules/loss.hpp"

namespace ember::nn {

namespace F = ember::nn::functional;

CrossEntropyLossImpl::CrossEntropyLossImpl(CrossEntropyLossOptions o) : options(std::move(o)) {
  if (options.weight.defined()) options.weight = register_buffer("weight", options.weight);
}
Tensor CrossEntropyLossImpl::forward(const Tensor& input, const Tensor& target) {
  return F::cross_entropy(input, target, options.weight, options.ignore_index, options.reduction,
                          options.label_smoothing);
}
std::string CrossEntropyLossImpl::extra_repr() const {
  std::ostringstream os;
  os << "reduction='" << options.reduction << "'";
  if (options.label_smoothing != 0.0) os << ", label_smoothing=" << options.label_smoothing;
  return os.str();
}

NLLLossImpl::NLLLossImpl(NLLLossOptions o) : options(std::move(o)) {
  if (options.weight.defined()) options.weight = register_buffer("weight", options.weight);
}
Tensor NLLLossImpl::forward(const Tensor& input, const Tensor& target) {
  return F::nll_loss(input, target, options.weight, options.ignore_index, options.reduction);
}

Tensor MSELossImpl::forward(const Tensor& input, const Tensor& target) {
  return F::mse_loss(input, target, reduction);
}
Tensor L1LossImpl::forward(const Tensor& input, const Tensor& target) {
  return F::l1_loss(input, target, reduction);
}
Tensor SmoothL1LossImpl::forward(const Tensor& input, const Tensor& target) {
  return F::smooth_l1_loss(input, target, reduction, beta);
}
Tensor HuberLossImpl::forward(const Tensor& input, const Tensor& target) {
  return F::huber_loss(input, target, reduction, delta);
}

BCELossImpl::BCELossImpl(BCELossOptions o) : options(std::move(o)) {
  if (options.weight.defined()) options.weight = register_buffer("weight", options.weight);
}
Tensor BCELossImpl::forward(const Tensor& input, const Tensor& target) {
  return F::binary_cross_entropy(input, target, options.weight, options.reduction);
}

BCEWithLogitsLossImpl::BCEWithLogitsLossImpl(BCEWithLogitsLossOptions o) : options(std::move(o)) {
  if (options.weight.defined()) options.weight = register_buffer("weight", options.weight);
  if (options.pos_weight.defined())
    options.pos_weight = register_buffer("pos_weight", options.pos_weight);
}
Tensor BCEWithLogitsLossImpl::forward(const Tensor& input, const Tensor& target) {
  return F::binary_cross_entropy_with_logits(input, target, options.weight, options.reduction,
                                             options.pos_weight);
}

Tensor KLDivLossImpl::forward(const Tensor& input, const Tensor& target) {
  return F::kl_div(input, target, reduction, log_target);
}

}  // namespace ember::nn
