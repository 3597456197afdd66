// Autocast settings (thread-local) and the casting helpers of src/core/autocast.hpp.
#include "core/autocast.hpp"

#include "ember/autograd.hpp"
#include "ember/error.hpp"

namespace ember {

namespace {
thread_local AutocastState g_state;

bool enabled_for(DeviceType t) { return t == kCUDA ? g_state.cuda_enabled : g_state.cpu_enabled; }
}  // namespace

AutocastState autocast_state() { return g_state; }
void set_autocast_state(const AutocastState& state) { g_state = state; }
bool is_autocast_enabled(DeviceType device_type) { return enabled_for(device_type); }
DType get_autocast_dtype(DeviceType device_type) {
  return device_type == kCUDA ? g_state.cuda_dtype : g_state.cpu_dtype;
}

AutocastGuard::AutocastGuard(DType dtype, std::optional<DeviceType> device_type, bool enabled)
    : prev_(g_state) {
  EMBER_CHECK(dtype == kBFloat16 || dtype == kFloat16, ValueError,
              "[autocast] dtype must be bfloat16 or float16, got ", dtype);
  if (!device_type || *device_type == kCPU) {
    g_state.cpu_enabled = enabled;
    g_state.cpu_dtype = dtype;
  }
  if (!device_type || *device_type == kCUDA) {
    g_state.cuda_enabled = enabled;
    g_state.cuda_dtype = dtype;
  }
}

AutocastGuard::~AutocastGuard() { g_state = prev_; }

namespace autocast_detail {

std::optional<DType> target(AutocastPolicy policy, const Tensor& x) {
  if (!x.defined() || !is_floating(x.dtype()) || x.dtype() == kFloat64) return std::nullopt;
  const DeviceType t = x.device().type();
  if (!enabled_for(t)) return std::nullopt;
  return policy == AutocastPolicy::kLower ? get_autocast_dtype(t) : kFloat32;
}

bool changes(const Tensor& x, DType dtype) {
  return x.defined() && is_floating(x.dtype()) && x.dtype() != kFloat64 && x.dtype() != dtype;
}

Tensor cast(const Tensor& x, DType dtype) { return changes(x, dtype) ? x.to(dtype) : x; }

Tensor cast(const Tensor& x, std::optional<DType> dtype) { return dtype ? cast(x, *dtype) : x; }

Suspend::Suspend() : prev_(g_state) { g_state = AutocastState{}; }
Suspend::~Suspend() { g_state = prev_; }

}  // namespace autocast_detail

Tensor ParamOperands::bias_as(DType d) const {
  if (!autocast || !b_in.defined() || b_in.dtype() == d) return b_in;
  NoGradGuard no_grad;
  return autocast_detail::cast(b_in, d);
}

const Tensor& ParamOperands::bias() const {
  if (!bias_made) bias_made = autocast ? bias_as(*autocast) : b_in;
  return *bias_made;
}

Tensor ParamOperands::cast(const Tensor& t) const { return autocast_detail::cast(t, autocast); }

Tensor ParamOperands::weight_for_ops() const { return w.is_same(w_in) ? w : cast(w_in); }

Tensor ParamOperands::bias_for_ops() const {
  const Tensor& b = bias();
  return b.is_same(b_in) ? b : cast(b_in);
}

ParamOperands param_operands(const Tensor& x, const Tensor& weight, const Tensor& bias,
                             bool own_node) {
  ParamOperands o;
  o.x = x;
  o.w = o.w_in = weight;
  o.b_in = bias;
  o.autocast = autocast_dtype(AutocastPolicy::kLower, x, weight, bias);
  if (!o.autocast) return o;
  o.x = autocast_detail::cast(x, *o.autocast);
  if (!own_node) {
    o.w = o.w_in = autocast_detail::cast(weight, *o.autocast);
    o.b_in = autocast_detail::cast(bias, *o.autocast);
    return o;
  }
  NoGradGuard no_grad;
  o.w = autocast_detail::cast(weight, *o.autocast);
  o.recast =
      autocast_detail::changes(weight, *o.autocast) || autocast_detail::changes(bias, *o.autocast);
  return o;
}

}  // namespace ember
