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
}  // namespace

void set_num_threads(int n) {
  EMBER_CHECK(n >= 1, ValueError, "[set_num_threads] expected at least 1 thread, got ", n);
  g_threads.store(n);
}

int get_num_threads() {
  int n = g_threads.load();
  return n > 0 ? n : default_threads();
}

}  // namespace ember
