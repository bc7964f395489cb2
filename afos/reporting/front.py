"""The complexity-versus-fitness front of a search, as PySR shows its equations: for each size, the best
function no smaller function beats.

A search ranks by fitness alone, so its winner may be a large expression that a function of half its size
nearly matches. The front makes that trade visible from the records a search already holds: every distinct
function trained at the full budget whose runs all finished ok, its mean fitness over those runs, and its
size (nodes of its canonical expression, :func:`afos.space.display.expression_size`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from afos.records.evaluation import Evaluation
from afos.reporting.tables import format_number
from afos.search.config import score
from afos.space.cost import cost
from afos.space.display import expression_size


@dataclass(frozen=True)
class Point:
    """One distinct function of a search: its canonical text, size, mean fitness at the full budget and, in a
    search that minimises cost, its cost in ReLUs."""

    canonical: str
    size: int
    fitness: float
    cost: float | None = None


def points(runs: Sequence[Evaluation], fitness: str, *, priced: bool = False) -> list[Point]:
    """The functions whose every full-budget search run finished ok, with their mean ``fitness`` score (and
    their cost when ``priced``: computed from the form, a few milliseconds a function)."""
    if not runs:
        return []
    full = max(r.budget for r in runs)
    by_key: dict[str, list[Evaluation]] = {}
    for run in runs:
        if run.budget == full:
            by_key.setdefault(run.activation_key, []).append(run)
    return [Point(first.expression, expression_size(first.expression, first.parameters),
                  statistics.fmean(score(r, fitness) for r in group),
                  cost(first.expression, first.parameters) if priced else None)
            for group in by_key.values() if all(r.ok for r in group) for first in group[:1]]


def front(candidates: Sequence[Point]) -> list[Point]:
    """The Pareto front, smallest first: each point is fitter than every smaller one (ties: the first by
    text, so the front does not depend on the order of the records)."""
    best: list[Point] = []
    for point in sorted(candidates, key=lambda p: (p.size, -p.fitness, p.canonical)):
        if not best or point.fitness > best[-1].fitness:
            best.append(point)
    return best


def front_lines(best: Sequence[Point]) -> list[str]:
    """The complexity front as a table: for each size, the best function no smaller function beats."""
    if not best:
        return []
    return ["## Complexity and fitness", "",
            "Each function here is fitter than every smaller one the search trained at the full budget (the "
            "front of `front.png`); size counts the nodes of the canonical expression.", "",
            "| size | function | fitness |", "|---:|---|---:|",
            *(f"| {p.size} | `{p.canonical}` | {format_number(p.fitness)} |" for p in best), ""]
