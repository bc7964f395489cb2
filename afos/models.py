"""Network architectures in which every activation is the candidate under evaluation.

Each builder receives an *activation factory* and calls it once per activation site, so the candidate
replaces every activation of the network and a candidate with learnable parameters gets its own
parameters in every layer. `build_model` remembers which modules the factory produced (by their
qualified names on the model, which survive `copy.deepcopy`, pickling and `.to(device)`), and
`activation_sites` hands them back in forward order for per-layer reporting.

Image models accept any of the dataset sizes used here (8x8 digits, 28x28 MNIST family, 32x32 CIFAR):
they end in adaptive average pooling, so the classifier's input width does not depend on the image size.

Torchvision models (`resnet18`, `resnet50`, `mobilenet_v3_small`) are used as published, with two
documented limits:

* torchvision's ResNet ``BasicBlock``/``Bottleneck`` call one ``self.relu`` module two or three times in
  ``forward``. Giving each call its own module would mean rewriting torchvision's ``forward``, so each
  block holds a single candidate module: learnable activation parameters are per block, not per use.
* MobileNetV3's squeeze-and-excitation ``Hardsigmoid`` is kept. It is a gate that squashes channel
  weights into [0, 1], not the network's nonlinearity; an unbounded candidate there would change the
  block from attention to a free multiplier and confound the comparison.
* Their other in-place modules (MobileNetV3's classifier dropout) are made out-of-place, because they
  would overwrite a candidate's output that its backward pass may need.

They keep torchvision's ImageNet stem (stride 4 before the first block), so they see small images at
very low resolution; the CIFAR-specific models above are the ones to use for accuracy comparisons.

The torchvision models of the AFOS and Hu et al. studies (`alexnet`, `vgg16_bn`, `googlenet`,
`densenet121`) get a small-image stem instead (a 3x3 stride-1 first conv, no stem pool; VGG's pools in
ceil mode), without which 28 px inputs shrink to nothing before their last pool. `cct` is a Compact
Convolutional Transformer written here (torchvision has none).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from afos.errors import ConfigError

ActivationFactory = Callable[[], nn.Module]

_SITES_ATTR = "afos_activation_sites"
"""Attribute on a built model: qualified names of its activation sites, in forward order."""

_TORCHVISION_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU)


@dataclass(frozen=True)
class InputSpec:
    """What the data looks like; the builders size their first and last layers from it."""

    in_channels: int
    num_classes: int
    image_size: int | None
    num_features: int | None


# --------------------------------------------------------------------------------------------- helpers


def _conv_bn_act(
    c_in: int, c_out: int, act: ActivationFactory, *, kernel: int = 3, stride: int = 1, groups: int = 1
) -> list[nn.Module]:
    """Conv -> BatchNorm -> activation; the conv has no bias because BatchNorm's shift replaces it."""
    conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)
    return [conv, nn.BatchNorm2d(c_out), act()]


def _classifier_head(channels: int, num_classes: int) -> list[nn.Module]:
    """Global average pooling makes the classifier independent of the input image size."""
    return [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule at a dotted path (``torch``'s own `set_submodule` is missing before 2.3)."""
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name), child, module)


# ------------------------------------------------------------------------------------- small models


def _mlp(act: ActivationFactory, spec: InputSpec, *, hidden: Sequence[int] = (128, 64)) -> nn.Module:
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


def _small_cnn(act: ActivationFactory, spec: InputSpec) -> nn.Module:
    """Two-conv CNN sized for 8x8 digits so a fitness evaluation takes seconds on a CPU.

    Pooling to 4x4 rather than 1x1 keeps the stroke layout, which is most of the signal in 8x8 digits.
    """
    return nn.Sequential(
        *_conv_bn_act(spec.in_channels, 16, act),
        nn.MaxPool2d(2),
        *_conv_bn_act(16, 32, act),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(32 * 16, spec.num_classes),
    )


def _lenet5(act: ActivationFactory, spec: InputSpec) -> nn.Module:
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


