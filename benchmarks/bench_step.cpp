// Whole training steps (forward, loss, backward, optimizer step) of the four models the issue
// names, in Ember and the same model in libtorch when libtorch is present:
//   resnet20   ResNet-20 (examples/resnet), batch 128 of 1x28x28, cross-entropy, SGD Nesterov
//              0.9, weight decay 5e-4 (the ResNet trainer's recipe)
//   gpt        the GPT trainer's "default" model (4 layers, 256 wide, 4 heads, dropout 0.1,
//              vocabulary 512), batch 32 x context 128, AdamW(1e-3, 0.9/0.99, wd 0.1), clipping 1.0
//   dcgan      the GAN trainer's DCGAN (examples/gan), batch 128: a discriminator step on real and
//              generated images and a generator step, BCE with logits, Adam(2e-4, 0.5/0.999)
//   mnist_cnn  PyTorch's MNIST example CNN (conv 32, conv 64, max-pool, dropout, fc 128, fc 10),
//              batch 64, SGD momentum 0.9
// Rates are samples/s (images, or tokens for gpt). Names: step/<model>/b<batch>/t<threads>/<impl>.
//
// Peak memory: unless --benchmark_* filters are given, each (model, impl) first runs 3 steps in
// a forked child process and reports the child's peak resident set (getrusage ru_maxrss) and its
// growth over the resident set before the model was built (the shared libraries and the process
// are the same for both impls, so the growth is the model's working memory).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "ember/ember.hpp"
#include "gan/models.hpp"
#include "gpt/model.hpp"
#include "resnet/models.hpp"

