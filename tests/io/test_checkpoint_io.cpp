// Checkpoints: round trip, checksum (every byte of a file flipped in turn; 1000 random byte
// changes in a trained model's checkpoint), atomic replacement under simulated failures, and a
// bit-identical resumed training run.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "ember/ember.hpp"
#include "ember/io/checkpoint.hpp"
#include "ember/io/safetensors.hpp"
#include "io/file.hpp"
#include "io/safetensors_impl.hpp"
#include "io_test_util.hpp"
#include "test_util.hpp"

using namespace ember;
namespace fs = std::filesystem;

namespace {

using test::read_bytes;
using test::TempDir;
using test::write_bytes;

// Removes the atomic-write test hook at scope exit.
struct HookGuard {
  explicit HookGuard(std::function<bool(const char*)> h) {
    io_detail::set_atomic_write_hook(std::move(h));
  }
  ~HookGuard() { io_detail::set_atomic_write_hook({}); }
};

Checkpoint sample_checkpoint() {
  Checkpoint c;
  c.model.insert("fc.weight", arange(6, kFloat32).reshape({2, 3}));
  c.model.insert("fc.bias", tensor(std::vector<BFloat16>{BFloat16(1.5f), BFloat16(-2.0f)}));
  c.model.insert("bn.num_batches_tracked", scalar_tensor(int64_t{12}, kInt64));
  c.optimizer.insert("state.0.exp_avg", full({2, 3}, 0.25, kFloat64));
  c.optimizer.set_double("param_groups.0.lr", 3e-4);
  c.optimizer.set_int("param_groups.0.params.0", 0);
  c.scheduler.set_int("last_epoch", 7);
  c.step = 123456789012LL;
  c.metadata = {{"run", "resnet18"}, {"note", "line\nbreak"}};
  c.rng["data"] = GeneratorState{0xfedcba9876543210ull, 99};
  return c;
}

}  // namespace

TEST_CASE("checkpoint: XXH64 matches the reference xxhash, in one call and streamed in pieces") {
  // Values from Python's xxhash 3.x (xxhash.xxh64(data).intdigest()).
  auto xxh = [](const std::string& s) {
    io_detail::XXH64 h;
    h.update(s.data(), s.size());
    return h.digest();
  };
  CHECK(xxh("") == 0xef46db3751d8e999ull);
  CHECK(xxh("a") == 0xd24ec4f1a98c6e5bull);
  CHECK(xxh("abc") == 0x44bc2cf5ad770999ull);
  CHECK(xxh("foobar") == 0xa2aa05ed9085aaf9ull);
  std::string long_input;
  for (int r = 0; r < 3; ++r)
    for (int i = 0; i < 256; ++i) long_input += static_cast<char>(i);
  long_input += "xyz";  // 771 bytes: stripes, then 8-, 4- and 1-byte tails
  CHECK(xxh(long_input) == 0xe921a1b45bd779f8ull);
  for (size_t piece : {1, 3, 7, 31, 32, 33, 100}) {
    INFO("pieces of " << piece);
    io_detail::XXH64 h;
    for (size_t at = 0; at < long_input.size(); at += piece)
      h.update(long_input.data() + at, std::min(piece, long_input.size() - at));
    CHECK(h.digest() == 0xe921a1b45bd779f8ull);
  }
}

TEST_CASE("checkpoint: save and load round-trip every field") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  manual_seed(2024);
  (void)randn({10});  // move the default generator off offset 0
  const GeneratorState default_state = GeneratorState::capture(default_generator());
  Checkpoint c = sample_checkpoint();
  save_checkpoint(path, c);

  Checkpoint r = load_checkpoint(path);
  CHECK(r.step == c.step);
  CHECK(r.metadata == c.metadata);
  for (auto [got, want] : {std::pair{&r.model, &c.model}, std::pair{&r.optimizer, &c.optimizer},
                           std::pair{&r.scheduler, &c.scheduler}}) {
    REQUIRE(got->size() == want->size());
    for (const auto& [k, t] : *want) {
      INFO(k);
      REQUIRE(got->contains(k));
      CHECK(test::bitwise_equal(got->at(k), t));
    }
  }
  REQUIRE(r.rng.size() == 2);
  CHECK(r.rng.at("default") == default_state);
  CHECK(r.rng.at("data") == c.rng.at("data"));

  // It is a plain safetensors file too (Python's safetensors opens it; see make_golden.py).
  StateDict flat = load_safetensors(path);
  CHECK(flat.contains("model.fc.weight"));
  CHECK(flat.contains("optimizer.param_groups.0.lr"));
  CHECK(flat.contains("scheduler.last_epoch"));
  CHECK(flat.contains("rng.default"));
  std::map<std::string, std::string> meta = load_safetensors_metadata(path);
  CHECK(meta.at("ember.step") == "123456789012");
  CHECK(meta.at("ember.format") == "ember.checkpoint");
  CHECK(meta.at("ember.format_version") == "1");
  CHECK(meta.at("ember.checksum").rfind("xxh64:", 0) == 0);
  CHECK(meta.at("run") == "resnet18");

  // Saving the same checkpoint twice gives the same bytes.
  c.rng["default"] = default_state;
  save_checkpoint(dir.file("again.safetensors"), c);
  CHECK(read_bytes(dir.file("again.safetensors")) == read_bytes(path));
}

