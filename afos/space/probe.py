"""Numeric probing of candidate functions: fingerprint, equivalence, screening and shape properties.

Everything here evaluates the function on fixed grids in float64 on the CPU, through the same torch
lowering that training uses, so "what was screened" and "what is trained" cannot differ. No
``sympy.simplify`` anywhere: it costs 20 ms to 2 s per tree, while a 125-point probe costs microseconds.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Mapping

import sympy
import torch

from afos.errors import UserError
from afos.space.lower import lower
from afos.space.parse import canonical, parameter_symbol, parse
from afos.space.primitives import X


def _grid(half_width: float, half_count: int) -> torch.Tensor:
    """Symmetric grid of 2*half_count + 1 points with an exact 0 in the middle (linspace misses it)."""
    return torch.arange(-half_count, half_count + 1, dtype=torch.float64) * (half_width / half_count)


#: The fingerprint grid: 125 points over [-20, 20], exactly 0 included, so poles at 0 show.
PROBE = _grid(20.0, 62)
#: Significant digits kept when hashing; float64 rounding noise sits far below this.
DIGITS = 9
#: Values below this magnitude hash as zero, so x - x*1 and 0 agree despite rounding noise.
ZERO = 1e-12

def as_expr(expr: sympy.Expr | str, params: Mapping[str, float] | None = None) -> sympy.Expr:
    """Accept expression text (parsed with the declared parameter names) or a sympy expression."""
    if isinstance(expr, str):
        return parse(expr, params=tuple(params or ()))
    return expr


def evaluate(
    expr: sympy.Expr | str, points: torch.Tensor, params: Mapping[str, float] | None = None
) -> torch.Tensor:
    """f(points) in the dtype of ``points``; every free symbol other than x needs a value in ``params``."""
    expr = as_expr(expr, params)
    names = sorted(str(s) for s in expr.free_symbols - {X})
    missing = [n for n in names if n not in (params or {})]
    if missing:
        raise UserError(f"parameter(s) {', '.join(missing)} need a value")
    program = lower(expr, [X, *(parameter_symbol(n) for n in names)])
    values = [torch.tensor(float(params[n]), dtype=points.dtype) for n in names]  # type: ignore[index]
    return program(points, *values)


def value_and_slope(
    expr: sympy.Expr | str, points: torch.Tensor, params: Mapping[str, float] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """f and f' at ``points`` (autograd; a function that ignores x has slope 0 everywhere).

    Screening calls this for every candidate, so it takes one backward pass without ``create_graph``;
    :func:`derivatives` keeps the graph for higher orders and costs more for the same first derivative."""
    points = points.detach().requires_grad_(True)
    values = evaluate(expr, points, params)
    if not values.requires_grad:
        return values.detach(), torch.zeros_like(points).detach()
    (slope,) = torch.autograd.grad(values.sum(), points)
    return values.detach(), slope


def derivatives(
    expr: sympy.Expr | str, points: torch.Tensor, order: int, params: Mapping[str, float] | None = None
) -> list[torch.Tensor]:
    """f, f', ... up to the ``order``-th derivative at ``points``, by repeated autograd through the training
    lowering (zero where a derivative vanishes identically): what plots and ``afos serve`` draw."""
    points = points.detach().requires_grad_(True)
    current = evaluate(expr, points, params)
    curves = [current]
    for _ in range(order):
        if current.requires_grad:
            (current,) = torch.autograd.grad(current.sum(), points, create_graph=True)
        else:
            current = torch.zeros_like(points)
        curves.append(current)
    return [curve.detach() for curve in curves]


def _hash_values(values: torch.Tensor) -> str:
    tokens = []
    for value in values.tolist():
        if math.isnan(value):
            tokens.append("nan")
        elif math.isinf(value):
            tokens.append("+inf" if value > 0 else "-inf")
        elif abs(value) < ZERO:
            tokens.append("0")
        else:
            tokens.append(f"{value:.{DIGITS}g}")
    return hashlib.sha256(",".join(tokens).encode()).hexdigest()[:16]


def fingerprint(expr: sympy.Expr | str, params: Mapping[str, float] | None = None) -> str:
    """A 16-hex-digit hash of the function's values on :data:`PROBE`.

    Equal for candidates computing the same function however sympy writes them (e.g.
    ``abs(asinh(softplus(x)))`` and ``asinh(softplus(x))``); a parametric form is fingerprinted at the
    given (initial) parameter values. A hash match is a strong hint, :func:`equivalent` the confirmation.
    """
    with torch.no_grad():
        return _hash_values(evaluate(expr, PROBE, params))


def equivalent(
    a: sympy.Expr | str, b: sympy.Expr | str, params: Mapping[str, float] | None = None
) -> bool:
    """Confirm numerically, on a dense grid off the probe points, that two functions agree."""
    points = torch.linspace(-20.0, 20.0, 4001, dtype=torch.float64) + 1e-3
    with torch.no_grad():
        fa, fb = evaluate(a, points, params), evaluate(b, points, params)
    return bool(torch.allclose(fa, fb, rtol=1e-7, atol=1e-10, equal_nan=True))


@dataclass(frozen=True)
class Verdict:
    """Screening outcome: ``valid`` or the ``reason`` the function cannot be a useful activation."""

    valid: bool
    reason: str | None = None


#: Screening thresholds (see :func:`screen`).
EXPLODE_LIMIT = 1e6
FLAT_RANGE = 1e-6
ZERO_GRAD = 1e-7
ZERO_GRAD_SHARE = 0.9


def screen(expr: sympy.Expr | str, params: Mapping[str, float] | None = None) -> Verdict:
    """Reject, before any training, functions that cannot be useful activations.

    Rejected: not computable; non-finite anywhere on [-20, 20]; exploding (|f| > 1e6 on [-5, 5]);
    constant or flat (range below 1e-6 on [-20, 20]); non-finite gradient on [-5, 5]; zero gradient
    (|f'| < 1e-7) on at least 90% of [-5, 5], where pre-activations live.
    """
    try:
        with torch.no_grad():
            wide = evaluate(expr, PROBE, params)
        values, grad = value_and_slope(expr, _grid(5.0, 500), params)
    except UserError as error:
        return Verdict(False, f"cannot be evaluated: {error}")
    return _verdict(wide, values, grad)


def _verdict(wide: torch.Tensor, inner: torch.Tensor, grad: torch.Tensor) -> Verdict:
    bad = ~torch.isfinite(wide)
    if bad.any():
        return Verdict(False, f"non-finite on [-20, 20] (at x = {PROBE[bad][0].item():.3g})")
    peak = inner.abs().max().item()
    if peak > EXPLODE_LIMIT:
        return Verdict(False, f"exploding: |f(x)| reaches {peak:.3g} on [-5, 5]")
    if (wide.max() - wide.min()).item() < FLAT_RANGE:
        return Verdict(False, "constant or flat on [-20, 20]")
    if not torch.isfinite(grad).all():
        return Verdict(False, "non-finite gradient on [-5, 5]")
    share = (grad.abs() < ZERO_GRAD).double().mean().item()
    if share >= ZERO_GRAD_SHARE:
        return Verdict(False, f"zero gradient almost everywhere ({share:.0%} of [-5, 5])")
    return Verdict(True)


@dataclass(frozen=True)
class Properties:
    """Shape facts shown by ``afos show``; ranges are stated in the field docs of :func:`properties`."""

    value_at_0: float
    slope_at_0: float
    minimum: float
    argmin: float
    maximum: float
    argmax: float
    monotonic: str  # "increasing" | "decreasing" | "no"
    bounded_below: bool
    bounded_above: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def properties(expr: sympy.Expr | str, params: Mapping[str, float] | None = None) -> Properties:
    """Value and slope at 0, extremes on [-10, 10], monotonicity and boundedness.

    ``bounded_below`` means the minimum over [-10, 10] is also the minimum over [-1000, 1000] (the
    function levels off instead of falling further); ``bounded_above`` likewise for the maximum.
    Monotonicity is judged from the slope on 2001 points of [-10, 10] (|f'| < 1e-9 counts as flat).
    """
    grid = _grid(10.0, 1000)
    values, slope = value_and_slope(expr, grid, params)
    with torch.no_grad():
        far = evaluate(expr, _grid(1000.0, 10000), params)
    at_zero = 1000  # grid[1000] == 0
    low, high = int(values.nan_to_num(math.inf).argmin()), int(values.nan_to_num(-math.inf).argmax())
    tolerance = 1e-6 * (1.0 + values.abs().max().item())
    return Properties(
        value_at_0=_clean(values[at_zero]),
        slope_at_0=_clean(slope[at_zero]),
        minimum=_clean(values[low]),
        argmin=_clean(grid[low]),
        maximum=_clean(values[high]),
        argmax=_clean(grid[high]),
        monotonic=_monotonic(slope),
        bounded_below=bool(values[low].isfinite() and far.nan_to_num(-math.inf).min() >= values[low] - tolerance),
        bounded_above=bool(values[high].isfinite() and far.nan_to_num(math.inf).max() <= values[high] + tolerance),
    )


def _clean(value: torch.Tensor) -> float:
    """A float with rounding noise (|v| < 1e-12, e.g. 1.7e-16 at x = 0) shown as the 0 it is."""
    number = value.item()
    return 0.0 if abs(number) < ZERO else round(number, 12)


def _monotonic(slope: torch.Tensor) -> str:
    if (slope >= -1e-9).all():
        return "increasing"
    if (slope <= 1e-9).all():
        return "decreasing"
    return "no"


def describe(text: str, params: Mapping[str, float] | None = None) -> dict[str, object]:
    """All facts ``afos show`` prints, as one JSON-ready dict."""
    expr = as_expr(text, params)
    verdict = screen(expr, params)
    return {
        "expression": text,
        "canonical": canonical(expr),
        "latex": sympy.latex(expr),
        "fingerprint": fingerprint(expr, params),
        "valid": verdict.valid,
        "reason": verdict.reason,
        "properties": properties(expr, params).to_dict(),
    }
