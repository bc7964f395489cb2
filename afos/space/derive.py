"""Symbolic derivatives of candidate expressions, with torch's conventions at every kink.

The fused activation (:class:`afos.activation.module.Activation`) computes its backward from these derivatives
instead of recording a chain of elementwise ops, so it saves only its input. For that to be the same
function trained by the eager chain, each derivative here is the one *torch's autograd* would compute
through the lowering of :mod:`afos.space.lower`, not merely a mathematically valid one:

* ``Max``/``Min`` are lowered pairwise, so they are differentiated pairwise: against 0, ``relu`` passes
  no gradient at the kink; against another number, ``clamp`` passes the share ``clamp_tie`` of it, which
  torch changed between releases (2.11 passes all of it, 2.14 none; :func:`afos.space.lower.clamp_tie`
  reads it off the installed torch); between two tensors, ``maximum``/``minimum`` split it in halves;
* those backward passes *select* the gradient (``torch.where``) rather than multiply it by a 0/1 mask,
  and so does the backward here (:class:`gate`), or an infinite gradient would become NaN on the
  losing side; the same holds for the clamp inside ``atanh``;
* ``Abs`` has slope ``sign`` (0 at 0), ``Heaviside`` has slope 0 everywhere;
* where torch has a backward kernel of its own (tanh, sigmoid, softplus, SiLU, Mish, GELU, ELU, SELU),
  the adjoint is that kernel: one op, torch's formula to the bit. ``log(1 + exp(u))``, lowered to
  softplus, so gets softplus's backward (1 above its threshold 20), not ``exp(u)/(1 + exp(u))``, which
  overflows;
* otherwise functions whose torch kernel is not the textbook formula get their kernel's slope: the
  clamped ``atanh`` has slope 0 outside the clamp (and clamp's share of it at its bounds); ``elish`` takes
  the branch torch takes at 0; ``sinc`` and ``i1e`` have their limits at 0 (torch's ``masked_fill``)
  instead of 0/0.

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

from collections.abc import Callable, Sequence

import sympy

from afos.errors import UserError
from afos.space import functions as fn

_HALF = sympy.Rational(1, 2)


class _Slope(sympy.Function):
    """A derivative-only function: it appears in backward programs, never in parsed text."""

    nargs = 1


class Backward(sympy.Function):
    """name_backward(g, a): torch's own backward kernel of a function, given the incoming gradient g and
    the function's input (or, for tanh and sigmoid, its result) a: one kernel instead of a chain of
    slope ops, and bit for bit torch's formula (softplus's threshold at 20 included)."""

    nargs = 2


class tanh_backward(Backward):
    """Takes tanh's result."""


class sigmoid_backward(Backward):
    """Takes sigmoid's result."""


class softplus_backward(Backward):
    pass


class silu_backward(Backward):
    pass


class mish_backward(Backward):
    pass


class gelu_backward(Backward):
    pass


class elu_backward(Backward):
    pass


class selu_backward(Backward):
    pass


class gate(sympy.Function):
    """gate(g, a, b, t): g where a > b, t*g where a == b, exactly 0 (even for g = inf) where a < b.

    The backward of a max, relu or clamp selects rather than multiplies, so an infinite gradient
    reaching the losing side gives 0, not 0*inf = NaN.
    """

    nargs = 4


class atanh_gate(sympy.Function):
    """atanh_gate(g, a, t): g/(1 - a**2) inside the clamp of the ``atanh`` lowering, t times that at its
    bounds, exactly 0 outside it (the bound depends on the dtype, so it cannot be a sympy comparison)."""

    nargs = 3


class sinc_slope(_Slope):
    """Slope of sin(a)/a, 0 at a = 0."""


class i1e_slope(_Slope):
    """Slope of i1e, 1/2 at a = 0."""


def _exp_of_negative_part(a: sympy.Expr) -> sympy.Expr:
    """exp(min(a, 0)): 1 for a >= 0 and exp(a) below, the slope of ELiSH's first factor (1 at 0 as in torch)."""
    return sympy.exp(sympy.Min(a, 0))


#: Slopes f'(a) of one-argument functions whose torch kernel differs from sympy's ``fdiff``.
SLOPES: dict[type, Callable[[sympy.Expr], sympy.Expr]] = {
    sympy.Abs: sympy.sign,
    sympy.sinc: sinc_slope,
    fn.i1e: i1e_slope,
    fn.i0e: lambda a: fn.i1e(a) - sympy.sign(a) * fn.i0e(a),
    fn.elish: lambda a: _exp_of_negative_part(a) * fn.sigmoid(a) + fn.elish(a) * (1 - fn.sigmoid(a)),
}


