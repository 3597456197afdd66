// ResNet models: see models.hpp. Structure and initialisation follow torchvision.models.resnet
// (and He et al. 2016, section 4.2, for the CIFAR nets).
#include "resnet/models.hpp"

#include <sstream>
#include <utility>

namespace ember_examples::resnet {

namespace {

nn::Conv2d conv3x3(int64_t in_channels, int64_t out_channels, int64_t stride = 1) {
  return nn::Conv2d(
      nn::Conv2dOptions(in_channels, out_channels, 3).stride(stride).padding(1).bias(false));
}

nn::Conv2d conv1x1(int64_t in_channels, int64_t out_channels, int64_t stride = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in_channels, out_channels, 1).stride(stride).bias(false));
}

/// The projection shortcut ("option B"): downsample.0 = 1x1 conv with the block's stride,
/// downsample.1 = bn. Empty when the block keeps its input's shape.
nn::Sequential projection(int64_t in_channels, int64_t out_channels, int64_t stride) {
  if (stride == 1 && in_channels == out_channels) return nn::Sequential(nullptr);
  return nn::Sequential(conv1x1(in_channels, out_channels, stride), nn::BatchNorm2d(out_channels));
}

/// torchvision's initialisation: conv weights kaiming_normal_(fan_out, relu), batch norm weight 1
/// and bias 0; Linear keeps its default (PyTorch's kaiming_uniform_(a = sqrt(5))).
void init_weights(nn::Module& model) {
  ember::NoGradGuard no_grad;
  model.apply([](nn::Module& m) {
    if (auto* conv = dynamic_cast<nn::Conv2dImpl*>(&m)) {
      nn::init::kaiming_normal_(conv->weight, 0.0, "fan_out", "relu");
    } else if (auto* bn = dynamic_cast<nn::BatchNorm2dImpl*>(&m)) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    }
  });
}

/// A stage of `blocks` blocks: the first takes in_channels with `stride`, the rest keep the shape.
/// Updates in_channels to the stage's output channels.
template <class Block>
nn::Sequential make_layer(int64_t& in_channels, int64_t planes, int64_t blocks, int64_t stride) {
  nn::Sequential layer;
  for (int64_t i = 0; i < blocks; ++i) {
    layer->push_back(Block(in_channels, planes, i == 0 ? stride : 1));
    in_channels = planes * Block::ContainedType::expansion;
  }
  return layer;
}

}  // namespace

// ---- blocks ----

BasicBlockImpl::BasicBlockImpl(int64_t in_channels, int64_t planes, int64_t stride) {
  EMBER_CHECK(in_channels > 0 && planes > 0 && stride > 0, ember::ValueError,
              "[BasicBlock] in_channels, planes and stride must be positive, got ", in_channels,
              ", ", planes, ", ", stride);
  conv1 = register_module("conv1", conv3x3(in_channels, planes, stride));
  bn1 = register_module("bn1", nn::BatchNorm2d(planes));
  relu = register_module("relu", nn::ReLU());
  conv2 = register_module("conv2", conv3x3(planes, planes));
  bn2 = register_module("bn2", nn::BatchNorm2d(planes));
  if (nn::Sequential d = projection(in_channels, planes * expansion, stride))
    downsample = register_module("downsample", d);
}

Tensor BasicBlockImpl::forward(const Tensor& x) {
  // Each BatchNorm with the ReLU (and the residual add) after it: forward_relu, one fused node on
  // CUDA while training, the same values as relu(bn(...) + identity).
  Tensor out = bn1->forward_relu(conv1(x));  // (N, planes, H / stride, W / stride)
  return bn2->forward_relu(conv2(out), downsample ? downsample(x) : x);
}

