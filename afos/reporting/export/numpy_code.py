"""The ``numpy`` export: a file needing only numpy (and Python's ``math``), with ``formula`` and ``activation``."""

from __future__ import annotations

import sympy
from sympy.printing.numpy import NumPyPrinter

from afos.reporting.export.form import ExportError, Form
from afos.reporting.export.printers import BASE_RESERVED, CodeForm, CodePrinter, header, join_blocks, literal, print_code
from afos.space import functions as fn

#: Helper source per name, emitted once above the formula when it is used.
HELPERS = {
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
    "_atanh": ("def _atanh(u):\n    # the input bound afos trains with, the same in every dtype\n"
               "    wide = numpy.asarray(u, numpy.result_type(u, numpy.float32))\n"
               f"    return numpy.arctanh(numpy.clip(wide, {-fn.ATANH_BOUND!r}, {fn.ATANH_BOUND!r}))\n"),
}
_UNARY = {
    fn.sigmoid: "_sigmoid", fn.softplus: "_softplus", fn.gelu: "_gelu", fn.elu: "_elu", fn.selu: "_selu",
    fn.elish: "_elish", sympy.atanh: "_atanh", sympy.erf: "_erf", sympy.erfc: "_erfc",
}
_BROADCAST = (
    "def _broadcast(value, x):\n"
    "    \"\"\"One value per channel (dim 1): shape (C,) over (N, C) and (C, 1, 1) over (N, C, H, W).\"\"\"\n"
    "    value = numpy.asarray(value, dtype=x.dtype)\n"
    "    return value.reshape((-1,) + (1,) * (x.ndim - 2)) if value.ndim == 1 else value\n"
)
RESERVED = BASE_RESERVED | set(HELPERS)


class _Printer(CodePrinter, NumPyPrinter):
    unary, helpers, maximum, minimum, sinc = _UNARY, HELPERS, "numpy.maximum", "numpy.minimum", "numpy.sinc"
    needs = {"_gelu": ("_erf",), "_elish": ("_sigmoid",)}

    def _print_Heaviside(self, expr: sympy.Heaviside) -> str:
        at_zero = float(expr.args[1]) if len(expr.args) > 1 else 0.5
        return f"numpy.heaviside({self._print(expr.args[0])}, {at_zero!r})"

    def _print_i0e(self, expr: sympy.Function) -> str:
        raise ExportError(f"no numpy-only form of {expr.func.__name__} (it needs scipy); export it to torch")

    _print_i1e = _print_i0e


_Printer.prefer_kernels()


def numpy_file(form: Form) -> str:
    """The standalone numpy file of ``form``."""
    code_form = CodeForm.of(form, RESERVED)
    code, helpers = print_code(_Printer(), code_form.expr)
    value = "_broadcast(value, x)" if code_form.per_channel else "numpy.asarray(value, dtype=x.dtype)"
    parts = [
        header(code_form, "numpy (and Python's math)"),
        "import math\n\nimport numpy\n" if any("math." in text for text in (code, *helpers)) else "import numpy\n",
        f"PARAMETERS = {literal(code_form.values)}\n",
        *helpers,
        *([_BROADCAST] if code_form.per_channel else []),
        f"def formula({code_form.signature()}):\n    return {code}\n",
        ("def activation(x):\n    \"\"\"The function with the parameter values baked in, on float arrays.\"\"\"\n"
         "    x = numpy.asarray(x)\n"
         "    x = x.astype(numpy.result_type(x.dtype, numpy.float32), copy=False)\n"
         f"    return formula(x, **{{name: {value} for name, value in PARAMETERS.items()}})\n"),
    ]
    return join_blocks(parts)
