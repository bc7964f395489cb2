"""What every model builder shares: the input description, the activation factory, small layer helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

ActivationFactory = Callable[[], nn.Module]

@dataclass(frozen=True)
class InputSpec:
    """What the data looks like; the builders size their first and last layers from it."""

    in_channels: int
    num_classes: int
    image_size: int | None
    num_features: int | None


# --------------------------------------------------------------------------------------------- helpers


def conv_bn_act(
    c_in: int, c_out: int, act: ActivationFactory, *, kernel: int = 3, stride: int = 1, groups: int = 1
) -> list[nn.Module]:
    """Conv -> BatchNorm -> activation; the conv has no bias because BatchNorm's shift replaces it."""
    conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)
    return [conv, nn.BatchNorm2d(c_out), act()]


def classifier_head(channels: int, num_classes: int) -> list[nn.Module]:
    """Global average pooling makes the classifier independent of the input image size."""
    return [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]


def set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule at a dotted path (``torch``'s own `set_submodule` is missing before 2.3)."""
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name), child, module)
