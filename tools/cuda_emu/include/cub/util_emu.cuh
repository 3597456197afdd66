// cuda_emu: what the emulated CUB headers share (not a CUB header).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <type_traits>

namespace cub {

enum BlockReduceAlgorithm {
  BLOCK_REDUCE_RAKING_COMMUTATIVE_ONLY,
  BLOCK_REDUCE_RAKING,
  BLOCK_REDUCE_WARP_REDUCTIONS,
};
enum BlockScanAlgorithm {
  BLOCK_SCAN_RAKING,
  BLOCK_SCAN_RAKING_MEMOIZE,
  BLOCK_SCAN_WARP_SCANS,
};

struct Sum {
  template <class T>
  T operator()(const T& a, const T& b) const {
    return a + b;
  }
};
struct Max {
  template <class T>
  T operator()(const T& a, const T& b) const {
    return a < b ? b : a;
  }
};
struct Min {
  template <class T>
  T operator()(const T& a, const T& b) const {
    return b < a ? b : a;
  }
};

namespace emu {

/// The calling thread's linear rank in a block of shape (DX, DY, DZ); aborts when the launch's
/// block is not that shape (a CUB block primitive's template parameters must match it).
template <int DX, int DY, int DZ>
int linear_tid(const char* what) {
  if (blockDim.x != static_cast<unsigned>(DX) || blockDim.y != static_cast<unsigned>(DY) ||
      blockDim.z != static_cast<unsigned>(DZ))
    ember_emu::fatal("%s<BLOCK_DIM %d x %d x %d> used in a block of %u x %u x %u threads", what, DX,
                     DY, DZ, blockDim.x, blockDim.y, blockDim.z);
  return static_cast<int>(threadIdx.x + threadIdx.y * DX + threadIdx.z * DX * DY);
}

/// Device-wide algorithms: the temp-storage protocol. A null d_temp_storage asks for the size;
/// otherwise the storage must be device memory of at least that size, and is scribbled on.
inline bool temp_storage(void* d_temp, size_t& bytes, size_t needed, const char* what) {
  needed = needed < 1 ? 1 : needed;
  if (d_temp == nullptr) {
    bytes = needed;
    return false;
  }
  if (bytes < needed)
    ember_emu::fatal("%s: temp_storage_bytes %zu is below the %zu bytes the size query returned",
                     what, bytes, needed);
  ember_emu::require_device_range(d_temp, needed, what);
  std::memset(d_temp, 0xA5, needed);
  return true;
}

template <class It>
void require_device(It it, size_t n, const char* what) {
  if constexpr (std::is_pointer_v<It>)
    ember_emu::require_device_range(static_cast<const void*>(it), n * sizeof(*it), what);
}

}  // namespace emu
}  // namespace cub
