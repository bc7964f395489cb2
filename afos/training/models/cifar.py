"""CIFAR-style networks written here: ResNet-20/56 (He et al., option A or B shortcuts) and MobileNetV2."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from afos.errors import ConfigError
from afos.training.models.common import ActivationFactory, InputSpec, classifier_head, conv_bn_act

# ------------------------------------------------------------------------------------- CIFAR ResNet


class _PadShortcut(nn.Module):
    """He et al.'s option-A shortcut: subsample and zero-pad channels, adding no parameters.

    Parameter-free shortcuts keep the model's capacity identical to the paper's CIFAR numbers.
    """

    def __init__(self, stride: int, extra_channels: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra_channels = extra_channels

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        front = self.extra_channels // 2
        return F.pad(x, (0, 0, 0, 0, front, self.extra_channels - front))


def _shortcut(c_in: int, c_out: int, stride: int, kind: str) -> nn.Module:
    """Identity when shapes match, else option A (zero padding) or B (1x1 projection)."""
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    if kind == "A":
        return _PadShortcut(stride, c_out - c_in)
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class _BasicBlock(nn.Module):
    """Two 3x3 convs with a residual; each of its two activations is a separate site."""

    def __init__(self, c_in: int, c_out: int, stride: int, act: ActivationFactory, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.act1 = act()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = _shortcut(c_in, c_out, stride, shortcut)
        self.act2 = act()

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """He et al.'s CIFAR ResNet (depth = 6n + 2): a 16-channel stem and three stages of n blocks."""

    def __init__(self, act: ActivationFactory, spec: InputSpec, *, depth: int, shortcut: str = "A") -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ConfigError(f"CIFAR ResNet depth must be 6n + 2 with n >= 1, got {depth}")
        if shortcut not in ("A", "B"):
            raise ConfigError(f"resnet option shortcut must be 'A' or 'B', got {shortcut!r}")
        per_stage = (depth - 2) // 6
        self.stem = nn.Sequential(*conv_bn_act(spec.in_channels, 16, act))
        blocks: list[nn.Module] = []
        c_in = 16
        for stage, width in enumerate((16, 32, 64)):
            for index in range(per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(_BasicBlock(c_in, width, stride, act, shortcut))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(*classifier_head(64, spec.num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))


# ------------------------------------------------------------------------------------- MobileNetV2

_MOBILENETV2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
"""(expansion, channels, blocks, first stride). The CIFAR variant uses stride 1 for the 24-channel
stage (2 on ImageNet) and a stride-1 stem, so 32x32 inputs are not reduced to 1x1 before the head."""


class _InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> linear project (1x1); the projection has no activation by design."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int, act: ActivationFactory) -> None:
        super().__init__()
        hidden = c_in * expansion
        layers = [] if expansion == 1 else conv_bn_act(c_in, hidden, act, kernel=1)
        layers += conv_bn_act(hidden, hidden, act, stride=stride, groups=hidden)
        layers += [nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        return x + out if self.residual else out


def mobilenetv2(act: ActivationFactory, spec: InputSpec) -> nn.Module:
    """MobileNetV2 (width 1.0) for small images; the candidate takes the place of every ReLU6."""
    layers = conv_bn_act(spec.in_channels, 32, act)
    c_in = 32
    for expansion, width, count, stride in _MOBILENETV2_STAGES:
        for index in range(count):
            layers.append(_InvertedResidual(c_in, width, stride if index == 0 else 1, expansion, act))
            c_in = width
    layers += conv_bn_act(c_in, 1280, act, kernel=1)
    layers += classifier_head(1280, spec.num_classes)
    return nn.Sequential(*layers)
