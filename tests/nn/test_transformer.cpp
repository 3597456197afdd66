// TransformerEncoderLayer / TransformerDecoderLayer / TransformerEncoder / TransformerDecoder:
// PyTorch's submodule and parameter names, post- and pre-norm computed by hand from the
// submodules, torch's outputs for the same state_dict (golden file), batch_first, eval-mode
// determinism, float64 gradcheck, the causal mask helper and errors.
#include <cmath>
#include <limits>
#include <vector>

#include "ember/nn.hpp"
#include "ember/nn/modules/transformer.hpp"
#include "gradcheck.hpp"
#include "nn/attention_golden.hpp"

using namespace ember;
using test::grad_input;
using test::values;

namespace {

Tensor rnd(std::vector<int64_t> sizes, uint64_t seed) {
  Generator g(seed);
  Tensor t = empty(sizes, kFloat64);
  uniform_(t, -1.0, 1.0, g);
  return t;
}

bool close(const Tensor& a, const Tensor& b, double tol = 1e-12) {
  if (a.sizes() != b.sizes()) return false;
  std::vector<double> x = values(a), y = values(b);
  for (size_t i = 0; i < x.size(); ++i)
    if (!(std::abs(x[i] - y[i]) <= tol * (1 + std::abs(y[i])))) return false;
  return true;
}

/// Every parameter random (biases and LayerNorm affine included), float64.
template <class M>
void randomize(M& m, uint64_t seed) {
  m->to(kFloat64);
  NoGradGuard no_grad;
  Generator g(seed);
  for (Tensor p : m->parameters()) uniform_(p, -0.5, 0.5, g);
}

std::vector<std::string> child_names(const nn::Module& m) {
  std::vector<std::string> out;
  for (const auto& [name, child] : m.named_children()) out.push_back(name);
  return out;
}

Tensor attend(nn::MultiheadAttention& a, const Tensor& q, const Tensor& kv, const Tensor& mask,
              const Tensor& kpm) {
  return std::get<0>(a(q, kv, kv, kpm, false, mask));
}

}  // namespace

TEST_CASE("TransformerEncoderLayer: PyTorch's submodule and parameter names") {
  nn::TransformerEncoderLayer layer(8, 2, 16);
  CHECK(child_names(*layer) == std::vector<std::string>{"self_attn", "linear1", "dropout",
                                                        "linear2", "norm1", "norm2", "dropout1",
                                                        "dropout2"});
  const StateDict golden = test::load_attention_golden();
  CHECK(layer->state_dict().keys() == test::golden_state(golden, "enc_post").keys());
  CHECK(layer->linear1->weight.sizes() == IntArrayRef({16, 8}));
  CHECK(layer->options.dropout_ == 0.1);
  CHECK(layer->self_attn->options.dropout_ == 0.1);
  nn::TransformerDecoderLayer dec(8, 2, 16);
  CHECK(child_names(*dec) == std::vector<std::string>{"self_attn", "multihead_attn", "linear1",
                                                      "dropout", "linear2", "norm1", "norm2",
                                                      "norm3", "dropout1", "dropout2", "dropout3"});
  CHECK(dec->state_dict().keys() == test::golden_state(golden, "dec_post").keys());
  // bias = false: no biases anywhere, LayerNorm without bias (as PyTorch's bias argument).
  nn::TransformerEncoderLayer nb(
      nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(16).bias(false));
  for (const auto& [name, t] : nb->named_parameters())
    CHECK(name.find("bias") == std::string::npos);
  CHECK(nb->named_parameters().contains("norm1.weight"));
}

TEST_CASE("TransformerEncoderLayer: post-norm and pre-norm equal the submodules composed by hand") {
  const int64_t L = 5, N = 2, E = 8;
  Tensor x = rnd({L, N, E}, 1);
  Tensor mask = ones({L, L}, kBool).triu(1);
  Tensor kpm = zeros({N, L}, kBool);
  kpm.index_put_({1, 4}, true);
  for (const char* act : {"relu", "gelu"}) {
    INFO(act);
    nn::TransformerEncoderLayer post(
        nn::TransformerEncoderLayerOptions(E, 2).dim_feedforward(12).dropout(0.0).activation(act));
    nn::TransformerEncoderLayer pre(nn::TransformerEncoderLayerOptions(E, 2)
                                        .dim_feedforward(12)
                                        .dropout(0.0)
                                        .activation(act)
                                        .norm_first(true));
    randomize(post, 2);
    randomize(pre, 3);
    auto ff = [&](nn::TransformerEncoderLayer& l, const Tensor& h) {
      Tensor a = l->linear1(h);
      a = std::string(act) == "gelu" ? gelu(a) : relu(a);
      return l->linear2(a);
    };
    Tensor h = post->norm1(x + attend(post->self_attn, x, x, mask, kpm));
    Tensor expect_post = post->norm2(h + ff(post, h));
    CHECK(close(post(x, mask, kpm), expect_post));
    Tensor g = x + attend(pre->self_attn, pre->norm1(x), pre->norm1(x), mask, kpm);
    Tensor expect_pre = g + ff(pre, pre->norm2(g));
    CHECK(close(pre(x, mask, kpm), expect_pre));
    CHECK_FALSE(close(pre(x, mask, kpm), post(x, mask, kpm), 1e-3));
  }
}

