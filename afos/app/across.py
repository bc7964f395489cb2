"""Views across runs: the anytime curves of several searches on one chart, and a function's learning
curves from every run that trained it.

Why: one search says little about a strategy (the brief's rule: random search is the baseline, over
enough seeds to mean it), so a reader compares searches: runs of one strategy are drawn as their median
with a band from the lowest to the highest, so that the spread across seeds is seen beside the
difference between strategies. A function is the unit afos discovers, so its page gathers its training
runs from every run folder, read from their stored history.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afos.app.folders import READ_ERRORS, run_folders
from afos.app.search_view import SearchView
from afos.app.views import UnknownRun, Unreadable, find_run, read_view
from afos.errors import UserError
from afos.storage.layout import run_database
from afos.storage.store import RunStore

#: The most searches one chart overlays, and the most training runs a function's page draws.
MAX_SEARCHES = 24
MAX_CURVES = 60


@dataclass(frozen=True)
class SearchLine:
    """One search on the overlay: its name, the group it is drawn in (strategy and surrogate), its seed,
    what it spent and the best fitness it found."""

    run: str
    group: str
    seed: Any
    trainings: int
    best: float | None


def anytime_overlay(root: Path, names: list[str]) -> tuple[list[SearchLine], dict[str, Any]]:
    """The searches ``names`` under ``root`` and the chart of their anytime curves (best fitness so far
    against candidates trained), one median line and min–max band per group of two or more."""
    if not names:
        raise UserError("choose the searches to compare: /searches?run=NAME&run=NAME")
    if len(names) > MAX_SEARCHES:
        raise UserError(f"{len(names)} searches asked for; at most {MAX_SEARCHES} are drawn at once")
    lines, curves = [], {}
    for name in dict.fromkeys(names):
        view = _search(root, name)
        config = view.config
        surrogate = config.get("surrogate")
        group = f"{config.get('strategy', '?')}" + (f" + {surrogate}" if surrogate and surrogate != "none" else "")
        rows = view.generations
        lines.append(SearchLine(name, group, config.get("seed"), rows[-1].trainings if rows else 0,
                                rows[-1].best_so_far if rows else None))
        curves[name] = [(row.trainings, row.best_so_far) for row in rows if row.best_so_far is not None]
    return lines, _chart(lines, curves)


def _search(root: Path, name: str) -> SearchView:
    try:
        view = read_view(find_run(root, name))
    except UnknownRun:
        raise UserError(f"no run {name!r} under the results root") from None
    except Unreadable as error:
        raise UserError(f"{name} cannot be read: {error}") from None
    if not isinstance(view, SearchView):
        raise UserError(f"{name} is not a search run")
    return view


def _chart(lines: list[SearchLine], curves: dict[str, list[tuple[int, float]]]) -> dict[str, Any]:
    """uPlot's data: the union of every curve's x, each curve as a step (the best so far holds until the
    next generation), and per group of several searches its median and band."""
    x = sorted({spent for curve in curves.values() for spent, _ in curve})
    stepped = {name: _steps(curve, x) for name, curve in curves.items()}
    groups: dict[str, list[str]] = {}
    for line in lines:
        groups.setdefault(line.group, []).append(line.run)
    series: dict[str, list[float | None]] = {}
    bands = []
    for group, members in groups.items():
        if len(members) == 1:
            series[f"{group}: {members[0]}"] = stepped[members[0]]
            continue
        columns = list(zip(*(stepped[m] for m in members)))
        series[f"{group}: median of {len(members)}"] = [_median(c) for c in columns]
        series[f"{group}: highest"] = [max((v for v in c if v is not None), default=None) for c in columns]
        series[f"{group}: lowest"] = [min((v for v in c if v is not None), default=None) for c in columns]
        bands.append([f"{group}: highest", f"{group}: lowest"])
    return {"x": x, "xlabel": "candidates trained", "ylabel": "best fitness so far", "series": series, "bands": bands}


def _steps(curve: list[tuple[int, float]], x: list[int]) -> list[float | None]:
    values, best, i = [], None, 0
    for spent in x:
        while i < len(curve) and curve[i][0] <= spent:
            best = curve[i][1]
            i += 1
        values.append(best)
    return values


def _median(column: tuple[float | None, ...]) -> float | None:
    present = [v for v in column if v is not None]
    return statistics.median(present) if present else None


def learning_curves(root: Path, key: str) -> dict[str, Any] | None:
    """Validation accuracy against epoch of the function's training runs (the first MAX_CURVES) in every run
    folder under ``root``, from their stored history; None when none has a history."""
    series: dict[str, dict[float, float | None]] = {}
    for name, folder in run_folders(root).items():
        try:
            with RunStore(run_database(folder), readonly=True) as store:
                found = store.evaluations(activation_key=key, limit=MAX_CURVES - len(series))
        except READ_ERRORS:
            continue  # the function's page lists the run as unreadable already
        for evaluation in found:
            if evaluation.history:
                label = f"{name}: {evaluation.task} seed {evaluation.seed} ({evaluation.phase.value})"
                label += f" #{len(series) + 1}" if label in series else ""
                series[label] = {point.epoch: point.val_accuracy for point in evaluation.history}
        if len(series) >= MAX_CURVES:
            break
    if not series:
        return None
    x = sorted({epoch for curve in series.values() for epoch in curve})
    return {"x": x, "xlabel": "epoch", "ylabel": "validation accuracy",
            "series": {label: [curve.get(epoch) for epoch in x] for label, curve in series.items()}}
