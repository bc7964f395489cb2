"""Lowering of sympy expressions to torch: the one place where symbols meet kernels.

An expression becomes a straight-line *program*: each distinct sympy sub-expression is computed once
(common sub-expressions are shared for free because sympy nodes hash structurally) by one torch call, and
registers are released after their last use. Running the program is a short Python loop, so eager mode
costs one kernel per node and ``torch.compile`` can trace it into fused kernels.

Choices made here, each fixing a trap of naive printing (sympy 1.14's torch printer included):

* constant sub-trees are folded to Python floats at lowering time, so ``erf(x/sqrt(2))`` multiplies by a
  float instead of calling ``torch.sqrt`` on a Python number;
* ``Max``/``Min`` with a number use ``clamp`` (``torch.maximum`` rejects a Python float);
* ``Heaviside`` takes sympy's value at zero (1/2 unless given) and, unlike ``torch.heaviside``, has a
  (zero) gradient;
* ``sinc`` is sympy's unnormalised sin(x)/x, while ``torch.sinc`` is normalised, so the argument is
  divided by pi;
* ``softplus``, ``sigmoid``, ``log(1 + exp(u))`` use overflow-free kernels; ``atanh`` clamps its input
  inside (-1, 1); ``x*sigmoid(x)`` and ``x*tanh(softplus(x))`` use the fused SiLU and Mish kernels.

One program may compute several expressions at once (:func:`lower_many`): the fused backward of
:mod:`afos.space.derive` lowers a function's value and all its partial derivatives together, so every
sub-expression they share (and a derivative repeats most of the forward) is computed once.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import sympy
import torch
import torch.nn.functional as F

from afos.errors import UserError
from afos.space import derive
from afos.space import functions as fn
from afos.space.ops import step

Value = Any  # a torch.Tensor, or a Python float for constants


class LoweringError(UserError):
    """The expression uses a construct with no torch lowering (e.g. Piecewise)."""


def _maximum(a: Value, b: Value) -> Value:
    if isinstance(a, float):
        a, b = b, a
    if isinstance(b, float):
        return torch.relu(a) if b == 0.0 else torch.clamp(a, min=b)
    return torch.maximum(a, b)


def _minimum(a: Value, b: Value) -> Value:
    if isinstance(a, float):
        a, b = b, a
    if isinstance(b, float):
        return torch.clamp(a, max=b)
    return torch.minimum(a, b)


def _in_float32(a: torch.Tensor) -> torch.Tensor:
    return a.float() if a.dtype in (torch.float16, torch.bfloat16) else a


def _atanh(a: torch.Tensor) -> torch.Tensor:
    return torch.atanh(_in_float32(a).clamp(-fn.ATANH_BOUND, fn.ATANH_BOUND)).to(a.dtype)


def _heaviside(a: torch.Tensor, at_zero: float) -> torch.Tensor:
    # Built from comparisons: torch.heaviside has no derivative, a step's derivative is 0 almost everywhere.
    return torch.where(a == 0, at_zero, (a > 0).to(a.dtype))


@functools.cache
def clamp_tie() -> int:
    """The share of the gradient (0 or 1) that this torch's ``clamp`` passes where its input equals a
    bound. Torch changed it between releases (2.11 passes all of it, 2.14 none), and the fused backward
    must follow the very torch it runs on, so it is read off torch rather than assumed."""
    x = torch.zeros(1, requires_grad=True)
    (slope,) = torch.autograd.grad(x.clamp(min=0.0).sum(), x)
    return int(slope.item())


def _atanh_gate(grad: torch.Tensor, a: torch.Tensor, at_bound: float) -> torch.Tensor:
    """The backward of :func:`_atanh` as torch runs it: the clamp selects 0 beyond its bounds and passes
    ``at_bound`` of the gradient at them; inside it atanh's slope 1/(1 - a**2)."""
    wide = _in_float32(a)
    inside = wide.abs() <= fn.ATANH_BOUND if at_bound else wide.abs() < fn.ATANH_BOUND
    return torch.where(inside, grad * torch.reciprocal(1 - wide.square()).to(grad.dtype), 0.0)


