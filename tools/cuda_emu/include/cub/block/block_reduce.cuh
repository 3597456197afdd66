// cuda_emu: cub::BlockReduce. Every thread stores its input, one barrier, thread 0 folds them in
// rank order; as in CUB the aggregate is valid in thread 0 only (the others get their input back),
// and the TempStorage may be reused only after a __syncthreads.
#pragma once

#include "../util_emu.cuh"

namespace cub {

template <class T, int BLOCK_DIM_X, BlockReduceAlgorithm ALGORITHM = BLOCK_REDUCE_WARP_REDUCTIONS,
          int BLOCK_DIM_Y = 1, int BLOCK_DIM_Z = 1, int LEGACY_PTX_ARCH = 0>
class BlockReduce {
  static constexpr int kThreads = BLOCK_DIM_X * BLOCK_DIM_Y * BLOCK_DIM_Z;

 public:
  struct TempStorage {
    alignas(T) unsigned char slots[sizeof(T) * kThreads];
  };

  explicit BlockReduce(TempStorage& storage)
      : storage_(storage), tid_(emu::linear_tid<BLOCK_DIM_X, BLOCK_DIM_Y, BLOCK_DIM_Z>("cub::BlockReduce")) {}

  T Sum(T input) { return Reduce(input, cub::Sum{}); }
  T Sum(T input, int num_valid) { return Reduce(input, cub::Sum{}, num_valid); }

  template <class Op>
  T Reduce(T input, Op op) {
    return Reduce(input, op, kThreads);
  }

  template <class Op>
  T Reduce(T input, Op op, int num_valid) {
    T* slots = reinterpret_cast<T*>(storage_.slots);
    slots[tid_] = input;
    ::ember_emu::syncthreads("cub::BlockReduce", 0);
    if (tid_ != 0) return input;
    T acc = slots[0];
    for (int i = 1; i < num_valid && i < kThreads; ++i) acc = op(acc, slots[i]);
    return acc;
  }

 private:
  TempStorage& storage_;
  int tid_;
};

}  // namespace cub
