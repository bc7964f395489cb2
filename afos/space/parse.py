"""A whitelist parser from math text to sympy expressions.

User text never reaches ``eval``, ``exec``, ``sympify`` or ``parse_expr`` (all of which run Python).
Instead a tokenizer accepts only numbers, names, ``+ - * / ** ^ ( ) ,`` and whitespace, and a
recursive-descent parser builds the sympy tree from explicit constructors. Names resolve only through
:data:`FUNCTIONS`, the variable ``x``, the constants ``pi``/``e`` and parameters the caller declares.

Resource limits keep hostile input cheap: text length, nesting depth, exponent size and the magnitude of
every numeric intermediate are bounded, so ``10**10**10`` fails in microseconds instead of hanging.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Callable, Iterable

import sympy
from sympy.printing.str import StrPrinter

from afos.errors import ParseError
from afos.space.functions import CUSTOM_FUNCTIONS, sigmoid, softplus
from afos.space.primitives import PRIMITIVES, X

MAX_LENGTH = 2000
MAX_DEPTH = 64
#: Largest |exponent| allowed on a non-constant base; x**100 is already useless as an activation.
MAX_EXPONENT = 100
#: Largest magnitude of a numeric literal, and of the result of numeric ** numeric (as log10).
MAX_LITERAL = 1e15
#: Largest magnitude of any numeric intermediate value.
MAX_MAGNITUDE = 1e300

MILA_BETA = sympy.Rational(-1, 4)


@dataclass(frozen=True)
class FunctionSpec:
    """A callable name of the grammar: how many arguments it takes and how to build it."""

    min_args: int
    max_args: int | None  # None: variadic
    build: Callable[..., sympy.Expr]


def _mila(a: sympy.Expr, beta: sympy.Expr = MILA_BETA) -> sympy.Expr:
    return a * sympy.tanh(softplus(a + beta))


def _swish(a: sympy.Expr, beta: sympy.Expr | None = None) -> sympy.Expr:
    return a * sigmoid(a if beta is None else beta * a)


_LEAKY_SLOPE = sympy.Rational(1, 100)


def _leaky_relu(a: sympy.Expr, slope: sympy.Expr = _LEAKY_SLOPE) -> sympy.Expr:
    return sympy.Max(a, slope * a)


def _function_table() -> dict[str, FunctionSpec]:
    """Every callable name: the primitives, sympy's usual names and common activation aliases."""
    table = {name: FunctionSpec(p.arity, p.arity, p.build) for name, p in PRIMITIVES.items()}
    table.update({name: FunctionSpec(1, 1, cls) for name, cls in CUSTOM_FUNCTIONS.items()})
    unary_aliases: dict[str, Callable[[sympy.Expr], sympy.Expr]] = {
        "log": sympy.log, "ln": sympy.log, "tan": sympy.tan, "arcsinh": sympy.asinh, "arctan": sympy.atan,
        "arctanh": sympy.atanh, "logistic": sigmoid, "logsigmoid": PRIMITIVES["log_sigmoid"].build,
        "hardsigmoid": PRIMITIVES["hard_sigmoid"].build, "log1p": lambda a: sympy.log(1 + a),
        "relu6": lambda a: sympy.Min(sympy.Max(a, 0), 6), "heaviside": sympy.Heaviside,
        "eelu": lambda a: -a * sympy.erf(sympy.exp(-a)),
    }
    table.update({name: FunctionSpec(1, 1, build) for name, build in unary_aliases.items()})
    table.update({
        "max": FunctionSpec(2, None, sympy.Max), "min": FunctionSpec(2, None, sympy.Min),
        "mila": FunctionSpec(1, 2, _mila), "swish": FunctionSpec(1, 2, _swish),
        "silu": FunctionSpec(1, 1, _swish), "leaky_relu": FunctionSpec(1, 2, _leaky_relu),
    })
    return table


#: Callable names, looked up case-insensitively (so sympy's printed ``Max``/``Abs`` parse back).
FUNCTIONS: dict[str, FunctionSpec] = _function_table()
#: Constants enter as floats so every constant subexpression stays a checked number (see `_checked`).
CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.Float(sympy.pi), "e": sympy.Float(sympy.E)}

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op>\*\*|[-+*/^(),]))"
)


