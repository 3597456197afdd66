// Automatic mixed precision, as torch.autocast:
//
//   ember::optim::AdamW opt(model->parameters(), {});      // float32 weights stay the masters
//   ember::amp::GradScaler scaler;                          // needed for float16, not bfloat16
//   {
//     auto amp = ember::autocast(ember::kFloat16, ember::kCUDA);
//     Tensor logits = model->forward(x);                    // matmuls and convolutions in float16
//     loss = F::cross_entropy(logits, y);                   // float32
//   }
//   scaler.scale(loss).backward();                          // outside the scope, as in PyTorch
//   scaler.step(opt);
//   scaler.update();
//
// Inside a scope, on the scope's devices:
// - matmul, mm, bmm, addmm, baddbmm, linear, conv1d/2d, conv_transpose1d/2d and
//   scaled_dot_product_attention cast their floating inputs to the scope's dtype (bfloat16 or
//   float16) and return results in it; their kernels accumulate in float32. The casts are
//   recorded, so gradients reach float32 parameters in float32.
// - softmax, log_softmax, logsumexp, sum (without an explicit dtype), the losses (cross_entropy,
//   nll_loss, mse_loss, l1_loss, smooth_l1_loss, huber_loss, binary_cross_entropy_with_logits,
//   kl_div) and the normalizations (layer_norm, group_norm, rms_norm) compute in float32: a
//   float16/bfloat16 input is cast up, so reductions and losses keep float32 range and precision.
// - Every other op runs in the dtypes it is given (binary ops promote as usual).
// float64 tensors are never cast. Backward runs with autocast off (its dtypes follow the
// forward's).
#pragma once

#include <optional>

#include "ember/device.hpp"
#include "ember/dtype.hpp"

namespace ember {

/// Autocast settings of the calling thread: per device type, on or off and the reduced dtype.
struct AutocastState {
  bool cpu_enabled = false;
  bool cuda_enabled = false;
  DType cpu_dtype = kBFloat16;
  DType cuda_dtype = kFloat16;
};

/// The calling thread's settings.
AutocastState autocast_state();
/// Replaces them (AutocastGuard restores the previous ones at scope exit).
void set_autocast_state(const AutocastState& state);
/// Whether a scope is active for `device_type` on this thread (torch.is_autocast_enabled).
bool is_autocast_enabled(DeviceType device_type);
/// The dtype lower-precision ops are cast to on `device_type` (torch.get_autocast_dtype).
DType get_autocast_dtype(DeviceType device_type);

/// Restores the thread's autocast settings when it goes out of scope.
class AutocastGuard {
 public:
  /// Sets `device_type`'s settings (every device type's when empty) to `enabled` and `dtype`.
  /// ValueError unless dtype is kBFloat16 or kFloat16.
  AutocastGuard(DType dtype, std::optional<DeviceType> device_type, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  AutocastState prev_;
};

/// An autocast scope: `auto scope = ember::autocast(kBFloat16);` covers CPU and CUDA ops,
/// `ember::autocast(kFloat16, kCUDA)` only CUDA ops; `enabled = false` turns autocast off inside.
[[nodiscard]] inline AutocastGuard autocast(DType dtype = kBFloat16,
                                            std::optional<DeviceType> device_type = std::nullopt,
                                            bool enabled = true) {
  return AutocastGuard(dtype, device_type, enabled);
}

}  // namespace ember
