// Short training runs on CUDA match the same runs on the CPU: a small CNN (conv, batch norm, max
// pool, adaptive average pool, linear; SGD with momentum) and a small Transformer (embedding,
// encoder layers with causal self-attention, layer norm, GELU MLP; AdamW), each from the same
// initial weights and batches, loss by loss and weight by weight to float32 tolerance. Without a
// GPU each case prints "skipped".
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <vector>

#include "cuda/cuda_test_util.hpp"
#include "ember/autocast.hpp"
#include "ember/nn.hpp"
#include "ember/optim.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using ember::test::agree;
using ember::test::gpu;

namespace {

struct TinyCnnImpl : nn::Module {
  TinyCnnImpl() {
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(1, 8, 3).padding(1).bias(false)));
    bn1 = register_module("bn1", nn::BatchNorm2d(8));
    conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(8, 12, 3).stride(2).padding(1)));
    pool = register_module("pool", nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    gap = register_module("gap", nn::AdaptiveAvgPool2d(std::vector<int64_t>{1, 1}));
    fc = register_module("fc", nn::Linear(12, 3));
  }
  Tensor forward(const Tensor& x) {
    Tensor h = pool(relu(bn1(conv1(x))));  // (N, 8, 6, 6) for 13x13 inputs
    h = gap(relu(conv2(h))).flatten(1);    // (N, 12)
    return fc(h);
  }
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  nn::MaxPool2d pool{nullptr};
  nn::AdaptiveAvgPool2d gap{nullptr};
  nn::Linear fc{nullptr};
};
EMBER_MODULE(TinyCnn);

struct TinyLmImpl : nn::Module {
  explicit TinyLmImpl(int64_t vocab) {
    tok = register_module("tok", nn::Embedding(vocab, 32));
    pos = register_module("pos", nn::Embedding(16, 32));
    for (int i = 0; i < 2; ++i)
      layers.push_back(register_module(
          "layer" + std::to_string(i),
          nn::TransformerEncoderLayer(nn::TransformerEncoderLayerOptions(32, 4)
                                          .dim_feedforward(64)
                                          .dropout(0.0)
                                          .batch_first(true)
                                          .norm_first(true))));
    norm = register_module("norm", nn::LayerNorm(std::vector<int64_t>{32}));
    head = register_module("head", nn::Linear(32, vocab));
  }
  Tensor forward(const Tensor& ids) {  // (N, T) -> (N, T, vocab)
    const int64_t T = ids.size(1);
    Tensor positions = arange(T, TensorOptions(kInt64).device(ids.device()));
    Tensor h = tok(ids) + pos(positions);
    Tensor mask = triu(full({T, T}, -INFINITY, TensorOptions().device(ids.device())), 1);
    for (auto& layer : layers) h = layer(h, mask, Tensor(), /*is_causal=*/true);
    return head(norm(h));
  }
  nn::Embedding tok{nullptr}, pos{nullptr};
  std::vector<nn::TransformerEncoderLayer> layers;
  nn::LayerNorm norm{nullptr};
  nn::Linear head{nullptr};
};
EMBER_MODULE(TinyLm);

/// Trains `steps` steps on each device from the same start; returns per device the losses.
/// make_model() builds the model (called twice under the same seed), batch(step, device) the
/// inputs and targets, step_loss the loss, make_opt the optimizer.
template <class Model>
void compare_runs(const std::function<Model()>& make_model,
                  const std::function<std::pair<Tensor, Tensor>(int, Device)>& batch,
                  const std::function<Tensor(Model&, const Tensor&, const Tensor&)>& step_loss,
                  const std::function<std::unique_ptr<optim::Optimizer>(Model&)>& make_opt,
                  int steps, double tol) {
  const Device cu(kCUDA);
  manual_seed(11);
  Model cpu_model = make_model();
  manual_seed(11);
  Model gpu_model = make_model();
  gpu_model->to(cu);
  auto cpu_opt = make_opt(cpu_model);
  auto gpu_opt = make_opt(gpu_model);
  for (int step = 0; step < steps; ++step) {
    auto [x, y] = batch(step, Device(kCPU));
    cpu_opt->zero_grad();
    Tensor cpu_loss = step_loss(cpu_model, x, y);
    cpu_loss.backward();
    cpu_opt->step();
    gpu_opt->zero_grad();
    Tensor gpu_loss = step_loss(gpu_model, x.to(cu), y.to(cu));
    gpu_loss.backward();
    gpu_opt->step();
    const double a = cpu_loss.item<double>(), b = gpu_loss.item<double>();
    INFO("step " << step << " cpu loss " << a << " cuda loss " << b);
    CHECK(std::isfinite(b));
    CHECK(std::abs(a - b) <= tol * (1 + std::abs(a)));
  }
  const StateDict cp = cpu_model->named_parameters(), gp = gpu_model->named_parameters();
  REQUIRE(cp.keys() == gp.keys());
  for (const std::string& key : cp.keys()) {
    INFO(key);
    CHECK(gp.at(key).is_cuda());
    CHECK(agree(gp.at(key).cpu(), cp.at(key), 10 * tol));
  }
}

}  // namespace

TEST_CASE("cuda training: a small CNN with batch norm and SGD follows the CPU run") {
  if (!gpu()) return;
  Generator data(5);
  const Tensor images = randn({6 * 16, 1, 13, 13}, data);
  const Tensor labels = randint(0, 3, {6 * 16}, data);
  compare_runs<TinyCnn>(
      [] { return TinyCnn(); },
      [&](int step, Device d) {
        return std::pair<Tensor, Tensor>{images.narrow(0, step * 16, 16).to(d),
                                         labels.narrow(0, step * 16, 16).to(d)};
      },
      [](TinyCnn& m, const Tensor& x, const Tensor& y) { return F::cross_entropy(m(x), y); },
      [](TinyCnn& m) {
        return std::make_unique<optim::SGD>(m->parameters(),
                                            optim::SGDOptions(0.05).momentum(0.9).nesterov(true));
      },
      6, 1e-4);
}