TEST_CASE("checkpoint: any flipped byte anywhere in the file is an IOError") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  Checkpoint c;
  c.model.insert("w", arange(8, kFloat32));
  c.optimizer.insert("m", arange(3, kInt64));
  c.step = 5;
  c.metadata["k"] = "v";
  save_checkpoint(path, c);
  const std::string good = read_bytes(path);
  const uint64_t data_start = 8 + read_safetensors_header(path).header_size;
  REQUIRE(data_start < good.size());

  // Flip one byte of the file in place, load, flip it back.
  int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  int detected = 0, checksum_errors = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80}) {
      const char flipped = static_cast<char>(good[i] ^ mask);
      REQUIRE(::pwrite(fd, &flipped, 1, static_cast<off_t>(i)) == 1);
      bool thrown = false;
      try {
        (void)load_checkpoint(path);
      } catch (const IOError& e) {
        thrown = true;
        ++detected;
        const bool by_checksum =
            std::string(e.what()).find("checksum mismatch") != std::string::npos;
        checksum_errors += by_checksum;
        if (i >= data_start) {
          INFO("byte " << i << " (data buffer): " << e.what());
          CHECK(by_checksum);
        }
      }
      REQUIRE(::pwrite(fd, &good[i], 1, static_cast<off_t>(i)) == 1);
      if (!thrown) FAIL("flipping byte " << i << " with mask " << int(mask) << " went unnoticed");
    }
  }
  ::close(fd);
  INFO(good.size() << " bytes; " << checksum_errors << " of " << detected
                   << " detections by the checksum, the rest by header validation");
  CHECK(detected == static_cast<int>(2 * good.size()));
  // Data-buffer flips always reach the checksum; header flips often fail validation first.
  CHECK(checksum_errors >= static_cast<int>(2 * (good.size() - data_start)));
  CHECK(read_bytes(path) == good);
  CHECK(load_checkpoint(path).step == 5);
}

TEST_CASE("checkpoint: files that are not valid checkpoints are typed errors") {
  TempDir dir;
  save_safetensors(dir.file("plain.safetensors"), {{"w", ones({2})}});
  EMBER_CHECK_THROWS(load_checkpoint(dir.file("plain.safetensors")), IOError, "[load_checkpoint]",
                     "plain.safetensors", "not an Ember checkpoint");
  save_safetensors(dir.file("v2.safetensors"), {{"w", ones({2})}},
                   {{"ember.format", "ember.checkpoint"},
                    {"ember.format_version", "2"},
                    {"ember.step", "0"},
                    {"ember.checksum", "xxh64:0000000000000000"}});
  EMBER_CHECK_THROWS(load_checkpoint(dir.file("v2.safetensors")), IOError,
                     "format version 2 is not supported");

  // Correctly sealed files whose contents are wrong: seal() computes the checksum as save does.
  auto seal = [](std::string bytes) {
    const std::string needle = "\"ember.checksum\":\"xxh64:";
    const size_t at = bytes.find(needle) + needle.size();
    io_detail::XXH64 h;
    h.update(bytes.data(), bytes.size());
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h.digest()));
    bytes.replace(at, 16, hex);
    return bytes;
  };
  const std::map<std::string, std::string> meta = {
      {"ember.format", "ember.checkpoint"},
      {"ember.format_version", "1"},
      {"ember.step", "3"},
      {"ember.checksum", "xxh64:" + std::string(16, '0')}};
  write_bytes(dir.file("ok.safetensors"),
              seal(serialize_safetensors({{"model.w", ones({2})}}, meta)));
  CHECK(load_checkpoint(dir.file("ok.safetensors")).step == 3);
  write_bytes(dir.file("foo.safetensors"),
              seal(serialize_safetensors({{"foo.w", ones({2})}}, meta)));
  EMBER_CHECK_THROWS(load_checkpoint(dir.file("foo.safetensors")), IOError,
                     "unexpected tensor 'foo.w'");
  write_bytes(dir.file("rng.safetensors"),
              seal(serialize_safetensors({{"rng.default", ones({2})}}, meta)));
  EMBER_CHECK_THROWS(load_checkpoint(dir.file("rng.safetensors")), IOError,
                     "generator state 'rng.default' is float32 (2,)");
  std::map<std::string, std::string> bad_step = meta;
  bad_step["ember.step"] = "3x";
  write_bytes(dir.file("step.safetensors"), seal(serialize_safetensors({}, bad_step)));
  EMBER_CHECK_THROWS(load_checkpoint(dir.file("step.safetensors")), IOError,
                     "step '3x' is not an integer");

  Checkpoint c;
  c.metadata["ember.step"] = "1";
  EMBER_CHECK_THROWS(save_checkpoint(dir.file("x.safetensors"), c), ValueError,
                     "reserved prefix 'ember.'");
  CHECK_FALSE(fs::exists(dir.file("x.safetensors")));
  Checkpoint empty;
  EMBER_CHECK_THROWS(restore_rng(empty), IOError, "[restore_rng]", "default generator");
  Checkpoint only_default;
  only_default.rng["default"] = GeneratorState{1, 2};
  Generator g(5);
  EMBER_CHECK_THROWS(restore_rng(only_default, {{"data", g}}), IOError, "generator 'data'");
  CHECK(g.current_seed() == 5);  // nothing restored when any entry is missing
}

