"""Small networks: an MLP, two small CNNs, LeNet-5, the AFOS CNN and the compact airbench network."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from afos.errors import ConfigError
from afos.training.models.common import ActivationFactory, InputSpec, conv_bn_act

# ------------------------------------------------------------------------------------- small models


def mlp(act: ActivationFactory, spec: InputSpec, *, hidden: Sequence[int] = (128, 64)) -> nn.Module:
    """Fully connected net; flattening lets the same model take tabular rows and images."""
    if isinstance(hidden, (str, bytes)) or not all(isinstance(h, int) and h > 0 for h in hidden):
        raise ConfigError(f"mlp option hidden must be a sequence of positive ints, got {hidden!r}")
    if spec.num_features is not None:
        width = spec.num_features
    elif spec.image_size is not None:
        width = spec.in_channels * spec.image_size**2
    else:
        raise ConfigError("mlp needs num_features (tabular data) or image_size (images)")
    layers: list[nn.Module] = [nn.Flatten()]
    for size in hidden:
        layers += [nn.Linear(width, size), act()]
        width = size
    layers.append(nn.Linear(width, spec.num_classes))
    return nn.Sequential(*layers)


def small_cnn(act: ActivationFactory, spec: InputSpec) -> nn.Module:
    """Two-conv CNN sized for 8x8 digits so a fitness evaluation takes seconds on a CPU.

    Pooling to 4x4 rather than 1x1 keeps the stroke layout, which is most of the signal in 8x8 digits.
    """
    return nn.Sequential(
        *conv_bn_act(spec.in_channels, 16, act),
        nn.MaxPool2d(2),
        *conv_bn_act(16, 32, act),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(32 * 16, spec.num_classes),
    )


def lenet5(act: ActivationFactory, spec: InputSpec) -> nn.Module:
    """LeNet-5 with its classic 5x5x16 feature map at 28x28 and 32x32, and still usable at 8x8.

    32x32 inputs use the original unpadded convs; 28x28 pads the first conv (the usual MNIST variant)
    to reach the same 5x5 map. Inputs under 12 pixels also pad the second conv so it fits at all, and the
    adaptive pool then stretches their small map to the 5x5 the dense layers expect.
    """
    size = spec.image_size
    assert size is not None  # _check_spec rejects tabular inputs for image models
    pad1 = 0 if size >= 32 else 2
    pad2 = 0 if size >= 12 else 2
    return nn.Sequential(
        nn.Conv2d(spec.in_channels, 6, 5, padding=pad1),
        act(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=pad2),
        act(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(5),
        nn.Flatten(),
        nn.Linear(16 * 25, 120),
        act(),
        nn.Linear(120, 84),
        act(),
        nn.Linear(84, spec.num_classes),
    )


def afos_cnn(act: ActivationFactory, spec: InputSpec) -> nn.Module:
    """The AFOS paper's VGG-style CNN: three blocks of two 3x3 convs, each pooled and dropped out.

    The pool before the dense layer outputs 4x4, which is the identity at the paper's 32x32 input (so
    the dense layer has the paper's 2048 inputs) while letting 8x8 and 28x28 inputs through.
    """
    layers: list[nn.Module] = []
    c_in = spec.in_channels
    for width, dropout in ((32, 0.2), (64, 0.3), (128, 0.4)):
        layers += [*conv_bn_act(c_in, width, act), *conv_bn_act(width, width, act)]
        layers += [nn.MaxPool2d(2), nn.Dropout(dropout)]
        c_in = width
    layers += [nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128 * 16, 128), act(), nn.Dropout(0.5)]
    layers.append(nn.Linear(128, spec.num_classes))
    return nn.Sequential(*layers)



class _Scale(nn.Module):
    """Multiplies by a constant: airbench's logit scale, which keeps the head's logits small while the
    BatchNorm-ed body takes a large learning rate."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor:g}"


def airbench(
    act: ActivationFactory, spec: InputSpec, *, widths: Sequence[int] = (64, 256, 256), logit_scale: float = 1 / 9
) -> nn.Module:
    """A compact airbench-style CIFAR network (after Keller Jordan's airbench94, 94% on CIFAR-10 in
    seconds on an A100): a conv stem, then per width one block conv -> 2x2 max-pool -> BN -> activation ->
    conv -> BN -> activation, global max pooling, a linear head and airbench's logit scale (1/9). Seven
    activation sites, all the candidate. Airbench's data-initialised whitening stem, lookahead and
    test-time flipping belong to its trainer and are left out: here the model is trained by afos's one
    protocol like every other model.
    """
    if isinstance(widths, (str, bytes)) or not widths or not all(isinstance(w, int) and w > 0 for w in widths):
        raise ConfigError(f"airbench option widths must be a sequence of positive ints, got {widths!r}")
    if isinstance(logit_scale, bool) or not isinstance(logit_scale, (int, float)) or not 0 < logit_scale <= 1e3:
        raise ConfigError(f"airbench option logit_scale must be a number in (0, 1000], got {logit_scale!r}")
    channels = max(widths[0] // 2, 1)
    layers = conv_bn_act(spec.in_channels, channels, act)
    for width in widths:
        layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.MaxPool2d(2, ceil_mode=True)]
        layers += [nn.BatchNorm2d(width), act(), *conv_bn_act(width, width, act)]
        channels = width
    head = [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(channels, spec.num_classes), _Scale(float(logit_scale))]
    return nn.Sequential(*layers, *head)
