"""``afos runs``: one summary per run folder under a results root, with liveness.

A run recorded as ``running`` whose process is gone (its heartbeat is stale, or its pid no longer exists on
this host) is shown ``interrupted``, with the command that resumes it: the same rule for every run kind.
"""

from __future__ import annotations

from pathlib import Path

from afos.errors import StoreError, UserError
from afos.records.runs import RunKind, RunStatus, RunSummary
from afos.search.results import hall_of_fame
from afos.storage.liveness import is_alive
from afos.storage.store import RunStore


def list_runs(root: str | Path) -> list[RunSummary]:
    """One summary per run folder under ``root``; an unreadable database is listed with a one-word reason."""
    runs = []
    for db in sorted(Path(root).glob("*/afos.db")):
        try:
            runs.append(summary(db))
        except (StoreError, UserError, OSError, ValueError) as error:
            runs.append(RunSummary(db.parent.name, None, None, reason=_unreadable(error)))
    return runs


def summary(db: Path) -> RunSummary:
    """The ``afos runs`` row of the run whose database is ``db``."""
    with RunStore(db, readonly=True) as store:
        kind = RunKind(store.get_meta("kind", RunKind.SEARCH.value))
        status = RunStatus(store.get_meta("status", RunStatus.RUNNING.value))
        beat = store.get_meta("heartbeat")
        alive = is_alive(store.get_meta("host"), store.get_meta("pid"), beat)
        best = hall_of_fame(store)[:1] if kind is RunKind.SEARCH else []
        generations = "-"
        if kind is RunKind.SEARCH:
            config = store.get_meta("config", {}) or {}
            generations = f"{len(store.generations())}/{config.get('generations', '?')}"
        evaluations = store.count_evaluations()
    if status is RunStatus.RUNNING and not alive:
        status = RunStatus.INTERRUPTED
    resume = kind.resume_command(str(db.parent)) if status in (RunStatus.INTERRUPTED, RunStatus.FAILED) else None
    return RunSummary(db.parent.name, kind, status, generations, evaluations, best[0].canonical if best else None,
                      best[0].fitness[1] if best else None, beat if isinstance(beat, (int, float)) else None, resume)


def _unreadable(error: BaseException) -> str:
    text = str(error)
    for word in ("schema", "malformed", "folder", "empty"):
        if word in text:
            return f"unreadable ({word})"
    return "unreadable"