BottleneckImpl::BottleneckImpl(int64_t in_channels, int64_t planes, int64_t stride) {
  EMBER_CHECK(in_channels > 0 && planes > 0 && stride > 0, ember::ValueError,
              "[Bottleneck] in_channels, planes and stride must be positive, got ", in_channels,
              ", ", planes, ", ", stride);
  conv1 = register_module("conv1", conv1x1(in_channels, planes));
  bn1 = register_module("bn1", nn::BatchNorm2d(planes));
  conv2 = register_module("conv2", conv3x3(planes, planes, stride));
  bn2 = register_module("bn2", nn::BatchNorm2d(planes));
  conv3 = register_module("conv3", conv1x1(planes, planes * expansion));
  bn3 = register_module("bn3", nn::BatchNorm2d(planes * expansion));
  relu = register_module("relu", nn::ReLU());
  if (nn::Sequential d = projection(in_channels, planes * expansion, stride))
    downsample = register_module("downsample", d);
}

Tensor BottleneckImpl::forward(const Tensor& x) {
  Tensor out = bn1->forward_relu(conv1(x));  // (N, planes, H, W)
  out = bn2->forward_relu(conv2(out));       // (N, planes, H / stride, W / stride)
  // (N, 4 * planes, H / stride, W / stride)
  return bn3->forward_relu(conv3(out), downsample ? downsample(x) : x);
}

// ---- ImageNet layout ----

ResNetImpl::ResNetImpl(BlockKind block, std::vector<int64_t> layers, int64_t num_classes,
                       int64_t in_channels, bool small_input) {
  EMBER_CHECK(layers.size() == 4, ember::ValueError,
              "[ResNet] layers must hold 4 block counts, got ", layers.size());
  for (int64_t n : layers)
    EMBER_CHECK(n > 0, ember::ValueError, "[ResNet] every block count must be positive");
  EMBER_CHECK(num_classes > 0 && in_channels > 0, ember::ValueError,
              "[ResNet] num_classes and in_channels must be positive, got ", num_classes, ", ",
              in_channels);
  conv1 = register_module(
      "conv1",
      small_input
          ? conv3x3(in_channels, 64)
          : nn::Conv2d(nn::Conv2dOptions(in_channels, 64, 7).stride(2).padding(3).bias(false)));
  bn1 = register_module("bn1", nn::BatchNorm2d(64));
  relu = register_module("relu", nn::ReLU());
  if (!small_input)
    maxpool =
        register_module("maxpool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
  int64_t channels = 64;
  auto stage = [&](int64_t planes, int64_t blocks, int64_t stride) {
    return block == BlockKind::Basic ? make_layer<BasicBlock>(channels, planes, blocks, stride)
                                     : make_layer<Bottleneck>(channels, planes, blocks, stride);
  };
  layer1 = register_module("layer1", stage(64, layers[0], 1));
  layer2 = register_module("layer2", stage(128, layers[1], 2));
  layer3 = register_module("layer3", stage(256, layers[2], 2));
  layer4 = register_module("layer4", stage(512, layers[3], 2));
  avgpool = register_module("avgpool", nn::AdaptiveAvgPool2d(std::vector<int64_t>{1, 1}));
  fc = register_module("fc", nn::Linear(channels, num_classes));
  init_weights(*this);
}

Tensor ResNetImpl::features(const Tensor& x) {
  Tensor h = bn1->forward_relu(conv1(x));  // (N, 64, H / 2, W / 2); small_input: (N, 64, H, W)
  if (maxpool) h = maxpool(h);            // (N, 64, H / 4, W / 4)
  h = layer4(layer3(layer2(layer1(h))));  // (N, 512 * expansion, H / 32, W / 32)
  return avgpool(h).flatten(1);           // (N, 512 * expansion)
}

// ---- CIFAR layout ----

CifarResNetImpl::CifarResNetImpl(int64_t depth, int64_t num_classes, int64_t in_channels)
    : depth(depth) {
  EMBER_CHECK(depth >= 8 && (depth - 2) % 6 == 0, ember::ValueError,
              "[CifarResNet] depth must be 6n+2 (20, 32, 44, 56, 110, ...), got ", depth);
  EMBER_CHECK(num_classes > 0 && in_channels > 0, ember::ValueError,
              "[CifarResNet] num_classes and in_channels must be positive, got ", num_classes, ", ",
              in_channels);
  const int64_t n = (depth - 2) / 6;
  conv1 = register_module("conv1", conv3x3(in_channels, 16));
  bn1 = register_module("bn1", nn::BatchNorm2d(16));
  relu = register_module("relu", nn::ReLU());
  int64_t channels = 16;
  layer1 = register_module("layer1", make_layer<BasicBlock>(channels, 16, n, 1));
  layer2 = register_module("layer2", make_layer<BasicBlock>(channels, 32, n, 2));
  layer3 = register_module("layer3", make_layer<BasicBlock>(channels, 64, n, 2));
  avgpool = register_module("avgpool", nn::AdaptiveAvgPool2d(std::vector<int64_t>{1, 1}));
  fc = register_module("fc", nn::Linear(channels, num_classes));
  init_weights(*this);
}

Tensor CifarResNetImpl::features(const Tensor& x) {
  Tensor h = bn1->forward_relu(conv1(x));  // (N, 16, H, W)
  h = layer3(layer2(layer1(h)));           // (N, 64, H / 4, W / 4)
  return avgpool(h).flatten(1);    // (N, 64)
}

// ---- factories ----

ResNet resnet18(int64_t num_classes, int64_t in_channels, bool small_input) {
  return ResNet(BlockKind::Basic, std::vector<int64_t>{2, 2, 2, 2}, num_classes, in_channels,
                small_input);
}
ResNet resnet34(int64_t num_classes, int64_t in_channels, bool small_input) {
  return ResNet(BlockKind::Basic, std::vector<int64_t>{3, 4, 6, 3}, num_classes, in_channels,
                small_input);
}
ResNet resnet50(int64_t num_classes, int64_t in_channels, bool small_input) {
  return ResNet(BlockKind::Bottleneck, std::vector<int64_t>{3, 4, 6, 3}, num_classes, in_channels,
                small_input);
}
CifarResNet resnet20(int64_t num_classes, int64_t in_channels) {
  return CifarResNet(20, num_classes, in_channels);
}
CifarResNet resnet32(int64_t num_classes, int64_t in_channels) {
  return CifarResNet(32, num_classes, in_channels);
}
CifarResNet resnet56(int64_t num_classes, int64_t in_channels) {
  return CifarResNet(56, num_classes, in_channels);
}
CifarResNet resnet110(int64_t num_classes, int64_t in_channels) {
  return CifarResNet(110, num_classes, in_channels);
}

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"resnet20", "resnet32", "resnet56", "resnet110",
                                                 "resnet18", "resnet34", "resnet50"};
  return names;
}

