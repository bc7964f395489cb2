"""Fingerprints, screening and shape properties, on known functions."""

from __future__ import annotations

import pytest

from afos.space.probe import equivalent, fingerprint, properties, screen


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("abs(asinh(softplus(x)))", "asinh(softplus(x))"),
        ("max(x, 0)", "relu"),
        ("x*heaviside(x)", "relu"),
        ("(abs(x) + x)/2", "relu"),
        ("x*sigmoid(x)", "swish"),
        ("sigmoid(x)*x + x - x", "silu"),
        ("log(1 + exp(x))", "softplus"),
        ("-softplus(-x)", "log_sigmoid"),
        ("mila(x, 0)", "mish"),
        ("x*tanh(log(1 + exp(x)))", "mish"),
        ("x*(1 + erf(x/sqrt(2)))/2", "gelu"),
        ("tanh(x)", "2*sigmoid(2*x) - 1"),
        ("exp(log(exp(x)))", "exp(x)"),
        ("-x*erf(exp(-x))", "eelu"),
        ("sinh(x)", "(exp(x) - exp(-x))/2"),
    ],
)
def test_equivalent_functions_share_a_fingerprint(a: str, b: str) -> None:
    assert fingerprint(a) == fingerprint(b)
    assert equivalent(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("x*sigmoid(x)", "x*sigmoid(1.0001*x)"),
        ("relu", "leaky_relu"),
        ("relu", "max(x, 0.0001)"),
        ("tanh(x)", "tanh(x) + 1e-6"),
        ("mish", "mila"),
        ("gelu", "x*sigmoid(1.702*x)"),
        ("x", "-x"),
        ("exp(x)", "exp(x) + 1e-7*x"),
    ],
)
def test_near_misses_have_different_fingerprints(a: str, b: str) -> None:
    assert fingerprint(a) != fingerprint(b)
    assert not equivalent(a, b)


def test_fingerprint_is_stable_text() -> None:
    value = fingerprint("-x*erf(exp(-x))")
    assert len(value) == 16 and int(value, 16) >= 0
    assert value == fingerprint("-x*erf(exp(-x))")


def test_parametric_fingerprint_is_taken_at_given_values() -> None:
    at_zero = fingerprint("x*tanh(softplus(x + beta))", params={"beta": 0.0})
    assert at_zero == fingerprint("mish")
    assert at_zero != fingerprint("x*tanh(softplus(x + beta))", params={"beta": -0.25})


@pytest.mark.parametrize(
    "text",
    ["relu", "x*sigmoid(x)", "-x*erf(exp(-x))", "tanh", "mila", "gelu", "x", "sin(x)", "x**2", "elu"],
)
def test_useful_functions_pass_screening(text: str) -> None:
    verdict = screen(text)
    assert verdict.valid, verdict.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("exp(exp(exp(x)))", "non-finite"),
        ("sqrt(x)", "non-finite"),
        ("log(x)", "non-finite"),
        ("1/x", "non-finite"),
        ("x*0 + 3", "constant"),
        ("tanh(x)*1e-9", "constant"),
        ("heaviside(x)", "zero gradient"),
        ("min(max(x, 10), 11)", "zero gradient"),
        ("exp(x**2)", "exploding"),
        ("cosh(3*x)", "exploding"),
    ],
)
def test_useless_functions_are_screened_out_with_a_reason(text: str, reason: str) -> None:
    verdict = screen(text)
    assert not verdict.valid
    assert reason in (verdict.reason or "")


def test_properties_of_known_functions() -> None:
    relu = properties("relu")
    assert relu.value_at_0 == 0 and relu.minimum == 0
    assert relu.monotonic == "increasing" and relu.bounded_below and not relu.bounded_above

    tanh = properties("tanh")
    assert tanh.slope_at_0 == pytest.approx(1.0)
    assert tanh.bounded_below and tanh.bounded_above

    eelu = properties("-x*erf(exp(-x))")
    assert eelu.monotonic == "no"
    assert eelu.slope_at_0 == pytest.approx(-0.8427007929, rel=1e-8)  # -erf(1), by the product rule
    assert 1.0 < eelu.argmin < 1.2 and eelu.minimum < 0
    assert eelu.bounded_below and not eelu.bounded_above

    assert properties("-x").monotonic == "decreasing"
