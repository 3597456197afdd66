// The module system: registration, PyTorch-identical dotted names, traversal, modes, conversion,
// state_dict round trips and load errors, printing, holders and containers; Linear, Embedding,
// Flatten and the activation modules; the init functions.
#include <cmath>
#include <sstream>

#include "ember/nn.hpp"
#include "gradcheck.hpp"

using namespace ember;
namespace init = ember::nn::init;

namespace {

// A model mirroring a PyTorch structure: nested Sequential and a ModuleList.
struct BlockImpl : nn::Module {
  BlockImpl(int64_t in, int64_t out) {
    fc1 = register_module("fc1", nn::Linear(in, out));
    fc2 = register_module("fc2", nn::Linear(out, out, /*bias=*/false));
    scale = register_buffer("scale", ones({out}));
    scratch = register_buffer("scratch", zeros({2}), /*persistent=*/false);
  }
  Tensor forward(const Tensor& x) { return fc2(relu(fc1(x))) * scale; }
  nn::Linear fc1{nullptr}, fc2{nullptr};
  Tensor scale, scratch;
};
EMBER_MODULE(Block);

struct NetImpl : nn::Module {
  NetImpl() {
    layer1 = register_module("layer1", nn::Sequential(Block(4, 8), Block(8, 8)));
    heads = register_module("heads", nn::ModuleList(nn::Linear(8, 3), nn::Linear(8, 2)));
  }
  Tensor forward(const Tensor& x) {
    Tensor h = layer1(x);
    return heads->at<nn::LinearImpl>(0)->forward(h);
  }
  nn::Sequential layer1{nullptr};
  nn::ModuleList heads{nullptr};
};
EMBER_MODULE(Net);

std::vector<std::string> keys(const StateDict& d) { return d.keys(); }

}  // namespace

TEST_CASE("module: dotted names follow PyTorch's for the same structure") {
  Net net;
  const std::vector<std::string> expected = {
      "layer1.0.fc1.weight", "layer1.0.fc1.bias",   "layer1.0.fc2.weight", "layer1.1.fc1.weight",
      "layer1.1.fc1.bias",   "layer1.1.fc2.weight", "heads.0.weight",      "heads.0.bias",
      "heads.1.weight",      "heads.1.bias"};
  CHECK(keys(net->named_parameters()) == expected);
  CHECK(net->parameters().size() == expected.size());
  CHECK(keys(net->named_buffers()) == std::vector<std::string>{"layer1.0.scale", "layer1.0.scratch",
                                                               "layer1.1.scale",
                                                               "layer1.1.scratch"});
  // state_dict: per module its parameters then its persistent buffers (PyTorch's order);
  // non-persistent buffers excluded.
  StateDict sd = net->state_dict();
  CHECK(sd.size() == expected.size() + 2);
  CHECK(sd.contains("layer1.0.scale"));
  CHECK(!sd.contains("layer1.0.scratch"));
  CHECK(net->num_parameters() == (4 * 8 + 8 + 64) + (64 + 8 + 64) + (24 + 3) + (16 + 2));
  CHECK(net->children().size() == 2);
  auto mods = net->named_modules();
  REQUIRE(mods.size() == 1 + 1 + 2 + 4 + 1 + 2);
  CHECK(mods[0].first.empty());
  CHECK(mods[1].first == "layer1");
  CHECK(mods[2].first == "layer1.0");
  CHECK(mods[3].first == "layer1.0.fc1");
  CHECK(mods[0].second->name() == "Net");
  CHECK(mods[3].second->name() == "Linear");
}

TEST_CASE("module: registered tensors are the members (shared handles)") {
  Block b(3, 2);
  Tensor w = b->named_parameters().at("fc1.weight");
  CHECK(w.is_same(b->fc1->weight));
  CHECK(w.requires_grad());
  CHECK(!b->scale.requires_grad());
  // Registration errors.
  EMBER_CHECK_THROWS(b->register_parameter("fc1", zeros({1})), ValueError, "[Block]", "'fc1'",
                     "already registered");
  EMBER_CHECK_THROWS(b->register_buffer("a.b", zeros({1})), ValueError, "contains a dot");
  EMBER_CHECK_THROWS(b->register_parameter("ints", zeros({2}, kInt64)), DTypeError, "int64");
  nn::Linear empty_handle{nullptr};
  CHECK(empty_handle.is_empty());
  EMBER_CHECK_THROWS(empty_handle->forward(zeros({1, 1})), ValueError, "empty");
}