TEST_CASE("checkpoint: a failed write leaves the old file untouched and no temporary file") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  Checkpoint v1 = sample_checkpoint();
  v1.step = 1;
  save_checkpoint(path, v1);
  const std::string old_bytes = read_bytes(path);
  Checkpoint v2 = sample_checkpoint();
  v2.step = 2;
  v2.model.insert("big", zeros({1000}));

  for (const char* stage : {"open", "write", "sync", "rename"}) {
    INFO("failing stage: " << stage);
    {
      HookGuard hook([stage](const char* s) { return std::strcmp(s, stage) == 0; });
      EMBER_CHECK_THROWS(save_checkpoint(path, v2), IOError, "[save_checkpoint]",
                         "ckpt.safetensors");
      EMBER_CHECK_THROWS(save_safetensors(path, v2.model), IOError, "[save_safetensors]");
    }
    CHECK(read_bytes(path) == old_bytes);
    CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});
    CHECK(load_checkpoint(path).step == 1);
  }

  // The write fails after some bytes went out (the third write call).
  {
    int calls = 0;
    HookGuard hook(
        [&calls](const char* s) { return std::strcmp(s, "write") == 0 && ++calls == 3; });
    EMBER_CHECK_THROWS(save_checkpoint(path, v2), IOError, "write failed");
  }
  CHECK(read_bytes(path) == old_bytes);
  CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});

  // A real failure: the target is a directory, so rename() fails.
  fs::create_directories(dir.file("taken.safetensors/inner"));
  EMBER_CHECK_THROWS(save_checkpoint(dir.file("taken.safetensors"), v2), IOError, "cannot rename");
  CHECK(fs::is_directory(dir.file("taken.safetensors/inner")));
  CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors", "taken.safetensors"});
  // And a missing directory.
  EMBER_CHECK_THROWS(save_checkpoint(dir.file("no/such/dir.safetensors"), v2), IOError,
                     "cannot create the temporary file");

  // After the rename the new file is in place even if the directory fsync then fails.
  {
    HookGuard hook([](const char* s) { return std::strcmp(s, "sync_dir") == 0; });
    EMBER_CHECK_THROWS(save_checkpoint(path, v2), IOError, "after the rename");
  }
  CHECK(load_checkpoint(path).step == 2);
  CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors", "taken.safetensors"});

  // A successful save replaces the file and keeps its permissions.
  ::chmod(path.c_str(), 0640);
  save_checkpoint(path, v1);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  CHECK(read_bytes(path) == old_bytes);
}

