"""What a function costs to train with, in ReLUs, computed from its form alone.

A candidate's cost is the time of the kernels its fused activation runs per step, forward and backward,
relative to ReLU's: the lowering (:mod:`afos.space.lower`) computes every distinct sub-expression once
with one kernel (an n-ary sum or product with n - 1), and the fused backward does the same over the
function's adjoints (:func:`afos.space.derive.adjoints`). Each kernel is weighted by its measured time
relative to ``relu`` (:data:`WEIGHTS`), so ReLU costs 1.0 and SiLU, one fused kernel each way, a little more.

Why a model and not a stopwatch: a search compares costs across generations, resumes and executors, and
a timing changes with the machine and its load, so twins and resumes would disagree. The model is a pure
function of the expression and of the weights below; the measured step-time ratio of a training stays a
separate, recorded number and never becomes fitness.

The weights were measured once by ``python benchmarks/op_cost.py`` (the time of each kernel on one float32
tensor, relative to ``torch.relu`` on the same tensor; see benchmarks/RESULTS.md, "The cost model"). They
price the eager program; a compiled program fuses the kernels, and on a GPU every elementwise kernel is
bound by memory, so there the ratios shrink towards 1: the model ranks functions, it does not predict a
GPU's step time.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import sympy

from afos.space.derive import adjoints
from afos.space.ops import step
from afos.space.parse import X, parameter_symbol, parse

#: Each kernel's time relative to ``relu`` (by its name in :func:`afos.space.ops.step`).
WEIGHTS: dict[str, float] = {
    "Abs": 1.03, "add": 1.39, "asinh": 36.82, "atan": 1.09, "atanh": 5.7, "atanh_gate": 10.44, "cos": 1.17,
    "cosh": 14.23, "elish": 17.95, "elu": 3.28, "elu_backward": 1.99, "erf": 1.38, "erfc": 3.29, "exp": 1.01,
    "gate": 10.14, "gelu": 1.16, "gelu_backward": 2.43, "heaviside": 6.5, "i0e": 55.91, "i1e": 4.67,
    "i1e_slope": 82.35, "log": 1.11, "max": 1.35, "max_number": 1.02, "min": 1.43, "min_number": 1.05,
    "mish": 8.9, "mish_backward": 10.04, "mul": 1.43, "pow": 1.07, "pow_simple": 1.01, "selu": 3.31,
    "selu_backward": 1.95, "sigmoid": 1.21, "sigmoid_backward": 1.43, "sign": 0.93, "silu": 1.29,
    "silu_backward": 1.65, "sin": 1.14, "sinc": 19.0, "sinc_slope": 20.95, "sinh": 37.47, "softplus": 3.36,
    "softplus_backward": 1.63, "tan": 1.37, "tanh": 0.99, "tanh_backward": 1.39, "threshold": 1.46,
}

#: A kernel the table does not name (none today) is priced as the dearest one, never as free.
_UNKNOWN = max(WEIGHTS.values())


def kernel_weight(expr: sympy.Basic, seen: set[sympy.Basic]) -> float:
    """The weighted kernels computing ``expr`` and the sub-expressions it needs that ``seen`` lacks (as the
    lowering computes each distinct sub-expression once); constants are folded, so they are free."""
    if expr in seen or not expr.free_symbols or expr.is_Symbol:
        return 0.0
    seen.add(expr)
    name, args = step(expr)
    kernels = max(1, len(args) - 1) if name in ("add", "mul", "max", "min") else 1
    own = kernels * WEIGHTS.get(name, _UNKNOWN)
    return own + sum(kernel_weight(arg, seen) for arg in args)


def program_weight(expr: sympy.Expr, inputs: tuple[sympy.Symbol, ...]) -> float:
    """The weighted kernels of one step of a function: its forward program and its backward program."""
    backward: set[sympy.Basic] = set()
    slopes = adjoints(expr, inputs, clamp_tie=0)  # the tie share changes a gate's argument, not its kernels
    return kernel_weight(expr, set()) + sum(kernel_weight(slope, backward) for slope in slopes)


@functools.cache
def _relu_weight() -> float:
    return program_weight(sympy.Max(X, 0), (X,))


@functools.lru_cache(maxsize=20_000)
def _cost(text: str, params: tuple[str, ...]) -> float:
    inputs = (X, *(parameter_symbol(name) for name in params))
    return program_weight(parse(text, params), inputs) / _relu_weight()


def cost(text: str, params: Iterable[str] = ()) -> float:
    """The cost of the function ``text`` (with learnable or fixed parameters ``params``) in ReLUs: 1.0 for
    ReLU, rounded to 4 decimals so that it prints, stores and compares alike everywhere."""
    return round(_cost(text, tuple(params)), 4)