TEST_CASE("TransformerDecoderLayer: post-norm and pre-norm equal the submodules composed by hand") {
  const int64_t T = 4, S = 6, N = 2, E = 8;
  Tensor x = rnd({T, N, E}, 4), mem = rnd({S, N, E}, 5);
  Tensor tmask = ones({T, T}, kBool).triu(1);
  Tensor mkpm = zeros({N, S}, kBool);
  mkpm.index_put_({0, 5}, true);
  Tensor mmask = zeros({T, S}, kFloat64);
  mmask.index_put_({0, 0}, -2.0);
  nn::TransformerDecoderLayer post(
      nn::TransformerDecoderLayerOptions(E, 2).dim_feedforward(12).dropout(0.0));
  nn::TransformerDecoderLayer pre(
      nn::TransformerDecoderLayerOptions(E, 2).dim_feedforward(12).dropout(0.0).norm_first(true));
  randomize(post, 6);
  randomize(pre, 7);
  auto ff = [](nn::TransformerDecoderLayer& l, const Tensor& h) {
    return l->linear2(relu(l->linear1(h)));
  };
  Tensor h1 = post->norm1(x + attend(post->self_attn, x, x, tmask, Tensor()));
  Tensor h2 = post->norm2(h1 + attend(post->multihead_attn, h1, mem, mmask, mkpm));
  Tensor expect_post = post->norm3(h2 + ff(post, h2));
  CHECK(close(post(x, mem, tmask, mmask, Tensor(), mkpm), expect_post));
  Tensor n1 = pre->norm1(x);
  Tensor g1 = x + attend(pre->self_attn, n1, n1, tmask, Tensor());
  Tensor g2 = g1 + attend(pre->multihead_attn, pre->norm2(g1), mem, mmask, mkpm);
  Tensor expect_pre = g2 + ff(pre, pre->norm3(g2));
  CHECK(close(pre(x, mem, tmask, mmask, Tensor(), mkpm), expect_pre));
}

TEST_CASE("Transformer layers: a state_dict from PyTorch gives torch's outputs") {
  const StateDict golden = test::load_attention_golden();
  auto load = [&](auto& m, const std::string& prefix) {
    m->to(kFloat64);
    nn::LoadStateDictResult r = m->load_state_dict(test::golden_state(golden, prefix));
    CHECK(r.missing_keys.empty());
    CHECK(r.unexpected_keys.empty());
  };
  auto G = [&](const std::string& key) { return golden.at(key); };
  SECTION("encoder layer, post-norm relu, seq-first") {
    nn::TransformerEncoderLayer l(
        nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(16).dropout(0.0));
    load(l, "enc_post");
    CHECK(close(l(G("enc_post.src"), G("enc_post.src_mask"), G("enc_post.src_kpm"), true),
                G("enc_post.out"), 1e-11));
    CHECK(close(l(G("enc_post.src")), G("enc_post.out_plain"), 1e-11));
  }
  SECTION("encoder layer, pre-norm gelu, batch_first") {
    nn::TransformerEncoderLayer l(nn::TransformerEncoderLayerOptions(8, 2)
                                      .dim_feedforward(16)
                                      .dropout(0.0)
                                      .activation("gelu")
                                      .norm_first(true)
                                      .batch_first(true));
    load(l, "enc_pre");
    CHECK(close(l(G("enc_pre.src"), G("enc_pre.src_mask"), G("enc_pre.src_kpm"), true),
                G("enc_pre.out"), 1e-11));
    CHECK(close(l(G("enc_pre.src")), G("enc_pre.out_plain"), 1e-11));
  }
  SECTION("decoder layer, post-norm relu, seq-first") {
    nn::TransformerDecoderLayer l(
        nn::TransformerDecoderLayerOptions(8, 2).dim_feedforward(16).dropout(0.0));
    load(l, "dec_post");
    CHECK(close(l(G("dec_post.tgt"), G("dec_post.memory"), G("dec_post.tgt_mask"), Tensor(),
                  Tensor(), G("dec_post.mem_kpm"), true),
                G("dec_post.out"), 1e-11));
  }
  SECTION("decoder layer, pre-norm gelu, batch_first") {
    nn::TransformerDecoderLayer l(nn::TransformerDecoderLayerOptions(8, 2)
                                      .dim_feedforward(16)
                                      .dropout(0.0)
                                      .activation("gelu")
                                      .norm_first(true)
                                      .batch_first(true));
    load(l, "dec_pre");
    CHECK(close(l(G("dec_pre.tgt"), G("dec_pre.memory"), G("dec_pre.tgt_mask"), Tensor(), Tensor(),
                  G("dec_pre.mem_kpm"), true),
                G("dec_pre.out"), 1e-11));
  }
  SECTION("TransformerEncoder: 2 layers and a final LayerNorm") {
    nn::TransformerEncoderLayer proto(
        nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(16).dropout(0.0));
    nn::TransformerEncoder enc(proto, 2, nn::LayerNorm(std::vector<int64_t>{8}));
    CHECK(enc->state_dict().keys() == test::golden_state(golden, "enc_stack").keys());
    load(enc, "enc_stack");
    CHECK(close(enc(G("enc_stack.src"), G("enc_stack.mask")), G("enc_stack.out"), 1e-11));
  }
  SECTION("TransformerDecoder: 2 layers and a final LayerNorm") {
    nn::TransformerDecoderLayer proto(
        nn::TransformerDecoderLayerOptions(8, 2).dim_feedforward(16).dropout(0.0));
    nn::TransformerDecoder dec(proto, 2, nn::LayerNorm(std::vector<int64_t>{8}));
    CHECK(dec->state_dict().keys() == test::golden_state(golden, "dec_stack").keys());
    load(dec, "dec_stack");
    CHECK(close(dec(G("dec_stack.tgt"), G("dec_stack.memory"), G("dec_stack.tgt_mask")),
                G("dec_stack.out"), 1e-11));
  }
}

