// The DCGAN of the GAN trainer (Radford et al. 2016, sized for 28x28 Fashion-MNIST), shared with
// the whole-step benchmark (benchmarks/bench_step.cpp).
//
//   generator:     z (N, 100, 1, 1) -> ConvTranspose 7x7 (N, 256, 7, 7) -> BN, ReLU
//                  -> ConvTranspose 4/2/1 (N, 128, 14, 14) -> BN, ReLU
//                  -> ConvTranspose 4/2/1 (N, 1, 28, 28) -> Tanh
//   discriminator: x (N, 1, 28, 28) -> Conv 4/2/1 (N, 64, 14, 14) -> LeakyReLU(0.2)
//                  -> Conv 4/2/1 (N, 128, 7, 7) [-> BN] -> LeakyReLU(0.2) -> Flatten -> Linear (N, 1)
#pragma once

#include <cstdint>

#include "ember/nn.hpp"

namespace ember_examples::gan {

constexpr int64_t kNoise = 100;  // the generator's input size

ember::nn::Sequential make_generator();
/// batch_norm false gives the WGAN-GP critic (the gradient penalty is per sample, so no BN).
ember::nn::Sequential make_discriminator(bool batch_norm);
/// DCGAN's init: conv and linear weights N(0, 0.02), batch-norm weights N(1, 0.02), biases 0.
void dcgan_init(ember::nn::Module& m);

}  // namespace ember_examples::gan
