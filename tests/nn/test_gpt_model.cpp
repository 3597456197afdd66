// The GPT trainer's model (examples/gpt/model.hpp): GPT-2's parameter count and names, logits
// equal to Hugging Face's GPT2LMHeadModel on its own weights file (tests/nn/make_gpt2_golden.py),
// GPT-2's byte-token order, weight tying, causality, gradients, sampling and the errors.
//
// Needs examples/gpt/model.cpp and the include dir examples/ in the test target.
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gpt/model.hpp"
#include "io/io_test_util.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;
namespace gpt = ember_examples::gpt;

namespace {

std::string golden(const std::string& name) {
  return std::string(EMBER_SOURCE_DIR) + "/tests/nn/golden/" + name;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  return (a.to(kFloat64) - b.to(kFloat64)).abs().max().item<double>();
}

gpt::GPTConfig golden_config() {
  gpt::GPTConfig c;
  c.vocab_size = 300;
  c.block_size = 16;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_embd = 32;
  c.dropout = 0.0;
  return c;
}

}  // namespace

TEST_CASE("gpt model: GPT-2 124M has 124,439,808 parameters under Hugging Face's names") {
  manual_seed(0);
  gpt::GPT model(gpt::GPTConfig::preset("gpt2"));
  REQUIRE(model->num_parameters() == 124439808);
  StateDict sd = model->state_dict();
  REQUIRE(sd.size() == 2 + 12 * 12 + 2);  // wte, wpe; 12 tensors per block; ln_f
  std::vector<std::string> keys = sd.keys();
  REQUIRE(keys[0] == "transformer.wte.weight");
  REQUIRE(keys[1] == "transformer.wpe.weight");
  REQUIRE(keys[2] == "transformer.h.0.ln_1.weight");
  REQUIRE(keys[4] == "transformer.h.0.attn.c_attn.weight");
  REQUIRE(keys[13] == "transformer.h.0.mlp.c_proj.bias");
  REQUIRE(keys.back() == "transformer.ln_f.bias");
  REQUIRE(sd.at("transformer.h.11.attn.c_attn.weight").sizes() == std::vector<int64_t>{2304, 768});
  // GPT-2's init: N(0, 0.02), the residual projections N(0, 0.02 / sqrt(24)).
  REQUIRE(std::abs(sd.at("transformer.wte.weight").std().item<double>() - 0.02) < 5e-4);
  REQUIRE(std::abs(sd.at("transformer.h.3.mlp.c_proj.weight").std().item<double>() -
                   0.02 / std::sqrt(24.0)) < 2e-4);
  REQUIRE(sd.at("transformer.h.0.ln_1.weight").eq(1.0).all().item<bool>());
}

TEST_CASE("gpt model: logits equal Hugging Face GPT-2's on its weights file") {
  gpt::GPT model(golden_config());
  gpt::load_gpt2_weights(model, golden("gpt2_tiny.safetensors"), /*gpt2_byte_order=*/false);
  model->eval();
  StateDict io = load_safetensors(golden("gpt2_tiny_io.safetensors"));
  Tensor logits = model->forward(io.at("idx"));
  REQUIRE(logits.sizes() == std::vector<int64_t>{2, 16, 300});
  REQUIRE(max_abs_diff(logits, io.at("logits")) < 1e-4);
  // The same file with the `transformer.` prefix and a tied lm_head.weight loads too.
  StateDict raw = load_safetensors(golden("gpt2_tiny.safetensors")), prefixed;
  for (const auto& [k, v] : raw) prefixed.insert("transformer." + k, v);
  prefixed.insert("lm_head.weight", raw.at("wte.weight"));
  TempDir tmp;
  save_safetensors(tmp.file("prefixed.safetensors"), prefixed);
  gpt::GPT again(golden_config());
  gpt::load_gpt2_weights(again, tmp.file("prefixed.safetensors"), false);
  again->eval();
  REQUIRE(bitwise_equal(again->forward(io.at("idx")), logits));
}

