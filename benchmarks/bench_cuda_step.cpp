// Whole training steps on the GPU (issue 9): forward, loss, backward and optimizer step of two
// models, each with bfloat16 autocast and in plain float32 (no autocast), so the bf16 speedup is
// visible. The steps are the trainers' own (examples/gpt/train.cpp, examples/resnet/train.cpp
// with --amp bf16 or off): the forward pass and the loss inside Amp::scope(), loss.backward()
// through the (pass-through) GradScaler, clipping, the optimizer step.
//
//   gpt2      GPT-2 124M: the GPT trainer's model at its "gpt2" preset (12 layers, 768 wide, 12
//             heads, context 1024, no dropout) with the vocabulary padded from 50257 to 50304 (a
//             multiple of 64, as nanoGPT and llm.c train it: every dimension of the logits'
//             products is then a whole number of 16-byte chunks, which the tensor-core GEMM needs;
//             the targets are drawn from the 50257 real ids). Batch 8 x 1024 tokens. AdamW as the
//             trainer sets it up (betas 0.9/0.99, weight decay 0.1 on the matrices only) at lr
//             1e-5, its warmup's first (1e-3 / 100), gradient norm clipped to 1.0.
//   resnet50  torchvision's ResNet-50 (examples/resnet), 1000 classes, batch 64 of 3x224x224,
//             cross-entropy, SGD with Nesterov momentum 0.9 and weight decay 5e-4 (the ResNet
//             trainer's recipe) at lr 0.004, where its OneCycle schedule starts (0.1 / 25). In
//             bf16 also channels-last (case shape "_nhwc": the model and the images laid out so,
//             as the trainer's --channels-last).
// Both learning rates are the trainers' first-step ones: their peaks from the first step make the
// losses of these few fixed batches jump within 3 steps (seen on the CPU). The speed does not
// depend on them.
// Quick mode (EMBER_BENCH_QUICK=1): a 2-layer, 128-wide GPT (2 heads of 64, context 64,
// vocabulary 512, batch 2) and ResNet-50 on 4 images of 3x64x64 with 10 classes (at least 2x2
// pixels reach layer4, so its batch norm does not normalize pairs of values).
//
// Rates: tokens/s or images/s (also items/s, which the ratio table shows). For the GPT, MFU by
// nanoGPT's estimate_mfu formula (PaLM's, appendix B): 6 N + 12 L T C FLOP per token, N the
// parameters less the position embedding (the tied token embedding counts: it is the output
// projection), L layers, T the context, C the width; divided by the H200's dense bf16
// tensor-core peak, 990 TFLOP/s (NVIDIA's datasheet), for the float32 run too. "peak_GiB" is the
// caching allocator's peak of the case (weights, gradients, optimizer state, activations).
//
// Timing: cuda_bench.hpp's CUDA events on the current stream, but without its L2 flush: a step
// reads and writes far more than the 50 MB L2 (GPT-2's weights alone are 0.5 GB in float32),
// so what it finds in the cache from the previous step does not matter. 2 untimed warm-up steps
// (allocator caches, optimizer state, kernel configuration), then 5 timed steps (quick mode: 1
// and 1), one repetition; each timed step is the time from an event recorded before its first
// launch to one after its last, host-side launch overhead included (a training loop pays it).
// The losses of the first warm-up step and the last timed step are shown and must be finite.
//
// No peer runs in this process: the benchmarks' libtorch peer is a CPU build where present (and
// absent on the development machine). The PyTorch peer is benchmarks/peer_torch_cuda.py, a
// separate process in the same tools/gpu-check.sh run: the same models, batches and optimizers in
// eager PyTorch (impl torch_eager; float32 with TF32 off), timed the same way under the same case
// keys; tools/gpu-table.py joins its JSON with this program's --ember_summary into one ratio table.
// Published figures for the same models (llm.c, nanoGPT) are not restated by this program;
// comparing with them is left to docs/kernels.md. Without a GPU: "bench_cuda_step: skipped (no
// CUDA GPU)", exit 0.
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/train_util.hpp"
#include "cuda_bench.hpp"
#include "gpt/model.hpp"
#include "resnet/models.hpp"

using namespace ember;
using ember::bench::add_gpu_case;
using ember::bench::g_failed;
namespace F = ember::nn::functional;
namespace gpt = ember_examples::gpt;
namespace resnet = ember_examples::resnet;

