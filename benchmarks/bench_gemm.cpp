// SGEMM and DGEMM: Ember's packed GEMM (ember::cpu::gemm, what matmul/linear/conv call) beside
// OpenBLAS (cblas_?gemm, its thread count set to the case's) and Eigen 3.4, in one process with
// the repetitions interleaved at random. Reports GFLOP/s, Ember / peer, and the fraction of the
// float32 FMA peak measured by probes in the same run (12 independent FMA chains per thread, the
// most the FMA units can retire: 256-bit, and 512-bit where the CPU has AVX-512). Ember's fraction
// is taken against the probe of the micro-kernel it runs (cpu::gemm_isa()).
//
// OpenBLAS 0.3.21 falls back to its SSE3 "Prescott" kernels on CPUs newer than it knows (Emerald
// Rapids, for one). That is no fair peer, so when the core it picked lacks the CPU's vector
// extensions the program re-runs itself with OPENBLAS_CORETYPE naming the right family (SkylakeX
// for AVX-512, Haswell for AVX2). The context lines name the core used.
//
// Cases: square 64-2048 (NN, and NT/TN at 512/1024), the trainers' shapes (GPT MLP and
// projections, ResNet-20 im2col products), 1 and 2 threads. Names:
//   sgemm/<layout>/<M>x<N>x<K>/t<threads>/<impl>
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <unistd.h>

#include <Eigen/Core>
#include <cstdlib>
#include <string>

#include "bench_common.hpp"
#include "core/cpu/gemm_kernels.hpp"
#include "core/kernels.hpp"
#include "ember/ember.hpp"

namespace {

using namespace ember;

// ---- FMA peak probe ----

#if defined(__AVX2__) && defined(__FMA__)
__attribute__((noinline)) float fma_chains(int64_t n) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t k = 0; k < n; ++k)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}
#endif

__attribute__((noinline, target("avx512f"))) float fma_chains_avx512(int64_t n) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t k = 0; k < n; ++k)
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  float out[16];
  _mm512_storeu_ps(out, s);
  return out[0];
}

/// Float32 FLOP/s of `threads` threads each running 12 independent FMA chains of `bits`-bit
/// vectors.
void fma_peak(benchmark::State& state, int threads, int bits) {
  const int64_t n = 1 << 22;
  if (bits == 512 && !__builtin_cpu_supports("avx512f")) {
    state.SkipWithError("no AVX-512 on this CPU");
    return;
  }
#if !(defined(__AVX2__) && defined(__FMA__))
  if (bits == 256) {
    state.SkipWithError("no AVX2+FMA in this build");
    return;
  }
#endif
  for (auto _ : state) {
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
#if defined(__AVX2__) && defined(__FMA__)
      if (bits == 256) sink += fma_chains(n);
#endif
      if (bits == 512) sink += fma_chains_avx512(n);
    }
    benchmark::DoNotOptimize(sink);
  }
  bench::set_flops(state, 12.0 * (bits / 32) * 2.0 * static_cast<double>(n) * threads);
}

/// Re-runs this program with OPENBLAS_CORETYPE set when OpenBLAS picked a core below the CPU.
void use_openblas_best_core(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const std::string core = openblas_get_corename();
  auto is_one_of = [&](std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (core == n) return true;
    return false;
  };
  const char* want = nullptr;
  if (__builtin_cpu_supports("avx512f") && !is_one_of({"SkylakeX", "Cooperlake", "SapphireRapids"}))
    want = "SkylakeX";
  else if (!__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
           !is_one_of({"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"}))
    want = "Haswell";
  if (want == nullptr) return;
  std::fprintf(stderr,
               "bench_gemm: OpenBLAS chose its '%s' kernels for this CPU; re-running with "
               "OPENBLAS_CORETYPE=%s\n",
               core.c_str(), want);
  setenv("OPENBLAS_CORETYPE", want, 1);
  execv("/proc/self/exe", argv);
  std::perror("bench_gemm: execv");  // not fatal: measure with the core OpenBLAS chose
}

// ---- operands ----

enum class Layout { NN, NT, TN };
const char* layout_name(Layout l) { return l == Layout::NN ? "NN" : l == Layout::NT ? "NT" : "TN"; }

/// A (M, K) and B (K, N) as the layout stores them: a transposed operand is a contiguous (K, M) or
/// (N, K) tensor seen through a transposed view, the way matmul receives x @ w.T.
struct Operands {
  Tensor a, b, out;  // (1, M, K), (1, K, N), (1, M, N) views
  Tensor a_store, b_store;
};

Operands make_operands(Layout l, int64_t M, int64_t N, int64_t K, DType dt) {
  Generator gen(42);
  Operands o;
  o.a_store = l == Layout::TN ? randn({1, K, M}, gen, dt) : randn({1, M, K}, gen, dt);
  o.b_store = l == Layout::NT ? randn({1, N, K}, gen, dt) : randn({1, K, N}, gen, dt);
  o.a = l == Layout::TN ? o.a_store.transpose(1, 2) : o.a_store;
  o.b = l == Layout::NT ? o.b_store.transpose(1, 2) : o.b_store;
  o.out = zeros({1, M, N}, dt);
  return o;
}

