"""Rigorous evaluation of fixed activation functions: a grid of training runs and its statistics.

``afos evaluate`` and ``afos compare`` share one engine. A :class:`Spec` names the grid (functions x tasks
x seeds under one training configuration); :func:`run_grid` trains every run of it that the run database
does not already hold, so a killed grid resumes by running the same command again; :func:`collect` reads
the grid back from the database and :func:`analyse` turns it into the across-case statistics of
:mod:`afos.stats`. Statistics are always computed from the database, never from memory, so
``afos compare --from`` reproduces them without training.

Reporting metric: cells are **test accuracy**. The functions compared here are fixed before the grid
runs, so nothing is selected on these numbers and the held-out test split is the unbiased final measure;
validation accuracy (the search's fitness, on which a searched function *was* selected and is therefore
optimistically biased) is reported alongside. A cell counts as failed when any of its seeds failed
(diverged, error, timeout, ...): an unreliable function must not be averaged over its lucky seeds only.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy import stats as sps

from afos import data, models, stats
from afos.compile import ActivationSpec, resolve_activation
from afos.config import load_config, with_overrides
from afos.errors import ConfigError, UserError
from afos.evaluation import (
    EvalKey,
    EvalRequest,
    Evaluation,
    Evaluator,
    Origin,
    Phase,
    RunDatabase,
    check_tasks,
    protocol_id,
    resolve_train,
    split_task,
)
from afos.space.display import display_form
from afos.space.families import FAMILIES
from afos.space.parse import parse
from afos.stats import format_duration, format_number
from afos.train import TrainConfig

#: Epochs per run unless the user or a config file says otherwise. On digits the cosine schedule has
#: converged by then (about 97% validation accuracy), so more epochs would cost time without changing ranks.
DEFAULT_EPOCHS = 30.0
DEFAULT_SEEDS = 3
DEFAULT_BASELINES = ("relu", "silu", "gelu", "mish")
ALPHA = 0.05
#: The metric of the results matrix and every test; see the module docstring for why it is test accuracy.
METRIC = "test_accuracy"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Function:
    """A function of the grid: the text the user wrote (its label everywhere) and its identity."""

    name: str
    canonical: str
    fingerprint: str
    role: str  # "candidate" | "baseline"
    activation: dict[str, Any] = field(default_factory=dict)  # ActivationSpec.to_dict(): what is trained


@dataclass(frozen=True)
class Run:
    """One stored training run of the grid."""

    function: Function
    task: str
    seed: int
    record: Evaluation


# ------------------------------------------------------------------------------------------ the spec


def resolve_functions(
    candidates: Sequence[str], baselines: Sequence[str] = (), *, learnable: Mapping[str, Any] | None = None,
    fixed: Mapping[str, float] | None = None, scope: str | None = None,
) -> tuple[list[Function], list[str]]:
    """Parse and fingerprint every function before anything trains, so a typo cannot cost a grid.

    ``learnable``/``fixed`` parameter settings apply to the candidates whose expression uses those
    names (each name must occur in at least one); family names (``mila``, ``adaptive_tanh``, …) resolve
    to their parametric forms. Texts denoting one function (``silu`` and ``swish``) are trained once: the
    first text names it, and it is a baseline if any of its texts was listed as one. Returns the functions
    and notes saying what was merged.
    """
    specs = [(text, "candidate", _candidate_spec(text, learnable or {}, fixed or {}, scope)) for text in candidates]
    specs += [(text, "baseline", resolve_activation(text)) for text in baselines]
    used = {name for _, _, spec in specs for name in (*spec.learnable, *spec.fixed)}
    unused = sorted((set(learnable or {}) | set(fixed or {})) - used)
    if unused:
        raise UserError(f"parameter(s) {', '.join(unused)} occur in none of the expressions")
    merged: dict[str, Function] = {}
    notes = []
    for text, role, spec in specs:
        key = spec.key()
        first = merged.get(key)
        if first is None:
            shown = display_form(spec.expression, fixed=spec.fixed, learnable=spec.learnable)
            merged[key] = Function(text, shown, key, role, spec.to_dict())
            continue
        notes.append(f"{text!r} is the same function as {first.name!r}; it is evaluated once, as {first.name!r}")
        if role == "baseline":
            merged[key] = replace(first, role="baseline")
    return list(merged.values()), notes


def _candidate_spec(text: str, learnable: Mapping[str, Any], fixed: Mapping[str, float],
                    scope: str | None) -> ActivationSpec:
    """A candidate's spec with the parameter settings that concern it (names its expression uses)."""
    family = FAMILIES.get(text.strip().lower())
    expression = family.expression if family else text
    declared = [*learnable, *fixed, *(family.learnable if family else ()), *(family.fixed if family else ())]
    names = {str(s) for s in parse(expression, params=declared).free_symbols} - {"x"}
    return resolve_activation(text, {k: v for k, v in learnable.items() if k in names},
                              {k: v for k, v in fixed.items() if k in names}, scope)


