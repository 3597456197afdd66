// Loss modules over ember/nn/functional/loss.hpp, as torch.nn's: options are plain structs, so
// `nn::CrossEntropyLoss(nn::CrossEntropyLossOptions{.label_smoothing = 0.1})` reads like the
// Python keyword call. A class
// weight is registered as a buffer named "weight" (PyTorch's name), pos_weight as "pos_weight".
#pragma once

#include <cstdint>
#include <string>

#include "ember/nn/module.hpp"

namespace ember::nn {

struct CrossEntropyLossOptions {
  Tensor weight = {};
  int64_t ignore_index = -100;
  std::string reduction = "mean";
  double label_smoothing = 0.0;
};
/// forward(input (N, C, *) logits, target class indices (N, *) or probabilities (N, C, *)).
class CrossEntropyLossImpl : public Module {
 public:
  explicit CrossEntropyLossImpl(CrossEntropyLossOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string extra_repr() const override;
  CrossEntropyLossOptions options;
};
EMBER_MODULE(CrossEntropyLoss);

struct NLLLossOptions {
  Tensor weight = {};
  int64_t ignore_index = -100;
  std::string reduction = "mean";
};
/// forward(input (N, C, *) log-probabilities, target (N, *) class indices).
class NLLLossImpl : public Module {
 public:
  explicit NLLLossImpl(NLLLossOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target);
  NLLLossOptions options;
};
EMBER_MODULE(NLLLoss);

/// The elementwise regression losses take a reduction and, for SmoothL1/Huber, beta/delta.
class MSELossImpl : public Module {
 public:
  explicit MSELossImpl(std::string reduction = "mean") : reduction(std::move(reduction)) {}
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string reduction;
};
EMBER_MODULE(MSELoss);

class L1LossImpl : public Module {
 public:
  explicit L1LossImpl(std::string reduction = "mean") : reduction(std::move(reduction)) {}
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string reduction;
};
EMBER_MODULE(L1Loss);

class SmoothL1LossImpl : public Module {
 public:
  explicit SmoothL1LossImpl(std::string reduction = "mean", double beta = 1.0)
      : reduction(std::move(reduction)), beta(beta) {}
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string reduction;
  double beta;
};
EMBER_MODULE(SmoothL1Loss);

class HuberLossImpl : public Module {
 public:
  explicit HuberLossImpl(std::string reduction = "mean", double delta = 1.0)
      : reduction(std::move(reduction)), delta(delta) {}
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string reduction;
  double delta;
};
EMBER_MODULE(HuberLoss);

struct BCELossOptions {
  Tensor weight = {};
  std::string reduction = "mean";
};
/// forward(probabilities in [0, 1], targets of the same shape).
class BCELossImpl : public Module {
 public:
  explicit BCELossImpl(BCELossOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target);
  BCELossOptions options;
};
EMBER_MODULE(BCELoss);

struct BCEWithLogitsLossOptions {
  Tensor weight = {};
  std::string reduction = "mean";
  Tensor pos_weight = {};
};
/// forward(logits, targets of the same shape): the numerically stable form.
class BCEWithLogitsLossImpl : public Module {
 public:
  explicit BCEWithLogitsLossImpl(BCEWithLogitsLossOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target);
  BCEWithLogitsLossOptions options;
};
EMBER_MODULE(BCEWithLogitsLoss);

/// forward(log-probabilities, target probabilities, or log-probabilities with log_target).
class KLDivLossImpl : public Module {
 public:
  explicit KLDivLossImpl(std::string reduction = "mean", bool log_target = false)
      : reduction(std::move(reduction)), log_target(log_target) {}
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string reduction;
  bool log_target;
};
EMBER_MODULE(KLDivLoss);

}  // namespace ember::nn