template <class T>
void run_gemm(benchmark::State& state, Layout l, int64_t M, int64_t N, int64_t K, int threads,
              const std::string& impl) {
  const DType dt = std::is_same_v<T, float> ? kFloat32 : kFloat64;
  Operands o = make_operands(l, M, N, K, dt);
  const T* a = o.a_store.data_ptr<T>();
  const T* b = o.b_store.data_ptr<T>();
  T* c = o.out.data_ptr<T>();
  const CBLAS_TRANSPOSE ta = l == Layout::TN ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = l == Layout::NT ? CblasTrans : CblasNoTrans;
  const int lda = static_cast<int>(l == Layout::TN ? M : K);
  const int ldb = static_cast<int>(l == Layout::NT ? K : N);

  using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const RowMat> ea(a, l == Layout::TN ? K : M, l == Layout::TN ? M : K);
  Eigen::Map<const RowMat> eb(b, l == Layout::NT ? N : K, l == Layout::NT ? K : N);
  Eigen::Map<RowMat> ec(c, M, N);

  const int saved_threads = get_num_threads();
  set_num_threads(threads);
  openblas_set_num_threads(threads);
  Eigen::setNbThreads(threads);
  for (auto _ : state) {
    if (impl == "ember") {
      cpu::gemm(o.out, o.a, o.b, 1.0, 0.0);
    } else if (impl == "openblas") {
      if constexpr (std::is_same_v<T, float>)
        cblas_sgemm(CblasRowMajor, ta, tb, static_cast<int>(M), static_cast<int>(N),
                    static_cast<int>(K), 1.0f, a, lda, b, ldb, 0.0f, c, static_cast<int>(N));
      else
        cblas_dgemm(CblasRowMajor, ta, tb, static_cast<int>(M), static_cast<int>(N),
                    static_cast<int>(K), 1.0, a, lda, b, ldb, 0.0, c, static_cast<int>(N));
    } else if (l == Layout::NN) {
      ec.noalias() = ea * eb;
    } else if (l == Layout::NT) {
      ec.noalias() = ea * eb.transpose();
    } else {
      ec.noalias() = ea.transpose() * eb;
    }
    benchmark::ClobberMemory();
  }
  bench::set_flops(state, 2.0 * static_cast<double>(M) * N * K);
  set_num_threads(saved_threads);
}

void register_gemm(const std::string& type, Layout l, int64_t M, int64_t N, int64_t K,
                   int threads) {
  for (const std::string impl : {"ember", "openblas", "eigen"}) {
    const std::string name = type + "/" + layout_name(l) + "/" + std::to_string(M) + "x" +
                             std::to_string(N) + "x" + std::to_string(K) + "/t" +
                             std::to_string(threads) + "/" + impl;
    auto fn = [=](benchmark::State& s) {
      if (type == "sgemm")
        run_gemm<float>(s, l, M, N, K, threads, impl);
      else
        run_gemm<double>(s, l, M, N, K, threads, impl);
    };
    benchmark::RegisterBenchmark(name.c_str(), fn)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(0.2)
        ->Repetitions(bench::repetitions())
        ->ReportAggregatesOnly(true);
  }
}

void register_all() {
  const int max_threads = omp_get_num_procs() >= 2 ? 2 : 1;
  for (int t = 1; t <= max_threads; ++t)
    for (int bits : {256, 512}) {
      const std::string name = "fma_peak" + std::to_string(bits) + "/t" + std::to_string(t) + "/probe";
      benchmark::RegisterBenchmark(name.c_str(),
                                   [t, bits](benchmark::State& s) { fma_peak(s, t, bits); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->Repetitions(bench::repetitions())
          ->ReportAggregatesOnly(true);
    }
  if (bench::quick_mode()) {
    register_gemm("sgemm", Layout::NN, 64, 64, 64, 1);
    register_gemm("sgemm", Layout::NT, 33, 47, 29, max_threads);
    register_gemm("dgemm", Layout::TN, 64, 64, 64, 1);
    return;
  }
  for (int t = 1; t <= max_threads; ++t) {
    for (int64_t n : {64, 128, 256, 512, 1024, 2048}) register_gemm("sgemm", Layout::NN, n, n, n, t);
    for (int64_t n : {512, 1024}) {
      register_gemm("sgemm", Layout::NT, n, n, n, t);
      register_gemm("sgemm", Layout::TN, n, n, n, t);
    }
    // GPT: (B*T, C) @ (C, C) projections of GPT-2 small, the default trainer's MLP (T*B = 4096).
    register_gemm("sgemm", Layout::NT, 4096, 768, 768, t);
    register_gemm("sgemm", Layout::NT, 8192, 256, 1024, t);
    register_gemm("sgemm", Layout::NT, 4096, 1024, 256, t);
    // ResNet-20 on 28x28, batch 128: weight (Cout, Cin*9) @ im2col columns (Cin*9, H*W) per image.
    register_gemm("sgemm", Layout::NN, 16, 784, 144, t);
    register_gemm("sgemm", Layout::NN, 32, 196, 288, t);
    register_gemm("sgemm", Layout::NN, 64, 49, 576, t);
    for (int64_t n : {256, 1024}) register_gemm("dgemm", Layout::NN, n, n, n, t);
  }
}

}  // namespace

int main(int argc, char** argv) {
  use_openblas_best_core(argv);
  benchmark::AddCustomContext("openblas", std::string(openblas_get_corename()) + " kernels, " +
                                              openblas_get_config());
  const bool avx512 = cpu::gemm_isa() == cpu::GemmIsa::Avx512;
  benchmark::AddCustomContext("ember_gemm_kernel", avx512 ? "AVX-512 12x32" : "baseline (AVX2 6x16)");
  register_all();
  return ember::bench::ratio_main(argc, argv, [avx512](const std::string& key) {
    // sgemm/<layout>/<shape>/tN -> the float32 peak of Ember's kernel width (DGEMM's is half).
    const size_t t = key.rfind("/t");
    if (key.rfind("sgemm/", 0) != 0 || t == std::string::npos) return std::string();
    return std::string(avx512 ? "fma_peak512" : "fma_peak256") + key.substr(t);
  });
}
