// End to end: an MLP and a CNN written with ember::nn train on synthetic tasks with ember::optim
// (loss decreases, accuracy rises), and a run resumed from a checkpoint (model, optimizer,
// scheduler, RNG) continues bit-identically.
#include <filesystem>

#include "ember/io/checkpoint.hpp"
#include "ember/nn.hpp"
#include "ember/optim.hpp"
#include "test_util.hpp"

using namespace ember;
namespace F = ember::nn::functional;

namespace {

double accuracy(const Tensor& logits, const Tensor& target) {
  return eq(argmax(logits, 1), target).to(kFloat64).mean().item<double>();
}

/// (N, 1, 12, 12) images holding one vertical (class 0) or horizontal (class 1) bar at a random
/// position, plus noise.
std::pair<Tensor, Tensor> bars(int64_t n, Generator& gen) {
  Tensor labels = randint(0, 2, {n}, gen);
  Tensor pos = randint(1, 11, {n}, gen);
  Tensor images = randn({n, 1, 12, 12}, gen) * 0.3;
  NoGradGuard no_grad;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = pos[i].item<int64_t>();
    Tensor img = images[i][0];
    if (labels[i].item<int64_t>() == 0)
      img.select(1, p).add_(1.0);
    else
      img.select(0, p).add_(1.0);
  }
  return {images, labels};
}

struct SmallCnnImpl : nn::Module {
  SmallCnnImpl() {
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(1, 8, 3).padding(1).bias(false)));
    bn1 = register_module("bn1", nn::BatchNorm2d(8));
    conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(8, 16, 3).padding(1)));
    pool = register_module("pool", nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    gap = register_module("gap", nn::AdaptiveAvgPool2d(std::vector<int64_t>{1, 1}));
    fc = register_module("fc", nn::Linear(16, 2));
  }
  Tensor forward(const Tensor& x) {
    Tensor h = pool(relu(bn1(conv1(x))));  // (N, 8, 6, 6)
    h = gap(relu(conv2(h))).flatten(1);    // (N, 16)
    return fc(h);                          // (N, 2)
  }
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  nn::MaxPool2d pool{nullptr};
  nn::AdaptiveAvgPool2d gap{nullptr};
  nn::Linear fc{nullptr};
};
EMBER_MODULE(SmallCnn);

}  // namespace

TEST_CASE("training: an MLP classifier with AdamW and cross_entropy") {
  manual_seed(0);
  // Three Gaussian blobs in 2-D.
  Tensor centers = tensor({{2.0f, 0.0f}, {-1.0f, 1.7f}, {-1.0f, -1.7f}});
  Tensor y = randint(0, 3, {300});
  Tensor x = index_select(centers, 0, y) + randn({300, 2}) * 0.6;
  nn::Sequential mlp(nn::Linear(2, 16), nn::GELU(), nn::Linear(16, 3));
  optim::AdamW opt(mlp->parameters(), optim::AdamWOptions(0.05));
  const double first = F::cross_entropy(mlp(x), y).item<double>();
  double last = first;
  for (int step = 0; step < 60; ++step) {
    opt.zero_grad();
    Tensor loss = F::cross_entropy(mlp(x), y);
    loss.backward();
    opt.step();
    last = loss.item<double>();
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.3 * first);
  CHECK(accuracy(mlp(x), y) > 0.9);
}

TEST_CASE("training: a CNN (conv, batch norm, pooling) learns bar orientation") {
  manual_seed(1);
  Generator data(42);
  auto [test_x, test_y] = bars(128, data);
  SmallCnn net;
  optim::SGD opt(net->parameters(), optim::SGDOptions(0.05).momentum(0.9));
  nn::CrossEntropyLoss loss_fn;
  net->eval();
  const double first = loss_fn(net(test_x), test_y).item<double>();
  net->train();
  for (int step = 0; step < 40; ++step) {
    auto [xb, yb] = bars(32, data);
    opt.zero_grad();
    Tensor loss = loss_fn(net(xb), yb);
    loss.backward();
    opt.step();
  }
  net->eval();
  NoGradGuard no_grad;
  Tensor logits = net(test_x);
  const double last = loss_fn(logits, test_y).item<double>();
  INFO("held-out loss " << first << " -> " << last << ", accuracy " << accuracy(logits, test_y));
  CHECK(last < 0.5 * first);
  CHECK(accuracy(logits, test_y) > 0.9);
}

namespace {

/// A model with dropout (so the RNG matters), Adam with a cosine schedule; each step draws its
/// batch from the default generator.
struct Run {
  nn::Sequential model{nullptr};
  std::unique_ptr<optim::Adam> opt;
  std::unique_ptr<optim::CosineAnnealingLR> sched;
  explicit Run(uint64_t seed) {
    manual_seed(seed);
    model = nn::Sequential(nn::Linear(4, 16), nn::ReLU(), nn::Dropout(0.2), nn::Linear(16, 1));
    opt = std::make_unique<optim::Adam>(model->parameters(), optim::AdamOptions(0.01));
    sched = std::make_unique<optim::CosineAnnealingLR>(*opt, 10);
  }
  void step() {
    Tensor x = randn({8, 4});
    Tensor y = x.sum({1}, true).sin();
    opt->zero_grad();
    F::mse_loss(model(x), y).backward();
    opt->step();
    sched->step();
  }
};

}  // namespace

TEST_CASE("training: a run resumed from a checkpoint continues bit-identically") {
  const std::string path =
      (std::filesystem::temp_directory_path() / "ember_test_training_resume.safetensors").string();
  Run straight(7);
  for (int i = 0; i < 6; ++i) straight.step();

  Run first(7);
  for (int i = 0; i < 3; ++i) first.step();
  save_checkpoint(path, Checkpoint{first.model->state_dict(),
                                   first.opt->state_dict(),
                                   first.sched->state_dict(),
                                   3,
                                   {{"note", "half way"}}, {}});

  Run resumed(12345);  // different initial weights and RNG position
  Checkpoint c = load_checkpoint(path);
  CHECK(c.step == 3);
  CHECK(c.metadata.at("note") == "half way");
  resumed.model->load_state_dict(c.model);
  resumed.opt->load_state_dict(c.optimizer);
  resumed.sched->load_state_dict(c.scheduler);
  restore_rng(c);
  for (int i = 0; i < 3; ++i) resumed.step();

  StateDict a = straight.model->state_dict(), b = resumed.model->state_dict();
  REQUIRE(a.size() == b.size());
  for (const auto& [k, v] : a) {
    INFO(k);
    CHECK(test::bitwise_equal(v, b.at(k)));
  }
  CHECK(straight.sched->get_last_lr() == resumed.sched->get_last_lr());
  std::filesystem::remove(path);
}
