// The example ResNets (examples/resnet/models.hpp): parameter counts and state_dict keys equal to
// torchvision's (resnet18/34/50) and to He et al.'s CIFAR nets with projection shortcuts; forward
// shapes, gradients for every parameter, torchvision's initialisation, make_model, replace_head,
// freeze_backbone and the errors. The reference numbers come from the torchvision structure
// rebuilt in PyTorch: resnet18 11,689,512 parameters / 122 state_dict entries, resnet34
// 21,797,672 / 218, resnet50 25,557,032 / 320, resnet20 272,474 / 128.
//
// Needs examples/resnet/models.cpp and the include dir examples/ in the test target.
#include <cmath>
#include <string>
#include <vector>

#include "resnet/models.hpp"
#include "test_util.hpp"

using namespace ember;
namespace resnet = ember_examples::resnet;
namespace F = ember::nn::functional;

namespace {

std::vector<std::string> keys_of(const nn::Module& m) {
  std::vector<std::string> keys;
  for (const auto& it : m.state_dict()) keys.push_back(it.first);
  return keys;
}

void add_bn(std::vector<std::string>& keys, const std::string& p) {
  for (const char* s : {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"})
    keys.push_back(p + "." + s);
}

/// torchvision's resnet18 state_dict keys, in order, spelled out from its structure.
std::vector<std::string> torchvision_resnet18_keys() {
  std::vector<std::string> keys = {"conv1.weight"};
  add_bn(keys, "bn1");
  for (int layer = 1; layer <= 4; ++layer) {
    for (int block = 0; block < 2; ++block) {
      const std::string p = "layer" + std::to_string(layer) + "." + std::to_string(block);
      keys.push_back(p + ".conv1.weight");
      add_bn(keys, p + ".bn1");
      keys.push_back(p + ".conv2.weight");
      add_bn(keys, p + ".bn2");
      if (layer > 1 && block == 0) {
        keys.push_back(p + ".downsample.0.weight");
        add_bn(keys, p + ".downsample.1");
      }
    }
  }
  keys.push_back("fc.weight");
  keys.push_back("fc.bias");
  return keys;
}

/// Two labelled images for a loss.
Tensor labels2() { return tensor(std::vector<int64_t>{1, 3}); }

}  // namespace

TEST_CASE("resnet models: parameter counts are torchvision's and the paper's") {
  manual_seed(0);
  CHECK(resnet::resnet20()->num_parameters() == 272474);
  CHECK(resnet::resnet20(10, 1)->num_parameters() == 272186);
  CHECK(resnet::resnet32()->num_parameters() == 466906);
  CHECK(resnet::resnet56()->num_parameters() == 855770);
  CHECK(resnet::resnet110()->num_parameters() == 1730714);
  CHECK(resnet::resnet18()->num_parameters() == 11689512);
  CHECK(resnet::resnet34()->num_parameters() == 21797672);
  CHECK(resnet::resnet50()->num_parameters() == 25557032);
  // small_input swaps the 7x7 stem (64*3*49) for a 3x3 one (64*3*9).
  CHECK(resnet::resnet18(10, 3, true)->num_parameters() == 11173962);
}

TEST_CASE("resnet models: resnet18's state_dict keys are torchvision's, in order") {
  manual_seed(0);
  resnet::ResNet net = resnet::resnet18();
  const std::vector<std::string> keys = keys_of(*net);
  REQUIRE(keys.size() == 122);
  const std::vector<std::string> first = {"conv1.weight",
                                          "bn1.weight",
                                          "bn1.bias",
                                          "bn1.running_mean",
                                          "bn1.running_var",
                                          "bn1.num_batches_tracked",
                                          "layer1.0.conv1.weight",
                                          "layer1.0.bn1.weight",
                                          "layer1.0.bn1.bias",
                                          "layer1.0.bn1.running_mean",
                                          "layer1.0.bn1.running_var",
                                          "layer1.0.bn1.num_batches_tracked"};
  const std::vector<std::string> last = {"layer4.1.bn2.bias",
                                         "layer4.1.bn2.running_mean",
                                         "layer4.1.bn2.running_var",
                                         "layer4.1.bn2.num_batches_tracked",
                                         "fc.weight",
                                         "fc.bias"};
  CHECK(std::vector<std::string>(keys.begin(), keys.begin() + 12) == first);
  CHECK(std::vector<std::string>(keys.end() - 6, keys.end()) == last);
  CHECK(keys == torchvision_resnet18_keys());

  int64_t tracked = 0;
  for (const std::string& k : keys) tracked += k.ends_with("num_batches_tracked") ? 1 : 0;
  CHECK(tracked == 20);

  ember::StateDict sd = net->state_dict();
  CHECK(sd.at("conv1.weight").sizes() == std::vector<int64_t>{64, 3, 7, 7});
  CHECK(sd.at("layer2.0.downsample.0.weight").sizes() == std::vector<int64_t>{128, 64, 1, 1});
  CHECK(sd.at("layer4.1.conv2.weight").sizes() == std::vector<int64_t>{512, 512, 3, 3});
  CHECK(sd.at("fc.weight").sizes() == std::vector<int64_t>{1000, 512});
  CHECK(sd.at("bn1.num_batches_tracked").dtype() == kInt64);

  // A state_dict with these keys loads strictly into a fresh model.
  resnet::ResNet other = resnet::resnet18();
  nn::LoadStateDictResult r = other->load_state_dict(sd);
  CHECK(r.missing_keys.empty());
  CHECK(r.unexpected_keys.empty());
  CHECK(equal(other->conv1->weight, net->conv1->weight));
}

TEST_CASE("resnet models: resnet34, resnet50 and the CIFAR nets have torchvision-style keys") {
  manual_seed(0);
  {
    resnet::ResNet net = resnet::resnet34();
    ember::StateDict sd = net->state_dict();
    CHECK(sd.size() == 218);
    CHECK(sd.contains("layer3.5.bn2.running_var"));
    CHECK(!sd.contains("layer3.1.downsample.0.weight"));
  }
  {
    resnet::ResNet net = resnet::resnet50();
    ember::StateDict sd = net->state_dict();
    CHECK(sd.size() == 320);
    // Bottleneck: conv3/bn3, expansion 4, and a projection already in layer1 (64 -> 256).
    CHECK(sd.at("layer1.0.downsample.0.weight").sizes() == std::vector<int64_t>{256, 64, 1, 1});
    CHECK(sd.at("layer1.0.conv3.weight").sizes() == std::vector<int64_t>{256, 64, 1, 1});
    CHECK(sd.at("layer2.0.conv2.weight").sizes() == std::vector<int64_t>{128, 128, 3, 3});
    CHECK(sd.at("layer4.2.bn3.running_mean").sizes() == std::vector<int64_t>{2048});
    CHECK(sd.at("fc.weight").sizes() == std::vector<int64_t>{1000, 2048});
    const std::vector<std::string> keys = keys_of(*net);
    CHECK(keys.back() == "fc.bias");
    CHECK(keys[keys.size() - 3] == "layer4.2.bn3.num_batches_tracked");
  }
  {
    resnet::CifarResNet net = resnet::resnet20(10, 1);
    ember::StateDict sd = net->state_dict();
    CHECK(sd.size() == 128);
    CHECK(sd.at("conv1.weight").sizes() == std::vector<int64_t>{16, 1, 3, 3});
    CHECK(!sd.contains("layer1.0.downsample.0.weight"));  // identity: 16 -> 16, stride 1
    CHECK(sd.at("layer2.0.downsample.0.weight").sizes() == std::vector<int64_t>{32, 16, 1, 1});
    CHECK(sd.contains("layer3.0.downsample.1.num_batches_tracked"));
    CHECK(sd.contains("layer3.2.bn2.weight"));
    CHECK(!sd.contains("layer3.3.bn2.weight"));
    CHECK(!sd.contains("layer4.0.conv1.weight"));
    CHECK(sd.at("fc.weight").sizes() == std::vector<int64_t>{10, 64});
    CHECK(net->layer1->size() == 3);
    CHECK(net->name() == "CifarResNet");
  }
}

TEST_CASE("resnet models: initialisation is torchvision's") {
  manual_seed(0);
  resnet::ResNet net = resnet::resnet18();
  // kaiming_normal_(fan_out, relu): std = sqrt(2 / (out_channels * k * k)).
  const Tensor w = net->layer3->at<resnet::BasicBlockImpl>(0)->conv2->weight;  // (256, 256, 3, 3)
  const double expected = std::sqrt(2.0 / (256.0 * 9.0));
  CHECK(std::abs(w.std().item<double>() / expected - 1.0) < 0.02);
  CHECK(std::abs(w.mean().item<double>()) < 0.02 * expected);
  const Tensor stem = net->conv1->weight;  // (64, 3, 7, 7): fan_out 64 * 49
  CHECK(std::abs(stem.std().item<double>() / std::sqrt(2.0 / (64.0 * 49.0)) - 1.0) < 0.05);
  for (const auto& [name, t] : net->named_parameters()) {
    INFO(name);
    if (name.find("bn") != std::string::npos || name.find("downsample.1") != std::string::npos) {
      if (name.ends_with(".weight")) CHECK(t.eq(1.0).all().item<bool>());
      if (name.ends_with(".bias")) CHECK(t.eq(0.0).all().item<bool>());
    }
  }
  // fc keeps Linear's default: U(-1/sqrt(512), 1/sqrt(512)).
  CHECK(net->fc->weight.abs().max().item<double>() <= 1.0 / std::sqrt(512.0));
}

TEST_CASE("resnet models: forward shapes") {
  manual_seed(0);
  {
    resnet::CifarResNet net = resnet::resnet20(10, 1);
    Tensor y = net(randn({2, 1, 28, 28}));
    CHECK(y.sizes() == std::vector<int64_t>{2, 10});
    CHECK(y.isfinite().all().item<bool>());
  }
  {
    resnet::ResNet net = resnet::resnet18(7, 3, /*small_input=*/true);
    CHECK(net->maxpool.is_empty());
    CHECK(net->conv1->weight.sizes() == std::vector<int64_t>{64, 3, 3, 3});
    net->eval();
    NoGradGuard no_grad;
    Tensor y = net(randn({2, 3, 32, 32}));
    CHECK(y.sizes() == std::vector<int64_t>{2, 7});
    CHECK(y.isfinite().all().item<bool>());
  }
  {
    // ImageNet stem on a small image: 64x64 -> 2x2 at layer4 -> (1, 1000).
    resnet::ResNet net = resnet::resnet18(1000, 1);
    net->eval();
    NoGradGuard no_grad;
    CHECK(net(randn({1, 1, 64, 64})).sizes() == std::vector<int64_t>{1, 1000});
  }
  {
    resnet::Classifier net = resnet::make_model("resnet50", 4, 3);
    net->eval();
    NoGradGuard no_grad;
    CHECK(net(randn({1, 3, 32, 32})).sizes() == std::vector<int64_t>{1, 4});
  }
}

TEST_CASE("resnet models: backward gives every parameter a gradient") {
  manual_seed(0);
  resnet::Classifier net = resnet::make_model("resnet20", 10, 1);
  Tensor loss = F::cross_entropy(net(randn({2, 1, 16, 16})), labels2());
  loss.backward();
  int64_t n = 0;
  for (const auto& [name, p] : net->named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined());
    CHECK(p.grad().sizes() == p.sizes());
    CHECK(p.grad().isfinite().all().item<bool>());
    ++n;
  }
  CHECK(n == 65);  // 19 convs + 2 projection convs, 21 batch norms x 2, fc x 2
  // Train-mode batch norm counted the batch.
  CHECK(net->state_dict().at("layer3.2.bn2.num_batches_tracked").item<int64_t>() == 1);

  // resnet50's bottlenecks too (one small image batch).
  resnet::Classifier big = resnet::make_model("resnet50", 3, 3, /*small_input=*/true);
  F::cross_entropy(big(randn({2, 3, 8, 8})), tensor(std::vector<int64_t>{0, 2})).backward();
  for (const auto& [name, p] : big->named_parameters()) {
    INFO(name);
    CHECK(p.grad().defined());
  }
}

TEST_CASE("resnet models: make_model picks the layout by name") {
  manual_seed(0);
  for (const std::string& name : resnet::model_names()) {
    if (name == "resnet110" || name == "resnet50" || name == "resnet34") continue;  // slow builds
    INFO(name);
    resnet::Classifier net = resnet::make_model(name, 5, 2);
    CHECK(net->fc->out_features == 5);
    CHECK(net->state_dict().at("conv1.weight").size(1) == 2);
  }
  resnet::Classifier cifar = resnet::make_model("resnet32", 10, 3);
  REQUIRE(std::dynamic_pointer_cast<resnet::CifarResNetImpl>(cifar.ptr()) != nullptr);
  CHECK(std::dynamic_pointer_cast<resnet::CifarResNetImpl>(cifar.ptr())->depth == 32);
  CHECK(cifar->num_parameters() == 466906);
  resnet::Classifier imagenet = resnet::make_model("resnet18", 1000, 3);
  auto r18 = std::dynamic_pointer_cast<resnet::ResNetImpl>(imagenet.ptr());
  REQUIRE(r18 != nullptr);
  CHECK(!r18->maxpool.is_empty());
  CHECK(r18->conv1->weight.sizes() == std::vector<int64_t>{64, 3, 7, 7});
}

TEST_CASE("resnet models: replace_head swaps fc and keeps the backbone") {
  manual_seed(0);
  resnet::Classifier net = resnet::make_model("resnet20", 10, 1);
  const Tensor conv1 = net->state_dict().at("conv1.weight").clone();
  const Tensor old_fc = net->fc->weight;
  resnet::replace_head(net, 3);
  CHECK(net->fc->in_features == 64);
  CHECK(net->fc->out_features == 3);
  CHECK(!net->fc->weight.is_same(old_fc));
  ember::StateDict sd = net->state_dict();
  CHECK(sd.size() == 128);
  CHECK(sd.at("fc.weight").sizes() == std::vector<int64_t>{3, 64});
  CHECK(sd.at("fc.bias").sizes() == std::vector<int64_t>{3});
  CHECK(equal(sd.at("conv1.weight"), conv1));
  // The registry and the member are the same module: parameters() trains the new head.
  CHECK(net->named_parameters().at("fc.weight").is_same(net->fc->weight));
  CHECK(net->num_parameters() == 272186 - (64 * 10 + 10) + (64 * 3 + 3));
  CHECK(net(randn({2, 1, 8, 8})).sizes() == std::vector<int64_t>{2, 3});
  EMBER_CHECK_THROWS(resnet::replace_head(net, 0), ValueError, "[replace_head]");
}

TEST_CASE("resnet models: freeze_backbone trains fc only") {
  manual_seed(0);
  resnet::Classifier net = resnet::make_model("resnet20", 10, 1);
  resnet::replace_head(net, 4);
  resnet::freeze_backbone(net);
  CHECK(net->num_parameters(/*trainable_only=*/true) == 64 * 4 + 4);
  for (const auto& [name, p] : net->named_parameters()) {
    INFO(name);
    CHECK(p.requires_grad() == name.starts_with("fc."));
  }
  Tensor loss = F::cross_entropy(net(randn({2, 1, 8, 8})), labels2());
  loss.backward();
  CHECK(net->fc->weight.grad().defined());
  CHECK(net->fc->bias.grad().defined());
  CHECK(!net->named_parameters().at("conv1.weight").grad().defined());
  CHECK(!net->state_dict().contains("fc.weight.grad"));
}

TEST_CASE("resnet models: bad depth, name and layer counts are ValueErrors") {
  EMBER_CHECK_THROWS(resnet::CifarResNet(21), ValueError, "[CifarResNet] depth must be 6n+2", "21");
  EMBER_CHECK_THROWS(resnet::CifarResNet(2), ValueError, "[CifarResNet] depth must be 6n+2");
  EMBER_CHECK_THROWS(resnet::make_model("resnet19", 10, 3), ValueError, "[make_model]",
                     "'resnet19'",
                     "resnet20, resnet32, resnet56, resnet110, resnet18, resnet34, "
                     "resnet50");
  EMBER_CHECK_THROWS(resnet::ResNet(resnet::BlockKind::Basic, std::vector<int64_t>{2, 2, 2}),
                     ValueError, "[ResNet] layers must hold 4");
  EMBER_CHECK_THROWS(resnet::resnet18(0, 3), ValueError, "[ResNet]");
}
