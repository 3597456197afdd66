// The example trainers as a user runs them, on tiny configurations over generated data: the loss
// falls, two runs with one seed are bitwise identical, and a run interrupted at several steps
// (mid-epoch, at an epoch boundary, repeatedly) and resumed ends exactly where the uninterrupted
// run ends: weights, optimizer and scheduler state, generator states and every logged value.
#include <stb/stb_image.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <map>

#include "data/data_test_util.hpp"
#include "ember/ember.hpp"
#include "examples/trainer_test_util.hpp"

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
  std::map<int64_t, std::string> m;
  for (const auto& [key, value] : metric_rows(out))
    if (key.second == tag) m[key.first] = value;
  return m;
}

// Runs `base` into `out` stopped after each step of `stops` in turn (--stop-at-step: as if Ctrl-C
// came then), each run resuming from the previous one's checkpoint, then to the end. Each stop
// leaves a checkpoint of its step and the reference's log up to it; the finished run equals the
// uninterrupted run in `ref`: checkpoint (see require_same_checkpoint) and every logged value.
void require_exact_resume(const std::string& base, const std::string& ref, const std::string& out,
                          const std::vector<int64_t>& stops) {
  std::string resume;
  for (int64_t s : stops) {
    INFO(out << ": stopped after step " << s);
    REQUIRE(run(base + " --out " + out + resume + " --stop-at-step " + std::to_string(s)) == 130);
    REQUIRE(load_checkpoint(out + "/last.ckpt").step == s);
    require_same_rows(metric_rows(out), metric_rows(ref, s));
    resume = " --resume " + out + "/last.ckpt";
  }
  INFO(out << ": resumed after the last stop");
  REQUIRE(run(base + " --out " + out + resume) == 0);
  require_same_rows(metric_rows(out), metric_rows(ref));
  require_same_checkpoint(ref + "/last.ckpt", out + "/last.ckpt");
}

}  // namespace

