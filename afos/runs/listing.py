"""``afos runs``: one summary per run folder under a results root, with liveness.

A run recorded as ``running`` whose process is gone (its heartbeat is stale, or its pid no longer exists on
this host) is shown ``interrupted``, with the command that resumes it: the same rule for every run kind. On a
network filesystem a run that is not known to have ended is summarised from its ``run.json`` alone: its
database belongs to the process writing it (or, after a kill, holds a journal only a resume may roll back).
"""

from __future__ import annotations

from pathlib import Path

from afos.errors import StoreError, UserError
from afos.records.runs import RunKind, RunState, RunStatus, RunSummary
from afos.search.results import hall_of_fame
from afos.storage.filesystems import is_network_filesystem
from afos.storage.liveness import is_alive, read_state
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
    state = read_state(db.parent)
    if state is not None and state.status is RunStatus.RUNNING and is_network_filesystem(db):
        return _row(db, state.kind, state.status, _alive(state), state.heartbeat, evaluations=state.evaluations)
    with RunStore(db, readonly=True) as store:
        kind = RunKind(store.get_meta("kind", RunKind.SEARCH.value))
        status = RunStatus(store.get_meta("status", RunStatus.RUNNING.value))
        if state is not None:
            alive, beat = _alive(state), state.heartbeat
        else:  # an older afos kept liveness in the database
            beat = store.get_meta("heartbeat")
            alive = is_alive(store.get_meta("host"), store.get_meta("pid"), beat)
        best = hall_of_fame(store)[:1] if kind is RunKind.SEARCH else []
        generations = "-"
        if kind is RunKind.SEARCH:
            config = store.get_meta("config", {}) or {}
            generations = f"{len(store.generations())}/{config.get('generations', '?')}"
        return _row(db, kind, status, alive, beat if isinstance(beat, (int, float)) else None, generations,
                    store.count_evaluations(), best[0].canonical if best else None,
                    best[0].fitness[1] if best else None)


def _alive(state: RunState) -> bool:
    return is_alive(state.host, state.pid, state.heartbeat)


def _row(db: Path, kind: RunKind, status: RunStatus, alive: bool, heartbeat: float | None, generations: str = "-",
         evaluations: int | None = None, best: str | None = None, fitness: float | None = None) -> RunSummary:
    if status is RunStatus.RUNNING and not alive:
        status = RunStatus.INTERRUPTED
    resume = kind.resume_command(str(db.parent)) if status in (RunStatus.INTERRUPTED, RunStatus.FAILED) else None
    return RunSummary(db.parent.name, kind, status, generations, evaluations, best, fitness, heartbeat, resume)


def _unreadable(error: BaseException) -> str:
    text = str(error)
    for word in ("schema", "malformed", "folder", "empty"):
        if word in text:
            return f"unreadable ({word})"
    return "unreadable"
