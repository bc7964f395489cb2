"""Published architectures: torchvision's, adapted to small images, and a Compact Convolutional Transformer."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor, nn

from afos.errors import ConfigError
from afos.training.models.common import ActivationFactory, InputSpec, set_submodule

_TORCHVISION_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU)

# --------------------------------------------------------------------------------- torchvision models


def torchvision_model(
    act: ActivationFactory,
    spec: InputSpec,
    *,
    arch: str,
    adapt: Callable[[nn.Module, InputSpec], nn.Module] | None = None,
    arch_options: dict[str, object] | None = None,
) -> nn.Module:
    """A torchvision classifier, untrained, with its first conv and its activations swapped in place.

    ``adapt`` rebuilds the stem for small images (and returns the model to use); without it only the first
    conv's input channels follow the data. Imported lazily: torchvision adds about a second to start-up
    that most runs never need.
    """
    import torchvision.models

    model = getattr(torchvision.models, arch)(weights=None, num_classes=spec.num_classes, **(arch_options or {}))
    if adapt is not None:
        model = adapt(model, spec)
    elif spec.in_channels != 3:
        _adapt_first_conv(model, spec.in_channels)
    for name, module in list(model.named_modules()):
        if isinstance(module, _TORCHVISION_ACTIVATIONS):
            set_submodule(model, name, act())
        elif getattr(module, "inplace", False):
            # e.g. MobileNetV3's Dropout(inplace=True) right after an activation: it would overwrite
            # the candidate's output, which a candidate such as tanh saves for its backward pass.
            module.inplace = False
    return model


def _adapt_first_conv(model: nn.Module, in_channels: int) -> None:
    """Rebuild the stem conv for the dataset's channel count, keeping every other hyper-parameter."""
    name, conv = next((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    stem = nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]  # torch's stubs type a conv's own sizes wider than
        conv.stride,  # type: ignore[arg-type]  # its constructor accepts
        conv.padding,  # type: ignore[arg-type]
        conv.dilation,  # type: ignore[arg-type]
        conv.groups,
        bias=conv.bias is not None,
    )
    set_submodule(model, name, stem)


def _small_stem_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A 3x3 stride-1 conv in place of an ImageNet stem conv, keeping its width and bias."""
    return nn.Conv2d(in_channels, conv.out_channels, 3, 1, 1, bias=conv.bias is not None)


def adapt_alexnet(model: nn.Module, spec: InputSpec) -> nn.Module:
    """AlexNet's 11x11/4 stem and first max-pool would shrink a 32 px image to nothing before the last
    pool; a 3x3/1 stem without that pool leaves 7x7 at 32 px, which the 6x6 adaptive pool keeps."""
    features = cast(nn.Sequential, model.features)
    features[0] = _small_stem_conv(cast(nn.Conv2d, features[0]), spec.in_channels)
    features[2] = nn.Identity()
    return model


def adapt_vgg(model: nn.Module, spec: InputSpec) -> nn.Module:
    """VGG's stem is already 3x3/1; ceil-mode pools let its five halvings reach 1x1 from 28 px too."""
    if spec.in_channels != 3:
        _adapt_first_conv(model, spec.in_channels)
    for module in cast(nn.Sequential, model.features):
        if isinstance(module, nn.MaxPool2d):
            module.ceil_mode = True
    return model


def adapt_googlenet(model: nn.Module, spec: InputSpec) -> nn.Module:
    """A 3x3/1 stem without the first pool; each of torchvision's conv units becomes conv -> BN -> site.

    torchvision's ``BasicConv2d`` calls ``F.relu`` inside ``forward``, so no ReLU module exists to swap:
    the unit is rebuilt as a Sequential of its own conv and BatchNorm and a candidate.
    """
    from torchvision.models.googlenet import BasicConv2d

    stem = cast(BasicConv2d, model.conv1)
    stem.conv = _small_stem_conv(stem.conv, spec.in_channels)
    model.maxpool1 = nn.Identity()
    for name, module in list(model.named_modules()):
        if isinstance(module, BasicConv2d):
            set_submodule(model, name, nn.Sequential(module.conv, module.bn, nn.ReLU()))
    return model


