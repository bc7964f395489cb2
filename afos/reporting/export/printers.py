"""What the code exporters share: the printer base that prints afos's kernels, names safe to write, and the
layout of a generated file (its docstring, the PARAMETERS literal, blocks two blank lines apart)."""

from __future__ import annotations

import builtins
import keyword
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import sympy

from afos import __version__
from afos.reporting.export.form import Form, Value, scalar
from afos.space.parse import canonical, parameter_symbol

#: Names every generated file uses or reads at its top level, and Python's builtins: a parameter of one of
#: these names would shadow it (``torch``) or not parse (``lambda``, a keyword), so it is written renamed.
BASE_RESERVED = frozenset({"x", "formula", "activation", "PARAMETERS", "math", "numpy", "torch", "_broadcast",
                           "name", "value", *dir(builtins)})


class CodePrinter:
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

    @classmethod
    def prefer_kernels(cls) -> None:
        """sympy's printers have their own ``_print_<name>`` for some of the unary functions (atanh, erf,
        erfc): afos's kernels win."""
        for func in cls.unary:
            setattr(cls, f"_print_{func.__name__}", CodePrinter._print_Function)


@dataclass(frozen=True)
class CodeForm:
    """A form as a file writes it: parameters under names safe in the file (``code_names``: original ->
    written), the expression in those names, and the values by them."""

    form: Form
    code_names: dict[str, str]

    @classmethod
    def of(cls, form: Form, reserved: Iterable[str]) -> CodeForm:
        """Each parameter keeps its name unless Python reserves it or ``reserved`` holds it; then ``_`` is
        appended until the name is free (``lambda`` -> ``lambda_``)."""
        taken, unsafe = set(form.names), frozenset(reserved)
        names: dict[str, str] = {}
        for name in form.names:
            written = name
            while keyword.iskeyword(written) or written in unsafe or (written != name and written in taken):
                written += "_"
            names[name] = written
            taken.add(written)
        return cls(form, names)

    @property
    def names(self) -> list[str]:
        return [self.code_names[name] for name in self.form.names]

    @property
    def values(self) -> dict[str, Value]:
        return {self.code_names[name]: value for name, value in self.form.values.items()}

    @property
    def expr(self) -> sympy.Expr:
        return self.form.expr.xreplace({parameter_symbol(name): sympy.Symbol(written, real=True)
                                        for name, written in self.code_names.items()})

    @property
    def per_channel(self) -> bool:
        return any(isinstance(v, list) for v in self.form.values.values())

    def signature(self) -> str:
        return ", ".join(["x", *self.names])


def print_code(printer: CodePrinter, expr: sympy.Expr) -> tuple[str, list[str]]:
    """(the expression's code, the definitions of the helpers it calls)."""
    text = printer.doprint(expr)
    return text, [printer.helpers[name] for name in sorted(printer.used())]


def header(code: CodeForm, needs: str) -> str:
    """The file's docstring: what it is, the formula, the parameter values, renamed names, the source."""
    form = code.form
    lines = [f'"""Activation function exported by afos {__version__}; needs {needs} only.', "",
             f"    {canonical(form.expr)}", ""]
    if form.values:
        lines.append("Parameter values (PARAMETERS below): " + ", ".join(
            f"{name} = {_describe(value)}" for name, value in sorted(form.values.items())) + ".")
    renamed = {name: written for name, written in code.code_names.items() if name != written}
    if renamed:
        lines.append("Written under other names here, as Python reserves or this file uses theirs: " + ", ".join(
            f"{name} as {written}" for name, written in sorted(renamed.items())) + ".")
    if form.source:
        lines.append(form.source)
    return "\n".join(lines).rstrip() + '\n"""\n'


def _describe(value: Value) -> str:
    if isinstance(value, list):
        return f"one per channel ({len(value)}, mean {scalar(value):.6g})"
    return f"{value:.6g}"


def join_blocks(parts: list[str]) -> str:
    """Top-level blocks two blank lines apart, as PEP 8 has it."""
    return "\n\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def literal(values: Mapping[str, Value]) -> str:
    """The values as a Python literal that reads back exactly (``repr`` of floats round-trips)."""
    items = ", ".join(f"{name!r}: {value!r}" for name, value in sorted(values.items()))
    return "{" + items + "}"
