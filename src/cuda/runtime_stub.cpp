// CUDA runtime queries in a build without CUDA: there is never a GPU.
#include "ember/cuda/cuda.hpp"

namespace ember::cuda {
bool is_built() { return false; }
bool is_available() { return false; }
int device_count() { return 0; }
}  // namespace ember::cuda