TEST_CASE("cuda training: a small causal Transformer with AdamW follows the CPU run") {
  if (!gpu()) return;
  const int64_t vocab = 37;
  Generator data(6);
  const Tensor tokens = randint(0, vocab, {8, 8, 13}, data);  // 8 steps of (8, 13) sequences
  compare_runs<TinyLm>(
      [&] { return TinyLm(vocab); },
      [&](int step, Device d) {
        Tensor seq = tokens[step];
        return std::pair<Tensor, Tensor>{seq.narrow(1, 0, 12).to(d), seq.narrow(1, 1, 12).to(d)};
      },
      [&](TinyLm& m, const Tensor& x, const Tensor& y) {
        return F::cross_entropy(m(x).reshape({-1, vocab}), y.reshape({-1}));
      },
      [](TinyLm& m) {
        return std::make_unique<optim::AdamW>(m->parameters(),
                                              optim::AdamWOptions(3e-3).weight_decay(0.1));
      },
      8, 1e-4);
}

#ifdef EMBER_TEST_CUDA_EMULATED
// The emulator's counters (tools/cuda_emu/include/cuda_runtime.h; the library links the
// emulator's runtime in this build).
namespace ember_emu {
struct Counts {
  unsigned long long launches = 0, host_waits = 0;
};
Counts counts();
}  // namespace ember_emu

TEST_CASE("cuda training step: clip_grad_norm_ and GradScaler launch a few kernels, wait once") {
  // One float16 mixed-precision step as the trainers run it (autocast forward and loss, scaled
  // backward, unscale_, clip_grad_norm_, step, update) on the TinyLm (30 parameters): unscale_
  // and clip_grad_norm_ never wait for the GPU and launch a few kernels for all the gradients;
  // the scaler's step waits once, to read the non-finite flag. (The forward and backward wait
  // where ops read the GPU: the embedding index checks, cross-entropy's target check.)
  const Device cu(kCUDA);
  const int64_t vocab = 37;
  manual_seed(12);
  TinyLm model(vocab);
  model->to(cu);
  optim::AdamW opt(model->parameters(), optim::AdamWOptions(1e-3));
  optim::GradScaler scaler;
  Generator data(7);
  const Tensor seq = randint(0, vocab, {4, 13}, data).to(cu);
  const Tensor x = seq.narrow(1, 0, 12), y = seq.narrow(1, 1, 12);
  struct Phase {
    unsigned long long launches, waits;
  };
  auto step = [&](std::vector<Phase>& phases) {
    auto mark = [&] {
      const ember_emu::Counts c = ember_emu::counts();
      phases.push_back({c.launches, c.host_waits});
    };
    mark();
    opt.zero_grad();
    Tensor loss;
    {
      auto amp = ember::autocast(kFloat16, kCUDA);
      loss = F::cross_entropy(model(x).reshape({-1, vocab}), y.reshape({-1}));
    }
    scaler.scale(loss).backward();
    mark();
    scaler.unscale_(opt);
    mark();
    nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    mark();
    scaler.step(opt);
    scaler.update();
    mark();
  };
  std::vector<Phase> warm, p;
  step(warm);
  step(p);
  const auto d = [&](size_t i) {
    return Phase{p[i + 1].launches - p[i].launches, p[i + 1].waits - p[i].waits};
  };
  const size_t n_params = model->parameters().size();
  UNSCOPED_INFO(n_params << " parameters; launches / host waits: forward+backward " << d(0).launches
                         << " / " << d(0).waits << ", unscale_ " << d(1).launches << " / "
                         << d(1).waits << ", clip_grad_norm_ " << d(2).launches << " / "
                         << d(2).waits << ", step+update " << d(3).launches << " / " << d(3).waits);
  CHECK(d(0).waits <= 3);      // two embedding index checks, cross-entropy's target check
  CHECK(d(1).waits == 0);      // unscale_ keeps its flag on the GPU
  CHECK(d(2).waits == 0);      // clip_grad_norm_ keeps the norm there
  CHECK(d(3).waits == 1);      // step() reads the flag once
  CHECK(d(1).launches <= 4);   // one zero fill, a launch per table of 32
  CHECK(d(2).launches <= 16);  // norms (2 per table + a fill), total, coefficient, scaling
  CHECK(d(3).launches <= 2);   // AdamW: one launch per table of 32
}

TEST_CASE("cuda cross_entropy under autocast: float16 logits read as they are, one host wait") {
  // The classifier's loss in a mixed-precision step: the fused kernel reads the float16 logits
  // (no cast to float32 before it, none of the gradient after it), and the forward waits for the
  // GPU once, for the target check (the sums stay on the GPU).
  const Device cu(kCUDA);
  Generator g(3);
  Tensor logits = randn({48, 1003}, g).to(cu, kFloat16).requires_grad_();
  Tensor y = randint(0, 1003, {48}, g).to(cu);
  const ember_emu::Counts c0 = ember_emu::counts();
  Tensor loss;
  {
    auto amp = ember::autocast(kFloat16, kCUDA);
    loss = F::cross_entropy(logits, y);
  }
  const ember_emu::Counts c1 = ember_emu::counts();
  Tensor dx = autograd::grad({loss}, {logits})[0];
  const ember_emu::Counts c2 = ember_emu::counts();
  UNSCOPED_INFO("forward " << c1.launches - c0.launches << " launches / "
                           << c1.host_waits - c0.host_waits << " waits, backward "
                           << c2.launches - c1.launches << " / " << c2.host_waits - c1.host_waits);
  CHECK(loss.dtype() == kFloat32);
  CHECK(dx.dtype() == kFloat16);
  CHECK(loss.grad_fn()->input_meta[0].dtype == kFloat16);
  CHECK(c1.host_waits - c0.host_waits == 1);  // the target check
  CHECK(c2.host_waits - c1.host_waits == 0);
  CHECK(c2.launches - c1.launches <= 4);  // dloss, its division, the backward kernel
}