TEST_CASE("ember-train-resnet: learns, is deterministic, resumes exactly", "[examples]") {
  TempDir tmp;
  const std::string data = tmp.file("fmnist");
  write_fake_mnist(data, 384, 1, true, true);
  write_fake_mnist(data, 96, 2, true, false);
  // 192 training images in batches of 16: 12 steps per epoch, 24 steps = 2 epochs, each ending
  // with a test evaluation (logged at steps 12 and 24).
  const std::string base = std::string(EMBER_TRAIN_RESNET) + " --data " + data +
                           " --model resnet20 --steps 24 --batch-size 16 --lr 0.05 --workers 2"
                           " --threads 2 --log-every 1 --seed 3 --eval-every 1 --limit-train 192";
  REQUIRE(run(base + " --out " + tmp.file("a")) == 0);
  REQUIRE(run(base + " --out " + tmp.file("b")) == 0);
  std::map<int64_t, std::string> la = losses(tmp.file("a"));
  REQUIRE(la.size() == 24);
  require_same_rows(metric_rows(tmp.file("b")), metric_rows(tmp.file("a")));
  require_same_checkpoint(tmp.file("a") + "/last.ckpt", tmp.file("b") + "/last.ckpt");
  REQUIRE(losses(tmp.file("a"), "test/accuracy").size() == 2);

  // The loss falls: the mean of the last 6 steps is well below that of the first 6.
  double first = 0, last = 0;
  for (int64_t s = 1; s <= 6; ++s) first += std::stod(la[s]) / 6;
  for (int64_t s = 19; s <= 24; ++s) last += std::stod(la[s]) / 6;
  REQUIRE(last < 0.8 * first);

  // Interrupted and resumed four times: mid-epoch, at the epoch boundary (after the evaluation of
  // step 12), mid-epoch again and after the last step.
  require_exact_resume(base, tmp.file("a"), tmp.file("c"), {5, 12, 19, 24});

  // --channels-last (weights, images and activations NHWC in memory): the same run, every logged
  // value and the checkpoint bit for bit.
  REQUIRE(run(base + " --channels-last --out " + tmp.file("e")) == 0);
  require_same_rows(metric_rows(tmp.file("e")), metric_rows(tmp.file("a")));
  require_same_checkpoint(tmp.file("a") + "/last.ckpt", tmp.file("e") + "/last.ckpt");

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
  // 96 images in batches of 16: 6 steps per epoch, 12 steps = 2 epochs, each ending with a grid.
  const std::string base = std::string(EMBER_TRAIN_GAN) + " --data " + data +
                           " --steps 12 --batch-size 16 --workers 2 --threads 2 --log-every 1"
                           " --seed 5 --limit-train 96";
  REQUIRE(run(base + " --out " + tmp.file("a")) == 0);
  REQUIRE(run(base + " --out " + tmp.file("b")) == 0);
  std::map<int64_t, std::string> da = losses(tmp.file("a"), "train/d_loss");
  REQUIRE(da.size() == 12);
  REQUIRE(losses(tmp.file("a"), "train/g_loss").size() == 12);
  require_same_rows(metric_rows(tmp.file("b")), metric_rows(tmp.file("a")));
  for (const auto& [step, v] : da) REQUIRE(std::isfinite(std::stod(v)));
  require_same_checkpoint(tmp.file("a") + "/last.ckpt", tmp.file("b") + "/last.ckpt");

  // Each epoch ends with an 8x8 grid of 28x28 samples with 2-pixel padding.
  for (const char* png : {"/samples_epoch1.png", "/samples_epoch2.png"}) {
    int w = 0, h = 0, c = 0;
    REQUIRE(stbi_info((tmp.file("a") + png).c_str(), &w, &h, &c) == 1);
    REQUIRE(w == 8 * 30 + 2);
    REQUIRE(h == 8 * 30 + 2);
  }

  // Interrupted and resumed three times: mid-epoch, at the epoch boundary (whose grid must be
  // written before the stop: the resumed run starts epoch 2) and mid-epoch again.
  require_exact_resume(base, tmp.file("a"), tmp.file("c"), {3, 6, 9});
  for (const char* png : {"/samples_epoch1.png", "/samples_epoch2.png"}) {
    INFO("c" << png);
    REQUIRE(std::filesystem::exists(tmp.file("c") + png));
    REQUIRE(read_bytes(tmp.file("c") + png) == read_bytes(tmp.file("a") + png));
  }

  // WGAN-GP: the gradient penalty runs through double backward; the losses stay finite. The
  // generator trains every 5th step and the steps between log its running average, which a
  // resumed run (stopped after step 3) must carry over.
  const std::string wgan = std::string(EMBER_TRAIN_GAN) + " --data " + data +
                           " --loss wgan-gp --steps 6 --batch-size 16 --workers 2 --threads 2"
                           " --log-every 1 --seed 5 --limit-train 96";
  REQUIRE(run(wgan + " --out " + tmp.file("w")) == 0);
  REQUIRE(losses(tmp.file("w"), "train/d_loss").size() == 6);
  for (const auto& [key, v] : metric_rows(tmp.file("w")))
    if (!is_timing_tag(key.second)) REQUIRE(std::isfinite(std::stod(v)));
  require_exact_resume(wgan, tmp.file("w"), tmp.file("w2"), {3});
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
  REQUIRE(score.size() == 2);  // steps 6 and 12
  for (const auto& [step, v] : score) REQUIRE(std::stod(v) > 0);
  REQUIRE(data::read_text_file(log).find("(the floor)") != std::string::npos);
  // The GAN's own checkpoint is no classifier: an error naming the flag.
  REQUIRE(run(base + " --out " + tmp.file("q2") + " --fid-classifier " + tmp.file("a") +
              "/last.ckpt") == 1);
}

