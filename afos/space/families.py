"""Parametric activation families: expressions with a few named scalars, fixed or learned.

A family is plain data (expression text, parameter initialisations, default scope) so that it can be
named on the command line, in configs and as a search seed, and cross process boundaries as text.
Initial values are numbers or ``"N(mu,sigma)"`` for a random start.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Family:
    """A named parametric form; ``learnable`` start values are trained, ``fixed`` ones are not."""

    expression: str
    learnable: dict[str, float | str] = field(default_factory=dict)
    fixed: dict[str, float] = field(default_factory=dict)
    scope: str = "layer"
    doc: str = ""


FAMILIES: dict[str, Family] = {
    "mila": Family(
        "x*tanh(softplus(x + beta))", fixed={"beta": -0.25},
        doc="Mila: x*tanh(softplus(x + beta)); beta = 0 is Mish. Fixed at -0.25 unless made learnable.",
    ),
    "swish_beta": Family(
        "x*sigmoid(beta*x)", learnable={"beta": 1.0},
        doc="Swish with a learned slope beta (beta = 1 is SiLU).",
    ),
    "adaptive_sigmoid": Family(
        "b*sigmoid(a*x + c) + d", learnable={"a": 1.0, "b": 1.0, "c": 0.0, "d": 0.0},
        doc="Hu et al. (IEEE TNNLS 2023): per-layer scaled and shifted sigmoid, starting as sigmoid.",
    ),
    "adaptive_tanh": Family(
        "b*tanh(a*x + c) + d", learnable={"a": 1.0, "b": 1.0, "c": 0.0, "d": 0.0},
        doc="Hu et al. (IEEE TNNLS 2023): per-layer scaled and shifted tanh, starting as tanh.",
    ),
    "adaptive_relu": Family(
        "max(a*x + c, b*x + d)", learnable={"a": 1.0, "b": 0.0, "c": 0.0, "d": 0.0},
        doc="Hu et al. (IEEE TNNLS 2023): max of two learned lines. Starts as ReLU (b = 0): with a = b = 1 "
            "both lines coincide and the unit would start as the identity.",
    ),
    "learned_linear": Family(
        "k0 + k1*x", learnable={"k0": "N(0,0.1)", "k1": "N(0,0.1)"},
        doc="A learned line k0 + k1*x per layer. It keeps the whole network linear, so it cannot beat a "
            "nonlinear activation on a task that needs one; it is the control of the adaptive study.",
    ),
}
