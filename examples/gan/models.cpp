// The DCGAN generator and discriminator (models.hpp).
#include "gan/models.hpp"

#include <string>

namespace ember_examples::gan {

namespace nn = ember::nn;
using ember::Tensor;

nn::Sequential make_generator() {
  return nn::Sequential(
      nn::ConvTranspose2d(nn::ConvTranspose2dOptions(kNoise, 256, 7).bias(false)),  // 7x7
      nn::BatchNorm2d(256), nn::ReLU(),
      nn::ConvTranspose2d(nn::ConvTranspose2dOptions(256, 128, 4).stride(2).padding(1).bias(false)),
      nn::BatchNorm2d(128), nn::ReLU(),                                                 // 14x14
      nn::ConvTranspose2d(nn::ConvTranspose2dOptions(128, 1, 4).stride(2).padding(1)),  // 28x28
      nn::Tanh());
}

nn::Sequential make_discriminator(bool batch_norm) {
  nn::Sequential d(nn::Conv2d(nn::Conv2dOptions(1, 64, 4).stride(2).padding(1)),  // 14x14
                   nn::LeakyReLU(0.2),
                   nn::Conv2d(nn::Conv2dOptions(64, 128, 4).stride(2).padding(1)));  // 7x7
  if (batch_norm) d->push_back(nn::BatchNorm2d(128));
  d->push_back(nn::LeakyReLU(0.2));
  d->push_back(nn::Flatten());
  d->push_back(nn::Linear(128 * 7 * 7, 1));
  return d;
}

void dcgan_init(nn::Module& m) {
  ember::NoGradGuard no_grad;
  for (const auto& [name, value] : m.named_parameters()) {
    Tensor p = value;  // a handle to the parameter itself
    const bool bn = name.find("weight") != std::string::npos && p.dim() == 1;
    if (bn) {
      nn::init::normal_(p, 1.0, 0.02);
    } else if (name.find("weight") != std::string::npos) {
      nn::init::normal_(p, 0.0, 0.02);
    } else {
      nn::init::zeros_(p);
    }
  }
}

}  // namespace ember_examples::gan
