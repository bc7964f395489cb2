"""Compilation of candidate expressions into torch modules.

:class:`Activation` is what a network holds at every activation site. It is a plain ``nn.Module``: it
pickles (the sympy expression travels, the torch program is rebuilt on load), deep-copies, works on any
shape, dtype and device, and can carry learnable scalar parameters. The lowering itself lives in
:mod:`afos.space.lower`, shared with screening, so the function trained is the function screened.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import sympy
import torch
from torch import nn

from afos.errors import UserError
from afos.space.lower import Program, lower
from afos.space.parse import canonical, parameter_symbol, parse
from afos.space.primitives import X


class Activation(nn.Module):
    """An elementwise activation function compiled from an expression in ``x``.

    ``expr`` is expression text (parsed by the whitelist grammar) or a sympy expression.
    ``learnable={"beta": 0.0}`` makes the named symbols trainable scalars with those initial values;
    ``fixed={"beta": -0.25}`` substitutes values that are not trained. ``compile=True`` wraps the forward
    in ``torch.compile(dynamic=True)`` so one compiled graph serves every batch shape.
    """

    def __init__(
        self,
        expr: sympy.Expr | str,
        learnable: Mapping[str, float] | None = None,
        *,
        fixed: Mapping[str, float] | None = None,
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
        self._check_symbols()
        self.params = nn.ParameterDict(
            {name: nn.Parameter(torch.tensor(float(learnable[name]))) for name in self.param_names}
        )
        self.compiled = compile
        self._build()

    def _check_symbols(self) -> None:
        declared = {X, *(parameter_symbol(n) for n in self.param_names)}
        missing = sorted(str(s) for s in self.expr.free_symbols - declared)
        if missing:
            raise UserError(f"parameter(s) {', '.join(missing)} need a value (learnable or fixed)")

    def _build(self) -> None:
        program: Program = lower(self.expr, [X, *(parameter_symbol(n) for n in self.param_names)])
        self._program: Callable[..., torch.Tensor] = (
            torch.compile(program, dynamic=True) if self.compiled else program
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Parameters follow the input's dtype so bf16 activations stay bf16 (and autograd still flows).
        return self._program(x, *(self.params[n].to(x.dtype) for n in self.param_names))

    @property
    def text(self) -> str:
        """The canonical expression text (parses back with the parameter names declared)."""
        return canonical(self.expr)

    def latex(self) -> str:
        return sympy.latex(self.expr)

    def values(self) -> dict[str, float]:
        """Current parameter values, for reports."""
        return {name: float(p.detach()) for name, p in self.params.items()}

    def extra_repr(self) -> str:
        return self.text

    # Pickling: the lowered program holds closures (and maybe a compiled graph); rebuild it on load.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_program", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._build()
