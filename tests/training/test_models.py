"""Tests for afos.models: shapes at every dataset size, one candidate per activation site, gradients."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from afos.errors import ConfigError
from afos.training.config import TrainConfig
from afos.training.data.registry import DATASETS, default_model
from afos.training.fitness import run_fitness
from afos.training.models.registry import MODELS, activation_sites, build_model

REPLACED = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish)

SITES = {
    "mlp": 2,  # two hidden layers
    "small_cnn": 2,
    "lenet5": 4,  # two convs, two dense
    "afos_cnn": 7,  # six convs, one dense
    "resnet20": 19,  # stem + 9 blocks x 2
    "resnet56": 55,  # stem + 27 blocks x 2
    "mobilenetv2": 35,  # stem + 1 unexpanded block + 16 blocks x 2 + last 1x1 conv
    "resnet18": 9,  # stem + 8 blocks, one shared module per block
    "resnet50": 17,  # stem + 16 blocks, one shared module per block
    "mobilenet_v3_small": 33,  # SE gates (Hardsigmoid) are kept
    "alexnet": 7,  # five convs, two dense
    "vgg16_bn": 15,  # thirteen convs, two dense
    "googlenet": 57,  # three stem convs + 9 inception blocks x 6 convs
    "densenet121": 121,  # stem + 58 dense layers x 2 + 3 transitions + the final activation
    "cct": 4,  # two tokenizer convs + one MLP activation per encoder layer (2)
    "airbench": 7,  # stem + 3 blocks x 2
}


class ScaledTanh(nn.Module):
    """A candidate with a learnable parameter that saves its output for backward (like many candidates)."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.alpha * x)


class CountingFactory:
    """Activation factory that remembers every module it made."""

    def __init__(self) -> None:
        self.made: list[nn.Module] = []

    def __call__(self) -> nn.Module:
        module = ScaledTanh()
        self.made.append(module)
        return module


def _inputs(name: str, batch: int = 2) -> tuple[dict, torch.Tensor]:
    """build_model kwargs and a matching batch; small sizes keep the heavy models fast on CPU."""
    if name in ("mlp", "small_cnn"):
        return {"in_channels": 1, "image_size": 8}, torch.randn(batch, 1, 8, 8)
    return {"in_channels": 3, "image_size": 32}, torch.randn(batch, 3, 32, 32)


def test_registry_lists_every_model() -> None:
    assert set(MODELS) == set(SITES)


@pytest.mark.parametrize("name", MODELS)
def test_every_activation_is_a_fresh_candidate(name: str) -> None:
    factory = CountingFactory()
    kwargs, _ = _inputs(name)
    model = build_model(name, factory, num_classes=7, **kwargs)
    sites = activation_sites(model)
    assert len(factory.made) == len(sites) == SITES[name]
    assert {id(m) for m in sites} == {id(m) for m in factory.made}
    assert not any(isinstance(m, REPLACED) for m in model.modules())


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_reaches_every_site_in_order(name: str) -> None:
    kwargs, x = _inputs(name)
    model = build_model(name, CountingFactory(), num_classes=7, **kwargs)
    sites = activation_sites(model)
    used: list[int] = []
    for site in sites:
        site.register_forward_hook(lambda module, _inp, _out: used.append(id(module)))
    out = model(x)
    assert out.shape == (2, 7)
    out.logsumexp(dim=1).mean().backward()
    assert list(dict.fromkeys(used)) == [id(m) for m in sites]
    assert all(site.alpha.grad is not None and torch.isfinite(site.alpha.grad) for site in sites)


@pytest.mark.parametrize(
    ("name", "channels", "size"),
    [
        ("mlp", 3, 32),
        ("small_cnn", 1, 28),
        ("lenet5", 1, 8),
        ("lenet5", 1, 28),
        ("lenet5", 3, 32),
        ("afos_cnn", 1, 8),
        ("afos_cnn", 1, 28),
        ("resnet20", 1, 8),
        ("resnet20", 1, 28),
        ("mobilenetv2", 1, 8),
        ("mobilenetv2", 1, 28),
        ("resnet18", 1, 8),
        ("mobilenet_v3_small", 1, 28),
    ],
)
def test_models_accept_every_dataset_size(name: str, channels: int, size: int) -> None:
    model = build_model(name, nn.ReLU, in_channels=channels, num_classes=100, image_size=size).eval()
    with torch.no_grad():
        assert model(torch.randn(2, channels, size, size)).shape == (2, 100)


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_on_cpu(name: str) -> None:
    """A real fitness run of one optimizer step on digits (8x8 images), the smallest input every model takes."""
    config = TrainConfig(model=name, steps=1, batch_size=16, lr=1e-3, device="cpu", val_fraction=0.05)
    result = run_fitness(lambda: nn.SiLU(), config)
    assert result.status == "ok", result.reason
    assert result.steps == 1
    assert 0.0 <= result.test_accuracy <= 1.0


@pytest.mark.parametrize(("name", "size"), [("alexnet", 28), ("vgg16_bn", 28), ("googlenet", 64),
                                            ("densenet121", 28), ("cct", 32), ("cct", 64)])
def test_new_models_take_28_to_64_pixels(name: str, size: int) -> None:
    model = build_model(name, nn.ReLU, in_channels=1, num_classes=5, image_size=size).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, size, size)).shape == (2, 5)


