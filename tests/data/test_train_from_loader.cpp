// End to end: generated MNIST-format IDX files (.gz) -> MNIST dataset -> transforms ->
// DataLoader with workers -> a small CNN trained with SGD for a few steps. The generated images
// carry their class as a bright bar at a class-dependent row, so a working pipeline learns it.
#include <catch2/catch.hpp>

#include "data/data_test_util.hpp"
#include "ember/data.hpp"
#include "ember/ember.hpp"

using namespace ember;
using namespace ember::test;
namespace T = ember::data::transforms;

TEST_CASE("DataLoader: a small CNN trains from generated IDX files", "[data]") {
  TempDir tmp;
  const std::string root = tmp.path.string();
  write_fake_mnist(root, 512, 1, /*gzip=*/true, /*train=*/true);
  write_fake_mnist(root, 256, 2, /*gzip=*/true, /*train=*/false);

  auto train = std::make_shared<data::MNIST>(
      root, true,
      T::Compose({T::RandomHorizontalFlip(0.5), T::ToTensor(), T::Normalize({0.2}, {0.3})}));
  auto test = std::make_shared<data::MNIST>(root, false,
                                            T::Compose({T::ToTensor(), T::Normalize({0.2}, {0.3})}));
  REQUIRE(train->size() == 512);
  REQUIRE(test->size() == 256);

  manual_seed(0);
  nn::Sequential model(nn::Conv2d(nn::Conv2dOptions(1, 8, 3).stride(2).padding(1)), nn::ReLU(),
                       nn::Flatten(), nn::Linear(8 * 14 * 14, 10));
  optim::SGD opt(model->parameters(), optim::SGDOptions(0.05).momentum(0.9));

  data::DataLoader loader(train, data::DataLoaderOptions(32).shuffle(true).num_workers(2).seed(7));
  std::vector<double> losses;
  for (int epoch = 0; epoch < 2; ++epoch) {
    for (data::Example& batch : loader) {
      REQUIRE(batch.data.sizes() == IntArrayRef({batch.data.size(0), 1, 28, 28}));
      REQUIRE(batch.target.dtype() == kInt64);
      opt.zero_grad();
      Tensor loss = nn::functional::cross_entropy(model->forward(batch.data), batch.target);
      loss.backward();
      opt.step();
      losses.push_back(loss.item<double>());
    }
  }
  REQUIRE(losses.size() == 32);  // 2 epochs x 16 batches
  REQUIRE(losses.front() > 1.8);  // about ln(10) at the start
  double last = 0;
  for (size_t i = losses.size() - 4; i < losses.size(); ++i) last += losses[i] / 4;
  REQUIRE(last < 0.5 * losses.front());

  // Held-out accuracy through a loader without shuffle.
  NoGradGuard no_grad;
  model->eval();
  int64_t correct = 0;
  for (data::Example& batch : data::DataLoader(test, data::DataLoaderOptions(64))) {
    Tensor pred = model->forward(batch.data).argmax(1);
    correct += pred.eq(batch.target).sum().item<int64_t>();
  }
  REQUIRE(static_cast<double>(correct) / 256.0 > 0.8);
}