TEST_CASE("cuda attention block: no copies around the fused attention of split heads") {
  // A GPT block's attention core, as examples/gpt runs it: q, k, v split from one (B, T, 3 C)
  // projection into heads, fused attention, the output reshaped to (B, T, C). The output lies as
  // (B, T, H, D), so the reshape is a view; the gradients too, so they reach the split as they
  // lie, and split's one node concatenates them.
  const Device cu(kCUDA);
  Generator g(9);
  const int64_t B = 2, T = 64, H = 2, D = 64, C = H * D;
  Tensor qkv = randn({B, T, 3 * C}, g).to(cu, kBFloat16).requires_grad_();
  const Tensor dy = randn({B, T, C}, g).to(cu, kBFloat16);
  auto heads = [&](const Tensor& t) { return t.view({B, T, H, D}).transpose(1, 2); };
  const ember_emu::Counts c0 = ember_emu::counts();
  std::vector<Tensor> p = qkv.split(C, 2);
  Tensor y = F::scaled_dot_product_attention(heads(p[0]), heads(p[1]), heads(p[2]), {}, 0.0, true)
                 .transpose(1, 2)
                 .reshape({B, T, C});
  const ember_emu::Counts c1 = ember_emu::counts();
  Tensor dqkv = autograd::grad({y}, {qkv}, {dy})[0];
  const ember_emu::Counts c2 = ember_emu::counts();
  UNSCOPED_INFO("forward " << c1.launches - c0.launches << " launches, backward "
                           << c2.launches - c1.launches);
  CHECK(c1.host_waits == c0.host_waits);
  CHECK(c2.host_waits == c1.host_waits);
  // Measured: 1 / 6. With a contiguous output and gradients and a slice node per piece: 2 / 14
  // (the output's copy; the gradients' 3 copies, then 3 zero fills, 3 scatters and 2 additions).
  CHECK(c1.launches - c0.launches <= 1);  // the attention kernel
  CHECK(c2.launches - c1.launches <= 6);  // stats, dK/dV, dQ, the concatenation's 3 copies
}

TEST_CASE("cuda activation backward: one launch for the gradient of gelu and of relu") {
  // gelu's gradient was a composite of 17 elementwise ops (8 with a scalar operand, each made
  // on the GPU first); now one activation_backward pass.
  const Device cu(kCUDA);
  Generator g(10);
  Tensor x = randn({64, 96}, g).to(cu, kBFloat16).requires_grad_();
  const Tensor dy = randn({64, 96}, g).to(cu, kBFloat16);
  Tensor y = gelu(x, "tanh");
  const ember_emu::Counts c0 = ember_emu::counts();
  Tensor dx = autograd::grad({y}, {x}, {dy})[0];
  const ember_emu::Counts c1 = ember_emu::counts();
  // The composite formula, which create_graph differentiates (and every first-order backward
  // ran before).
  Tensor yc = gelu(x, "tanh");
  const ember_emu::Counts c4 = ember_emu::counts();
  (void)autograd::grad({yc}, {x}, {dy}, std::nullopt, /*create_graph=*/true);
  const ember_emu::Counts c5 = ember_emu::counts();
  UNSCOPED_INFO("gelu backward " << c1.launches - c0.launches << " launches, the composite "
                                 << c5.launches - c4.launches);
  CHECK(c1.launches - c0.launches == 1);
  CHECK(c5.launches - c4.launches > 10);
  CHECK(c1.host_waits == c0.host_waits);
  // relu's gradient from its output: one pass too (the composite: le against a scalar made on the
  // GPU, then masked_fill).
  Tensor r = relu(x);
  const ember_emu::Counts c2 = ember_emu::counts();
  (void)autograd::grad({r}, {x}, {dy});
  const ember_emu::Counts c3 = ember_emu::counts();
  Tensor rc = relu(x);
  const ember_emu::Counts c6 = ember_emu::counts();
  (void)autograd::grad({rc}, {x}, {dy}, std::nullopt, /*create_graph=*/true);
  const ember_emu::Counts c7 = ember_emu::counts();
  UNSCOPED_INFO("relu backward " << c3.launches - c2.launches << " launches, the composite "
                                 << c7.launches - c6.launches);
  CHECK(c3.launches - c2.launches == 1);
  CHECK(c7.launches - c6.launches > 1);
}

TEST_CASE("cuda scalar operands: one launch each, no host wait") {
  // A Scalar operand reaches the kernel by value (loops.cuh's Single). Before, each was made on
  // the GPU first: `x * 0.5` was 3 launches (a fill of a float64 0-d tensor, its cast, then the
  // product through the general strided path), masked_fill 2.
  const Device cu(kCUDA);
  Generator g(13);
  Tensor x = randn({64, 96}, g).to(cu, kBFloat16);
  const Tensor mask = x > 0;
  const Tensor coef = scalar_tensor(0.25).to(cu);  // a 0-d device tensor (clipping's coefficient)
  auto launches = [](auto f) {
    const ember_emu::Counts c0 = ember_emu::counts();
    (void)f();
    const ember_emu::Counts c1 = ember_emu::counts();
    CHECK(c1.host_waits == c0.host_waits);
    return c1.launches - c0.launches;
  };
  CHECK(launches([&] { return x * 0.5; }) == 1);
  CHECK(launches([&] { return x + 3; }) == 1);
  CHECK(launches([&] { return x < 0.5; }) == 1);
  CHECK(launches([&] { return masked_fill(x, mask, 0.0); }) == 1);
  CHECK(launches([&] { return where(mask, x, 0.0); }) == 1);
  CHECK(launches([&] { return x * coef; }) == 1);
  CHECK(launches([&] { return x.mul_(0.5); }) == 1);
  CHECK(launches([&] { return x.to(kFloat32).mul_(coef); }) == 2);  // the cast, the product
  // The Scalar first: copied to the device (an upload through the pinned ring, no kernel and no
  // wait), then the general path.
  CHECK(launches([&] { return 1 - x; }) == 1);
}

