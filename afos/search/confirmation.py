"""Confirmation: a search's winners retrained on fresh seeds, paired with the baselines, with statistics.

The maximum of many noisy fitness scores is biased upwards (the winner's curse), so the hall of fame's
ranking is not evidence. At the end of a search the top ``confirm_top`` distinct functions that trained
ok, and the baselines (ReLU always, plus the config's ``baseline``), each train on ``confirm_seeds`` seeds
that took no part in the search (disjoint from every fitness seed), under the same protocol, paired by
seed. These are ordinary evaluations (phase ``confirm``): they resume after a kill and are reused like any
other.

What is selection and what is a claim: finalists are *ranked* by their confirmed validation accuracy
(validation selects); test accuracy is reported and tested (one-sided paired t-test against ReLU over the
confirmation seeds, Holm-corrected over the finalists), never used to rank.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from scipy import stats as sps

from afos.activation.spec import ActivationSpec
from afos.errors import TimeUp
from afos.evaluation import EvalRequest, Evaluator
from afos.records.evaluation import Evaluation, Phase
from afos.records.runs import MetaKey, Role, Verdict
from afos.records.search import Generation, HallOfFameEntry
from afos.search.config import (
    RELU,
    SearchConfig,
    baseline_names,
    budgets,
    fitness_seeds,
    score,
    task_configs,
    task_protocols,
)
from afos.search.hall_of_fame import is_front, spread
from afos.space.parse import canonical
from afos.stats.pairwise import holm
from afos.text import counted

ALPHA = 0.05

FINALIST_COLUMNS = ("rank", "role", "expression", "canonical", "fingerprint", "n_seeds", "failed", "val_mean",
                    "val_std", "test_mean", "test_std", "test_ci_low", "test_ci_high", "delta_vs_relu",
                    "delta_ci_low", "delta_ci_high", "p_vs_relu", "p_holm", "verdict", "strongest_baseline",
                    "delta_vs_strongest", "p_holm_vs_strongest", "strongest_ci_low", "strongest_ci_high")


@dataclass(frozen=True)
class Finalist:
    """One row of ``finalists.csv``: a confirmed function or a baseline. Accuracies are fractions;
    ``delta_vs_relu`` is the mean paired test-accuracy difference to ReLU. The strongest baseline is the one
    with the best confirmed validation accuracy (validation selects, as for the finalists); a finalist's
    ``delta_vs_strongest`` and ``p_holm_vs_strongest`` (one-sided "better", Holm over the finalists) say
    whether it beats that one too."""

    rank: int | None
    role: Role  # finalist or baseline
    expression: str
    canonical: str
    fingerprint: str
    n_seeds: int
    failed: int
    val_mean: float | None
    val_std: float | None
    test_mean: float | None
    test_std: float | None
    test_ci_low: float | None
    test_ci_high: float | None
    delta_vs_relu: float | None
    delta_ci_low: float | None
    delta_ci_high: float | None
    p_vs_relu: float | None
    p_holm: float | None
    verdict: Verdict
    strongest_baseline: str | None = None
    delta_vs_strongest: float | None = None
    p_holm_vs_strongest: float | None = None
    strongest_ci_low: float | None = None
    strongest_ci_high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "role": self.role.value, "verdict": self.verdict.value}

    def outcome(self) -> str:
        """The verdict as tables show it, with the failed seeds wherever there are any (the mean and std
        beside it are of the seeds that finished)."""
        if self.failed:
            return f"{self.verdict.value} ({self.failed} of {self.n_seeds} seeds failed)"
        return self.verdict.value


def confirm_seeds(seed: int, fitness_seeds: int, count: int) -> list[int]:
    """Seeds no fitness run of the search used: the ones right after its fitness seeds."""
    return list(range(seed + fitness_seeds, seed + fitness_seeds + count))


@dataclass(frozen=True)
class PlannedFunction:
    """A function the confirmation trains: a finalist (by its hall-of-fame text) or a baseline (by name)."""

    role: Role
    expression: str
    canonical: str
    key: str
    activation: ActivationSpec

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role.value, "expression": self.expression, "canonical": self.canonical,
                "fingerprint": self.key, "activation": self.activation.to_dict()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PlannedFunction:
        return cls(Role(values["role"]), str(values["expression"]), str(values["canonical"]),
                   str(values["fingerprint"]), ActivationSpec.from_dict(values["activation"]))


@dataclass(frozen=True)
class ConfirmationPlan:
    """What a search's confirmation trains: ``functions`` on ``seeds`` at ``budget`` epochs (in the run's
    meta as ``confirmation``, so a report reads the plan the run followed)."""

    seeds: tuple[int, ...]
    budget: float
    functions: tuple[PlannedFunction, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"seeds": list(self.seeds), "budget": self.budget, "functions": [f.to_dict() for f in self.functions]}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ConfirmationPlan:
        return cls(tuple(int(s) for s in values["seeds"]), float(values["budget"]),
                   tuple(PlannedFunction.from_dict(f) for f in values["functions"]))


def plan(hall_of_fame: Sequence[HallOfFameEntry], baseline: str | Sequence[str], top: int,
         floor: float | None = None) -> list[PlannedFunction]:
    """The functions to confirm: the top ``top`` hall-of-fame entries that trained ok (of a Pareto archive,
    ``top`` members spread along it by cost, its cheapest and its most accurate included, among those whose
    fitness reaches ``floor``), then the baselines (a baseline that is also a finalist is confirmed once, as a
    baseline)."""
    bases = [PlannedFunction(Role.BASELINE, name, canonical(name), ActivationSpec(name).key(), ActivationSpec(name))
             for name in baseline_names(baseline)]
    taken = {function.key for function in bases}
    finalists: list[PlannedFunction] = []
    trained = [entry for entry in hall_of_fame if entry.ok and entry.n_runs]
    if is_front(trained):
        worth = [e for e in trained if e.key not in taken and (floor is None or e.fitness.value >= floor)]
        trained = spread(worth, top)
    for entry in trained:
        if len(finalists) == top:
            break
        if entry.key not in taken:
            learnable: dict[str, float | str] = {f"p{i}": 1.0 for i in range(_constants(entry))}
            finalists.append(PlannedFunction(Role.FINALIST, entry.canonical, entry.canonical, entry.key,
                                             ActivationSpec(entry.canonical, learnable=learnable)))
            taken.add(entry.key)
    return finalists + bases


def _constants(entry: HallOfFameEntry) -> int:
    """How many learnable constants (p0, p1, ...) a hall-of-fame function has."""
    first: Mapping[str, Any] = next(iter((entry.learned or {}).values()), {})
    return len([name for name in first if name.startswith("p")])


class ConfirmDatabase(Protocol):
    """What confirmation needs of the run database (:class:`afos.storage.store.RunStore` provides it)."""

    def last_generation(self) -> Generation | None: ...

    def set_meta(self, key: MetaKey, value: object) -> None: ...

    def evaluations(self, *, activation_key: str | None = None) -> list[Evaluation]: ...


def confirm(config: SearchConfig, store: ConfirmDatabase, evaluator: Evaluator, progress: Callable[[str], None],
            deadline: float | None = None) -> bool:
    """Plan the confirmation of a finished search, record the plan in the run's meta (``confirmation``) and
    have every (function, task, seed) run evaluated, seed-major, so that a stopped confirmation has all
    functions on its first seeds. Returns whether it completed.

    Confirmation runs are outside ``max_evals`` (their number is fixed: (confirm_top + baselines) x tasks x
    confirm_seeds) but inside the command's ``deadline`` (``time.monotonic()``, from ``time_limit``): past
    it, the confirmation stops with a line saying how to finish it. With no finalist nothing is trained:
    baselines alone confirm nothing."""
    saved = store.last_generation()
    relu = ActivationSpec(RELU).key()
    floor = _relu_floor(store.evaluations(activation_key=relu), config) if config.costed else None
    functions = plan(saved.hall_of_fame if saved else (), config.baseline, config.confirm_top, floor)
    finalists = sum(1 for f in functions if f.role is Role.FINALIST)
    if not finalists:
        progress("no finalist to confirm: no function of the hall of fame trained ok")
        return True
    seeds = confirm_seeds(config.seed, config.fitness_seeds, config.confirm_seeds)
    budget = config.confirm_epochs or config.train.epochs
    store.set_meta(MetaKey.CONFIRMATION, ConfirmationPlan(tuple(seeds), budget, tuple(functions)).to_dict())
    progress(f"confirming {counted(finalists, 'finalist')} and {counted(len(functions) - finalists, 'baseline')} "
             "on fresh seeds "
             f"{seeds[0]}..{seeds[-1]} at {budget:g} epochs")
    requests = [EvalRequest.make(f.activation, task, budget=budget, seed=seed, label=f.canonical, phase=Phase.CONFIRM)
                for seed in seeds for task in task_configs(config) for f in functions]
    try:
        evaluator.ensure(requests, deadline=deadline)
    except TimeUp:
        progress("confirmation stopped at the time limit; the report shows the seeds it finished. Resume with a "
                 "larger --time-limit to finish it")
        return False
    return True


def _relu_floor(records: Sequence[Evaluation], config: SearchConfig) -> float | None:
    """ReLU's search fitness less one spread, from ``records`` (ReLU's, as a baseline or a seed expression):
    the mean less the standard deviation of its scores at the full budget on the fitness seeds (None when it
    has none).

    Why a floor for a front's confirmation: every front holds functions that cost little and do little (the
    identity costs 0); one that ReLU beats by more than the noise cannot beat ReLU, which is what the
    confirmation tests, so its fresh seeds would be spent for nothing."""
    protocols, seeds, full = task_protocols(config), set(fitness_seeds(config)), budgets(config)[-1]
    scores = [score(r, config.fitness) for r in records
              if r.budget == full and r.seed in seeds and protocols.get(r.task) == r.protocol]
    if not scores:
        return None
    return statistics.fmean(scores) - (statistics.stdev(scores) if len(scores) > 1 else 0.0)


#: The stored runs of a function on one seed over every task, or None while some are missing.
Lookup = Callable[[PlannedFunction, int], "list[Evaluation] | None"]


def summarise(functions: Sequence[PlannedFunction], seeds: Sequence[int], records: Lookup,
              alpha: float = ALPHA) -> list[Finalist]:
    """The finalists.csv rows from the stored confirmation runs (``records(function, seed)`` gives its runs
    over the tasks): the finalists whose every seed finished ok ranked by confirmed validation mean, then
    those that failed on some seed (verdict ``failed``, never tested on their survivors), then the
    baselines."""
    outcomes = {f.key: _outcomes(records, f, seeds) for f in functions}
    relu = next((f for f in functions if f.expression == RELU), None)
    relu_test = {s: test for s, (_, test) in outcomes[relu.key][0].items()} if relu else {}
    relu_done = relu is None or _stored_seeds(outcomes[relu.key]) == len(seeds)
    rows = [_Row(f, *outcomes[f.key], relu_test if f is not relu else {},
                 pending=_stored_seeds(outcomes[f.key]) < len(seeds) or not relu_done) for f in functions]
    finalists = [r for r in rows if r.role is Role.FINALIST]
    for side in ("greater", "less"):  # one-sided p of "better", then of "worse", each Holm-corrected
        tested = [(r, p) for r in finalists if (p := r.p[side]) is not None]
        for (row, _), corrected in zip(tested, holm([p for _, p in tested]) if tested else []):
            row.p_holm[side] = float(corrected)
    strongest = _strongest(functions, outcomes)
    if strongest is not None:
        strongest_test = {s: test for s, (_, test) in outcomes[strongest.key][0].items()}
        for row in finalists:
            row.against_strongest(strongest.expression, strongest_test)
        tested = [(r, p) for r in finalists if (p := r.p_strongest) is not None]
        for (row, _), corrected in zip(tested, holm([p for _, p in tested]) if tested else []):
            row.p_holm_strongest = float(corrected)
    finalists.sort(key=lambda r: (r.failed > 0, r.val_mean is None, -(r.val_mean or 0.0), r.fingerprint))
    ordered = finalists + [r for r in rows if r.role is Role.BASELINE]
    return [row.finalist(rank if row.role is Role.FINALIST else None, alpha) for rank, row in enumerate(ordered, 1)]


#: Per seed that finished ok on every task: (validation, test) accuracy averaged over the tasks.
SeedValues = dict[int, tuple[float, float]]


def _strongest(functions: Sequence[PlannedFunction],
               outcomes: Mapping[str, tuple[SeedValues, int]]) -> PlannedFunction | None:
    """The baseline with the best confirmed validation mean among those whose every seed finished."""
    clean = [f for f in functions if f.role is Role.BASELINE and outcomes[f.key][0] and not outcomes[f.key][1]]
    return max(clean, key=lambda f: (statistics.fmean(v for v, _ in outcomes[f.key][0].values()), f.key),
               default=None)


def _stored_seeds(outcome: tuple[SeedValues, int]) -> int:
    values, failed = outcome
    return len(values) + failed


def _outcomes(records: Lookup, function: PlannedFunction, seeds: Sequence[int]) -> tuple[SeedValues, int]:
    """The seeds' values of a function, and how many of its stored seeds failed on some task."""
    values: SeedValues = {}
    failed = 0
    for seed in seeds:
        runs = records(function, seed)
        if not runs:
            continue  # not trained yet (a confirmation still under way)
        if all(r.ok and r.val_accuracy is not None and r.test_accuracy is not None for r in runs):
            values[seed] = (statistics.fmean(r.val_accuracy or 0.0 for r in runs),
                            statistics.fmean(r.test_accuracy or 0.0 for r in runs))
        else:
            failed += 1
    return values, failed