TEST_CASE("Transformer: PyTorch's names, xavier init, torch's outputs for its state_dict") {
  const StateDict golden = test::load_attention_golden();
  manual_seed(4);
  nn::Transformer tr(nn::TransformerOptions(8, 2)
                         .num_encoder_layers(2)
                         .num_decoder_layers(1)
                         .dim_feedforward(16)
                         .dropout(0.0));
  CHECK(tr->state_dict().keys() == test::golden_state(golden, "transformer").keys());
  // Every matrix re-drawn with xavier_uniform_: linear1.weight (16, 8) has bound sqrt(6 / 24).
  for (const auto& [name, p] : tr->named_parameters()) {
    if (p.dim() < 2) continue;
    INFO(name);
    const double bound = std::sqrt(6.0 / static_cast<double>(p.size(0) + p.size(1)));
    CHECK(values(p.abs().amax())[0] <= bound);
  }
  CHECK_FALSE(test::bitwise_equal(
      tr->encoder->layers->at<nn::TransformerEncoderLayerImpl>(0)->linear1->weight,
      tr->encoder->layers->at<nn::TransformerEncoderLayerImpl>(1)->linear1->weight));
  tr->to(kFloat64);
  nn::LoadStateDictResult r = tr->load_state_dict(test::golden_state(golden, "transformer"));
  CHECK(r.missing_keys.empty());
  const Tensor& kpm = golden.at("transformer.src_kpm");
  Tensor y = tr(golden.at("transformer.src"), golden.at("transformer.tgt"), Tensor(),
                golden.at("transformer.tgt_mask"), Tensor(), kpm, Tensor(), kpm);
  CHECK(close(y, golden.at("transformer.out"), 1e-11));
  EMBER_CHECK_THROWS(tr(rnd({5, 2, 8}, 1), rnd({4, 3, 8}, 2)), ShapeError, "[Transformer]",
                     "(5, 2, 8)", "(4, 3, 8)");
  EMBER_CHECK_THROWS(tr(rnd({5, 2, 6}, 1), rnd({4, 2, 6}, 2)), ShapeError, "[Transformer]",
                     "d_model=8");
}

TEST_CASE("TransformerEncoder: layers are independent copies of the prototype") {
  manual_seed(9);
  nn::TransformerEncoderLayer proto(nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(16));
  nn::TransformerEncoder enc(proto, 3);
  CHECK(enc->layers->size() == 3);
  CHECK_FALSE(enc->named_parameters().contains("norm.weight"));
  auto layer = [&](size_t i) { return enc->layers->at<nn::TransformerEncoderLayerImpl>(i); };
  // Same initial values as the prototype (PyTorch deep-copies it), separate storage.
  for (size_t i = 0; i < 3; ++i) {
    CHECK(
        test::bitwise_equal(layer(i)->self_attn->in_proj_weight, proto->self_attn->in_proj_weight));
    CHECK_FALSE(layer(i)->linear1->weight.is_alias_of(proto->linear1->weight));
  }
  {
    NoGradGuard no_grad;
    layer(0)->linear1->weight.fill_(0.25);
  }
  CHECK_FALSE(test::bitwise_equal(layer(1)->linear1->weight, layer(0)->linear1->weight));
  CHECK(enc->named_parameters().contains("layers.2.norm2.bias"));
}