TEST_CASE("cuda layer_norm on bfloat16: one fused node, a few launches") {
  // A model kept in bfloat16: layer_norm reads the 16-bit rows as they are (float32 statistics).
  // Before, the composite: a float32 copy, mean, centring, square, mean, rsqrt, scale, shift and
  // a cast back, each a pass and a node.
  const Device cu(kCUDA);
  Generator g(14);
  Tensor x = randn({64, 768}, g).to(cu, kBFloat16).requires_grad_();
  Tensor w = randn({768}, g).to(cu, kBFloat16).requires_grad_();
  Tensor b = randn({768}, g).to(cu, kBFloat16).requires_grad_();
  const Tensor dy = randn({64, 768}, g).to(cu, kBFloat16);
  auto count = [&](auto norm) {
    const ember_emu::Counts c0 = ember_emu::counts();
    Tensor y = norm(x, std::vector<int64_t>{768}, w, b, 1e-5);
    const ember_emu::Counts c1 = ember_emu::counts();
    (void)autograd::grad({y}, {x, w, b}, {dy});
    const ember_emu::Counts c2 = ember_emu::counts();
    CHECK(c2.host_waits == c0.host_waits);
    return std::pair{c1.launches - c0.launches, c2.launches - c1.launches};
  };
  const auto fused = count([](const Tensor& a, IntArrayRef n, const Tensor& c, const Tensor& d,
                              double eps) { return F::layer_norm(a, n, c, d, eps); });
  const auto composite = count([](const Tensor& a, IntArrayRef n, const Tensor& c, const Tensor& d,
                                  double eps) { return F::layer_norm_reference(a, n, c, d, eps); });
  UNSCOPED_INFO("bf16 layer_norm launches forward / backward: fused "
                << fused.first << " / " << fused.second << ", composite " << composite.first
                << " / " << composite.second);
  CHECK(fused.first <= 3);   // the parameters cast to float32, the kernel
  CHECK(fused.second <= 5);  // dx, the column partials and their finish, two casts back
  CHECK(composite.first > 2 * fused.first);
}

TEST_CASE("cuda uploads: a small host-to-device copy waits for nothing, max_pool2d neither") {
  // Up to 64 KiB a copy to the device goes through the pinned upload ring: no wait (max_pool2d's
  // window tables, a batch of token ids). Larger ones wait for the stream, as PyTorch's blocking
  // copy does.
  const Device cu(kCUDA);
  Generator g(15);
  const Tensor small = randint(0, 50257, {8, 1024}, g);  // 64 KiB of int64
  const Tensor large = randn({16385}, g);                // float32, just past
  auto waits = [](auto f) {
    const ember_emu::Counts c0 = ember_emu::counts();
    (void)f();
    return ember_emu::counts().host_waits - c0.host_waits;
  };
  CHECK(waits([&] { return small.to(cu); }) == 0);
  CHECK(waits([&] { return large.to(cu); }) == 1);
  const Tensor x = randn({2, 8, 16, 16}, g).to(cu, kBFloat16);
  CHECK(waits([&] { return max_pool2d(x, {3, 3}, {2, 2}, {1, 1}); }) == 0);
}

TEST_CASE("cuda conv2d backward: dy made channels-last once for both gradients") {
  // Ember's implicit-GEMM kernels read dy as NHWC. With the input and the weight gradient both
  // wanted, the node makes that copy once and both kernels take it as a view.
  const Device cu(kCUDA);
  Generator g(11);
  Tensor x = randn({2, 16, 10, 10}, g).to(cu, kBFloat16).requires_grad_();
  Tensor w = randn({32, 16, 3, 3}, g).to(cu, kBFloat16).requires_grad_();
  const Tensor dy = randn({2, 32, 10, 10}, g).to(cu, kBFloat16);
  Tensor y = conv2d(x, w, {}, {1, 1}, {1, 1});
  const ember_emu::Counts c0 = ember_emu::counts();
  std::vector<Tensor> both = autograd::grad({y}, {x, w}, {dy});
  const ember_emu::Counts c1 = ember_emu::counts();
  Tensor y2 = conv2d(x, w.detach(), {}, {1, 1}, {1, 1});  // dx alone
  const ember_emu::Counts c2 = ember_emu::counts();
  Tensor gx = autograd::grad({y2}, {x}, {dy})[0];
  const ember_emu::Counts c3 = ember_emu::counts();
  Tensor y3 = conv2d(x.detach(), w, {}, {1, 1}, {1, 1});  // dw alone
  const ember_emu::Counts c4 = ember_emu::counts();
  Tensor gw = autograd::grad({y3}, {w}, {dy})[0];
  const ember_emu::Counts c5 = ember_emu::counts();
  UNSCOPED_INFO("backward launches: both " << c1.launches - c0.launches << ", dx alone "
                                           << c3.launches - c2.launches << ", dw alone "
                                           << c5.launches - c4.launches);
  // The same values whichever gradients are asked for.
  CHECK(test::bitwise_equal(both[0].cpu(), gx.cpu()));
  CHECK(test::bitwise_equal(both[1].cpu(), gw.cpu()));
  // Each alone transposes dy once; together they share it: one launch fewer than apart.
  CHECK(c1.launches - c0.launches + 1 == (c3.launches - c2.launches) + (c5.launches - c4.launches));
}

