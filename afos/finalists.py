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

from afos.compile import ActivationSpec
from afos.evaluation import EvalRequest, Evaluation, Evaluator, Phase
from afos.search import SearchConfig, task_configs
from afos.space.parse import canonical
from afos.stats import holm

ALPHA = 0.05
RELU = "relu"

FINALIST_COLUMNS = ("rank", "role", "expression", "canonical", "fingerprint", "n_seeds", "failed", "val_mean",
                    "val_std", "test_mean", "test_std", "test_ci_low", "test_ci_high", "delta_vs_relu",
                    "delta_ci_low", "delta_ci_high", "p_vs_relu", "p_holm", "verdict")


@dataclass(frozen=True)
class Finalist:
    """One row of ``finalists.csv``: a confirmed function or a baseline. Accuracies are fractions;
    ``delta_vs_relu`` is the mean paired test-accuracy difference to ReLU."""

    rank: int | None
    role: str  # "finalist" | "baseline"
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
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def confirm_seeds(seed: int, fitness_seeds: int, count: int) -> list[int]:
    """Seeds no fitness run of the search used: the ones right after its fitness seeds."""
    return list(range(seed + fitness_seeds, seed + fitness_seeds + count))


def baseline_names(baseline: str | Sequence[str]) -> list[str]:
    """ReLU always, then the config's baselines, each once."""
    names = [baseline] if isinstance(baseline, str) else list(baseline)
    return list(dict.fromkeys([RELU, *names]))


def plan(hall_of_fame: Sequence[Mapping[str, Any]], baseline: str | Sequence[str], top: int) -> list[dict[str, Any]]:
    """The functions to confirm: the top ``top`` hall-of-fame entries that trained ok, then the baselines
    (a baseline that is also a finalist is confirmed once, as a baseline)."""
    bases = [{"role": "baseline", "expression": name, "canonical": canonical(name),
              "activation": ActivationSpec(name).to_dict()} for name in baseline_names(baseline)]
    for entry in bases:
        entry["fingerprint"] = ActivationSpec(**entry["activation"]).key()
    taken = {entry["fingerprint"] for entry in bases}
    finalists = []
    for entry in hall_of_fame:
        if len(finalists) == top:
            break
        if entry.get("ok", True) and entry.get("n_runs", 1) and entry["fingerprint"] not in taken:
            learnable = {f"p{i}": 1.0 for i in range(_constants(entry))}
            finalists.append({"role": "finalist", "expression": entry["canonical"], "canonical": entry["canonical"],
                              "fingerprint": entry["fingerprint"],
                              "activation": ActivationSpec(entry["canonical"], learnable=learnable).to_dict()})
            taken.add(entry["fingerprint"])
    return finalists + bases


def _constants(entry: Mapping[str, Any]) -> int:
    """How many learnable constants (p0, p1, ...) a hall-of-fame function has."""
    first = next(iter((entry.get("learned") or {}).values()), {})
    return len([name for name in first if name.startswith("p")])


class ConfirmDatabase(Protocol):
    """What confirmation needs of the run database (:class:`afos.store.RunStore` provides it)."""

    def last_generation(self) -> dict | None: ...

    def set_meta(self, key: str, value: object) -> None: ...


def confirm(config: SearchConfig, store: ConfirmDatabase, evaluator: Evaluator, progress: Callable[[str], None]) -> None:
    """Plan the confirmation of a finished search, record the plan in the run's meta (``confirmation``) and
    have every (function, task, seed) run evaluated, seed-major, so that a stopped confirmation has all
    functions on its first seeds. Confirmation runs are outside ``max_evals`` and ``time_limit``, which
    bound the search: their number is fixed, (confirm_top + baselines) x tasks x confirm_seeds."""
    saved = store.last_generation()
    functions = plan(saved["hall_of_fame"] if saved else [], config.baseline, config.confirm_top)
    seeds = confirm_seeds(config.seed, config.fitness_seeds, config.confirm_seeds)
    budget = config.confirm_epochs or config.train.epochs
    store.set_meta("confirmation", {"seeds": seeds, "budget": budget, "functions": functions})
    finalists = sum(1 for f in functions if f["role"] == "finalist")
    progress(f"confirming {finalists} finalist(s) and {len(functions) - finalists} baseline(s) on fresh seeds "
             f"{seeds[0]}..{seeds[-1]} at {budget:g} epochs")
    requests = [EvalRequest.make(ActivationSpec(**f["activation"]), task, budget=budget, seed=seed,
                                 label=f["canonical"], phase=Phase.CONFIRM)
                for seed in seeds for task in task_configs(config) for f in functions]
    evaluator.ensure(requests)


#: The stored runs of a function on one seed over every task, or None while some are missing.
Lookup = Callable[[Mapping[str, Any], int], "list[Evaluation] | None"]


