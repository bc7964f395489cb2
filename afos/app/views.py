"""The one way routes read a run: find its folder by name, read its view, and turn whatever a broken or
hostile run folder raises into :class:`Unreadable` (that run's page says why; the server goes on)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from afos.app.folders import READ_ERRORS, root_version, run_folder, shown, version
from afos.app.grid_view import GridView, grid_view
from afos.app.search_view import SearchView, search_view
from afos.records.evaluation import Evaluation, Phase, Status
from afos.records.runs import RunKind, RunStatus, RunSummary
from afos.reporting.run_report import run_kind
from afos.runs.listing import list_runs
from afos.storage.layout import run_database
from afos.storage.store import RunStore


class UnknownRun(LookupError):
    """No run of that name is under the root."""


class Unreadable(Exception):
    """The run's folder exists but its records cannot be read; the message says why."""


def find_run(root: Path, name: str) -> Path:
    """The folder of the run ``name`` under ``root`` (matched against the folders found, never joined)."""
    folder = run_folder(root, name)
    if folder is None:
        raise UnknownRun(name)
    return folder


def read_view(folder: Path) -> SearchView | GridView:
    """The run's view, whatever its kind, cached under the run's version: the version changes with every
    write and when the run's process is found gone (:func:`~afos.app.folders.version`), so a cached view,
    summary and status included, is never stale."""
    try:
        kind = run_kind(folder)
        current = version(folder)
        return search_view(folder, current) if kind is RunKind.SEARCH else grid_view(folder, current)
    except READ_ERRORS as error:
        raise Unreadable(str(error) or type(error).__name__) from None


def evaluation_page(folder: Path, *, after: int, limit: int, phase: Phase | None,
                    status: Status | None) -> list[tuple[int, Evaluation]]:
    """Up to ``limit`` of the run's training runs stored after row ``after`` (row id, record), filtered by
    phase and status; a broken or hostile database is :class:`Unreadable`."""
    try:
        with RunStore(run_database(folder), readonly=True) as store:
            page = store.evaluation_page(after=after, limit=limit, phase=phase, status=status)
        return [(row, shown(evaluation)) for row, evaluation in page]
    except READ_ERRORS as error:
        raise Unreadable(str(error)) from None


def listed_runs(root: Path, *, kind: RunKind | None = None, status: RunStatus | None = None,
                name: str | None = None) -> list[RunSummary]:
    """The runs under ``root``, newest first (the one a reader just started on top), those of ``kind`` and
    ``status`` whose name holds ``name`` (case-insensitive); read once per change under the root."""
    rows = _runs_at(root, root_version(root))
    return [row for row in rows if (kind is None or row.kind is kind) and (status is None or row.status is status)
            and (name is None or name.lower() in row.run.lower())]


@lru_cache(maxsize=4)
def _runs_at(root: Path, version: str) -> tuple[RunSummary, ...]:
    return tuple(reversed(list_runs(root, links=False)))