def _model_name(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _check_dataset(name: str) -> None:
    if name not in data.DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(data.DATASETS)}")


def make_tasks(datasets: Sequence[str], model_names: Sequence[str] = (), extra: Sequence[str] = ()) -> list[str]:
    """Every dataset with every model (each dataset's default model when none is named), then ``extra``.

    Names are normalised the way users type them (``CIFAR10``, ``small-cnn``); duplicates are dropped.
    """
    names = [d.strip().lower() for d in datasets]
    for name in names:
        _check_dataset(name)  # before default_model, whose error would not list the datasets
    chosen = [_model_name(m) for m in model_names]
    tasks = [f"{d}/{m or models.default_model(d)}" for d in names for m in (chosen or [""])]
    tasks += [f"{d.strip().lower()}/{_model_name(m)}" for d, _, m in (t.partition("/") for t in extra)]
    for task in tasks:
        split_task(task)
    return list(dict.fromkeys(tasks))


def train_config(config_path: str | Path | None, overrides: Mapping[str, Any]) -> TrainConfig:
    """The training settings: ``overrides`` (None = not given) over the file's ``[train]`` table over
    :data:`DEFAULT_EPOCHS` and the :class:`TrainConfig` defaults.

    A search config may be passed as is to evaluate under the search's protocol; its search keys are ignored.
    The budget is counted in epochs because it is part of each run's identity in the database.
    """
    values = with_overrides({"epochs": DEFAULT_EPOCHS, **load_config(config_path).get("train", {})}, overrides)
    config = TrainConfig.from_dict(values)
    if config.steps is not None:
        raise ConfigError("evaluate/compare budgets are in epochs; remove `steps` from the [train] table")
    return config


def spec_from_options(kind: str, candidates: Sequence[str], baselines: Sequence[str], *,
                      datasets: Sequence[str] = (), model_names: Sequence[str] = (), tasks: Sequence[str] = (),
                      seeds: int | None = None, config_path: str | Path | None = None,
                      overrides: Mapping[str, Any] | None = None,
                      parameters: Mapping[str, Any] | None = None) -> Spec:
    """The grid that command-line options describe.

    Tasks are ``datasets`` x ``model_names`` plus ``tasks``; with none of them the config file's
    ``[train]`` dataset and model are used (else digits with its default model). A config's model is not
    applied to datasets named on the command line, where each dataset's default model is the better guess.
    ``parameters`` (``learnable``, ``fixed``, ``scope``) go to :func:`resolve_functions`.
    """
    train = train_config(config_path, overrides or {})
    if not datasets and not tasks:
        datasets, model_names = [train.dataset], model_names or ([train.model] if train.model else [])
    grid_tasks = make_tasks(datasets, model_names, tasks)
    return Spec.build(kind, candidates, baselines, grid_tasks, DEFAULT_SEEDS if seeds is None else seeds, train,
                      parameters)


