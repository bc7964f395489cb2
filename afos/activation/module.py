"""Compilation of candidate expressions into torch modules.

:class:`Activation` is what a network holds at every activation site. It is a plain ``nn.Module``: it
pickles (the sympy expression travels, the torch program is rebuilt on load), deep-copies, works on any
shape, dtype and device, and can carry learnable parameters. The lowering itself lives in
:mod:`afos.space.lower`, shared with screening, so the function trained is the function screened.

Kernel paths (:data:`KERNEL_PATHS`): by default an Activation is *fused*: one ``torch.autograd.Function``
whose forward runs the lowered expression and whose backward runs the lowered symbolic derivatives of
:mod:`afos.space.derive` (the slopes torch's autograd would take, kinks included). It saves only its
input and parameters, where the *eager* chain (``fused=False``) keeps every intermediate of the
expression for backward: ``-x*erf(exp(-x))`` keeps four tensors the size of its input, the fused form
one, as ReLU does. *Compiled* (``compile=True``) runs those two programs through ``torch.compile``
(dynamic shapes), so each becomes one elementwise kernel (:mod:`afos.activation.kernels`).

:func:`activation_factory` turns an :class:`~afos.activation.spec.ActivationSpec` into the factory a model
builder calls once per activation site."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import sympy
import torch
from torch import nn

from afos.activation.kernels import Fused, expression_kernels
from afos.activation.spec import ActivationSpec, Init, normal_parameters
from afos.errors import UserError
from afos.records.settings import Scope
from afos.space.lower import Program, lower
from afos.space.parse import canonical, parameter_symbol, parse
from afos.space.primitives import X

#: How an Activation computes: the chain of eager ops, one autograd.Function, or that Function compiled.
KERNEL_PATHS = ("eager", "fused", "compiled")

def _draw(init: Init, shape: tuple[int, ...]) -> torch.Tensor:
    """A start value of ``shape``; random starts use torch's (seeded) global generator."""
    if isinstance(init, str):
        mu, sigma = normal_parameters(init)
        return torch.randn(shape) * sigma + mu
    return torch.full(shape, float(init))


