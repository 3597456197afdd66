// Autocast settings (thread-local) and the casting helpers of src/core/autocast.hpp.
#include "core/autocast.hpp"

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

Suspend::Suspend() : prev_(g_state) { g_state = AutocastState{}; }
Suspend::~Suspend() { g_state = prev_; }

}  // namespace autocast_detail
}  // namespace ember
