// Helpers shared by the optimizers' option (de)serialization and validation.
#pragma once

#include <cmath>
#include <string>
#include <tuple>

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
  Tensor b = full(param.sizes(), fill, TensorOptions(param.dtype()).device(param.device()));
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

}  // namespace ember::optim::detail