TEST_CASE("checkpoint: saving over a file whose tensors are still mapped leaves them intact") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  Checkpoint v1;
  v1.model.insert("w", full({256}, 1.0, kFloat32));
  v1.step = 1;
  save_checkpoint(path, v1);
  Checkpoint loaded = load_checkpoint(path);
  Tensor w = loaded.model.at("w");  // a view of the mapped file
  Checkpoint v2;
  v2.model.insert("w", full({256}, 2.0, kFloat32));
  v2.step = 2;
  save_checkpoint(path, v2);  // rename() swaps the directory entry; the mapped inode lives on
  CHECK(equal(w, full({256}, 1.0, kFloat32)));
  CHECK(load_checkpoint(path).step == 2);
  CHECK(equal(load_checkpoint(path).model.at("w"), full({256}, 2.0, kFloat32)));
}

// ---- resume: 6 steps straight == 3 steps, checkpoint, reload, 3 steps (bitwise) ----

namespace {

constexpr int64_t kN = 32, kD = 4;

struct Run {
  Tensor w, momentum;  // (kD, 1) float32
  int64_t step = 0;
};

// Linear regression, minibatches drawn with `data_gen`, label noise from the default generator,
// hand-written SGD with momentum (PyTorch's form: buf = mu * buf + grad; w -= lr * buf).
void train_steps(Run& r, int steps, Generator& data_gen, const Tensor& X, const Tensor& y) {
  const double lr = 0.05, mu = 0.9;
  for (int s = 0; s < steps; ++s) {
    Tensor idx = randperm(kN, data_gen).narrow(0, 0, 16);
    Tensor xb = X.index_select(0, idx);
    Tensor yb = y.index_select(0, idx) + randn({16, 1}) * 0.1;
    Tensor grad = matmul(xb.transpose(0, 1), matmul(xb, r.w) - yb) * (2.0 / 16);
    r.momentum.mul_(mu).add_(grad);
    r.w.sub_(r.momentum * lr);
    ++r.step;
  }
}

}  // namespace

TEST_CASE("checkpoint: resuming from a checkpoint continues training bit for bit") {
  Generator fixed(7);
  const Tensor X = randn({kN, kD}, fixed);
  const Tensor y = matmul(X, tensor(std::vector<float>{1.0f, -2.0f, 0.5f, 3.0f}).reshape({kD, 1}));

  // Straight: 6 steps.
  manual_seed(11);
  Generator data_a(99);
  Run a{zeros({kD, 1}), zeros({kD, 1})};
  train_steps(a, 6, data_a, X, y);
  const GeneratorState end_default = GeneratorState::capture(default_generator());

  // Resumed: 3 steps, save, scramble every piece of state, load, 3 steps.
  TempDir dir;
  const std::string path = dir.file("resume.safetensors");
  manual_seed(11);
  Generator data_b(99);
  Run b{zeros({kD, 1}), zeros({kD, 1})};
  train_steps(b, 3, data_b, X, y);
  {
    Checkpoint c;
    c.model.insert("w", b.w);
    c.optimizer.insert("state.0.momentum_buffer", b.momentum);
    c.optimizer.set_double("param_groups.0.lr", 0.05);
    c.scheduler.set_int("last_epoch", b.step);
    c.step = b.step;
    c.rng["data"] = GeneratorState::capture(data_b);
    save_checkpoint(path, c);
  }
  manual_seed(12345);
  (void)randn({100});
  data_b.set_current_seed(1);
  b = Run{randn({kD, 1}), ones({kD, 1}), 0};

  Checkpoint c = load_checkpoint(path);
  restore_rng(c, {{"data", data_b}});
  b.w = c.model.at("w");  // views of the mapped file, updated in place from here on
  b.momentum = c.optimizer.at("state.0.momentum_buffer");
  b.step = c.step;
  CHECK(c.scheduler.get_int("last_epoch") == 3);
  train_steps(b, 3, data_b, X, y);

  CHECK(b.step == 6);
  CHECK(test::bitwise_equal(a.w, b.w));
  CHECK(test::bitwise_equal(a.momentum, b.momentum));
  CHECK(GeneratorState::capture(default_generator()) == end_default);
  CHECK(GeneratorState::capture(data_b) == GeneratorState::capture(data_a));
  // The training moved the weights (the comparison is not between two untouched tensors).
  CHECK(a.w.abs().sum().item<double>() > 0.1);
}

// ---- 1000 random single-byte corruptions of a realistic checkpoint ----