namespace {

namespace F = ember::nn::functional;
namespace enn = ember::nn;
using ember::Tensor;

using ember::bench::ThreadScope;


struct ModelSpec {
  std::string name;
  int64_t batch;
  int64_t samples;  // per step: images, or tokens
};

std::vector<ModelSpec> specs() {
  if (ember::bench::quick_mode()) return {{"resnet20", 2, 2}, {"gpt", 2, 2 * 16}, {"dcgan", 2, 2},
                                          {"mnist_cnn", 2, 2}};
  return {{"resnet20", 128, 128}, {"gpt", 32, 32 * 128}, {"dcgan", 128, 128},
          {"mnist_cnn", 64, 64}};
}

/// A model with its optimizer and one fixed batch; step() runs one training step.
using StepFn = std::function<void()>;

// ---- Ember ----

StepFn ember_step(const ModelSpec& m) {
  ember::manual_seed(1);
  ember::Generator gen(2);
  const int64_t B = m.batch;
  if (m.name == "resnet20") {
    auto net = ember_examples::resnet::make_model("resnet20", 10, 1);
    auto opt = std::make_shared<ember::optim::SGD>(
        net->parameters(),
        ember::optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(5e-4));
    Tensor x = ember::randn({B, 1, 28, 28}, gen), y = ember::randint(0, 10, {B}, gen);
    return [=]() mutable {
      opt->zero_grad();
      F::cross_entropy(net->forward(x), y).backward();
      opt->step();
    };
  }
  if (m.name == "gpt") {
    ember_examples::gpt::GPTConfig cfg = ember_examples::gpt::GPTConfig::preset("default", 512);
    const int64_t T = ember::bench::quick_mode() ? 16 : cfg.block_size;
    ember_examples::gpt::GPT net(cfg);
    auto opt = std::make_shared<ember::optim::AdamW>(
        net->parameters(), ember::optim::AdamWOptions(1e-3).betas({0.9, 0.99}).weight_decay(0.1));
    Tensor idx = ember::randint(0, 512, {B, T}, gen), tgt = ember::randint(0, 512, {B, T}, gen);
    return [=]() mutable {
      opt->zero_grad();
      Tensor logits = net->forward(idx);
      F::cross_entropy(logits.view({-1, logits.size(-1)}), tgt.view({-1})).backward();
      enn::utils::clip_grad_norm_(net->parameters(), 1.0);
      opt->step();
    };
  }
  if (m.name == "dcgan") {
    enn::Sequential G = ember_examples::gan::make_generator();
    enn::Sequential D = ember_examples::gan::make_discriminator(true);
    ember_examples::gan::dcgan_init(*G);
    ember_examples::gan::dcgan_init(*D);
    auto opt_g = std::make_shared<ember::optim::Adam>(
        G->parameters(), ember::optim::AdamOptions(2e-4).betas({0.5, 0.999}));
    auto opt_d = std::make_shared<ember::optim::Adam>(
        D->parameters(), ember::optim::AdamOptions(2e-4).betas({0.5, 0.999}));
    Tensor real = ember::rand({B, 1, 28, 28}, gen) * 2.0 - 1.0;
    Tensor z = ember::randn({B, ember_examples::gan::kNoise, 1, 1}, gen);
    Tensor ones = ember::ones({B, 1}), zeros = ember::zeros({B, 1});
    return [=]() mutable {
      Tensor fake = G->forward(z);
      opt_d->zero_grad();
      Tensor loss_d = F::binary_cross_entropy_with_logits(D->forward(real), ones) +
                      F::binary_cross_entropy_with_logits(D->forward(fake.detach()), zeros);
      loss_d.backward();
      opt_d->step();
      opt_g->zero_grad();
      F::binary_cross_entropy_with_logits(D->forward(fake), ones).backward();
      opt_g->step();
    };
  }
  // mnist_cnn
  enn::Sequential net(enn::Conv2d(enn::Conv2dOptions(1, 32, 3)), enn::ReLU(),
                      enn::Conv2d(enn::Conv2dOptions(32, 64, 3)), enn::ReLU(), enn::MaxPool2d(2),
                      enn::Dropout(0.25), enn::Flatten(), enn::Linear(9216, 128), enn::ReLU(),
                      enn::Dropout(0.5), enn::Linear(128, 10));
  auto opt = std::make_shared<ember::optim::SGD>(net->parameters(),
                                                 ember::optim::SGDOptions(0.01).momentum(0.9));
  Tensor x = ember::randn({B, 1, 28, 28}, gen), y = ember::randint(0, 10, {B}, gen);
  return [=]() mutable {
    opt->zero_grad();
    F::cross_entropy(net->forward(x), y).backward();
    opt->step();
  };
}

// ---- libtorch: the same models ----

#ifdef EMBER_BENCH_TORCH
namespace tnn = torch::nn;

/// ResNet-20's block: two 3x3 conv-bn pairs, projection shortcut (1x1 conv + bn) where the shape
/// changes (option B, as examples/resnet).
struct TBlockImpl : tnn::Module {
  tnn::Conv2d conv1{nullptr}, conv2{nullptr};
  tnn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  tnn::Sequential down{nullptr};
  TBlockImpl(int64_t in, int64_t out, int64_t stride) {
    conv1 = register_module(
        "conv1", tnn::Conv2d(tnn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)));
    bn1 = register_module("bn1", tnn::BatchNorm2d(out));
    conv2 = register_module("conv2",
                            tnn::Conv2d(tnn::Conv2dOptions(out, out, 3).padding(1).bias(false)));
    bn2 = register_module("bn2", tnn::BatchNorm2d(out));
    if (stride != 1 || in != out) {
      down = register_module(
          "down", tnn::Sequential(
                      tnn::Conv2d(tnn::Conv2dOptions(in, out, 1).stride(stride).bias(false)),
                      tnn::BatchNorm2d(out)));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = torch::relu(bn1(conv1(x)));
    y = bn2(conv2(y));
    return torch::relu(y + (down ? down->forward(x) : x));
  }
};
TORCH_MODULE(TBlock);

struct TResNet20Impl : tnn::Module {
  tnn::Conv2d conv1{nullptr};
  tnn::BatchNorm2d bn1{nullptr};
  tnn::Sequential layers{nullptr};
  tnn::Linear fc{nullptr};
  TResNet20Impl() {
    conv1 = register_module("conv1",
                            tnn::Conv2d(tnn::Conv2dOptions(1, 16, 3).padding(1).bias(false)));
    bn1 = register_module("bn1", tnn::BatchNorm2d(16));
    tnn::Sequential s;
    int64_t in = 16;
    for (int64_t planes : {16, 32, 64}) {
      for (int i = 0; i < 3; ++i) {
        s->push_back(TBlock(in, planes, (i == 0 && planes != 16) ? 2 : 1));
        in = planes;
      }
    }
    layers = register_module("layers", s);
    fc = register_module("fc", tnn::Linear(64, 10));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = layers->forward(torch::relu(bn1(conv1(x))));
    return fc(torch::adaptive_avg_pool2d(y, {1, 1}).flatten(1));
  }
};
TORCH_MODULE(TResNet20);

/// The GPT of examples/gpt: pre-LN blocks, causal SDPA, GELU (tanh), tied output weights.
struct TBlockGPTImpl : tnn::Module {
  int64_t n_head;
  double p;
  tnn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  tnn::Linear c_attn{nullptr}, attn_proj{nullptr}, c_fc{nullptr}, mlp_proj{nullptr};
  tnn::Dropout drop1{nullptr}, drop2{nullptr};
  TBlockGPTImpl(int64_t C, int64_t H, double dropout) : n_head(H), p(dropout) {
    ln_1 = register_module("ln_1", tnn::LayerNorm(tnn::LayerNormOptions({C})));
    ln_2 = register_module("ln_2", tnn::LayerNorm(tnn::LayerNormOptions({C})));
    c_attn = register_module("c_attn", tnn::Linear(C, 3 * C));
    attn_proj = register_module("attn_proj", tnn::Linear(C, C));
    c_fc = register_module("c_fc", tnn::Linear(C, 4 * C));
    mlp_proj = register_module("mlp_proj", tnn::Linear(4 * C, C));
    drop1 = register_module("drop1", tnn::Dropout(dropout));
    drop2 = register_module("drop2", tnn::Dropout(dropout));
  }
  torch::Tensor forward(torch::Tensor x) {
    const int64_t B = x.size(0), T = x.size(1), C = x.size(2), D = C / n_head;
    std::vector<torch::Tensor> qkv = c_attn(ln_1(x)).split(C, 2);
    auto heads = [&](const torch::Tensor& t) { return t.view({B, T, n_head, D}).transpose(1, 2); };
    torch::Tensor y = at::scaled_dot_product_attention(heads(qkv[0]), heads(qkv[1]),
                                                       heads(qkv[2]), {}, is_training() ? p : 0.0,
                                                       /*is_causal=*/true);
    x = x + drop1(attn_proj(y.transpose(1, 2).reshape({B, T, C})));
    return x + drop2(mlp_proj(torch::gelu(c_fc(ln_2(x)), "tanh")));
  }
};
TORCH_MODULE(TBlockGPT);

struct TGPTImpl : tnn::Module {
  tnn::Embedding wte{nullptr}, wpe{nullptr};
  tnn::Dropout drop{nullptr};
  tnn::Sequential h{nullptr};
  tnn::LayerNorm ln_f{nullptr};
  TGPTImpl(int64_t V, int64_t T, int64_t L, int64_t H, int64_t C, double dropout) {
    wte = register_module("wte", tnn::Embedding(V, C));
    wpe = register_module("wpe", tnn::Embedding(T, C));
    drop = register_module("drop", tnn::Dropout(dropout));
    tnn::Sequential s;
    for (int64_t i = 0; i < L; ++i) s->push_back(TBlockGPT(C, H, dropout));
    h = register_module("h", s);
    ln_f = register_module("ln_f", tnn::LayerNorm(tnn::LayerNormOptions({C})));
  }
  torch::Tensor forward(const torch::Tensor& idx) {
    torch::Tensor pos = torch::arange(idx.size(1), torch::kLong);
    torch::Tensor x = drop(wte(idx) + wpe(pos));
    return torch::matmul(ln_f(h->forward(x)), wte->weight.t());  // tied head
  }
};
TORCH_MODULE(TGPT);

StepFn torch_step(const ModelSpec& m) {
  torch::manual_seed(1);
  const int64_t B = m.batch;
  if (m.name == "resnet20") {
    TResNet20 net;
    auto opt = std::make_shared<torch::optim::SGD>(
        net->parameters(),
        torch::optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(5e-4));
    torch::Tensor x = torch::randn({B, 1, 28, 28}), y = torch::randint(0, 10, {B});
    return [=]() mutable {
      opt->zero_grad();
      torch::cross_entropy_loss(net->forward(x), y).backward();
      opt->step();
    };
  }
  if (m.name == "gpt") {
    const int64_t T = ember::bench::quick_mode() ? 16 : 128;
    TGPT net(512, 128, 4, 4, 256, 0.1);
    auto opt = std::make_shared<torch::optim::AdamW>(
        net->parameters(), torch::optim::AdamWOptions(1e-3).betas({0.9, 0.99}).weight_decay(0.1));
    torch::Tensor idx = torch::randint(0, 512, {B, T}), tgt = torch::randint(0, 512, {B, T});
    return [=]() mutable {
      opt->zero_grad();
      torch::Tensor logits = net->forward(idx);
      torch::cross_entropy_loss(logits.view({-1, logits.size(-1)}), tgt.view({-1})).backward();
      torch::nn::utils::clip_grad_norm_(net->parameters(), 1.0);
      opt->step();
    };
  }
  if (m.name == "dcgan") {
    tnn::Sequential G(
        tnn::ConvTranspose2d(tnn::ConvTranspose2dOptions(100, 256, 7).bias(false)),
        tnn::BatchNorm2d(256), tnn::ReLU(),
        tnn::ConvTranspose2d(tnn::ConvTranspose2dOptions(256, 128, 4).stride(2).padding(1).bias(false)),
        tnn::BatchNorm2d(128), tnn::ReLU(),
        tnn::ConvTranspose2d(tnn::ConvTranspose2dOptions(128, 1, 4).stride(2).padding(1)),
        tnn::Tanh());
    tnn::Sequential D(tnn::Conv2d(tnn::Conv2dOptions(1, 64, 4).stride(2).padding(1)),
                      tnn::LeakyReLU(tnn::LeakyReLUOptions().negative_slope(0.2)),
                      tnn::Conv2d(tnn::Conv2dOptions(64, 128, 4).stride(2).padding(1)),
                      tnn::BatchNorm2d(128),
                      tnn::LeakyReLU(tnn::LeakyReLUOptions().negative_slope(0.2)), tnn::Flatten(),
                      tnn::Linear(128 * 7 * 7, 1));
    auto opt_g = std::make_shared<torch::optim::Adam>(
        G->parameters(), torch::optim::AdamOptions(2e-4).betas({0.5, 0.999}));
    auto opt_d = std::make_shared<torch::optim::Adam>(
        D->parameters(), torch::optim::AdamOptions(2e-4).betas({0.5, 0.999}));
    torch::Tensor real = torch::rand({B, 1, 28, 28}) * 2.0 - 1.0;
    torch::Tensor z = torch::randn({B, 100, 1, 1});
    torch::Tensor ones = torch::ones({B, 1}), zeros = torch::zeros({B, 1});
    return [=]() mutable {
      torch::Tensor fake = G->forward(z);
      opt_d->zero_grad();
      torch::Tensor loss_d =
          torch::binary_cross_entropy_with_logits(D->forward(real), ones) +
          torch::binary_cross_entropy_with_logits(D->forward(fake.detach()), zeros);
      loss_d.backward();
      opt_d->step();
      opt_g->zero_grad();
      torch::binary_cross_entropy_with_logits(D->forward(fake), ones).backward();
      opt_g->step();
    };
  }
  tnn::Sequential net(tnn::Conv2d(tnn::Conv2dOptions(1, 32, 3)), tnn::ReLU(),
                      tnn::Conv2d(tnn::Conv2dOptions(32, 64, 3)), tnn::ReLU(),
                      tnn::MaxPool2d(tnn::MaxPool2dOptions(2)), tnn::Dropout(0.25), tnn::Flatten(),
                      tnn::Linear(9216, 128), tnn::ReLU(), tnn::Dropout(0.5), tnn::Linear(128, 10));
  auto opt = std::make_shared<torch::optim::SGD>(net->parameters(),
                                                 torch::optim::SGDOptions(0.01).momentum(0.9));
  torch::Tensor x = torch::randn({B, 1, 28, 28}), y = torch::randint(0, 10, {B});
  return [=]() mutable {
    opt->zero_grad();
    torch::cross_entropy_loss(net->forward(x), y).backward();
    opt->step();
  };
}
#endif

StepFn make_step(const ModelSpec& m, const std::string& impl) {
#ifdef EMBER_BENCH_TORCH
  if (impl == "libtorch") return torch_step(m);
#endif
  (void)impl;
  return ember_step(m);
}

void bm_step(benchmark::State& state, ModelSpec m, std::string impl, int threads) {
  ThreadScope ts(threads);
  StepFn step = make_step(m, impl);
  step();  // warm-up: allocator caches, optimizer state, OpenMP threads
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * m.samples);
}