class Activation(nn.Module):
    """An elementwise activation function compiled from an expression in ``x``.

    ``expr`` is expression text (parsed by the whitelist grammar) or a sympy expression.
    ``learnable={"beta": 0.0}`` makes the named symbols trainable, started at those values or drawn from
    ``"N(mu,sigma)"``; ``fixed={"beta": -0.25}`` substitutes values that are not trained. With
    ``channel=True`` each parameter holds one value per channel (dim 1 of the input), created at the
    first forward pass. ``fused`` and ``compile`` choose the kernel path (see the module doc;
    :meth:`use_kernels` changes it later): ``compile=True`` compiles with ``torch.compile(dynamic=True)``
    so one compiled graph serves every batch shape, the fused kernels or, with ``fused=False``, the chain.
    ``compile_seconds`` counts the compilation this module's calls triggered.
    """

    def __init__(
        self,
        expr: sympy.Expr | str,
        learnable: Mapping[str, Init] | None = None,
        *,
        fixed: Mapping[str, float] | None = None,
        channel: bool = False,
        fused: bool = True,
        compile: bool = False,  # noqa: A002 - mirrors torch.compile, the name users expect
    ) -> None:
        super().__init__()
        learnable, fixed = dict(learnable or {}), dict(fixed or {})
        clash = set(learnable) & set(fixed)
        if clash:
            raise UserError(f"parameter(s) {', '.join(sorted(clash))} cannot be both learnable and fixed")
        parsed = parse(expr, params=[*learnable, *fixed]) if isinstance(expr, str) else expr
        self.expr: sympy.Expr = parsed.subs({parameter_symbol(k): sympy.Float(v) for k, v in fixed.items()})
        self.param_names: tuple[str, ...] = tuple(sorted(learnable))
        self.inits: dict[str, Init] = {name: learnable[name] for name in self.param_names}
        self._check_symbols()
        self.channel = channel
        self.params = nn.ParameterDict({
            name: nn.UninitializedParameter() if channel else nn.Parameter(_draw(learnable[name], ()))
            for name in self.param_names
        })
        self.fused, self.compiled = fused, compile
        self.compile_seconds = 0.0
        self.kernel_note = ""  # why the requested path is not the one running, if it is not
        self._build()

    def _check_symbols(self) -> None:
        declared = {X, *(parameter_symbol(n) for n in self.param_names)}
        missing = sorted(str(s) for s in self.expr.free_symbols - declared)
        if missing:
            raise UserError(f"parameter(s) {', '.join(missing)} need a value (learnable or fixed)")

    def _build(self) -> None:
        inputs = (X, *(parameter_symbol(n) for n in self.param_names))
        if self.fused:
            self._kernels = expression_kernels(self.expr, inputs)
            return
        program: Program = lower(self.expr, inputs)
        self._program: Callable[..., torch.Tensor] = (
            torch.compile(program, dynamic=True) if self.compiled else program
        )

    @property
    def kernels(self) -> str:
        """The kernel path in use, one of :data:`KERNEL_PATHS`."""
        return "eager" if not self.fused else "compiled" if self.compiled else "fused"

    def use_kernels(self, path: str) -> None:
        """Switch to kernel path ``path`` (one of :data:`KERNEL_PATHS`)."""
        if path not in KERNEL_PATHS:
            raise UserError(f"kernel path {path!r} must be one of {', '.join(KERNEL_PATHS)}")
        self.fused, self.compiled = path != "eager", path == "compiled"
        self._build()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channel:
            self._materialize(x)
            shape = (-1,) + (1,) * (x.dim() - 2)  # (C,) over (N, C) and (C, 1, 1) over (N, C, H, W)
            values = [self.params[n].view(shape).to(x.dtype) for n in self.param_names]
        else:
            # Parameters follow the input's dtype so bf16 activations stay bf16; autograd still flows.
            values = [self.params[n].to(x.dtype) for n in self.param_names]
        if self.fused:
            return Fused.apply(self, x, *values)
        return self._program(x, *values)

    def _materialize(self, x: torch.Tensor) -> None:
        """Give per-channel parameters their size on first use (models materialise before training)."""
        for name in self.param_names:
            param = self.params[name]
            if isinstance(param, nn.UninitializedParameter):
                param.materialize((x.shape[1],), device=x.device, dtype=torch.float32)
                with torch.no_grad():
                    param.copy_(_draw(self.inits[name], (x.shape[1],)))

    @property
    def text(self) -> str:
        """The canonical expression text (parses back with the parameter names declared)."""
        return canonical(self.expr)

    def latex(self) -> str:
        return sympy.latex(self.expr)

    def values(self) -> dict[str, Any]:
        """Current parameter values: floats, or per-channel lists; for reports and plots."""
        result: dict[str, Any] = {}
        for name, param in self.params.items():
            if isinstance(param, nn.UninitializedParameter):
                continue
            flat = param.detach().float().cpu()
            result[name] = flat.item() if flat.dim() == 0 else flat.tolist()
        return result

    def extra_repr(self) -> str:
        return self.text

    # Pickling: the lowered programs hold closures (and maybe compiled graphs); rebuild them on load.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_program", None)
        state.pop("_kernels", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._build()


def activation_factory(spec: ActivationSpec) -> Callable[[], nn.Module]:
    """The factory a model builder calls per activation site: a fresh module per site for ``layer`` and
    ``channel`` scope, the one shared module for ``shared`` scope."""

    def build() -> Activation:
        return Activation(spec.expression, spec.learnable, fixed=spec.fixed, channel=spec.scope is Scope.CHANNEL)

    if spec.scope is Scope.SHARED:
        shared = build()
        return lambda: shared
    return build
