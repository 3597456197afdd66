// scaled_dot_product_attention on the CPU: the fused FlashAttention-2 kernel
// (scaled_dot_product_attention_flash, what the public function runs for these inputs) against the
// composite scaled_dot_product_attention_reference (matmul, softmax, masked_fill), forward and
// forward + backward, float32, (B, H, T, D) = (8, 8, T, 64) with T in {256, 1024}, causal or not,
// 1 and 2 threads.
//
// FLOP counts: forward 4 B H T^2 D (the two products q k^T and p v), halved when causal; forward +
// backward 3.5 times that (the backward is counted as 2.5 forwards: five products against two,
// the usual FlashAttention convention). Exp and softmax work are not counted.
// Ceiling: the FLOP/s of Ember's packed GEMM on the (B H, T, D) x (B H, D, T) batched product of
// the same T (gemm/<T>/tN/probe): what the tile products could run at if nothing else took time.
//
// Peers when libtorch is present (the same inputs, its threads set alike): libtorch_sdpa, its fused
// at::scaled_dot_product_attention (the CPU flash kernel of torch 2.x), and libtorch_composite,
// softmax(q k^T / sqrt(D) [+ causal mask]) v written with its ops.
//
// Names: sdpa_<fwd|fwdbwd>/<T>/<causal|full>/t<threads>/<ember|composite|libtorch_sdpa|
// libtorch_composite>.
#include <cmath>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "ember/ember.hpp"
#include "ember/nn/functional/attention.hpp"

namespace {

using ember::bench::ThreadScope;

template <class F>
void add(const std::string& name, F f) {
  ember::bench::add_case(name, f, benchmark::kMillisecond, 0.2);
}

using namespace ember;
namespace F = ember::nn::functional;

struct Shape {
  int64_t B, H, T, D;
  double forward_flops(bool causal) const {
    const double f = 4.0 * static_cast<double>(B * H) * static_cast<double>(T) *
                     static_cast<double>(T) * static_cast<double>(D);
    return causal ? f / 2 : f;
  }
};


struct Inputs {
  Tensor q, k, v, dy;
  explicit Inputs(const Shape& s) {
    Generator gen(11);
    q = randn({s.B, s.H, s.T, s.D}, gen);
    k = randn({s.B, s.H, s.T, s.D}, gen);
    v = randn({s.B, s.H, s.T, s.D}, gen);
    dy = randn({s.B, s.H, s.T, s.D}, gen);
  }
};

Tensor attend(bool fused, const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  return fused ? F::scaled_dot_product_attention_flash(q, k, v, causal)
               : F::scaled_dot_product_attention_reference(q, k, v, {}, 0.0, causal);
}

void bm_forward(benchmark::State& state, Shape s, bool causal, int threads, bool fused) {
  Inputs in(s);
  ThreadScope ts(threads);
  NoGradGuard no_grad;
  for (auto _ : state) {
    Tensor y = attend(fused, in.q, in.k, in.v, causal);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  bench::set_flops(state, s.forward_flops(causal));
}

void bm_forward_backward(benchmark::State& state, Shape s, bool causal, int threads, bool fused) {
  Inputs in(s);
  Tensor q = in.q.requires_grad_(), k = in.k.requires_grad_(), v = in.v.requires_grad_();
  ThreadScope ts(threads);
  for (auto _ : state) {
    Tensor y = attend(fused, q, k, v, causal);
    std::vector<Tensor> g = autograd::grad({y}, {q, k, v}, {in.dy});
    benchmark::DoNotOptimize(g[0].data_ptr());
  }
  bench::set_flops(state, 3.5 * s.forward_flops(causal));
}

#ifdef EMBER_BENCH_TORCH
torch::Tensor torch_attend(bool fused, const torch::Tensor& q, const torch::Tensor& k,
                           const torch::Tensor& v, bool causal) {
  if (fused) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, causal);
  torch::Tensor s = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1)));
  if (causal) {
    const int64_t T = q.size(-2);
    s = s.masked_fill(torch::ones({T, T}, torch::kBool).triu(1), -INFINITY);
  }
  return torch::matmul(torch::softmax(s, -1), v);
}

