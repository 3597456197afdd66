// CUDA runtime queries. Any failing query (no driver: error 35, no device: error 100, ...) means
// "no GPU"; the error is cleared so later runtime calls start clean.
#include <cuda_runtime.h>

#include "ember/cuda/cuda.hpp"

namespace ember::cuda {

bool is_built() { return true; }

int device_count() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

bool is_available() { return device_count() > 0; }

}  // namespace ember::cuda
