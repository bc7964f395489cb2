"""The primitive registry: the building blocks of candidate activation functions.

Each primitive is a name, an arity, a human formula and a *sympy form* (a function of sympy arguments).
Its torch implementation is the lowering of that sympy form (:func:`afos.space.lower.lower`), so the
symbolic and numeric meanings can never drift apart; where the naive torch form overflows (softplus,
sigmoid, log-sigmoid, atanh near +-1) the lowering uses the stable kernel of the named function.

Three primitive sets are defined: ``afos`` (the AFOS paper), ``swish`` (Ramachandran et al. 2017,
"Searching for Activation Functions") and ``actbench``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import sympy

from afos.errors import ConfigError
from afos.space.functions import elish, elu, gelu, i0e, i1e, selu, sigmoid, softplus

if TYPE_CHECKING:
    from afos.space.lower import Program

#: The input of every activation function. Declared real so sympy may drop e.g. ``Abs(exp(x))``.
X = sympy.Symbol("x", real=True)

#: Argument symbols of the primitives' sympy forms (a, b), used to lower a primitive on its own.
ARGS = sympy.symbols("a b", real=True)

#: Small constant that keeps ``log(|x| + eps)`` and ``a / (b + eps)`` finite at zero.
EPS = sympy.Rational(1, 1000)


@dataclass(frozen=True)
class Primitive:
    """One building block: ``build`` maps sympy arguments to the primitive's sympy form."""

    name: str
    arity: int
    formula: str
    build: Callable[..., sympy.Expr]

    def __call__(self, *args: sympy.Expr) -> sympy.Expr:
        return self.build(*args)

    def torch(self) -> "Program":
        """The torch implementation: the lowering of the sympy form, using stable kernels where the
        naive form overflows. Takes ``arity`` tensors."""
        from afos.space.lower import lower  # lazy: keeps torch out of the parser's import path

        args = ARGS[: self.arity]
        return lower(self.build(*args), args)


def _relu(a: sympy.Expr) -> sympy.Expr:
    return sympy.Max(a, 0)


