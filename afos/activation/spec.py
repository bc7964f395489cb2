"""What names an activation: expression text, parameter starts and fixed values, scope; and its identity.

:class:`ActivationSpec` is plain data: it pickles to workers, is stored (as JSON) with every training run,
and is what the evaluation layer keys results by (:meth:`ActivationSpec.key`). Family names (``mila``,
``adaptive_tanh`` ...) resolve to parametric specs here, and every text is parsed by the whitelist grammar
before anything trains."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import sympy

from afos.errors import UserError
from afos.records.settings import Scope
from afos.space.families import FAMILIES
from afos.space.parse import canonical, parameter_symbol, parse
from afos.space.probe import fingerprint

Init = float | str  # a start value, or "N(mu,sigma)" for a random start

_NORMAL = re.compile(r"^N\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)$")


def normal_parameters(init: str) -> tuple[float, float]:
    """(mu, sigma) of a random start written ``N(mu,sigma)``."""
    match = _NORMAL.match(init.strip())
    if match is None:
        raise UserError(f"initial value {init!r} must be a number or N(mu,sigma)")
    mu, sigma = float(match.group(1)), float(match.group(2))
    if sigma < 0:
        raise UserError(f"initial value {init!r}: sigma must be >= 0")
    return mu, sigma


def typical_value(init: Init) -> float:
    """The value a start stands for: the number itself, or the mean of N(mu, sigma).

    Parametric forms are fingerprinted and screened at these values.
    """
    return float(init) if not isinstance(init, str) else normal_parameters(init)[0]


@dataclass(frozen=True)
class ActivationSpec:
    """Plain data for an activation: expression text, parameter starts, fixed values and scope."""

    expression: str
    learnable: dict[str, Init] = field(default_factory=dict)
    fixed: dict[str, float] = field(default_factory=dict)
    scope: Scope = Scope.LAYER

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (the scope by its value), as stored with every training run."""
        return {**asdict(self), "scope": self.scope.value}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ActivationSpec:
        """A spec from :meth:`to_dict`'s data, e.g. read back from a run database."""
        return cls(str(values["expression"]), dict(values.get("learnable") or {}), dict(values.get("fixed") or {}),
                   Scope(values.get("scope", Scope.LAYER)))

    def typical_values(self) -> dict[str, float]:
        """Parameter values at which the form is fingerprinted and screened."""
        return {**{k: typical_value(v) for k, v in self.learnable.items()}, **self.fixed}

    def key(self) -> str:
        """The identity of the activation in run databases: its fingerprint at the typical values.

        With learnable parameters a short hash of the symbolic form, the starts and the scope follows:
        ``p0*tanh(p1*x)`` equals ``tanh(x)`` at its start values but, once trained, is another candidate.
        """
        return _spec_key(self.expression, tuple(self.learnable.items()), tuple(self.fixed.items()), self.scope)


@functools.lru_cache(maxsize=1 << 16)
def _spec_key(expression: str, learnable: tuple[tuple[str, Init], ...], fixed: tuple[tuple[str, float], ...],
              scope: Scope) -> str:
    """:meth:`ActivationSpec.key`, remembered: a search asks for the key of one text many times (each request,
    each replayed job), and parsing plus fingerprinting costs about a millisecond each time."""
    expr = parse(expression, params=[name for name, _ in (*learnable, *fixed)])
    return activation_key(expr, dict(learnable), dict(fixed), scope)


def activation_key(
    expr: sympy.Expr, learnable: Mapping[str, Init], fixed: Mapping[str, float] | None = None,
    scope: Scope = Scope.LAYER
) -> str:
    """:meth:`ActivationSpec.key` of an expression already parsed (the search's per-candidate path)."""
    values = {**{k: typical_value(v) for k, v in learnable.items()}, **(fixed or {})}
    key = fingerprint(expr, values)
    if not learnable:
        return key
    form = json.dumps([canonical(expr), sorted(learnable.items()), Scope(scope).value])
    return f"{key}:{hashlib.sha256(form.encode()).hexdigest()[:8]}"


def resolve_activation(
    text: str,
    learnable: Mapping[str, Init] | None = None,
    fixed: Mapping[str, float] | None = None,
    scope: str | Scope | None = None,
) -> ActivationSpec:
    """A spec from a family name (``mila``, ``adaptive_tanh``, …) or expression text, plus overrides.

    A name given in ``learnable`` becomes trainable even where the family fixes it (``mila`` with
    ``learnable={"beta": -0.25}``), and vice versa for ``fixed``. The expression is parsed here, so
    errors surface before any training.
    """
    family = FAMILIES.get(text.strip().lower())
    base_learnable = dict(family.learnable) if family else {}
    base_fixed = dict(family.fixed) if family else {}
    for name, value in (learnable or {}).items():
        base_fixed.pop(name, None)
        base_learnable[name] = value
    for name, value in (fixed or {}).items():
        base_learnable.pop(name, None)
        base_fixed[name] = float(value)
    chosen = scope or (family.scope if family else Scope.LAYER)
    try:
        chosen_scope = Scope(chosen)
    except ValueError:
        raise UserError(f"parameter scope {chosen!r} must be one of {', '.join(s.value for s in Scope)}") from None
    spec = ActivationSpec(family.expression if family else text, base_learnable, base_fixed, chosen_scope)
    expr = parse(spec.expression, params=[*base_learnable, *base_fixed])
    unknown = sorted(n for n in {*base_learnable, *base_fixed} if parameter_symbol(n) not in expr.free_symbols)
    if unknown:
        raise UserError(f"parameter(s) {', '.join(unknown)} do not occur in {spec.expression}")
    for init in base_learnable.values():
        typical_value(init)  # validates N(mu,sigma) text now, not in the middle of a grid
    return spec
