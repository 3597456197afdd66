// Memory-bound kernels: Ember's CPU elementwise and softmax kernels (the cpu:: calls the ops make,
// into preallocated outputs) against the ceiling of a memcpy moving the same bytes, and against a
// plain loop over the C library's scalar functions (what the kernels called before vec_math.hpp).
// Bytes/s counts each element read once and written once (8 bytes per float32 element).
//
// Names: <op>/<elements>/t<threads>/<impl>; the ceiling of every case is memcpy/<elements>/tN.
#include <cmath>
#include <cstring>
#include <string>

#include "bench_common.hpp"
#include "core/kernels.hpp"
#include "core/parallel.hpp"
#include "ember/ember.hpp"

namespace {

using namespace ember;

struct Buffers {
  Tensor x, out;
  explicit Buffers(int64_t n, int64_t row = 0) {
    Generator gen(7);
    x = randn(row > 0 ? std::vector<int64_t>{n / row, row} : std::vector<int64_t>{n}, gen) * 2.0;
    out = empty_like(x);
  }
};

/// Threads for the case, restored after.
struct ThreadScope {
  int saved;
  explicit ThreadScope(int t) : saved(get_num_threads()) { set_num_threads(t); }
  ~ThreadScope() { set_num_threads(saved); }
};

void set_bytes(benchmark::State& state, int64_t n) {
  state.SetBytesProcessed(state.iterations() * n * 8);
}

void bm_memcpy(benchmark::State& state, int64_t n, int threads) {
  Buffers b(n);
  ThreadScope ts(threads);
  const float* src = b.x.data_ptr<float>();
  float* dst = b.out.data_ptr<float>();
  for (auto _ : state) {
    parallel_for(n, (n + threads - 1) / threads, [&](int64_t i0, int64_t i1) {
      std::memcpy(dst + i0, src + i0, static_cast<size_t>(i1 - i0) * sizeof(float));
    });
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

/// A scalar function of the C library in the same parallel, chunked loop the kernels use.
template <class F>
void bm_libm(benchmark::State& state, int64_t n, int threads, F f) {
  Buffers b(n);
  ThreadScope ts(threads);
  const float* x = b.x.data_ptr<float>();
  float* o = b.out.data_ptr<float>();
  for (auto _ : state) {
    parallel_for(n, kElementwiseGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) o[i] = f(x[i]);
    });
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

void bm_unary(benchmark::State& state, int64_t n, int threads, UnaryOp op) {
  Buffers b(n);
  ThreadScope ts(threads);
  for (auto _ : state) {
    cpu::unary(b.out, b.x, op, 0.0, 0.0);
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

void bm_softmax(benchmark::State& state, int64_t n, int64_t row, int threads, bool log) {
  Buffers b(n, row);
  ThreadScope ts(threads);
  for (auto _ : state) {
    cpu::softmax(b.out, b.x, 1, log);
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

/// Softmax rows with libm's expf, the shape of the kernel before vec_math.hpp.
void bm_softmax_libm(benchmark::State& state, int64_t n, int64_t row, int threads) {
  Buffers b(n, row);
  ThreadScope ts(threads);
  const float* x = b.x.data_ptr<float>();
  float* o = b.out.data_ptr<float>();
  for (auto _ : state) {
    parallel_for(n / row, std::max<int64_t>(1, kElementwiseGrain / row), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* p = x + r * row;
        float* q = o + r * row;
        float m = p[0];
        for (int64_t i = 1; i < row; ++i) m = std::fmax(m, p[i]);
        double s = 0;
        for (int64_t i = 0; i < row; ++i) {
          q[i] = std::exp(p[i] - m);
          s += q[i];
        }
        const float k = static_cast<float>(1.0 / s);
        for (int64_t i = 0; i < row; ++i) q[i] *= k;
      }
    });
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

template <class F>
void add(const std::string& name, F f) {
  benchmark::RegisterBenchmark(name.c_str(), f)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime()
      ->MinTime(bench::quick_mode() ? 0.001 : 0.1)
      ->Repetitions(bench::repetitions())
      ->ReportAggregatesOnly(true);
}

void register_all() {
  const int64_t n = bench::quick_mode() ? 4096 : 1 << 22;  // 4 Mi floats: 16 MiB each way
  const std::string ns = std::to_string(n);
  for (int t = 1; t <= 2; ++t) {
    const std::string tt = "/t" + std::to_string(t) + "/";
    add("memcpy/" + ns + tt + "probe", [=](benchmark::State& s) { bm_memcpy(s, n, t); });
    struct U {
      const char* name;
      UnaryOp op;
      float (*libm)(float);
    };
    const U cases[] = {
        {"exp", UnaryOp::Exp, [](float v) { return std::exp(v); }},
        {"tanh", UnaryOp::Tanh, [](float v) { return std::tanh(v); }},
        {"sigmoid", UnaryOp::Sigmoid, [](float v) { return 1.0f / (1.0f + std::exp(-v)); }},
        {"gelu_tanh", UnaryOp::GeluTanh,
         [](float v) { return 0.5f * v * (1.0f + std::tanh(0.7978845608f * (v + 0.044715f * v * v * v))); }},
        {"gelu_erf", UnaryOp::GeluErf,
         [](float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678f)); }},
        {"relu", UnaryOp::Relu, [](float v) { return v < 0 ? 0.0f : v; }},
    };
    for (const U& u : cases) {
      add(std::string(u.name) + "/" + ns + tt + "ember",
          [=](benchmark::State& s) { bm_unary(s, n, t, u.op); });
      add(std::string(u.name) + "/" + ns + tt + "libm",
          [=](benchmark::State& s) { bm_libm(s, n, t, u.libm); });
    }
    for (int64_t row : {int64_t{128}, int64_t{1024}}) {
      if (row > n) continue;
      const std::string base = "softmax_rows" + std::to_string(row) + "/" + ns + tt;
      add(base + "ember", [=](benchmark::State& s) { bm_softmax(s, n, row, t, false); });
      add(base + "libm", [=](benchmark::State& s) { bm_softmax_libm(s, n, row, t); });
      add("log_softmax_rows" + std::to_string(row) + "/" + ns + tt + "ember",
          [=](benchmark::State& s) { bm_softmax(s, n, row, t, true); });
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  return ember::bench::ratio_main(argc, argv, [](const std::string& key) {
    // <op>/<n>/tN -> memcpy/<n>/tN
    const size_t first = key.find('/');
    if (first == std::string::npos || key.rfind("memcpy/", 0) == 0) return std::string();
    return "memcpy" + key.substr(first);
  });
}