namespace {

// A small convolutional classifier: float32 weights, BatchNorm running statistics and its int64
// batch counter.
struct CorruptionNetImpl : nn::Module {
  CorruptionNetImpl() {
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(3, 16, 3).padding(1)));
    bn1 = register_module("bn1", nn::BatchNorm2d(16));
    conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(16, 32, 3).padding(1)));
    fc = register_module("fc", nn::Linear(32, 10));
  }
  Tensor forward(const Tensor& x) { return fc(relu(conv2(relu(bn1(conv1(x))))).mean({2, 3})); }
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  nn::Linear fc{nullptr};
};
EMBER_MODULE(CorruptionNet);

// A checkpoint as a trainer writes it after 3 steps: the model, AdamW's moments and step counts
// in two parameter groups (float64 options), a cosine schedule, two generator states, the step and
// metadata. About 66 KB.
Checkpoint trained_checkpoint() {
  manual_seed(31);
  CorruptionNet net;
  std::vector<Tensor> decay, no_decay;
  for (const Tensor& p : net->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  std::vector<optim::OptimizerParamGroup> groups;
  groups.emplace_back(
      decay, std::make_unique<optim::AdamWOptions>(optim::AdamWOptions(1e-3).weight_decay(0.1)));
  groups.emplace_back(
      no_decay, std::make_unique<optim::AdamWOptions>(optim::AdamWOptions(1e-3).weight_decay(0.0)));
  optim::AdamW opt(std::move(groups));
  optim::CosineAnnealingLR sched(opt, 100);
  Generator data_gen(5);
  for (int step = 0; step < 3; ++step) {
    const Tensor x = randn({4, 3, 8, 8}, data_gen);
    const Tensor y = randint(0, 10, {4}, data_gen);
    opt.zero_grad();
    nn::functional::cross_entropy(net->forward(x), y).backward();
    opt.step();
    sched.step();
  }
  Checkpoint c;
  c.model = net->state_dict();
  c.optimizer = opt.state_dict();
  c.scheduler = sched.state_dict();
  c.step = 3;
  c.metadata = {{"model", "corruption_net"}, {"train.loss_ema", "0x1.2p+1"}};
  c.rng["data"] = GeneratorState::capture(data_gen);
  return c;
}

}  // namespace

TEST_CASE("checkpoint: 1000 random single-byte corruptions are all detected as IOError") {
  TempDir dir;
  const std::string path = dir.file("trained.ckpt");
  save_checkpoint(path, trained_checkpoint());
  const std::string good = read_bytes(path);
  const uint64_t data_start = 8 + read_safetensors_header(path).header_size;
  REQUIRE(good.size() > 50000);
  REQUIRE(data_start < good.size() / 4);

  // Half the positions anywhere in the file, half in the size prefix and JSON header (a few
  // percent of the file, where a change meets the parser before the checksum); the new value is
  // any byte but the old one.
  constexpr uint64_t kSeed = 20251204;
  constexpr int kCorruptions = 1000;
  std::mt19937_64 rng(kSeed);
  int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  int detected = 0, in_header = 0, by_checksum = 0;
  for (int n = 0; n < kCorruptions; ++n) {
    const uint64_t span = n % 2 == 0 ? good.size() : data_start;
    const size_t at = static_cast<size_t>(rng() % span);
    const unsigned char old_byte = static_cast<unsigned char>(good[at]);
    const unsigned char new_byte = static_cast<unsigned char>(old_byte + 1 + rng() % 255);
    REQUIRE(new_byte != old_byte);
    REQUIRE(::pwrite(fd, &new_byte, 1, static_cast<off_t>(at)) == 1);
    INFO("seed " << kSeed << ", corruption " << n << ": byte " << at << " of " << good.size()
                 << " (header ends at " << data_start << ") " << int(old_byte) << " -> "
                 << int(new_byte));
    bool thrown = false;
    try {
      (void)load_checkpoint(path);
    } catch (const IOError& e) {
      thrown = true;
      by_checksum += std::string(e.what()).find("checksum mismatch") != std::string::npos;
    }
    // Any other exception type escapes and fails the test with its message.
    REQUIRE(thrown);
    ++detected;
    in_header += at < data_start;
    REQUIRE(::pwrite(fd, &good[at], 1, static_cast<off_t>(at)) == 1);
  }
  ::close(fd);
  WARN("random corruptions: " << detected << " of " << kCorruptions << " detected (" << in_header
                              << " in the header, " << by_checksum << " by the checksum; file "
                              << good.size() << " bytes, seed " << kSeed << ")");
  REQUIRE(detected == kCorruptions);
  CHECK(in_header >= kCorruptions / 2);
  // The restored file is the good one and loads.
  REQUIRE(read_bytes(path) == good);
  CHECK(load_checkpoint(path).step == 3);
}
