// Block-wide double sums by a fixed tree (warp shuffles, then one warp over the warp sums): the
// deterministic reductions of the fused normalization and cross-entropy kernels. Private to
// src/cuda.
#pragma once

#include <cuda_runtime.h>

namespace ember::cuda::detail {

__device__ __forceinline__ double warp_sum(double v) {
  for (int delta = 16; delta > 0; delta /= 2) v += __shfl_down_sync(0xffffffffu, v, delta);
  return v;
}

/// The sum of every thread's v by a fixed tree, returned to every thread (blockDim.x a multiple
/// of 32, blockDim.y == 1). shared[0..31] holds the warp sums, shared[32] the result, so
/// consecutive calls need no barrier between them.
__device__ __forceinline__ double block_sum(double v, double* shared /* [33] */) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_sum(v);
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x / 32;
    v = warp_sum(lane < warps ? shared[lane] : 0.0);
    if (lane == 0) shared[32] = v;
  }
  __syncthreads();
  return shared[32];
}

}  // namespace ember::cuda::detail
