"""Running a grid through the evaluation layer, and reading its stored runs back (:class:`Results`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from afos.errors import UserError
from afos.evaluation import Evaluator, RunDatabase
from afos.grid.spec import Function, Run, Spec, resolve_functions
from afos.records.evaluation import Evaluation
from afos.records.runs import MetaKey, Role
from afos.text import counted
from afos.training.protocol import check_tasks

Progress = Callable[[str], None]

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
    store.set_meta(MetaKey.KIND, spec.kind)
    store.set_meta(MetaKey.GRID, spec.to_dict())
    for note in spec.notes:
        say(f"note: {note}")
    requests = [spec.request(function, task, seed) for seed, task, function in spec.runs()]
    stored = sum(1 for request in requests if store.find_evaluation(request.key) is not None)
    if stored:
        say(f"resuming: {stored} of {counted(len(requests), 'run')} already in the run database")
    evaluator.ensure(requests)
    return collect(spec, store)


class GridDatabase(RunDatabase, Protocol):
    """What a grid needs of its run database (:class:`afos.store.RunStore` provides it)."""

    def set_meta(self, key: MetaKey, value: object) -> None: ...


# --------------------------------------------------------------------------------------- the results


@dataclass(frozen=True)
class Results:
    """The stored runs of one grid, or of several merged grids: ``runs[(fingerprint, task)][seed]``.

    ``settings[task]`` is the (protocol, budget) its runs were trained under; ``specs`` the grids read.
    """

    functions: tuple[Function, ...]
    cases: tuple[str, ...]
    runs: dict[tuple[str, str], dict[int, Evaluation]]
    settings: dict[str, tuple[str, float]]
    specs: tuple[Spec, ...]
    sources: tuple[str, ...]
    notes: tuple[str, ...] = ()

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
    return Results(spec.functions, spec.tasks, runs, settings, (spec,), (source,), tuple(notes))


def merge(parts: Sequence[Results]) -> Results:
    """One result set from several stored grids (``compare --from``); a task trained under different
    settings in two of them is an error, because pooling runs of different protocols would compare unlike
    with unlike. A function that is a baseline in any grid is a baseline; the first grid's run of a seed wins."""
    if not parts:
        raise UserError("--from needs at least one run folder or afos.db file")
    settings: dict[str, tuple[str, float]] = {}
    functions: dict[str, Function] = {}
    runs: dict[tuple[str, str], dict[int, Evaluation]] = {}
    for part in parts:
        for task, setting in part.settings.items():
            if settings.setdefault(task, setting) != setting:
                raise UserError(f"task {task} was trained under different settings in {parts[0].sources[0]} and "
                                f"{part.sources[0]} (protocol/epochs differ); compare them separately")
        for function in part.functions:
            first = functions.setdefault(function.fingerprint, function)
            if function.role is Role.BASELINE:
                functions[function.fingerprint] = replace(first, role=Role.BASELINE)
        for key, by_seed in part.runs.items():
            mine = runs.setdefault(key, {})
            mine.update({seed: record for seed, record in by_seed.items() if seed not in mine})
    return Results(tuple(functions.values()), tuple(dict.fromkeys(c for part in parts for c in part.cases)), runs,
                   settings, tuple(s for part in parts for s in part.specs),
                   tuple(s for part in parts for s in part.sources), tuple(n for part in parts for n in part.notes))


def select(results: Results, candidates: Sequence[str] = (), baselines: Sequence[str] | None = None) -> Results:
    """Choose the functions and roles of a stored comparison: named candidates replace the stored ones, a
    given baseline list replaces the stored baselines, and whatever is not named keeps its stored role
    (any text of a function names it). Cases lacking a run of a chosen function are dropped, with a note."""
    stored = {f.fingerprint: f for f in results.functions}
    chosen, notes = results.functions, list(results.notes)
    if candidates or baselines is not None:
        keep = {role: [f.name for f in results.functions if f.role is role] for role in (Role.CANDIDATE, Role.BASELINE)}
        wanted, merged = resolve_functions(candidates or keep[Role.CANDIDATE],
                                           keep[Role.BASELINE] if baselines is None else baselines)
        absent = [f.name for f in wanted if f.fingerprint not in stored]
        if absent:
            raise UserError(f"not in the stored runs: {', '.join(absent)}")
        chosen, notes = tuple(replace(stored[f.fingerprint], role=f.role) for f in wanted), notes + merged
    complete = [case for case in results.cases if all((f.fingerprint, case) in results.runs for f in chosen)]
    dropped = [case for case in results.cases if case not in complete]
    if dropped:
        notes.append(f"cases left out because some function has no run there: {', '.join(dropped)}")
    if not complete:
        raise UserError("no case has runs of every chosen function")
    return replace(results, functions=tuple(chosen), cases=tuple(complete), notes=tuple(notes))