TEST_CASE("cuda batch_norm under autocast: a bfloat16 conv output normalized by one fused node") {
  // A ResNet layer's BatchNorm2d in training under bf16 autocast: the convolution's bf16 output
  // goes to the fused kernels as it is (float32 statistics and parameters), forward and
  // backward, no host wait.
  const Device cu(kCUDA);
  manual_seed(5);
  nn::BatchNorm2d bn(16);
  bn->to(cu);
  Generator g(4);
  Tensor h = randn({4, 16, 12, 12}, g).to(cu, kBFloat16).requires_grad_();
  const Tensor dy = randn({4, 16, 12, 12}, g).to(cu, kBFloat16);
  const ember_emu::Counts c0 = ember_emu::counts();
  Tensor y;
  {
    auto amp = ember::autocast(kBFloat16, kCUDA);
    y = bn(h);
  }
  const ember_emu::Counts c1 = ember_emu::counts();
  std::vector<Tensor> g1 = autograd::grad({y}, {h, bn->weight, bn->bias}, {dy});
  const ember_emu::Counts c2 = ember_emu::counts();
  UNSCOPED_INFO("forward " << c1.launches - c0.launches << " launches / "
                           << c1.host_waits - c0.host_waits << " waits, backward "
                           << c2.launches - c1.launches << " / " << c2.host_waits - c1.host_waits);
  CHECK(y.dtype() == kBFloat16);
  REQUIRE(y.grad_fn() != nullptr);
  CHECK(y.grad_fn()->name() == "batch_norm");
  CHECK(g1[0].dtype() == kBFloat16);
  CHECK(g1[1].dtype() == kFloat32);
  CHECK(c1.host_waits == c0.host_waits);
  CHECK(c2.host_waits == c1.host_waits);
  // Measured: 7 / 3. The float32 composite that 16-bit input took before: 39 / 29.
  CHECK(c1.launches - c0.launches <= 8);  // 2 x 2 for the sums (the running statistics blended
                                          // in the second finish), y, num_batches_tracked
  CHECK(c2.launches - c1.launches <= 4);  // 2 sums, the dx pass
  // Eval mode under no_grad: the per-channel rsqrt and one pass over the values.
  bn->eval();
  const ember_emu::Counts c3 = ember_emu::counts();
  {
    NoGradGuard no_grad;
    auto amp = ember::autocast(kBFloat16, kCUDA);
    y = bn(h);
  }
  const ember_emu::Counts c4 = ember_emu::counts();
  {
    NoGradGuard no_grad;
    (void)F::batch_norm_reference(h, bn->running_mean, bn->running_var, bn->weight, bn->bias, false,
                                  0.1, 1e-5);
  }
  const ember_emu::Counts c5 = ember_emu::counts();
  UNSCOPED_INFO("eval " << c4.launches - c3.launches << " launches, the composite "
                        << c5.launches - c4.launches);
  CHECK(y.dtype() == kBFloat16);
  CHECK(c4.launches - c3.launches <= 5);  // rsqrt(running_var + eps) per channel, one pass
  CHECK(c4.launches - c3.launches < c5.launches - c4.launches);
  // Eval mode with gradients (input gradients of a model in eval mode, frozen statistics): the
  // same forward as one node, and a backward of the sums and one pass, against the composite's.
  auto eval_step = [&](bool composite) {
    const ember_emu::Counts a = ember_emu::counts();
    const Tensor e = composite ? F::batch_norm_reference(h, bn->running_mean, bn->running_var,
                                                         bn->weight, bn->bias, false, 0.1, 1e-5)
                               : bn(h);
    const ember_emu::Counts b = ember_emu::counts();
    const std::vector<Tensor> ge = autograd::grad({e}, {h, bn->weight, bn->bias}, {dy});
    const ember_emu::Counts c = ember_emu::counts();
    CHECK(c.host_waits == a.host_waits);
    return std::pair<Tensor, std::vector<unsigned long long>>{
        ge[0], {b.launches - a.launches, c.launches - b.launches}};
  };
  const auto [dx_node, node] = eval_step(false);
  const auto [dx_composite, composite] = eval_step(true);
  UNSCOPED_INFO("eval with gradients: node " << node[0] << " + " << node[1] << " launches, the "
                                             << "composite " << composite[0] << " + "
                                             << composite[1]);
  CHECK(test::bitwise_equal(dx_node.cpu(), dx_composite.cpu()));
  CHECK(node[0] <= 5);  // rsqrt(running_var + eps), the pass (and the running mean's copy)
  CHECK(node[1] <= 5);  // 2 sums, the zero mean, the dx pass
  CHECK(node[0] + node[1] < composite[0] + composite[1]);
  // Eval mode without gradients, with the residual add and the ReLU (a ResNet block at
  // inference): one pass, against the eval pass, the add and the relu.
  const Tensor res = randn({4, 16, 12, 12}, g).to(cu, kBFloat16);
  NoGradGuard no_grad;
  const ember_emu::Counts e0 = ember_emu::counts();
  const Tensor fused = bn->forward_relu(h, res);
  const ember_emu::Counts e1 = ember_emu::counts();
  const Tensor ops = relu(bn(h) + res);
  const ember_emu::Counts e2 = ember_emu::counts();
  UNSCOPED_INFO("eval forward_relu " << e1.launches - e0.launches << " launches, the ops "
                                     << e2.launches - e1.launches);
  CHECK(test::bitwise_equal(fused.cpu(), ops.cpu()));
  CHECK(e1.launches - e0.launches <= 4);  // rsqrt(running_var + eps), the pass
  CHECK(e1.launches - e0.launches + 2 == e2.launches - e1.launches);
}

