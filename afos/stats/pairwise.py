"""Candidates against baselines: Holm's correction, Wilcoxon signed-rank over cases, per-case tests, wins."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from afos.stats.common import Result, as_matrix

# Differences smaller than this are floating-point residue of subtracting decimal accuracies
# (0.768 - 0.763 != 0.936 - 0.931 in binary), not measured effects; rounding them restores exact ties.
_DIFFERENCE_DECIMALS = 12

# ---------------------------------------------------------------------------------------- holm, wilcoxon


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, in the input order.

    Controls the family-wise error rate like Bonferroni but rejects more: the i-th smallest of m p-values is
    multiplied by (m - i + 1) instead of m. Taking the running maximum keeps the adjusted values in the same
    order as the raw ones, so "adjusted p <= alpha" reproduces the step-down rule of stopping at the first
    hypothesis that cannot be rejected. Values are capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


@dataclass(frozen=True)
class WilcoxonRow(Result):
    """Candidate vs baseline over the cases: two-sided Wilcoxon signed-rank test, Holm-adjusted in its family.

    `direction` says which side the signed ranks favour ("better" = candidate); read `significant` together
    with it. `median_difference` (candidate - baseline) is over the cases where both runs succeeded.
    """

    candidate: str
    baseline: str
    n: int
    statistic: float
    p_value: float
    p_holm: float
    significant: bool
    median_difference: float
    direction: str
    note: str


def _paired_differences(candidate: np.ndarray, baseline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate - baseline per case with failures as -inf; returns (differences, both-succeeded mask).

    Cases where both failed are dropped (no information). A one-sided failure becomes an infinite
    difference, i.e. the largest possible win or loss, which is the module's failure policy in rank form.
    """
    both_failed = np.isnan(candidate) & np.isnan(baseline)
    a = np.where(np.isnan(candidate), -np.inf, candidate)[~both_failed]
    b = np.where(np.isnan(baseline), -np.inf, baseline)[~both_failed]
    both_ok = np.isfinite(a) & np.isfinite(b)
    differences = np.where(both_ok, np.round(a - b, _DIFFERENCE_DECIMALS), a - b)
    return differences, both_ok


def _direction(differences: np.ndarray) -> str:
    """Which side the signed ranks of |differences| favour: 'better', 'worse' or 'equal'."""
    signed = float(np.sum(np.sign(differences) * sps.rankdata(np.abs(differences))))
    return "better" if signed > 0 else "worse" if signed < 0 else "equal"


def _wilcoxon(differences: np.ndarray, alpha: float) -> tuple[float, float, str]:
    """(statistic, p, note) of a two-sided signed-rank test, degrading to p = 1 when it is undefined.

    Zero differences are split evenly between the positive and negative rank sums ("zsplit"), as Demšar
    (2006) recommends: a tie is evidence for the null and must not be discarded.
    """
    if differences.size == 0:
        return 0.0, 1.0, "no case with a result for either function"
    nonzero = int(np.count_nonzero(differences))
    if nonzero == 0:
        return 0.0, 1.0, "all differences are zero"
    result = sps.wilcoxon(differences, zero_method="zsplit", alternative="two-sided")
    smallest_p = 2.0 / 2.0**nonzero
    note = f"only {nonzero} non-zero differences: p cannot fall below {smallest_p:.3g}" if smallest_p > alpha else ""
    return float(result.statistic), float(result.pvalue), note


def _failure_note(candidate: np.ndarray, baseline: np.ndarray) -> str:
    """Say how many one-sided failures were counted as losses, so a reader can see the policy at work."""
    counts = {
        "candidate": int(np.sum(np.isnan(candidate) & ~np.isnan(baseline))),
        "baseline": int(np.sum(np.isnan(baseline) & ~np.isnan(candidate))),
    }
    return "; ".join(
        f"{side} alone failed in {count} cases (counted as its losses)" for side, count in counts.items() if count
    )


