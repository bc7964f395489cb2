"""The statistics of a grid over its cases: ranks, Friedman, Nemenyi, Wilcoxon-Holm, wins, and findings."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from scipy import stats as sps

from afos.errors import UserError
from afos.grid.results import Results
from afos.grid.spec import ALPHA, METRIC, Function, Run
from afos.stats import ranks as rank_tests
from afos.stats.common import finite_mean
from afos.stats.pairwise import best_baselines, per_case_significance, wilcoxon_holm, wins
from afos.stats.ranks import average_ranks, nemenyi_cd, nemenyi_groups, nemenyi_pairs

# ---------------------------------------------------------------------------------------- the analysis


def cell_summary(runs: Sequence[Run]) -> dict[str, Any]:
    """Mean ± sample std over the successful seeds of one cell, with the status counts and whether it failed."""
    ok = [run.record for run in runs if run.record.ok]
    statuses = dict(Counter(run.record.status.value for run in runs))
    summary = {"n": len(runs), "ok": len(ok), "failed": len(ok) < len(runs), "statuses": statuses,
               "seconds": finite_mean(run.record.seconds for run in runs)}
    for metric in ("test_accuracy", "val_accuracy", "test_f1", "val_f1"):
        values = [r.metric(metric) for r in ok if r.metric(metric) is not None]
        summary[metric] = finite_mean(values)
        summary[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else None
    return summary


def analyse(results: Results, alpha: float = ALPHA) -> dict[str, Any]:
    """Ranks, Friedman, Nemenyi, Wilcoxon-Holm and wins over the cases, as one JSON-ready dict.

    Keys: metric, functions, cases, cells, matrix (cases x functions; None = failed cell), average_ranks,
    friedman, posthoc {nemenyi, wilcoxon_holm}, wins, findings (what the numbers do and do not support).
    """
    functions, cases = results.functions, results.cases
    if len(functions) < 2:
        raise UserError("a comparison needs at least two functions")
    cells = [[cell_summary(results.of(f, case)) for f in functions] for case in cases]
    matrix = np.array([[math.nan if c["failed"] or c[METRIC] is None else c[METRIC] for c in row] for row in cells])
    names = [f.name for f in functions]
    analysis: dict[str, Any] = {
        "metric": METRIC, "alpha": alpha,
        "functions": [asdict(f) for f in functions], "cases": list(cases),
        "cells": [[{"case": case, "function": f.name, **c} for f, c in zip(functions, row)]
                  for case, row in zip(cases, cells)],
        "matrix": _plain(matrix), "average_ranks": None, "friedman": None,
        "posthoc": {"nemenyi": None, "wilcoxon_holm": []}, "wins": [],
        "runs": sum(c["n"] for row in cells for c in row),
        "failed_cells": int(np.isnan(matrix).sum()),
        "notes": list(results.notes), "sources": list(results.sources),
    }
    if np.isnan(matrix).all():
        analysis["findings"] = ["every cell failed: there is nothing to rank"]
        return analysis
    _add_tests(analysis, matrix, names, functions, cases, results, alpha)
    analysis["findings"] = findings(analysis)
    return analysis


def _add_tests(analysis: dict[str, Any], matrix: np.ndarray, names: list[str], functions: list[Function],
               cases: list[str], results: Results, alpha: float) -> None:
    ranks = average_ranks(matrix)
    friedman = rank_tests.friedman(matrix)
    cd = nemenyi_cd(len(names), friedman.n_cases, alpha)
    named_ranks = dict(zip(names, map(float, ranks)))
    analysis["average_ranks"] = named_ranks
    analysis["friedman"] = {**friedman.to_dict(), "smallest_possible_p": friedman_floor(friedman.n_cases, len(names))}
    analysis["posthoc"]["nemenyi"] = {
        "critical_difference": cd,
        "pairs": [p.to_dict() for p in nemenyi_pairs(named_ranks, friedman.n_cases, alpha)],
        "groups": nemenyi_groups(named_ranks, cd),
    }
    candidates = [f.name for f in functions if f.role == "candidate"]
    baselines = [f.name for f in functions if f.role == "baseline"]
    if candidates and baselines:
        rows = wilcoxon_holm(matrix, names, candidates, baselines, alpha)
        analysis["posthoc"]["wilcoxon_holm"] = [r.to_dict() for r in rows]
        pvalues = _per_case_pvalues(matrix, functions, cases, results, alpha)
        analysis["wins"] = [w.to_dict() for w in wins(matrix, names, candidates, baselines, pvalues, alpha)]


def friedman_floor(n_cases: int, k: int) -> float:
    """The smallest p the Friedman chi-square can reach with ``n_cases`` cases and ``k`` functions: every
    case ranking the functions identically gives the largest statistic, N(k-1)."""
    return float(sps.chi2.sf(n_cases * (k - 1), k - 1))


def _per_case_pvalues(matrix: np.ndarray, functions: list[Function], cases: list[str], results: Results,
                      alpha: float) -> dict[str, list[float | None]]:
    """Per candidate and case, Welch's test over seeds against that case's best baseline."""
    names = [f.name for f in functions]
    by_name = {f.name: f for f in functions}
    best = best_baselines(matrix, names, [f.name for f in functions if f.role == "baseline"])
    pvalues: dict[str, list[float | None]] = {}
    for function in (f for f in functions if f.role == "candidate"):
        pvalues[function.name] = [
            None if baseline is None else per_case_significance(
                _seed_values(results.of(function, case)), _seed_values(results.of(by_name[baseline], case)), alpha
            ).p_value
            for case, baseline in zip(cases, best)
        ]
    return pvalues


def _seed_values(runs: Sequence[Run]) -> list[float]:
    return [run.record.metric(METRIC) if run.record.ok and run.record.metric(METRIC) is not None else math.nan
            for run in runs]


def findings(analysis: Mapping[str, Any]) -> list[str]:
    """Plain statements of what the data supports, including what these numbers of cases cannot show."""
    alpha, friedman = analysis["alpha"], analysis["friedman"]
    n, k = friedman["n_cases"], friedman["k"]
    lines = [_friedman_finding(friedman, alpha)]
    nemenyi = analysis["posthoc"]["nemenyi"]
    if nemenyi["critical_difference"] >= k - 1:
        lines.append(f"The Nemenyi critical difference ({nemenyi['critical_difference']:.2f}) exceeds the largest "
                     f"possible rank difference ({k - 1}), so with {n} case(s) no pair can differ significantly.")
    elif friedman["p_value"] <= alpha:
        pairs = [f"{p['first']} vs {p['second']}" for p in nemenyi["pairs"] if p["significant"]]
        lines.append(f"Nemenyi pairs differing significantly: {', '.join(pairs) if pairs else 'none'}.")
    else:
        lines.append("Nemenyi pairs are not interpreted because the Friedman test is not significant.")
    lines += _wilcoxon_findings(analysis, n)
    lines += [_wins_finding(row) for row in analysis["wins"]]
    if analysis["failed_cells"]:
        lines.append(f"{analysis['failed_cells']} cell(s) failed (some seed did not finish ok); failed cells rank "
                     f"worst in their case, tied among themselves.")
    return lines


def _friedman_finding(friedman: Mapping[str, Any], alpha: float) -> str:
    n, k, p = friedman["n_cases"], friedman["k"], friedman["p_value"]
    if friedman["smallest_possible_p"] > alpha:
        return (f"With N={n} case(s) the Friedman test cannot reach p<{alpha:g} for k={k} functions even if every "
                f"case ranked them identically (smallest possible p = {friedman['smallest_possible_p']:.3g}); the "
                f"ranks describe these cases but support no claim of difference. Add cases (datasets x models), "
                f"not seeds.")
    if p <= alpha:
        return f"Friedman test: the {k} functions do not all perform alike over {n} cases (p = {p:.3g})."
    return (f"Friedman test: no evidence over {n} cases that the {k} functions differ (p = {p:.3g}); this is not "
            f"evidence that they are equal.")


def _wilcoxon_findings(analysis: Mapping[str, Any], n: int) -> list[str]:
    rows, alpha = analysis["posthoc"]["wilcoxon_holm"], analysis["alpha"]
    if not rows:
        return ["No candidate/baseline pair: Wilcoxon tests and wins need both roles."]
    floor = 2.0 / 2.0**n
    lines = []
    if floor > alpha:
        lines.append(f"With N={n} case(s) no Wilcoxon signed-rank test can reach p<{alpha:g} (smallest two-sided "
                     f"p = {floor:.3g}), before the Holm correction over {len(rows)} comparisons.")
    better = [f"{r['candidate']} > {r['baseline']}" for r in rows if r["significant"] and r["direction"] == "better"]
    worse = [f"{r['candidate']} < {r['baseline']}" for r in rows if r["significant"] and r["direction"] == "worse"]
    if better or worse:
        lines.append(f"Significant after Holm (alpha {alpha:g}): {', '.join(better + worse)}.")
    else:
        lines.append("No candidate differs significantly from any baseline after the Holm correction: the data "
                     "does not support a claim that a candidate beats (or loses to) a baseline.")
    return lines


def _wins_finding(row: Mapping[str, Any]) -> str:
    text = f"{row['candidate']} beats the best baseline in {row['wins']} of {row['n_cases']} cases"
    if row["n_tested"]:
        return f"{text}, significantly (one-sided Welch over seeds, uncorrected) in {row['significant_wins']}."
    return f"{text}; per-case significance needs at least 2 successful seeds per side."


def _plain(matrix: np.ndarray) -> list[list[float | None]]:
    return [[None if math.isnan(v) else float(v) for v in row] for row in matrix]
