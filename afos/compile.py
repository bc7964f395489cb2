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
(dynamic shapes), so each becomes one elementwise kernel. Both programs of an expression are built once
per process and shared by every site and every Activation of that expression; a compiled kernel is
compiled once per (expression, dtype, device, rank) and, when compilation fails, the eager programs run
instead and :attr:`Activation.kernel_note` says why.

:class:`ActivationSpec` is the plain-data description (text, parameter initialisations, scope) that
crosses process boundaries and is stored with results; :func:`activation_factory` turns it into the
factory a model builder calls once per activation site.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
import types
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Mapping

import sympy
import torch
from torch import nn

from afos.errors import UserError
from afos.space.derive import GRAD, adjoints
from afos.space.families import FAMILIES
from afos.space.lower import Program, clamp_tie, lower, lower_many
from afos.space.parse import canonical, parameter_symbol, parse
from afos.space.primitives import X
from afos.space.probe import fingerprint

#: How an Activation computes: the chain of eager ops, one autograd.Function, or that Function compiled.
KERNEL_PATHS = ("eager", "fused", "compiled")
#: Where learnable parameters live: one set for the network, one per activation site, one per channel.
SCOPES = ("shared", "layer", "channel")
Init = float | str  # a start value, or "N(mu,sigma)" for a random start

_NORMAL = re.compile(r"^N\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)$")


def _normal(init: str) -> tuple[float, float]:
    match = _NORMAL.match(init.strip())
    if match is None:
        raise UserError(f"initial value {init!r} must be a number or N(mu,sigma)")
    mu, sigma = float(match.group(1)), float(match.group(2))
    if sigma < 0:
        raise UserError(f"initial value {init!r}: sigma must be >= 0")
    return mu, sigma


def typical_value(init: Init) -> float:
    """The value a start stands for: the number itself, or the mean of N(mu, sigma).

    Parametric forms are fingerprinted and screened at these values.
    """
    return float(init) if not isinstance(init, str) else _normal(init)[0]


def _draw(init: Init, shape: tuple[int, ...]) -> torch.Tensor:
    """A start value of ``shape``; random starts use torch's (seeded) global generator."""
    if isinstance(init, str):
        mu, sigma = _normal(init)
        return torch.randn(shape) * sigma + mu
    return torch.full(shape, float(init))


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
class _Kernels:
    """The forward and backward kernels of one expression, shared by every Activation computing it."""

    forward: _Kernel
    backward: _Kernel


@functools.lru_cache(maxsize=512)
def _kernels(expr: sympy.Expr, inputs: tuple[sympy.Symbol, ...]) -> _Kernels:
    name = "afos_" + hashlib.sha256(sympy.srepr(expr).encode()).hexdigest()[:12]
    forward = lower(expr, inputs)
    slopes = lower_many(adjoints(expr, inputs, clamp_tie=clamp_tie()), (GRAD, *inputs))
    return _Kernels(_Kernel(_forward, name + "_forward", forward), _Kernel(_backward, name + "_backward", slopes))


