// cuda_emu: cub::BlockScan. Every thread stores its input, a barrier, thread 0 scans in rank
// order, a barrier, every thread reads its result. The TempStorage may be reused only after a
// __syncthreads.
#pragma once

#include "../util_emu.cuh"

namespace cub {

template <class T, int BLOCK_DIM_X, BlockScanAlgorithm ALGORITHM = BLOCK_SCAN_RAKING,
          int BLOCK_DIM_Y = 1, int BLOCK_DIM_Z = 1, int LEGACY_PTX_ARCH = 0>
class BlockScan {
  static constexpr int kThreads = BLOCK_DIM_X * BLOCK_DIM_Y * BLOCK_DIM_Z;

 public:
  struct TempStorage {
    alignas(T) unsigned char slots[sizeof(T) * kThreads];
    alignas(T) unsigned char results[sizeof(T) * (kThreads + 1)];
  };

  explicit BlockScan(TempStorage& storage)
      : storage_(storage), tid_(emu::linear_tid<BLOCK_DIM_X, BLOCK_DIM_Y, BLOCK_DIM_Z>("cub::BlockScan")) {}

  void ExclusiveSum(T input, T& output) {
    T aggregate;
    Scan(input, output, aggregate, cub::Sum{}, T(0), true);
  }
  void ExclusiveSum(T input, T& output, T& block_aggregate) {
    Scan(input, output, block_aggregate, cub::Sum{}, T(0), true);
  }
  void InclusiveSum(T input, T& output) {
    T aggregate;
    Scan(input, output, aggregate, cub::Sum{}, T(0), false);
  }
  void InclusiveSum(T input, T& output, T& block_aggregate) {
    Scan(input, output, block_aggregate, cub::Sum{}, T(0), false);
  }
  template <class Op>
  void ExclusiveScan(T input, T& output, T initial, Op op) {
    T aggregate;
    Scan(input, output, aggregate, op, initial, true);
  }
  template <class Op>
  void ExclusiveScan(T input, T& output, T initial, Op op, T& block_aggregate) {
    Scan(input, output, block_aggregate, op, initial, true);
  }
  template <class Op>
  void InclusiveScan(T input, T& output, Op op) {
    T aggregate;
    Scan(input, output, aggregate, op, T(), false);
  }

 private:
  template <class Op>
  void Scan(T input, T& output, T& aggregate, Op op, T initial, bool exclusive) {
    T* slots = reinterpret_cast<T*>(storage_.slots);
    T* results = reinterpret_cast<T*>(storage_.results);
    slots[tid_] = input;
    ::ember_emu::syncthreads("cub::BlockScan", 0);
    if (tid_ == 0) {
      if (exclusive) {
        T acc = initial;
        for (int i = 0; i < kThreads; ++i) {
          results[i] = acc;
          acc = op(acc, slots[i]);
        }
        results[kThreads] = acc;
      } else {
        T acc = slots[0];
        results[0] = acc;
        for (int i = 1; i < kThreads; ++i) results[i] = acc = op(acc, slots[i]);
        results[kThreads] = acc;
      }
    }
    ::ember_emu::syncthreads("cub::BlockScan", 1);
    output = results[tid_];
    aggregate = results[kThreads];
  }

  TempStorage& storage_;
  int tid_;
};

}  // namespace cub
