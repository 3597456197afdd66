// Process-wide CUDA math settings that exist in every build (include/ember/cuda/cuda.hpp): they
// only choose kernels, so a build without CUDA keeps them too and they simply never apply.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/kernels.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/error.hpp"

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

/// EMBER_CUDA_BACKEND at start-up: "ember" (or unset), or "vendor" ("cublas" and "cudnn" name
/// the same backend); anything else, or the vendor backend in a build without cuBLAS, raises
/// ValueError / DeviceError at the first use.
Backend backend_from_environment() {
  const char* v = std::getenv("EMBER_CUDA_BACKEND");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "ember") == 0) return Backend::kEmber;
  EMBER_CHECK(std::strcmp(v, "vendor") == 0 || std::strcmp(v, "cublas") == 0 ||
                  std::strcmp(v, "cudnn") == 0,
              ValueError,
              "[cuda::backend] EMBER_CUDA_BACKEND must be 'ember' or 'vendor' ('cublas', 'cudnn'), "
              "got '",
              v, "'");
  EMBER_CHECK(cublas_available(), DeviceError, "[cuda::backend] EMBER_CUDA_BACKEND=", v,
              ", but this build has no cuBLAS");
  return Backend::kVendor;
}

std::atomic<Backend>& backend_flag() {
  static std::atomic<Backend> flag{backend_from_environment()};
  return flag;
}

}  // namespace

void set_allow_tf32(bool allow) { tf32_flag().store(allow, std::memory_order_relaxed); }
bool allow_tf32() { return tf32_flag().load(std::memory_order_relaxed); }

void set_backend(Backend b) {
  EMBER_CHECK(b == Backend::kEmber || b == Backend::kVendor, ValueError,
              "[cuda::set_backend] unknown backend ", static_cast<int>(b));
  EMBER_CHECK(b != Backend::kVendor || cublas_available(), DeviceError,
              "[cuda::set_backend] cuBLAS is not available in this build (",
              is_built() ? "the CPU emulator" : "built without CUDA", ")");
  backend_flag().store(b, std::memory_order_relaxed);
}
Backend backend() { return backend_flag().load(std::memory_order_relaxed); }

bool cudnn_is_available() { return cudnn_available(); }

}  // namespace ember::cuda
