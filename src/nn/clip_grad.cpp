// Gradient clipping by total norm and by value (torch.nn.utils semantics); on CUDA the norms and
// the scaling are multi-tensor passes (src/cuda/optim.cu) with no host sync.
#include <cmath>

#include "core/foreach.hpp"
#include "core/kernels.hpp"
#include "ember/autograd.hpp"
#include "ember/nn/utils.hpp"
#include "ember/ops.hpp"

namespace ember::nn::utils {

Tensor clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  EMBER_CHECK(norm_type > 0, ValueError,
              "[clip_grad_norm_] norm_type must be positive or inf, got ", norm_type);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : parameters) {
    EMBER_CHECK(p.defined(), ValueError, "[clip_grad_norm_] a parameter is undefined");
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return scalar_tensor(0.0, kFloat32);

  // One norm per grad, then the norm of those norms (in the grads' promoted dtype, on the first
  // grad's device). On CUDA the grads of one device and dtype that foreach takes (contiguous,
  // float32/float64) share one multi-tensor pass (PyTorch's _foreach_norm / _foreach_mul_: a
  // few launches for a model's hundreds of grads); the rest take one norm op each.
  DType dt = grads[0].dtype();
  for (const Tensor& g : grads) dt = promote_types(dt, g.dtype());
  const Device first = grads[0].device();
  std::vector<ForeachGroup> groups = foreach_groups(grads);
  std::vector<Tensor> norms;  // 1-D pieces in dt on `first`
  for (const ForeachGroup& group : groups) {
    if (group.foreach) {
      Tensor n = empty({static_cast<int64_t>(group.tensors.size())},
                       TensorOptions(group.tensors[0].dtype()).device(group.tensors[0].device()));
      cuda::foreach_norm(n, group.tensors, norm_type);
      norms.push_back(n.to(first).to(dt));
    } else {
      for (const Tensor& g : group.tensors)
        if (g.numel() > 0) norms.push_back(g.norm(norm_type).to(dt).to(first).reshape({1}));
    }
  }
  Tensor total = norms.empty() ? scalar_tensor(0.0, TensorOptions(dt).device(first))
                               : cat(norms).norm(norm_type);
  // The check reads the norm on the host; without it nothing waits for the GPU (the clip
  // coefficient stays a device tensor, as PyTorch's).
  if (error_if_nonfinite) {
    const double total_value = total.item<double>();
    EMBER_CHECK(std::isfinite(total_value), ValueError,
                "[clip_grad_norm_] the total norm of order ", norm_type,
                " of the gradients is non-finite (", total_value,
                "), so it cannot be clipped; pass error_if_nonfinite = false to scale the "
                "gradients by the non-finite norm anyway");
  }
  const Tensor clip_coef = clamp_max(max_norm / (total + 1e-6), 1.0);
  for (const ForeachGroup& group : groups) {
    if (group.foreach) {
      const Tensor& g0 = group.tensors[0];
      cuda::foreach_mul_(group.tensors, clip_coef.to(g0.device()).to(g0.dtype()).reshape({1}));
    } else {
      for (Tensor g : group.tensors) g.mul_(clip_coef);
    }
  }
  return total;
}

Tensor clip_grad_norm_(const Tensor& parameter, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  return clip_grad_norm_(std::vector<Tensor>{parameter}, max_norm, norm_type, error_if_nonfinite);
}

void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value) {
  NoGradGuard no_grad;
  for (const Tensor& p : parameters) {
    EMBER_CHECK(p.defined(), ValueError, "[clip_grad_value_] a parameter is undefined");
    Tensor g = p.grad();
    if (g.defined()) g.clamp_(-clip_value, clip_value);
  }
}

void clip_grad_value_(const Tensor& parameter, double clip_value) {
  clip_grad_value_(std::vector<Tensor>{parameter}, clip_value);
}

}  // namespace ember::nn::utils
