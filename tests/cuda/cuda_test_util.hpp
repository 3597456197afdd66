// Helpers of the CUDA tests: the visible skip without a GPU, and the elementwise comparison of a
// GPU result with the CPU's.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "ember/cuda/cuda.hpp"
#include "ember/ember.hpp"
#include "test_util.hpp"

namespace ember::test {

/// True with a GPU, and then every CUDA allocation is poisoned (NaN / -1 bytes) so an output
/// element a kernel leaves unwritten differs from the CPU's; otherwise prints "skipped: no CUDA
/// GPU on this machine" (a Catch warning).
inline bool gpu() {
  if (cuda::is_available()) {
    cuda::set_poison_allocations(true);
    return true;
  }
  WARN("skipped: no CUDA GPU on this machine");
  return false;
}

/// a (from the GPU) equals b (the CPU's) elementwise within tol relative, same shape and dtype;
/// NaN matches only NaN.
inline bool agree(const Tensor& a, const Tensor& b, double tol) {
  if (a.sizes() != b.sizes() || a.dtype() != b.dtype()) return false;
  const std::vector<double> x = values(a), y = values(b);
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i])) {
      if (std::isnan(x[i]) != std::isnan(y[i])) return false;
      continue;
    }
    if (x[i] != y[i] && !(std::abs(x[i] - y[i]) <= tol * (1.0 + std::abs(y[i])))) return false;
  }
  return true;
}

/// One rounding of dt, relative (0 for integers and bool: exact).
inline double tolerance(DType dt) {
  switch (dt) {
    case kFloat64: return 1e-12;
    case kFloat32: return 2e-6;
    case kFloat16: return 2e-3;
    case kBFloat16: return 1.6e-2;
    default: return 0.0;
  }
}

}  // namespace ember::test
