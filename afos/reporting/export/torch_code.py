"""The ``torch`` export: a file needing only torch, with ``formula``, ``activation`` and ``class Activation``."""

from __future__ import annotations

import sympy
import torch
from sympy.printing.pytorch import TorchPrinter

from afos.reporting.export.form import Form
from afos.reporting.export.printers import BASE_RESERVED, CodeForm, CodePrinter, header, join_blocks, literal, print_code
from afos.space import functions as fn

#: Helper source per name, emitted once above the formula when it is used.
HELPERS = {
    "_elish": "def _elish(u):\n    return torch.where(u >= 0, u, torch.expm1(u)) * torch.sigmoid(u)\n",
    "_atanh": ("def _atanh(u):\n    # the input bound afos trains with, the same in every dtype\n"
               "    wide = u.float() if u.dtype in (torch.float16, torch.bfloat16) else u\n"
               f"    return torch.atanh(wide.clamp({-fn.ATANH_BOUND!r}, {fn.ATANH_BOUND!r})).to(u.dtype)\n"),
    "_heaviside": "def _heaviside(u, at_zero):\n    return torch.where(u == 0, at_zero, (u > 0).to(u.dtype))\n",
    "_maximum": ("def _maximum(a, b):\n    if not torch.is_tensor(a):\n        a, b = b, a\n"
                 "    if torch.is_tensor(b):\n        return torch.maximum(a, b)\n"
                 "    return torch.relu(a) if b == 0 else torch.clamp(a, min=b)\n"),
    "_minimum": ("def _minimum(a, b):\n    if not torch.is_tensor(a):\n        a, b = b, a\n"
                 "    return torch.clamp(a, max=b) if not torch.is_tensor(b) else torch.minimum(a, b)\n"),
}
_UNARY = {
    fn.sigmoid: "torch.sigmoid", fn.softplus: "torch.nn.functional.softplus", fn.gelu: "torch.nn.functional.gelu",
    fn.elu: "torch.nn.functional.elu", fn.selu: "torch.nn.functional.selu", fn.elish: "_elish",
    fn.i0e: "torch.special.i0e", fn.i1e: "torch.special.i1e", sympy.atanh: "_atanh", sympy.erfc: "torch.erfc",
}
_BROADCAST = (
    "def _broadcast(value, x):\n"
    "    \"\"\"One value per channel (dim 1): shape (C,) over (N, C) and (C, 1, 1) over (N, C, H, W).\"\"\"\n"
    "    value = torch.as_tensor(value, dtype=x.dtype, device=x.device)\n"
    "    return value.view((-1,) + (1,) * (x.dim() - 2)) if value.dim() == 1 else value\n"
)
#: Besides the base names: this file's helpers, its class, and every attribute of a torch module (a
#: parameter becomes ``self.<name>``: ``training`` or ``forward`` would break the module).
RESERVED = BASE_RESERVED | set(HELPERS) | {"Activation", "self", "super"} | set(dir(torch.nn.Module()))


class _Printer(CodePrinter, TorchPrinter):
    unary, helpers, maximum, minimum, sinc = _UNARY, HELPERS, "_maximum", "_minimum", "torch.sinc"

    def _print_Heaviside(self, expr: sympy.Heaviside) -> str:
        self._mark("_heaviside")
        at_zero = float(expr.args[1]) if len(expr.args) > 1 else 0.5
        return f"_heaviside({self._print(expr.args[0])}, {at_zero!r})"


_Printer.prefer_kernels()


def torch_file(form: Form) -> str:
    """The standalone torch file of ``form``."""
    code_form = CodeForm.of(form, RESERVED)
    code, helpers = print_code(_Printer(), code_form.expr)
    channel = code_form.per_channel
    value = "_broadcast(value, x)" if channel else "torch.as_tensor(value, dtype=x.dtype, device=x.device)"
    parameters = "".join(
        f"        self.{name} = torch.nn.Parameter(torch.tensor(PARAMETERS[{name!r}], dtype=torch.float32))\n"
        for name in code_form.names)
    args = ", ".join(["x", *(f"_broadcast(self.{n}, x)" if channel else f"self.{n}" for n in code_form.names)])
    parts = [
        header(code_form, "torch"),
        "import torch\n",
        f"PARAMETERS = {literal(code_form.values)}\n",
        *helpers,
        *([_BROADCAST] if channel else []),
        f"def formula({code_form.signature()}):\n    return {code}\n",
        ("def activation(x):\n    \"\"\"The function with the parameter values baked in.\"\"\"\n"
         f"    return formula(x, **{{name: {value} for name, value in PARAMETERS.items()}})\n"),
        "class Activation(torch.nn.Module):\n"
        "    \"\"\"The function as a module; its parameters start at PARAMETERS and can be trained further.\"\"\"\n\n"
        "    def __init__(self):\n        super().__init__()\n" + parameters + "\n"
        f"    def forward(self, x):\n        return formula({args})\n",
    ]
    return join_blocks(parts)
