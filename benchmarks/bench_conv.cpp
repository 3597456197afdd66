// conv2d forward, and forward + backward (input and weight gradients), on the layer shapes of
// ResNet-20 (28x28 Fashion-MNIST, batch 128, as the trainer runs it) and ResNet-18 (224x224
// ImageNet layers, batch 32) and the GAN trainer's DCGAN (batch 128: the discriminator's 4x4
// stride-2 convolutions and the generator's transposed convolutions), beside libtorch's conv2d /
// conv_transpose2d (oneDNN inside) when libtorch is present.
//
// Names: conv2d_<pass>/<model>_<layer>/n<N>c<C>k<K>h<H>r<R>s<stride>/t<threads>/<impl>, pass
// "fwd" or "fwdbwd" (conv_transpose2d_<pass> for the transposed ones: C in, K out, H the input
// size). FLOP/s counts 2*N*K*C*R*R*P*Q per pass (P, Q the output size of the convolution; for a
// transposed one, its input size), three passes for fwdbwd. No bias (ResNets and DCGAN put batch
// norm after the convolutions).
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "ember/ember.hpp"

namespace {

using ember::bench::ThreadScope;

template <class F>
void add(const std::string& name, F f) {
  ember::bench::add_case(name, f, benchmark::kMillisecond, 0.2);
}

using namespace ember;

struct ConvShape {
  const char* name;  // model_layer
  int64_t N, C, K, H, R, stride;
  int64_t padding = -1;     // -1: R / 2
  bool transposed = false;  // conv_transpose2d: C -> K channels, H the input size
  int64_t pad() const { return padding < 0 ? R / 2 : padding; }
  int64_t out() const {
    return transposed ? (H - 1) * stride - 2 * pad() + R : (H + 2 * pad() - R) / stride + 1;
  }
  /// The spatial size of the convolution's output (for a transposed one: of its input).
  int64_t conv_out() const { return transposed ? H : out(); }
  double flops() const {
    return 2.0 * static_cast<double>(N * K * C * R * R) *
           static_cast<double>(conv_out() * conv_out());
  }
  std::string id() const {
    return std::string(name) + "/n" + std::to_string(N) + "c" + std::to_string(C) + "k" +
           std::to_string(K) + "h" + std::to_string(H) + "r" + std::to_string(R) + "s" +
           std::to_string(stride);
  }
};


void bm_ember(benchmark::State& state, ConvShape c, bool backward, int threads) {
  ThreadScope ts(threads);
  Generator gen(3);
  Tensor x = randn({c.N, c.C, c.H, c.H}, gen);
  Tensor w = (c.transposed ? randn({c.C, c.K, c.R, c.R}, gen) : randn({c.K, c.C, c.R, c.R}, gen)) *
             0.1;
  w.requires_grad_(backward);
  if (backward) x.requires_grad_(true);
  Tensor dy = randn({c.N, c.K, c.out(), c.out()}, gen);
  auto run = [&] {
    return c.transposed ? conv_transpose2d(x, w, {}, {c.stride}, {c.pad()})
                        : conv2d(x, w, {}, {c.stride}, {c.pad()});
  };
  for (auto _ : state) {
    if (backward) {
      run().backward(dy);
      x.mutable_grad() = Tensor();  // each iteration computes fresh gradients, as a training step does
      w.mutable_grad() = Tensor();
    } else {
      NoGradGuard no_grad;
      Tensor y = run();
      benchmark::DoNotOptimize(y.data_ptr<float>());
    }
  }
  bench::set_flops(state, c.flops() * (backward ? 3 : 1));
}

#ifdef EMBER_BENCH_TORCH
void bm_torch(benchmark::State& state, ConvShape c, bool backward, int threads) {
  ThreadScope ts(threads);
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({c.N, c.C, c.H, c.H});
  torch::Tensor w = (c.transposed ? torch::randn({c.C, c.K, c.R, c.R})
                                  : torch::randn({c.K, c.C, c.R, c.R})) *
                    0.1;
  w.requires_grad_(backward);
  if (backward) x.requires_grad_(true);
  torch::Tensor dy = torch::randn({c.N, c.K, c.out(), c.out()});
  auto run = [&] {
    return c.transposed ? torch::conv_transpose2d(x, w, {}, c.stride, c.pad())
                        : torch::conv2d(x, w, {}, c.stride, c.pad());
  };
  for (auto _ : state) {
    if (backward) {
      run().backward(dy);
      x.mutable_grad().reset();
      w.mutable_grad().reset();
    } else {
      torch::NoGradGuard no_grad;
      torch::Tensor y = run();
      benchmark::DoNotOptimize(y.data_ptr<float>());
    }
  }
  bench::set_flops(state, c.flops() * (backward ? 3 : 1));
}
#endif

std::vector<ConvShape> shapes() {
  if (bench::quick_mode()) return {{"quick_3x3", 2, 3, 4, 9, 3, 1}, {"quick_1x1", 2, 4, 6, 8, 1, 2},
                                       {"quick_t4x4", 2, 3, 5, 4, 4, 2, 1, true}};
  return {
      // ResNet-20 on 28x28 (the trainer: batch 128).
      {"resnet20_stem", 128, 1, 16, 28, 3, 1},
      {"resnet20_layer1", 128, 16, 16, 28, 3, 1},
      {"resnet20_layer2_down", 128, 16, 32, 28, 3, 2},
      {"resnet20_layer2", 128, 32, 32, 14, 3, 1},
      {"resnet20_layer2_proj", 128, 16, 32, 28, 1, 2},
      {"resnet20_layer3_down", 128, 32, 64, 14, 3, 2},
      {"resnet20_layer3", 128, 64, 64, 7, 3, 1},
      // ResNet-18 on 224x224 (batch 32): the 3x3 convs of each stage.
      {"resnet18_layer1", 32, 64, 64, 56, 3, 1},
      {"resnet18_layer2", 32, 128, 128, 28, 3, 1},
      {"resnet18_layer3", 32, 256, 256, 14, 3, 1},
      {"resnet18_layer4", 32, 512, 512, 7, 3, 1},
      // DCGAN (examples/gan, batch 128): discriminator and generator layers.
      {"dcgan_d1", 128, 1, 64, 28, 4, 2, 1},
      {"dcgan_d2", 128, 64, 128, 14, 4, 2, 1},
      {"dcgan_g1", 128, 100, 256, 1, 7, 1, 0, true},
      {"dcgan_g2", 128, 256, 128, 7, 4, 2, 1, true},
      {"dcgan_g3", 128, 128, 1, 14, 4, 2, 1, true},
  };
}

void register_all() {
  for (int t = 1; t <= 2; ++t) {
    for (const ConvShape& c : shapes()) {
      for (bool backward : {false, true}) {
        const std::string base = std::string(c.transposed ? "conv_transpose2d_" : "conv2d_") +
                                 (backward ? "fwdbwd/" : "fwd/") +
                                 c.id() + "/t" + std::to_string(t) + "/";
        add(base + "ember", [=](benchmark::State& s) { bm_ember(s, c, backward, t); });
#ifdef EMBER_BENCH_TORCH
        add(base + "libtorch", [=](benchmark::State& s) { bm_torch(s, c, backward, t); });
#endif
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  ember::bench::add_torch_context();
  register_all();
  return ember::bench::ratio_main(argc, argv);
}
