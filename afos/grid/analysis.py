"""The statistics of a grid over its cases: ranks, Friedman, Nemenyi, Wilcoxon-Holm, wins, and findings."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats as sps

from afos.errors import UserError
from afos.grid.results import Results
from afos.grid.spec import ALPHA, METRIC, Function, Run
from afos.records.json import plain
from afos.records.runs import Role
from afos.stats import ranks as rank_tests
from afos.stats.common import finite_mean
from afos.stats.pairwise import WilcoxonRow, WinsRow, best_baselines, per_case_significance, wilcoxon_holm, wins
from afos.stats.ranks import FriedmanResult, NemenyiPair, average_ranks, nemenyi_cd, nemenyi_groups, nemenyi_pairs


@dataclass(frozen=True)
class Cell:
    """One (case, function) cell: its runs' counts and statuses, and mean ± sample std of each metric over the
    seeds that finished ok. A cell is ``failed`` when any seed failed: an unreliable function must not be
    averaged over its lucky seeds only."""

    case: str
    function: str
    n: int
    ok: int
    failed: bool
    statuses: dict[str, int]
    seconds: float | None
    means: dict[str, float | None]
    stds: dict[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        """The flat form results.json and results.csv have always had (``test_accuracy_std`` ...)."""
        values: dict[str, Any] = {"case": self.case, "function": self.function, "n": self.n, "ok": self.ok,
                                  "failed": self.failed, "statuses": self.statuses, "seconds": self.seconds}
        for metric in CELL_METRICS:
            values[metric], values[f"{metric}_std"] = self.means[metric], self.stds[metric]
        return values


#: The metrics summarised per cell.
CELL_METRICS = ("test_accuracy", "val_accuracy", "test_f1", "val_f1")


def cell_summary(runs: Sequence[Run], case: str = "", function: str = "") -> Cell:
    """The summary of one cell's runs."""
    ok = [run.record for run in runs if run.record.ok]
    values = {metric: [v for r in ok if (v := r.metric(metric)) is not None] for metric in CELL_METRICS}
    return Cell(case, function, len(runs), len(ok), len(ok) < len(runs),
                dict(Counter(run.record.status.value for run in runs)),
                finite_mean(run.record.seconds for run in runs),
                {metric: finite_mean(v) for metric, v in values.items()},
                {metric: statistics.stdev(v) if len(v) > 1 else None for metric, v in values.items()})


@dataclass(frozen=True)
class Nemenyi:
    """The Nemenyi post-hoc test: the critical difference of average ranks, every pair, and the groups of
    functions no pair within which differs significantly."""

    critical_difference: float
    pairs: tuple[NemenyiPair, ...]
    groups: list[list[str]]