class _Row:
    """The statistics of one function's confirmation, paired with ReLU's test accuracy by seed."""

    def __init__(self, function: PlannedFunction, values: SeedValues, failed: int,
                 relu_test: Mapping[int, float], *, pending: bool) -> None:
        self.role, self.expression = function.role, function.expression
        self.canonical, self.fingerprint = function.canonical, function.key
        self.failed, self.n_seeds = failed, len(values) + failed
        val, test = [v for v, _ in values.values()], [t for _, t in values.values()]
        self.val_mean, self.val_std = _mean(val), _std(val)
        self.test_mean, self.test_std, self.test_ci = _mean(test), _std(test), _interval(test, (0.0, 1.0))
        self.values = values
        # A function that failed on some seed is not tested on its survivors: diverging one time in five is
        # not better than ReLU however well the other four score. It is reported as failed instead. Nor is
        # one whose seeds (or ReLU's) are not all trained yet: pending.
        self.pending = function.role is Role.FINALIST and pending
        self.testable = not (function.role is Role.FINALIST and failed) and not self.pending
        self.delta, self.delta_ci, self.p = self._paired(relu_test)
        self.p_holm: dict[str, float | None] = {"greater": None, "less": None}
        self.strongest: str | None = None
        self.delta_strongest: float | None = None
        self.strongest_ci: tuple[float | None, float | None] = (None, None)
        self.p_strongest: float | None = None
        self.p_holm_strongest: float | None = None

    def _paired(self, other_test: Mapping[int, float]) -> tuple[float | None, tuple[float | None, float | None],
                                                               dict[str, float | None]]:
        """Mean paired test difference to ``other_test`` (by seed), its 95 % interval, and the one-sided
        p-values of "greater" and "less" (None where there is nothing to test)."""
        mine = [self.values[s][1] for s in self.values if s in other_test]
        theirs = [other_test[s] for s in self.values if s in other_test]
        differences = [a - b for a, b in zip(mine, theirs)]
        varies = len(differences) >= 2 and (len(set(differences)) > 1 or differences[0] != 0)
        tested = varies and self.testable
        return (_mean(differences), _interval(differences, (-1.0, 1.0)),
                {side: _paired_p(mine, theirs, side) if tested else None for side in ("greater", "less")})

    def against_strongest(self, name: str, strongest_test: Mapping[int, float]) -> None:
        self.strongest = name
        self.delta_strongest, self.strongest_ci, p = self._paired(strongest_test)
        self.p_strongest = p["greater"]

    def finalist(self, rank: int | None, alpha: float) -> Finalist:
        better, worse = self.p_holm["greater"], self.p_holm["less"]
        if self.role is Role.BASELINE:
            verdict = Verdict.BASELINE
        elif self.failed:
            verdict = Verdict.FAILED
        elif self.pending:
            verdict = Verdict.PENDING
        elif better is not None and better < alpha:
            verdict = Verdict.BETTER
        elif worse is not None and worse < alpha:
            verdict = Verdict.WORSE
        else:
            verdict = Verdict.NO_DIFFERENCE
        return Finalist(rank, self.role, self.expression, self.canonical, self.fingerprint, self.n_seeds,
                        self.failed, self.val_mean, self.val_std, self.test_mean, self.test_std, *self.test_ci,
                        self.delta, *self.delta_ci, self.p["greater"], better, verdict, self.strongest,
                        self.delta_strongest, self.p_holm_strongest, *self.strongest_ci)


def _paired_p(candidate: list[float], baseline: list[float], side: str) -> float | None:
    p = float(sps.ttest_rel(candidate, baseline, alternative=side).pvalue)
    return None if math.isnan(p) else p


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _std(values: Sequence[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def _interval(values: Sequence[float], bounds: tuple[float, float] = (-math.inf, math.inf),
              ) -> tuple[float | None, float | None]:
    """95 % t-interval of the mean (None with fewer than two values), cut to ``bounds``: with few seeds
    the t-interval of an accuracy reaches past 1 ("0.3773 – 1.0127" at 2 seeds), which no accuracy can."""
    if len(values) < 2:
        return None, None
    mean, sem = statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))
    half = float(sps.t.ppf(0.975, len(values) - 1)) * sem
    return max(bounds[0], mean - half), min(bounds[1], mean + half)