@dataclass
class Spec:
    """What a grid trains: ``functions`` x ``tasks`` x ``seeds``, each run ``budget`` epochs.

    ``train`` holds the shared training settings (dataset, model and seed are set per run) and
    ``protocols`` each task's protocol hash; both are stored in the database with the grid, so that
    reading it back never depends on the training defaults of a later afos version.
    """

    kind: str  # "evaluate" | "compare"
    functions: list[Function]
    tasks: list[str]
    seeds: list[int]
    budget: float
    train: dict[str, Any]
    protocols: dict[str, str]
    notes: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, kind: str, candidates: Sequence[str], baselines: Sequence[str], tasks: Sequence[str],
              seeds: int, train: TrainConfig, parameters: Mapping[str, Any] | None = None) -> Spec:
        """Validate everything a grid needs before it starts; raises UserError subclasses."""
        if seeds < 1:
            raise ConfigError(f"--seeds must be at least 1, got {seeds}")
        if not tasks:
            raise ConfigError("no task to run: name at least one dataset")
        functions, notes = resolve_functions(candidates, baselines, **(parameters or {}))
        settings = train.to_dict()
        protocols = {task: protocol_id(_task_config(settings, task)) for task in tasks}
        return cls(kind, functions, list(tasks), [train.seed + i for i in range(seeds)], float(train.epochs),
                   settings, protocols, notes)

    def config(self, task: str) -> TrainConfig:
        """The resolved training config of a task (budget and seed are set per request)."""
        return _task_config(self.train, task)

    def request(self, function: Function, task: str, seed: int) -> EvalRequest:
        return EvalRequest.make(ActivationSpec(**function.activation), self.config(task), budget=self.budget,
                                seed=seed, label=function.canonical, phase=Phase.GRID)

    def runs(self) -> list[tuple[int, str, Function]]:
        """Seed-major order: a grid stopped half-way has every function on every task for its first seeds."""
        return [(seed, task, function) for seed in self.seeds for task in self.tasks for function in self.functions]

    def key(self, function: Function, task: str, seed: int) -> EvalKey:
        """The run database key of one run, under the protocol stored with the grid (so that reading a grid
        back never depends on how a later afos computes protocols)."""
        return EvalKey(function.fingerprint, self.protocols[task], self.budget, seed, task)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Spec:
        settings = dict(values)
        settings["functions"] = [Function(**f) for f in values["functions"]]
        return cls(**settings)


def _task_config(settings: Mapping[str, Any], task: str) -> TrainConfig:
    dataset, model = split_task(task)
    return resolve_train(TrainConfig.from_dict({**settings, "dataset": dataset, "model": model}))


# ------------------------------------------------------------------------------------------ the grid


def check_grid(spec: Spec) -> None:
    """Check every dataset and model of the grid before anything is created or trained."""
    check_tasks(spec.config(task) for task in spec.tasks)


def run_grid(spec: Spec, store: GridDatabase, evaluator: Evaluator, *, progress: Progress | None = None) -> Results:
    """Have every run of ``spec`` evaluated (stored runs are read back, other runs' copied, the rest
    trained) and return the grid as stored.

    Stored runs are facts, failures included (on the CPU a rerun would repeat them bit for bit), so they are
    never repeated: running a killed grid again resumes it, except runs lost with their worker, which are
    retried. ``progress`` gets the grid's notes and a resume line; the evaluator reports each new record.
    """
    say = progress or (lambda message: None)
    store.set_meta("kind", spec.kind)
    store.set_meta("grid", spec.to_dict())
    for note in spec.notes:
        say(f"note: {note}")
    requests = [spec.request(function, task, seed) for seed, task, function in spec.runs()]
    stored = sum(1 for request in requests if store.find_evaluation(request.key) is not None)
    if stored:
        say(f"resuming: {stored} of {len(requests)} runs are already in the run database")
    evaluator.ensure(requests)
    return collect(spec, store)


class GridDatabase(RunDatabase, Protocol):
    """What a grid needs of its run database (:class:`afos.store.RunStore` provides it)."""

    def set_meta(self, key: str, value: object) -> None: ...


