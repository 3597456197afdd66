// The example trainers as a user runs them, on tiny configurations over generated data: the loss
// falls, two runs with one seed are bitwise identical, and a run interrupted at a step and
// resumed ends exactly where the uninterrupted run ends.
#include <stb/stb_image.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <map>

#include "data/data_test_util.hpp"
#include "ember/ember.hpp"

using namespace ember;
using namespace ember::test;

namespace {

// The exit status of cmd, its stdout going to `stdout_file`.
int run(const std::string& cmd, const std::string& stdout_file = "/dev/null") {
  const int rc = std::system((cmd + " > " + stdout_file + " 2>/dev/null").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// One column of metrics.csv by step, as the text written (bitwise comparison).
std::map<int64_t, std::string> losses(const std::string& out,
                                      const std::string& tag = "train/loss") {
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
  REQUIRE(run(std::string(EMBER_TRAIN_GAN) + " --data " + data +
              " --loss wgan-gp --steps 4"
              " --batch-size 16 --log-every 1 --out " +
              tmp.file("w")) == 0);
  for (const auto& [step, v] : losses(tmp.file("w"), "train/d_loss"))
    REQUIRE(std::isfinite(std::stod(v)));
  REQUIRE(run(std::string(EMBER_TRAIN_GAN) + " --loss hinge --data " + data) == 1);

  // The quality score: a ResNet-20 checkpoint of ember-train-resnet gives the features; each
  // epoch logs the Fréchet distance, and the floor (train vs test images) is printed.
  write_fake_mnist(data, 64, 6, true, false);
  REQUIRE(run(std::string(EMBER_TRAIN_RESNET) + " --data " + data +
              " --steps 2 --batch-size 16"
              " --limit-test 32 --out " +
              tmp.file("r")) == 0);
  const std::string log = tmp.file("fid.log");
  REQUIRE(run(base + " --out " + tmp.file("q") + " --fid-classifier " + tmp.file("r") +
                  "/last.ckpt --fid-samples 40",
              log) == 0);
  std::map<int64_t, std::string> score = losses(tmp.file("q"), "quality/fid");
  REQUIRE(score.size() == 1);
  REQUIRE(std::stod(score.begin()->second) > 0);
  REQUIRE(data::read_text_file(log).find("(the floor)") != std::string::npos);
  // The GAN's own checkpoint is no classifier: an error naming the flag.
  REQUIRE(run(base + " --out " + tmp.file("q2") + " --fid-classifier " + tmp.file("a") +
              "/last.ckpt") == 1);
}

namespace {

// A small English corpus: verses recombined from a few phrases, about 24 KB.
std::string tiny_corpus() {
  const char* subjects[] = {"And God", "The LORD", "Moses", "the people", "his servant"};
  const char* verbs[] = {"said unto", "called", "blessed", "went before", "spake unto"};
  const char* objects[] = {"the children of Israel", "the waters", "the earth", "Abraham",
                           "all the congregation"};
  std::string text;
  uint32_t state = 12345;
  for (int verse = 1; verse <= 300; ++verse) {
    state = state * 1664525u + 1013904223u;
    text += "Ge1:" + std::to_string(verse) + " " + subjects[(state >> 8) % 5] + " " +
            verbs[(state >> 12) % 5] + " " + objects[(state >> 16) % 5] + ", and it was good.\n";
  }
  return text;
}

}  // namespace

TEST_CASE("ember-train-gpt: learns, is deterministic, resumes exactly, samples", "[examples]") {
  TempDir tmp;
  const std::string corpus = tmp.file("corpus.txt");
  data::write_text_file(corpus, tiny_corpus());
  const std::string base = std::string(EMBER_TRAIN_GPT) + " --data " + corpus +
                           " --config tiny --steps 24 --batch-size 8 --lr 3e-3 --warmup 2"
                           " --workers 2 --threads 2 --log-every 1 --eval-every 12"
                           " --eval-batches 2 --max-new-tokens 40 --seed 7";
  REQUIRE(run(base + " --out " + tmp.file("a")) == 0);
  REQUIRE(run(base + " --out " + tmp.file("b")) == 0);
  std::map<int64_t, std::string> la = losses(tmp.file("a"));
  REQUIRE(la.size() == 24);
  REQUIRE(la == losses(tmp.file("b")));
  REQUIRE(losses(tmp.file("a"), "val/loss").size() == 2);  // step 12 and the end
  REQUIRE(losses(tmp.file("a"), "val/loss") == losses(tmp.file("b"), "val/loss"));
  require_same_weights(tmp.file("a") + "/last.ckpt", tmp.file("b") + "/last.ckpt");
  double first = 0, last = 0;
  for (int64_t s = 1; s <= 6; ++s) first += std::stod(la[s]) / 6;
  for (int64_t s = 19; s <= 24; ++s) last += std::stod(la[s]) / 6;
  REQUIRE(last < 0.8 * first);
  const std::string sample = data::read_text_file(tmp.file("a") + "/sample.txt");
  REQUIRE(sample.size() == 41);  // the prompt "\n" and 40 characters
  REQUIRE(sample == data::read_text_file(tmp.file("b") + "/sample.txt"));

  // Interrupted after step 7 (dropout draws from the default generator, so the RNG must resume).
  REQUIRE(run(base + " --out " + tmp.file("c") + " --stop-at-step 7") == 130);
  REQUIRE(load_checkpoint(tmp.file("c") + "/last.ckpt").step == 7);
  REQUIRE(run(base + " --out " + tmp.file("c") + " --resume " + tmp.file("c") + "/last.ckpt") == 0);
  REQUIRE(losses(tmp.file("c")) == la);
  require_same_weights(tmp.file("a") + "/last.ckpt", tmp.file("c") + "/last.ckpt");

  // --sample continues a prompt from the checkpoint, with the tokenizer saved beside it.
  const std::string out = tmp.file("sample.txt");
  REQUIRE(run(std::string(EMBER_TRAIN_GPT) + " --sample --resume " + tmp.file("a") +
                  "/last.ckpt --prompt 'And God' --max-new-tokens 30 --top-k 5",
              out) == 0);
  const std::string generated = data::read_text_file(out);
  REQUIRE(generated.rfind("And God", 0) == 0);
  REQUIRE(generated.size() == 7 + 30 + 1);  // prompt, 30 characters, newline

  // The byte-level BPE tokenizer: trained on the train split, saved, used for bits per character.
  REQUIRE(run(std::string(EMBER_TRAIN_GPT) + " --data " + corpus +
              " --config tiny --steps 3"
              " --batch-size 4 --tokenizer bpe --vocab-size 300 --eval-batches 1 --out " +
              tmp.file("bpe")) == 0);
  REQUIRE(data::BPETokenizer::load(tmp.file("bpe") + "/tokenizer.json").vocab_size() == 300);
  REQUIRE(losses(tmp.file("bpe"), "val/bpc").size() == 1);

  // GPT-2 weights as Hugging Face ships them (tests/nn/golden/gpt2_tiny.safetensors: 300 tokens,
  // context 16, 2 layers of 32) generate text through --pretrained.
  const std::string hf = std::string(EMBER_SOURCE_DIR) + "/tests/nn/golden/gpt2_tiny.safetensors";
  REQUIRE(run(std::string(EMBER_TRAIN_GPT) + " --sample --pretrained " + hf +
                  " --config tiny --n-embd 32 --block-size 16 --dropout 0 --tokenizer-file " +
                  tmp.file("bpe") + "/tokenizer.json --prompt 'And God' --max-new-tokens 20",
              out) == 0);
  REQUIRE(data::read_text_file(out).rfind("And God", 0) == 0);
  REQUIRE(run(std::string(EMBER_TRAIN_GPT) + " --sample --pretrained " + hf +
              " --config tiny --tokenizer-file " + tmp.file("bpe") + "/tokenizer.json") == 1);

  // Errors: a message and a non-zero exit, never a crash.
  const std::string gpt = EMBER_TRAIN_GPT;
  REQUIRE(run(gpt + " --data " + tmp.file("missing.txt") + " --out " + tmp.file("d")) == 1);
  REQUIRE(run(gpt + " --data " + corpus + " --config gpt5 --out " + tmp.file("d")) == 1);
  REQUIRE(run(gpt + " --data " + corpus + " --config tiny --n-head 3 --out " + tmp.file("d")) == 1);
  REQUIRE(run(gpt + " --data " + corpus + " --tokenizer words --out " + tmp.file("d")) == 1);
  REQUIRE(run(gpt + " --sample --out " + tmp.file("d")) == 1);
  REQUIRE(run(gpt + " --no-such-flag") != 0);
  REQUIRE(run(gpt + " --help") == 0);
}
