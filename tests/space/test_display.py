"""Parametric forms are displayed with their values."""

from __future__ import annotations

import doctest

import pytest

import afos.space.display
from afos.errors import ParseError
from afos.space.display import display_form


def test_fixed_values_are_substituted_so_different_functions_read_differently() -> None:
    texts = {display_form("x*tanh(softplus(x + beta))", fixed={"beta": beta}) for beta in (-0.25, -0.1, 5.0)}
    assert texts == {"x*tanh(softplus(x - 0.25))", "x*tanh(softplus(x - 0.1))", "x*tanh(softplus(x + 5.0))"}
    assert display_form("x*tanh(softplus(x + beta))", fixed={"beta": -0.123456789}) == "x*tanh(softplus(x - 0.1235))"


def test_learned_values_show_mean_and_spread_over_runs() -> None:
    text = display_form("b*tanh(a*x + c)", fixed={"c": 0.0}, learned={"a": [0.9, 1.1, 1.0], "b": [2.0]})
    assert text == "b*tanh(a*x)  [a = 1 ± 0.1 (n=3), b = 2]"
    assert display_form("x*sigmoid(beta*x)", learned={"beta": [None]}) == "x*sigmoid(beta*x)  [beta = ?]"


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(afos.space.display).failed == 0


def test_unknown_names_are_still_parse_errors() -> None:
    with pytest.raises(ParseError):
        display_form("x*gamma", fixed={"beta": 1.0})