@dataclass(frozen=True)
class GridAnalysis:
    """The statistics of a grid over its cases, with the plain findings they support.

    ``matrix`` is cases x functions of :data:`~afos.grid.spec.METRIC` (None: a failed cell); the tests are
    absent (None, empty) when every cell failed, and the Wilcoxon tests and wins need both candidates and
    baselines. :meth:`to_dict` is the JSON of ``results.json`` and ``afos compare --json``.
    """

    metric: str
    alpha: float
    functions: tuple[Function, ...]
    cases: tuple[str, ...]
    cells: tuple[tuple[Cell, ...], ...]
    matrix: list[list[float | None]]
    runs: int
    failed_cells: int
    notes: tuple[str, ...]
    sources: tuple[str, ...]
    findings: tuple[str, ...] = ()
    average_ranks: dict[str, float] | None = None
    friedman: FriedmanResult | None = None
    smallest_possible_p: float | None = None
    nemenyi: Nemenyi | None = None
    wilcoxon_holm: tuple[WilcoxonRow, ...] = ()
    wins: tuple[WinsRow, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        friedman = None if self.friedman is None else {**self.friedman.to_dict(),
                                                       "smallest_possible_p": self.smallest_possible_p}
        nemenyi = None if self.nemenyi is None else {
            "critical_difference": self.nemenyi.critical_difference,
            "pairs": [pair.to_dict() for pair in self.nemenyi.pairs], "groups": self.nemenyi.groups}
        return plain({
            "metric": self.metric, "alpha": self.alpha, "functions": [f.to_dict() for f in self.functions],
            "cases": self.cases, "cells": [[cell.to_dict() for cell in row] for row in self.cells],
            "matrix": self.matrix, "average_ranks": self.average_ranks, "friedman": friedman,
            "posthoc": {"nemenyi": nemenyi, "wilcoxon_holm": [row.to_dict() for row in self.wilcoxon_holm]},
            "wins": [row.to_dict() for row in self.wins], "runs": self.runs, "failed_cells": self.failed_cells,
            "notes": self.notes, "sources": self.sources, "findings": self.findings,
        })


def analyse(results: Results, alpha: float = ALPHA) -> GridAnalysis:
    """Ranks, Friedman, Nemenyi, Wilcoxon-Holm and wins over the cases, and the findings they support."""
    functions, cases = results.functions, results.cases
    if len(functions) < 2:
        raise UserError("a comparison needs at least two functions")
    cells = tuple(tuple(cell_summary(results.of(f, case), case, f.name) for f in functions) for case in cases)
    matrix = np.array([[math.nan if c.failed or c.means[METRIC] is None else c.means[METRIC] for c in row]
                       for row in cells])
    analysis = GridAnalysis(METRIC, alpha, functions, cases, cells, _plain(matrix),
                            sum(c.n for row in cells for c in row), int(np.isnan(matrix).sum()), results.notes,
                            results.sources)
    if np.isnan(matrix).all():
        return replace(analysis, findings=("every cell failed: there is nothing to rank",))
    analysis = _with_tests(analysis, matrix, results)
    return replace(analysis, findings=tuple(findings(analysis)))


def _with_tests(analysis: GridAnalysis, matrix: np.ndarray, results: Results) -> GridAnalysis:
    names = [f.name for f in analysis.functions]
    alpha = analysis.alpha
    friedman = rank_tests.friedman(matrix)
    cd = nemenyi_cd(len(names), friedman.n_cases, alpha)
    named_ranks = dict(zip(names, map(float, average_ranks(matrix))))
    nemenyi = Nemenyi(cd, tuple(nemenyi_pairs(named_ranks, friedman.n_cases, alpha)), nemenyi_groups(named_ranks, cd))
    analysis = replace(analysis, average_ranks=named_ranks, friedman=friedman, nemenyi=nemenyi,
                       smallest_possible_p=friedman_floor(friedman.n_cases, len(names)))
    candidates = [f.name for f in analysis.functions if f.role is Role.CANDIDATE]
    baselines = [f.name for f in analysis.functions if f.role is Role.BASELINE]
    if not (candidates and baselines):
        return analysis
    pvalues = _per_case_pvalues(matrix, analysis.functions, analysis.cases, results, alpha)
    return replace(analysis, wilcoxon_holm=tuple(wilcoxon_holm(matrix, names, candidates, baselines, alpha)),
                   wins=tuple(wins(matrix, names, candidates, baselines, pvalues, alpha)))


def friedman_floor(n_cases: int, k: int) -> float:
    """The smallest p the Friedman chi-square can reach with ``n_cases`` cases and ``k`` functions: every
    case ranking the functions identically gives the largest statistic, N(k-1)."""
    return float(sps.chi2.sf(n_cases * (k - 1), k - 1))


def _per_case_pvalues(matrix: np.ndarray, functions: Sequence[Function], cases: Sequence[str], results: Results,
                      alpha: float) -> dict[str, list[float | None]]:
    """Per candidate and case, Welch's test over seeds against that case's best baseline."""
    names = [f.name for f in functions]
    by_name = {f.name: f for f in functions}
    best = best_baselines(matrix, names, [f.name for f in functions if f.role is Role.BASELINE])
    pvalues: dict[str, list[float | None]] = {}
    for function in (f for f in functions if f.role is Role.CANDIDATE):
        pvalues[function.name] = [
            None if baseline is None else per_case_significance(
                _seed_values(results.of(function, case)), _seed_values(results.of(by_name[baseline], case)), alpha
            ).p_value
            for case, baseline in zip(cases, best)
        ]
    return pvalues


def _seed_values(runs: Sequence[Run]) -> list[float]:
    """The metric per seed; NaN for a seed that failed."""
    values = [run.record.metric(METRIC) if run.record.ok else None for run in runs]
    return [math.nan if value is None else value for value in values]


def findings(analysis: GridAnalysis) -> list[str]:
    """Plain statements of what the data supports, including what these numbers of cases cannot show."""
    friedman, nemenyi, alpha = analysis.friedman, analysis.nemenyi, analysis.alpha
    assert friedman is not None and nemenyi is not None and analysis.smallest_possible_p is not None
    n, k = friedman.n_cases, friedman.k
    lines = [_friedman_finding(friedman, analysis.smallest_possible_p, alpha)]
    if nemenyi.critical_difference >= k - 1:
        lines.append(f"The Nemenyi critical difference ({nemenyi.critical_difference:.2f}) exceeds the largest "
                     f"possible rank difference ({k - 1}), so with {n} case(s) no pair can differ significantly.")
    elif friedman.p_value <= alpha:
        pairs = [f"{p.first} vs {p.second}" for p in nemenyi.pairs if p.significant]
        lines.append(f"Nemenyi pairs differing significantly: {', '.join(pairs) if pairs else 'none'}.")
    else:
        lines.append("Nemenyi pairs are not interpreted because the Friedman test is not significant.")
    lines += _wilcoxon_findings(analysis.wilcoxon_holm, alpha, n)
    lines += [_wins_finding(row) for row in analysis.wins]
    if analysis.failed_cells:
        lines.append(f"{analysis.failed_cells} cell(s) failed (some seed did not finish ok); failed cells rank "
                     f"worst in their case, tied among themselves.")
    return lines


def _friedman_finding(friedman: FriedmanResult, smallest_p: float, alpha: float) -> str:
    n, k, p = friedman.n_cases, friedman.k, friedman.p_value
    if smallest_p > alpha:
        return (f"With N={n} case(s) the Friedman test cannot reach p<{alpha:g} for k={k} functions even if every "
                f"case ranked them identically (smallest possible p = {smallest_p:.3g}); the "
                f"ranks describe these cases but support no claim of difference. Add cases (datasets x models), "
                f"not seeds.")
    if p <= alpha:
        return f"Friedman test: the {k} functions do not all perform alike over {n} cases (p = {p:.3g})."
    return (f"Friedman test: no evidence over {n} cases that the {k} functions differ (p = {p:.3g}); this is not "
            f"evidence that they are equal.")


def _wilcoxon_findings(rows: Sequence[WilcoxonRow], alpha: float, n: int) -> list[str]:
    if not rows:
        return ["No candidate/baseline pair: Wilcoxon tests and wins need both roles."]
    floor = 2.0 / 2.0**n
    lines = []
    if floor > alpha:
        lines.append(f"With N={n} case(s) no Wilcoxon signed-rank test can reach p<{alpha:g} (smallest two-sided "
                     f"p = {floor:.3g}), before the Holm correction over {len(rows)} comparisons.")
    better = [f"{r.candidate} > {r.baseline}" for r in rows if r.significant and r.direction == "better"]
    worse = [f"{r.candidate} < {r.baseline}" for r in rows if r.significant and r.direction == "worse"]
    if better or worse:
        lines.append(f"Significant after Holm (alpha {alpha:g}): {', '.join(better + worse)}.")
    else:
        lines.append("No candidate differs significantly from any baseline after the Holm correction: the data "
                     "does not support a claim that a candidate beats (or loses to) a baseline.")
    return lines


def _wins_finding(row: WinsRow) -> str:
    text = f"{row.candidate} beats the best baseline in {row.wins} of {row.n_cases} cases"
    if row.n_tested:
        return f"{text}, significantly (one-sided Welch over seeds, uncorrected) in {row.significant_wins}."
    return f"{text}; per-case significance needs at least 2 successful seeds per side."


def _plain(matrix: np.ndarray) -> list[list[float | None]]:
    return [[None if math.isnan(v) else float(v) for v in row] for row in matrix]
