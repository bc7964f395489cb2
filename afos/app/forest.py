"""The confirmation as a forest plot: each finalist's paired test-accuracy difference from ReLU and from the
strongest baseline, with its 95 % interval, on one scale shared by every row.

Why a forest plot: a table of deltas and p-values hides what a reader needs first, whether an interval
crosses zero and how wide it is next to the others. The geometry is computed here, as numbers only (the
page draws them as SVG; no text of a run reaches the drawing), so the picture needs no script. A finalist
whose confirmation has not finished is *pending* and drawn as nothing: work not done has no interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from afos.records.runs import Verdict
from afos.search.confirmation import Finalist, Role

#: The width of one strip of the plot, in SVG units.
WIDTH = 300.0
#: A margin at each end of a strip, so that markers at the extremes are drawn whole.
MARGIN = 8.0


@dataclass(frozen=True)
class Interval:
    """One difference as drawn: x of its mean and of its interval's ends (None: no interval), in points
    (percentage points of test accuracy) for the tooltip."""

    centre: float
    low: float | None
    high: float | None
    text: str


@dataclass(frozen=True)
class ForestRow:
    """One finalist: its name, its verdict, and its two differences (None when there is nothing to draw:
    pending, failed, or no baseline to compare with)."""

    canonical: str
    verdict: Verdict
    relu: Interval | None
    strongest: Interval | None


@dataclass(frozen=True)
class Forest:
    """Every finalist's row on one scale: x of zero and the ticks (x, label in points; none when no row has
    anything to draw)."""

    rows: tuple[ForestRow, ...]
    zero: float
    ticks: tuple[tuple[float, str], ...]
    strongest: str | None


def forest(finalists: tuple[Finalist, ...]) -> Forest | None:
    """The forest plot of a confirmation, or None when it has no finalist."""
    rows = [f for f in finalists if f.role is Role.FINALIST]
    if not rows:
        return None
    ends = [0.0] + [v for f in rows if _drawn(f) for v in _values(f) if v is not None and math.isfinite(v)]
    low, high = min(ends), max(ends)
    pad = 0.08 * (high - low) or 0.01

    def x(value: float) -> float:
        return round(MARGIN + (value - low + pad) / (high - low + 2 * pad) * (WIDTH - 2 * MARGIN), 1)

    def interval(centre: float | None, lo: float | None, hi: float | None, p: float | None) -> Interval | None:
        if centre is None or not math.isfinite(centre):
            return None
        bounds = f" [{100 * lo:+.1f}, {100 * hi:+.1f}]" if lo is not None and hi is not None else ""
        holm = f", p (Holm) {p:.3g}" if p is not None else ""
        return Interval(x(centre), x(lo) if lo is not None else None, x(hi) if hi is not None else None,
                        f"{100 * centre:+.1f} points{bounds}{holm}")

    drawn = tuple(ForestRow(f.canonical, f.verdict,
                            interval(f.delta_vs_relu, f.delta_ci_low, f.delta_ci_high, f.p_holm) if _drawn(f) else None,
                            interval(f.delta_vs_strongest, f.strongest_ci_low, f.strongest_ci_high,
                                     f.p_holm_vs_strongest) if _drawn(f) else None)
                  for f in rows)
    ticks = _ticks(low - pad, high + pad) if any(row.relu or row.strongest for row in drawn) else []
    return Forest(drawn, x(0.0), tuple((x(t), label) for t, label in ticks),
                  next((f.strongest_baseline for f in rows if f.strongest_baseline), None))


def _drawn(finalist: Finalist) -> bool:
    """Whether the finalist has differences to draw: not while pending, nor when it failed on a seed."""
    return finalist.verdict not in (Verdict.PENDING, Verdict.FAILED)


def _values(finalist: Finalist) -> tuple[float | None, ...]:
    return (finalist.delta_vs_relu, finalist.delta_ci_low, finalist.delta_ci_high, finalist.delta_vs_strongest,
            finalist.strongest_ci_low, finalist.strongest_ci_high)


def _ticks(low: float, high: float) -> list[tuple[float, str]]:
    """Round ticks (accuracy fractions, labelled in points) at 1, 2 or 5 × 10^k points, at most six."""
    step = next(s for s in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0) if (high - low) / s <= 6)
    decimals = 1 if step < 0.01 else 0
    values = [round(i * step, 6) for i in range(math.ceil(low / step), math.floor(high / step) + 1)]
    return [(value, f"{100 * value:+.{decimals}f}" if value else "0") for value in values]
