"""The cost model prices what the lowering runs: ReLU is 1.0, one function costs one number whatever its
spelling, every kernel has a measured weight, shared sub-expressions are paid once, parameters' gradients
are paid for, and benchmarks/op_cost.py --write rewrites the weights and nothing else."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import pytest
import sympy

import afos.space.cost
from afos.space.cost import WEIGHTS, cost, kernel_weight
from afos.space.derive import GRAD, adjoints
from afos.space.lower import KERNELS, clamp_tie, lower, lower_many
from afos.space.parse import X, parse

ROOT = Path(__file__).resolve().parents[2]


def test_relu_costs_one() -> None:
    assert cost("max(x, 0)") == 1.0
    assert cost("relu(x)") == 1.0


def test_every_kernel_has_a_weight_and_every_weight_a_kernel() -> None:
    assert set(WEIGHTS) == set(KERNELS)


def test_every_weight_is_positive_and_finite() -> None:
    assert all(math.isfinite(w) and w > 0 for w in WEIGHTS.values())


@pytest.mark.parametrize(
    "one, other",
    [("x*sigmoid(x)", "sigmoid(x)*x"), ("x*sigmoid(x)", "silu(x)"), ("x + tanh(x)", "tanh(x) + x"),
     ("max(x, 0)", "max(0, x)"), ("x*tanh(softplus(x))", "mish(x)")],
)
def test_two_spellings_of_one_function_cost_the_same(one: str, other: str) -> None:
    assert cost(one) == cost(other)


@pytest.mark.parametrize(
    "smaller, larger",
    [("tanh(x)", "tanh(x) + sin(x)"), ("x*erf(x)", "x*erf(exp(x))"), ("sin(x)", "sin(x)*cos(x)"),
     ("x", "tanh(x)"), ("max(x, 0)", "max(x, 0)*tanh(x)"), ("x*sigmoid(x)", "x*sigmoid(x) + x")],
)
def test_an_added_operation_never_lowers_the_cost(smaller: str, larger: str) -> None:
    assert cost(smaller) < cost(larger)


def test_a_shared_sub_expression_is_priced_once() -> None:
    assert cost("tanh(x)*tanh(x)") < cost("tanh(x)*tanh(2*x)")
    assert cost("exp(tanh(x)) + sin(tanh(x))") < cost("exp(tanh(x)) + sin(tanh(2*x))")
    once = WEIGHTS["add"] + WEIGHTS["exp"] + WEIGHTS["sin"] + WEIGHTS["tanh"]
    assert kernel_weight(parse("exp(tanh(x)) + sin(tanh(x))"), set()) == pytest.approx(once)


def test_an_n_ary_sum_is_n_minus_one_kernels_and_constants_are_free() -> None:
    assert kernel_weight(parse("x + sin(x) + cos(x)"), set()) == pytest.approx(
        2 * WEIGHTS["add"] + WEIGHTS["sin"] + WEIGHTS["cos"]
    )
    assert kernel_weight(parse("sin(x) + 2*sqrt(3)"), set()) == pytest.approx(WEIGHTS["add"] + WEIGHTS["sin"])
    assert cost("x") == 0.0  # no kernel forward, the incoming gradient passes through


def test_learnable_parameters_gradients_are_counted() -> None:
    assert cost("p0*x", ["p0"]) > cost("2*x")
    assert cost("b*tanh(a*x + c) + d", ["a", "b", "c", "d"]) > cost("2*tanh(3*x + 1) + 4")


@pytest.mark.parametrize(
    "text", ["max(x, 0)*tanh(x)", "-x*erf(exp(-x))", "x*tanh(softplus(x - 0.25))", "atanh(tanh(x)) + sinc(x)"]
)
def test_the_model_prices_each_kernel_the_lowering_runs(text: str) -> None:
    """Forward and fused backward: one priced node per step of the lowered programs."""
    expr = parse(text)
    forward: set[sympy.Basic] = set()
    kernel_weight(expr, forward)
    assert len(forward) == len(lower(expr, (X,)).steps)
    slopes = adjoints(expr, (X,), clamp_tie=clamp_tie())
    backward: set[sympy.Basic] = set()
    for slope in slopes:
        kernel_weight(slope, backward)
    assert len(backward) == len(lower_many(slopes, (GRAD, X)).steps)


def _op_cost() -> ModuleType:
    spec = importlib.util.spec_from_file_location("op_cost", ROOT / "benchmarks" / "op_cost.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_op_cost_writes_the_weights_literal_and_nothing_else(tmp_path: Path) -> None:
    op_cost = _op_cost()
    source = Path(afos.space.cost.__file__).read_text()
    assert op_cost.weights_literal(WEIGHTS) in source  # the table is in the format --write writes
    copy = tmp_path / "cost.py"
    copy.write_text(source)
    op_cost.write_weights({**WEIGHTS, "sinh": 123.456}, copy)
    written = copy.read_text()
    assert '"sinh": 123.46,' in written
    assert all(len(line) <= 110 for line in written.splitlines())
    op_cost.write_weights(WEIGHTS, copy)
    assert copy.read_text() == source
