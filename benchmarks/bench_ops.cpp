// Memory-bound kernels: Ember's CPU elementwise and softmax kernels (the cpu:: calls the ops make,
// into preallocated outputs) against the ceiling of a memcpy moving the same bytes, and against a
// plain loop over the C library's scalar functions (what the kernels called before vec_math.hpp).
// Bytes/s counts each element read once and written once (8 bytes per float32 element).
//
// With libtorch present, its `_out` kernels for the same ops (impl "libtorch") run beside them.
// Names: <op>/<elements>/t<threads>/<impl>; the ceiling of every case is memcpy/<elements>/tN.
// gelu_tanh_backward/<elements>/tN: GELU's gradient in one activation_backward pass against the
// composite of 17 elementwise ops it replaced ("composite") and libtorch's gelu_backward, 12 bytes
// per element (dy and x read, dx written).
//
// Optimizer steps on one float32 parameter of n elements: AdamW (lr 1e-3, weight decay 1e-2) and
// SGD with momentum 0.9, Ember's fused kernel (impl "ember", src/core/cpu/optim.cpp) beside the
// composite it replaces ("composite"), libtorch's torch::optim step ("libtorch") and, from
// libtorch 2.4, its fused CPU kernel at::_fused_adamw_ / at::_fused_sgd_ ("libtorch_fused").
// Bytes/s counts the minimal traffic: AdamW reads p, g, m, v and writes p, m, v (28 bytes per
// element), SGD reads p, g, buf and writes p, buf (20 bytes); the ceiling is a memcpy moving the
// same bytes (memcpy/<28 n / 8>/tN and memcpy/<20 n / 8>/tN).
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include "core/kernels.hpp"
#include "core/ops/derivatives.hpp"
#include "core/parallel.hpp"
#include "ember/ember.hpp"
#include "ember/optim.hpp"
#include "optim/util.hpp"

#if defined(EMBER_BENCH_TORCH) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))
#define EMBER_BENCH_TORCH_FUSED_OPTIM 1  // CPU _fused_adamw_ / _fused_sgd_ arrived in 2.4
#endif

