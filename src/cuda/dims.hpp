// Merging the dims of strided tensors that walk every tensor as one dim: the shared step of the
// kernels that address elements from coordinates (reduce.cu's geometry, copy.cu's row copies).
// Host-only. Private to src/cuda.
#pragma once

#include <cstdint>
#include <initializer_list>

namespace ember::cuda::detail {

/// Merges each of the n dims (size[d], and one stride per tensor: s[d] for each s in `strides`,
/// outermost first) into its outer neighbour where the two walk every tensor as one dim (the
/// outer stride the inner size times the inner stride, in each); n becomes the merged count.
/// The elements and their order are unchanged; fewer dims mean fewer divisions per offset.
inline void coalesce_dims(int& n, int64_t* size, std::initializer_list<int64_t*> strides) {
  int m = 0;
  for (int d = 0; d < n; ++d) {
    bool joins = m > 0;
    for (const int64_t* s : strides) joins = joins && s[m - 1] == size[d] * s[d];
    if (joins) {
      size[m - 1] *= size[d];
      for (int64_t* s : strides) s[m - 1] = s[d];
      continue;
    }
    size[m] = size[d];
    for (int64_t* s : strides) s[m] = s[d];
    ++m;
  }
  n = m;
}

}  // namespace ember::cuda::detail
