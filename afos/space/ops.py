"""Which kernel computes each sub-expression: the one decision the lowering and the cost model share.

:mod:`afos.space.lower` maps each kernel name to a torch call; :mod:`afos.space.cost` maps it to a measured
weight. Both read the name from :func:`step`, so what the cost model counts is what training runs.
This module imports sympy only, so a reader that prices a function (a report, ``afos runs``) needs no torch.
"""

from __future__ import annotations

import sympy

from afos.space import derive

#: Exponents torch computes with a kernel of their own (square, reciprocal, sqrt, rsqrt), cheaper than ``pow``.
SIMPLE_EXPONENTS = frozenset({sympy.Integer(2), sympy.Integer(-1), sympy.Rational(1, 2), sympy.Rational(-1, 2)})


def _one_number(args: tuple[sympy.Basic, ...]) -> bool:
    return sum(1 for arg in args if arg.is_Number) == 1


def step(expr: sympy.Basic) -> tuple[str, tuple[sympy.Basic, ...]]:
    """The name of the kernel computing ``expr`` from its arguments, and those arguments.

    Names: a fused pattern's (``softplus``, ``silu``, ``mish``), ``add``, ``mul``, ``pow`` (``pow_simple``
    for the exponents of :data:`SIMPLE_EXPONENTS`) for sympy's arithmetic (an n-ary sum is n - 1 kernels),
    ``max``/``min`` (``max_number``/``min_number`` against a number: relu or clamp), a torch backward
    kernel's (``tanh_backward`` …), ``gate`` (``threshold`` for relu's backward, which passes nothing
    at the kink: torch's ``threshold_backward``), ``atanh_gate``, ``heaviside``, else the sympy
    function's own name (``exp``, ``Abs``, ``sigmoid``); the lowering refuses a name it has no kernel for.
    """
    pattern = derive.fused_pattern(expr)
    if pattern is not None:
        return pattern[0], (pattern[1],)
    if expr.is_Add:
        return "add", expr.args
    if expr.is_Mul:
        return "mul", expr.args
    if expr.is_Pow:
        return "pow_simple" if expr.args[1] in SIMPLE_EXPONENTS else "pow", expr.args
    if isinstance(expr, (sympy.Max, sympy.Min)):
        name = "max" if isinstance(expr, sympy.Max) else "min"
        return name + "_number" if len(expr.args) == 2 and _one_number(expr.args) else name, expr.args
    if isinstance(expr, derive.gate):
        grad, a, b, at_tie = expr.args
        return "threshold" if b == 0 and not a.is_Number and at_tie == 0 else "gate", expr.args
    if isinstance(expr, derive.atanh_gate):
        return "atanh_gate", expr.args
    if isinstance(expr, sympy.Heaviside):
        return "heaviside", expr.args  # sympy stores H(0), 1/2 by default, as a second argument
    return expr.func.__name__, expr.args
