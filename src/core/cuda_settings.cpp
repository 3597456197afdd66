// Process-wide CUDA math settings that exist in every build (include/ember/cuda/cuda.hpp): they
// only choose kernels, so a build without CUDA keeps them too and they simply never apply.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "ember/cuda/cuda.hpp"

namespace ember::cuda {
namespace {

/// EMBER_ALLOW_TF32=1 at start-up turns TF32 on.
bool tf32_from_environment() {
  const char* v = std::getenv("EMBER_ALLOW_TF32");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

std::atomic<bool>& tf32_flag() {
  static std::atomic<bool> flag{tf32_from_environment()};
  return flag;
}

}  // namespace

void set_allow_tf32(bool allow) { tf32_flag().store(allow, std::memory_order_relaxed); }
bool allow_tf32() { return tf32_flag().load(std::memory_order_relaxed); }

}  // namespace ember::cuda