class DerivativeError(UserError):
    """An expression has a construct whose derivative afos cannot state (none does in the afos set)."""


def fused_pattern(expr: sympy.Basic) -> tuple[str, sympy.Expr] | None:
    """``(kernel, u)`` when ``expr`` is ``log(1 + exp(u))``, ``u*sigmoid(u)`` or ``u*tanh(softplus(u))``."""
    if isinstance(expr, sympy.log) and expr.args[0].is_Add and len(expr.args[0].args) == 2:
        one, other = sorted(expr.args[0].args, key=lambda a: not a.is_Number)
        if one == 1 and isinstance(other, sympy.exp):
            return "softplus", other.args[0]
    if expr.is_Mul and len(expr.args) == 2:
        for u, v in (expr.args, expr.args[::-1]):
            if v == fn.sigmoid(u):
                return "silu", u
            if v == sympy.tanh(fn.softplus(u)):
                return "mish", u
    return None


#: Functions (and fused patterns) whose adjoint is torch's own backward kernel, and whether it takes the
#: function's result (else its input).
BACKWARDS: dict[type | str, tuple[type[Backward], bool]] = {
    sympy.tanh: (tanh_backward, True),
    fn.sigmoid: (sigmoid_backward, True),
    fn.softplus: (softplus_backward, False),
    "softplus": (softplus_backward, False),
    "silu": (silu_backward, False),
    "mish": (mish_backward, False),
    fn.gelu: (gelu_backward, False),
    fn.elu: (elu_backward, False),
    fn.selu: (selu_backward, False),
}


