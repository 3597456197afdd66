// Linear layers and shape helpers: Identity, Linear, Flatten, Unflatten.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ember/nn/module.hpp"

namespace ember::nn {

/// Returns its input.
class IdentityImpl : public Module {
 public:
  Tensor forward(const Tensor& x) { return x; }
};
EMBER_MODULE(Identity);

/// Options of Linear, libtorch-style: LinearOptions(4, 3).bias(false).
struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  LinearOptions& bias(bool b) {
    bias_ = b;
    return *this;
  }
  int64_t in_features_, out_features_;
  bool bias_ = true;
};

/// y = x W^T + b. x (*, in_features) -> (*, out_features); weight (out_features, in_features),
/// bias (out_features). Initialised as PyTorch: W ~ kaiming_uniform_(a = sqrt(5)), i.e.
/// U(-1/sqrt(in), 1/sqrt(in)), and b ~ U(-1/sqrt(in), 1/sqrt(in)).
class LinearImpl : public Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias = true);
  explicit LinearImpl(const LinearOptions& o)
      : LinearImpl(o.in_features_, o.out_features_, o.bias_) {}
  Tensor forward(const Tensor& x);
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t in_features, out_features;
  Tensor weight, bias;
};
EMBER_MODULE(Linear);

/// Flattens dims start_dim..end_dim (default 1..-1: keeps the batch dim).
class FlattenImpl : public Module {
 public:
  explicit FlattenImpl(int64_t start_dim = 1, int64_t end_dim = -1)
      : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) { return x.flatten(start_dim, end_dim); }
  std::string extra_repr() const override;
  int64_t start_dim, end_dim;
};
EMBER_MODULE(Flatten);

/// Splits dim into `sizes`.
class UnflattenImpl : public Module {
 public:
  UnflattenImpl(int64_t dim, std::vector<int64_t> sizes) : dim(dim), sizes(std::move(sizes)) {}
  Tensor forward(const Tensor& x) { return x.unflatten(dim, sizes); }
  std::string extra_repr() const override;
  int64_t dim;
  std::vector<int64_t> sizes;
};
EMBER_MODULE(Unflatten);

}  // namespace ember::nn
