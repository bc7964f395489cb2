"""The front of accuracy against cost of a search that minimises both (``objectives = ["accuracy", "cost"]``).

Such a search keeps a Pareto archive in place of its hall of fame (:class:`afos.search.hall_of_fame.ParetoArchive`):
every function trained at the full budget that no other beats in both fitness and cost (:mod:`afos.space.cost`,
in ReLUs). The report shows it as a table, cheapest first, with the baselines priced by the same model, and as
a picture; the line a practitioner reads first names the cheapest member within one seed-spread of the most
accurate one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from afos.records.search import HallOfFameEntry
from afos.reporting.front import Point
from afos.reporting.plots import front_plot
from afos.reporting.tables import format_number, format_points, plus_minus
from afos.search.confirmation import Finalist, Role
from afos.search.hall_of_fame import cheapest_first
from afos.search.results import BaselineSummary, shown_form
from afos.space.cost import cost

COST_PLOT = "cost_front.png"


def cheapest_near_best(hof: Sequence[HallOfFameEntry]) -> HallOfFameEntry | None:
    """The cheapest member whose fitness is within one standard deviation (over the search's seeds) of the
    most accurate member's; the most accurate itself when its spread is unknown (one fitness seed)."""
    members = cheapest_first(hof)
    if not members:
        return None
    best = max(members, key=lambda e: (e.fitness.value, -(e.fitness.cost or 0.0)))
    spread = best.val_std or 0.0
    return next(e for e in members if e.fitness.value >= best.fitness.value - spread)


def cost_front_lines(hof: Sequence[HallOfFameEntry], baselines: Sequence[BaselineSummary],
                     step_seconds: Mapping[str, float | None], confirmed: Sequence[Finalist] = ()) -> list[str]:
    """The report's section on the front: the headline, then the front and the baselines, cheapest first,
    each with its measured time per step over ReLU's (``step_seconds``: activation key -> seconds) beside
    its modelled cost, and its test accuracy on the confirmation's fresh seeds where it was confirmed."""
    members = cheapest_first(hof)
    if not members:
        return []
    best, near = members[-1], cheapest_near_best(hof)
    lines = ["## Accuracy and cost", "",
             "The front: every function trained at the full budget that no other one beats in both fitness and "
             "cost. Cost is the time of the function's kernels per training step, forward and backward, in ReLUs "
             "(a model of the eager kernels, computed from the form: docs/search.md); \"measured\" is the "
             "search's own time per training step over ReLU's, whole steps on this run's machine, recorded "
             "beside the model and never used as fitness.", ""]
    relu = next((b.step_seconds for b in baselines if b.expression == "relu"), None)
    fresh = {row.fingerprint: row for row in confirmed}
    if near is not None and near is not best:
        lines += [f"The cheapest function within one seed-spread ({format_number(best.val_std)}) of the most "
                  f"accurate: `{near.canonical}` at cost {near.fitness.cost:g} and fitness "
                  f"{format_number(near.fitness.value)}, against `{best.canonical}` at cost {best.fitness.cost:g} "
                  f"and {format_number(best.fitness.value)}.", ""]
    lines += ["| cost | measured | function | fitness | val acc | test acc | confirmed test | found in gen |",
              "|---:|---:|---|---:|---:|---:|---|---:|"]
    lines += [f"| {e.fitness.cost:g} | {_ratio(step_seconds.get(e.key), relu)} | `{shown_form(e)}` "
              f"| {format_number(e.fitness.value)} | {plus_minus(e.val_accuracy, e.val_std)} "
              f"| {format_number(e.test_accuracy)} | {_confirmed(fresh.get(e.key))} | {e.generation + 1} |"
              for e in members]
    by_text = {row.canonical: row for row in confirmed if row.role is Role.BASELINE}
    lines += [f"| {cost(b.canonical):g} | {_ratio(b.step_seconds, relu)} | `{b.canonical}` ({b.expression}, baseline) "
              f"| {format_number(b.fitness)} | {format_number(b.val_accuracy)} | {format_number(b.test_accuracy)} "
              f"| {_confirmed(by_text.get(b.canonical))} | - |" for b in baselines]
    return [*lines, ""]


def _confirmed(row: Finalist | None) -> str:
    """Test accuracy on the fresh seeds, and for a finalist its difference from ReLU and its verdict."""
    if row is None or row.test_mean is None:
        return "-"
    if row.role is Role.BASELINE:
        return plus_minus(row.test_mean, row.test_std)
    return f"{plus_minus(row.test_mean, row.test_std)} ({format_points(row.delta_vs_relu)} vs ReLU, {row.outcome()})"


def _ratio(seconds: float | None, relu: float | None) -> str:
    return "-" if seconds is None or not relu else f"{seconds / relu:.2f}"


def cost_front_plot(hof: Sequence[HallOfFameEntry], trained: Sequence[Point], baselines: Sequence[BaselineSummary],
                    path: Path, ylabel: str) -> Path:
    """Cost against fitness: every function trained (grey), the front (blue steps), the baselines (diamonds)."""
    return front_plot([(p.cost, p.fitness) for p in trained if p.cost is not None],
                      [(e.fitness.cost or 0.0, e.fitness.value, e.canonical) for e in cheapest_first(hof)], path,
                      ylabel=ylabel, xlabel="cost (ReLUs: kernel time per training step)",
                      title="Accuracy against cost",
                      marks=[(b.expression, cost(b.canonical), b.fitness) for b in baselines if b.fitness is not None])
