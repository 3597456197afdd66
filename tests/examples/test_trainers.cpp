// The example trainers as a user runs them, on tiny configurations over generated data: the loss
// falls, two runs with one seed are bitwise identical, and a run interrupted at a step and
// resumed ends exactly where the uninterrupted run ends.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <map>

#include <stb/stb_image.h>

#include "data/data_test_util.hpp"
#include "ember/ember.hpp"

using namespace ember;
using namespace ember::test;

namespace {

int run(const std::string& cmd) {
  const int rc = std::system((cmd + " > /dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// One column of metrics.csv by step, as the text written (bitwise comparison).
std::map<int64_t, std::string> losses(const std::string& out, const std::string& tag = "train/loss") {
  std::ifstream in(out + "/metrics.csv");
  std::map<int64_t, std::string> m;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    const size_t a = line.find(','), b = line.find(',', a + 1);
    if (line.substr(a + 1, b - a - 1) == tag) m[std::stoll(line.substr(0, a))] = line.substr(b + 1);
  }
  return m;
}

void require_same_weights(const std::string& a, const std::string& b) {
  Checkpoint x = load_checkpoint(a), y = load_checkpoint(b);
  REQUIRE(x.step == y.step);
  REQUIRE(x.model.size() == y.model.size());
  for (const auto& [name, t] : x.model) {
    const Tensor& u = y.model.at(name);
    REQUIRE(t.sizes() == u.sizes());
    REQUIRE(std::memcmp(t.contiguous().data_ptr(), u.contiguous().data_ptr(),
                        static_cast<size_t>(t.numel()) * t.element_size()) == 0);
  }
}

}  // namespace

TEST_CASE("ember-train-resnet: learns, is deterministic, resumes exactly", "[examples]") {
  TempDir tmp;
  const std::string data = tmp.file("fmnist");
  write_fake_mnist(data, 384, 1, true, true);
  write_fake_mnist(data, 96, 2, true, false);
  const std::string base = std::string(EMBER_TRAIN_RESNET) + " --data " + data +
                           " --model resnet20 --steps 24 --batch-size 16 --lr 0.05 --workers 2"
                           " --threads 2 --log-every 1 --seed 3 --eval-every 1";
  REQUIRE(run(base + " --out " + tmp.file("a")) == 0);
  REQUIRE(run(base + " --out " + tmp.file("b")) == 0);
  std::map<int64_t, std::string> la = losses(tmp.file("a")), lb = losses(tmp.file("b"));
  REQUIRE(la.size() == 24);
  REQUIRE(la == lb);
  require_same_weights(tmp.file("a") + "/last.ckpt", tmp.file("b") + "/last.ckpt");

  // The loss falls: the mean of the last 6 steps is well below that of the first 6.
  double first = 0, last = 0;
  for (int64_t s = 1; s <= 6; ++s) first += std::stod(la[s]) / 6;
  for (int64_t s = 19; s <= 24; ++s) last += std::stod(la[s]) / 6;
  REQUIRE(last < 0.8 * first);

  // Interrupted after step 10 (mid-epoch: 24 batches per epoch) and resumed.
  REQUIRE(run(base + " --out " + tmp.file("c") + " --stop-at-step 10") == 130);
  REQUIRE(load_checkpoint(tmp.file("c") + "/last.ckpt").step == 10);
  REQUIRE(run(base + " --out " + tmp.file("c") + " --resume " + tmp.file("c") + "/last.ckpt") == 0);
  REQUIRE(losses(tmp.file("c")) == la);
  require_same_weights(tmp.file("a") + "/last.ckpt", tmp.file("c") + "/last.ckpt");

  // TensorBoard file in the output folder re-reads with the same scalars.
  std::string event_file;
  for (const auto& e : std::filesystem::directory_iterator(tmp.file("a") + "/tb"))
    event_file = e.path().string();
  int64_t n_loss = 0;
  for (const TensorBoardEvent& ev : read_tensorboard_events(event_file))
    for (const TensorBoardValue& v : ev.values) n_loss += v.tag == "train/loss";
  REQUIRE(n_loss == 24);

  // Bad arguments and missing data: a message and a non-zero exit, never a crash.
  REQUIRE(run(std::string(EMBER_TRAIN_RESNET) + " --data " + tmp.file("missing") + " --out " +
              tmp.file("d")) == 1);
  REQUIRE(run(std::string(EMBER_TRAIN_RESNET) + " --model resnet7 --data " + data) == 1);
  REQUIRE(run(std::string(EMBER_TRAIN_RESNET) + " --no-such-flag") != 0);
  REQUIRE(run(std::string(EMBER_TRAIN_RESNET) + " --help") == 0);
}

TEST_CASE("ember-train-gan: deterministic, resumes exactly, writes sample grids", "[examples]") {
  TempDir tmp;
  const std::string data = tmp.file("fmnist");
  write_fake_mnist(data, 192, 4, true, true);
  const std::string base = std::string(EMBER_TRAIN_GAN) + " --data " + data +
                           " --steps 12 --batch-size 16 --workers 2 --threads 2 --log-every 1"
                           " --seed 5";
  REQUIRE(run(base + " --out " + tmp.file("a")) == 0);
  REQUIRE(run(base + " --out " + tmp.file("b")) == 0);
  std::map<int64_t, std::string> da = losses(tmp.file("a"), "train/d_loss");
  REQUIRE(da.size() == 12);
  REQUIRE(da == losses(tmp.file("b"), "train/d_loss"));
  REQUIRE(losses(tmp.file("a"), "train/g_loss") == losses(tmp.file("b"), "train/g_loss"));
  for (const auto& [step, v] : da) REQUIRE(std::isfinite(std::stod(v)));
  require_same_weights(tmp.file("a") + "/last.ckpt", tmp.file("b") + "/last.ckpt");

  // The epoch (12 batches) ends with an 8x8 grid of 28x28 samples with 2-pixel padding.
  int w = 0, h = 0, c = 0;
  REQUIRE(stbi_info((tmp.file("a") + "/samples_epoch1.png").c_str(), &w, &h, &c) == 1);
  REQUIRE(w == 8 * 30 + 2);
  REQUIRE(h == 8 * 30 + 2);

  REQUIRE(run(base + " --out " + tmp.file("c") + " --stop-at-step 5") == 130);
  REQUIRE(run(base + " --out " + tmp.file("c") + " --resume " + tmp.file("c") + "/last.ckpt") == 0);
  REQUIRE(losses(tmp.file("c"), "train/d_loss") == da);
  require_same_weights(tmp.file("a") + "/last.ckpt", tmp.file("c") + "/last.ckpt");

  // WGAN-GP: the gradient penalty runs through double backward; the losses stay finite.
  REQUIRE(run(std::string(EMBER_TRAIN_GAN) + " --data " + data + " --loss wgan-gp --steps 4"
              " --batch-size 16 --log-every 1 --out " + tmp.file("w")) == 0);
  for (const auto& [step, v] : losses(tmp.file("w"), "train/d_loss")) REQUIRE(std::isfinite(std::stod(v)));
  REQUIRE(run(std::string(EMBER_TRAIN_GAN) + " --loss hinge --data " + data) == 1);
}
