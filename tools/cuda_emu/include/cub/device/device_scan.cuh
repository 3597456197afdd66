// cuda_emu: cub::DeviceScan (run on the host at the call: the emulated stream is synchronous).
#pragma once

#include "../util_emu.cuh"

namespace cub {

struct DeviceScan {
  template <class InIt, class OutIt, class NumItemsT>
  static cudaError_t ExclusiveSum(void* d_temp_storage, size_t& temp_storage_bytes, InIt d_in,
                                  OutIt d_out, NumItemsT num_items, cudaStream_t stream = 0) {
    return Scan(d_temp_storage, temp_storage_bytes, d_in, d_out, num_items, stream, true,
                "cub::DeviceScan::ExclusiveSum");
  }
  template <class InIt, class OutIt, class NumItemsT>
  static cudaError_t InclusiveSum(void* d_temp_storage, size_t& temp_storage_bytes, InIt d_in,
                                  OutIt d_out, NumItemsT num_items, cudaStream_t stream = 0) {
    return Scan(d_temp_storage, temp_storage_bytes, d_in, d_out, num_items, stream, false,
                "cub::DeviceScan::InclusiveSum");
  }

 private:
  template <class InIt, class OutIt, class NumItemsT>
  static cudaError_t Scan(void* d_temp, size_t& bytes, InIt in, OutIt out, NumItemsT num_items,
                          cudaStream_t, bool exclusive, const char* what) {
    using T = typename std::iterator_traits<InIt>::value_type;
    const size_t n = num_items > 0 ? static_cast<size_t>(num_items) : 0;
    if (!emu::temp_storage(d_temp, bytes, 256 + n / 64, what)) return cudaSuccess;
    emu::require_device(in, n, what);
    emu::require_device(out, n, what);
    T acc = T(0);
    for (size_t i = 0; i < n; ++i) {
      const T v = in[i];  // read before the write: in-place scans are allowed
      if (exclusive) {
        out[i] = acc;
        acc = acc + v;
      } else {
        acc = acc + v;
        out[i] = acc;
      }
    }
    return cudaSuccess;
  }
};

}  // namespace cub
