"""Standalone source code of an activation function, for pasting into a project that does not use afos.

:func:`render` turns a :class:`Form` (a sympy expression in ``x`` and named parameters, with their values)
into one of four formats:

* ``torch``: a file needing only torch, with ``formula(x, <params>)``, ``activation(x)`` (the values baked
  in) and ``class Activation(torch.nn.Module)`` (the values as trainable ``nn.Parameter``\\ s);
* ``numpy``: a file needing only numpy (and the standard library's ``math``), with ``formula`` and
  ``activation(x)``;
* ``latex`` and ``sympy``: the formula with the values substituted, as text.

The code is printed from the sympy form by sympy's own NumPy and PyTorch printers, with afos's functions
(``sigmoid``, ``softplus``, ``gelu``, ``elu``, ``selu``, ``elish``, ``i0e``, ``i1e``) and the constructs
the stock printers get wrong (``Max``/``Min`` with numbers, ``Heaviside``, unnormalised ``sinc``,
``atanh`` at ±1, ``math.erf`` on arrays) printed as the stable kernels afos trains with
(:mod:`afos.space.lower`). Only helpers a formula uses are emitted. This module depends on sympy and
:mod:`afos.space` (and the run store, to read a search's hall of fame).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import sympy
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pytorch import TorchPrinter

from afos import __version__
from afos.activation.module import Activation
from afos.errors import UserError
from afos.reporting.tables import format_number
from afos.space import functions as fn
from afos.space.parse import canonical, parameter_symbol, parse
from afos.space.primitives import X
from afos.storage.store import RunStore

FORMATS = ("torch", "numpy", "latex", "sympy")

Value = float | list[float]  # a scalar, or one value per channel (dim 1 of the input)


class ExportError(UserError):
    """The form cannot be exported in the asked format (e.g. a Bessel function to numpy)."""


@dataclass(frozen=True)
class Form:
    """An expression in ``x`` and named parameters, their values, and a line saying where they come from."""

    expr: sympy.Expr
    values: dict[str, Value] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        missing = sorted(str(s) for s in self.expr.free_symbols - {X, *map(parameter_symbol, self.values)})
        if missing:
            raise ExportError(f"parameter(s) {', '.join(missing)} of {canonical(self.expr)} need a value")

    @classmethod
    def from_text(cls, text: str, values: Mapping[str, Value] | None = None, source: str = "") -> Form:
        """Parse ``text`` with the whitelist grammar, its parameters being the names in ``values``; values of
        names the expression does not use are dropped."""
        values = dict(values or {})
        expr = parse(text, params=list(values))
        used = {name: value for name, value in values.items() if parameter_symbol(name) in expr.free_symbols}
        return cls(expr, used, source)

    @classmethod
    def from_activation(cls, activation: Activation, source: str = "") -> Form:
        """The function an :class:`~afos.activation.module.Activation` computes, with its current parameter
        values (per-channel ones as lists)."""
        return cls(activation.expr, activation.values(), source)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.values))


# ------------------------------------------------------------------------------------------- printers

#: Helper source per name, emitted once above the formula when it is used (torch, numpy).
_TORCH_HELPERS = {
    "_elish": "def _elish(u):\n    return torch.where(u >= 0, u, torch.expm1(u)) * torch.sigmoid(u)\n",
    "_atanh": "def _atanh(u):\n    bound = 1.0 - torch.finfo(u.dtype).eps\n    return torch.atanh(u.clamp(-bound, bound))\n",
    "_heaviside": "def _heaviside(u, at_zero):\n    return torch.where(u == 0, at_zero, (u > 0).to(u.dtype))\n",
    "_maximum": ("def _maximum(a, b):\n    if not torch.is_tensor(a):\n        a, b = b, a\n"
                 "    if torch.is_tensor(b):\n        return torch.maximum(a, b)\n"
                 "    return torch.relu(a) if b == 0 else torch.clamp(a, min=b)\n"),
    "_minimum": ("def _minimum(a, b):\n    if not torch.is_tensor(a):\n        a, b = b, a\n"
                 "    return torch.clamp(a, max=b) if not torch.is_tensor(b) else torch.minimum(a, b)\n"),
}
_NUMPY_HELPERS = {
    "_erf": "_erf = numpy.vectorize(math.erf, otypes=[float])\n",
    "_erfc": "_erfc = numpy.vectorize(math.erfc, otypes=[float])\n",
    "_sigmoid": "def _sigmoid(u):\n    return 0.5 * (1.0 + numpy.tanh(0.5 * u))  # never overflows\n",
    "_softplus": "def _softplus(u):\n    return numpy.logaddexp(0.0, u)  # log(1 + exp(u)) without overflow\n",
    "_gelu": "def _gelu(u):\n    return 0.5 * u * (1.0 + _erf(u / math.sqrt(2.0)))\n",
    "_elu": "def _elu(u):\n    return numpy.where(u > 0, u, numpy.expm1(numpy.minimum(u, 0.0)))\n",
    "_selu": (f"def _selu(u):\n    return {float(fn.SELU_SCALE)!r} * numpy.where(u > 0, u, {float(fn.SELU_ALPHA)!r} * "
              "numpy.expm1(numpy.minimum(u, 0.0)))\n"),
    "_elish": ("def _elish(u):\n    return numpy.where(u >= 0, u, numpy.expm1(numpy.minimum(u, 0.0))) * "
               "_sigmoid(u)\n"),
    "_atanh": ("def _atanh(u):\n    bound = 1.0 - numpy.finfo(numpy.result_type(u, 1.0)).eps\n"
               "    return numpy.arctanh(numpy.clip(u, -bound, bound))\n"),
}
_TORCH_UNARY = {
    fn.sigmoid: "torch.sigmoid", fn.softplus: "torch.nn.functional.softplus", fn.gelu: "torch.nn.functional.gelu",
    fn.elu: "torch.nn.functional.elu", fn.selu: "torch.nn.functional.selu", fn.elish: "_elish",
    fn.i0e: "torch.special.i0e", fn.i1e: "torch.special.i1e", sympy.atanh: "_atanh", sympy.erfc: "torch.erfc",
}
_NUMPY_UNARY = {
    fn.sigmoid: "_sigmoid", fn.softplus: "_softplus", fn.gelu: "_gelu", fn.elu: "_elu", fn.selu: "_selu",
    fn.elish: "_elish", sympy.atanh: "_atanh", sympy.erf: "_erf", sympy.erfc: "_erfc",
}


class _Helpers:
    """What both printers share: the unary table, the helper definitions used so far, Max/Min folding."""

    unary: ClassVar[dict[type, str]]
    helpers: ClassVar[dict[str, str]]
    needs: ClassVar[dict[str, tuple[str, ...]]] = {}
    maximum = minimum = sinc = ""

    if TYPE_CHECKING:  # provided by the sympy printer each concrete class also derives from
        def _print(self, expr: sympy.Basic) -> str: ...
        def doprint(self, expr: sympy.Basic) -> str: ...

    def used(self) -> set[str]:
        """Names of the helpers the printed code calls (and those they call)."""
        return self.__dict__.setdefault("_used_names", set())

    def _mark(self, name: str) -> None:
        if name in self.helpers:
            self.used().update({name, *self.needs.get(name, ())})

    def _call(self, name: str, *args: sympy.Basic) -> str:
        self._mark(name)
        return f"{name}({', '.join(self._print(a) for a in args)})"

    def _print_Function(self, expr: sympy.Function) -> str:
        name = self.unary.get(expr.func)
        if name is None:
            return super()._print_Function(expr)  # type: ignore[misc]
        return self._call(name, *expr.args)

    def _fold(self, name: str, args: tuple[sympy.Basic, ...]) -> str:
        self._mark(name)
        text = self._print(args[0])
        for arg in args[1:]:
            text = f"{name}({text}, {self._print(arg)})"
        return text

    def _print_Max(self, expr: sympy.Max) -> str:
        return self._fold(self.maximum, expr.args)

    def _print_Min(self, expr: sympy.Min) -> str:
        return self._fold(self.minimum, expr.args)

    def _print_sinc(self, expr: sympy.sinc) -> str:  # sympy's sinc is sin(x)/x, not normalised
        return self._call(self.sinc, expr.args[0] / sympy.pi)


class _TorchPrinter(_Helpers, TorchPrinter):
    unary, helpers, maximum, minimum, sinc = _TORCH_UNARY, _TORCH_HELPERS, "_maximum", "_minimum", "torch.sinc"

    def _print_Heaviside(self, expr: sympy.Heaviside) -> str:
        self._mark("_heaviside")
        at_zero = float(expr.args[1]) if len(expr.args) > 1 else 0.5
        return f"_heaviside({self._print(expr.args[0])}, {at_zero!r})"


class _NumpyPrinter(_Helpers, NumPyPrinter):
    unary, helpers, maximum, minimum, sinc = _NUMPY_UNARY, _NUMPY_HELPERS, "numpy.maximum", "numpy.minimum", "numpy.sinc"
    needs: ClassVar[dict[str, tuple[str, ...]]] = {"_gelu": ("_erf",), "_elish": ("_sigmoid",)}

    def _print_Heaviside(self, expr: sympy.Heaviside) -> str:
        at_zero = float(expr.args[1]) if len(expr.args) > 1 else 0.5
        return f"numpy.heaviside({self._print(expr.args[0])}, {at_zero!r})"

    def _print_i0e(self, expr: sympy.Function) -> str:
        raise ExportError(f"no numpy-only form of {expr.func.__name__} (it needs scipy); export it to torch")

    _print_i1e = _print_i0e


# sympy's printers have their own _print_<name> for some of these (atanh, erf, erfc): afos's kernels win.
for _printer in (_TorchPrinter, _NumpyPrinter):
    for _func in _printer.unary:
        setattr(_printer, f"_print_{_func.__name__}", _Helpers._print_Function)


def _print(printer: _Helpers, expr: sympy.Expr) -> tuple[str, list[str]]:
    """(the expression's code, the definitions of the helpers it calls)."""
    text = printer.doprint(expr)
    return text, [printer.helpers[name] for name in sorted(printer.used())]


# ------------------------------------------------------------------------------------------- rendering


def substituted(form: Form) -> sympy.Expr:
    """The expression with every parameter replaced by its value (per-channel values by their mean)."""
    return form.expr.xreplace({parameter_symbol(k): sympy.Float(_scalar(v)) for k, v in form.values.items()})


def _scalar(value: Value) -> float:
    return float(value) if not isinstance(value, list) else math.fsum(value) / len(value)


def render(form: Form, fmt: str = "torch") -> str:
    """The form as source text in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "sympy":
        return canonical(substituted(form)) + "\n"
    if fmt == "latex":
        return sympy.latex(substituted(form)) + "\n"
    return (_torch_file if fmt == "torch" else _numpy_file)(form)


def _header(form: Form, needs: str) -> str:
    lines = [f'"""Activation function exported by afos {__version__}; needs {needs} only.', "",
             f"    {canonical(form.expr)}", ""]
    if form.values:
        lines.append("Parameter values (PARAMETERS below): " + ", ".join(
            f"{name} = {_describe(value)}" for name, value in sorted(form.values.items())) + ".")
    if form.source:
        lines.append(form.source)
    return "\n".join(lines).rstrip() + '\n"""\n'


