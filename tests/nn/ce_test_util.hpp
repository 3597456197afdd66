// Inputs of the cross-entropy tests (tests/nn/test_cross_entropy_fused.cpp on the CPU,
// tests/cuda/test_cuda_cross_entropy.cpp on CUDA): seeded logits, class targets with some ignored,
// and the arguments of one call.
#pragma once

#include <string>
#include <vector>

#include "ember/ember.hpp"

namespace ember::test::ce {

/// Logits of `sizes`, uniform in [-amp, amp) from `seed`, in dtype dt.
inline Tensor rnd(const std::vector<int64_t>& sizes, uint64_t seed, DType dt = kFloat64,
                  double amp = 3.0) {
  Generator g(seed);
  Tensor t = empty(sizes, kFloat64);
  uniform_(t, -amp, amp, g);
  return t.to(dt);
}

/// int64 class indices of the given shape in [0, C), about every `ignore_every`-th one replaced by
/// ignore_index (none when 0).
inline Tensor classes(const std::vector<int64_t>& sizes, int64_t C, uint64_t seed,
                      int64_t ignore_every = 0, int64_t ignore_index = -100) {
  Generator g(seed);
  Tensor t = randint(0, C, sizes, g);
  if (ignore_every > 0) {
    Tensor r = randint(0, ignore_every, sizes, g);
    t = where(eq(r, Scalar(int64_t{0})), Scalar(ignore_index), t);
  }
  return t;
}

/// The arguments of one cross_entropy call besides input and target.
struct Opts {
  Tensor weight;
  int64_t ignore_index = -100;
  std::string reduction = "mean";
  double label_smoothing = 0.0;
};

/// The options of the 16-bit logit cases: `reduction`, and for variant 1 a float32 class weight
/// in [0.5, 1.5) (from `seed`) and label smoothing 0.1.
inline Opts mixed_precision_opts(int variant, const std::string& reduction, int64_t C,
                                 uint64_t seed) {
  Opts o;
  o.reduction = reduction;
  if (variant == 1) {
    o.weight = rnd({C}, seed, kFloat32, 0.5) + 1.0;
    o.label_smoothing = 0.1;
  }
  return o;
}

}  // namespace ember::test::ce
