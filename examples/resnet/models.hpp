// ResNet classifiers for the trainer: torchvision's ImageNet ResNets (18/34/50) and the CIFAR
// ResNets of He et al. 2016, "Deep Residual Learning for Image Recognition", section 4.2
// (20/32/56/110).
//
// Attribute names are torchvision's, so a torchvision state_dict loads strictly by name:
//   conv1.weight, bn1.{weight,bias,running_mean,running_var,num_batches_tracked},
//   layer1.0.conv1.weight, layer2.0.downsample.0.weight (1x1 conv), layer2.0.downsample.1.* (bn),
//   fc.weight, fc.bias.
// The CIFAR nets use the same names (conv1, bn1, layer1..layer3, fc) and shortcut option B: a
// projection (1x1 conv + bn, "downsample") where the shape changes, identity elsewhere.
//
// Shapes (ImageNet layout, 224x224 input):
//   x (N, C_in, 224, 224) -> conv1 7x7/2 (N, 64, 112, 112) -> maxpool 3/2 (N, 64, 56, 56)
//   -> layer1 (N, 64e, 56, 56) -> layer2 (N, 128e, 28, 28) -> layer3 (N, 256e, 14, 14)
//   -> layer4 (N, 512e, 7, 7) -> avgpool (N, 512e) -> fc (N, num_classes); e = block expansion.
// small_input (CIFAR adaptation): conv1 3x3/1 and no maxpool, so 32x32 reaches layer4 at 4x4.
//
//   resnet::Classifier net = resnet::make_model("resnet20", 10, 1);
//   Tensor logits = net(x);                          // or net->forward(x)
//   resnet::replace_head(net, 5);                    // fine-tune on 5 classes
//   resnet::freeze_backbone(net);                    // train fc only
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ember/nn.hpp"

namespace ember_examples::resnet {

using ember::Tensor;
namespace nn = ember::nn;

/// What every model here is: a module with features(x) -> the pooled features (N, F) the head
/// sees, and a linear head called "fc" (registered last, as torchvision's); forward(x) =
/// fc(features(x)) -> logits (N, num_classes).
class ClassifierImpl : public nn::Module {
 public:
  virtual Tensor features(const Tensor& x) = 0;
  Tensor forward(const Tensor& x) { return fc(features(x)); }
  nn::Linear fc{nullptr};
};
EMBER_MODULE(Classifier);

/// Two 3x3 conv-bn pairs and a shortcut: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
/// stride is on conv1; the shortcut is downsample (1x1 conv stride + bn) when the shape changes.
class BasicBlockImpl : public nn::Module {
 public:
  static constexpr int64_t expansion = 1;
  BasicBlockImpl(int64_t in_channels, int64_t planes, int64_t stride = 1);
  Tensor forward(const Tensor& x);

  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  nn::ReLU relu{nullptr};  // torchvision's module list; forward runs it inside bn*->forward_relu
  nn::Sequential downsample{nullptr};  // empty: identity shortcut
};
EMBER_MODULE(BasicBlock);

/// 1x1 (planes) -> 3x3 (planes, stride) -> 1x1 (4 * planes), each with bn, and a shortcut; the
/// stride sits on the 3x3 conv (torchvision's "ResNet v1.5").
class BottleneckImpl : public nn::Module {
 public:
  static constexpr int64_t expansion = 4;
  BottleneckImpl(int64_t in_channels, int64_t planes, int64_t stride = 1);
  Tensor forward(const Tensor& x);

  nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  nn::ReLU relu{nullptr};  // torchvision's module list; forward runs it inside bn*->forward_relu
  nn::Sequential downsample{nullptr};  // empty: identity shortcut
};
EMBER_MODULE(Bottleneck);

enum class BlockKind { Basic, Bottleneck };

/// torchvision's ResNet: conv1 7x7/2 (no bias), bn1, relu, maxpool 3/2/1, layer1..layer4 of
/// blocks at 64/128/256/512 planes (stride 2 at the start of layer2..4), avgpool, fc.
/// small_input: conv1 3x3/1/1 and no maxpool (for 32x32 images); the parameter names are the same.
class ResNetImpl : public ClassifierImpl {
 public:
  ResNetImpl(BlockKind block, std::vector<int64_t> layers, int64_t num_classes = 1000,
             int64_t in_channels = 3, bool small_input = false);
  Tensor features(const Tensor& x) override;  // (N, F): the pooled features

  nn::Conv2d conv1{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  nn::ReLU relu{nullptr};
  nn::MaxPool2d maxpool{nullptr};  // empty with small_input
  nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  nn::AdaptiveAvgPool2d avgpool{nullptr};
  // fc: ClassifierImpl::fc, (512 * expansion) -> num_classes
};
EMBER_MODULE(ResNet);

/// The CIFAR ResNet of He et al. 2016, section 4.2: conv1 3x3 (16), bn1, relu, then layer1..3 of
/// n = (depth - 2) / 6 BasicBlocks at 16/32/64 channels (stride 2 at the start of layer2 and
/// layer3), global average pool, fc. depth is 6n + 2 (20, 32, 44, 56, 110, ...); anything else is
/// a ValueError.
class CifarResNetImpl : public ClassifierImpl {
 public:
  explicit CifarResNetImpl(int64_t depth, int64_t num_classes = 10, int64_t in_channels = 3);
  Tensor features(const Tensor& x) override;  // (N, F): the pooled features

  int64_t depth;
  nn::Conv2d conv1{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  nn::ReLU relu{nullptr};
  nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr};
  nn::AdaptiveAvgPool2d avgpool{nullptr};
  // fc: ClassifierImpl::fc, 64 -> num_classes
};
EMBER_MODULE(CifarResNet);

// ---- factories (torchvision's names; layer counts from the papers) ----
ResNet resnet18(int64_t num_classes = 1000, int64_t in_channels = 3, bool small_input = false);
ResNet resnet34(int64_t num_classes = 1000, int64_t in_channels = 3, bool small_input = false);
ResNet resnet50(int64_t num_classes = 1000, int64_t in_channels = 3, bool small_input = false);
CifarResNet resnet20(int64_t num_classes = 10, int64_t in_channels = 3);
CifarResNet resnet32(int64_t num_classes = 10, int64_t in_channels = 3);
CifarResNet resnet56(int64_t num_classes = 10, int64_t in_channels = 3);
CifarResNet resnet110(int64_t num_classes = 10, int64_t in_channels = 3);

/// The names make_model accepts, in the order listed in its error message.
const std::vector<std::string>& model_names();

/// A model by name: resnet20, resnet32, resnet56, resnet110 (CIFAR layout), resnet18, resnet34,
/// resnet50 (ImageNet layout; small_input applies to these only). Unknown names: ValueError
/// listing the accepted ones.
Classifier make_model(const std::string& name, int64_t num_classes, int64_t in_channels,
                      bool small_input = false);

/// Replaces fc with a freshly initialised Linear(fc.in_features, num_classes) on fc's device and
/// dtype, keeping the rest of the model (fine-tuning on a different label set).
void replace_head(Classifier& model, int64_t num_classes);

/// requires_grad(false) on every parameter except fc's (train the head only). Buffers (batch norm
/// running statistics) still update in train mode, as in PyTorch.
void freeze_backbone(Classifier& model);

}  // namespace ember_examples::resnet
