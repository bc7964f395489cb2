"""Standalone source code of an activation function, for pasting into a project that does not use afos.

:func:`~afos.reporting.export.formats.render` turns a :class:`~afos.reporting.export.form.Form` (a sympy
expression in ``x`` and named parameters, with their values) into one of four formats, one module each:

* ``torch`` (:mod:`~afos.reporting.export.torch_code`): a file needing only torch, with
  ``formula(x, <params>)``, ``activation(x)`` (the values baked in) and ``class Activation(torch.nn.Module)``
  (the values as trainable ``nn.Parameter``\\ s);
* ``numpy`` (:mod:`~afos.reporting.export.numpy_code`): a file needing only numpy (and the standard
  library's ``math``), with ``formula`` and ``activation(x)``;
* ``latex`` and ``sympy`` (:mod:`~afos.reporting.export.text`): the formula with the values substituted.

The code is printed from the sympy form by sympy's own NumPy and PyTorch printers
(:mod:`~afos.reporting.export.printers`), with afos's functions and the constructs the stock printers get
wrong printed as the stable kernels afos trains with (:mod:`afos.space.lower`); only helpers a formula uses
are emitted. A parameter whose name Python reserves or the file itself uses (``lambda``, ``torch``,
``formula`` ...) is written under another name in the code, and the file's docstring says which.
"""

from afos.records.settings import ExportFormat
from afos.reporting.export.form import Form
from afos.reporting.export.formats import render

__all__ = ["ExportFormat", "Form", "render"]
