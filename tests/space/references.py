"""Independent numpy/scipy references for every primitive, written from the textbook definitions.

They share no code with afos, so agreement means the sympy form *and* its torch lowering are right.
"""

from __future__ import annotations

import numpy as np
from scipy import special

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return special.expit(a)


def _softplus(a: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, a)


def _elu(a: np.ndarray) -> np.ndarray:
    return np.where(a > 0, a, np.expm1(np.minimum(a, 0)))


UNARY = {
    "zero": lambda a: np.zeros_like(a),
    "one": lambda a: np.ones_like(a),
    "identity": lambda a: a,
    "neg": lambda a: -a,
    "negative": lambda a: -a,
    "abs": np.abs,
    "square": lambda a: a * a,
    "cube": lambda a: a * a * a,
    "sqrt": np.sqrt,
    "reciprocal": lambda a: 1.0 / a,
    "add_one": lambda a: a + 1.0,
    "log_abs": lambda a: np.log(np.abs(a) + 1e-3),
    "exp": np.exp,
    "exp_neg": lambda a: np.exp(-a),
    "expm1": np.expm1,
    "gauss": lambda a: np.exp(-a * a),
    "sin": np.sin,
    "cos": np.cos,
    "sinc": lambda a: np.sinc(a / np.pi),
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "atan": np.arctan,
    "atanh": np.arctanh,
    "erf": special.erf,
    "erfc": special.erfc,
    "x_erf": lambda a: a * special.erf(a),
    "sigmoid": _sigmoid,
    "log_sigmoid": lambda a: -_softplus(-a),
    "softplus": _softplus,
    "softsign": lambda a: a / (1 + np.abs(a)),
    "max0": lambda a: np.maximum(a, 0),
    "relu": lambda a: np.maximum(a, 0),
    "min0": lambda a: np.minimum(a, 0),
    "leaky_relu": lambda a: np.where(a > 0, a, 0.01 * a),
    "elu": _elu,
    "selu": lambda a: SELU_SCALE * np.where(a > 0, a, SELU_ALPHA * np.expm1(np.minimum(a, 0))),
    "elish": lambda a: np.where(a >= 0, a, np.expm1(np.minimum(a, 0))) * _sigmoid(a),
    "swish": lambda a: a * _sigmoid(a),
    "mish": lambda a: a * np.tanh(_softplus(a)),
    "gelu": lambda a: a * special.ndtr(a),
    "hard_sigmoid": lambda a: np.clip(a / 6 + 0.5, 0, 1),
    "bessel_i0e": special.i0e,
    "bessel_i1e": special.i1e,
}

BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "div_eps": lambda a, b: a / (b + 1e-3),
    "pow": np.power,
    "max": np.maximum,
    "min": np.minimum,
    "max0_max": lambda a, b: np.maximum(np.maximum(a, 0), b),
    "mul_erf": lambda a, b: a * special.erf(b),
    "mul_exp": lambda a, b: a * np.exp(b),
    "sigmoid_mul": lambda a, b: _sigmoid(a) * b,
    "gauss_diff": lambda a, b: np.exp(-((a - b) ** 2)),
    "laplace_diff": lambda a, b: np.exp(-np.abs(a - b)),
}

#: Input domains where a primitive is defined and smooth enough for finite differences.
POSITIVE_ONLY = {"sqrt", "pow"}
INSIDE_UNIT = {"atanh"}
AWAY_FROM_ZERO = {"reciprocal", "div", "log_abs", "div_eps", "abs", "max0", "relu", "min0", "leaky_relu",
                  "elu", "selu", "elish", "hard_sigmoid", "max0_max"}