// ---- peak memory ----

/// Resident set of this process now, in KiB (VmRSS of /proc/self/status).
long rss_now_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

struct PeakMemory {
  long peak_kib = -1, growth_kib = -1;
};

/// Runs 3 steps in a forked child: its peak resident set and the growth over the resident set
/// before the model was built.
PeakMemory measure_peak(const ModelSpec& m, const std::string& impl, int threads) {
  int fd[2];
  if (pipe(fd) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    long base = rss_now_kib();
    long out[2] = {-1, -1};
    try {
      ThreadScope ts(threads);
      StepFn step = make_step(m, impl);
      for (int i = 0; i < 3; ++i) step();
      rusage u{};
      getrusage(RUSAGE_SELF, &u);
      out[0] = u.ru_maxrss;
      out[1] = u.ru_maxrss - base;
    } catch (...) {
    }
    if (write(fd[1], out, sizeof out) != sizeof out) _exit(1);
    _exit(0);
  }
  close(fd[1]);
  long out[2] = {-1, -1};
  if (pid < 0 || read(fd[0], out, sizeof out) != sizeof out) out[0] = out[1] = -1;
  close(fd[0]);
  if (pid > 0) waitpid(pid, nullptr, 0);
  return {out[0], out[1]};
}

std::vector<std::string> impls() {
#ifdef EMBER_BENCH_TORCH
  return {"ember", "libtorch"};
#else
  return {"ember"};
#endif
}

