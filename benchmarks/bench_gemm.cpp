// SGEMM and DGEMM: Ember's packed GEMM (ember::cpu::gemm, what matmul/linear/conv call) beside
// OpenBLAS (cblas_?gemm, its thread count set to the case's) and Eigen 3.4, in one process with
// the repetitions interleaved at random. Reports GFLOP/s, Ember / peer, and the fraction of the
// float32 FMA peak measured by a probe in the same run (12 independent 256-bit FMA chains per
// thread: the most the FMA units can retire).
//
// Cases: square 64-2048 (NN, and NT/TN at 512/1024), the trainers' shapes (GPT MLP and
// projections, ResNet-20 im2col products), 1 and 2 threads. Names:
//   sgemm/<layout>/<M>x<N>x<K>/t<threads>/<impl>
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <Eigen/Core>
#include <string>

#include "bench_common.hpp"
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
constexpr double kFlopsPerChainStep = 12 * 8 * 2;
#endif

void fma_peak(benchmark::State& state, int threads) {
#if defined(__AVX2__) && defined(__FMA__)
  const int64_t n = 1 << 22;
  for (auto _ : state) {
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += fma_chains(n);
    benchmark::DoNotOptimize(sink);
  }
  bench::set_flops(state, kFlopsPerChainStep * static_cast<double>(n) * threads);
#else
  state.SkipWithError("no AVX2+FMA on this build");
#endif
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
  for (int t = 1; t <= max_threads; ++t) {
    const std::string name = "fma_peak/t" + std::to_string(t) + "/probe";
    benchmark::RegisterBenchmark(name.c_str(), [t](benchmark::State& s) { fma_peak(s, t); })
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
  register_all();
  return ember::bench::ratio_main(argc, argv, [](const std::string& key) {
    // sgemm/<layout>/<shape>/tN -> fma_peak/tN (the float32 peak; DGEMM's is half of it).
    const size_t t = key.rfind("/t");
    if (key.rfind("sgemm/", 0) != 0 || t == std::string::npos) return std::string();
    return "fma_peak" + key.substr(t);
  });
}
