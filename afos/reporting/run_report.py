"""``afos report``: a run's report rebuilt from its database, whatever the run's kind.

The files go into the run folder, or into another folder (``--out``) when the run's cannot be written (an
archive, a read-only mount); the report's text alone can also be had without writing anything.
"""

from __future__ import annotations

from pathlib import Path

from afos.errors import UserError
from afos.grid.sources import load_results
from afos.records.runs import MetaKey, RunKind, RunStatus
from afos.reporting.grid_report import comparison_markdown, evaluation_markdown, write_comparison, write_evaluation
from afos.reporting.search_report import report_text, write_report
from afos.storage.filesystems import is_network_filesystem
from afos.storage.layout import RunFiles, run_database
from afos.storage.liveness import read_state
from afos.storage.store import RunStore


def run_kind(run_dir: Path) -> RunKind:
    """The kind of the run in ``run_dir``, read from its database."""
    database = run_database(run_dir)
    if not database.exists():
        raise FileNotFoundError(2, "No such file or directory (not a run folder)", str(database))
    state = read_state(run_dir)
    if state is not None and state.status is RunStatus.RUNNING and is_network_filesystem(database):
        raise UserError(f"{run_dir} has not ended (running, or killed and not yet resumed); on a network "
                        "filesystem afos reads a run's database only once its run has ended (`afos runs` shows "
                        "its progress)")
    with RunStore(database, readonly=True) as store:
        stored = store.get_meta(MetaKey.KIND, RunKind.SEARCH.value)
    try:
        return RunKind(stored)
    except ValueError:
        raise UserError(f"{database}: unknown run kind {stored!r}") from None


def rebuild_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the run's report files into ``out`` (default: the run folder); returns the report's path."""
    run_dir = Path(run_dir)
    folder = Path(out) if out is not None else run_dir
    kind = run_kind(run_dir)
    if kind is RunKind.SEARCH:
        return write_report(run_dir, folder)
    results = load_results([run_dir])
    if kind is RunKind.EVALUATE:
        write_evaluation(folder, results)
        return RunFiles(folder).results_md
    write_comparison(folder, results)
    return RunFiles(folder).report


def report_markdown(run_dir: str | Path) -> str:
    """The run's report as Markdown text, written nowhere."""
    run_dir = Path(run_dir)
    kind = run_kind(run_dir)
    if kind is RunKind.SEARCH:
        return report_text(run_dir)
    results = load_results([run_dir])
    return evaluation_markdown(results) if kind is RunKind.EVALUATE else comparison_markdown(results)
