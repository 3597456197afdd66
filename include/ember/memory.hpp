// CPU memory statistics: bytes held by tensors Ember allocated (not from_blob memory), like
// torch.cuda.memory_allocated / max_memory_allocated for the CPU allocator, and its block cache.
#pragma once

#include <cstddef>
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

/// The largest single allocation Ember makes, in bytes, on any device: a tensor, a loaded file's
/// buffer, a pinned copy. Default 1 TiB, or EMBER_MAX_ALLOC_MB megabytes when that is set at
/// start-up. A larger request raises ValueError naming the op and the size before any memory is
/// asked for, so a corrupt or hostile file header can never end in std::bad_alloc or an
/// out-of-memory kill.
size_t max_allocation_bytes();
/// Sets that limit (bytes, > 0) for the allocations that follow; returns the previous one.
size_t set_max_allocation_bytes(size_t bytes);

}  // namespace ember
