// Determinism (docs/reliability.md): with the same seed, the three example models (ResNet-20 in
// training mode, the DCGAN generator and discriminator, a tiny GPT) give bitwise-identical
// outputs, losses and parameter gradients with 1, 2, 3 and 4 threads, and on a repeated run.
// Needs examples/{resnet,gan,gpt} models and the include dir examples/ in the test target.
#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "ember/ember.hpp"
#include "ember/nn/functional/loss.hpp"
#include "gan/models.hpp"
#include "gpt/model.hpp"
#include "resnet/models.hpp"
#include "test_util.hpp"

using namespace ember;
namespace F = ember::nn::functional;

namespace {

/// The output, the loss and every parameter's gradient (name order) of one step, copied.
std::vector<Tensor> collect(const Tensor& out, const Tensor& loss, nn::Module& m) {
  std::vector<Tensor> r = {out.detach().clone(), loss.detach().clone()};
  for (const auto& [name, p] : m.named_parameters()) r.push_back(p.grad().clone());
  return r;
}

std::vector<Tensor> resnet_step() {
  manual_seed(11);
  auto net = ember_examples::resnet::make_model("resnet20", 10, 1);
  net->train();
  const Tensor x = randn({6, 1, 28, 28});
  const Tensor y = randint(0, 10, {6});
  const Tensor logits = net->forward(x);
  const Tensor loss = F::cross_entropy(logits, y);
  loss.backward();
  return collect(logits, loss, *net);
}

std::vector<Tensor> gan_step() {
  manual_seed(12);
  nn::Sequential g = ember_examples::gan::make_generator();
  nn::Sequential d = ember_examples::gan::make_discriminator(true);
  ember_examples::gan::dcgan_init(*g);
  ember_examples::gan::dcgan_init(*d);
  const Tensor z = randn({5, 100, 1, 1});
  const Tensor fake = g->forward(z);
  const Tensor score = d->forward(fake);
  const Tensor loss = F::binary_cross_entropy_with_logits(score, ones_like(score));
  loss.backward();
  std::vector<Tensor> r = collect(fake, loss, *g);
  for (const auto& [name, p] : d->named_parameters()) r.push_back(p.grad().clone());
  return r;
}

std::vector<Tensor> gpt_step() {
  manual_seed(13);
  ember_examples::gpt::GPT model(ember_examples::gpt::GPTConfig::preset("tiny", 50));
  model->train();
  const Tensor idx = randint(0, 50, {3, 16});
  const Tensor logits = model->forward(idx);
  const Tensor loss = ember_examples::gpt::lm_loss(logits, randint(0, 50, {3, 16}));
  loss.backward();
  return collect(logits, loss, *model);
}

}  // namespace

TEST_CASE("determinism: the three models repeat bitwise with 1, 2, 3 and 4 threads") {
  const int saved = get_num_threads();
  const std::vector<std::pair<std::string, std::function<std::vector<Tensor>()>>> models = {
      {"resnet20", resnet_step}, {"dcgan", gan_step}, {"gpt tiny", gpt_step}};
  for (const auto& [name, step] : models) {
    set_num_threads(1);
    const std::vector<Tensor> reference = step();
    REQUIRE(reference.size() > 2);
    for (int threads : {1, 2, 3, 4}) {
      set_num_threads(threads);
      const std::vector<Tensor> got = step();
      REQUIRE(got.size() == reference.size());
      for (size_t i = 0; i < got.size(); ++i) {
        INFO(name << ", " << threads << " threads, tensor " << i
                  << (i == 0 ? " (output)" : i == 1 ? " (loss)" : " (a gradient)"));
        CHECK(test::bitwise_equal(got[i], reference[i]));
      }
    }
  }
  set_num_threads(saved);
}