def _describe(value: Value) -> str:
    if isinstance(value, list):
        return f"one per channel ({len(value)}, mean {_scalar(value):.6g})"
    return f"{value:.6g}"


def _signature(form: Form) -> str:
    return ", ".join(["x", *form.names])


def _per_channel(form: Form) -> bool:
    return any(isinstance(v, list) for v in form.values.values())


def _torch_file(form: Form) -> str:
    code, helpers = _print(_TorchPrinter(), form.expr)
    channel = _per_channel(form)
    value = "_broadcast(value, x)" if channel else "torch.as_tensor(value, dtype=x.dtype, device=x.device)"
    parameters = "" if not form.values else "".join(
        f"        self.{name} = torch.nn.Parameter(torch.tensor(PARAMETERS[{name!r}], dtype=torch.float32))\n"
        for name in form.names)
    args = ", ".join(["x", *(f"_broadcast(self.{n}, x)" if channel else f"self.{n}" for n in form.names)])
    parts = [
        _header(form, "torch"),
        "import torch\n",
        f"PARAMETERS = {_literal(form.values)}\n",
        *helpers,
        *([_TORCH_BROADCAST] if channel else []),
        f"def formula({_signature(form)}):\n    return {code}\n",
        ("def activation(x):\n    \"\"\"The function with the parameter values baked in.\"\"\"\n"
         f"    return formula(x, **{{name: {value} for name, value in PARAMETERS.items()}})\n"),
        "class Activation(torch.nn.Module):\n"
        "    \"\"\"The function as a module; its parameters start at PARAMETERS and can be trained further.\"\"\"\n\n"
        "    def __init__(self):\n        super().__init__()\n" + parameters + "\n"
        f"    def forward(self, x):\n        return formula({args})\n",
    ]
    return _join(parts)