def _sub(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    return a - b


_UNARY: list[tuple[str, str, Callable[[sympy.Expr], sympy.Expr]]] = [
    ("zero", "0", lambda a: sympy.Integer(0)),
    ("one", "1", lambda a: sympy.Integer(1)),
    ("identity", "x", lambda a: a),
    ("neg", "-x", lambda a: -a),
    ("negative", "-x", lambda a: -a),
    ("abs", "|x|", sympy.Abs),
    ("square", "x^2", lambda a: a**2),
    ("cube", "x^3", lambda a: a**3),
    ("sqrt", "sqrt(x)", sympy.sqrt),
    ("reciprocal", "1/x", lambda a: 1 / a),
    ("add_one", "x + 1", lambda a: a + 1),
    ("log_abs", "log(|x| + 0.001)", lambda a: sympy.log(sympy.Abs(a) + EPS)),
    ("exp", "exp(x)", sympy.exp),
    ("exp_neg", "exp(-x)", lambda a: sympy.exp(-a)),
    ("expm1", "exp(x) - 1", lambda a: sympy.exp(a) - 1),
    ("gauss", "exp(-x^2)", lambda a: sympy.exp(-(a**2))),
    ("sin", "sin(x)", sympy.sin),
    ("cos", "cos(x)", sympy.cos),
    ("sinc", "sin(x)/x", sympy.sinc),
    ("sinh", "sinh(x)", sympy.sinh),
    ("cosh", "cosh(x)", sympy.cosh),
    ("tanh", "tanh(x)", sympy.tanh),
    ("asinh", "asinh(x)", sympy.asinh),
    ("atan", "atan(x)", sympy.atan),
    ("atanh", "atanh(x), input clamped to ±(1 - 2^-23): at most ±8.318 in every dtype", sympy.atanh),
    ("erf", "erf(x)", sympy.erf),
    ("erfc", "1 - erf(x)", sympy.erfc),
    ("x_erf", "x*erf(x)", lambda a: a * sympy.erf(a)),
    ("sigmoid", "1/(1 + exp(-x))", sigmoid),
    ("log_sigmoid", "log(sigmoid(x)) = -softplus(-x)", lambda a: -softplus(-a)),
    ("softplus", "log(1 + exp(x))", softplus),
    ("softsign", "x/(1 + |x|)", lambda a: a / (1 + sympy.Abs(a))),
    ("max0", "max(x, 0)", _relu),
    ("relu", "max(x, 0)", _relu),
    ("min0", "min(x, 0)", lambda a: sympy.Min(a, 0)),
    ("leaky_relu", "max(x, 0.01*x)", lambda a: sympy.Max(a, a / 100)),
    ("elu", "x if x > 0 else exp(x) - 1", elu),
    ("selu", "1.0507*(x if x > 0 else 1.67326*(exp(x) - 1))", selu),
    ("elish", "x*sigmoid(x) if x >= 0 else (exp(x) - 1)*sigmoid(x)", elish),
    ("swish", "x*sigmoid(x)", lambda a: a * sigmoid(a)),
    ("mish", "x*tanh(softplus(x))", lambda a: a * sympy.tanh(softplus(a))),
    ("gelu", "x*Phi(x) = x*(1 + erf(x/sqrt(2)))/2", gelu),
    ("hard_sigmoid", "max(0, min(1, x/6 + 1/2))", lambda a: sympy.Max(0, sympy.Min(1, a / 6 + sympy.Rational(1, 2)))),
    ("bessel_i0e", "exp(-|x|)*I0(x)", i0e),
    ("bessel_i1e", "exp(-|x|)*I1(x)", i1e),
]

_BINARY: list[tuple[str, str, Callable[[sympy.Expr, sympy.Expr], sympy.Expr]]] = [
    ("add", "a + b", lambda a, b: a + b),
    ("sub", "a - b", _sub),
    ("mul", "a*b", lambda a, b: a * b),
    ("div", "a/b", lambda a, b: a / b),
    ("div_eps", "a/(b + 0.001)", lambda a, b: a / (b + EPS)),
    ("pow", "a^b", lambda a, b: a**b),
    ("max", "max(a, b)", sympy.Max),
    ("min", "min(a, b)", sympy.Min),
    ("max0_max", "max(max(a, 0), b)", lambda a, b: sympy.Max(sympy.Max(a, 0), b)),
    ("mul_erf", "a*erf(b)", lambda a, b: a * sympy.erf(b)),
    ("mul_exp", "a*exp(b)", lambda a, b: a * sympy.exp(b)),
    ("sigmoid_mul", "sigmoid(a)*b", lambda a, b: sigmoid(a) * b),
    ("gauss_diff", "exp(-(a - b)^2)", lambda a, b: sympy.exp(-((a - b) ** 2))),
    ("laplace_diff", "exp(-|a - b|)", lambda a, b: sympy.exp(-sympy.Abs(a - b))),
]

#: Every primitive by name. Names are valid identifiers, so they double as DEAP primitive names.
PRIMITIVES: dict[str, Primitive] = {
    name: Primitive(name, arity, formula, build)
    for arity, table in ((1, _UNARY), (2, _BINARY))
    for name, formula, build in table
}

#: The named primitive sets. ``identity`` stands for the paper's unary ``x``.
PRIMITIVE_SETS: dict[str, tuple[str, ...]] = {
    "afos": (
        "identity", "exp", "abs", "neg", "exp_neg", "min0", "erf", "sigmoid", "x_erf", "max0", "sin",
        "atan", "tanh", "softplus", "sinh", "atanh", "asinh",
        "add", "mul", "max0_max", "mul_erf", "max", "mul_exp", "sigmoid_mul",
    ),
    "swish": (
        "identity", "neg", "abs", "square", "cube", "sqrt", "add_one", "log_abs", "exp", "sin", "cos",
        "sinh", "cosh", "tanh", "asinh", "atan", "sinc", "max0", "min0", "sigmoid", "softplus", "gauss",
        "erf",
        "add", "mul", "sub", "div_eps", "max", "min", "sigmoid_mul", "gauss_diff", "laplace_diff",
    ),
    "actbench": (
        "zero", "one", "identity", "negative", "abs", "reciprocal", "square", "exp", "erf", "erfc", "sinh",
        "cosh", "tanh", "expm1", "sigmoid", "log_sigmoid", "asinh", "atan", "bessel_i0e", "bessel_i1e",
        "relu", "elu", "selu", "swish", "softplus", "softsign", "hard_sigmoid", "elish", "leaky_relu",
        "mish", "gelu",
        "add", "sub", "mul", "div", "pow", "max", "min",
    ),
}


def primitive_set(spec: str | list[str] | tuple[str, ...]) -> tuple[Primitive, ...]:
    """Resolve a set name (``"afos"``) or an explicit list of primitive names to primitives.

    A comma-separated string (``"exp,tanh,add"``) counts as an explicit list. Unknown names raise
    :class:`ConfigError` naming them, so a typo in a config never silently shrinks the search space.
    """
    if isinstance(spec, str):
        names = PRIMITIVE_SETS.get(spec) or tuple(n.strip() for n in spec.split(",") if n.strip())
    else:
        names = tuple(spec)
    unknown = [n for n in names if n not in PRIMITIVES]
    if unknown or not names:
        raise ConfigError(
            f"unknown primitive set or primitive(s) {', '.join(unknown) or repr(spec)}; "
            f"sets: {', '.join(PRIMITIVE_SETS)}; primitives: {', '.join(PRIMITIVES)}"
        )
    return tuple(PRIMITIVES[n] for n in names)
