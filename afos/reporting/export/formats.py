"""The export formats, and :func:`render`, which writes a form in one of them."""

from __future__ import annotations

from collections.abc import Callable

from afos.records.settings import ExportFormat
from afos.reporting.export import numpy_code, torch_code
from afos.reporting.export.form import ExportError, Form
from afos.reporting.export.text import latex, sympy_text

_WRITERS: dict[ExportFormat, Callable[[Form], str]] = {
    ExportFormat.TORCH: torch_code.torch_file, ExportFormat.NUMPY: numpy_code.numpy_file,
    ExportFormat.LATEX: latex, ExportFormat.SYMPY: sympy_text,
}

#: Every name a code export writes a parameter under another name for (besides Python's keywords).
RESERVED_NAMES = frozenset(torch_code.RESERVED | numpy_code.RESERVED)


def render(form: Form, fmt: str | ExportFormat = ExportFormat.TORCH) -> str:
    """The form as source text in ``fmt``."""
    try:
        chosen = ExportFormat(fmt)
    except ValueError:
        known = ", ".join(f.value for f in ExportFormat)
        raise ExportError(f"unknown export format {fmt!r}; choose one of {known}") from None
    return _WRITERS[chosen](form)
