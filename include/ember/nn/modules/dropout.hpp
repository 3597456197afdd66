// Dropout layers: active in training mode, the identity in eval mode.
#pragma once

#include <string>

#include "ember/nn/module.hpp"

namespace ember::nn {

/// Zeroes each element with probability p and scales the rest by 1 / (1 - p) while training.
class DropoutImpl : public Module {
 public:
  explicit DropoutImpl(double p = 0.5);
  Tensor forward(const Tensor& x);
  std::string extra_repr() const override;
  double p;
};
EMBER_MODULE(Dropout);

/// Zeroes whole channels of (N, C, H, W) or (C, H, W) inputs.
class Dropout2dImpl : public Module {
 public:
  explicit Dropout2dImpl(double p = 0.5);
  Tensor forward(const Tensor& x);
  std::string extra_repr() const override;
  double p;
};
EMBER_MODULE(Dropout2d);

}  // namespace ember::nn
