"""A search's front of accuracy against cost as the search page draws it: the front's members as a step line
(the best fitness reached at each cost or below) and the baselines (ReLU, SiLU, GELU …) as labelled diamonds,
on one pair of axes.

Why server-side geometry, as the forest plot: the picture needs no script, and no text of a run reaches the
drawing except through the template's escaping (function names are shown in tooltips and a table, not as
drawn text). Only a search that minimised cost has a front (its hall of fame carries costs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from afos.records.search import HallOfFameEntry
from afos.search.hall_of_fame import cheapest_first
from afos.search.results import BaselineSummary
from afos.space.cost import cost

#: The drawing's size in SVG units, and the margins left for the axes' labels.
WIDTH, HEIGHT = 640.0, 260.0
LEFT, RIGHT, TOP, BOTTOM = 52.0, 16.0, 12.0, 34.0


@dataclass(frozen=True)
class Mark:
    """One function on the chart: its position, its name (a tooltip) and its numbers."""

    x: float
    y: float
    name: str
    cost: float
    fitness: float


@dataclass(frozen=True)
class FrontChart:
    """The front (cheapest first) and the baselines in SVG units, the step line through the front, and the
    axes' ticks (position, label)."""

    front: tuple[Mark, ...]
    baselines: tuple[Mark, ...]
    steps: str
    x_ticks: tuple[tuple[float, str], ...]
    y_ticks: tuple[tuple[float, str], ...]
    width: float = WIDTH
    height: float = HEIGHT


def front_chart(hall: Sequence[HallOfFameEntry], baselines: Sequence[BaselineSummary]) -> FrontChart | None:
    """The chart of a front, or None for a search without one (its entries carry no cost)."""
    members = cheapest_first(hall)
    if not members:
        return None
    priced = [(b.expression, cost(b.canonical), b.fitness) for b in baselines if b.fitness is not None]
    points = [(e.canonical, e.fitness.cost or 0.0, e.fitness.value) for e in members] + [
        (name, price, float(value)) for name, price, value in priced]
    high_cost = max(price for _, price, _ in points)
    low_fit, high_fit = min(v for _, _, v in points), max(v for _, _, v in points)
    pad = 0.08 * (high_fit - low_fit) or 0.01

    def at(price: float, value: float) -> tuple[float, float]:
        x = LEFT + price / (1.05 * high_cost) * (WIDTH - LEFT - RIGHT)
        y = TOP + (high_fit + pad - value) / (high_fit - low_fit + 2 * pad) * (HEIGHT - TOP - BOTTOM)
        return round(x, 1), round(y, 1)

    def mark(name: str, price: float, value: float) -> Mark:
        return Mark(*at(price, value), name, price, value)

    front = tuple(mark(e.canonical, e.fitness.cost or 0.0, e.fitness.value) for e in members)
    steps = f"M {front[0].x} {front[0].y}" + "".join(f" H {m.x} V {m.y}" for m in front[1:])
    x_ticks = tuple((at(t, high_fit)[0], f"{t:g}") for t in _ticks(0.0, 1.05 * high_cost))
    y_ticks = tuple((at(0.0, t)[1], f"{t:.3g}") for t in _ticks(low_fit - pad, high_fit + pad))
    return FrontChart(front, tuple(mark(*p) for p in priced), steps, x_ticks, y_ticks)


def _ticks(low: float, high: float) -> list[float]:
    """Round values (1, 2 or 5 × 10^k apart) inside [low, high], at most seven."""
    span = high - low or 1.0
    step = 10 ** math.floor(math.log10(span / 7))
    step = next(s * step for s in (1, 2, 5, 10) if span / (s * step) <= 7)
    return [round(i * step, 10) for i in range(math.ceil(low / step), math.floor(high / step) + 1)]