def _columns(names: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Column indices of `wanted` names; unknown names are a caller bug, so fail loudly."""
    missing = [name for name in wanted if name not in names]
    if missing:
        raise ValueError(f"unknown function names {missing}; known: {list(names)}")
    return [list(names).index(name) for name in wanted]


def wilcoxon_holm(
    matrix: Any,
    names: Sequence[str],
    candidates: Sequence[str],
    baselines: Sequence[str],
    alpha: float = 0.05,
) -> list[WilcoxonRow]:
    """Wilcoxon signed-rank test of every candidate against every baseline, Holm-corrected over the family.

    The family is all (candidate, baseline) pairs with distinct names, so claiming "F beats every baseline"
    keeps its family-wise error at `alpha`. Failures follow the module policy (a one-sided failure is the
    largest loss for the failing side); undefined tests report p = 1 with a note instead of raising.
    """
    values = as_matrix(matrix)
    if values.shape[1] != len(names):
        raise ValueError(f"matrix has {values.shape[1]} columns but {len(names)} names")
    pairs = [(c, b) for c in candidates for b in baselines if c != b]
    raw = []
    for cand, base in pairs:
        ci, bi = _columns(names, [cand, base])
        differences, both_ok = _paired_differences(values[:, ci], values[:, bi])
        statistic, p_value, note = _wilcoxon(differences, alpha)
        notes = "; ".join(part for part in (note, _failure_note(values[:, ci], values[:, bi])) if part)
        median = float(np.median(differences[both_ok])) if both_ok.any() else math.nan
        raw.append((cand, base, differences.size, statistic, p_value, median, _direction(differences), notes))
    adjusted = holm([row[4] for row in raw]) if raw else np.empty(0)
    return [
        WilcoxonRow(c, b, n, stat, p, float(ph), bool(ph <= alpha), med, direction, note)
        for (c, b, n, stat, p, med, direction, note), ph in zip(raw, adjusted)
    ]


# ------------------------------------------------------------------------------------------------- wins


@dataclass(frozen=True)
class CaseSignificance(Result):
    """One-sided Welch test, within one case, that the candidate's seed accuracies exceed the baseline's.

    `p_value` and `significant` are None when either side has fewer than 2 successful seeds: a variance
    cannot be estimated, so significance is undefined, which is not the same as "not significant".
    """

    p_value: float | None
    significant: bool | None
    n_candidate: int
    n_baseline: int


def per_case_significance(
    seed_values_candidate: Sequence[float] | np.ndarray,
    seed_values_best_baseline: Sequence[float] | np.ndarray,
    alpha: float = 0.05,
) -> CaseSignificance:
    """Welch's t-test (unequal variances, alternative "greater") over seeds of one case.

    Failed seeds (NaN) are ignored here; failures are already penalised by the across-case tests. When both
    sides are constant the t statistic is undefined: equal constants give p = 1 (no evidence of "greater"),
    different constants give scipy's limit (p = 0 if the candidate is higher).
    """
    a = np.asarray(seed_values_candidate, dtype=float)
    b = np.asarray(seed_values_best_baseline, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size < 2 or b.size < 2:
        return CaseSignificance(None, None, int(a.size), int(b.size))
    with warnings.catch_warnings():  # constant samples trigger a precision warning; handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        p_value = float(sps.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    if math.isnan(p_value):
        p_value = 1.0
    return CaseSignificance(p_value, p_value <= alpha, int(a.size), int(b.size))


def best_baselines(matrix: Any, names: Sequence[str], baselines: Sequence[str]) -> list[str | None]:
    """Name of the best baseline in every case (highest mean; first listed wins ties); None if all failed.

    Callers use it to pick which baseline's seeds go into `per_case_significance` for each case.
    """
    values = as_matrix(matrix)[:, _columns(names, baselines)]
    best: list[str | None] = []
    for row in values:
        best.append(None if np.all(np.isnan(row)) else baselines[int(np.nanargmax(row))])
    return best


@dataclass(frozen=True)
class WinsRow(Result):
    """AFOS-style summary: the candidate beats the best baseline in `wins` of `n_cases` cases.

    `significant_wins` counts wins whose per-case p-value is <= alpha among the `n_tested` cases that have a
    defined p-value; it is None when no per-case p-values were supplied. These are uncorrected per-case tests,
    a description of consistency, not a substitute for `wilcoxon_holm`.
    """

    candidate: str
    n_cases: int
    wins: int
    fraction: float
    significant_wins: int | None
    n_tested: int


def _case_wins(candidate: np.ndarray, best_baseline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(counted, won) masks: a case counts unless everything failed; a success beats a failure."""
    counted = ~(np.isnan(candidate) & np.isnan(best_baseline))
    won = ~np.isnan(candidate) & (np.isnan(best_baseline) | (candidate > best_baseline))
    return counted, won & counted


def wins(
    matrix: Any,
    names: Sequence[str],
    candidates: Sequence[str],
    baselines: Sequence[str],
    per_case_pvalues: Mapping[str, Sequence[float | None]] | None = None,
    alpha: float = 0.05,
) -> list[WinsRow]:
    """Per candidate, count the cases where its mean is strictly higher than the best baseline's.

    `per_case_pvalues[candidate][i]` is case i's p-value from `per_case_significance` (None = undefined).
    """
    values = as_matrix(matrix)
    with warnings.catch_warnings():  # all-NaN rows are expected (everything failed) and handled
        warnings.simplefilter("ignore", RuntimeWarning)
        best = np.nanmax(values[:, _columns(names, baselines)], axis=1)
    rows = []
    for cand in candidates:
        counted, won = _case_wins(values[:, _columns(names, [cand])[0]], best)
        significant, tested = None, 0
        if per_case_pvalues is not None and cand in per_case_pvalues:
            pvalues = list(per_case_pvalues[cand])
            if len(pvalues) != values.shape[0]:
                raise ValueError(f"{cand}: {len(pvalues)} per-case p-values for {values.shape[0]} cases")
            defined = np.array([p is not None for p in pvalues]) & counted
            tested = int(defined.sum())
            significant = sum(1 for i in np.flatnonzero(defined & won) if (p := pvalues[i]) is not None and p <= alpha)
        n_cases = int(counted.sum())
        fraction = won.sum() / n_cases if n_cases else math.nan
        rows.append(WinsRow(cand, n_cases, int(won.sum()), float(fraction), significant, tested))
    return rows
