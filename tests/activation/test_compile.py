"""The Activation module: dtypes, devices, gradients, pickling and learnable parameters."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

from afos.activation.module import Activation
from afos.errors import ParseError, UserError

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
REFERENCES = {
    "relu": torch.relu,
    "silu": F.silu,
    "gelu": F.gelu,
    "mish": F.mish,
    "softplus": F.softplus,
    "elu": F.elu,
    "selu": F.selu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "leaky_relu": F.leaky_relu,
    "-x*erf(exp(-x))": lambda x: -x * torch.erf(torch.exp(-x)),
    "x*tanh(softplus(x - 0.25))": lambda x: x * torch.tanh(F.softplus(x - 0.25)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("text", sorted(REFERENCES))
def test_matches_torch_reference(text: str, dtype: torch.dtype, device: str) -> None:
    x = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    result = Activation(text).to(device)(x)
    assert result.dtype == dtype and result.shape == x.shape and result.device.type == device
    tolerance = {torch.bfloat16: 2e-2, torch.float32: 1e-6, torch.float64: 1e-12}[dtype]
    torch.testing.assert_close(result, REFERENCES[text](x), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("text", ["-x*erf(exp(-x))", "mila", "gelu", "x*atan(x) + sin(x)", "softsign"])
def test_gradcheck_away_from_kinks(text: str) -> None:
    x = torch.linspace(-3, 3, 13, dtype=torch.float64).add(0.05).requires_grad_(True)
    assert torch.autograd.gradcheck(Activation(text), (x,))


def test_pickle_and_deepcopy_round_trip() -> None:
    act = Activation("x*tanh(softplus(x + beta))", learnable={"beta": -0.25})
    with torch.no_grad():
        act.params["beta"].fill_(0.5)
    x = torch.randn(10)
    for clone in (pickle.loads(pickle.dumps(act)), copy.deepcopy(act)):
        assert clone.values() == {"beta": 0.5}
        torch.testing.assert_close(clone(x), act(x))


def test_learnable_parameter_gets_gradient_and_keeps_dtype() -> None:
    act = Activation("x*sigmoid(beta*x)", learnable={"beta": 1.0})
    x = torch.randn(64)
    act(x).square().sum().backward()
    assert act.params["beta"].grad is not None and act.params["beta"].grad.abs() > 0
    assert act(x.bfloat16()).dtype == torch.bfloat16


def test_fixed_values_are_substituted_not_trained() -> None:
    act = Activation("x*tanh(softplus(x + beta))", fixed={"beta": 0.0})
    assert list(act.parameters()) == []
    torch.testing.assert_close(act(torch.linspace(-3, 3, 7)), F.mish(torch.linspace(-3, 3, 7)))


def test_constant_expression_keeps_input_shape() -> None:
    assert Activation("zero(x) + 2")(torch.randn(3, 4)).shape == (3, 4)


def test_errors_are_user_errors() -> None:
    with pytest.raises(ParseError):
        Activation("tanh(")
    with pytest.raises(UserError, match="beta"):
        Activation("x + beta", learnable={})  # beta is unknown without a declaration
    with pytest.raises(UserError, match="both learnable and fixed"):
        Activation("x + beta", learnable={"beta": 1.0}, fixed={"beta": 2.0})


@pytest.mark.slow
def test_torch_compile_with_dynamic_shapes_matches_eager() -> None:
    act = Activation("-x*erf(exp(-x))", compile=True)
    eager = Activation("-x*erf(exp(-x))")
    for shape in [(8, 4), (16, 3, 5), (2, 2, 2, 2)]:
        x = torch.randn(shape)
        torch.testing.assert_close(act(x), eager(x))