TEST_CASE("gpt model: GPT-2's byte tokens map to Ember's byte ids") {
  const std::array<int64_t, 256> ids = gpt::gpt2_byte_token_ids();
  REQUIRE(ids['!'] == 0);
  REQUIRE(ids['~'] == 93);
  REQUIRE(ids[0xA1] == 94);   // the next printable byte
  REQUIRE(ids[0] == 188);     // the first non-printable byte
  REQUIRE(ids[' '] == 220);   // GPT-2's space token ("Ġ")
  REQUIRE(ids['\n'] == 198);  // GPT-2's newline token ("Ċ")
  std::vector<bool> seen(256, false);
  for (int64_t id : ids) seen[static_cast<size_t>(id)] = true;
  for (bool s : seen) REQUIRE(s);

  // With the byte order applied, Ember byte b behaves as GPT-2 token ids[b].
  gpt::GPT model(golden_config());
  gpt::load_gpt2_weights(model, golden("gpt2_tiny.safetensors"), /*gpt2_byte_order=*/true);
  model->eval();
  StateDict io = load_safetensors(golden("gpt2_tiny_io.safetensors"));
  std::vector<int64_t> to_byte(256);
  for (int b = 0; b < 256; ++b) to_byte[static_cast<size_t>(ids[static_cast<size_t>(b)])] = b;
  std::vector<int64_t> ember_ids;
  for (double t : values(io.at("idx").select(0, 0).narrow(0, 0, 8)))
    ember_ids.push_back(to_byte[static_cast<size_t>(t)]);
  Tensor logits = model->forward(tensor(ember_ids).view({1, 8}));  // (1, 8, 300)
  Tensor expected = io.at("logits").select(0, 0).narrow(0, 0, 8);  // (8, 300)
  std::vector<int64_t> perm(ids.begin(), ids.end());
  for (int64_t i = 256; i < 300; ++i) perm.push_back(i);
  REQUIRE(max_abs_diff(logits.select(0, 0), expected.index_select(1, tensor(perm))) < 1e-4);
}

TEST_CASE("gpt model: causal, tied, every parameter gets a gradient") {
  manual_seed(1);
  gpt::GPT model(gpt::GPTConfig::preset("tiny", 50));
  REQUIRE(model->num_parameters() == 50 * 64 + 32 * 64 + 2 * (12 * 64 * 64 + 13 * 64) + 2 * 64);
  model->eval();
  Tensor idx = randint(0, 50, {2, 12});
  Tensor logits = model->forward(idx);
  REQUIRE(logits.sizes() == std::vector<int64_t>{2, 12, 50});
  // Changing token 7 changes no logit before position 7.
  Tensor idx2 = idx.clone();
  idx2.select(1, 7).fill_(0);
  idx2.select(1, 7).add_(tensor(std::vector<int64_t>{3, 4}));
  Tensor logits2 = model->forward(idx2);
  REQUIRE(bitwise_equal(logits.narrow(1, 0, 7), logits2.narrow(1, 0, 7)));
  REQUIRE(max_abs_diff(logits.narrow(1, 7, 5), logits2.narrow(1, 7, 5)) > 1e-4);

  model->train();
  Tensor loss = gpt::lm_loss(model->forward(idx), randint(0, 50, {2, 12}));
  REQUIRE(std::abs(loss.item<double>() - std::log(50.0)) < 0.5);
  loss.backward();
  for (const auto& [name, p] : model->named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined());
    REQUIRE(p.grad().abs().sum().item<double>() > 0);
  }
  // The output projection is the token embedding itself: no lm_head parameter.
  REQUIRE_FALSE(model->state_dict().contains("lm_head.weight"));
}

TEST_CASE(
    "gpt model: in 16 bits the tied head gives 16-bit logits, the loss reads them as they are") {
  manual_seed(2);
  gpt::GPT model(gpt::GPTConfig::preset("tiny", 50));
  model->eval();
  const Tensor idx = randint(0, 50, {2, 12}), targets = randint(0, 50, {2, 12});
  const Tensor full = model->forward(idx);
  REQUIRE(full.dtype() == kFloat32);
  const double full_loss = gpt::lm_loss(full, targets).item<double>();
  for (DType dt : {kBFloat16, kFloat16}) {
    INFO(dt);
    Tensor logits, loss;
    {
      auto scope = autocast(dt, kCPU);
      logits = model->forward(idx);
      loss = gpt::lm_loss(logits, targets);
    }
    REQUIRE(logits.dtype() == dt);
    REQUIRE(logits.sizes() == full.sizes());
    CHECK(max_abs_diff(logits.to(kFloat32), full) < 3e-2 * full.abs().max().item<double>());
    // The loss: float32, from the 16-bit logits themselves (no float32 copy before the node).
    REQUIRE(loss.dtype() == kFloat32);
    REQUIRE(loss.grad_fn() != nullptr);
    CHECK(loss.grad_fn()->input_meta[0].dtype == dt);
    CHECK(std::abs(loss.item<double>() - full_loss) < 2e-2 * full_loss);
  }
  // A float64 model keeps float64 logits.
  model->to(kFloat64);
  CHECK(model->forward(idx).dtype() == kFloat64);
}