TEST_CASE("module: train and eval reach every submodule") {
  Net net;
  CHECK(net->is_training());
  net->eval();
  for (auto& m : net->modules()) CHECK(!m->is_training());
  net->train();
  for (auto& m : net->modules()) CHECK(m->is_training());
  int count = 0;
  net->apply([&](nn::Module&) { ++count; });
  CHECK(count == static_cast<int>(net->modules().size()));
}

TEST_CASE("module: to(dtype) converts floating tensors in place, keeping member handles") {
  Block b(3, 2);
  Tensor w = b->fc1->weight;
  Tensor before = w.clone();
  b->to(kFloat64);
  CHECK(b->fc1->weight.dtype() == kFloat64);
  CHECK(w.dtype() == kFloat64);  // the same tensor object
  CHECK(w.requires_grad());
  CHECK(b->scale.dtype() == kFloat64);
  CHECK(allclose(w, before.to(kFloat64)));
  Tensor y = b(ones({5, 3}, kFloat64));
  CHECK(y.dtype() == kFloat64);
  y.sum().backward();
  CHECK(w.grad().defined());
  CHECK(w.grad().dtype() == kFloat64);
  // Gradients convert with their parameters.
  Tensor g64 = w.grad().clone();
  b->to(kFloat32);
  REQUIRE(w.grad().defined());
  CHECK(w.grad().dtype() == kFloat32);
  CHECK(equal(w.grad(), g64.to(kFloat32)));
}

TEST_CASE("module: zero_grad clears or zeroes gradients") {
  nn::Linear fc(3, 2);
  fc(ones({4, 3})).sum().backward();
  REQUIRE(fc->weight.grad().defined());
  fc->zero_grad(/*set_to_none=*/false);
  REQUIRE(fc->weight.grad().defined());
  CHECK(fc->weight.grad().abs().sum().item<double>() == 0.0);
  fc->zero_grad();
  CHECK(!fc->weight.grad().defined());
}

TEST_CASE("module: state_dict round trip and strict load errors") {
  manual_seed(1);
  Net a;
  manual_seed(2);
  Net b;
  CHECK(!equal(a->layer1->at<BlockImpl>(0)->fc1->weight, b->layer1->at<BlockImpl>(0)->fc1->weight));
  b->load_state_dict(a->state_dict());
  for (const auto& [k, v] : a->state_dict()) CHECK(equal(v, b->state_dict().at(k)));
  // The state dict's tensors are detached views of the module's storage.
  CHECK(!a->state_dict().at("heads.0.weight").requires_grad());

  // Missing, unexpected and mis-shaped keys are all listed; nothing changes on error.
  StateDict bad = a->state_dict();
  bad.erase("heads.1.bias");
  bad.insert("heads.2.weight", zeros({1}));
  Tensor before = b->state_dict().at("heads.0.weight").clone();
  bad.insert("heads.0.weight", zeros({3, 9}));
  EMBER_CHECK_THROWS(b->load_state_dict(bad), ValueError, "missing keys: heads.1.bias",
                     "unexpected keys: heads.2.weight",
                     "heads.0.weight: checkpoint (3, 9) vs model (3, 8)");
  CHECK(equal(b->state_dict().at("heads.0.weight"), before));
  // Shape mismatches raise even when not strict; key problems are reported instead.
  EMBER_CHECK_THROWS(b->load_state_dict(bad, /*strict=*/false), ShapeError, "heads.0.weight");
  bad.insert("heads.0.weight", zeros({3, 8}));
  nn::LoadStateDictResult r = b->load_state_dict(bad, /*strict=*/false);
  CHECK(r.missing_keys == std::vector<std::string>{"heads.1.bias"});
  CHECK(r.unexpected_keys == std::vector<std::string>{"heads.2.weight"});
  CHECK(b->state_dict().at("heads.0.weight").abs().sum().item<double>() == 0.0);
  // Values convert to the module's dtype (a float64 file into a float32 model).
  StateDict f64;
  for (const auto& [k, v] : a->state_dict()) f64.insert(k, v.to(kFloat64) + 1.0);
  b->load_state_dict(f64);
  CHECK(b->state_dict().at("heads.0.weight").dtype() == kFloat32);
  CHECK(allclose(b->state_dict().at("heads.0.weight"), a->state_dict().at("heads.0.weight") + 1.0));
}

