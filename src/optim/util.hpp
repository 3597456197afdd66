// Helpers shared by the optimizers' option (de)serialization and validation.
#pragma once

#include <cmath>
#include <initializer_list>
#include <string>
#include <tuple>
#include <vector>

#include "core/tensor_impl.hpp"
#include "ember/autograd.hpp"
#include "ember/error.hpp"
#include "ember/ops.hpp"
#include "ember/optim/optimizer.hpp"
#include "ember/state_dict.hpp"

namespace ember::optim::detail {

inline void save_bool(StateDict& sd, const std::string& key, bool v) { sd.set_int(key, v ? 1 : 0); }
inline bool load_bool(const StateDict& sd, const std::string& key) {
  return sd.get_double(key) != 0;
}

/// betas as a float64 (2,) tensor, like PyTorch's tuple under "betas".
inline void save_betas(StateDict& sd, const std::string& key, std::tuple<double, double> b) {
  sd.insert(key, tensor(std::vector<double>{std::get<0>(b), std::get<1>(b)}, kFloat64));
}
inline std::tuple<double, double> load_betas(const StateDict& sd, const std::string& key) {
  const Tensor& t = sd.at(key);
  EMBER_CHECK(t.numel() == 2, ValueError, "[StateDict] '", key, "' holds ", t.sizes(),
              ", expected 2 betas");
  Tensor d = t.to(kFloat64).contiguous();
  return {d.data_ptr<double>()[0], d.data_ptr<double>()[1]};
}

/// ValueError "[Adam] invalid learning rate: -1" unless v >= 0 (NaN fails too).
inline void check_nonnegative(const std::string& who, const char* what, double v) {
  EMBER_CHECK(v >= 0, ValueError, "[", who, "] invalid ", what, ": ", v);
}
inline void check_beta(const std::string& who, int index, double v, bool allow_one) {
  EMBER_CHECK(v >= 0 && (allow_one ? v <= 1 : v < 1), ValueError, "[", who, "] invalid beta", index,
              " parameter: ", v, allow_one ? " (expected [0, 1])" : " (expected [0, 1))");
}

/// The parameter-shaped state `name`, created as zeros (or `fill`) the first time.
inline Tensor state_buffer(StateDict& state, const std::string& name, const Tensor& param,
                           double fill = 0) {
  if (const Tensor* t = state.find(name)) return *t;
  Tensor b = full_like(param, fill);  // laid out as param (a channels-last weight's too)
  state.insert(name, b);
  return b;
}

/// The group's options as the algorithm's own type; ValueError for another optimizer's options.
template <class T>
const T& options_as(const OptimizerOptions& options, const std::string& who) {
  const T* o = dynamic_cast<const T*>(&options);
  EMBER_CHECK(o != nullptr, ValueError, "[", who,
              "] a parameter group has the options of another optimizer");
  return *o;
}

/// Increments the 0-d int64 "step" and returns the new count.
inline int64_t advance_step(StateDict& state) {
  const int64_t step = state.contains("step") ? state.get_int("step") + 1 : 1;
  state.set_int("step", step);
  return step;
}

// ---- fused updates ----

/// True when the fused kernels (src/core/cpu/optim.cpp, src/cuda/optim.cu) may run this update in
/// place of the composite: param, grad and every defined state on param's device, float32 or
/// float64 of one dtype, dense and laid out alike (contiguous, or all channels-last: the kernels
/// walk them as flat arrays), of one element count, none sharing storage with another, and
/// nothing for autograd to record (grad mode off, as in Optimizer::step, or no tensor requiring
/// grad). Anything else (16-bit floats, strided views, mixed devices) runs the composite.
inline bool fused_update_applies(const Tensor& param, const Tensor& grad,
                                 std::initializer_list<Tensor> states) {
  std::vector<const Tensor*> all = {&param, &grad};
  for (const Tensor& s : states)
    if (s.defined()) all.push_back(&s);
  const DType dtype = param.dtype();
  if (dtype != kFloat32 && dtype != kFloat64) return false;
  if (!is_dense(param)) return false;
  const bool recording = autograd::is_grad_enabled();
  for (size_t i = 0; i < all.size(); ++i) {
    const Tensor& t = *all[i];
    if (!t.defined() || t.device() != param.device() || t.dtype() != dtype ||
        t.sizes() != param.sizes() || (recording && t.requires_grad()))
      return false;
    for (int64_t d = 0; d < t.dim(); ++d)
      if (t.size(d) != 1 && t.stride(d) != param.stride(d)) return false;
    for (size_t j = 0; j < i; ++j)
      if (t.is_alias_of(*all[j])) return false;
  }
  return true;
}

/// The parameters a step gives the fused kernels, one list per (device, dtype), in the order
/// the lists were first needed.
template <class Item>
class FusedBatches {
 public:
  /// The list of param's device and dtype.
  std::vector<Item>& of(const Tensor& param) {
    for (Batch& b : batches_)
      if (b.device == param.device() && b.dtype == param.dtype()) return b.items;
    batches_.push_back({param.device(), param.dtype(), {}});
    return batches_.back().items;
  }
  std::vector<std::vector<Item>> lists() const {
    std::vector<std::vector<Item>> out;
    for (const Batch& b : batches_) out.push_back(b.items);
    return out;
  }

 private:
  struct Batch {
    Device device;
    DType dtype;
    std::vector<Item> items;
  };
  std::vector<Batch> batches_;
};

/// One group's Adam/AdamW options.
struct AdamHyper {
  double lr, beta1, beta2, eps, weight_decay;
  bool amsgrad, decoupled;  // decoupled: AdamW's decay; else weight_decay is Adam's L2
};
/// Adam/AdamW's update of a group's parameters: those fused_update_applies accepts through the
/// multi-tensor kernel adam_step (one call per device and dtype), the rest through the composite
/// (torch.optim's single-tensor formulas written with tensor ops); `fused` false runs the
/// composite for every parameter.
void adam_update(const std::vector<ParamUpdate>& params, const AdamHyper& h, bool fused = true);
/// The composite alone for one parameter: the reference the tests compare the kernels with.
void adam_update_reference(Tensor& param, const Tensor& grad, StateDict& state, double lr,
                           double beta1, double beta2, double eps, double weight_decay,
                           bool amsgrad, bool decoupled);

struct SgdHyper {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
};
/// SGD's update of a group's parameters, as adam_update.
void sgd_update(const std::vector<ParamUpdate>& params, const SgdHyper& h, bool fused = true);
void sgd_update_reference(Tensor& param, const Tensor& grad, StateDict& state, double lr,
                          double momentum, double dampening, double weight_decay, bool nesterov);

}  // namespace ember::optim::detail
