// Shared by the CUDA sources: the error check after every runtime call and launch, the device
// guard, and the shared-memory opt-in of the tensor-core kernels. Private to src/cuda.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "ember/error.hpp"

namespace ember::cuda::detail {

/// Throws DeviceError naming the call and CUDA's message unless err is cudaSuccess; the sticky
/// error state of a failed call is cleared first so later calls start clean.
inline void check(cudaError_t err, const char* what, const char* file, int line) {
  if (err == cudaSuccess) return;
  (void)cudaGetLastError();
  throw DeviceError(ember::detail::str_cat("[cuda] ", what, " failed: ", cudaGetErrorName(err),
                                           " (", cudaGetErrorString(err), ") at ", file, ":",
                                           line));
}

/// The calling thread's current stream on `device` (an existing device's index, >= 0): what
/// current_stream(device).handle() returns, without building a Stream (the launch and allocation
/// path asks once per op).
cudaStream_t current_stream_handle(int device);

/// Sets the current device for a scope and restores the previous one on exit.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice", __FILE__, __LINE__);
    if (device >= 0 && device != previous_)
      check(cudaSetDevice(device), "cudaSetDevice", __FILE__, __LINE__);
  }
  ~DeviceGuard() { (void)cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

/// Whether the GPU `device` runs the sm_90a wgmma kernels for real: they were compiled for it
/// (or the emulator models them). Probed once per device (defined in gemm_tc.cu).
bool wgmma_available(int device);

/// Attribute kAttr of `device` (cached per thread, attribute and device).
template <cudaDeviceAttr kAttr>
int device_attribute(int device) {
  thread_local int cached_device = -1;
  thread_local int value = 0;
  if (cached_device != device) {
    check(cudaDeviceGetAttribute(&value, kAttr, device), "cudaDeviceGetAttribute", __FILE__,
          __LINE__);
    cached_device = device;
  }
  return value;
}

/// Streaming multiprocessors of `device`.
inline int64_t sm_count(int device) {
  return device_attribute<cudaDevAttrMultiProcessorCount>(device);
}

/// True when ptr is 16-byte aligned (a cp.async / vector-load chunk).
inline bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; }

/// Raises kKernel's dynamic shared-memory limit to `bytes` (above 48 KiB needs the opt-in), once
/// per thread and device; the caller has made `device` current.
template <auto kKernel>
void opt_in_smem(int bytes, int device) {
  thread_local int configured_device = -1;
  if (configured_device == device) return;
  check(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
        "cudaFuncSetAttribute", __FILE__, __LINE__);
  configured_device = device;
}

}  // namespace ember::cuda::detail

/// Checks a CUDA runtime call: EMBER_CUDA_CHECK(cudaMemcpyAsync(...)).
#define EMBER_CUDA_CHECK(call) ::ember::cuda::detail::check((call), #call, __FILE__, __LINE__)
/// Checks the launch just made (configuration errors; execution errors surface at the next sync).
#define EMBER_CUDA_CHECK_LAUNCH() \
  ::ember::cuda::detail::check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
