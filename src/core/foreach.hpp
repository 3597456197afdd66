// Grouping tensors for the multi-tensor (foreach) CUDA passes of clip_grad_norm_ and GradScaler
// (cuda::foreach_norm, foreach_mul_, foreach_unscale_ in src/core/kernels.hpp). Private to src/.
#pragma once

#include <vector>

#include "ember/tensor.hpp"

namespace ember {

/// Tensors of one foreach call (foreach true: contiguous float32/float64 CUDA tensors of one
/// device and dtype), or the ones no foreach pass takes (foreach false), which the caller
/// handles one op at a time.
struct ForeachGroup {
  bool foreach = false;
  std::vector<Tensor> tensors;
};

/// ts split into groups in the order each group's first tensor appears; within a group the
/// tensors keep their order.
inline std::vector<ForeachGroup> foreach_groups(const std::vector<Tensor>& ts) {
  std::vector<ForeachGroup> groups;
  for (const Tensor& t : ts) {
    const bool fits =
        t.is_cuda() && t.is_contiguous() && (t.dtype() == kFloat32 || t.dtype() == kFloat64);
    ForeachGroup* home = nullptr;
    for (ForeachGroup& g : groups) {
      const Tensor& f = g.tensors.front();
      if (g.foreach == fits && (!fits || (f.device() == t.device() && f.dtype() == t.dtype()))) {
        home = &g;
        break;
      }
    }
    if (home == nullptr) home = &groups.emplace_back(ForeachGroup{fits, {}});
    home->tensors.push_back(t);
  }
  return groups;
}

}  // namespace ember
