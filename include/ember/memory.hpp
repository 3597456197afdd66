// CPU memory statistics: bytes held by tensors Ember allocated (not from_blob memory), like
// torch.cuda.memory_allocated / max_memory_allocated for the CPU allocator.
#pragma once

#include <cstdint>

namespace ember {

struct MemoryStats {
  int64_t allocated = 0;      // bytes live now
  int64_t peak = 0;           // most bytes live at once since the last reset_peak_memory_stats()
  int64_t num_allocations = 0;  // allocations made since the process started
};

MemoryStats cpu_memory_stats();
/// Sets the peak to the bytes live now.
void reset_peak_memory_stats();

}  // namespace ember
