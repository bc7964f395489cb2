"""The model registry: names, defaults per dataset, :func:`build_model` and :func:`activation_sites`."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from afos.errors import ConfigError
from afos.training.models.cifar import CifarResNet, mobilenetv2
from afos.training.models.common import ActivationFactory, InputSpec
from afos.training.models.published import (
    CompactConvTransformer,
    adapt_alexnet,
    adapt_densenet,
    adapt_googlenet,
    adapt_vgg,
    torchvision_model,
)
from afos.training.models.small import afos_cnn, airbench, lenet5, mlp, small_cnn

_SITES_ATTR = "afos_activation_sites"
"""Attribute on a built model: qualified names of its activation sites, in forward order."""

# ------------------------------------------------------------------------------------------ registry

_REGISTRY: dict[str, tuple[Callable[..., nn.Module], dict[str, object]]] = {
    "mlp": (mlp, {}),
    "lenet5": (lenet5, {}),
    "afos_cnn": (afos_cnn, {}),
    "resnet20": (CifarResNet, {"depth": 20}),
    "resnet56": (CifarResNet, {"depth": 56}),
    "mobilenetv2": (mobilenetv2, {}),
    "resnet18": (torchvision_model, {"arch": "resnet18"}),
    "resnet50": (torchvision_model, {"arch": "resnet50"}),
    "mobilenet_v3_small": (torchvision_model, {"arch": "mobilenet_v3_small"}),
    "small_cnn": (small_cnn, {}),
    "alexnet": (torchvision_model, {"arch": "alexnet", "adapt": adapt_alexnet}),
    "vgg16_bn": (torchvision_model, {"arch": "vgg16_bn", "adapt": adapt_vgg}),
    "googlenet": (
        torchvision_model,
        {"arch": "googlenet", "adapt": adapt_googlenet, "arch_options": {"aux_logits": False, "init_weights": True}},
    ),
    "densenet121": (torchvision_model, {"arch": "densenet121", "adapt": adapt_densenet}),
    "cct": (CompactConvTransformer, {}),
    "airbench": (airbench, {}),
}
"""name -> (builder, keyword arguments fixed by the name). The builder's other keyword-only parameters
are the options a user may pass through `build_model`."""

MODELS: tuple[str, ...] = tuple(_REGISTRY)

_TABULAR_MODELS = frozenset({"mlp"})

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


def activation_sites(model: nn.Module) -> list[nn.Module]:
    """The candidate modules of a model from `build_model`, in the order the forward pass first uses them.

    A module shared by several uses (torchvision's per-block ReLU) appears once.
    """
    names = getattr(model, _SITES_ATTR, None)
    if names is None:
        raise ValueError("model was not built by afos.build_model; its activation sites are unknown")
    return [model.get_submodule(name) for name in names]
