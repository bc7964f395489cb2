"""Symbolic derivatives of candidate expressions, with torch's conventions at every kink.

The fused activation (:class:`afos.compile.Activation`) computes its backward from these derivatives
instead of recording a chain of elementwise ops, so it saves only its input. For that to be the same
function trained by the eager chain, each derivative here is the one *torch's autograd* would compute
through the lowering of :mod:`afos.space.lower`, not merely a mathematically valid one:

* ``Max``/``Min`` are lowered pairwise, so they are differentiated pairwise: against 0, ``relu`` passes
  no gradient at the kink; against another number, ``clamp`` passes all of it; between two tensors,
  ``maximum``/``minimum`` split it in halves;
* ``Abs`` has slope ``sign`` (0 at 0), ``Heaviside`` has slope 0 everywhere;
* functions whose torch kernel is not the textbook formula get their kernel's slope: ``log(1 + exp(u))``
  (lowered to softplus) has slope ``sigmoid(u)``, not ``exp(u)/(1 + exp(u))``, which overflows; the
  clamped ``atanh`` has slope 0 outside the clamp; ``elu``, ``selu`` and ``elish`` take the branch torch
  takes at 0; ``sinc`` and ``i1e`` have their limits at 0 (torch's ``masked_fill``) instead of 0/0.

The rest is the chain, product and power rule over sympy's own ``fdiff``. Sympy's ``diff`` is not used on
whole trees: it differentiates ``Max`` into ``Heaviside`` with value 1/2 at the kink and ``Abs`` of a
real argument into ``sign`` but of a complex-capable one into ``re``/``im`` terms.

Shared sub-expressions need no ``sympy.cse`` pass: a derivative is built from the very sympy nodes of
the forward (``exp(u)`` has slope ``exp(u)``, the same node), and :func:`afos.space.lower.lower_many`
computes every structurally equal node once across the value and all derivatives. ``cse`` would in
addition split a tree at its replacement symbols and hide the patterns (``log(1 + exp(u))``,
``x*sigmoid(x)``) that the lowering turns into stable fused kernels.
"""

from __future__ import annotations

from typing import Callable, Sequence

import sympy

from afos.errors import UserError
from afos.space import functions as fn

_HALF = sympy.Rational(1, 2)


class _Slope(sympy.Function):
    """A derivative-only function: it appears in backward programs, never in parsed text."""

    nargs = 1


class atanh_slope(_Slope):  # noqa: N801 - sympy function classes are named like the functions they are
    """Slope of the clamped ``atanh`` lowering (its clamp bound depends on the dtype)."""


class sinc_slope(_Slope):  # noqa: N801
    """Slope of sin(a)/a, 0 at a = 0."""


class i1e_slope(_Slope):  # noqa: N801
    """Slope of i1e, 1/2 at a = 0."""


def _exp_of_negative_part(a: sympy.Expr) -> sympy.Expr:
    """exp(min(a, 0)): 1 for a >= 0 and exp(a) below, the slope of ELU's branches (1 at a = 0 as in torch)."""
    return sympy.exp(sympy.Min(a, 0))


#: Slopes f'(a) of one-argument functions whose torch kernel differs from sympy's ``fdiff``.
SLOPES: dict[type, Callable[[sympy.Expr], sympy.Expr]] = {
    sympy.Abs: sympy.sign,
    sympy.atanh: atanh_slope,
    sympy.sinc: sinc_slope,
    fn.i1e: i1e_slope,
    fn.i0e: lambda a: fn.i1e(a) - sympy.sign(a) * fn.i0e(a),
    fn.gelu: lambda a: (1 + sympy.erf(a / sympy.sqrt(2))) / 2 + a * sympy.exp(-a**2 / 2) / sympy.sqrt(2 * sympy.pi),
    fn.elu: _exp_of_negative_part,
    # torch's SELU takes the exponential branch at 0: scale * alpha there.
    fn.selu: lambda a: fn.SELU_SCALE * (
        sympy.Heaviside(a, 0) + fn.SELU_ALPHA * _exp_of_negative_part(a) * sympy.Heaviside(-a, 1)
    ),
    fn.elish: lambda a: _exp_of_negative_part(a) * fn.sigmoid(a) + fn.elish(a) * (1 - fn.sigmoid(a)),
}