def adapt_densenet(model: nn.Module, spec: InputSpec) -> nn.Module:
    """A 3x3/1 stem without its pool (28 px would otherwise reach 0x0 at the last transition), and the
    final ``F.relu`` of torchvision's ``forward`` turned into a module, so that it is a site too."""
    features = cast(nn.Sequential, model.features)
    features.conv0 = _small_stem_conv(cast(nn.Conv2d, features.conv0), spec.in_channels)
    features.pool0 = nn.Identity()
    return nn.Sequential(features, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), cast(nn.Module, model.classifier))


# ----------------------------------------------------------------------- Compact Convolutional Transformer


class _EncoderLayer(nn.Module):
    """A pre-norm transformer encoder layer whose MLP activation (GELU in the original) is a site."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, act: ActivationFactory) -> None:
        super().__init__()
        hidden = round(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), act(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm1(x)
        x = x + self.attention(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class CompactConvTransformer(nn.Module):
    """Hassani et al.'s CCT: a convolutional tokenizer, a transformer encoder and sequence pooling.

    The tokenizer (``conv_layers`` blocks of 3x3 conv -> activation -> 3x3/2 max-pool) replaces ViT's
    patches, which is what lets a transformer learn 32 px images from scratch; sequence pooling (an
    attention-weighted mean of the tokens) replaces the class token. The defaults are CCT-2/3x2; the paper's
    CIFAR model CCT-7/3x1 is ``layers=7, heads=4, dim=256, mlp_ratio=2, conv_layers=1``. Every activation,
    the tokenizer's ReLUs and the encoder's GELUs, is a candidate site.
    """

    def __init__(
        self,
        act: ActivationFactory,
        spec: InputSpec,
        *,
        layers: int = 2,
        heads: int = 2,
        dim: int = 128,
        mlp_ratio: float = 1.0,
        conv_layers: int = 2,
    ) -> None:
        super().__init__()
        for option, value in (("layers", layers), ("heads", heads), ("dim", dim), ("conv_layers", conv_layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"cct option {option} must be a positive integer, got {value!r}")
        if dim % heads:
            raise ConfigError(f"cct option dim ({dim}) must be a multiple of heads ({heads})")
        if not isinstance(mlp_ratio, (int, float)) or mlp_ratio <= 0:
            raise ConfigError(f"cct option mlp_ratio must be a number > 0, got {mlp_ratio!r}")
        assert spec.image_size is not None  # _check_spec rejects tabular inputs for image models
        tokenizer: list[nn.Module] = []
        c_in, size = spec.in_channels, spec.image_size
        for index in range(conv_layers):
            c_out = dim if index == conv_layers - 1 else 64
            tokenizer += [nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), act(), nn.MaxPool2d(3, 2, 1)]
            c_in, size = c_out, (size - 1) // 2 + 1
        self.tokenizer = nn.Sequential(*tokenizer, nn.Flatten(2))
        self.position = nn.Parameter(nn.init.trunc_normal_(torch.empty(1, size * size, dim), std=0.2))
        self.encoder = nn.Sequential(*(_EncoderLayer(dim, heads, mlp_ratio, act) for _ in range(layers)))
        self.norm = nn.LayerNorm(dim)
        self.pool = nn.Linear(dim, 1)
        self.head = nn.Linear(dim, spec.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.tokenizer(x).transpose(1, 2) + self.position  # (N, tokens, dim)
        tokens = self.norm(self.encoder(tokens))
        weights = self.pool(tokens).softmax(dim=1)  # (N, tokens, 1)
        return self.head((weights * tokens).sum(dim=1))
