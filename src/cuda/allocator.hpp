// The CUDA caching allocator's entry point for the tensor core (src/core/tensor.cpp). Plain C++:
// no CUDA header. Private to the library.
#pragma once

#include <cstddef>
#include <memory>

#include "core/tensor_impl.hpp"

namespace ember::cuda::detail {

/// Device memory of at least nbytes on `device` for work on the calling thread's current stream
/// of that device, from the caching allocator (src/cuda/allocator.cu); the storage's deleter
/// gives it back. DeviceError when the device does not exist or its memory runs out (after the
/// cache was emptied and the cudaMalloc retried), ValueError above the allocation cap.
std::shared_ptr<Storage> allocate_storage(size_t nbytes, Device device, const char* op);

/// Page-locked host memory of nbytes (cudaHostAlloc; the deleter frees it), marked pinned.
/// DeviceError without a GPU or when the host memory cannot be locked.
std::shared_ptr<Storage> allocate_pinned_storage(size_t nbytes, const char* op);

}  // namespace ember::cuda::detail