def test_cct_options_set_depth_and_width() -> None:
    model = build_model("cct", nn.GELU, layers=3, heads=4, dim=64, mlp_ratio=2, conv_layers=1)
    assert len(model.encoder) == 3
    assert model.encoder[0].mlp[0].out_features == 128
    assert len(activation_sites(model)) == 1 + 3
    with pytest.raises(ConfigError, match="multiple of heads"):
        build_model("cct", nn.GELU, heads=3)


def test_airbench_scales_its_logits() -> None:
    torch.manual_seed(0)
    scaled = build_model("airbench", nn.ReLU, in_channels=3, image_size=32).eval()
    torch.manual_seed(0)
    plain = build_model("airbench", nn.ReLU, in_channels=3, image_size=32, logit_scale=1.0).eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(scaled(x) * 9, plain(x), atol=1e-5)


def test_lenet5_keeps_classic_geometry_at_28_and_32() -> None:
    for channels, size in ((1, 28), (3, 32)):
        model = build_model("lenet5", nn.ReLU, in_channels=channels, image_size=size)
        features = model[:6](torch.randn(1, channels, size, size))
        assert features.shape == (1, 16, 5, 5)


def test_mlp_takes_tabular_rows_and_hidden_sizes() -> None:
    model = build_model(
        "mlp", nn.ReLU, num_features=13, num_classes=3, image_size=None, hidden=(256, 128, 32)
    )
    assert [m.out_features for m in model if isinstance(m, nn.Linear)] == [256, 128, 32, 3]
    assert len(activation_sites(model)) == 3
    assert model(torch.randn(4, 13)).shape == (4, 3)


def test_resnet_projection_shortcut_adds_1x1_convs() -> None:
    option_a = build_model("resnet20", nn.ReLU)
    option_b = build_model("resnet20", nn.ReLU, shortcut="B")
    kernels_a = [m.kernel_size for m in option_a.modules() if isinstance(m, nn.Conv2d)]
    kernels_b = [m.kernel_size for m in option_b.modules() if isinstance(m, nn.Conv2d)]
    assert (1, 1) not in kernels_a
    assert kernels_b.count((1, 1)) == 2  # one per stage transition
    assert option_b(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_torchvision_first_conv_follows_in_channels() -> None:
    model = build_model("resnet18", nn.ReLU, in_channels=1)
    assert model.conv1.in_channels == 1
    assert model.conv1.kernel_size == (7, 7)


def test_mobilenet_v3_keeps_its_gates() -> None:
    model = build_model("mobilenet_v3_small", CountingFactory())
    gates = [m for m in model.modules() if isinstance(m, nn.Hardsigmoid)]
    assert len(gates) == 9


def test_build_is_deterministic_under_manual_seed() -> None:
    states = []
    for _ in range(2):
        torch.manual_seed(3)
        states.append(build_model("resnet20", nn.ReLU).state_dict())
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])
    torch.manual_seed(4)
    other = build_model("resnet20", nn.ReLU).state_dict()
    assert not torch.equal(states[0]["stem.0.weight"], other["stem.0.weight"])


def test_sites_survive_deepcopy_and_pickle() -> None:
    model = build_model("small_cnn", CountingFactory(), in_channels=1, image_size=8)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        sites = activation_sites(clone)
        assert len(sites) == 2
        assert all(isinstance(s, ScaledTanh) for s in sites)
        assert not {id(s) for s in sites} & {id(s) for s in activation_sites(model)}


def test_names_are_case_and_dash_insensitive() -> None:
    model = build_model("Mobilenet-V3-Small", nn.ReLU, image_size=32)
    assert len(activation_sites(model)) == SITES["mobilenet_v3_small"]


def test_unknown_model_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="resnet20.*small_cnn|small_cnn.*resnet20"):
        build_model("resnet21", nn.ReLU)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("lenet5", {"hidden": (8,)}, "no option hidden; it accepts: none"),
        ("resnet20", {"depth": 32}, "no option depth; it accepts: shortcut"),
        ("resnet20", {"shortcut": "C"}, "shortcut must be 'A' or 'B'"),
        ("mlp", {"hidden": "64"}, "hidden must be a sequence"),
        ("lenet5", {"image_size": None, "num_features": 13}, "needs image inputs"),
        ("mlp", {"image_size": None}, "needs num_features"),
        ("mlp", {"num_classes": 0}, "num_classes must be a positive integer"),
        ("airbench", {"logit_scale": 0}, "logit_scale must be a number in"),
        ("airbench", {"logit_scale": True}, "logit_scale must be a number in"),
        ("airbench", {"widths": [64, 0]}, "widths must be a sequence of positive ints"),
    ],
)
def test_bad_configuration_raises_config_error(name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(name, nn.ReLU, **kwargs)


def test_factory_must_return_a_module() -> None:
    with pytest.raises(TypeError, match="must return an nn.Module"):
        build_model("mlp", lambda: torch.tanh, image_size=8)


def test_activation_sites_needs_a_built_model() -> None:
    with pytest.raises(ValueError, match="not built by"):
        activation_sites(nn.Sequential(nn.ReLU()))


def test_default_models() -> None:
    expected = {
        "digits": "mlp",
        "wine": "mlp",
        "mnist": "lenet5",
        "fashion-mnist": "lenet5",
        "cifar10": "resnet20",
        "cifar100": "resnet20",
    }
    assert {name: default_model(name) for name in expected} == expected
    assert all(default_model(name) in MODELS for name in DATASETS)  # every dataset's spec names a real model
    assert default_model("CIFAR-10") == "resnet20"  # the spellings users type
    with pytest.raises(ConfigError, match="choose one of: digits"):
        default_model("imagenet")
