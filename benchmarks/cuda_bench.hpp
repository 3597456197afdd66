// The GPU benchmarks' common harness (bench_cuda_*.cpp): CUDA-event timing with an L2 flush
// before every timed run, case registration, and the error flag main returns.
//
// Timing: two untimed warm-up runs, then per benchmark iteration an L2 flush (a row sum over a
// 256 MiB buffer through cuda::reduce: a read leaves clean lines, whereas a memset would leave
// ~L2-size dirty lines whose write-back lands inside the timed run), the start event, one run,
// the stop event, all on the current stream; the flush is queued GPU work ahead of the start
// event, so host launch latency hides behind it. Google Benchmark gets the event time as manual
// time: a fixed number of runs per repetition, bench::repetitions() repetitions, the median
// reported by bench::ratio_main.
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "core/kernels.hpp"
#include "ember/ember.hpp"

namespace ember::bench {

constexpr int kRunsPerRepetition = 20;  // timed runs per repetition (2 in quick mode)
constexpr int64_t kFlushRows = 1024;    // the flush buffer: (1024, 65536) float32 = 256 MiB
constexpr int64_t kFlushCols = 65536;

/// Set when a case raised or computed a wrong result: main returns 1.
inline bool g_failed = false;

inline TensorOptions gpu(DType dt = kFloat32) { return TensorOptions(dt).device(Device(kCUDA)); }

inline cudaStream_t stream_of(const cuda::Stream& s) {
  return static_cast<cudaStream_t>(s.handle());
}

inline void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(e));
}

/// Evicts the L2 cache by reading a 256 MiB buffer (zeroed once): a row sum through the
/// reduction kernel, whose (1024, 1) output is 4 KiB.
class L2Flush {
 public:
  L2Flush()
      : buffer_(zeros({kFlushRows, kFlushCols}, gpu())), sums_(empty({kFlushRows, 1}, gpu())) {}
  void operator()() const { cuda::reduce(sums_, buffer_, dims_, ReduceOp::Sum); }

 private:
  Tensor buffer_, sums_;
  std::vector<int64_t> dims_ = {1};
};

/// The flush buffer, made by main once a GPU is known to exist and reset before main returns
/// (not at static destruction, when the allocator or the CUDA runtime may be gone).
inline std::unique_ptr<L2Flush> g_flush;

/// Times `work` (GPU work queued on the current stream) with CUDA events, as described above.
template <class F>
void time_gpu(benchmark::State& state, F&& work) {
  const cuda::Stream s = cuda::current_stream();
  cuda::Event start(/*enable_timing=*/true), stop(/*enable_timing=*/true);
  work();
  work();
  s.synchronize();
  for (auto _ : state) {
    (*g_flush)();
    start.record(s);
    work();
    stop.record(s);
    stop.synchronize();
    state.SetIterationTime(static_cast<double>(start.elapsed_ms(stop)) * 1e-3);
  }
}

/// Registers a GPU case timed by time_gpu (or a timer of its own with manual time): `runs` runs
/// per repetition (0: kRunsPerRepetition, 2 in quick mode), `reps` repetitions (0: repetitions())
/// reported as aggregates. An exception marks the case as an error.
inline void add_gpu_case(const std::string& name, std::function<void(benchmark::State&)> f,
                         int runs = 0, int reps = 0) {
  auto guarded = [name, f](benchmark::State& state) {
    try {
      f(state);
    } catch (const std::exception& e) {
      g_failed = true;
      state.SkipWithError((name + ": " + e.what()).c_str());
    }
  };
  benchmark::RegisterBenchmark(name.c_str(), guarded)
      ->Unit(benchmark::kMicrosecond)
      ->UseManualTime()
      ->Iterations(runs > 0 ? runs : (quick_mode() ? 2 : kRunsPerRepetition))
      ->Repetitions(reps > 0 ? reps : repetitions())
      ->ReportAggregatesOnly(true);
}

}  // namespace ember::bench
