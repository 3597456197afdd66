// Clearing one parameter's gradient: what Module::zero_grad and Optimizer::zero_grad both do.
#pragma once

#include "ember/autograd.hpp"
#include "ember/tensor.hpp"

namespace ember {

/// set_to_none drops the gradient; otherwise it is taken out of any graph in place and zeroed,
/// keeping the same tensor (PyTorch's p.grad.detach_().zero_()).
inline void zero_grad_of(const Tensor& param, bool set_to_none) {
  Tensor& g = const_cast<Tensor&>(param).mutable_grad();  // a handle: the grad lives in the impl
  if (!g.defined()) return;
  if (set_to_none) {
    g = Tensor();
    return;
  }
  if (g.grad_fn())
    g.detach_();
  else if (g.requires_grad())
    g.requires_grad_(false);
  NoGradGuard no_grad;
  g.zero_();
}

}  // namespace ember
