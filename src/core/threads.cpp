// Thread count for CPU kernels.
#include <atomic>

#include "core/parallel.hpp"
#include "ember/error.hpp"
#include "ember/ops.hpp"

namespace ember {
namespace {
int default_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
std::atomic<int> g_threads{0};
thread_local int t_threads = 0;  // a per-thread cap (DataLoader workers run single-threaded)
}  // namespace

void set_thread_local_num_threads(int n) { t_threads = n; }

void set_num_threads(int n) {
  EMBER_CHECK(n >= 1, ValueError, "[set_num_threads] expected at least 1 thread, got ", n);
  g_threads.store(n);
}

int get_num_threads() {
  if (t_threads > 0) return t_threads;
  int n = g_threads.load();
  return n > 0 ? n : default_threads();
}

}  // namespace ember
