// CPU memory statistics: bytes held by tensors Ember allocated (not from_blob memory), like
// torch.cuda.memory_allocated / max_memory_allocated for the CPU allocator, and its block cache.
#pragma once

#include <cstdint>

namespace ember {

struct MemoryStats {
  int64_t allocated = 0;      // bytes live now
  int64_t peak = 0;           // most bytes live at once since the last reset_peak_memory_stats()
  int64_t num_allocations = 0;  // allocations made since the process started
  int64_t cached = 0;           // freed blocks of 256 KiB or more kept for reuse (not allocated)
};

MemoryStats cpu_memory_stats();
/// Sets the peak to the bytes live now.
void reset_peak_memory_stats();
/// Frees the blocks the CPU allocator keeps for reuse (like torch.cuda.empty_cache). Blocks of
/// 256 KiB or more are kept after their tensors die, up to EMBER_CPU_CACHE_MB megabytes (default
/// 1024; 0 keeps none), and handed to the next allocation of the same size.
void empty_cpu_cache();

}  // namespace ember