@dataclass(frozen=True)
class Token:
    kind: str  # "number" | "name" | "op" | "end"
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; any character outside the grammar is an error at its column."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            column = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise ParseError(f"unexpected character {text[column]!r} at column {column + 1}")
        kind = match.lastgroup or "op"
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive descent over the grammar::

        expr  := term (('+' | '-') term)*
        term  := unary (('*' | '/') unary)*
        unary := ('+' | '-') unary | power
        power := atom (('**' | '^') unary)?        (right associative; -x**2 is -(x**2))
        atom  := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
    """

    def __init__(self, text: str, params: dict[str, sympy.Symbol]):
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0
        self.params = params

    # -- token helpers -------------------------------------------------------------------------
    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def _accept(self, *ops: str) -> Token | None:
        token = self.current
        if token.kind == "op" and token.text in ops:
            self.index += 1
            return token
        return None

    def _expect(self, op: str) -> None:
        if self._accept(op) is None:
            raise self._unexpected(f"expected {op!r}")

    def _unexpected(self, what: str) -> ParseError:
        token = self.current
        found = "end of input" if token.kind == "end" else repr(token.text)
        return ParseError(f"{what} but found {found} at column {token.pos + 1}")

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError(f"expression nests deeper than {MAX_DEPTH} levels")

    # -- grammar -------------------------------------------------------------------------------
    def parse(self) -> sympy.Expr:
        if self.current.kind == "end":
            raise ParseError("empty expression")
        expr = self._expr()
        if self.current.kind != "end":
            raise self._unexpected("expected an operator or the end of the expression")
        return expr

    def _expr(self) -> sympy.Expr:
        result = self._term()
        while (op := self._accept("+", "-")) is not None:
            right = self._term()
            result = _checked(result + right if op.text == "+" else result - right)
        return result

    def _term(self) -> sympy.Expr:
        result = self._unary()
        while (op := self._accept("*", "/")) is not None:
            right = self._unary()
            if op.text == "/" and right.is_zero:
                raise ParseError(f"division by zero at column {op.pos + 1}")
            result = _checked(result * right if op.text == "*" else result / right)
        return result

    def _unary(self) -> sympy.Expr:
        self._enter()
        if (op := self._accept("+", "-")) is not None:
            operand = self._unary()
            result = -operand if op.text == "-" else operand
        else:
            result = self._power()
        self.depth -= 1
        return result

    def _power(self) -> sympy.Expr:
        base = self._atom()
        if (op := self._accept("**", "^")) is None:
            return base
        exponent = self._unary()
        return _checked(_power(base, exponent, op.pos))

    def _atom(self) -> sympy.Expr:
        token = self.current
        if token.kind == "number":
            self.index += 1
            return _number(token)
        if token.kind == "name":
            self.index += 1
            return self._name(token)
        if self._accept("(") is not None:
            self._enter()
            inner = self._expr()
            self._expect(")")
            self.depth -= 1
            return inner
        raise self._unexpected("expected a number, a name or '('")

    def _name(self, token: Token) -> sympy.Expr:
        name = token.text
        if self._accept("(") is not None:
            spec = _lookup_function(name, token.pos)
            self._enter()
            args = self._arguments()
            self.depth -= 1
            return _apply(name, spec, args, token.pos)
        if name == "x":
            return X
        if name in self.params:
            return self.params[name]
        if name.lower() in CONSTANTS:
            return CONSTANTS[name.lower()]
        bare = FUNCTIONS.get(name.lower())
        if bare is not None and bare.min_args == 1:
            return _apply(name, bare, [X], token.pos)  # a bare activation name means name(x)
        raise ParseError(_unknown_name_message(name, token.pos, self.params))

    def _arguments(self) -> list[sympy.Expr]:
        args = [self._expr()]
        while self._accept(",") is not None:
            args.append(self._expr())
        self._expect(")")
        return args


def _number(token: Token) -> sympy.Expr:
    value = float(token.text)
    if not math.isfinite(value) or abs(value) > MAX_LITERAL:
        raise ParseError(f"numeric literal {token.text} at column {token.pos + 1} is too large (limit {MAX_LITERAL:g})")
    if re.fullmatch(r"\d+", token.text):
        return sympy.Integer(int(token.text))
    return sympy.Float(value)


def _power(base: sympy.Expr, exponent: sympy.Expr, pos: int) -> sympy.Expr:
    """``base ** exponent`` after checking that the result cannot be astronomically large."""
    if base.is_Number and exponent.is_Number:
        if base.is_zero and exponent.is_negative:
            raise ParseError(f"division by zero in power at column {pos + 1}")
        if not base.is_zero and abs(float(exponent)) * abs(math.log10(abs(float(base)))) > math.log10(MAX_LITERAL):
            raise ParseError(f"power at column {pos + 1} is astronomically large (over {MAX_LITERAL:g})")
    elif exponent.is_Number and abs(float(exponent)) > MAX_EXPONENT:
        raise ParseError(f"exponent {exponent} at column {pos + 1} is too large (limit {MAX_EXPONENT})")
    return base**exponent


def _lookup_function(name: str, pos: int) -> FunctionSpec:
    spec = FUNCTIONS.get(name.lower())
    if spec is None:
        raise ParseError(_unknown_name_message(name, pos, {}))
    return spec


def _apply(name: str, spec: FunctionSpec, args: list[sympy.Expr], pos: int) -> sympy.Expr:
    """Apply a grammar function after checking its arity; numeric arguments are evaluated as floats."""
    count = len(args)
    if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
        expected = (
            f"at least {spec.min_args}" if spec.max_args is None
            else str(spec.min_args) if spec.min_args == spec.max_args
            else f"{spec.min_args} to {spec.max_args}"
        )
        raise ParseError(f"{name}() at column {pos + 1} takes {expected} argument(s), got {count}")
    # A call on constants gets float arguments so sympy evaluates it at once (exp(1000.0) -> Float)
    # and its magnitude is checked here, instead of being carried symbolically into an unbounded evalf.
    if all(a.is_Number for a in args):
        args = [sympy.Float(a) for a in args]
    try:
        return _checked(spec.build(*args))
    except (ArithmeticError, ValueError, TypeError) as error:  # sympy/mpmath on extreme constants
        raise ParseError(f"{name}() at column {pos + 1} cannot be evaluated: {type(error).__name__}") from None


def _checked(expr: sympy.Expr) -> sympy.Expr:
    """Reject numeric intermediates that are not finite real numbers of sane size."""
    if expr.is_Number:
        if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise ParseError("expression is not finite (division by zero or overflow)")
        if bool(abs(expr) > MAX_MAGNITUDE):
            raise ParseError(f"a numeric value is astronomically large (over {MAX_MAGNITUDE:g})")
    elif expr.is_number and expr.has(sympy.zoo, sympy.nan, sympy.oo, sympy.I):
        raise ParseError("expression has a non-finite or complex constant")
    return expr


def _unknown_name_message(name: str, pos: int, params: Iterable[str]) -> str:
    known = [*FUNCTIONS, *CONSTANTS, "x", *params]
    close = difflib.get_close_matches(name.lower(), known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else (
        f"; if {name!r} is a parameter, give its value: --learnable {name}=1 or --fixed {name}=1 on the command "
        f"line, learnable={{{name!r}: 1.0}} or fixed=... in Python; else see `afos primitives` for the names")
    return f"unknown name {name!r} at column {pos + 1}{hint}"


def parse(text: str, params: Iterable[str] = ()) -> sympy.Expr:
    """Parse math text into a sympy expression in ``x`` (and the declared ``params``).

    Raises :class:`afos.errors.ParseError` with a one-line message for anything outside the grammar.
    """
    if not isinstance(text, str):
        raise ParseError(f"expression must be text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ParseError(f"expression is {len(text)} characters long (limit {MAX_LENGTH})")
    symbols = {name: parameter_symbol(name) for name in params}
    for name in symbols:
        if name == "x" or name.lower() in FUNCTIONS or name.lower() in CONSTANTS:
            raise ParseError(f"parameter name {name!r} clashes with a built-in name")
    expr = _Parser(text, symbols).parse()
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo, sympy.I):
        raise ParseError("expression is not a finite real function (division by zero or complex value)")
    return expr


def parameter_symbol(name: str) -> sympy.Symbol:
    """The sympy symbol of a named parameter; one definition so all layers agree on assumptions."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", name):
        raise ParseError(f"parameter name {name!r} is not a valid identifier")
    return sympy.Symbol(name, real=True)


class _CanonicalPrinter(StrPrinter):
    """``sstr``, except that a float prints as the shortest text that reads back to the same double:
    sympy prints 15 digits, which loses the last bits of a folded constant such as ``exp(-1)``, and then
    the text no longer denotes quite the same function."""

    def _print_Float(self, expr: sympy.Float) -> str:
        value = float(expr)
        return repr(value) if math.isfinite(value) else str(super()._print_Float(expr))


def canonical(expr: sympy.Expr | str, params: Iterable[str] = ()) -> str:
    """The canonical text of an expression: sympy's automatic normal form, printed as by ``sstr``.

    It parses back to the same expression. Two different canonical texts may still denote one function
    (sympy does not know ``Abs(asinh(softplus(x)))`` is ``asinh(softplus(x))``): the fingerprint
    (:func:`afos.space.probe.fingerprint`) detects that.
    """
    return str(_CanonicalPrinter().doprint(parse(expr, params) if isinstance(expr, str) else expr))
