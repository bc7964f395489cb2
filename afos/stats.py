"""Statistics for comparing activation functions over many cases (pure numpy/scipy).

A *case* is one (dataset, model) pair; a *result matrix* has one row per case and one column per activation
function, each cell the mean accuracy over seeds (higher is better) or NaN when the run failed.

The procedure follows Demšar (2006), "Statistical Comparisons of Classifiers over Multiple Data Sets", JMLR 7:
rank the functions within every case, test the average ranks with the Friedman test (and its Iman-Davenport
F form), then either compare all pairs with the Nemenyi critical difference, or compare candidates against
baselines with Wilcoxon signed-rank tests under a Holm correction. Per-case win counts (the AFOS paper's
"better in 26 of 28 cases") are provided as a *description*; the inferential claims come from the tests above.

Failure policy, used everywhere: a failed run (NaN) is the worst possible outcome in its case. Dropping such
cells instead would silently favour a function that crashes exactly where it would have done badly. A case in
which every compared function failed carries no information about their order and is left out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np
from scipy import stats as sps


def finite_mean(values: Iterable[Any]) -> float | None:
    """Mean of the finite numbers among ``values`` (None and NaN are failed runs); None if there are none."""
    numbers = [float(v) for v in values if v is not None and math.isfinite(v)]
    return sum(numbers) / len(numbers) if numbers else None

# Differences smaller than this are floating-point residue of subtracting decimal accuracies
# (0.768 - 0.763 != 0.936 - 0.931 in binary), not measured effects; rounding them restores exact ties.
_DIFFERENCE_DECIMALS = 12


def format_number(value: Any) -> str:
    """An accuracy, loss or fitness with 4 decimals; '-' for a missing measurement (a failed run)."""
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.4f}"


def format_duration(seconds: float) -> str:
    """12s, 3m05s, 1h02m: an ETA or a run time as people read it."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def plus_minus(mean: float | None, std: float | None) -> str:
    """``mean ± std``, or the mean alone when there is no spread to show (one run)."""
    return format_number(mean) if std is None else f"{format_number(mean)} ± {std:.4f}"


def _json_value(value: Any) -> Any:
    """Make one value strict-JSON-safe: numpy scalars become Python ones, NaN/inf become None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


class _Record:
    """Mixin giving result dataclasses a JSON-ready `to_dict()`."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for `json.dumps(..., allow_nan=False)`; non-finite floats become None."""
        return _json_value(asdict(self))  # type: ignore[call-overload]


# ----------------------------------------------------------------------------------------------- ranks


def _as_matrix(matrix: Any) -> np.ndarray:
    """Validate a (cases x functions) result matrix and return it as float64."""
    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2 or values.shape[0] < 1 or values.shape[1] < 2:
        raise ValueError(f"expected a (cases x functions) matrix, >= 1 case and >= 2 functions; got {values.shape}")
    return values


def rank_cases(matrix: Any) -> np.ndarray:
    """Rank the functions within each case: 1 = best, ties share their average rank.

    A failed run (NaN) ranks below every successful one; several failures in one case tie for the worst
    ranks (with k=4 and two failures, both get 3.5). Cases where every function failed are dropped, so the
    result may have fewer rows than the input.
    """
    values = _as_matrix(matrix)
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
class FriedmanResult(_Record):
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
class NemenyiPair(_Record):
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
class WilcoxonRow(_Record):
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
    values = _as_matrix(matrix)
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
class CaseSignificance(_Record):
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
    values = _as_matrix(matrix)[:, _columns(names, baselines)]
    best: list[str | None] = []
    for row in values:
        best.append(None if np.all(np.isnan(row)) else baselines[int(np.nanargmax(row))])
    return best


@dataclass(frozen=True)
class WinsRow(_Record):
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
    values = _as_matrix(matrix)
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
            significant = int(sum(1 for i in np.flatnonzero(defined & won) if pvalues[i] <= alpha))
        n_cases = int(counted.sum())
        fraction = won.sum() / n_cases if n_cases else math.nan
        rows.append(WinsRow(cand, n_cases, int(won.sum()), float(fraction), significant, tested))
    return rows