TEST_CASE("module: printing shows the tree with parameter counts") {
  nn::Sequential seq(nn::Linear(784, 64), nn::ReLU(), nn::Linear(64, 10));
  std::ostringstream os;
  os << seq;
  const std::string expected =
      "Sequential(  # 50,890 parameters\n"
      "  (0): Linear(in_features=784, out_features=64, bias=true)  # 50,240 parameters\n"
      "  (1): ReLU()\n"
      "  (2): Linear(in_features=64, out_features=10, bias=true)  # 650 parameters\n"
      ")";
  CHECK(os.str() == expected);
  Net net;
  std::ostringstream os2;
  os2 << *net;
  CHECK(os2.str().find("  (layer1): Sequential(") != std::string::npos);
  CHECK(os2.str().find("    (0): Block(") != std::string::npos);
  CHECK(os2.str().find("      (fc2): Linear(in_features=4, out_features=8, bias=false)") ==
        std::string::npos);
  CHECK(os2.str().find("      (fc2): Linear(in_features=8, out_features=8, bias=false)") !=
        std::string::npos);
}

TEST_CASE("module: containers") {
  nn::Sequential seq;
  seq->push_back(nn::Linear(2, 3));
  seq->push_back("act", [](const Tensor& x) { return tanh(x); });
  seq->push_back(nn::Linear(3, 1));
  CHECK(seq->size() == 3);
  CHECK(keys(seq->named_parameters()) ==
        std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  Tensor x = randn({4, 2});
  auto l0 = seq->at<nn::LinearImpl>(0);
  auto l2 = seq->at<nn::LinearImpl>(2);
  CHECK(allclose(seq(x), l2->forward(tanh(l0->forward(x)))));
  EMBER_CHECK_THROWS(seq->at<nn::LinearImpl>(1), ValueError, "[Sequential]", "Functional");
  EMBER_CHECK_THROWS((*seq)[7], IndexError, "[Sequential]", "7");

  nn::ModuleDict dict;
  dict->insert("enc", nn::Linear(2, 2));
  dict->insert("dec", nn::Linear(2, 5));
  CHECK(dict->contains("dec"));
  CHECK(dict->at<nn::LinearImpl>("dec")->out_features == 5);
  CHECK(keys(dict->named_parameters())[2] == "dec.weight");
  EMBER_CHECK_THROWS((*dict)["nope"], IndexError, "'nope'");
  // replace_module swaps a head.
  Net net;
  net->replace_module("heads", nn::ModuleList(nn::Linear(8, 7)));
  CHECK(net->named_parameters().contains("heads.0.weight"));
  CHECK(!net->named_parameters().contains("heads.1.weight"));
}

TEST_CASE("module: replace_module updates a container's own forward and list") {
  // Sequential and ModuleList keep their own handles on their children; replace_module must
  // update them, and the old module may be freed while the container lives.
  manual_seed(5);
  nn::Sequential seq(nn::Linear(3, 4), nn::Tanh(), nn::Linear(4, 2));
  std::weak_ptr<nn::Module> old = (*seq)[2];
  auto head = seq->replace_module("2", nn::Linear(4, 5));
  CHECK(old.expired());
  const Tensor x = randn({2, 3});
  Tensor y = seq(x);
  CHECK(y.sizes() == std::vector<int64_t>{2, 5});
  CHECK(test::bitwise_equal(y, head(tanh(seq->at<nn::LinearImpl>(0)->forward(x)))));
  CHECK(seq->at<nn::LinearImpl>(2) == head.ptr());
  // A module whose forward does not take one Tensor is refused; nothing changes.
  EMBER_CHECK_THROWS(seq->replace_module("1", nn::ModuleList(nn::Linear(4, 4))), ValueError,
                     "[Sequential]", "stage 1", "one Tensor");
  CHECK(seq->at<nn::TanhImpl>(1) != nullptr);
  CHECK(test::bitwise_equal(seq(x), y));
  EMBER_CHECK_THROWS(seq->replace_module("9", nn::Tanh()), ValueError, "no submodule '9'");

  nn::ModuleList list(nn::Linear(2, 2), nn::Linear(2, 3));
  auto second = list->replace_module("1", nn::Linear(2, 7));
  CHECK(list->at<nn::LinearImpl>(1) == second.ptr());
  CHECK(*list->begin() == (*list)[0]);
  CHECK(list->named_parameters().contains("1.weight"));
}

TEST_CASE("module: tied parameters are listed once") {
  struct TiedImpl : nn::Module {
    TiedImpl() {
      emb = register_module("emb", nn::Embedding(5, 3));
      head = register_module("head", nn::Linear(3, 5, false));
      head->weight.set_data(emb->weight);  // not tying: separate tensors sharing storage
    }
    nn::Embedding emb{nullptr};
    nn::Linear head{nullptr};
  };
  auto tied = std::make_shared<TiedImpl>();
  CHECK(tied->parameters().size() == 2);  // separate tensor objects
  // Registering the same tensor under two modules: one parameter.
  struct SharedImpl : nn::Module {
    SharedImpl() {
      a = register_module("a", nn::Linear(2, 2));
      w = register_parameter("w", a->weight);
    }
    nn::Linear a{nullptr};
    Tensor w;
  };
  auto shared = std::make_shared<SharedImpl>();
  CHECK(shared->parameters().size() == 3 - 1);
  CHECK(shared->state_dict().size() == 3);  // state_dict keeps both names, as PyTorch
}

// ---- layers ----

TEST_CASE("Linear: forward matches x W^T + b, and default init bounds are PyTorch's") {
  manual_seed(0);
  nn::Linear fc(5, 3);
  Tensor x = randn({2, 4, 5});
  Tensor ref = matmul(x, fc->weight.t()) + fc->bias;
  CHECK(allclose(fc(x), ref, 1e-5, 1e-6));
  nn::Linear big(400, 300);
  const double bound = 1.0 / std::sqrt(400.0);
  CHECK(big->weight.abs().max().item<double>() <= bound);
  CHECK(big->weight.abs().max().item<double>() > 0.99 * bound);
  // U(-b, b) has std b / sqrt(3).
  CHECK(std::abs(big->weight.std().item<double>() - bound / std::sqrt(3.0)) < 0.01 * bound);
  CHECK(big->bias.abs().max().item<double>() <= bound);
  EMBER_CHECK_THROWS(fc(zeros({2, 4})), ShapeError, "[Linear]", "(2, 4)", "(*, 5)");
  nn::Linear nobias(nn::LinearOptions(3, 2).bias(false));
  CHECK(!nobias->bias.defined());
  CHECK(nobias->parameters().size() == 1);
}

TEST_CASE("Linear: gradcheck through a float64 module") {
  nn::Linear fc(4, 3);
  fc->to(kFloat64);
  Tensor x = test::grad_input({2, 4});
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor w = fc->weight, b = fc->bias;
    return linear(in[0], in[1], in[2]);
  };
  CHECK(test::gradcheck(fn, {x, fc->weight, fc->bias}));
  CHECK(test::gradgradcheck(fn, {x, fc->weight, fc->bias}));
  // And through the module itself, w.r.t. the input.
  CHECK(test::gradcheck([&](const std::vector<Tensor>& in) { return fc(in[0]); }, {x}));
}