namespace {

constexpr double kPeakBf16 = 990e12;  // H200 SXM dense bf16 tensor-core peak, FLOP/s

struct GptShape {
  int64_t B, T, n_layer, n_embd, n_head, vocab, vocab_used;  // vocab_used: ids drawn as targets
};
GptShape gpt_shape() {
  if (bench::quick_mode()) return {2, 64, 2, 128, 2, 512, 500};
  return {8, 1024, 12, 768, 12, 50304, 50257};
}

struct ResnetShape {
  int64_t N, H, classes;  // images of 3 x H x H
};
ResnetShape resnet_shape() {
  if (bench::quick_mode()) return {4, 64, 10};
  return {64, 224, 1000};
}

/// A model with its optimizer and one fixed batch on the GPU; step() runs one training step and
/// returns its loss (float32 scalar on the GPU, not synchronized).
struct Workload {
  std::function<Tensor()> step;
  double samples = 0;  // tokens or images per step
  double flops = 0;    // FLOP per step by the MFU formula (0: none)
  const char* unit = "";
};

Workload gpt_workload(bool bf16) {
  const GptShape s = gpt_shape();
  manual_seed(1);
  gpt::GPTConfig cfg = gpt::GPTConfig::preset("gpt2", s.vocab);
  cfg.n_layer = s.n_layer, cfg.n_embd = s.n_embd, cfg.n_head = s.n_head, cfg.block_size = s.T;
  gpt::GPT net(cfg);
  net->to(Device(kCUDA));
  net->train();
  // The trainer's AdamW: weight decay on the matrices (embeddings and Linear weights) only.
  std::vector<Tensor> decay, no_decay;
  for (const Tensor& p : net->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  std::vector<optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<optim::AdamWOptions>(
                                 optim::AdamWOptions(1e-5).betas({0.9, 0.99}).weight_decay(0.1)));
  groups.emplace_back(no_decay,
                      std::make_unique<optim::AdamWOptions>(
                          optim::AdamWOptions(1e-5).betas({0.9, 0.99}).weight_decay(0.0)));
  auto opt = std::make_shared<optim::AdamW>(std::move(groups));
  auto amp = std::make_shared<ember_examples::Amp>(bf16 ? "bf16" : "off");
  Generator gen(2);
  const Tensor idx = randint(0, s.vocab_used, {s.B, s.T}, gen).to(Device(kCUDA));
  const Tensor tgt = randint(0, s.vocab_used, {s.B, s.T}, gen).to(Device(kCUDA));

  Workload w;
  w.step = [net, opt, amp, idx, tgt]() mutable {
    opt->zero_grad();
    Tensor loss;
    {
      auto autocast = amp->scope();
      loss = gpt::lm_loss(net->forward(idx), tgt);
    }
    amp->scaler().scale(loss).backward();
    amp->scaler().unscale_(*opt);
    nn::utils::clip_grad_norm_(net->parameters(), 1.0);
    amp->scaler().step(*opt);
    amp->scaler().update();
    return loss.detach();
  };
  const double tokens = static_cast<double>(s.B * s.T);
  const double n = static_cast<double>(net->num_parameters() - s.T * s.n_embd);  // less wpe
  const double attention = 12.0 * static_cast<double>(s.n_layer * s.T * s.n_embd);
  w.samples = tokens;
  w.flops = (6.0 * n + attention) * tokens;
  w.unit = "tokens/s";
  return w;
}

Workload resnet_workload(bool bf16, bool channels_last) {
  const ResnetShape s = resnet_shape();
  manual_seed(1);
  resnet::ResNet net = resnet::resnet50(s.classes, 3, /*small_input=*/false);
  net->to(Device(kCUDA));
  if (channels_last) net->to(MemoryFormat::ChannelsLast);
  net->train();
  auto opt = std::make_shared<optim::SGD>(
      net->parameters(), optim::SGDOptions(0.004).momentum(0.9).nesterov(true).weight_decay(5e-4));
  auto amp = std::make_shared<ember_examples::Amp>(bf16 ? "bf16" : "off");
  Generator gen(2);
  Tensor x = randn({s.N, 3, s.H, s.H}, gen).to(Device(kCUDA));
  if (channels_last) x = x.contiguous(MemoryFormat::ChannelsLast);
  const Tensor y = randint(0, s.classes, {s.N}, gen).to(Device(kCUDA));

  Workload w;
  w.step = [net, opt, amp, x, y]() mutable {
    opt->zero_grad();
    Tensor loss;
    {
      auto autocast = amp->scope();
      loss = F::cross_entropy(net->forward(x), y);
    }
    amp->scaler().scale(loss).backward();
    amp->scaler().step(*opt);
    amp->scaler().update();
    return loss.detach();
  };
  w.samples = static_cast<double>(s.N);
  w.unit = "images/s";
  return w;
}

/// What a case measured, for the summary printed after the ratio table.
struct Result {
  double step_s = 0, rate = 0, mfu = 0, peak_gib = 0;
  float first_loss = 0, last_loss = 0;
  const char* unit = "";
};
std::map<std::string, Result> g_results;  // by case name

void bm_step(benchmark::State& state, const std::string& name, const std::string& model, bool bf16,
             bool channels_last) {
  cuda::reset_peak_memory_stats();
  const Workload w = model == "gpt2" ? gpt_workload(bf16) : resnet_workload(bf16, channels_last);
  const int warmup = bench::quick_mode() ? 1 : 2;
  const cuda::Stream s = cuda::current_stream();
  cuda::Event start(/*enable_timing=*/true), stop(/*enable_timing=*/true);
  const float first_loss = w.step().item<float>();
  for (int i = 1; i < warmup; ++i) (void)w.step();
  s.synchronize();
  Tensor loss;
  double total_s = 0;
  int64_t steps = 0;
  for (auto _ : state) {
    start.record(s);
    loss = w.step();
    stop.record(s);
    stop.synchronize();
    const double t = static_cast<double>(start.elapsed_ms(stop)) * 1e-3;
    state.SetIterationTime(t);
    total_s += t;
    ++steps;
  }
  const float last_loss = loss.item<float>();
  if (!std::isfinite(first_loss) || !std::isfinite(last_loss)) {
    g_failed = true;
    state.SkipWithError((name + ": non-finite loss (first " + std::to_string(first_loss) +
                         ", last " + std::to_string(last_loss) + ")")
                            .c_str());
    return;
  }
  Result r;
  r.step_s = total_s / static_cast<double>(steps);
  r.rate = w.samples / r.step_s;
  r.mfu = w.flops / r.step_s / kPeakBf16;
  r.peak_gib = static_cast<double>(cuda::memory_stats().peak) / (1 << 30);
  r.first_loss = first_loss, r.last_loss = last_loss, r.unit = w.unit;
  g_results[name] = r;
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(w.samples));
  state.counters[w.unit] = r.rate;
  if (w.flops > 0) state.counters["MFU%"] = 100.0 * r.mfu;
  state.counters["peak_GiB"] = r.peak_gib;
  char label[64];
  std::snprintf(label, sizeof label, "loss %.3f -> %.3f", first_loss, last_loss);
  state.SetLabel(label);
}

