// cuda_emu: cub::DeviceRadixSort for unsigned integer keys (run on the host at the call: the
// emulated stream is synchronous). Stable, ordered by key bits [begin_bit, end_bit); the full keys
// are written out.
#pragma once

#include <algorithm>
#include <vector>

#include "../util_emu.cuh"

namespace cub {

struct DeviceRadixSort {
  template <class KeyT, class ValueT, class NumItemsT>
  static cudaError_t SortPairs(void* d_temp_storage, size_t& temp_storage_bytes, const KeyT* d_keys_in,
                               KeyT* d_keys_out, const ValueT* d_values_in, ValueT* d_values_out,
                               NumItemsT num_items, int begin_bit = 0, int end_bit = sizeof(KeyT) * 8,
                               cudaStream_t stream = 0) {
    return Sort(d_temp_storage, temp_storage_bytes, d_keys_in, d_keys_out, d_values_in, d_values_out,
                num_items, begin_bit, end_bit, stream, false, "cub::DeviceRadixSort::SortPairs");
  }
  template <class KeyT, class ValueT, class NumItemsT>
  static cudaError_t SortPairsDescending(void* d_temp_storage, size_t& temp_storage_bytes,
                                         const KeyT* d_keys_in, KeyT* d_keys_out,
                                         const ValueT* d_values_in, ValueT* d_values_out,
                                         NumItemsT num_items, int begin_bit = 0,
                                         int end_bit = sizeof(KeyT) * 8, cudaStream_t stream = 0) {
    return Sort(d_temp_storage, temp_storage_bytes, d_keys_in, d_keys_out, d_values_in, d_values_out,
                num_items, begin_bit, end_bit, stream, true,
                "cub::DeviceRadixSort::SortPairsDescending");
  }
  template <class KeyT, class NumItemsT>
  static cudaError_t SortKeys(void* d_temp_storage, size_t& temp_storage_bytes, const KeyT* d_keys_in,
                              KeyT* d_keys_out, NumItemsT num_items, int begin_bit = 0,
                              int end_bit = sizeof(KeyT) * 8, cudaStream_t stream = 0) {
    return Sort(d_temp_storage, temp_storage_bytes, d_keys_in, d_keys_out,
                static_cast<const int*>(nullptr), static_cast<int*>(nullptr), num_items, begin_bit,
                end_bit, stream, false, "cub::DeviceRadixSort::SortKeys");
  }

 private:
  template <class KeyT, class ValueT, class NumItemsT>
  static cudaError_t Sort(void* d_temp, size_t& bytes, const KeyT* keys_in, KeyT* keys_out,
                          const ValueT* values_in, ValueT* values_out, NumItemsT num_items,
                          int begin_bit, int end_bit, cudaStream_t, bool descending, const char* what) {
    static_assert(std::is_integral_v<KeyT> && std::is_unsigned_v<KeyT>,
                  "cuda_emu: DeviceRadixSort is emulated for unsigned integer keys only");
    const size_t n = num_items > 0 ? static_cast<size_t>(num_items) : 0;
    if (!emu::temp_storage(d_temp, bytes, 1024 + n * (sizeof(KeyT) + sizeof(ValueT)), what))
      return cudaSuccess;
    constexpr int kBits = static_cast<int>(sizeof(KeyT) * 8);
    if (begin_bit < 0 || end_bit > kBits || begin_bit > end_bit)
      ember_emu::fatal("%s: bit range [%d, %d) outside a %d-bit key", what, begin_bit, end_bit, kBits);
    emu::require_device(keys_in, n, what);
    emu::require_device(keys_out, n, what);
    const bool pairs = values_in != nullptr || values_out != nullptr;
    if (pairs) {
      emu::require_device(values_in, n, what);
      emu::require_device(values_out, n, what);
    }
    const int width = end_bit - begin_bit;
    const KeyT mask = width >= kBits ? static_cast<KeyT>(~KeyT(0))
                                     : static_cast<KeyT>((KeyT(1) << width) - 1);
    std::vector<KeyT> keys(keys_in, keys_in + n);
    std::vector<ValueT> values;
    if (pairs) values.assign(values_in, values_in + n);
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    auto digit = [&](size_t i) { return static_cast<KeyT>((keys[i] >> begin_bit) & mask); };
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return descending ? digit(b) < digit(a) : digit(a) < digit(b);
    });
    for (size_t i = 0; i < n; ++i) {
      keys_out[i] = keys[order[i]];
      if (pairs) values_out[i] = values[order[i]];
    }
    return cudaSuccess;
  }
};

}  // namespace cub