def summarise(functions: Sequence[Mapping[str, Any]], seeds: Sequence[int], records: Lookup,
              alpha: float = ALPHA) -> list[Finalist]:
    """The finalists.csv rows from the stored confirmation runs (``records(function, seed)`` gives its runs
    over the tasks); finalists ranked by confirmed validation mean, then the baselines."""
    per_seed = {}
    for function in functions:
        found = {seed: records(function, seed) for seed in seeds}
        per_seed[function["fingerprint"]] = {seed: _seed_values(runs) for seed, runs in found.items() if runs}
    relu = next((f for f in functions if f["expression"] == RELU), None)
    relu_test = {s: v[1] for s, v in per_seed[relu["fingerprint"]].items()} if relu else {}
    rows = []
    for function in functions:
        values = per_seed[function["fingerprint"]]
        rows.append(_row(function, values, relu_test if function is not relu else {}))
    finalists = [r for r in rows if r["role"] == "finalist"]
    for suffix in ("", "_less"):  # one-sided p of "better", then of "worse", each Holm-corrected
        pvalues = [r[f"p{suffix}"] for r in finalists]
        tested = [i for i, p in enumerate(pvalues) if p is not None]
        corrected = holm([pvalues[i] for i in tested]) if tested else []
        for i, p in zip(tested, corrected):
            finalists[i][f"p_holm{suffix}"] = float(p)
    finalists.sort(key=lambda r: (r["val_mean"] is None, -(r["val_mean"] or 0.0), r["fingerprint"]))
    ordered = finalists + [r for r in rows if r["role"] == "baseline"]
    return [_finalist(rank if row["role"] == "finalist" else None, row, alpha)
            for rank, row in enumerate(ordered, start=1)]


def _seed_values(runs: Sequence[Evaluation]) -> tuple[float | None, float | None]:
    """(validation, test) accuracy of one seed, averaged over the tasks; None if any task failed."""
    if not runs or not all(r.ok and r.val_accuracy is not None and r.test_accuracy is not None for r in runs):
        return None, None
    return statistics.fmean(r.val_accuracy for r in runs), statistics.fmean(r.test_accuracy for r in runs)


def _row(function: Mapping[str, Any], values: Mapping[int, tuple[float | None, float | None]],
         relu_test: Mapping[int, float | None]) -> dict[str, Any]:
    ok = {s: v for s, v in values.items() if v[0] is not None}
    val = [v[0] for v in ok.values()]
    test = [v[1] for v in ok.values()]
    paired = [(ok[s][1], relu_test[s]) for s in ok if relu_test.get(s) is not None]
    row = {**{k: function[k] for k in ("role", "expression", "canonical", "fingerprint")},
           "n_seeds": len(values), "failed": len(values) - len(ok), "val_mean": _mean(val), "val_std": _std(val),
           "test_mean": _mean(test), "test_std": _std(test), "test_ci": _interval(test), "delta": None,
           "delta_ci": (None, None), "p": None, "p_less": None, "p_holm": None, "p_holm_less": None}
    if len(paired) >= 2:
        differences = [a - b for a, b in paired]
        row["delta"], row["delta_ci"] = statistics.fmean(differences), _interval(differences)
        if any(d != differences[0] for d in differences) or differences[0] != 0:
            row["p"] = _paired_p([a for a, _ in paired], [b for _, b in paired], "greater")
            row["p_less"] = _paired_p([a for a, _ in paired], [b for _, b in paired], "less")
    elif len(paired) == 1:
        row["delta"] = paired[0][0] - paired[0][1]
    return row


def _paired_p(candidate: list[float], baseline: list[float], side: str) -> float | None:
    result = sps.ttest_rel(candidate, baseline, alternative=side)
    p = float(result.pvalue)
    return None if math.isnan(p) else p


def _finalist(rank: int | None, row: Mapping[str, Any], alpha: float) -> Finalist:
    if row["role"] == "baseline":
        verdict = "baseline"
    elif row["p_holm"] is not None and row["p_holm"] < alpha:
        verdict = "better"
    elif row["p_holm_less"] is not None and row["p_holm_less"] < alpha:
        verdict = "worse"
    elif row["failed"] == row["n_seeds"]:
        verdict = "failed"
    else:
        verdict = "no difference"
    return Finalist(rank, row["role"], row["expression"], row["canonical"], row["fingerprint"], row["n_seeds"],
                    row["failed"], row["val_mean"], row["val_std"], row["test_mean"], row["test_std"],
                    *row["test_ci"], row["delta"], *row["delta_ci"], row["p"], row["p_holm"], verdict)


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _std(values: Sequence[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def _interval(values: Sequence[float]) -> tuple[float | None, float | None]:
    """95 % t-interval of the mean (None with fewer than two values)."""
    if len(values) < 2:
        return None, None
    mean, sem = statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))
    half = float(sps.t.ppf(0.975, len(values) - 1)) * sem
    return mean - half, mean + half


def verdict_sentence(rows: Sequence[Finalist]) -> str:
    """The one sentence a search ends with: does any confirmed finalist beat ReLU beyond noise?"""
    finalists = [r for r in rows if r.role == "finalist"]
    if not finalists:
        return "No finalist was confirmed (no function of the hall of fame trained ok)."
    better = [r for r in finalists if r.verdict == "better"]
    if better:
        best = better[0]
        return (f"{best.canonical} beats ReLU: {_points(best.delta_vs_relu)} points test accuracy "
                f"(95 % CI {_points(best.delta_ci_low, sign=False)} – {_points(best.delta_ci_high, sign=False)}), "
                f"p_holm = {best.p_holm:.3g}, {best.n_seeds} seeds.")
    best = finalists[0]
    spread = "" if best.delta_ci_high is None or best.delta_vs_relu is None else \
        f" (95 % CI {_points(best.delta_ci_low, sign=False)} – {_points(best.delta_ci_high, sign=False)})"
    p = "" if best.p_holm is None else f", p_holm = {best.p_holm:.3g}"
    return (f"No finalist beats ReLU beyond noise (best by confirmed validation: {best.canonical}, "
            f"{_points(best.delta_vs_relu)} points test{spread}{p}, {best.n_seeds} seeds).")


def _points(value: float | None, *, sign: bool = True) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:+.2f}" if sign else f"{100 * value:.2f}"