namespace {

using ember::bench::ThreadScope;


template <class F>
void add(const std::string& name, F f) {
  ember::bench::add_case(name, f, benchmark::kMicrosecond, 0.1);
}

using namespace ember;

struct Buffers {
  Tensor x, out;
  explicit Buffers(int64_t n, int64_t row = 0) {
    Generator gen(7);
    x = randn(row > 0 ? std::vector<int64_t>{n / row, row} : std::vector<int64_t>{n}, gen) * 2.0;
    out = empty_like(x);
  }
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

/// GELU's gradient (tanh form): one activation_backward pass ("ember") or the composite of 17
/// elementwise ops it replaced at first order ("composite"), reading dy and x, writing dx.
void bm_gelu_backward(benchmark::State& state, int64_t n, int threads, bool composite) {
  Buffers b(n);
  Generator gen(8);
  const Tensor dy = randn({n}, gen);
  ThreadScope ts(threads);
  for (auto _ : state) {
    if (composite) {
      NoGradGuard no_grad;
      b.out =
          dy * ember::detail::gelu_grad(b.x, /*tanh_form=*/true);  // the library's own composite
    } else {
      cpu::activation_backward(b.out, dy, b.x, ActGrad::GeluTanh, 0.0, 0.0);
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * 12);
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

#ifdef EMBER_BENCH_TORCH
/// libtorch's kernel for the same op into a preallocated output (its `_out` form).
template <class F>
void bm_torch(benchmark::State& state, int64_t n, int64_t row, int threads, F f) {
  ThreadScope ts(threads);
  torch::manual_seed(7);
  torch::Tensor x = torch::randn(row > 0 ? std::vector<int64_t>{n / row, row}
                                         : std::vector<int64_t>{n}) * 2.0;
  torch::Tensor out = torch::empty_like(x);
  for (auto _ : state) {
    f(out, x);
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}
#endif

// ---- optimizer steps ----

constexpr double kLr = 1e-3, kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8, kWeightDecay = 1e-2;
constexpr double kSgdLr = 1e-2, kMomentum = 0.9;
constexpr int64_t kAdamwBytes = 28, kSgdBytes = 20;  // bytes moved per parameter element

/// The ceiling case of each optimizer case (memcpy of the same bytes), filled at registration.
std::map<std::string, std::string>& optimizer_ceilings() {
  static std::map<std::string, std::string> m;
  return m;
}

/// A float32 parameter of n elements and its gradient.
struct ParamBuffers {
  Tensor p, g;
  StateDict state;
  explicit ParamBuffers(int64_t n) {
    Generator gen(7);
    p = randn({n}, gen);
    g = randn({n}, gen) * 1e-2;
  }
};

/// One AdamW step per iteration through the optimizer's per-parameter update: the fused kernel
/// (detail::adam_update takes it for this contiguous float32 parameter) or the composite.
void bm_adamw(benchmark::State& state, int64_t n, int threads, bool fused) {
  ParamBuffers b(n);
  ThreadScope ts(threads);
  NoGradGuard no_grad;
  const optim::detail::AdamHyper h{kLr,          kBeta1, kBeta2, kEps, kWeightDecay,
                                    /*amsgrad=*/false, /*decoupled=*/true};
  auto step = [&] { optim::detail::adam_update({{&b.p, &b.g, &b.state}}, h, fused); };
  step();  // creates the state
  for (auto _ : state) {
    step();
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * kAdamwBytes);
}

/// One SGD-momentum step per iteration (after a first step that creates the buffer).
void bm_sgd(benchmark::State& state, int64_t n, int threads, bool fused) {
  ParamBuffers b(n);
  ThreadScope ts(threads);
  NoGradGuard no_grad;
  const optim::detail::SgdHyper h{kSgdLr, kMomentum, /*dampening=*/0.0, /*weight_decay=*/0.0,
                                   /*nesterov=*/false};
  auto step = [&] { optim::detail::sgd_update({{&b.p, &b.g, &b.state}}, h, fused); };
  step();
  for (auto _ : state) {
    step();
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * kSgdBytes);
}

/// memcpy moving `bytes` bytes (read and written once each: bytes / 8 floats).
void bm_memcpy_bytes(benchmark::State& state, int64_t bytes, int threads) {
  bm_memcpy(state, bytes / 8, threads);
}

#ifdef EMBER_BENCH_TORCH
/// libtorch's optimizer (torch::optim::AdamW or SGD, the C++ frontend) stepping one parameter.
template <class Opt, class Options>
void bm_torch_optim(benchmark::State& state, int64_t n, int threads, Options options,
                    int64_t bytes_per_element) {
  ThreadScope ts(threads);
  torch::manual_seed(7);
  torch::Tensor p = torch::randn({n}).requires_grad_();
  p.mutable_grad() = torch::randn({n}) * 1e-2;
  Opt opt(std::vector<torch::Tensor>{p}, options);
  opt.step();
  for (auto _ : state) {
    opt.step();
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * bytes_per_element);
}
#endif

#ifdef EMBER_BENCH_TORCH_FUSED_OPTIM
/// libtorch's fused CPU AdamW kernel (what torch.optim.AdamW(fused=True) calls), step count fixed.
void bm_torch_fused_adamw(benchmark::State& state, int64_t n, int threads) {
  ThreadScope ts(threads);
  torch::NoGradGuard no_grad;
  torch::manual_seed(7);
  torch::Tensor p = torch::randn({n}), g = torch::randn({n}) * 1e-2;
  torch::Tensor m = torch::zeros({n}), v = torch::zeros({n}), step = torch::full({}, 10.0);
  for (auto _ : state) {
    at::_fused_adamw_({p}, {g}, {m}, {v}, at::TensorList(), {step}, kLr, kBeta1, kBeta2,
                      kWeightDecay, kEps, /*amsgrad=*/false, /*maximize=*/false);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * kAdamwBytes);
}

/// libtorch's fused CPU SGD kernel with a momentum buffer past its first step.
void bm_torch_fused_sgd(benchmark::State& state, int64_t n, int threads) {
  ThreadScope ts(threads);
  torch::NoGradGuard no_grad;
  torch::manual_seed(7);
  torch::Tensor p = torch::randn({n}), g = torch::randn({n}) * 1e-2, buf = torch::zeros({n});
  for (auto _ : state) {
    at::_fused_sgd_({p}, {g}, {buf}, /*weight_decay=*/0.0, kMomentum, kSgdLr, /*dampening=*/0.0,
                    /*nesterov=*/false, /*maximize=*/false, /*is_first_step=*/false);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * kSgdBytes);
}
#endif

void register_optimizer_cases() {
  const std::vector<int64_t> sizes =
      bench::quick_mode() ? std::vector<int64_t>{4096} : std::vector<int64_t>{1 << 20, 1 << 24};
  for (int t = 1; t <= 2; ++t) {
    const std::string tt = "/t" + std::to_string(t);
    std::set<int64_t> ceilings;  // memcpy sizes registered for this thread count
    for (int64_t n : sizes) {
      const std::string ns = "/" + std::to_string(n);
      for (const auto& [op, bytes] :
           {std::pair<std::string, int64_t>{"adamw_step", kAdamwBytes},
            std::pair<std::string, int64_t>{"sgd_momentum_step", kSgdBytes}}) {
        const int64_t total = n * bytes;
        const std::string ceiling = "memcpy/" + std::to_string(total / 8) + tt;
        optimizer_ceilings()[op + ns + tt] = ceiling;
        if (ceilings.insert(total).second)
          add(ceiling + "/probe", [=](benchmark::State& s) { bm_memcpy_bytes(s, total, t); });
      }
      const std::string adamw = "adamw_step" + ns + tt + "/";
      add(adamw + "ember", [=](benchmark::State& s) { bm_adamw(s, n, t, true); });
      add(adamw + "composite", [=](benchmark::State& s) { bm_adamw(s, n, t, false); });
      const std::string sgd = "sgd_momentum_step" + ns + tt + "/";
      add(sgd + "ember", [=](benchmark::State& s) { bm_sgd(s, n, t, true); });
      add(sgd + "composite", [=](benchmark::State& s) { bm_sgd(s, n, t, false); });
#ifdef EMBER_BENCH_TORCH
      add(adamw + "libtorch", [=](benchmark::State& s) {
        bm_torch_optim<torch::optim::AdamW>(s, n, t,
                                            torch::optim::AdamWOptions(kLr)
                                                .betas(std::make_tuple(kBeta1, kBeta2))
                                                .eps(kEps)
                                                .weight_decay(kWeightDecay),
                                            kAdamwBytes);
      });
      add(sgd + "libtorch", [=](benchmark::State& s) {
        bm_torch_optim<torch::optim::SGD>(
            s, n, t, torch::optim::SGDOptions(kSgdLr).momentum(kMomentum), kSgdBytes);
      });
#endif
#ifdef EMBER_BENCH_TORCH_FUSED_OPTIM
      add(adamw + "libtorch_fused", [=](benchmark::State& s) { bm_torch_fused_adamw(s, n, t); });
      add(sgd + "libtorch_fused", [=](benchmark::State& s) { bm_torch_fused_sgd(s, n, t); });
#endif
    }
  }
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
    const std::string gb = "gelu_tanh_backward/" + ns + tt;
    add(gb + "ember", [=](benchmark::State& s) { bm_gelu_backward(s, n, t, false); });
    add(gb + "composite", [=](benchmark::State& s) { bm_gelu_backward(s, n, t, true); });
#ifdef EMBER_BENCH_TORCH
    add(gb + "libtorch", [=](benchmark::State& s) {
      ThreadScope ts(t);
      torch::manual_seed(8);
      torch::Tensor x = torch::randn({n}) * 2.0, dy = torch::randn({n}), dx = torch::empty({n});
      for (auto _ : s) {
        at::gelu_backward_out(dx, dy, x, "tanh");
        benchmark::ClobberMemory();
      }
      s.SetBytesProcessed(s.iterations() * n * 12);
    });
#endif
#ifdef EMBER_BENCH_TORCH
    using TorchOp = void (*)(torch::Tensor&, const torch::Tensor&);
    const std::pair<const char*, TorchOp> torch_cases[] = {
        {"exp", [](torch::Tensor& o, const torch::Tensor& x) { at::exp_out(o, x); }},
        {"tanh", [](torch::Tensor& o, const torch::Tensor& x) { at::tanh_out(o, x); }},
        {"sigmoid", [](torch::Tensor& o, const torch::Tensor& x) { at::sigmoid_out(o, x); }},
        {"gelu_tanh", [](torch::Tensor& o, const torch::Tensor& x) { at::gelu_out(o, x, "tanh"); }},
        {"gelu_erf", [](torch::Tensor& o, const torch::Tensor& x) { at::gelu_out(o, x); }},
        {"relu", [](torch::Tensor& o, const torch::Tensor& x) { at::clamp_min_out(o, x, 0); }},
    };
    for (const auto& [name, f] : torch_cases)
      add(std::string(name) + "/" + ns + tt + "libtorch",
          [=](benchmark::State& s) { bm_torch(s, n, 0, t, f); });
#endif
    for (int64_t row : {int64_t{128}, int64_t{1024}}) {
      if (row > n) continue;
      const std::string base = "softmax_rows" + std::to_string(row) + "/" + ns + tt;
      add(base + "ember", [=](benchmark::State& s) { bm_softmax(s, n, row, t, false); });
      add(base + "libm", [=](benchmark::State& s) { bm_softmax_libm(s, n, row, t); });
      add("log_softmax_rows" + std::to_string(row) + "/" + ns + tt + "ember",
          [=](benchmark::State& s) { bm_softmax(s, n, row, t, true); });
#ifdef EMBER_BENCH_TORCH
      add(base + "libtorch", [=](benchmark::State& s) {
        bm_torch(s, n, row, t, [](torch::Tensor& o, const torch::Tensor& x) { at::softmax_out(o, x, 1); });
      });
      add("log_softmax_rows" + std::to_string(row) + "/" + ns + tt + "libtorch",
          [=](benchmark::State& s) {
            bm_torch(s, n, row, t,
                     [](torch::Tensor& o, const torch::Tensor& x) { at::log_softmax_out(o, x, 1); });
          });
#endif
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  ember::bench::add_torch_context();
  register_all();
  register_optimizer_cases();
  return ember::bench::ratio_main(argc, argv, [](const std::string& key) {
    auto it = optimizer_ceilings().find(key);
    if (it != optimizer_ceilings().end()) return it->second;
    // <op>/<n>/tN -> memcpy/<n>/tN
    const size_t first = key.find('/');
    if (first == std::string::npos || key.rfind("memcpy/", 0) == 0) return std::string();
    return "memcpy" + key.substr(first);
  });
}