TEST_CASE("Embedding: lookup, padding_idx row zero and without gradient") {
  manual_seed(3);
  nn::Embedding emb(6, 4, /*padding_idx=*/-1);
  CHECK(*emb->padding_idx == 5);
  CHECK(emb->weight.select(0, 5).abs().sum().item<double>() == 0.0);
  Tensor idx = tensor({{0, 5}, {2, 2}});
  Tensor y = emb(idx);
  CHECK(y.sizes() == IntArrayRef({2, 2, 4}));
  CHECK(equal(y.select(0, 1).select(0, 0), emb->weight.select(0, 2)));
  y.sum().backward();
  CHECK(emb->weight.grad().select(0, 5).abs().sum().item<double>() == 0.0);
  CHECK(emb->weight.grad().select(0, 2).sum().item<double>() == 8.0);
  // N(0, 1) init.
  nn::Embedding big(1000, 100);
  CHECK(std::abs(big->weight.mean().item<double>()) < 0.01);
  CHECK(std::abs(big->weight.std().item<double>() - 1.0) < 0.01);
  auto pre = nn::EmbeddingImpl::from_pretrained(eye(3));
  CHECK(!pre->weight.requires_grad());
  CHECK(equal(pre->forward(tensor({1})), eye(3).narrow(0, 1, 1)));
  EMBER_CHECK_THROWS(nn::Embedding(3, 2, 3), IndexError, "[Embedding]", "padding_idx 3");
}

