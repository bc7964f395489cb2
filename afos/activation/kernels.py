"""The kernels of an expression: its lowered forward and symbolic backward, eager or compiled.

An :class:`~afos.activation.module.Activation` on the fused path is one autograd node (:class:`Fused`)
whose forward runs the lowered expression and whose backward runs the lowered derivatives of
:mod:`afos.space.derive`, so it saves only its input, as ReLU does. Both programs of an expression are built
once per process (:func:`expression_kernels`) and shared by every site computing it; on the compiled path
each runs through ``torch.compile`` on a code object of its own (:func:`own_code`), compiled once per
(dtype, device, rank), falling back to the eager program, with a note, when compilation fails."""

from __future__ import annotations

import functools
import hashlib
import time
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import sympy
import torch

from afos.space.derive import GRAD, adjoints
from afos.space.lower import Program, clamp_tie, lower, lower_many

if TYPE_CHECKING:
    from afos.activation.module import Activation

def own_code(function: Callable[..., Any], name: str, **bound: Any) -> Callable[..., Any]:
    """``function`` on a code object of its own, named ``name``, with keyword arguments ``bound``.

    torch.compile keeps its compiled graphs, and its recompilation limit (8), per code object. Every
    expression runs the same Python code with another program, and every candidate's network is another
    module running the same ``forward``, so without a copy a search would exhaust the limit after eight
    candidates and silently train the rest uncompiled. (A ``functools.partial`` would not do:
    torch.compile wraps every partial in one shared function.) The copy's compiled graphs go when it does.
    """
    fresh = types.FunctionType(function.__code__.replace(co_name=name), function.__globals__, name)
    fresh.__kwdefaults__ = bound or None
    return fresh


def _forward(x: torch.Tensor, *params: torch.Tensor, program: Program) -> torch.Tensor:
    return program(x, *params)


def _backward(grad: torch.Tensor, x: torch.Tensor, *params: torch.Tensor, program: Program) -> tuple[torch.Tensor, ...]:
    """Gradients for x and each parameter from the adjoints program; parameters sum over their broadcast."""
    grads = program.run(grad, x, *params)
    return (grads[0], *(g.sum_to_size(p.shape) for g, p in zip(grads[1:], params)))


class _Kernel:
    """One program of one expression (its forward or its backward), eager or compiled on first use."""

    def __init__(self, function: Callable[..., Any], name: str, program: Program) -> None:
        self.eager = functools.partial(function, program=program)
        self.compiled = torch.compile(own_code(function, name, program=program), dynamic=True)
        self.name = name
        self.ready: set[tuple[Any, ...]] = set()  # (dtype, device, rank) compiled so far
        self.failures: dict[tuple[Any, ...], str] = {}

    def __call__(self, site: Activation, *args: torch.Tensor) -> Any:
        if not site.compiled:
            return self.eager(*args)
        key = (args[0].dtype, args[0].device, args[0].dim())
        if key in self.ready:
            return self.compiled(*args)
        if key not in self.failures:
            start = time.perf_counter()
            try:
                # The program's folded constants are Python floats: specialised, they are compiled into the
                # kernel; unspecialised (dynamo's default), every call wraps each one in a tensor, which cost
                # a quarter of a small call's time (147 -> 111 us forward + backward on the CPU).
                with torch._dynamo.config.patch(specialize_float=True):
                    result = self.compiled(*args)
            except Exception as exc:  # noqa: BLE001 - a kernel that cannot compile still trains, eagerly
                self.failures[key] = f"{self.name} did not compile ({type(exc).__name__}); eager kernels used"
            else:
                self.ready.add(key)
                site.compile_seconds += time.perf_counter() - start
                return result
        site.kernel_note = self.failures[key]
        return self.eager(*args)


@dataclass(frozen=True)
class Kernels:
    """The forward and backward kernels of one expression, shared by every Activation computing it."""

    forward: _Kernel
    backward: _Kernel


@functools.lru_cache(maxsize=512)
def expression_kernels(expr: sympy.Expr, inputs: tuple[sympy.Symbol, ...]) -> Kernels:
    name = "afos_" + hashlib.sha256(sympy.srepr(expr).encode()).hexdigest()[:12]
    forward = lower(expr, inputs)
    slopes = lower_many(adjoints(expr, inputs, clamp_tie=clamp_tie()), (GRAD, *inputs))
    return Kernels(_Kernel(_forward, name + "_forward", forward), _Kernel(_backward, name + "_backward", slopes))


class Fused(torch.autograd.Function):
    """An Activation as one autograd node that saves only its input and parameters."""

    @staticmethod
    def forward(ctx: Any, site: Activation, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        ctx.site = site
        ctx.save_for_backward(x, *params)
        return site._kernels.forward(site, x, *params)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        site: Activation = ctx.site
        return (None, *site._kernels.backward(site, grad.contiguous(), *ctx.saved_tensors))