TEST_CASE("gpt model: generate extends the prompt, greedy is top-k 1, seeds repeat") {
  manual_seed(2);
  gpt::GPT model(gpt::GPTConfig::preset("tiny", 20));
  Tensor prompt = tensor(std::vector<int64_t>{1, 2, 3}).view({1, 3});
  Tensor greedy = gpt::generate(model, prompt, 40, 0.0);  // longer than block_size 32: cropped
  REQUIRE(greedy.sizes() == std::vector<int64_t>{1, 43});
  REQUIRE(bitwise_equal(greedy.narrow(1, 0, 3), prompt));
  Generator g1(9), g2(9);
  REQUIRE(bitwise_equal(gpt::generate(model, prompt, 10, 1.0, 1, &g1), greedy.narrow(1, 0, 13)));
  Tensor s1 = gpt::generate(model, prompt, 30, 1.5, 5, &g1);
  Tensor s2 = gpt::generate(model, prompt, 30, 1.5, 5, &g2);
  Generator g3(9);
  gpt::generate(model, prompt, 10, 1.0, 1, &g3);
  REQUIRE(bitwise_equal(s1, gpt::generate(model, prompt, 30, 1.5, 5, &g3)));
  REQUIRE(s2.min().item<int64_t>() >= 0);
  REQUIRE(s2.max().item<int64_t>() < 20);
  REQUIRE(model->is_training());  // generate restores the mode
}

TEST_CASE("gpt model: errors name the problem") {
  REQUIRE_THROWS_AS(gpt::GPTConfig::preset("gpt5"), ValueError);
  gpt::GPTConfig bad = gpt::GPTConfig::preset("tiny", 10);
  bad.n_head = 3;
  REQUIRE_THROWS_WITH(gpt::GPT(bad), Catch::Contains("divisible"));
  REQUIRE_THROWS_AS(gpt::GPT(gpt::GPTConfig::preset("tiny")), ValueError);  // vocab_size 0
  gpt::GPT model(gpt::GPTConfig::preset("tiny", 10));
  REQUIRE_THROWS_WITH(model->forward(zeros({1, 33}, kInt64)),
                      Catch::Contains("[GPT]") && Catch::Contains("(1, 33)"));
  REQUIRE_THROWS_AS(model->forward(zeros({33}, kInt64)), ShapeError);
  REQUIRE_THROWS_AS(gpt::generate(model, zeros({2, 3}, kInt64), 1), ShapeError);
  gpt::GPT wrong(gpt::GPTConfig::preset("tiny", 300));  // shapes differ from the golden file's
  REQUIRE_THROWS_AS(gpt::load_gpt2_weights(wrong, golden("gpt2_tiny.safetensors")), ShapeError);
}

TEST_CASE(
    "gpt model: a GPT-2-layout tokenizer converted by tools/gpt2_tokenizer.py encodes as "
    "Hugging Face's") {
  // tests/nn/make_gpt2_tokenizer_golden.py: a ByteLevelBPETokenizer of Hugging Face tokenizers
  // (GPT-2's layout and pre-tokenizer), converted, and its ids for a text with contractions,
  // digits, runs of whitespace and multi-byte UTF-8.
  data::BPETokenizer tok = data::BPETokenizer::load(golden("gpt2_style_bpe.json"));
  REQUIRE(tok.vocab_size() == 600);
  const nlohmann::json g =
      nlohmann::json::parse(data::read_text_file(golden("gpt2_style_bpe_ids.json")));
  const std::string text = g.at("text").get<std::string>();
  const std::vector<int64_t> expected = g.at("ids").get<std::vector<int64_t>>();
  const std::array<int64_t, 256> byte_ids = gpt::gpt2_byte_token_ids();
  std::vector<int64_t> mapped;
  for (int64_t id : tok.encode(text))
    mapped.push_back(id < 256 ? byte_ids[static_cast<size_t>(id)] : id);
  REQUIRE(mapped == expected);
  REQUIRE(tok.decode(tok.encode(text)) == text);
}
