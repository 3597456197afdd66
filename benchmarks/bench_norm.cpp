// layer_norm and training-mode batch_norm (float32, with weight and bias; batch_norm with running
// statistics), and cross_entropy of logits with class-index targets (float32, "mean"): Ember's
// fused kernels (the public functionals), the composites they replace (layer_norm_reference /
// batch_norm_reference / cross_entropy_reference, peer "composite"), and libtorch when present,
// against the ceiling of a memcpy moving the same bytes.
//
// Bytes counted per call (float32, parameters and statistics left out, being per row/channel):
//   fwd:    read x + write y                                    = 2 * numel * 4
//   fwdbwd: fwd, plus the backward's read dy + read x + write dx = 5 * numel * 4
// cross_entropy (targets and the per-row statistics left out; the loss is one number):
//   fwd:    read x                                              = 1 * numel * 4
//   fwdbwd: fwd, plus the backward's read x + write dx           = 3 * numel * 4
// the bytes a pass must move at least. The memcpy probe copies half of them (it reads and writes
// each byte once), split over the threads as the kernels are.
//
// Names: <op>_<pass>/<shape>/t<threads>/<impl>, op layer_norm (shape rows x cols, normalized over
// the last dim), batch_norm (shape n x c x h x w) or cross_entropy (shape rows x classes), pass
// fwd or fwdbwd; the ceiling of a case is memcpy_<pass>/<shape>/t<threads>/probe (the shapes of
// the ops differ, so each probe belongs to one op).
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include "core/parallel.hpp"
#include "ember/ember.hpp"
#include "ember/nn/functional/loss.hpp"
#include "ember/nn/functional/normalization.hpp"

namespace {

using namespace ember;
namespace F = ember::nn::functional;

using ember::bench::ThreadScope;


struct Shape {
  bool batch;                  // batch_norm (n, c, h, w), else layer_norm (rows, cols)
  std::vector<int64_t> sizes;  // x's shape
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t s : sizes) n *= s;
    return n;
  }
  int64_t params() const { return batch ? sizes[1] : sizes.back(); }
  std::string id() const {
    std::string s;
    for (int64_t v : sizes) {
      if (!s.empty()) s += 'x';
      s += std::to_string(v);
    }
    return s;
  }
};

int64_t bytes_of(const Shape& s, bool backward) { return (backward ? 5 : 2) * s.numel() * 4; }

void set_bytes(benchmark::State& state, int64_t bytes) {
  state.SetBytesProcessed(state.iterations() * bytes);
}

void bm_memcpy(benchmark::State& state, int64_t bytes, int threads) {
  const int64_t n = bytes / 2 / 4;  // floats copied
  Tensor src = ones({n}), dst = empty({n});
  ThreadScope ts(threads);
  const float* s = src.data_ptr<float>();
  float* d = dst.data_ptr<float>();
  for (auto _ : state) {
    parallel_for(n, (n + threads - 1) / threads, [&](int64_t i0, int64_t i1) {
      std::memcpy(d + i0, s + i0, static_cast<size_t>(i1 - i0) * sizeof(float));
    });
    benchmark::ClobberMemory();
  }
  set_bytes(state, bytes);
}

/// Ember: the public functional (fused) or the composite reference.
void bm_ember(benchmark::State& state, Shape sh, bool backward, int threads, bool composite) {
  ThreadScope ts(threads);
  Generator gen(5);
  Tensor x = randn(sh.sizes, gen), dy = randn(sh.sizes, gen);
  Tensor w = (randn({sh.params()}, gen) * 0.1 + 1.0).requires_grad_(backward);
  Tensor b = (randn({sh.params()}, gen) * 0.1).requires_grad_(backward);
  Tensor rm = zeros({sh.params()}), rv = ones({sh.params()});
  if (backward) x.requires_grad_(true);
  auto forward = [&] {
    if (sh.batch) {
      return composite ? F::batch_norm_reference(x, rm, rv, w, b, /*training=*/true)
                       : F::batch_norm(x, rm, rv, w, b, /*training=*/true);
    }
    return composite ? F::layer_norm_reference(x, {sh.sizes.back()}, w, b)
                     : F::layer_norm(x, {sh.sizes.back()}, w, b);
  };
  for (auto _ : state) {
    if (backward) {
      Tensor y = forward();
      y.backward(dy);
      x.mutable_grad() = Tensor();  // fresh gradients each iteration, as a training step has
      w.mutable_grad() = Tensor();
      b.mutable_grad() = Tensor();
    } else {
      NoGradGuard no_grad;
      Tensor y = forward();
      benchmark::DoNotOptimize(y.data_ptr<float>());
    }
  }
  set_bytes(state, bytes_of(sh, backward));
}

#ifdef EMBER_BENCH_TORCH
void bm_torch(benchmark::State& state, Shape sh, bool backward, int threads) {
  ThreadScope ts(threads);
  torch::manual_seed(5);
  torch::Tensor x = torch::randn(sh.sizes), dy = torch::randn(sh.sizes);
  torch::Tensor w = (torch::randn({sh.params()}) * 0.1 + 1.0).requires_grad_(backward);
  torch::Tensor b = (torch::randn({sh.params()}) * 0.1).requires_grad_(backward);
  torch::Tensor rm = torch::zeros({sh.params()}), rv = torch::ones({sh.params()});
  if (backward) x.requires_grad_(true);
  auto forward = [&] {
    if (sh.batch) return torch::batch_norm(x, w, b, rm, rv, /*training=*/true, 0.1, 1e-5, false);
    return torch::layer_norm(x, {sh.sizes.back()}, w, b, 1e-5);
  };
  for (auto _ : state) {
    if (backward) {
      torch::Tensor y = forward();
      y.backward(dy);
      x.mutable_grad().reset();
      w.mutable_grad().reset();
      b.mutable_grad().reset();
    } else {
      torch::NoGradGuard no_grad;
      torch::Tensor y = forward();
      benchmark::DoNotOptimize(y.data_ptr<float>());
    }
  }
  set_bytes(state, bytes_of(sh, backward));
}
#endif