TEST_CASE("activation modules forward to the ops") {
  Tensor x = randn({3, 4});
  CHECK(equal(nn::ReLU()(x), relu(x)));
  CHECK(equal(nn::LeakyReLU(0.2)(x), leaky_relu(x, 0.2)));
  CHECK(equal(nn::GELU("tanh")(x), gelu(x, "tanh")));
  CHECK(equal(nn::SiLU()(x), silu(x)));
  CHECK(equal(nn::Tanh()(x), tanh(x)));
  CHECK(equal(nn::Sigmoid()(x), sigmoid(x)));
  CHECK(equal(nn::Softmax(1)(x), softmax(x, 1)));
  CHECK(equal(nn::LogSoftmax(0)(x), log_softmax(x, 0)));
  CHECK(equal(nn::Flatten()(zeros({2, 3, 4})), zeros({2, 12})));
  CHECK(nn::Unflatten(1, std::vector<int64_t>{3, 4})(zeros({2, 12})).sizes() ==
        IntArrayRef({2, 3, 4}));
  CHECK(equal(nn::Identity()(x), x));
  EMBER_CHECK_THROWS(nn::GELU("fast"), ValueError, "[GELU]", "'fast'");
}

// ---- init ----

TEST_CASE("init: gains and fans follow torch.nn.init") {
  CHECK(init::calculate_gain("relu") == Approx(std::sqrt(2.0)));
  CHECK(init::calculate_gain("tanh") == Approx(5.0 / 3.0));
  CHECK(init::calculate_gain("leaky_relu", std::sqrt(5.0)) == Approx(std::sqrt(1.0 / 3.0)));
  CHECK(init::calculate_gain("conv2d") == 1.0);
  auto [fi, fo] = init::calculate_fan_in_and_fan_out(empty({16, 3, 5, 5}));
  CHECK(fi == 75);
  CHECK(fo == 400);
  EMBER_CHECK_THROWS(init::calculate_fan_in_and_fan_out(empty({5})), ShapeError, "(5,)");
  EMBER_CHECK_THROWS(init::calculate_gain("swish"), ValueError, "'swish'");
}

TEST_CASE("init: distributions have the documented bounds and moments") {
  manual_seed(7);
  Tensor w = empty({256, 512});
  init::kaiming_uniform_(w, 0.0, "fan_in", "relu");
  const double kb = std::sqrt(2.0) * std::sqrt(3.0 / 512.0);
  CHECK(w.abs().max().item<double>() <= kb);
  CHECK(w.std().item<double>() == Approx(kb / std::sqrt(3.0)).epsilon(0.01));
  init::kaiming_normal_(w, 0.0, "fan_out", "relu");
  CHECK(w.std().item<double>() == Approx(std::sqrt(2.0 / 256.0)).epsilon(0.01));
  init::xavier_uniform_(w, 2.0);
  const double xb = 2.0 * std::sqrt(6.0 / 768.0);
  CHECK(w.abs().max().item<double>() <= xb);
  CHECK(w.std().item<double>() == Approx(xb / std::sqrt(3.0)).epsilon(0.01));
  init::xavier_normal_(w);
  CHECK(w.std().item<double>() == Approx(std::sqrt(2.0 / 768.0)).epsilon(0.01));
  init::normal_(w, 3.0, 0.5);
  CHECK(w.mean().item<double>() == Approx(3.0).epsilon(0.002));
  init::uniform_(w, -1.0, 3.0);
  CHECK(w.min().item<double>() >= -1.0);
  CHECK(w.max().item<double>() < 3.0);
  init::constant_(w, 0.25);
  CHECK(w.min().item<double>() == 0.25);
  init::zeros_(w);
  CHECK(w.abs().max().item<double>() == 0.0);
  init::ones_(w);
  CHECK(w.min().item<double>() == 1.0);
  Tensor sq = empty({3, 4});
  init::eye_(sq);
  CHECK(equal(sq, eye(3, 4)));
  EMBER_CHECK_THROWS(init::kaiming_uniform_(w, 0.0, "fan_avg"), ValueError, "'fan_avg'");
}