/// Case names: step/<model>/<dtype>/<shape>/ember; a channels-last run's shape ends in _nhwc.
std::string case_name(const std::string& model, bool bf16, bool channels_last = false) {
  std::string shape;
  if (model == "gpt2") {
    const GptShape s = gpt_shape();
    shape = (bench::quick_mode()
                 ? "l" + std::to_string(s.n_layer) + "_c" + std::to_string(s.n_embd) + "_"
                 : std::string("124m_")) +
            "b" + std::to_string(s.B) + "_t" + std::to_string(s.T);
  } else {
    const ResnetShape s = resnet_shape();
    shape = "b" + std::to_string(s.N) + "_" + std::to_string(s.H) + "px" +
            (channels_last ? "_nhwc" : "");
  }
  return "step/" + model + "/" + (bf16 ? "bf16" : "float32") + "/" + shape + "/ember";
}

void register_cases() {
  const int timed = bench::quick_mode() ? 1 : 5;
  for (const char* model : {"gpt2", "resnet50"})
    for (bool bf16 : {true, false}) {
      const std::string name = case_name(model, bf16);
      add_gpu_case(
          name, [=](benchmark::State& st) { bm_step(st, name, model, bf16, false); }, timed,
          /*reps=*/1);
    }
  // ResNet-50 in bf16 with the model and the images channels-last (the trainer's
  // --channels-last): the convolution kernels' own layout, no NHWC staging between layers.
  const std::string nhwc = case_name("resnet50", true, true);
  add_gpu_case(
      nhwc, [=](benchmark::State& st) { bm_step(st, nhwc, "resnet50", true, true); }, timed,
      /*reps=*/1);
}

void print_summary() {
  std::printf("\nwhole training steps (MFU against the H200's dense bf16 peak, %.0f TFLOP/s):\n",
              kPeakBf16 * 1e-12);
  std::printf("%-40s %10s %18s %7s %9s  %s\n", "case", "ms/step", "rate", "MFU", "peak GiB",
              "loss first -> last");
  for (const auto& [name, r] : g_results) {
    char mfu[16] = "-";
    if (r.mfu > 0) std::snprintf(mfu, sizeof mfu, "%.2f%%", 100.0 * r.mfu);
    std::printf("%-40s %10.2f %9.4g %-8s %7s %9.2f  %.4f -> %.4f\n", name.c_str(), r.step_s * 1e3,
                r.rate, r.unit, mfu, r.peak_gib, r.first_loss, r.last_loss);
  }
  for (const char* model : {"gpt2", "resnet50"}) {
    auto b = g_results.find(case_name(model, true)), f = g_results.find(case_name(model, false));
    if (b != g_results.end() && f != g_results.end())
      std::printf("%s: bf16 autocast is %.2fx float32\n", model, b->second.rate / f->second.rate);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (!ember::cuda::is_available()) {
    std::printf("bench_cuda_step: skipped (no CUDA GPU)\n");
    return 0;
  }
  std::printf(
      "bench_cuda_step: Ember alone in this process; its PyTorch peer is "
      "benchmarks/peer_torch_cuda.py (a separate process, joined by tools/gpu-table.py); "
      "published figures for these models are not restated here, see docs/kernels.md\n");
  benchmark::AddCustomContext("peer", "benchmarks/peer_torch_cuda.py (separate process)");
  register_cases();
  const int rc = ember::bench::ratio_main(argc, argv);
  try {
    ember::cuda::synchronize();  // a sticky CUDA error of the last case surfaces here
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_step: %s\n", e.what());
    g_failed = true;
  }
  print_summary();
  return rc != 0 ? rc : (g_failed ? 1 : 0);
}
