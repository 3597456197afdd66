// CPU parallelism: OpenMP over index ranges. Work is split into chunks whose boundaries depend
// only on the range and the grain, never on the thread count, so any per-chunk result is the same
// for 1 or 8 threads.
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ember {

int get_num_threads();
/// Overrides the thread count for kernels called from this thread (0 removes the override).
/// DataLoader workers set 1, so that several workers do not each start an OpenMP team.
void set_thread_local_num_threads(int n);

/// Calls f(begin, end) over [0, n) in chunks of `grain`, in parallel when n > grain.
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t chunks = (n + grain - 1) / grain;
#ifdef _OPENMP
  if (chunks > 1 && get_num_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static) num_threads(get_num_threads())
    for (int64_t c = 0; c < chunks; ++c) f(c * grain, std::min(n, (c + 1) * grain));
    return;
  }
#endif
  for (int64_t c = 0; c < chunks; ++c) f(c * grain, std::min(n, (c + 1) * grain));
}

/// Elements per chunk for memory-bound elementwise loops.
inline constexpr int64_t kElementwiseGrain = 32768;

}  // namespace ember