def _times(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    """a*b computed in this order: sympy must not regroup the products of a backward pass."""
    return sympy.Mul(a, b, evaluate=False)


def _total(terms: list[sympy.Expr]) -> sympy.Expr:
    return terms[0] if len(terms) == 1 else sympy.Add(*terms, evaluate=False)


def _slope(expr: sympy.Basic) -> sympy.Expr:
    """f'(u) for a one-argument function node f(u)."""
    rule = SLOPES.get(expr.func)
    if rule is not None:
        return rule(expr.args[0])
    if len(expr.args) != 1:
        raise DerivativeError(f"no derivative rule for {expr.func.__name__} in {expr}")
    slope = expr.fdiff(1)
    if slope.has(sympy.Derivative, sympy.Subs):
        raise DerivativeError(f"no derivative rule for {expr.func.__name__} in {expr}")
    return slope


Contribution = tuple[sympy.Basic, sympy.Expr]  # (child node, what flows into its adjoint)


def _local(node: sympy.Basic, adjoint: sympy.Expr, clamp_tie: sympy.Integer) -> list[Contribution]:
    """What the adjoint of ``node`` sends to its children, op by op as the lowering computes the node."""
    pattern = fused_pattern(node)
    head, u = pattern if pattern is not None else (node.func, node.args[0] if node.args else None)
    if head in BACKWARDS:
        kernel, takes_result = BACKWARDS[head]
        return [(u, kernel(adjoint, node if takes_result else u))]
    if node.is_Add:
        return [(a, adjoint) for a in node.args if a.free_symbols]
    if node.is_Mul:
        return _product(node, adjoint)
    if node.is_Pow:
        base, exponent = node.args
        flows = []
        if base.free_symbols:
            flows.append((base, _times(adjoint, _power_slope(node, base, exponent))))
        if exponent.free_symbols:  # torch.pow: result * log(base)
            flows.append((exponent, _times(adjoint, _times(node, sympy.log(base)))))
        return flows
    if isinstance(node, (sympy.Max, sympy.Min)):
        return _lattice(node, adjoint, clamp_tie)
    if isinstance(node, sympy.Heaviside):
        return []  # a step built from comparisons: torch gives it no gradient
    if isinstance(node, sympy.atanh):
        return [(node.args[0], atanh_gate(adjoint, node.args[0], clamp_tie))]
    return [(node.args[0], _times(adjoint, _slope(node)))]


def _power_slope(node: sympy.Expr, base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    """d(base**exponent)/d(base) in the formula of torch's backward for the kernel the lowering picks."""
    if exponent == -1:  # torch.reciprocal: -result**2
        return -(node**2)
    if exponent == sympy.Rational(1, 2):  # torch.sqrt: 1/(2*result)
        return 1 / (2 * node)
    return exponent * base ** (exponent - 1)


def _product(node: sympy.Basic, adjoint: sympy.Expr) -> list[Contribution]:
    """The lowering multiplies the tensor factors left to right, then by the constant: so does autograd."""
    factors = [a for a in node.args if a.free_symbols]
    scale = sympy.Mul(*(a for a in node.args if not a.free_symbols))
    flows: list[Contribution] = []
    if scale != 1:
        adjoint = _times(adjoint, scale)
    for k in range(len(factors) - 1, 0, -1):
        before = factors[0] if k == 1 else sympy.Mul(*factors[:k], evaluate=False)
        flows.append((factors[k], _times(adjoint, before)))
        adjoint = _times(adjoint, factors[k])
    flows.append((factors[0], adjoint))
    return flows


def _lattice(node: sympy.Basic, adjoint: sympy.Expr, clamp_tie: sympy.Integer) -> list[Contribution]:
    """Max/Min, folded pairwise over their arguments in order as the lowering computes them.

    Against 0 a max is ``relu``, whose tie passes no gradient; against another number, ``clamp``, whose
    tie passes ``clamp_tie`` of it; between two tensors (``maximum``/``minimum``) a tie splits it in halves.
    """
    is_max, args = isinstance(node, sympy.Max), node.args

    def wins(flow: sympy.Expr, a: sympy.Expr, b: sympy.Expr, tie: sympy.Expr) -> sympy.Expr:
        return gate(flow, a, b, tie) if is_max else gate(flow, b, a, tie)

    # folds[k] is the value after the first k + 1 arguments; the backward runs from the last pair.
    folds = [args[0], *(type(node)(*args[: k + 1], evaluate=False) for k in range(1, len(args)))]
    flows: list[Contribution] = []
    for k in range(len(args) - 1, 0, -1):
        left, right = folds[k - 1], args[k]
        if not left.free_symbols:  # only a first argument can be the number: relu/clamp of the second
            relu = is_max and left == 0
            flows.append((right, wins(adjoint, right, left, sympy.S.Zero if relu else clamp_tie)))
            return flows
        if right.free_symbols:
            flows.append((right, wins(adjoint, right, left, _HALF)))
        adjoint = wins(adjoint, left, right, _HALF if right.free_symbols else sympy.S.Zero)
    flows.append((args[0], adjoint))
    return flows


def _postorder(expr: sympy.Basic, seen: set[sympy.Basic], order: list[sympy.Basic]) -> None:
    if expr in seen or not expr.free_symbols:
        return
    seen.add(expr)
    for child in _children(expr):
        _postorder(child, seen, order)
    order.append(expr)


def _children(expr: sympy.Basic) -> tuple[sympy.Basic, ...]:
    pattern = fused_pattern(expr)
    return (pattern[1],) if pattern is not None else expr.args


#: The symbol standing for the incoming gradient (dL/d output) in backward expressions.
GRAD = sympy.Symbol("afos_grad", real=True)


def adjoints(expr: sympy.Expr, symbols: Sequence[sympy.Symbol], *, clamp_tie: int) -> list[sympy.Expr]:
    """d(GRAD * expr)/d(symbol) for each of ``symbols``, built the way reverse-mode autograd runs.

    Each node's adjoint is the product of the incoming gradient with the local slopes, multiplied in
    the order torch's autograd multiplies them through the lowered program, so a backward overflows,
    underflows or meets 0*inf exactly where autograd through the chain would, not elsewhere.
    ``clamp_tie`` (0 or 1) is the share of the gradient torch's ``clamp`` passes where its input equals a
    bound: the caller reads it off the torch that will run the program.
    """
    if clamp_tie not in (0, 1):
        raise ValueError(f"clamp_tie={clamp_tie!r}; expected 0 or 1")
    tie = sympy.Integer(clamp_tie)
    order: list[sympy.Basic] = []
    _postorder(expr, set(), order)
    flows: dict[sympy.Basic, list[sympy.Expr]] = {expr: [GRAD]}
    for node in reversed(order):
        if node in flows and node not in symbols:
            for child, flow in _local(node, _total(flows[node]), tie):
                flows.setdefault(child, []).append(flow)
    return [_total(flows[s]) if s in flows else sympy.S.Zero for s in symbols]