namespace {

/// Launches of one bottleneck forward and backward, and its results (y and the gradients of x
/// and the three filters).
struct BottleneckRun {
  unsigned long long forward, backward;
  std::vector<Tensor> out;
};

/// A ResNet bottleneck in bfloat16 (1x1, 3x3, 1x1 convolutions, each with a training-mode
/// BatchNorm and ReLU, the residual added before the last ReLU) from seeded x (4, 32, 8, 8) and
/// filters, all laid out as `format` (clone(format): channels-last strides for the 1x1 filters
/// too, whose memory reads the same either way); BatchNorm + (residual +) ReLU as one
/// batch_norm_relu node each (fused) or as the separate ops. Launches counted by the emulator.
BottleneckRun run_bottleneck(MemoryFormat format, bool fused) {
  const Device cu(kCUDA);
  Generator g(21);
  const Tensor x0 = randn({4, 32, 8, 8}, g).to(cu, kBFloat16);
  const Tensor wa = (randn({16, 32, 1, 1}, g) * 0.2).to(cu, kBFloat16);
  const Tensor wb = (randn({16, 16, 3, 3}, g) * 0.1).to(cu, kBFloat16);
  const Tensor wc = (randn({32, 16, 1, 1}, g) * 0.2).to(cu, kBFloat16);
  std::vector<Tensor> w{wa.clone(format).requires_grad_(), wb.clone(format).requires_grad_(),
                        wc.clone(format).requires_grad_()};
  Tensor x = x0.clone(format).requires_grad_();
  const auto bn_relu = [&](const Tensor& t, const Tensor& residual) {
    if (fused) return F::batch_norm_relu(t, {}, {}, {}, {}, true, 0.1, 1e-5, residual);
    const Tensor y = F::batch_norm(t, {}, {}, {}, {}, true);
    return relu(residual.defined() ? y + residual : y);
  };
  const ember_emu::Counts c0 = ember_emu::counts();
  Tensor h = bn_relu(conv2d(x, w[0]), {});
  h = bn_relu(conv2d(h, w[1], {}, {1, 1}, {1, 1}), {});
  Tensor y = bn_relu(conv2d(h, w[2]), x);
  Tensor loss = adaptive_avg_pool2d(y, {1, 1}).sum();
  const ember_emu::Counts c1 = ember_emu::counts();
  loss.backward();
  const ember_emu::Counts c2 = ember_emu::counts();
  return {c1.launches - c0.launches,
          c2.launches - c1.launches,
          {y, x.grad(), w[0].grad(), w[1].grad(), w[2].grad()}};
}

}  // namespace

TEST_CASE("cuda channels-last: a bottleneck block runs without layout copies") {
  // The bottleneck (run_bottleneck), forward and backward, NCHW against channels-last (input
  // and weights). NCHW pays the implicit-GEMM kernels' NHWC staging of each convolution's input
  // and output gradient and the filter repacks; channels-last reads them all as views.
  const Device cu(kCUDA);
  const BottleneckRun dense = run_bottleneck(MemoryFormat::Contiguous, false);
  const BottleneckRun cl = run_bottleneck(MemoryFormat::ChannelsLast, false);
  UNSCOPED_INFO("launches forward / backward: NCHW " << dense.forward << " / " << dense.backward
                                                     << ", channels-last " << cl.forward << " / "
                                                     << cl.backward);
  for (size_t i = 0; i < dense.out.size(); ++i) {
    INFO("output " << i);
    CHECK(cl.out[i].suggest_memory_format() == MemoryFormat::ChannelsLast);
    CHECK(test::agree(cl.out[i].cpu(), dense.out[i].cpu(), 3e-2));
  }
  // Measured: NCHW 24 / 30, channels-last 20 / 24 (30 / 30 and 26 / 26 before batch_norm's
  // statistics took one pass). Forward: the three convolutions' input
  // stagings and the 3x3 filter's repack; backward: the three dy stagings and the staging of x
  // for the 3x3 layer's weight gradient. What remains in channels-last is the filters' repack for
  // the input gradients (read as (C, R, S, O)).
  CHECK(cl.forward + 4 <= dense.forward);
  CHECK(cl.backward + 4 <= dense.backward);
  // A channels-last tensor crosses between the host and the device as its bytes lie: no kernel
  // on either side (a transposing kernel on the device, and a CPU transpose, before).
  const ember_emu::Counts c0 = ember_emu::counts();
  Tensor host = cl.out[0].cpu();
  Tensor back = host.to(cu);
  const ember_emu::Counts c1 = ember_emu::counts();
  CHECK(c1.launches == c0.launches);
  CHECK(back.suggest_memory_format() == MemoryFormat::ChannelsLast);
  CHECK(test::bitwise_equal(back.cpu(), host));
}

TEST_CASE("cuda batch_norm_relu: a bottleneck's BatchNorm, residual add and ReLU fused") {
  // The bottleneck, channels-last, with each BatchNorm and the ReLU (and the residual add) after
  // it as one batch_norm_relu node against the separate ops: the same bits forward and backward,
  // and fewer launches (no add and relu kernels forward, no threshold_backward).
  const MemoryFormat cl = MemoryFormat::ChannelsLast;
  const BottleneckRun ops = run_bottleneck(cl, false);
  const BottleneckRun fused = run_bottleneck(cl, true);
  UNSCOPED_INFO("launches forward / backward: ops " << ops.forward << " / " << ops.backward
                                                    << ", fused " << fused.forward << " / "
                                                    << fused.backward);
  for (size_t i = 0; i < ops.out.size(); ++i) {
    INFO("output " << i);
    CHECK(fused.out[i].suggest_memory_format() == cl);
    CHECK(test::bitwise_equal(fused.out[i].cpu(), ops.out[i].cpu()));
  }
  // Three relu and one add kernel fewer forward, three threshold_backward kernels backward
  // (measured: ops 20 / 24, fused 16 / 21).
  CHECK(fused.forward + 4 <= ops.forward);
  CHECK(fused.backward + 3 <= ops.backward);
}