class GridProgress:
    """One progress line per record a grid adds (``run i/n``, status, accuracy, ETA), then ``on_record``."""

    def __init__(self, spec: Spec, store: RunDatabase, say: Progress,
                 on_record: Callable[[Evaluation], None] | None = None) -> None:
        self.names = {f.fingerprint: f for f in spec.functions}
        self.todo = sum(1 for seed, task, fn in spec.runs() if store.find_evaluation(spec.key(fn, task, seed)) is None)
        self.say, self.on_record = say, on_record
        self.done, self.started = 0, time.monotonic()

    def __call__(self, record: Evaluation) -> None:
        self.done += 1
        function = self.names[record.activation_key]
        eta = (time.monotonic() - self.started) / self.done * max(0, self.todo - self.done)
        where = f"reused from {record.source}" if record.origin is Origin.REUSED else f"{record.seconds:.1f}s"
        self.say(f"run {self.done}/{self.todo}  {function.name}  {record.task}  seed {record.seed}  "
                 f"{record.status.value}  val_acc {format_number(record.val_accuracy)}  {where}  ETA {format_duration(eta)}")
        if self.on_record is not None:
            self.on_record(record)


# --------------------------------------------------------------------------------------- the results


@dataclass
class Results:
    """The stored runs of one grid, or of several merged grids: ``runs[(fingerprint, task)][seed]``.

    ``settings[task]`` is the (protocol, budget) its runs were trained under; ``specs`` the grids read.
    """

    functions: list[Function]
    cases: list[str]
    runs: dict[tuple[str, str], dict[int, Evaluation]]
    settings: dict[str, tuple[str, float]]
    specs: list[Spec]
    sources: list[str]
    notes: list[str] = field(default_factory=list)

    def of(self, function: Function, case: str) -> list[Run]:
        """The runs of one cell, by seed."""
        by_seed = self.runs.get((function.fingerprint, case), {})
        return [Run(function, case, seed, by_seed[seed]) for seed in sorted(by_seed)]

    def all_runs(self) -> list[Run]:
        return [run for function in self.functions for case in self.cases for run in self.of(function, case)]


def collect(spec: Spec, store: RunDatabase, source: str = "") -> Results:
    """The runs of ``spec`` that ``store`` holds (all of them once :func:`run_grid` has finished)."""
    runs: dict[tuple[str, str], dict[int, Evaluation]] = {}
    missing = 0
    for seed, task, function in spec.runs():
        record = store.find_evaluation(spec.key(function, task, seed))
        if record is None:
            missing += 1
        else:
            runs.setdefault((function.fingerprint, task), {})[seed] = record
    notes = list(spec.notes)
    if missing:
        notes.append(f"{missing} of {len(spec.runs())} runs of the grid in {source or 'the run database'} are "
                     "missing (it did not finish)")
    settings = {task: (spec.protocols[task], spec.budget) for task in spec.tasks}
    return Results(list(spec.functions), list(spec.tasks), runs, settings, [spec], [source], notes)


def merge(parts: list[Results]) -> Results:
    """One result set from several stored grids (``compare --from``); a task trained under different
    settings in two of them is an error,
    because pooling runs of different protocols would compare unlike with unlike."""
    if not parts:
        raise UserError("--from needs at least one run folder or afos.db file")
    merged = parts[0]
    for part in parts[1:]:
        for task, setting in part.settings.items():
            known = merged.settings.setdefault(task, setting)
            if known != setting:
                raise UserError(f"task {task} was trained under different settings in {merged.sources[0]} and "
                                f"{part.sources[0]} (protocol/epochs differ); compare them separately")
        functions = {f.fingerprint: f for f in merged.functions}
        for function in part.functions:
            first = functions.setdefault(function.fingerprint, function)
            if function.role == "baseline":
                functions[function.fingerprint] = replace(first, role="baseline")
        for key, by_seed in part.runs.items():
            merged.runs.setdefault(key, {}).update({s: r for s, r in by_seed.items() if s not in merged.runs[key]})
        merged = Results(list(functions.values()), list(dict.fromkeys(merged.cases + part.cases)), merged.runs,
                         merged.settings, merged.specs + part.specs, merged.sources + part.sources,
                         merged.notes + part.notes)
    return merged