TEST_CASE("ember-train-gpt: learns, is deterministic, resumes exactly, samples", "[examples]") {
  TempDir tmp;
  const std::string corpus = tmp.file("corpus.txt");
  data::write_text_file(corpus, tiny_corpus());
  // 80 training contexts in batches of 8: 10 steps per epoch; 24 steps over 3 epochs, the
  // validation loss at step 12 and at the end.
  const std::string flags = std::string(EMBER_TRAIN_GPT) + " --data " + corpus +
                            " --config tiny --batch-size 8 --lr 3e-3 --warmup 2 --workers 2"
                            " --threads 2 --eval-every 12 --eval-batches 2 --max-new-tokens 40"
                            " --seed 7 --limit-train 80 --epochs 3";
  const std::string base = flags + " --steps 24 --log-every 1";
  REQUIRE(run(base + " --out " + tmp.file("a")) == 0);
  REQUIRE(run(base + " --out " + tmp.file("b")) == 0);
  std::map<int64_t, std::string> la = losses(tmp.file("a"));
  REQUIRE(la.size() == 24);
  require_same_rows(metric_rows(tmp.file("b")), metric_rows(tmp.file("a")));
  REQUIRE(losses(tmp.file("a"), "val/loss").size() == 2);  // step 12 and the end
  require_same_checkpoint(tmp.file("a") + "/last.ckpt", tmp.file("b") + "/last.ckpt");
  double first = 0, last = 0;
  for (int64_t s = 1; s <= 6; ++s) first += std::stod(la[s]) / 6;
  for (int64_t s = 19; s <= 24; ++s) last += std::stod(la[s]) / 6;
  REQUIRE(last < 0.8 * first);
  const std::string sample = data::read_text_file(tmp.file("a") + "/sample.txt");
  REQUIRE(sample.size() == 41);  // the prompt "\n" and 40 characters
  REQUIRE(sample == data::read_text_file(tmp.file("b") + "/sample.txt"));

  // Interrupted and resumed three times (dropout draws from the default generator, so the RNG
  // must resume): mid-epoch, at the epoch boundary (step 10) and mid-epoch again after the
  // validation of step 12.
  require_exact_resume(base, tmp.file("a"), tmp.file("c"), {4, 10, 17});
  REQUIRE(data::read_text_file(tmp.file("c") + "/sample.txt") == sample);
  // Logged every 5 steps, train/loss is the mean over 5 steps; stopped after steps 7 and 12, the
  // resumed runs must carry the partial sums over.
  const std::string every5 = flags + " --steps 14 --log-every 5";
  REQUIRE(run(every5 + " --out " + tmp.file("l")) == 0);
  REQUIRE(losses(tmp.file("l")).size() == 2);  // steps 5 and 10
  require_exact_resume(every5, tmp.file("l"), tmp.file("l2"), {7, 12});

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

TEST_CASE("ember-train-gpt --amp: bf16 and fp16 learn as float32 does and resume exactly",
          "[examples]") {
  TempDir tmp;
  const std::string corpus = tmp.file("corpus.txt");
  data::write_text_file(corpus, tiny_corpus());
  const std::string flags = std::string(EMBER_TRAIN_GPT) + " --data " + corpus +
                            " --config tiny --batch-size 8 --lr 3e-3 --warmup 2 --workers 2"
                            " --threads 2 --eval-every 100 --eval-batches 2 --max-new-tokens 8"
                            " --seed 7 --limit-train 80 --epochs 2 --steps 16 --log-every 1";
  REQUIRE(run(flags + " --out " + tmp.file("f32")) == 0);
  const std::map<int64_t, std::string> l32 = losses(tmp.file("f32"));
  REQUIRE(l32.size() == 16);
  for (const char* mode : {"bf16", "fp16"}) {
    INFO("--amp " << mode);
    const std::string base = flags + " --amp " + mode;
    const std::string out = tmp.file(mode);
    REQUIRE(run(base + " --out " + out) == 0);
    const std::map<int64_t, std::string> l = losses(out);
    REQUIRE(l.size() == 16);
    // The same run in reduced precision: the loss differs from float32's (the matmuls round)
    // yet follows it closely, and falls as much.
    REQUIRE(l != l32);
    double first = 0, last = 0;
    for (int64_t s = 1; s <= 4; ++s) first += std::stod(l.at(s)) / 4;
    for (int64_t s = 13; s <= 16; ++s) {
      last += std::stod(l.at(s)) / 4;
      CHECK(std::abs(std::stod(l.at(s)) - std::stod(l32.at(s))) < 0.05 * std::stod(l32.at(s)));
    }
    REQUIRE(last < 0.85 * first);
    // The weights stay float32 (autocast casts copies); fp16's loss scale travels in the
    // checkpoint, so a stopped and resumed run ends bitwise where the uninterrupted one does.
    const Checkpoint c = load_checkpoint(out + "/last.ckpt");
    for (const auto& [name, t] : c.model) REQUIRE(t.dtype() == kFloat32);
    REQUIRE(c.metadata.count("train.amp_scale") == 1);
    require_exact_resume(base, out, out + "_resumed", {6});
  }
  REQUIRE(run(flags + " --amp fp8 --out " + tmp.file("bad")) != 0);
}