class _Fused(torch.autograd.Function):
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
            self._kernels = _kernels(self.expr, inputs)
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
            return _Fused.apply(self, x, *values)
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

    def to_source(self, format: str = "torch") -> str:  # noqa: A002 - the word users expect
        """Standalone code (``torch``, ``numpy``) or text (``latex``, ``sympy``) of this function with its
        current parameter values; see :mod:`afos.export`."""
        from afos.export import Form, render

        return render(Form(self.expr, self.values()), format)

    # Pickling: the lowered programs hold closures (and maybe compiled graphs); rebuild them on load.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_program", None)
        state.pop("_kernels", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._build()


@dataclass(frozen=True)
class ActivationSpec:
    """Plain data for an activation: expression text, parameter starts, fixed values and scope."""

    expression: str
    learnable: dict[str, Init] = field(default_factory=dict)
    fixed: dict[str, float] = field(default_factory=dict)
    scope: str = "layer"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def typical_values(self) -> dict[str, float]:
        """Parameter values at which the form is fingerprinted and screened."""
        return {**{k: typical_value(v) for k, v in self.learnable.items()}, **self.fixed}

    def key(self) -> str:
        """The identity of the activation in run databases: its fingerprint at the typical values.

        With learnable parameters a short hash of the symbolic form, the starts and the scope follows:
        ``p0*tanh(p1*x)`` equals ``tanh(x)`` at its start values but, once trained, is another candidate.
        """
        expr = parse(self.expression, params=[*self.learnable, *self.fixed])
        return activation_key(expr, self.learnable, self.fixed, self.scope)


def activation_key(
    expr: sympy.Expr, learnable: Mapping[str, Init], fixed: Mapping[str, float] | None = None, scope: str = "layer"
) -> str:
    """:meth:`ActivationSpec.key` of an expression already parsed (the search's per-candidate path)."""
    values = {**{k: typical_value(v) for k, v in learnable.items()}, **(fixed or {})}
    key = fingerprint(expr, values)
    if not learnable:
        return key
    form = json.dumps([canonical(expr), sorted(learnable.items()), scope])
    return f"{key}:{hashlib.sha256(form.encode()).hexdigest()[:8]}"


def resolve_activation(
    text: str,
    learnable: Mapping[str, Init] | None = None,
    fixed: Mapping[str, float] | None = None,
    scope: str | None = None,
) -> ActivationSpec:
    """A spec from a family name (``mila``, ``adaptive_tanh``, …) or expression text, plus overrides.

    A name given in ``learnable`` becomes trainable even where the family fixes it (``mila`` with
    ``learnable={"beta": -0.25}``), and vice versa for ``fixed``. The expression is parsed here, so
    errors surface before any training.
    """
    family = FAMILIES.get(text.strip().lower())
    base_learnable = dict(family.learnable) if family else {}
    base_fixed = dict(family.fixed) if family else {}
    for name, value in (learnable or {}).items():
        base_fixed.pop(name, None)
        base_learnable[name] = value
    for name, value in (fixed or {}).items():
        base_learnable.pop(name, None)
        base_fixed[name] = float(value)
    chosen_scope = scope or (family.scope if family else "layer")
    if chosen_scope not in SCOPES:
        raise UserError(f"parameter scope {chosen_scope!r} must be one of {', '.join(SCOPES)}")
    spec = ActivationSpec(family.expression if family else text, base_learnable, base_fixed, chosen_scope)
    expr = parse(spec.expression, params=[*base_learnable, *base_fixed])
    unknown = sorted(n for n in {*base_learnable, *base_fixed} if parameter_symbol(n) not in expr.free_symbols)
    if unknown:
        raise UserError(f"parameter(s) {', '.join(unknown)} do not occur in {spec.expression}")
    for init in base_learnable.values():
        typical_value(init)  # validates N(mu,sigma) text now, not in the middle of a grid
    return spec


def activation_factory(spec: ActivationSpec) -> Callable[[], nn.Module]:
    """The factory a model builder calls per activation site: a fresh module per site for ``layer`` and
    ``channel`` scope, the one shared module for ``shared`` scope."""

    def build() -> Activation:
        return Activation(spec.expression, spec.learnable, fixed=spec.fixed, channel=spec.scope == "channel")

    if spec.scope == "shared":
        shared = build()
        return lambda: shared
    return build


def parse_assignments(items: Iterable[str], *, allow_random: bool) -> dict[str, Init]:
    """Read ``name=value`` (and, if allowed, ``name~N(mu,sigma)``) items, as given on the command line."""
    result: dict[str, Init] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in re.split(r",(?![^()]*\))", item))):
            match = re.fullmatch(r"([A-Za-z_][A-Za-z_0-9]*)\s*(=|~)\s*(.+)", part)
            if match is None:
                raise UserError(f"{part!r} must look like name=value" + (" or name~N(mu,sigma)" if allow_random else ""))
            name, sep, value = match.groups()
            if sep == "~":
                if not allow_random:
                    raise UserError(f"{part!r}: a random start is only for learnable parameters")
                _normal(value)
                result[name] = value.strip()
            else:
                try:
                    result[name] = float(value)
                except ValueError:
                    raise UserError(f"{part!r}: {value!r} is not a number") from None
    return result