void print_peak_memory(int threads) {
  std::printf("peak resident memory, 3 steps in a fresh process, %d threads (MiB):\n", threads);
  std::printf("%-12s %-10s %12s %18s\n", "model", "impl", "peak RSS", "growth over start");
  for (const ModelSpec& m : specs()) {
    for (const std::string& impl : impls()) {
      const PeakMemory p = measure_peak(m, impl, threads);
      std::printf("%-12s %-10s %12.1f %18.1f\n", m.name.c_str(), impl.c_str(),
                  static_cast<double>(p.peak_kib) / 1024.0,
                  static_cast<double>(p.growth_kib) / 1024.0);
    }
  }
  std::printf("\n");
  std::fflush(stdout);
}

void register_all(int threads) {
  for (const ModelSpec& m : specs()) {
    for (const std::string& impl : impls()) {
      const std::string name =
          "step/" + m.name + "/b" + std::to_string(m.batch) + "/t" + std::to_string(threads) + "/" +
          impl;
      benchmark::RegisterBenchmark(name.c_str(),
                                   [=](benchmark::State& s) { bm_step(s, m, impl, threads); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->Iterations(ember::bench::quick_mode() ? 1 : 3)
          ->Repetitions(ember::bench::repetitions())
          ->ReportAggregatesOnly(true);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  ember::bench::add_torch_context();
  bool filtered = false;
  for (int i = 1; i < argc; ++i) filtered |= std::strncmp(argv[i], "--benchmark_filter", 18) == 0;
  const int threads = 2;
  if (!filtered) print_peak_memory(threads);
  register_all(threads);
  return ember::bench::ratio_main(argc, argv);
}