def select(results: Results, candidates: Sequence[str] = (), baselines: Sequence[str] | None = None) -> Results:
    """Choose the functions and roles of a stored comparison: named candidates replace the stored ones, a
    given baseline list replaces the stored baselines, and whatever is not named keeps its stored role
    (any text of a function names it). Cases lacking a run of a chosen function are dropped, with a note."""
    stored = {f.fingerprint: f for f in results.functions}
    chosen, notes = results.functions, list(results.notes)
    if candidates or baselines is not None:
        keep = {role: [f.name for f in results.functions if f.role == role] for role in ("candidate", "baseline")}
        wanted, merged = resolve_functions(candidates or keep["candidate"],
                                           keep["baseline"] if baselines is None else baselines)
        absent = [f.name for f in wanted if f.fingerprint not in stored]
        if absent:
            raise UserError(f"not in the stored runs: {', '.join(absent)}")
        chosen, notes = [replace(stored[f.fingerprint], role=f.role) for f in wanted], notes + merged
    complete = [case for case in results.cases if all((f.fingerprint, case) in results.runs for f in chosen)]
    dropped = [case for case in results.cases if case not in complete]
    if dropped:
        notes.append(f"cases left out because some function has no run there: {', '.join(dropped)}")
    if not complete:
        raise UserError("no case has runs of every chosen function")
    return replace(results, functions=chosen, cases=complete, notes=notes)


# ---------------------------------------------------------------------------------------- the analysis


def cell_summary(runs: Sequence[Run]) -> dict[str, Any]:
    """Mean ± sample std over the successful seeds of one cell, with the status counts and whether it failed."""
    ok = [run.record for run in runs if run.record.ok]
    statuses = dict(Counter(run.record.status.value for run in runs))
    summary = {"n": len(runs), "ok": len(ok), "failed": len(ok) < len(runs), "statuses": statuses,
               "seconds": stats.finite_mean(run.record.seconds for run in runs)}
    for metric in ("test_accuracy", "val_accuracy", "test_f1", "val_f1"):
        values = [r.metric(metric) for r in ok if r.metric(metric) is not None]
        summary[metric] = stats.finite_mean(values)
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
    ranks = stats.average_ranks(matrix)
    friedman = stats.friedman(matrix)
    cd = stats.nemenyi_cd(len(names), friedman.n_cases, alpha)
    named_ranks = dict(zip(names, map(float, ranks)))
    analysis["average_ranks"] = named_ranks
    analysis["friedman"] = {**friedman.to_dict(), "smallest_possible_p": friedman_floor(friedman.n_cases, len(names))}
    analysis["posthoc"]["nemenyi"] = {
        "critical_difference": cd,
        "pairs": [p.to_dict() for p in stats.nemenyi_pairs(named_ranks, friedman.n_cases, alpha)],
        "groups": stats.nemenyi_groups(named_ranks, cd),
    }
    candidates = [f.name for f in functions if f.role == "candidate"]
    baselines = [f.name for f in functions if f.role == "baseline"]
    if candidates and baselines:
        rows = stats.wilcoxon_holm(matrix, names, candidates, baselines, alpha)
        analysis["posthoc"]["wilcoxon_holm"] = [r.to_dict() for r in rows]
        pvalues = _per_case_pvalues(matrix, functions, cases, results, alpha)
        analysis["wins"] = [w.to_dict() for w in stats.wins(matrix, names, candidates, baselines, pvalues, alpha)]


def friedman_floor(n_cases: int, k: int) -> float:
    """The smallest p the Friedman chi-square can reach with ``n_cases`` cases and ``k`` functions: every
    case ranking the functions identically gives the largest statistic, N(k-1)."""
    return float(sps.chi2.sf(n_cases * (k - 1), k - 1))


def _per_case_pvalues(matrix: np.ndarray, functions: list[Function], cases: list[str], results: Results,
                      alpha: float) -> dict[str, list[float | None]]:
    """Per candidate and case, Welch's test over seeds against that case's best baseline."""
    names = [f.name for f in functions]
    by_name = {f.name: f for f in functions}
    best = stats.best_baselines(matrix, names, [f.name for f in functions if f.role == "baseline"])
    pvalues: dict[str, list[float | None]] = {}
    for function in (f for f in functions if f.role == "candidate"):
        pvalues[function.name] = [
            None if baseline is None else stats.per_case_significance(
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
