"""The text exports: the formula with its parameter values substituted, as LaTeX or as sympy text."""

from __future__ import annotations

import sympy

from afos.reporting.export.form import Form, substituted
from afos.space.parse import canonical


def latex(form: Form) -> str:
    return sympy.latex(substituted(form)) + "\n"


def sympy_text(form: Form) -> str:
    """The canonical text, which the expression grammar parses back."""
    return canonical(substituted(form)) + "\n"