def _sinc_slope(a: torch.Tensor) -> torch.Tensor:
    """d/da of ``torch.sinc(a / pi)`` in torch's own formula, 0 at a = 0 (where it is 0/0)."""
    s = a / math.pi
    t = math.pi * s
    slope = (t * torch.cos(t) - torch.sin(t)) / (math.pi * s * s)
    return torch.where(s == 0, 0.0, slope) / math.pi


def _i1e_slope(a: torch.Tensor) -> torch.Tensor:
    """d/da i1e(a) = i0e(a) - i1e(a) (sign(a) + 1/a), with its limit 1/2 at a = 0 (torch's convention)."""
    safe = torch.where(a == 0, 1.0, a)
    slope = torch.special.i0e(a) - torch.special.i1e(a) * (torch.sign(a) + torch.reciprocal(safe))
    return torch.where(a == 0, 0.5, slope)


def _elish(a: torch.Tensor) -> torch.Tensor:
    return torch.where(a >= 0, a, torch.expm1(a)) * torch.sigmoid(a)


def _upcast(op: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Run ``op`` in float32 for half-precision inputs: some special functions lack those kernels."""

    def run(a: torch.Tensor) -> torch.Tensor:
        return op(_in_float32(a)).to(a.dtype)

    return run


#: One-argument sympy functions' torch kernels, by the function's name (see :func:`afos.space.ops.step`).
_UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "exp": torch.exp, "log": torch.log, "Abs": torch.abs,
    "sin": torch.sin, "cos": torch.cos, "tan": torch.tan,
    "sinh": torch.sinh, "cosh": torch.cosh, "tanh": torch.tanh,
    "asinh": torch.asinh, "atan": torch.atan, "atanh": _atanh,
    "erf": torch.erf, "erfc": torch.erfc,
    "sinc": lambda a: torch.sinc(a / math.pi),
    "sigmoid": torch.sigmoid, "softplus": F.softplus, "gelu": F.gelu, "elu": F.elu, "selu": F.selu,
    "elish": _elish, "i0e": _upcast(torch.special.i0e), "i1e": _upcast(torch.special.i1e),
    "sign": torch.sign,
    "sinc_slope": _sinc_slope,
    "i1e_slope": _upcast(_i1e_slope),
}


def _power(base: Value, exponent: Value) -> Value:
    if isinstance(exponent, float):
        special = {2.0: torch.square, -1.0: torch.reciprocal, 0.5: torch.sqrt, -0.5: torch.rsqrt}
        if exponent in special:
            return special[exponent](base)
    return torch.pow(base, exponent)


def _sum(*args: Value) -> Value:
    return functools.reduce(lambda a, b: a + b, args)


def _product(*args: Value) -> Value:
    floats = [a for a in args if isinstance(a, float)]
    tensors = [a for a in args if not isinstance(a, float)]
    result = functools.reduce(lambda a, b: a * b, tensors)
    scale = math.prod(floats)
    if scale == -1.0:
        return torch.neg(result)
    return result if scale == 1.0 else result * scale


@dataclass(frozen=True)
class Program:
    """A straight-line torch program: ``inputs`` fill the first registers, ``steps`` append the rest.

    ``steps[i] = (op, argument registers, registers freed after the step)``. Registers hold tensors or
    Python floats (folded constants).
    """

    inputs: tuple[str, ...]
    constants: tuple[float, ...]
    steps: tuple[tuple[Callable[..., Value], tuple[int, ...], tuple[int, ...]], ...]
    outputs: tuple[int, ...]

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The first (for :func:`lower`, the only) output."""
        return self.run(*inputs)[0]

    def run(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        """Every output, each of the shape of the first input."""
        registers: list[Value] = [*inputs, *self.constants]
        for op, args, dead in self.steps:
            registers.append(op(*[registers[i] for i in args]))
            for index in dead:
                registers[index] = None
        return [self._shaped(registers[i], inputs[0]) for i in self.outputs]

    @staticmethod
    def _shaped(result: Value, x: torch.Tensor) -> torch.Tensor:
        if isinstance(result, float) or result.shape != x.shape:
            return torch.zeros_like(x) + result  # constant or parameter-only expressions
        return result


class _Builder:
    """Turns a sympy tree into a :class:`Program`, one register per distinct sub-expression."""

    def __init__(self, inputs: Sequence[sympy.Symbol]):
        self.inputs = tuple(inputs)
        self.registers: dict[sympy.Basic, int] = {s: i for i, s in enumerate(self.inputs)}
        self.constants: list[float] = []
        self.steps: list[tuple[Callable[..., Value], tuple[int, ...]]] = []

    def build(self, exprs: Sequence[sympy.Basic]) -> Program:
        outputs = [self.visit(expr) for expr in exprs]
        base = len(self.inputs) + len(self.constants)
        steps = [(op, tuple(self._final(i, base) for i in args)) for op, args in self.steps]
        final = tuple(self._final(output, base) for output in outputs)
        return Program(
            tuple(str(s) for s in self.inputs), tuple(self.constants), _with_liveness(steps, base, final), final
        )

    def _final(self, register: int, base: int) -> int:
        """Registers were numbered in visit order; constants move to sit right after the inputs."""
        if register < 0:
            return len(self.inputs) + (-register - 1)
        return register if register < len(self.inputs) else register + len(self.constants)

    def visit(self, expr: sympy.Basic) -> int:
        if expr in self.registers:
            return self.registers[expr]
        if not expr.free_symbols:
            register = self._constant(expr)
        else:
            op, args = _lowering(expr)
            arg_registers = tuple(self.visit(a) for a in args)
            self.steps.append((op, arg_registers))
            register = len(self.inputs) + len(self.steps) - 1
        self.registers[expr] = register
        return register

    def _constant(self, expr: sympy.Basic) -> int:
        value = _fold(expr)
        self.constants.append(value)
        return -len(self.constants)  # negative = constant slot, renumbered in _final

def _fold_pairs(op: Callable[[Value, Value], Value]) -> Callable[..., Value]:
    return lambda *args: functools.reduce(op, args)


_ATEN = torch.ops.aten
#: torch's backward kernels, as (incoming gradient, input or result) -> gradient of the input.
_BACKWARD: dict[type, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    derive.tanh_backward: _ATEN.tanh_backward,
    derive.sigmoid_backward: _ATEN.sigmoid_backward,
    derive.softplus_backward: lambda g, a: _ATEN.softplus_backward(g, a, 1.0, 20.0),
    derive.silu_backward: _ATEN.silu_backward,
    derive.mish_backward: _ATEN.mish_backward,
    derive.gelu_backward: _ATEN.gelu_backward,
    derive.elu_backward: lambda g, a: _ATEN.elu_backward(g, 1.0, 1.0, 1.0, False, a),
    derive.selu_backward: lambda g, a: _ATEN.elu_backward(
        g, float(fn.SELU_ALPHA), float(fn.SELU_SCALE), 1.0, False, a
    ),
}



def _gate(grad: torch.Tensor, a: Value, b: Value, at_tie: float) -> torch.Tensor:
    """:class:`afos.space.derive.gate`, selecting as torch's maximum/relu/clamp backward does."""
    passed = torch.where(a > b, grad, 0.0)
    return passed if at_tie == 0.0 else torch.where(a == b, grad * at_tie, passed)


def _threshold(grad: Value, a: Value, b: float, at_tie: float) -> Value:
    """:func:`_gate` against 0 with nothing passed at the tie: relu's backward, run as torch runs it (one
    ``threshold_backward`` kernel instead of a comparison and a ``where``: ten times cheaper on a CPU,
    benchmarks/RESULTS.md "The cost model"), selecting as well (an infinite gradient gives 0 beyond the kink).
    Like torch's relu, it passes the gradient where the input is NaN."""
    if isinstance(grad, torch.Tensor) and isinstance(a, torch.Tensor):
        return _ATEN.threshold_backward(grad, a, b)
    return _gate(grad, a, b, at_tie)


#: Every kernel by its name in :func:`afos.space.ops.step`.
KERNELS: dict[str, Callable[..., Value]] = {
    **_UNARY, "silu": F.silu, "mish": F.mish,
    "add": _sum, "mul": _product, "pow": _power, "pow_simple": _power,
    "max": _fold_pairs(_maximum), "min": _fold_pairs(_minimum),
    "max_number": _fold_pairs(_maximum), "min_number": _fold_pairs(_minimum),
    "gate": _gate, "threshold": _threshold, "atanh_gate": _atanh_gate, "heaviside": _heaviside,
    **{backward.__name__: kernel for backward, kernel in _BACKWARD.items()},
}


def _lowering(expr: sympy.Basic) -> tuple[Callable[..., Value], tuple[sympy.Basic, ...]]:
    """The torch operation computing ``expr`` from its arguments."""
    name, args = step(expr)
    op = KERNELS.get(name)
    if op is None or (name in _UNARY and len(args) != 1):
        raise LoweringError(f"no torch lowering for {expr.func.__name__} in {expr}")
    return op, args


def _fold(expr: sympy.Basic) -> float:
    """Evaluate a constant sub-tree to a float in float64 torch arithmetic.

    Not ``sympy.N``: a tree such as exp(exp(exp(exp(E)))) makes mpmath work with numbers of millions of
    digits, while float64 overflows to inf at once. Non-finite constants are an error.
    """
    if expr.is_Number or expr.is_NumberSymbol:
        try:
            value = float(expr)
        except OverflowError:
            value = math.inf
    else:
        op, args = _lowering(expr)
        tensors = [torch.tensor(_fold(a), dtype=torch.float64) for a in args]
        value = float(op(*tensors))
    if not math.isfinite(value):
        raise LoweringError(f"constant {expr} is not a finite real number")
    return value


def _with_liveness(
    steps: list[tuple[Callable[..., Value], tuple[int, ...]]], base: int, outputs: tuple[int, ...]
) -> tuple[tuple[Callable[..., Value], tuple[int, ...], tuple[int, ...]], ...]:
    """Attach to each step the intermediate registers whose last use it is, so memory is released."""
    last_use: dict[int, int] = {}
    for index, (_, args) in enumerate(steps):
        for register in args:
            if register >= base:
                last_use[register] = index
    dead: dict[int, list[int]] = {}
    for register, index in last_use.items():
        if register not in outputs:
            dead.setdefault(index, []).append(register)
    return tuple((op, args, tuple(dead.get(i, ()))) for i, (op, args) in enumerate(steps))


def lower(expr: sympy.Basic, inputs: Sequence[sympy.Symbol]) -> Program:
    """Compile ``expr`` to a :class:`Program` whose positional inputs are ``inputs`` (x first)."""
    return lower_many([expr], inputs)


def lower_many(exprs: Sequence[sympy.Basic], inputs: Sequence[sympy.Symbol]) -> Program:
    """One :class:`Program` computing every expression of ``exprs``, sharing their common sub-trees."""
    unknown = set().union(*(expr.free_symbols for expr in exprs)) - set(inputs)
    if unknown:
        names = ", ".join(sorted(str(s) for s in unknown))
        raise LoweringError(f"expression uses undeclared symbol(s) {names}")
    return _Builder(inputs).build(exprs)