_TORCH_BROADCAST = (
    "def _broadcast(value, x):\n"
    "    \"\"\"One value per channel (dim 1): shape (C,) over (N, C) and (C, 1, 1) over (N, C, H, W).\"\"\"\n"
    "    value = torch.as_tensor(value, dtype=x.dtype, device=x.device)\n"
    "    return value.view((-1,) + (1,) * (x.dim() - 2)) if value.dim() == 1 else value\n"
)
_NUMPY_BROADCAST = (
    "def _broadcast(value, x):\n"
    "    \"\"\"One value per channel (dim 1): shape (C,) over (N, C) and (C, 1, 1) over (N, C, H, W).\"\"\"\n"
    "    value = numpy.asarray(value, dtype=x.dtype)\n"
    "    return value.reshape((-1,) + (1,) * (x.ndim - 2)) if value.ndim == 1 else value\n"
)


def _numpy_file(form: Form) -> str:
    code, helpers = _print(_NumpyPrinter(), form.expr)
    channel = _per_channel(form)
    value = "_broadcast(value, x)" if channel else "numpy.asarray(value, dtype=x.dtype)"
    parts = [
        _header(form, "numpy (and Python's math)"),
        "import math\n\nimport numpy\n" if any("math." in text for text in (code, *helpers)) else "import numpy\n",
        f"PARAMETERS = {_literal(form.values)}\n",
        *helpers,
        *([_NUMPY_BROADCAST] if channel else []),
        f"def formula({_signature(form)}):\n    return {code}\n",
        ("def activation(x):\n    \"\"\"The function with the parameter values baked in, on float arrays.\"\"\"\n"
         "    x = numpy.asarray(x)\n"
         "    x = x.astype(numpy.result_type(x.dtype, numpy.float32), copy=False)\n"
         f"    return formula(x, **{{name: {value} for name, value in PARAMETERS.items()}})\n"),
    ]
    return _join(parts)


