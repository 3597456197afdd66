// Weights move from PyTorch by name: a torchvision-style ResNet written with ember::nn (the same
// structure and attribute names as tests/nn/make_resnet_golden.py) loads the state_dict PyTorch
// exported with safetensors, strictly, and reproduces PyTorch's eval-mode output.
#include "ember/ember.hpp"
#include "test_util.hpp"

using namespace ember;

namespace {

std::string golden(const std::string& name) {
  return std::string(EMBER_SOURCE_DIR) + "/tests/nn/golden/" + name;
}

struct BasicBlockImpl : nn::Module {
  BasicBlockImpl(int64_t cin, int64_t cout, int64_t stride) {
    conv1 = register_module(
        "conv1", nn::Conv2d(nn::Conv2dOptions(cin, cout, 3).stride(stride).padding(1).bias(false)));
    bn1 = register_module("bn1", nn::BatchNorm2d(cout));
    conv2 = register_module("conv2",
                            nn::Conv2d(nn::Conv2dOptions(cout, cout, 3).padding(1).bias(false)));
    bn2 = register_module("bn2", nn::BatchNorm2d(cout));
    if (stride != 1 || cin != cout)
      downsample = register_module(
          "downsample",
          nn::Sequential(nn::Conv2d(nn::Conv2dOptions(cin, cout, 1).stride(stride).bias(false)),
                         nn::BatchNorm2d(cout)));
  }
  Tensor forward(const Tensor& x) {
    Tensor out = relu(bn1(conv1(x)));
    out = bn2(conv2(out));
    return relu(out + (downsample ? downsample(x) : x));
  }
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  nn::Sequential downsample{nullptr};
};
EMBER_MODULE(BasicBlock);

struct TinyResNetImpl : nn::Module {
  TinyResNetImpl() {
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(3, 8, 3).padding(1).bias(false)));
    bn1 = register_module("bn1", nn::BatchNorm2d(8));
    maxpool =
        register_module("maxpool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
    layer1 = register_module("layer1", nn::Sequential(BasicBlock(8, 8, 1)));
    layer2 = register_module("layer2", nn::Sequential(BasicBlock(8, 16, 2)));
    avgpool = register_module("avgpool", nn::AdaptiveAvgPool2d(std::vector<int64_t>{1, 1}));
    fc = register_module("fc", nn::Linear(16, 5));
  }
  Tensor forward(const Tensor& x) {
    Tensor h = maxpool(relu(bn1(conv1(x))));
    h = layer2(layer1(h));
    return fc(avgpool(h).flatten(1));
  }
  nn::Conv2d conv1{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  nn::MaxPool2d maxpool{nullptr};
  nn::Sequential layer1{nullptr}, layer2{nullptr};
  nn::AdaptiveAvgPool2d avgpool{nullptr};
  nn::Linear fc{nullptr};
};
EMBER_MODULE(TinyResNet);

}  // namespace

TEST_CASE("interop: a PyTorch ResNet state_dict loads by name and gives PyTorch's output") {
  TinyResNet net;
  StateDict weights = load_safetensors(golden("resnet_tiny.safetensors"));
  REQUIRE(weights.size() == 38);
  // The names are PyTorch's: layer2.0.downsample.1.running_mean and friends.
  CHECK(weights.contains("layer2.0.downsample.1.running_mean"));
  CHECK(net->state_dict().size() == weights.size());
  nn::LoadStateDictResult r = net->load_state_dict(weights);  // strict
  CHECK(r.missing_keys.empty());
  CHECK(r.unexpected_keys.empty());
  CHECK(net->layer1->at<BasicBlockImpl>(0)->bn1->num_batches_tracked.item<int64_t>() == 3);

  StateDict io = load_safetensors(golden("resnet_tiny_io.safetensors"));
  net->eval();
  NoGradGuard no_grad;
  Tensor y = net(io.at("input"));
  REQUIRE(y.sizes() == io.at("output").sizes());
  INFO("max |ember - torch| = " << (y - io.at("output")).abs().max().item<double>());
  CHECK(allclose(y, io.at("output"), 1e-4, 1e-5));

  // And back: Ember's state_dict holds the same tensors PyTorch wrote.
  for (const auto& [k, v] : net->state_dict()) {
    INFO(k);
    CHECK(equal(v, weights.at(k)));
  }
}
