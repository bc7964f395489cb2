"""What an export writes: a :class:`Form` (an expression in ``x`` and named parameter values) and where it
came from: an expression, a module with its current values, or a search's hall of fame."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sympy

from afos.activation.module import Activation
from afos.errors import UserError
from afos.records.search import HallOfFameEntry
from afos.reporting.cost_front import cheapest_near_best
from afos.reporting.tables import format_number
from afos.search.confirmation import Finalist
from afos.search.hall_of_fame import cheapest_first, is_front
from afos.search.results import finalist_rows
from afos.search.verdict import winner
from afos.space.parse import canonical, parameter_symbol, parse
from afos.space.primitives import X
from afos.storage.layout import run_database, run_databases
from afos.storage.store import RunStore

Value = float | list[float]  # a scalar, or one value per channel (dim 1 of the input)


class ExportError(UserError):
    """The form cannot be exported in the asked format (e.g. a Bessel function to numpy)."""


@dataclass(frozen=True)
class Form:
    """An expression in ``x`` and named parameters, their values, and a line saying where they come from."""

    expr: sympy.Expr
    values: dict[str, Value] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        missing = sorted(str(s) for s in self.expr.free_symbols - {X, *map(parameter_symbol, self.values)})
        if missing:
            raise ExportError(f"parameter(s) {', '.join(missing)} of {canonical(self.expr)} need a value")

    @classmethod
    def from_text(cls, text: str, values: Mapping[str, Value] | None = None, source: str = "") -> Form:
        """Parse ``text`` with the whitelist grammar, its parameters being the names in ``values``; values of
        names the expression does not use are dropped."""
        values = dict(values or {})
        expr = parse(text, params=list(values))
        used = {name: value for name, value in values.items() if parameter_symbol(name) in expr.free_symbols}
        return cls(expr, used, source)

    @classmethod
    def from_activation(cls, activation: Activation, source: str = "") -> Form:
        """The function an :class:`~afos.activation.module.Activation` computes, with its current parameter
        values (per-channel ones as lists)."""
        return cls(activation.expr, activation.values(), source)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.values))


def scalar(value: Value) -> float:
    """A parameter's value as one number (per-channel values by their mean)."""
    return float(value) if not isinstance(value, list) else math.fsum(value) / len(value)


def substituted(form: Form) -> sympy.Expr:
    """The expression with every parameter replaced by its value (per-channel values by their mean)."""
    return form.expr.xreplace({parameter_symbol(k): sympy.Float(scalar(v)) for k, v in form.values.items()})


def hall_of_fame_form(run_dir: str | Path, rank: int = 1) -> Form:
    """The function at ``rank`` (1 = best) of a search run's hall of fame."""
    entries, _ = _search_results(run_dir)
    if not 1 <= rank <= len(entries):
        raise UserError(f"--rank {rank} is out of range: {run_dir} holds {len(entries)} functions")
    entry = entries[rank - 1]
    return _entry_form(entry, f"Rank {rank} of the hall of fame of {run_dir} (fitness {format_number(entry.fitness.value)})")


def front_form(run_dir: str | Path, pick: str) -> Form:
    """A member of a search's front of accuracy against cost: ``cheapest``, ``best`` (the most accurate),
    ``near-best`` (the cheapest within one seed-spread of the most accurate) or ``N`` (the N-th cheapest)."""
    entries, _ = _search_results(run_dir)
    if not is_front(entries):
        raise UserError(f"--pick needs a search that minimised cost ({run_dir} kept a hall of fame: use --rank)")
    members = cheapest_first(entries)
    named = {"cheapest": members[:1], "best": members[-1:], "near-best": [m for m in [cheapest_near_best(entries)] if m]}
    if pick in named:
        chosen = named[pick]
    elif pick.isdigit() and 1 <= int(pick) <= len(members):
        chosen = [members[int(pick) - 1]]
    else:
        raise UserError(f"--pick {pick!r}: expected cheapest, best, near-best or a number in 1..{len(members)} "
                        f"(the front of {run_dir} has {len(members)} members, cheapest first)")
    entry = chosen[0]
    return _entry_form(entry, f"A member of the front of {run_dir} (cost {entry.fitness.cost:g} ReLUs, fitness "
                              f"{format_number(entry.fitness.value)})")


def winner_form(run_dir: str | Path) -> Form:
    """The function a search's confirmation names (see :func:`afos.search.verdict.winner`); a search
    without a confirmation has its hall of fame's first."""
    entries, finalists = _search_results(run_dir)
    best = winner(finalists or [])
    if best is None:
        return hall_of_fame_form(run_dir, 1)
    entry = next(e for e in entries if e.key == best.fingerprint)
    return _entry_form(entry, f"The confirmed winner of {run_dir} (finalist {best.rank}, verdict: {best.outcome()})")


def _search_results(run_dir: str | Path) -> tuple[tuple[HallOfFameEntry, ...], list[Finalist] | None]:
    path = run_database(run_dir) if Path(run_dir).is_dir() else Path(run_dir)
    if not path.is_file():
        runs = [db.parent.name for db in run_databases(run_dir)]
        if runs:
            raise UserError(f"{run_dir} holds {len(runs)} run folder(s), not one run: name one, e.g. afos export "
                            f"{Path(run_dir) / runs[-1]} (`afos runs {run_dir}` lists them)")
        raise UserError(f"{run_dir} is neither an expression nor a run folder holding afos.db")
    with RunStore(path, readonly=True) as store:
        generation = store.last_generation()
        finalists = finalist_rows(store)
    entries = generation.hall_of_fame if generation else ()
    if not entries:
        raise UserError(f"{run_dir} has no hall of fame (not a search run, or no generation finished)")
    return tuple(entries), finalists


def _entry_form(entry: HallOfFameEntry, source: str) -> Form:
    """A hall-of-fame function with its learned constants: they are per activation site, and the form
    carries their mean over the sites (a per-channel summary counts by its mean), and says so."""
    per_site: dict[str, list[float]] = {}
    for values in (entry.learned or {}).values():
        for name, value in values.items():
            per_site.setdefault(name, []).append(value["mean"] if isinstance(value, dict) else value)
    means = {name: math.fsum(v) / len(v) for name, v in per_site.items() if None not in v}
    if means:
        source += f"; learned values are means over {max(map(len, per_site.values()))} activation sites"
    return Form.from_text(entry.canonical, means, source=source + ".")
