"""Named sympy functions that sympy lacks but activation research uses.

They keep the canonical form readable (``softplus(x)`` rather than ``log(exp(x) + 1)``) and let the torch
lowering pick the numerically stable kernel (``F.softplus`` never overflows, the naive form does).
Their torch implementations live in :mod:`afos.space.lower`, the one place that maps sympy to torch.
"""

from __future__ import annotations

import sympy

#: SELU's constants (Klambauer et al. 2017), as torch.nn.functional.selu uses them.
#: atanh's input bound, the same in every dtype: float32's 1 - eps, so its plateau is atanh(bound) = 8.318.
#: Why one bound: each dtype's own 1 - eps made the plateau 18.37 in float64 (plots, screening,
#: fingerprints), 8.32 in float32 (training) and 2.77 in bfloat16 (GPU autocast), so the function shown was
#: not the function trained. Half-precision inputs are clamped and mapped in float32, where the bound exists.
ATANH_BOUND = 1.0 - 2.0**-23
SELU_ALPHA = sympy.Float("1.6732632423543772848170429916717")
SELU_SCALE = sympy.Float("1.0507009873554804934193349852946")


class _Named(sympy.Function):
    """A one-argument function printed under its own name in text and LaTeX.

    ``expanded`` gives the same function in sympy's built-in functions; sympy uses it to evaluate a
    constant argument numerically (``Max(x, i0e(1))`` must compare ``i0e(1)`` with numbers).
    """

    nargs = 1
    latex_name: str = ""

    @staticmethod
    def expanded(a: sympy.Expr) -> sympy.Expr:
        raise NotImplementedError

    def _eval_evalf(self, prec: int) -> sympy.Expr:
        return self.expanded(self.args[0])._eval_evalf(prec)

    def _eval_is_real(self) -> bool | None:
        """Real at a real argument (every function here is), so that sympy never writes ``re(selu(x))``
        into a canonical form that the parser, which knows no ``re``, cannot read back."""
        return True if self.args[0].is_real else None

    def _latex(self, printer) -> str:  # noqa: ANN001 - sympy's printer protocol
        name = self.latex_name or rf"\operatorname{{{self.func.__name__}}}"
        return rf"{name}\left({printer._print(self.args[0])}\right)"


class sigmoid(_Named):
    """Logistic function 1 / (1 + exp(-x))."""

    @staticmethod
    def expanded(a: sympy.Expr) -> sympy.Expr:
        return 1 / (1 + sympy.exp(-a))

    latex_name = r"\sigma"

    @classmethod
    def eval(cls, arg):  # noqa: ANN001, ANN206 - sympy hook
        if arg.is_zero:
            return sympy.Rational(1, 2)
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sigmoid(self.args[0]) * (1 - sigmoid(self.args[0]))

    def _eval_is_positive(self) -> bool | None:
        return True if self.args[0].is_real else None


class softplus(_Named):
    """log(1 + exp(x)), lowered to the overflow-free kernel."""

    @staticmethod
    def expanded(a: sympy.Expr) -> sympy.Expr:
        return sympy.log(1 + sympy.exp(a))

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sigmoid(self.args[0])

    def _eval_is_positive(self) -> bool | None:
        return True if self.args[0].is_real else None


class gelu(_Named):
    """Exact GELU, x * Phi(x) with Phi the standard normal CDF."""

    @staticmethod
    def expanded(a: sympy.Expr) -> sympy.Expr:
        return a * (1 + sympy.erf(a / sympy.sqrt(2))) / 2

    latex_name = r"\operatorname{GELU}"


class elu(_Named):
    """ELU with alpha = 1: x for x > 0, exp(x) - 1 otherwise."""

    @staticmethod
    def expanded(a: sympy.Expr) -> sympy.Expr:
        return sympy.Piecewise((a, a > 0), (sympy.exp(a) - 1, True))

    latex_name = r"\operatorname{ELU}"


class selu(_Named):
    """SELU (Klambauer et al. 2017) with its fixed alpha and scale."""

    @staticmethod
    def expanded(a: sympy.Expr) -> sympy.Expr:
        return SELU_SCALE * sympy.Piecewise((a, a > 0), (SELU_ALPHA * (sympy.exp(a) - 1), True))

    latex_name = r"\operatorname{SELU}"


class elish(_Named):
    """ELiSH: x * sigmoid(x) for x >= 0, (exp(x) - 1) * sigmoid(x) otherwise."""

    @staticmethod
    def expanded(a: sympy.Expr) -> sympy.Expr:
        return sympy.Piecewise((a, a >= 0), (sympy.exp(a) - 1, True)) / (1 + sympy.exp(-a))

    latex_name = r"\operatorname{ELiSH}"


class i0e(_Named):
    """Exponentially scaled modified Bessel function of order 0, exp(-|x|) I0(x)."""

    @staticmethod
    def expanded(a: sympy.Expr) -> sympy.Expr:
        return sympy.exp(-sympy.Abs(a)) * sympy.besseli(0, a)

    latex_name = r"I_{0}^{e}"


class i1e(_Named):
    """Exponentially scaled modified Bessel function of order 1, exp(-|x|) I1(x)."""

    @staticmethod
    def expanded(a: sympy.Expr) -> sympy.Expr:
        return sympy.exp(-sympy.Abs(a)) * sympy.besseli(1, a)

    latex_name = r"I_{1}^{e}"


#: Every custom function class, by the name the parser and printer use.
CUSTOM_FUNCTIONS: dict[str, type[sympy.Function]] = {
    cls.__name__: cls for cls in (sigmoid, softplus, gelu, elu, selu, elish, i0e, i1e)
}
