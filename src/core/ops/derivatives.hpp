// Derivatives written with differentiable ops, shared by the ops that need them (so double
// backward works through each). Private to src/core/ops.
#pragma once

#include "ember/tensor.hpp"

namespace ember::detail {

/// d gelu / dx for the exact (erf, tanh_form false) and tanh forms.
Tensor gelu_grad(const Tensor& x, bool tanh_form);

}  // namespace ember::detail
