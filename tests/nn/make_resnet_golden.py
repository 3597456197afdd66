"""Writes tests/nn/golden/resnet_tiny{,_io}.safetensors: the state_dict of a small torchvision-style
ResNet (BasicBlocks, a downsample branch, batch norm with non-trivial running statistics) and one
input with the model's eval-mode output. tests/nn/test_pytorch_interop.cpp builds the same
structure in Ember, loads the weights by name and compares the output.

Run once with torch and safetensors installed (python3 tests/nn/make_resnet_golden.py); the small
files it writes are committed, so the test suite itself never needs Python.
"""
import os

import torch
from safetensors.torch import save_file

torch.manual_seed(0)


class BasicBlock(torch.nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = torch.nn.Sequential(
                torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + identity)


class TinyResNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.maxpool = torch.nn.MaxPool2d(3, 2, 1)
        self.layer1 = torch.nn.Sequential(BasicBlock(8, 8, 1))
        self.layer2 = torch.nn.Sequential(BasicBlock(8, 16, 2))
        self.avgpool = torch.nn.AdaptiveAvgPool2d((1, 1))
        self.fc = torch.nn.Linear(16, 5)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


model = TinyResNet()
with torch.no_grad():  # running statistics and affine parameters away from their defaults
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
            m.num_batches_tracked += 3
model.eval()
x = torch.randn(2, 3, 16, 16)
with torch.no_grad():
    y = model(x)

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
os.makedirs(here, exist_ok=True)
save_file(model.state_dict(), os.path.join(here, "resnet_tiny.safetensors"))
save_file({"input": x, "output": y}, os.path.join(here, "resnet_tiny_io.safetensors"))
print("keys:", len(model.state_dict()), "output:", y.flatten()[:4].tolist())
