"""Running ``afos evaluate`` and ``afos compare`` grids in run folders, and comparisons of stored grids."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from afos.execution.contract import Executor
from afos.grid.analysis import GridAnalysis
from afos.grid.results import Results, check_grid, run_grid, select
from afos.grid.sources import load_results
from afos.grid.spec import Spec
from afos.records.runs import MetaKey, RunStatus
from afos.reporting.grid_report import write_comparison, write_evaluation
from afos.runs.lifecycle import DEFAULT_OPTIONS, Options, Session, run_session
from afos.storage.layout import run_database
from afos.storage.store import RunStore
from afos.text import counted


def default_out(kind: str) -> Path:
    """``results/<kind>-<time>``, beside the search runs; rerunning with it as ``--out`` resumes the grid."""
    return Path("results") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


# ------------------------------------------------------------------------------------- entry points


def evaluate(spec: Spec, out: str | Path, *, executor: Executor, options: Options = DEFAULT_OPTIONS) -> Results:
    """Run (or resume) a one-case grid and write results.json/.csv/.md, runs.csv and curves.png."""
    results = _run(spec, Path(out), executor, options)
    write_evaluation(Path(out), results)
    return results


def compare(spec: Spec, out: str | Path, *, executor: Executor, options: Options = DEFAULT_OPTIONS) -> GridAnalysis:
    """Run (or resume) a grid, analyse it and write the comparison files; returns the analysis."""
    return write_comparison(Path(out), _run(spec, Path(out), executor, options))


def _run(spec: Spec, out: Path, executor: Executor, options: Options) -> Results:
    """Run the grid in ``out`` under the run lifecycle; the results as stored.

    Datasets and models are checked before the folder is created, so a bad task leaves nothing behind.
    """
    check_grid(spec)  # before the line below: a grid that cannot start says nothing of a folder it never makes
    if options.echo:
        options.echo(f"{spec.kind.value}: {counted(len(spec.runs()), 'run')} into {out}")
    names = {f.fingerprint: f.name for f in spec.functions}
    missing: list[Results] = []

    def work(session: Session) -> RunStatus:
        missing.append(run_grid(spec, session.store, session.evaluator, progress=session.log))
        return RunStatus.FINISHED

    def expected(store: RunStore) -> int:
        return store.count_evaluations() + sum(1 for seed, task, function in spec.runs()
                                               if store.find_evaluation(spec.key(function, task, seed)) is None)

    run_session(out, spec.kind, {MetaKey.GRID: spec.to_dict()}, executor, options, work, expected=expected,
                label=lambda record: names.get(record.activation_key, record.expression))
    return replace(missing[0], sources=(str(run_database(out)),))


def compare_stored(sources: Sequence[str | Path], out: str | Path, candidates: Sequence[str] = (),
                   baselines: Sequence[str] | None = None) -> GridAnalysis:
    """Recompute a comparison from stored grids (no training); names restrict the functions and set roles."""
    return write_comparison(Path(out), select(load_results(sources), candidates, baselines))
