// Stages of a Sequential that run as one fused op (SequentialImpl::forward).
#pragma once

#include "ember/nn/module.hpp"

namespace ember::nn::stages {

/// When `a` is exactly a BatchNorm1d/BatchNorm2d (not a subclass, whose forward may differ) and
/// `b` exactly a ReLU: y = a's forward_relu(y) (relu(bn(y)), one batch_norm_relu node on CUDA
/// while training, the same values) and true. Otherwise false, y untouched.
bool batch_norm_relu(Module& a, Module& b, Tensor& y);

}  // namespace ember::nn::stages