TEST_CASE("Transformer layers: batch_first equals seq-first, unbatched equals a batch of one") {
  nn::TransformerEncoderLayer seq(
      nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(12).dropout(0.0));
  nn::TransformerEncoderLayer bf(
      nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(12).dropout(0.0).batch_first(true));
  randomize(seq, 10);
  randomize(bf, 11);
  bf->load_state_dict(seq->state_dict());
  Tensor x = rnd({2, 5, 8}, 12);  // (N, L, E)
  CHECK(close(bf(x), seq(x.transpose(0, 1)).transpose(0, 1), 1e-13));
  CHECK(close(seq(x.select(0, 1)), seq(x.select(0, 1).unsqueeze(1)).squeeze(1), 0.0));
}

TEST_CASE("Transformer layers: dropout in training only, eval is deterministic") {
  nn::TransformerEncoderLayer l(
      nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(12).dropout(0.3));
  randomize(l, 13);
  Tensor x = rnd({4, 2, 8}, 14);
  Tensor a = l(x), b = l(x);
  CHECK_FALSE(test::bitwise_equal(a, b));
  manual_seed(21);
  Tensor c = l(x);
  manual_seed(21);
  CHECK(test::bitwise_equal(l(x), c));
  l->eval();
  CHECK_FALSE(l->self_attn->is_training());
  Tensor e1 = l(x), e2 = l(x);
  CHECK(test::bitwise_equal(e1, e2));
  // In eval mode the layer equals a copy built with dropout 0.
  nn::TransformerEncoderLayer l0(
      nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(12).dropout(0.0));
  l0->to(kFloat64);
  l0->load_state_dict(l->state_dict());
  CHECK(close(l0(x), e1, 0.0));
}

TEST_CASE("Transformer layers: float64 gradcheck w.r.t. the inputs (dropout 0)") {
  Tensor mask = ones({3, 3}, kBool).triu(1);
  Tensor kpm = zeros({2, 3}, kBool);
  kpm.index_put_({1, 2}, true);
  for (bool norm_first : {false, true}) {
    INFO("norm_first " << norm_first);
    nn::TransformerEncoderLayer enc(nn::TransformerEncoderLayerOptions(4, 2)
                                        .dim_feedforward(6)
                                        .dropout(0.0)
                                        .activation("gelu")
                                        .norm_first(norm_first));
    randomize(enc, 15);
    CHECK(test::gradcheck([&](const std::vector<Tensor>& x) { return enc(x[0], mask, kpm); },
                          {grad_input({3, 2, 4})}));
    nn::TransformerDecoderLayer dec(
        nn::TransformerDecoderLayerOptions(4, 2).dim_feedforward(6).dropout(0.0).norm_first(
            norm_first));
    randomize(dec, 16);
    CHECK(test::gradcheck(
        [&](const std::vector<Tensor>& x) {
          return dec(x[0], x[1], mask, Tensor(), Tensor(), kpm);
        },
        {grad_input({3, 2, 4}), grad_input({3, 2, 4}, -1.0, 1.0, 77)}));
  }
}

TEST_CASE("generate_square_subsequent_mask and errors") {
  Tensor m = nn::generate_square_subsequent_mask(3, kFloat64);
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(values(m) == std::vector<double>{0, -inf, -inf, 0, 0, -inf, 0, 0, 0});
  // The float causal mask and the bool one give the same layer output.
  nn::TransformerEncoderLayer l(
      nn::TransformerEncoderLayerOptions(4, 2).dim_feedforward(6).dropout(0.0));
  randomize(l, 17);
  Tensor x = rnd({3, 2, 4}, 18);
  CHECK(close(l(x, m, Tensor(), true), l(x, ones({3, 3}, kBool).triu(1), Tensor(), true)));
  EMBER_CHECK_THROWS(l(x, Tensor(), Tensor(), true), ValueError, "is_causal");
  EMBER_CHECK_THROWS(
      nn::TransformerEncoderLayer(nn::TransformerEncoderLayerOptions(8, 2).activation("tanh")),
      ValueError, "[TransformerEncoderLayer]", "tanh");
  EMBER_CHECK_THROWS(nn::TransformerDecoderLayer(6, 4), ValueError, "[MultiheadAttention]",
                     "embed_dim=6", "num_heads=4");
  EMBER_CHECK_THROWS(l(rnd({3, 2, 5}, 19)), ShapeError, "[MultiheadAttention]", "(3, 2, 5)");
  EMBER_CHECK_THROWS(nn::TransformerEncoder(l, 0), ValueError, "[TransformerEncoder]",
                     "num_layers=0");
}
