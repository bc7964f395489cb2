"""How a parametric form is shown to users: with its values, never as a bare symbol.

``mila``, ``mila --fixed beta=-0.1`` and ``--fixed beta=5`` are three different functions; printing all
three as ``x*tanh(softplus(beta + x))`` hides what was trained. Fixed values are substituted into the
formula; learned parameters stay symbolic (the form is what was searched) and their values follow, as the
mean ± sample standard deviation over the runs (seeds) that learned them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sympy

from afos.space.parse import canonical, parameter_symbol, parse

DIGITS = 4  # significant digits shown; the stored values keep full precision


def _rounded(value: float) -> sympy.Float:
    return sympy.Float(float(f"{value:.{DIGITS}g}"))


def _learned_text(name: str, values: Sequence[float | None]) -> str:
    finite = [v for v in values if v is not None]
    if not finite:
        return f"{name} = ?"
    mean = statistics.fmean(finite)
    if len(finite) == 1:
        return f"{name} = {mean:.{DIGITS}g}"
    return f"{name} = {mean:.{DIGITS}g} ± {statistics.stdev(finite):.2g} (n={len(finite)})"


def display_form(
    expression: str,
    fixed: Mapping[str, float] | None = None,
    learned: Mapping[str, Sequence[float | None]] | None = None,
    learnable: Iterable[str] = (),
) -> str:
    """``expression`` with ``fixed`` values substituted, followed by the ``learned`` values (one per run);
    ``learnable`` names parameters that stay symbolic without values to show.

    >>> display_form("x*tanh(softplus(x + beta))", fixed={"beta": -0.1})
    'x*tanh(softplus(x - 0.1))'
    >>> display_form("x*sigmoid(beta*x)", learned={"beta": [1.2, 1.4]})
    'x*sigmoid(beta*x)  [beta = 1.3 ± 0.14 (n=2)]'
    """
    fixed, learned = dict(fixed or {}), dict(learned or {})
    expr = parse(expression, params=[*fixed, *learned, *learnable])
    text = canonical(expr.xreplace({parameter_symbol(k): _rounded(v) for k, v in fixed.items()}))
    if not learned:
        return text
    return f"{text}  [{', '.join(_learned_text(name, learned[name]) for name in sorted(learned))}]"


def site_mean(params: Mapping[str, Mapping[str, Any]], name: str) -> float | None:
    """A run's learned value of ``name``, averaged over its activation sites (a channel-scope site gives
    its mean); None when no site learned it."""
    values = [v["mean"] if isinstance(v, Mapping) else v for site in params.values()
              if (v := site.get(name)) is not None]
    finite = [float(v) for v in values if v is not None]
    return statistics.fmean(finite) if finite else None


def expression_size(text: str, params: Iterable[str] = ()) -> int:
    """The size of a function as PySR counts complexity: one per node of its canonical expression tree
    (every operator, ``x``, parameter and constant), so that ``x`` is 1 and ``x*sigmoid(x)`` is 4."""
    return sum(1 for _ in sympy.preorder_traversal(parse(text, params)))
