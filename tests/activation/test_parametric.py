"""Parametric and learnable activations: scopes, families, training moves the parameters."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from afos.activation.module import Activation, activation_factory
from afos.activation.spec import resolve_activation
from afos.cli.options import parse_assignments
from afos.errors import UserError
from afos.training.config import TrainConfig
from afos.training.fitness import run_fitness
from afos.training.models.registry import activation_sites, build_model


def test_mila_with_beta_zero_equals_mish() -> None:
    x = torch.linspace(-6, 6, 101, dtype=torch.float64)
    mila = Activation("x*tanh(softplus(x + beta))", fixed={"beta": 0.0})
    torch.testing.assert_close(mila(x), F.mish(x))
    learnable = activation_factory(resolve_activation("mila", learnable={"beta": 0.0}))()
    torch.testing.assert_close(learnable(x.float()), F.mish(x.float()))


def test_layer_scope_gives_one_parameter_set_per_site() -> None:
    spec = resolve_activation("adaptive_tanh")
    model = build_model("resnet20", activation_factory(spec), in_channels=3, num_classes=10, image_size=32)
    sites = activation_sites(model)
    assert len(sites) == 19
    params = {id(site.params["a"]) for site in sites}
    assert len(params) == 19
    assert sites[0].values() == {"a": 1.0, "b": 1.0, "c": 0.0, "d": 0.0}


def test_shared_scope_gives_one_set_for_the_network() -> None:
    spec = resolve_activation("swish_beta", scope="shared")
    model = build_model("mlp", activation_factory(spec), in_channels=1, num_classes=10, image_size=8)
    activation_parameters = [p for site in activation_sites(model) for p in site.parameters()]
    assert len({id(p) for p in activation_parameters}) == 1


@pytest.mark.parametrize(("model", "size", "widths"), [("small_cnn", 8, None), ("mlp", 8, [128, 64])])
def test_channel_scope_shapes_for_conv_and_linear(model: str, size: int, widths: list[int] | None) -> None:
    spec = resolve_activation("adaptive_sigmoid", scope="channel")
    net = build_model(model, activation_factory(spec), in_channels=1, num_classes=10, image_size=size)
    shapes = [tuple(site.params["a"].shape) for site in activation_sites(net)]
    assert all(len(s) == 1 and s[0] > 1 for s in shapes)
    if widths:
        assert [s[0] for s in shapes] == widths
    out = net(torch.randn(4, 1, size, size))
    assert out.shape == (4, 10)


def test_channel_parameters_broadcast_per_channel() -> None:
    act = Activation("a*x", learnable={"a": 1.0}, channel=True)
    x = torch.ones(2, 3, 4, 4)
    act(x)
    with torch.no_grad():
        act.params["a"].copy_(torch.tensor([1.0, 2.0, 3.0]))
    assert act(x)[0, :, 0, 0].tolist() == [1.0, 2.0, 3.0]
    assert act(torch.ones(5, 3))[0].tolist() == [1.0, 2.0, 3.0]


def test_parameters_get_gradients_and_move_in_training() -> None:
    result = run_fitness(activation_factory(resolve_activation("adaptive_tanh")),
                         TrainConfig(dataset="digits", model="mlp", epochs=2, seed=0))
    assert result.status == "ok"
    first_site = result.params["0"]
    assert set(first_site) == {"a", "b", "c", "d"}
    assert any(abs(first_site[name] - start) > 1e-4 for name, start in {"a": 1, "b": 1, "c": 0, "d": 0}.items())


def test_frozen_parameters_do_not_move_with_param_lr_zero() -> None:
    result = run_fitness(activation_factory(resolve_activation("swish_beta")),
                         TrainConfig(dataset="digits", model="mlp", epochs=1, seed=0, param_lr=0.0))
    assert all(site["beta"] == 1.0 for site in result.params.values())


def test_learned_linear_keeps_an_mlp_affine() -> None:
    torch.manual_seed(0)
    net = build_model("mlp", activation_factory(resolve_activation("learned_linear")), in_channels=1,
                      num_classes=10, image_size=8).double()
    a, b = torch.randn(1, 1, 8, 8, dtype=torch.float64), torch.randn(1, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(net((a + b) / 2), (net(a) + net(b)) / 2)  # affine maps keep midpoints


def test_random_starts_are_seeded() -> None:
    spec = resolve_activation("learned_linear")
    torch.manual_seed(5)
    first = activation_factory(spec)().values()
    torch.manual_seed(5)
    assert activation_factory(spec)().values() == first
    assert first["k0"] != first["k1"]


def test_assignment_syntax_and_errors() -> None:
    assert parse_assignments(["beta=-0.25"], allow_random=False) == {"beta": -0.25}
    assert parse_assignments(["k0~N(0,0.1),k1=2"], allow_random=True) == {"k0": "N(0,0.1)", "k1": 2.0}
    with pytest.raises(UserError):
        parse_assignments(["beta~N(0,0.1)"], allow_random=False)
    with pytest.raises(UserError):
        parse_assignments(["beta"], allow_random=True)
    with pytest.raises(UserError, match="do not occur"):
        resolve_activation("x*sigmoid(x)", learnable={"beta": 1.0})
    with pytest.raises(UserError, match="scope"):
        resolve_activation("mila", scope="global")
