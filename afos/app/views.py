"""The one way routes read a run: find its folder by name, read its view, and turn whatever a broken or
hostile run folder raises into :class:`Unreadable` (that run's page says why; the server goes on)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from afos.app.folders import READ_ERRORS, run_folder, version
from afos.app.grid_view import GridView, grid_view
from afos.app.search_view import SearchView, search_view
from afos.records.evaluation import Evaluation, Phase, Status
from afos.records.runs import RunKind
from afos.reporting.run_report import run_kind
from afos.runs.listing import summary
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
    """The run's view, whatever its kind. Its records are cached until the run writes again; its summary is
    read afresh, because liveness changes without a write: a killed run's files stop changing, and only the
    age of its last heartbeat tells that it is no longer running."""
    try:
        kind = run_kind(folder)
        current = version(folder)
        view = search_view(folder, current) if kind is RunKind.SEARCH else grid_view(folder, current)
        return replace(view, summary=summary(folder / "afos.db"))
    except READ_ERRORS as error:
        raise Unreadable(str(error) or type(error).__name__) from None


def evaluation_page(folder: Path, *, after: int, limit: int, phase: Phase | None,
                    status: Status | None) -> list[tuple[int, Evaluation]]:
    """Up to ``limit`` of the run's training runs stored after row ``after`` (row id, record), filtered by
    phase and status; a broken or hostile database is :class:`Unreadable`."""
    try:
        with RunStore(folder / "afos.db", readonly=True) as store:
            return store.evaluation_page(after=after, limit=limit, phase=phase, status=status)
    except READ_ERRORS as error:
        raise Unreadable(str(error)) from None
