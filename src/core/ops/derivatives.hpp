// Derivatives written with differentiable ops, shared by the ops that need them (so double
// backward works through each). Private to src/core/ops.
#pragma once

#include <functional>

#include "core/kernels.hpp"
#include "ember/tensor.hpp"

namespace ember::detail {

/// d gelu / dx for the exact (erf, tanh_form false) and tanh forms.
Tensor gelu_grad(const Tensor& x, bool tanh_form);

/// An activation's gradient dy * f'(at) (at: the forward's input or output, as `kind` says): one
/// activation_backward pass at first order when dy and at share a floating dtype, a device and a
/// shape; otherwise, and under create_graph (grad mode on in the backward), `composite()`, which
/// is written with differentiable ops.
Tensor activation_grad(const Tensor& dy, const Tensor& at, ActGrad kind, double p0, double p1,
                       const std::function<Tensor()>& composite);

/// gelu's gradient dy * gelu'(x) by activation_grad (gelu, linear_gelu).
Tensor gelu_backward(const Tensor& dy, const Tensor& x, bool tanh_form);

/// relu's gradient from its output y: dy where y > 0, else 0 (PyTorch's threshold_backward), by
/// activation_grad (relu, linear_relu, conv2d_relu).
Tensor relu_grad(const Tensor& dy, const Tensor& y);

}  // namespace ember::detail