def _afos_cnn(act: ActivationFactory, spec: InputSpec) -> nn.Module:
    """The AFOS paper's VGG-style CNN: three blocks of two 3x3 convs, each pooled and dropped out.

    The pool before the dense layer outputs 4x4, which is the identity at the paper's 32x32 input (so
    the dense layer has the paper's 2048 inputs) while letting 8x8 and 28x28 inputs through.
    """
    layers: list[nn.Module] = []
    c_in = spec.in_channels
    for width, dropout in ((32, 0.2), (64, 0.3), (128, 0.4)):
        layers += [*_conv_bn_act(c_in, width, act), *_conv_bn_act(width, width, act)]
        layers += [nn.MaxPool2d(2), nn.Dropout(dropout)]
        c_in = width
    layers += [nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128 * 16, 128), act(), nn.Dropout(0.5)]
    layers.append(nn.Linear(128, spec.num_classes))
    return nn.Sequential(*layers)


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
        self.stem = nn.Sequential(*_conv_bn_act(spec.in_channels, 16, act))
        blocks: list[nn.Module] = []
        c_in = 16
        for stage, width in enumerate((16, 32, 64)):
            for index in range(per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(_BasicBlock(c_in, width, stride, act, shortcut))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(*_classifier_head(64, spec.num_classes))

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
        layers = [] if expansion == 1 else _conv_bn_act(c_in, hidden, act, kernel=1)
        layers += _conv_bn_act(hidden, hidden, act, stride=stride, groups=hidden)
        layers += [nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        return x + out if self.residual else out


def _mobilenetv2(act: ActivationFactory, spec: InputSpec) -> nn.Module:
    """MobileNetV2 (width 1.0) for small images; the candidate takes the place of every ReLU6."""
    layers = _conv_bn_act(spec.in_channels, 32, act)
    c_in = 32
    for expansion, width, count, stride in _MOBILENETV2_STAGES:
        for index in range(count):
            layers.append(_InvertedResidual(c_in, width, stride if index == 0 else 1, expansion, act))
            c_in = width
    layers += _conv_bn_act(c_in, 1280, act, kernel=1)
    layers += _classifier_head(1280, spec.num_classes)
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------------- torchvision models


def _torchvision(
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
            _set_submodule(model, name, act())
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
    _set_submodule(model, name, stem)


def _small_stem_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A 3x3 stride-1 conv in place of an ImageNet stem conv, keeping its width and bias."""
    return nn.Conv2d(in_channels, conv.out_channels, 3, 1, 1, bias=conv.bias is not None)


def _adapt_alexnet(model: nn.Module, spec: InputSpec) -> nn.Module:
    """AlexNet's 11x11/4 stem and first max-pool would shrink a 32 px image to nothing before the last
    pool; a 3x3/1 stem without that pool leaves 7x7 at 32 px, which the 6x6 adaptive pool keeps."""
    features = cast(nn.Sequential, model.features)
    features[0] = _small_stem_conv(cast(nn.Conv2d, features[0]), spec.in_channels)
    features[2] = nn.Identity()
    return model


def _adapt_vgg(model: nn.Module, spec: InputSpec) -> nn.Module:
    """VGG's stem is already 3x3/1; ceil-mode pools let its five halvings reach 1x1 from 28 px too."""
    if spec.in_channels != 3:
        _adapt_first_conv(model, spec.in_channels)
    for module in cast(nn.Sequential, model.features):
        if isinstance(module, nn.MaxPool2d):
            module.ceil_mode = True
    return model


def _adapt_googlenet(model: nn.Module, spec: InputSpec) -> nn.Module:
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
            _set_submodule(model, name, nn.Sequential(module.conv, module.bn, nn.ReLU()))
    return model


def _adapt_densenet(model: nn.Module, spec: InputSpec) -> nn.Module:
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


def _airbench(
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
    layers = _conv_bn_act(spec.in_channels, channels, act)
    for width in widths:
        layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.MaxPool2d(2, ceil_mode=True)]
        layers += [nn.BatchNorm2d(width), act(), *_conv_bn_act(width, width, act)]
        channels = width
    head = [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(channels, spec.num_classes), _Scale(float(logit_scale))]
    return nn.Sequential(*layers, *head)


# ------------------------------------------------------------------------------------------ registry

_REGISTRY: dict[str, tuple[Callable[..., nn.Module], dict[str, object]]] = {
    "mlp": (_mlp, {}),
    "lenet5": (_lenet5, {}),
    "afos_cnn": (_afos_cnn, {}),
    "resnet20": (CifarResNet, {"depth": 20}),
    "resnet56": (CifarResNet, {"depth": 56}),
    "mobilenetv2": (_mobilenetv2, {}),
    "resnet18": (_torchvision, {"arch": "resnet18"}),
    "resnet50": (_torchvision, {"arch": "resnet50"}),
    "mobilenet_v3_small": (_torchvision, {"arch": "mobilenet_v3_small"}),
    "small_cnn": (_small_cnn, {}),
    "alexnet": (_torchvision, {"arch": "alexnet", "adapt": _adapt_alexnet}),
    "vgg16_bn": (_torchvision, {"arch": "vgg16_bn", "adapt": _adapt_vgg}),
    "googlenet": (
        _torchvision,
        {"arch": "googlenet", "adapt": _adapt_googlenet, "arch_options": {"aux_logits": False, "init_weights": True}},
    ),
    "densenet121": (_torchvision, {"arch": "densenet121", "adapt": _adapt_densenet}),
    "cct": (CompactConvTransformer, {}),
    "airbench": (_airbench, {}),
}
"""name -> (builder, keyword arguments fixed by the name). The builder's other keyword-only parameters
are the options a user may pass through `build_model`."""

MODELS: tuple[str, ...] = tuple(_REGISTRY)

_TABULAR_MODELS = frozenset({"mlp"})

_DEFAULT_MODELS = {
    "digits": "mlp",
    "wine": "mlp",
    "mnist": "lenet5",
    "fashion-mnist": "lenet5",
    "cifar10": "resnet20",
    "cifar100": "resnet20",
    "folder": "resnet20",
    "csv": "mlp",
}


def _resolve(name: str) -> str:
    """Canonical model name; '-' is accepted for '_' because CLI users type both."""
    key = name.strip().lower().replace("-", "_")
    if key not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return key


def _check_options(name: str, options: dict[str, object]) -> None:
    builder, fixed = _REGISTRY[name]
    params = inspect.signature(builder).parameters.values()
    allowed = sorted(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in fixed)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) or "none"
        raise ConfigError(f"model {name!r} has no option {', '.join(unknown)}; it accepts: {accepted}")


def _check_spec(name: str, spec: InputSpec) -> None:
    for field in ("in_channels", "num_classes", "image_size", "num_features"):
        value = getattr(spec, field)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{field} must be a positive integer, got {value!r}")
    if name not in _TABULAR_MODELS and spec.image_size is None:
        tabular = ", ".join(sorted(_TABULAR_MODELS))
        raise ConfigError(f"model {name!r} needs image inputs (image_size); use {tabular} for tabular data")


def _recording(factory: ActivationFactory) -> tuple[ActivationFactory, list[nn.Module]]:
    """Wrap the factory so build_model learns which modules are activation sites."""
    made: list[nn.Module] = []

    def make() -> nn.Module:
        module = factory()
        if not isinstance(module, nn.Module):
            raise TypeError(f"activation factory must return an nn.Module, got {type(module).__name__}")
        made.append(module)
        return module

    return make, made


def _init_weights(model: nn.Module) -> None:
    """He-normal (fan_out) convs everywhere, as torchvision does for its own models.

    One convention for every architecture keeps comparisons fair; everything is drawn from torch's global
    generator, so a build after `torch.manual_seed` is reproducible. Linear layers keep their own init.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)


# -------------------------------------------------------------------------------------------- public


def build_model(
    name: str,
    activation: ActivationFactory,
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    image_size: int | None = 32,
    num_features: int | None = None,
    **options: object,
) -> nn.Module:
    """Build model `name` with a fresh `activation()` at every activation site.

    `options` are per-model settings: ``hidden`` (mlp, a sequence of layer widths) and ``shortcut``
    (resnet20/resnet56, ``"A"`` zero-padding or ``"B"`` 1x1 projection). Raises ConfigError for an
    unknown name or option or an input shape the model cannot take.
    """
    key = _resolve(name)
    _check_options(key, options)
    spec = InputSpec(in_channels, num_classes, image_size, num_features)
    _check_spec(key, spec)
    builder, fixed = _REGISTRY[key]
    factory, made = _recording(activation)
    model = builder(factory, spec, **fixed, **options)
    _init_weights(model)
    _materialize(model, spec)
    made_ids = {id(module) for module in made}
    sites = tuple(n for n, m in model.named_modules() if id(m) in made_ids)
    setattr(model, _SITES_ATTR, sites)
    return model


def _materialize(model: nn.Module, spec: InputSpec) -> None:
    """Give lazily sized parameters (per-channel activation parameters) their shapes with one dummy
    forward pass, so that the optimizer and the parameter count see real tensors."""
    if not any(isinstance(p, nn.UninitializedParameter) for p in model.parameters()):
        return
    size = spec.image_size
    shape = (2, spec.num_features or 1) if size is None else (2, spec.in_channels, size, size)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(shape))
    model.train(was_training)


def default_model(dataset_name: str) -> str:
    """The architecture a dataset is evaluated with unless the user picks another."""
    try:
        return _DEFAULT_MODELS[dataset_name.lower()]
    except KeyError:
        known = ", ".join(_DEFAULT_MODELS)
        raise ConfigError(f"no default model for dataset {dataset_name!r}; known datasets: {known}") from None


def activation_sites(model: nn.Module) -> list[nn.Module]:
    """The candidate modules of a model from `build_model`, in the order the forward pass first uses them.

    A module shared by several uses (torchvision's per-block ReLU) appears once.
    """
    names = getattr(model, _SITES_ATTR, None)
    if names is None:
        raise ValueError("model was not built by afos.models.build_model; its activation sites are unknown")
    return [model.get_submodule(name) for name in names]