Classifier make_model(const std::string& name, int64_t num_classes, int64_t in_channels,
                      bool small_input) {
  if (name == "resnet20") return Classifier(resnet20(num_classes, in_channels).ptr());
  if (name == "resnet32") return Classifier(resnet32(num_classes, in_channels).ptr());
  if (name == "resnet56") return Classifier(resnet56(num_classes, in_channels).ptr());
  if (name == "resnet110") return Classifier(resnet110(num_classes, in_channels).ptr());
  if (name == "resnet18") return Classifier(resnet18(num_classes, in_channels, small_input).ptr());
  if (name == "resnet34") return Classifier(resnet34(num_classes, in_channels, small_input).ptr());
  if (name == "resnet50") return Classifier(resnet50(num_classes, in_channels, small_input).ptr());
  std::ostringstream known;
  for (const std::string& n : model_names()) known << (known.tellp() > 0 ? ", " : "") << n;
  EMBER_CHECK(false, ember::ValueError, "[make_model] unknown model '", name, "'; expected one of ",
              known.str());
  return Classifier(nullptr);
}

// ---- fine-tuning ----

void replace_head(Classifier& model, int64_t num_classes) {
  EMBER_CHECK(num_classes > 0, ember::ValueError,
              "[replace_head] num_classes must be positive, got ", num_classes);
  const nn::Linear old = model->fc;
  nn::Linear fresh(old->in_features, num_classes, old->bias.defined());
  fresh->to(old->weight.device(), old->weight.dtype());
  model->fc = model->replace_module("fc", fresh);
}

void freeze_backbone(Classifier& model) {
  for (const auto& [name, p] : model->named_parameters()) {
    if (name.rfind("fc.", 0) == 0) continue;
    Tensor handle = p;  // shares the parameter's impl: the flag is the parameter's own
    handle.requires_grad_(false);
  }
}

}  // namespace ember_examples::resnet