TEST_CASE("cuda linear under autocast: float32 parameter gradients straight from the products") {
  // A transformer MLP as the GPT example runs it under bf16 autocast: linear_gelu, then
  // linear_residual onto a float32 residual stream, float32 parameters. The weights and biases
  // are cast without a record, so dW and db come back in float32 from the products' output cast
  // and a sum into float32 (not rounded to bf16 and cast back), and linear_residual's epilogue
  // reads the float32 bias as it is. The same MLP on operands cast by recorded casts (PyTorch's
  // autocast) is the peer.
  const Device cu(kCUDA);
  Generator g(21);
  const int64_t C = 64, H = 256;
  const Tensor x = randn({2, 32, C}, g).to(cu).requires_grad_();
  const Tensor w1 = (randn({H, C}, g) * 0.1).to(cu).requires_grad_();
  const Tensor b1 = randn({H}, g).to(cu).requires_grad_();
  const Tensor w2 = (randn({C, H}, g) * 0.1).to(cu).requires_grad_();
  const Tensor b2 = randn({C}, g).to(cu).requires_grad_();
  const Tensor res = randn({2, 32, C}, g).to(cu);
  const Tensor dy = randn({2, 32, C}, g).to(cu);
  const std::vector<Tensor> params{x, w1, b1, w2, b2};
  struct Run {
    Tensor out;
    std::vector<Tensor> grads;
    unsigned long long forward, backward;
  };
  auto run = [&](bool autocast_scope) {
    const ember_emu::Counts c0 = ember_emu::counts();
    Tensor out;
    if (autocast_scope) {
      auto amp = ember::autocast(kBFloat16, kCUDA);
      out = linear_residual(linear_gelu(x, w1, b1, "tanh"), w2, b2, res);
    } else {
      auto bf = [](const Tensor& t) { return t.to(kBFloat16); };
      out = linear_residual(linear_gelu(bf(x), bf(w1), bf(b1), "tanh"), bf(w2), bf(b2), res);
    }
    const ember_emu::Counts c1 = ember_emu::counts();
    std::vector<Tensor> grads = autograd::grad({out}, params, {dy});
    const ember_emu::Counts c2 = ember_emu::counts();
    CHECK(c2.host_waits == c0.host_waits);
    return Run{out, grads, c1.launches - c0.launches, c2.launches - c1.launches};
  };
  const Run ours = run(true), recorded = run(false);
  UNSCOPED_INFO("launches forward / backward: autocast " << ours.forward << " / " << ours.backward
                                                         << ", recorded casts " << recorded.forward
                                                         << " / " << recorded.backward);
  REQUIRE(ours.out.dtype() == kFloat32);
  CHECK(test::agree(ours.out.cpu(), recorded.out.cpu(), 1e-2));
  for (size_t i = 0; i < params.size(); ++i) {
    INFO("gradient " << i);
    REQUIRE(ours.grads[i].dtype() == kFloat32);
    CHECK(test::agree(ours.grads[i].cpu(), recorded.grads[i].cpu(), 3e-2));
  }
  // The second layer's dW and db against float64 sums of the same bf16 operands: dH is dY in
  // bf16 (linear_residual's gradient at the product), the input the first layer's output.
  const Tensor a = linear_gelu(x.detach().to(kBFloat16), w1.detach().to(kBFloat16),
                               b1.detach().to(kBFloat16), "tanh");
  const Tensor dh = dy.to(kBFloat16).cpu().to(kFloat64).reshape({-1, C});
  const Tensor dw2 = mm(dh.t(), a.cpu().to(kFloat64).reshape({-1, H}));
  CHECK(test::rel_err(ours.grads[3].cpu(), dw2) < 1e-6);
  CHECK(test::rel_err(ours.grads[4].cpu(), dh.sum({0})) < 1e-6);
  CHECK(test::rel_err(recorded.grads[3].cpu(), dw2) > 1e-4);  // rounded to bf16 on the way
  // Forward: the casts of b2 (to bf16 and, for the float32 epilogue, back) are gone; backward:
  // the four gradients' casts back to float32 and the bias sums' separate casts.
  CHECK(ours.forward + 2 <= recorded.forward);
  CHECK(ours.backward + 4 <= recorded.backward);
}
TEST_CASE("cuda convolutions under autocast: float32 weight gradients straight from the kernels") {
  // conv2d (+ bias), conv2d_relu, conv1d and conv_transpose2d under bf16 autocast with float32
  // input and parameters, as the ResNet and GAN trainers run them: the weight and bias are cast
  // without a record, the implicit GEMM's weight gradient is stored in float32 from its float32
  // sums, and db is summed into float32. The same op on operands cast by recorded casts
  // (PyTorch's autocast) is the peer.
  const Device cu(kCUDA);
  Generator g(23);
  auto bf = [](const Tensor& t) { return t.defined() ? t.to(kBFloat16) : t; };
  struct Case {
    const char* name;
    std::vector<int64_t> x, w;
    bool bias;
    std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)> op;
  };
  const std::vector<Case> cases{
      {"conv2d",
       {2, 16, 9, 9},
       {24, 16, 3, 3},
       true,
       [](const Tensor& x, const Tensor& w, const Tensor& b) { return conv2d(x, w, b, 2, 1); }},
      {"conv2d_relu",
       {2, 8, 7, 7},
       {16, 8, 3, 3},
       true,
       [](const Tensor& x, const Tensor& w, const Tensor& b) {
         return conv2d_relu(x, w, b, 1, 1);
       }},
      {"conv2d 1x1 no bias",
       {2, 24, 8, 8},
       {16, 24, 1, 1},
       false,
       [](const Tensor& x, const Tensor& w, const Tensor& b) { return conv2d(x, w, b, 2); }},
      {"conv1d",
       {2, 16, 33},
       {8, 16, 5},
       true,
       [](const Tensor& x, const Tensor& w, const Tensor& b) { return conv1d(x, w, b, 1, 2); }},
      {"conv_transpose2d",
       {2, 16, 7, 7},
       {16, 8, 4, 4},
       true,
       [](const Tensor& x, const Tensor& w, const Tensor& b) {
         return conv_transpose2d(x, w, b, 2, 1);
       }},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const Tensor x = randn(c.x, g).to(cu).requires_grad_();
    const Tensor w = (randn(c.w, g) * 0.2).to(cu).requires_grad_();
    const int64_t out_ch = c.name == std::string("conv_transpose2d") ? c.w[1] : c.w[0];
    const Tensor b = c.bias ? randn({out_ch}, g).to(cu).requires_grad_() : Tensor();
    std::vector<Tensor> params{x, w};
    if (c.bias) params.push_back(b);
    Tensor out, ref_out;
    const ember_emu::Counts c0 = ember_emu::counts();
    {
      auto amp = ember::autocast(kBFloat16, kCUDA);
      out = c.op(x, w, b);
    }
    const ember_emu::Counts c1 = ember_emu::counts();
    ref_out = c.op(bf(x), bf(w), bf(b));
    const ember_emu::Counts c2 = ember_emu::counts();
    REQUIRE(out.dtype() == kBFloat16);
    CHECK(test::bitwise_equal(out.cpu(), ref_out.cpu()));
    const Tensor dy = randn(out.sizes(), g).to(kBFloat16).to(cu);
    const ember_emu::Counts c2b = ember_emu::counts();
    const std::vector<Tensor> ours = autograd::grad({out}, params, {dy});
    const ember_emu::Counts c3 = ember_emu::counts();
    const std::vector<Tensor> recorded = autograd::grad({ref_out}, params, {dy});
    const ember_emu::Counts c4 = ember_emu::counts();
    UNSCOPED_INFO("launches forward / backward: autocast "
                  << c1.launches - c0.launches << " / " << c3.launches - c2b.launches
                  << ", recorded casts " << c2.launches - c1.launches << " / "
                  << c4.launches - c3.launches);
    CHECK(c2.host_waits == c0.host_waits);
    CHECK(c4.host_waits == c2b.host_waits);
    for (size_t i = 0; i < params.size(); ++i) {
      INFO("gradient " << i);
      REQUIRE(ours[i].dtype() == kFloat32);
      CHECK(test::agree(ours[i].cpu(), recorded[i].cpu(), 3e-2));
    }
    CHECK(test::bitwise_equal(ours[0].cpu(), recorded[0].cpu()));  // dX: the same kernel
    // dW and db against float64 of the same bf16 operands.
    const Tensor x64 = bf(x.detach()).cpu().to(kFloat64);
    const Tensor w64 = bf(w.detach()).cpu().to(kFloat64).requires_grad_();
    const Tensor b64 = c.bias ? bf(b.detach()).cpu().to(kFloat64).requires_grad_() : Tensor();
    std::vector<Tensor> ref_params{w64};
    if (c.bias) ref_params.push_back(b64);
    const std::vector<Tensor> ref =
        autograd::grad({c.op(x64, w64, b64)}, ref_params, {dy.cpu().to(kFloat64)});
    CHECK(test::rel_err(ours[1].cpu(), ref[0]) < 1e-6);
    CHECK(test::rel_err(recorded[1].cpu(), ref[0]) > 1e-4);  // rounded to bf16 on the way
    if (c.bias) CHECK(test::rel_err(ours[2].cpu(), ref[1]) < 1e-6);
    // Forward: the same casts, without a record; backward: the gradients' casts back to float32
    // are gone.
    CHECK(c1.launches - c0.launches == c2.launches - c1.launches);
    CHECK(c3.launches - c2b.launches + (c.bias ? 2 : 1) == c4.launches - c3.launches);
  }
  // create_graph: the weight and bias cast without a record, so the node differentiates the op on
  // recorded casts: first order bitwise the recorded-cast op's, the second reaching the float32
  // parameters.
  const Tensor x = randn({2, 8, 7, 7}, g).to(cu).requires_grad_();
  const Tensor w = (randn({8, 8, 3, 3}, g) * 0.2).to(cu).requires_grad_();
  const Tensor b = randn({8}, g).to(cu).requires_grad_();
  auto loss_of = [&](bool autocast_scope, std::vector<Tensor>* first) {
    Tensor y;
    if (autocast_scope) {
      auto amp = ember::autocast(kBFloat16, kCUDA);
      y = conv2d_relu(x, w, b, 1, 1);
    } else {
      y = conv2d_relu(bf(x), bf(w), bf(b), 1, 1);
    }
    *first = autograd::grad({(y.to(kFloat32) * y.to(kFloat32)).sum() * 0.5}, {x, w, b}, {},
                            std::nullopt, true);
    return ((*first)[0] * (*first)[0]).sum() + (*first)[1].sum() * (*first)[2].sum();
  };
  std::vector<Tensor> g1, g2;
  const Tensor l1 = loss_of(true, &g1), l2 = loss_of(false, &g2);
  for (size_t i = 0; i < 3; ++i) CHECK(test::bitwise_equal(g1[i].cpu(), g2[i].cpu()));
  const std::vector<Tensor> h1 = autograd::grad({l1}, {x, w, b});
  const std::vector<Tensor> h2 = autograd::grad({l2}, {x, w, b});
  for (size_t i = 0; i < 3; ++i) {
    INFO("second order " << i);
    REQUIRE(h1[i].defined());
    CHECK(test::agree(h1[i].cpu(), h2[i].cpu(), 1e-2));
  }
}
#endif