def _join(parts: list[str]) -> str:
    """Top-level blocks two blank lines apart, as PEP 8 has it."""
    return "\n\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def _literal(values: Mapping[str, Value]) -> str:
    """The values as a Python literal that reads back exactly (``repr`` of floats round-trips)."""
    items = ", ".join(f"{name!r}: {value!r}" for name, value in sorted(values.items()))
    return "{" + items + "}"


def hall_of_fame_form(run_dir: str | Path, rank: int = 1) -> Form:
    """The function at ``rank`` (1 = best) of a search run's hall of fame, for :func:`afos.export.render`.

    Learned constants are per activation site; the form carries their mean over the sites (a per-channel
    summary counts by its mean), and says so.
    """
    path = Path(run_dir) / "afos.db" if Path(run_dir).is_dir() else Path(run_dir)
    if not path.is_file():
        raise UserError(f"{run_dir} is neither an expression nor a run folder holding afos.db")
    with RunStore(path, readonly=True) as store:
        generation = store.last_generation()
    entries = generation.hall_of_fame if generation else ()
    if not entries:
        raise UserError(f"{run_dir} has no hall of fame (not a search run, or no generation finished)")
    if not 1 <= rank <= len(entries):
        raise UserError(f"--rank {rank} is out of range: {run_dir} holds {len(entries)} functions")
    entry = entries[rank - 1]
    per_site: dict[str, list[float]] = {}
    for values in (entry.learned or {}).values():
        for name, value in values.items():
            per_site.setdefault(name, []).append(value["mean"] if isinstance(value, dict) else value)
    means = {name: math.fsum(v) / len(v) for name, v in per_site.items() if None not in v}
    source = f"Rank {rank} of {run_dir} (fitness {format_number(entry.fitness[1])})"
    if means:
        source += f"; learned values are means over {max(map(len, per_site.values()))} activation sites"
    return Form.from_text(entry.canonical, means, source=source + ".")
