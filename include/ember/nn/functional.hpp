// ember::nn::functional, as torch.nn.functional (write `namespace F = ember::nn::functional;`):
// every layer as a function. The tensor ops that torch.nn.functional also exposes (activations,
// linear, embedding, softmax, pad, one_hot) are the ember ops themselves, re-exported here.
#pragma once

#include "ember/nn/functional/attention.hpp"
#include "ember/nn/functional/dropout.hpp"
#include "ember/nn/functional/loss.hpp"
#include "ember/nn/functional/normalization.hpp"
#include "ember/ops.hpp"

namespace ember::nn::functional {

using ember::elu;
using ember::embedding;
using ember::gelu;
using ember::leaky_relu;
using ember::linear;
using ember::log_softmax;
using ember::one_hot;
using ember::pad;
using ember::relu;
using ember::sigmoid;
using ember::silu;
using ember::softmax;
using ember::softplus;
using ember::tanh;
// convolution, pooling, upsampling (include/ember/ops.hpp)
using ember::adaptive_avg_pool1d;
using ember::adaptive_avg_pool2d;
using ember::avg_pool1d;
using ember::avg_pool2d;
using ember::conv1d;
using ember::conv2d;
using ember::conv_transpose1d;
using ember::conv_transpose2d;
using ember::fold;
using ember::interpolate;
using ember::max_pool1d;
using ember::max_pool1d_with_indices;
using ember::max_pool2d;
using ember::max_pool2d_with_indices;
using ember::unfold;

}  // namespace ember::nn::functional
