"""Every primitive against an independent numpy reference, with gradcheck away from kinks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from afos.errors import ConfigError
from afos.space.primitives import PRIMITIVE_SETS, PRIMITIVES, primitive_set
from tests.space.references import AWAY_FROM_ZERO, BINARY, INSIDE_UNIT, POSITIVE_ONLY, UNARY


def _inputs(name: str, arity: int, count: int = 64, seed: int = 0) -> list[np.ndarray]:
    """Random inputs inside the primitive's domain, kept off kinks (0, a == b, hard-sigmoid's +-3)."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(arity):
        if name in POSITIVE_ONLY:
            v = rng.uniform(0.2, 3.0, count)
        elif name in INSIDE_UNIT:
            v = rng.uniform(-0.9, 0.9, count)
        else:
            v = rng.uniform(-4.0, 4.0, count)
        if name in AWAY_FROM_ZERO or name == "hard_sigmoid":
            v = np.where(np.abs(v) < 0.1, v + 0.3, v)
        if name == "hard_sigmoid":
            v = np.where(np.abs(np.abs(v) - 3) < 0.1, v + 0.3, v)
        values.append(v)
    if arity == 2 and name in {"max", "min", "max0_max"}:
        values[1] = np.where(np.abs(values[0] - values[1]) < 0.1, values[1] + 0.3, values[1])
    return values


def test_every_primitive_has_a_reference() -> None:
    assert set(PRIMITIVES) == set(UNARY) | set(BINARY)
    for name in UNARY:
        assert PRIMITIVES[name].arity == 1
    for name in BINARY:
        assert PRIMITIVES[name].arity == 2


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_primitive_matches_numpy_reference(name: str) -> None:
    primitive = PRIMITIVES[name]
    inputs = _inputs(name, primitive.arity)
    reference = (UNARY if primitive.arity == 1 else BINARY)[name](*inputs)
    result = primitive.torch()(*(torch.from_numpy(v) for v in inputs))
    np.testing.assert_allclose(result.numpy(), reference, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(n for n in PRIMITIVES if n not in {"zero", "one"}))
def test_primitive_gradients(name: str) -> None:
    primitive = PRIMITIVES[name]
    inputs = [torch.from_numpy(v[:8]).requires_grad_(True) for v in _inputs(name, primitive.arity, seed=1)]
    assert torch.autograd.gradcheck(primitive.torch(), tuple(inputs))


@pytest.mark.parametrize("name", ["softplus", "sigmoid", "log_sigmoid", "mish", "swish", "gelu"])
def test_stable_forms_do_not_overflow_in_float32(name: str) -> None:
    x = torch.tensor([-1000.0, -100.0, 0.0, 100.0, 1000.0])
    assert torch.isfinite(PRIMITIVES[name].torch()(x)).all()


def test_guarded_atanh_stays_finite_outside_its_domain() -> None:
    x = torch.tensor([-5.0, -1.0, 1.0, 5.0])
    assert torch.isfinite(PRIMITIVES["atanh"].torch()(x)).all()


#: Relative tolerance of each dtype against float64: a few units in its last place (bfloat16 keeps 8 bits).
DTYPE_RTOL = {torch.float32: 1e-5, torch.bfloat16: 2.0**-5}


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_every_primitive_is_one_function_in_every_dtype(name: str) -> None:
    """float64 (plots, screening, fingerprints), float32 (CPU training) and bfloat16 (GPU autocast) compute
    one function: on inputs each dtype holds exactly, from -8 to 8, they differ by rounding only. (A guard
    with a dtype's own bound once made atanh's plateau 18.37, 8.32 and 2.77: the function shown was not the
    function trained.)"""
    primitive = PRIMITIVES[name]
    grid = torch.linspace(-8, 8, 321, dtype=torch.float64).to(torch.bfloat16).to(torch.float64)
    inputs = [grid, grid.flip(0) / 2][: primitive.arity]
    program = primitive.torch()
    exact = program(*inputs).expand_as(grid)
    for dtype, rtol in DTYPE_RTOL.items():
        rounded = program(*(v.to(dtype) for v in inputs)).double().expand_as(grid)
        finite = torch.isfinite(exact) & (exact.abs() < 1e4)
        assert torch.isfinite(rounded[finite]).all(), f"{name} overflows in {dtype}"
        torch.testing.assert_close(rounded[finite], exact[finite], rtol=rtol, atol=rtol, msg=f"{name} in {dtype}")


def test_sets_name_known_primitives_and_lists_resolve() -> None:
    for name, members in PRIMITIVE_SETS.items():
        assert [p.name for p in primitive_set(name)] == list(members)
    assert [p.name for p in primitive_set("exp, tanh,add")] == ["exp", "tanh", "add"]


def test_unknown_primitive_is_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match="tanhh"):
        primitive_set(["exp", "tanhh"])