TEST_CASE("init: trunc_normal_ stays in bounds with the truncated moments") {
  manual_seed(11);
  Tensor t = empty({200000}, kFloat64);
  init::trunc_normal_(t, 0.0, 1.0, -2.0, 2.0);
  CHECK(t.min().item<double>() >= -2.0);
  CHECK(t.max().item<double>() <= 2.0);
  // Standard normal truncated to [-2, 2]: variance 1 - 2 * 2 phi(2) / (2 Phi(2) - 1) = 0.7737.
  CHECK(std::abs(t.mean().item<double>()) < 0.01);
  CHECK(t.var().item<double>() == Approx(0.77371).epsilon(0.01));
  // A one-sided window far in the tail still lands inside it.
  init::trunc_normal_(t, 0.0, 1.0, 3.0, 4.0);
  CHECK(t.min().item<double>() >= 3.0);
  CHECK(t.max().item<double>() <= 4.0);
  Tensor f = empty({1000});
  init::trunc_normal_(f, 1.0, 0.02, 0.96, 1.04);
  CHECK(f.min().item<double>() >= 0.96f);
  EMBER_CHECK_THROWS(init::trunc_normal_(f, 0.0, 1.0, 2.0, 1.0), ValueError, "[trunc_normal_]");
}

TEST_CASE("init: orthogonal_ gives orthonormal rows or columns") {
  manual_seed(5);
  for (auto shape : std::vector<std::vector<int64_t>>{{6, 4}, {4, 6}, {5, 5}, {3, 2, 2}}) {
    Tensor w = empty(shape, kFloat64);
    init::orthogonal_(w, 2.0);
    Tensor m = w.reshape({shape[0], -1}) / 2.0;
    Tensor g = m.size(0) >= m.size(1) ? matmul(m.t(), m) : matmul(m, m.t());
    INFO("shape " << IntArrayRef(shape));
    CHECK(allclose(g, eye(g.size(0), kFloat64), 1e-10, 1e-10));
  }
}

// ---- training: an MLP learns a synthetic task ----

TEST_CASE("module: a small MLP trains with decreasing loss") {
  manual_seed(0);
  // y = sin(3 x0) + x1^2: a smooth nonlinear target.
  Tensor x = rand({256, 2}) * 2.0 - 1.0;
  Tensor y = (sin(x.select(1, 0) * 3.0) + x.select(1, 1).square()).unsqueeze(1);
  nn::Sequential mlp(nn::Linear(2, 32), nn::Tanh(), nn::Linear(32, 32), nn::Tanh(),
                     nn::Linear(32, 1));
  auto loss_of = [&] { return (mlp(x) - y).square().mean(); };
  const double first = loss_of().item<double>();
  double last = first;
  for (int step = 0; step < 300; ++step) {
    mlp->zero_grad();
    Tensor loss = loss_of();
    loss.backward();
    NoGradGuard no_grad;
    for (Tensor& p : mlp->parameters()) p.sub_(p.grad(), 0.1);
    last = loss.item<double>();
  }
  INFO("first " << first << " last " << last);
  CHECK(last < 0.1 * first);
}

// ---- the model idiom of docs/nn.md, verbatim ----

namespace {
namespace nn = ember::nn;
struct DocNetImpl : nn::Module {
  DocNetImpl(int64_t hidden) {
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(1, 16, 3).padding(1)));
    bn1 = register_module("bn1", nn::BatchNorm2d(16));
    fc = register_module("fc", nn::Linear(16 * 14 * 14, hidden));
    head = register_module("head", nn::Linear(hidden, 10));
  }
  Tensor forward(const Tensor& x) {                                 // x (N, 1, 28, 28)
    Tensor h = ember::max_pool2d(ember::relu(bn1(conv1(x))), {2});  // (N, 16, 14, 14)
    return head(ember::relu(fc(h.flatten(1))));                     // (N, 10)
  }
  nn::Conv2d conv1{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  nn::Linear fc{nullptr}, head{nullptr};
};
EMBER_MODULE(DocNet);
}  // namespace

TEST_CASE("module: the docs/nn.md idiom builds, runs and names its state like PyTorch") {
  DocNet net(32);
  Tensor logits = net(randn({2, 1, 28, 28}));
  CHECK(logits.sizes() == IntArrayRef({2, 10}));
  CHECK(net->state_dict().keys() ==
        std::vector<std::string>{"conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias",
                                 "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
                                 "fc.weight", "fc.bias", "head.weight", "head.bias"});
}
