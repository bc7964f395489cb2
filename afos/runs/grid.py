"""Running ``afos evaluate`` and ``afos compare`` grids in run folders, and comparisons of stored grids."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from afos.evaluation import Evaluator
from afos.execution.contract import Executor
from afos.grid.results import Results, check_grid, run_grid, select
from afos.grid.sources import load_results
from afos.grid.spec import Spec
from afos.records import Evaluation
from afos.reporting.grid_report import write_comparison, write_evaluation
from afos.runs.progress import GridProgress, Progress
from afos.storage.siblings import SiblingRuns
from afos.storage.store import RunStore


def default_out(kind: str) -> Path:
    """``results/<kind>-<time>``, beside the search runs; rerunning with it as ``--out`` resumes the grid."""
    return Path("results") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


# ------------------------------------------------------------------------------------- entry points


def evaluate(spec: Spec, out: str | Path, *, executor: Executor, progress: Progress | None = None,
             on_record: Callable[[Evaluation], None] | None = None, reuse: bool = True) -> Results:
    """Run (or resume) a one-case grid and write results.json/.csv/.md, runs.csv and curves.png."""
    results = _run(spec, Path(out), executor, progress, on_record, reuse)
    write_evaluation(Path(out), results)
    return results


def compare(spec: Spec, out: str | Path, *, executor: Executor, progress: Progress | None = None,
            on_record: Callable[[Evaluation], None] | None = None, reuse: bool = True) -> dict[str, Any]:
    """Run (or resume) a grid, analyse it and write the comparison files; returns the analysis."""
    return write_comparison(Path(out), _run(spec, Path(out), executor, progress, on_record, reuse))


def _run(spec: Spec, out: Path, executor: Executor, progress: Progress | None,
         on_record: Callable[[Evaluation], None] | None, reuse: bool) -> Results:
    """Open the grid's database and the cache of its sibling runs (``reuse``), and run the grid.

    Datasets and models are checked before the folder is created, so a bad task leaves nothing behind.
    """
    check_grid(spec)
    say = progress or (lambda message: None)
    with RunStore(out / "afos.db", meta={"kind": spec.kind}) as store, \
            (SiblingRuns(out.parent, out) if reuse else contextlib.nullcontext()) as cache:
        evaluator = Evaluator(store, executor, cache=cache, on_record=GridProgress(spec, store, say, on_record))
        store.set_meta("status", "running")
        try:
            results = run_grid(spec, store, evaluator, progress=say)
        except KeyboardInterrupt:
            store.set_meta("status", "interrupted")  # every finished run is already committed
            raise
        store.set_meta("status", "finished")
        return replace(results, sources=[str(store.path)])


def compare_stored(sources: Sequence[str | Path], out: str | Path, candidates: Sequence[str] = (),
                   baselines: Sequence[str] | None = None) -> dict[str, Any]:
    """Recompute a comparison from stored grids (no training); names restrict the functions and set roles."""
    return write_comparison(Path(out), select(load_results(sources), candidates, baselines))