/// The same case in libtorch (its own random inputs of the same shape).
void bm_torch(benchmark::State& state, Shape s, bool causal, int threads, bool fused,
              bool backward) {
  ThreadScope ts(threads);
  torch::manual_seed(11);
  torch::Tensor q = torch::randn({s.B, s.H, s.T, s.D}).requires_grad_(backward);
  torch::Tensor k = torch::randn({s.B, s.H, s.T, s.D}).requires_grad_(backward);
  torch::Tensor v = torch::randn({s.B, s.H, s.T, s.D}).requires_grad_(backward);
  torch::Tensor dy = torch::randn({s.B, s.H, s.T, s.D});
  for (auto _ : state) {
    if (backward) {
      torch::Tensor y = torch_attend(fused, q, k, v, causal);
      auto g = torch::autograd::grad({y}, {q, k, v}, {dy});
      benchmark::DoNotOptimize(g[0].data_ptr());
    } else {
      torch::NoGradGuard no_grad;
      torch::Tensor y = torch_attend(fused, q, k, v, causal);
      benchmark::DoNotOptimize(y.data_ptr());
    }
  }
  bench::set_flops(state, (backward ? 3.5 : 1.0) * s.forward_flops(causal));
}
#endif

/// The ceiling: Ember's batched GEMM (B H, T, D) x (B H, D, T).
void bm_gemm(benchmark::State& state, Shape s, int threads) {
  Inputs in(s);
  ThreadScope ts(threads);
  NoGradGuard no_grad;
  Tensor a = in.q.reshape({s.B * s.H, s.T, s.D});
  Tensor b = in.k.reshape({s.B * s.H, s.T, s.D}).transpose(1, 2);
  for (auto _ : state) {
    Tensor c = matmul(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  bench::set_flops(state, 2.0 * static_cast<double>(s.B * s.H) * static_cast<double>(s.T) *
                              static_cast<double>(s.T) * static_cast<double>(s.D));
}

void register_all() {
  const bool quick = bench::quick_mode();
  const std::vector<int64_t> lengths =
      quick ? std::vector<int64_t>{32, 100} : std::vector<int64_t>{256, 1024};
  for (int64_t T : lengths) {
    const Shape s = quick ? Shape{1, 2, T, 16} : Shape{8, 8, T, 64};
    for (int t = 1; t <= 2; ++t) {
      const std::string tt = "/t" + std::to_string(t) + "/";
      add("gemm/" + std::to_string(T) + tt + "probe",
          [=](benchmark::State& st) { bm_gemm(st, s, t); });
      for (bool causal : {false, true}) {
        const std::string mid = "/" + std::to_string(T) + (causal ? "/causal" : "/full") + tt;
        for (bool fused : {true, false}) {
          const std::string impl = fused ? "ember" : "composite";
          add("sdpa_fwd" + mid + impl,
              [=](benchmark::State& st) { bm_forward(st, s, causal, t, fused); });
          add("sdpa_fwdbwd" + mid + impl,
              [=](benchmark::State& st) { bm_forward_backward(st, s, causal, t, fused); });
#ifdef EMBER_BENCH_TORCH
          const std::string timpl = fused ? "libtorch_sdpa" : "libtorch_composite";
          add("sdpa_fwd" + mid + timpl,
              [=](benchmark::State& st) { bm_torch(st, s, causal, t, fused, false); });
          add("sdpa_fwdbwd" + mid + timpl,
              [=](benchmark::State& st) { bm_torch(st, s, causal, t, fused, true); });
#endif
        }
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  ember::bench::add_torch_context();
  register_all();
  return ember::bench::ratio_main(argc, argv, [](const std::string& key) {
    // sdpa_<kind>/<T>/<mask>/tN -> gemm/<T>/tN
    const size_t a = key.find('/');
    if (a == std::string::npos || key.rfind("gemm/", 0) == 0) return std::string();
    const size_t b = key.find('/', a + 1), c = key.find('/', b + 1);
    return "gemm" + key.substr(a, b - a) + key.substr(c);
  });
}