// ---- cross_entropy: logits (rows, classes), int64 targets, "mean" ----

int64_t ce_bytes(int64_t numel, bool backward) { return (backward ? 3 : 1) * numel * 4; }

void bm_ce_ember(benchmark::State& state, int64_t rows, int64_t classes, bool backward, int threads,
                 bool composite) {
  ThreadScope ts(threads);
  Generator gen(5);
  Tensor x = randn({rows, classes}, gen), t = randint(0, classes, {rows}, gen);
  if (backward) x.requires_grad_(true);
  auto forward = [&] {
    return composite ? F::cross_entropy_reference(x, t, {}, -100, "mean", 0.0)
                     : F::cross_entropy(x, t);
  };
  for (auto _ : state) {
    if (backward) {
      Tensor loss = forward();
      loss.backward();
      x.mutable_grad() = Tensor();
    } else {
      NoGradGuard no_grad;
      Tensor loss = forward();
      benchmark::DoNotOptimize(loss.data_ptr<float>());
    }
  }
  set_bytes(state, ce_bytes(rows * classes, backward));
}

#ifdef EMBER_BENCH_TORCH
void bm_ce_torch(benchmark::State& state, int64_t rows, int64_t classes, bool backward,
                 int threads) {
  ThreadScope ts(threads);
  torch::manual_seed(5);
  torch::Tensor x = torch::randn({rows, classes}), t = torch::randint(0, classes, {rows});
  if (backward) x.requires_grad_(true);
  for (auto _ : state) {
    if (backward) {
      torch::Tensor loss = at::cross_entropy_loss(x, t);
      loss.backward();
      x.mutable_grad().reset();
    } else {
      torch::NoGradGuard no_grad;
      torch::Tensor loss = at::cross_entropy_loss(x, t);
      benchmark::DoNotOptimize(loss.data_ptr<float>());
    }
  }
  set_bytes(state, ce_bytes(rows * classes, backward));
}
#endif

template <class Fn>
void add(const std::string& name, Fn f) {
  bench::add_case(name, f, benchmark::kMillisecond, 0.2);
}

std::vector<Shape> shapes() {
  if (bench::quick_mode()) return {{false, {64, 96}}, {true, {4, 3, 5, 5}}};
  return {{false, {8192, 768}}, {false, {4096, 256}}, {true, {128, 64, 28, 28}},
          {true, {128, 16, 28, 28}}};
}

/// (rows, classes) of the cross_entropy cases: GPT-2's (B T, vocab) at a small vocab and a
/// larger one (50257 classes would make each case slow; 8192 keeps a row beyond L1).
std::vector<std::pair<int64_t, int64_t>> ce_shapes() {
  if (bench::quick_mode()) return {{32, 100}};
  return {{4096, 512}, {1024, 8192}};
}

void register_all() {
  for (int t = 1; t <= 2; ++t) {
    for (const Shape& sh : shapes()) {
      for (bool backward : {false, true}) {
        const std::string pass = backward ? "fwdbwd" : "fwd";
        std::string rest = "/";
        rest += sh.id();
        rest += "/t" + std::to_string(t) + "/";
        const std::string base = std::string(sh.batch ? "batch_norm_" : "layer_norm_") + pass + rest;
        const int64_t bytes = bytes_of(sh, backward);
        add("memcpy_" + pass + rest + "probe",
            [=](benchmark::State& s) { bm_memcpy(s, bytes, t); });
        add(base + "ember", [=](benchmark::State& s) { bm_ember(s, sh, backward, t, false); });
        add(base + "composite", [=](benchmark::State& s) { bm_ember(s, sh, backward, t, true); });
#ifdef EMBER_BENCH_TORCH
        add(base + "libtorch", [=](benchmark::State& s) { bm_torch(s, sh, backward, t); });
#endif
      }
    }
    for (const std::pair<int64_t, int64_t>& shape : ce_shapes()) {
      const int64_t rows = shape.first, classes = shape.second;
      for (bool backward : {false, true}) {
        const std::string pass = backward ? "fwdbwd" : "fwd";
        const std::string rest = "/" + std::to_string(rows) + "x" + std::to_string(classes) + "/t" +
                                 std::to_string(t) + "/";
        const std::string base = "cross_entropy_" + pass + rest;
        const int64_t bytes = ce_bytes(rows * classes, backward);
        add("memcpy_" + pass + rest + "probe",
            [=](benchmark::State& s) { bm_memcpy(s, bytes, t); });
        add(base + "ember",
            [=](benchmark::State& s) { bm_ce_ember(s, rows, classes, backward, t, false); });
        add(base + "composite",
            [=](benchmark::State& s) { bm_ce_ember(s, rows, classes, backward, t, true); });
#ifdef EMBER_BENCH_TORCH
        add(base + "libtorch",
            [=](benchmark::State& s) { bm_ce_torch(s, rows, classes, backward, t); });
#endif
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  ember::bench::add_torch_context();
  register_all();
  return ember::bench::ratio_main(argc, argv, [](const std::string& key) {
    // <op>_<pass>/<shape>/tN -> memcpy_<pass>/<shape>/tN
    const size_t slash = key.find('/');
    if (slash == std::string::npos || key.rfind("memcpy_", 0) == 0) return std::string();
    const std::string family = key.substr(0, slash);
    const std::string pass = family.substr(family.rfind('_') + 1);
    return "memcpy_" + pass + key.substr(slash);
  });
}