class DerivativeError(UserError):
    """An expression has a construct whose derivative afos cannot state (none does in the afos set)."""


def _softplus_argument(expr: sympy.Expr) -> sympy.Expr | None:
    """``u`` when ``expr`` is log(1 + exp(u)), which the lowering computes with the softplus kernel."""
    if isinstance(expr, sympy.log) and expr.args[0].is_Add and len(expr.args[0].args) == 2:
        one, other = sorted(expr.args[0].args, key=lambda a: not a.is_Number)
        if one == 1 and isinstance(other, sympy.exp):
            return other.args[0]
    return None


class _Differentiator:
    """d(expr)/d(symbol) by the rules above, each sub-tree differentiated once."""

    def __init__(self, symbol: sympy.Symbol) -> None:
        self.symbol = symbol
        self.memo: dict[sympy.Basic, sympy.Expr] = {}

    def d(self, expr: sympy.Basic) -> sympy.Expr:
        if self.symbol not in expr.free_symbols:
            return sympy.S.Zero
        if expr == self.symbol:
            return sympy.S.One
        if expr not in self.memo:
            self.memo[expr] = self._rule(expr)
        return self.memo[expr]

    def _rule(self, expr: sympy.Basic) -> sympy.Expr:
        if expr.is_Add:
            return sympy.Add(*(self.d(a) for a in expr.args))
        if expr.is_Mul:
            args = expr.args
            return sympy.Add(*(
                sympy.Mul(*args[:i], self.d(a), *args[i + 1:]) for i, a in enumerate(args) if self.symbol in a.free_symbols
            ))
        if expr.is_Pow:
            return self._power(*expr.args)
        if isinstance(expr, (sympy.Max, sympy.Min)):
            return self._lattice(expr)
        if isinstance(expr, sympy.Heaviside):
            return sympy.S.Zero  # a step built from comparisons: torch gives it no gradient
        u = _softplus_argument(expr)
        if u is not None:
            return fn.sigmoid(u) * self.d(u)
        if len(expr.args) != 1:
            raise DerivativeError(f"no derivative rule for {expr.func.__name__} in {expr}")
        return self._slope(expr) * self.d(expr.args[0])

    def _power(self, base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
        # torch.pow's own two partials: e * b**(e-1) for the base, b**e * log(b) for the exponent.
        result = exponent * base ** (exponent - 1) * self.d(base)
        if self.symbol in exponent.free_symbols:
            result += base**exponent * sympy.log(base) * self.d(exponent)
        return result

    def _lattice(self, expr: sympy.Basic) -> sympy.Expr:
        """Max/Min folded over their arguments in order, as the lowering computes them."""
        is_max = isinstance(expr, sympy.Max)
        combine = sympy.Max if is_max else sympy.Min
        args = expr.args
        value, slope = args[0], self.d(args[0])
        for b in args[1:]:
            a = value
            if not a.free_symbols:  # the lowering puts the number second
                a, b = b, a
                slope = self.d(a)
            db = self.d(b)
            if not b.free_symbols:
                # relu (against 0) passes nothing at the kink, clamp (against another number) everything.
                at_tie = 0 if b == 0 and is_max else 1
                slope = sympy.Heaviside(a - b if is_max else b - a, at_tie) * slope
            else:  # torch.maximum / torch.minimum split the gradient of a tie in halves
                a_wins = sympy.Heaviside(a - b if is_max else b - a, _HALF)
                b_wins = sympy.Heaviside(b - a if is_max else a - b, _HALF)
                slope = a_wins * slope + b_wins * db
            value = combine(a, b)
        return slope

    @staticmethod
    def _slope(expr: sympy.Basic) -> sympy.Expr:
        rule = SLOPES.get(expr.func)
        if rule is not None:
            return rule(expr.args[0])
        slope = expr.fdiff(1)
        if slope.has(sympy.Derivative, sympy.Subs):
            raise DerivativeError(f"no derivative rule for {expr.func.__name__} in {expr}")
        return slope


def gradients(expr: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> list[sympy.Expr]:
    """The partial derivatives of ``expr`` with respect to each of ``symbols``, in torch's conventions."""
    return [_Differentiator(symbol).d(expr) for symbol in symbols]
