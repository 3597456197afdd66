// A deliberate data race in an OpenMP loop, the pattern of parallel_for (src/core/parallel.hpp).
// `make tsan` builds it with the tsan preset's flags and requires ThreadSanitizer to report it:
// the proof that the stage (clang's TSan, LLVM's libomp, its Archer tool and
// ignore_noninstrumented_modules=1) sees races inside OpenMP regions and is not silent. The
// second loop reads the array after the first loop's barrier and must not be reported.
#include <cstdio>

int main() {
  long racy_sum = 0;
  long values[4096] = {};
#pragma omp parallel for num_threads(2)
  for (int i = 0; i < 4096; ++i) {
    values[i] = i;
    racy_sum += i;  // the race: every thread adds to one variable without synchronisation
  }
  long sum = 0;
#pragma omp parallel for num_threads(2) reduction(+ : sum)
  for (int i = 0; i < 4096; ++i) sum += values[i];
  std::printf("racy %ld, reduced %ld\n", racy_sum, sum);
  return 0;
}
