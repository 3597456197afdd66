// Activation modules: each forwards to the ember op of the same name.
#pragma once

#include <cstdint>
#include <string>

#include "ember/nn/module.hpp"

namespace ember::nn {

class ReLUImpl : public Module {
 public:
  Tensor forward(const Tensor& x);
};
EMBER_MODULE(ReLU);

/// max(0, x) + negative_slope * min(0, x).
class LeakyReLUImpl : public Module {
 public:
  explicit LeakyReLUImpl(double negative_slope = 0.01) : negative_slope(negative_slope) {}
  Tensor forward(const Tensor& x);
  std::string extra_repr() const override;
  double negative_slope;
};
EMBER_MODULE(LeakyReLU);

/// approximate: "none" (x * Phi(x), the erf form) or "tanh".
class GELUImpl : public Module {
 public:
  explicit GELUImpl(std::string approximate = "none");
  Tensor forward(const Tensor& x);
  std::string extra_repr() const override;
  std::string approximate;
};
EMBER_MODULE(GELU);

/// x * sigmoid(x).
class SiLUImpl : public Module {
 public:
  Tensor forward(const Tensor& x);
};
EMBER_MODULE(SiLU);

class TanhImpl : public Module {
 public:
  Tensor forward(const Tensor& x);
};
EMBER_MODULE(Tanh);

class SigmoidImpl : public Module {
 public:
  Tensor forward(const Tensor& x);
};
EMBER_MODULE(Sigmoid);

class ELUImpl : public Module {
 public:
  explicit ELUImpl(double alpha = 1.0) : alpha(alpha) {}
  Tensor forward(const Tensor& x);
  std::string extra_repr() const override;
  double alpha;
};
EMBER_MODULE(ELU);

/// Softmax over `dim`.
class SoftmaxImpl : public Module {
 public:
  explicit SoftmaxImpl(int64_t dim) : dim(dim) {}
  Tensor forward(const Tensor& x);
  std::string extra_repr() const override;
  int64_t dim;
};
EMBER_MODULE(Softmax);

class LogSoftmaxImpl : public Module {
 public:
  explicit LogSoftmaxImpl(int64_t dim) : dim(dim) {}
  Tensor forward(const Tensor& x);
  std::string extra_repr() const override;
  int64_t dim;
};
EMBER_MODULE(LogSoftmax);

}  // namespace ember::nn
