"""Ranks within cases, the Friedman test over them, and the Nemenyi critical difference (Demšar 2006)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from scipy import stats as sps

from afos.stats.common import Result, as_matrix


def rank_cases(matrix: Any) -> np.ndarray:
    """Rank the functions within each case: 1 = best, ties share their average rank.

    A failed run (NaN) ranks below every successful one; several failures in one case tie for the worst
    ranks (with k=4 and two failures, both get 3.5). Cases where every function failed are dropped, so the
    result may have fewer rows than the input.
    """
    values = as_matrix(matrix)
    values = values[~np.all(np.isnan(values), axis=1)]
    if values.shape[0] == 0:
        raise ValueError("every run failed in every case: nothing to rank")
    worst_for_failures = np.where(np.isnan(values), -np.inf, values)
    return sps.rankdata(-worst_for_failures, method="average", axis=1)


def average_ranks(matrix: Any) -> np.ndarray:
    """Average rank of every function over the cases (length k; lower is better); see `rank_cases`."""
    return rank_cases(matrix).mean(axis=0)


# -------------------------------------------------------------------------------------------- friedman


@dataclass(frozen=True)
class FriedmanResult(Result):
    """Friedman test over cases.

    `statistic`/`p_value` are Friedman's chi-square in the form Demšar (2006) uses, computed from average
    ranks without a tie correction. `iman_davenport`/`iman_davenport_p_value` is the F form, which Demšar
    recommends because the chi-square is conservative; it is None with a single case (no error degrees of
    freedom). `statistic_tie_corrected` divides by the usual tie factor (what scipy.stats.friedmanchisquare
    reports); it matters when many cells tie, e.g. several failures in one case.
    """

    statistic: float
    p_value: float
    n_cases: int
    k: int
    iman_davenport: float | None
    iman_davenport_p_value: float | None
    statistic_tie_corrected: float
    p_value_tie_corrected: float


def _tie_term(ranks: np.ndarray) -> float:
    """Sum of t^3 - t over every group of t tied ranks in every case (the Friedman tie correction's numerator)."""
    total = 0.0
    for row in ranks:
        counts = np.unique(row, return_counts=True)[1].astype(float)
        total += float(np.sum(counts**3 - counts))
    return total


def _iman_davenport(chi2: float, n: int, k: int) -> tuple[float | None, float | None]:
    """Iman-Davenport F = (N-1) chi2 / (N(k-1) - chi2) with (k-1, (k-1)(N-1)) degrees of freedom."""
    if n < 2:
        return None, None
    denominator = n * (k - 1) - chi2
    if denominator <= 0:  # every case ranks the functions identically, without ties
        return math.inf, 0.0
    f_value = (n - 1) * chi2 / denominator
    return f_value, float(sps.f.sf(f_value, k - 1, (k - 1) * (n - 1)))


def friedman(matrix: Any) -> FriedmanResult:
    """Friedman test that all functions perform alike, on within-case ranks (failures rank worst).

    Computed from the ranks rather than handed to scipy.stats.friedmanchisquare because (a) the published
    reference values (Demšar 2006) use the uncorrected statistic, which scipy does not offer, (b) scipy needs
    k >= 3 while a comparison may hold just a candidate and one baseline, and (c) ranks carry the failure
    policy. The tie-corrected field equals scipy's statistic whenever scipy applies.
    """
    ranks = rank_cases(matrix)
    n, k = ranks.shape
    mean_ranks = ranks.mean(axis=0)
    chi2 = 12.0 * n / (k * (k + 1)) * (float(np.sum(mean_ranks**2)) - k * (k + 1) ** 2 / 4.0)
    chi2 = max(chi2, 0.0)  # exact zero can come out as -1e-15
    tie_factor = 1.0 - _tie_term(ranks) / (n * k * (k * k - 1))
    corrected = chi2 / tie_factor if tie_factor > 0 else 0.0  # factor 0: every case is a full tie
    f_value, f_p = _iman_davenport(chi2, n, k)
    return FriedmanResult(
        statistic=chi2,
        p_value=float(sps.chi2.sf(chi2, k - 1)),
        n_cases=n,
        k=k,
        iman_davenport=f_value,
        iman_davenport_p_value=f_p,
        statistic_tie_corrected=corrected,
        p_value_tie_corrected=float(sps.chi2.sf(corrected, k - 1)),
    )


# --------------------------------------------------------------------------------------------- nemenyi


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks: CD = q_alpha * sqrt(k(k+1) / (6N)).

    q_alpha is the studentized range quantile for k groups and infinite degrees of freedom divided by sqrt(2)
    (Demšar 2006, Table 5a: q_0.05 = 2.569 for k = 4). Computing it instead of tabulating it supports any k.
    """
    if k < 2 or n < 1 or not 0.0 < alpha < 1.0:
        raise ValueError(f"need k >= 2, n >= 1 and 0 < alpha < 1, got k={k}, n={n}, alpha={alpha}")
    q_alpha = float(sps.studentized_range.ppf(1.0 - alpha, k, np.inf)) / math.sqrt(2.0)
    return q_alpha * math.sqrt(k * (k + 1) / (6.0 * n))


@dataclass(frozen=True)
class NemenyiPair(Result):
    """One pairwise Nemenyi comparison; `significant` when the ranks differ by at least the CD."""

    first: str
    second: str
    rank_first: float
    rank_second: float
    difference: float
    critical_difference: float
    significant: bool


def _named_ranks(avg_ranks: Mapping[str, float] | Sequence[float] | np.ndarray) -> dict[str, float]:
    """Accept ranks keyed by name, or positional ranks (named by their column index)."""
    if isinstance(avg_ranks, Mapping):
        return {str(name): float(rank) for name, rank in avg_ranks.items()}
    return {str(i): float(rank) for i, rank in enumerate(avg_ranks)}


def nemenyi_pairs(
    avg_ranks: Mapping[str, float] | Sequence[float] | np.ndarray, n: int, alpha: float = 0.05
) -> list[NemenyiPair]:
    """All k(k-1)/2 pairwise Nemenyi comparisons of average ranks over `n` cases.

    Use it after a significant Friedman test, when no function is singled out; to test a candidate against
    baselines, `wilcoxon_holm` is more powerful because it corrects for fewer comparisons.
    """
    ranks = _named_ranks(avg_ranks)
    cd = nemenyi_cd(len(ranks), n, alpha)
    pairs = []
    for (a, rank_a), (b, rank_b) in combinations(ranks.items(), 2):
        difference = abs(rank_a - rank_b)
        pairs.append(NemenyiPair(a, b, rank_a, rank_b, difference, cd, difference >= cd))
    return pairs


def nemenyi_groups(avg_ranks: Mapping[str, float] | Sequence[float] | np.ndarray, cd: float) -> list[list[str]]:
    """Maximal groups of functions whose average ranks all lie within less than `cd` of each other.

    These are the thick bars of a critical-difference diagram: members of one group are not significantly
    different. Groups are listed best first, each ordered best first; singletons are omitted.
    """
    ordered = sorted(_named_ranks(avg_ranks).items(), key=lambda item: item[1])
    groups: list[list[str]] = []
    previous_end = -1
    for start, (_, rank) in enumerate(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1][1] - rank < cd:
            end += 1
        if end > previous_end:  # otherwise this group lies inside the previous one
            if end > start:
                groups.append([name for name, _ in ordered[start : end + 1]])
            previous_end = end
    return groups
