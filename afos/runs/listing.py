"""``afos runs``: one summary per run folder under a results root, with liveness.

A run recorded as ``running`` whose process is gone (its heartbeat is stale, or its pid no longer exists on
this host) is shown ``interrupted``, with the command that resumes it: the same rule for every run kind. On a
network filesystem a run that is not known to have ended is summarised from its ``run.json`` alone: its
database belongs to the process writing it (or, after a kill, holds a journal only a resume may roll back).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from afos.errors import StoreError, UserError
from afos.records.runs import MetaKey, RunKind, RunState, RunStatus, RunSummary, Verdict
from afos.storage.filesystems import is_network_filesystem
from afos.storage.layout import run_databases
from afos.storage.liveness import is_alive, read_state
from afos.storage.store import RunStore


def list_runs(root: str | Path, *, links: bool = True) -> list[RunSummary]:
    """One summary per run folder under ``root``, oldest first (runs whose start is unknown first, by name);
    an unreadable database is listed with a one-word reason; ``links`` as in
    :func:`~afos.storage.layout.run_databases`.

    Reads each database's meta and last generation only, and imports neither torch nor the statistics, so
    that listing a results folder takes a fraction of a second."""
    runs = []
    for db in run_databases(root, links=links):
        try:
            runs.append(summary(db))
        except (StoreError, UserError, OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            # a database is untrusted input: whatever its meta holds, it is one unreadable row, not a crash
            runs.append(RunSummary(db.parent.name, None, None, reason=_unreadable(error)))
    return sorted(runs, key=lambda row: (row.started or 0.0, row.run))


def summary(db: Path) -> RunSummary:
    """The ``afos runs`` row of the run whose database is ``db``."""
    state = read_state(db.parent)
    if state is not None and state.status is RunStatus.RUNNING and is_network_filesystem(db):
        return _row(db, state.kind, state.status, _alive(state), state.heartbeat, evaluations=state.evaluations)
    with RunStore(db, readonly=True) as store:
        kind = RunKind(store.get_meta(MetaKey.KIND, RunKind.SEARCH.value))
        status = RunStatus(store.get_meta(MetaKey.STATUS, RunStatus.RUNNING.value))
        if state is not None:
            alive, beat = _alive(state), state.heartbeat
        else:  # an older afos kept liveness in the database
            beat = store.get_meta(MetaKey.HEARTBEAT)
            alive = is_alive(store.get_meta(MetaKey.HOST), store.get_meta(MetaKey.PID), beat)
        row = _row(db, kind, status, alive, beat if isinstance(beat, (int, float)) else None,
                   evaluations=store.count_evaluations(), started=_number(store.get_meta(MetaKey.CREATED)))
        if kind is not RunKind.SEARCH:
            return row
        config = store.get_meta(MetaKey.CONFIG, {}) or {}
        if not isinstance(config, dict):
            raise StoreError(f"{db}: its stored config is malformed")
        return replace(row, generations=f"{len(store.generations())}/{config.get('generations', '?')}",
                       front_costs=_front_costs(store), **_best(store))


def _best(store: RunStore) -> dict[str, Any]:
    """The function a search stands for: its confirmed winner once the confirmation has ended, else the
    first of its hall of fame (unconfirmed)."""
    winner = store.get_meta(MetaKey.WINNER)
    if isinstance(winner, dict) and isinstance(winner.get("canonical"), str) and winner.get("verdict") in _VERDICT_VALUES:
        return {"best": winner["canonical"], "verdict": Verdict(winner["verdict"]), "score": _number(winner.get("val_mean"))}
    if store.get_meta(MetaKey.CONFIRMATION) is not None and store.get_meta(MetaKey.STATUS) == RunStatus.FINISHED.value:
        return _winner_of_an_older_run(store)  # a stopped confirmation names no winner: unconfirmed below
    saved = store.last_generation()
    if saved is None or not saved.hall_of_fame or not saved.hall_of_fame[0].fitness.value > 0:
        return {}  # a function that never trained is nobody's best
    first = saved.hall_of_fame[0]
    return {"best": first.canonical, "score": first.fitness.value}


def _front_costs(store: RunStore) -> tuple[float, ...]:
    """The costs of the members of a search's front, cheapest first (none for a hall of fame)."""
    saved = store.last_generation()
    costs = [entry.fitness.cost for entry in saved.hall_of_fame if entry.ok] if saved else []
    return tuple(sorted(cost for cost in costs if cost is not None))


def _winner_of_an_older_run(store: RunStore) -> dict[str, Any]:
    """A run made before afos recorded its winner: computed from the stored confirmation (slower: this
    imports the statistics and torch)."""
    from afos.search.results import finalist_rows
    from afos.search.verdict import winner

    best = winner(finalist_rows(store) or [])
    return {} if best is None else {"best": best.canonical, "verdict": best.verdict, "score": best.val_mean}


_VERDICT_VALUES = frozenset(verdict.value for verdict in Verdict)

HEADER = ("STARTED", "RUN", "KIND", "STATUS", "GEN", "RUNS", "BEST")

_VERDICTS = {Verdict.BETTER: "better than ReLU", Verdict.WORSE: "worse than ReLU",
             Verdict.NO_DIFFERENCE: "no difference from ReLU", Verdict.FAILED: "failed on some seeds",
             Verdict.PENDING: "confirmation pending"}


def runs_table(rows: list[RunSummary]) -> str:
    """``afos runs`` as text: a header, one aligned line per run (start in local time), and under a run
    that stopped or lost its process the command that continues it."""
    cells = [HEADER, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER) - 1)]
    lines = []
    for line, row in zip(cells, [None, *rows]):
        lines.append("  ".join(cell.ljust(width) if i < 4 else cell.rjust(width)
                               for i, (cell, width) in enumerate(zip(line, widths))) + "  " + line[-1])
        if row is not None and row.resume:
            lines.append(f"    last heartbeat {_local(row.heartbeat) or 'unknown'}; to continue: {row.resume}")
    return "\n".join(line.rstrip() for line in lines)


def _cells(row: RunSummary) -> tuple[str, ...]:
    status = row.status.value if row.status else row.reason
    evaluations = "-" if row.evaluations is None else str(row.evaluations)
    return (_local(row.started) or "-", row.run, row.kind.value if row.kind else "-", status, row.generations,
            evaluations, _best_text(row))


def _best_text(row: RunSummary) -> str:
    if row.best is None:
        return "-"
    score = "" if row.score is None else f"{row.score:.4f}"
    front = (f"; front of {len(row.front_costs)}, cost {row.front_costs[0]:g}-{row.front_costs[-1]:g}"
             if row.front_costs else "")
    if row.verdict is None:
        return f"{row.best}  (unconfirmed: search fitness {score}{front})" if score else f"{row.best}  (unconfirmed)"
    return f"{row.best}  ({_VERDICTS.get(row.verdict, row.verdict.value)}; confirmed val {score or '-'}{front})"


def _local(seconds: float | None) -> str | None:
    return None if seconds is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _alive(state: RunState) -> bool:
    return is_alive(state.host, state.pid, state.heartbeat)


def _row(db: Path, kind: RunKind, status: RunStatus, alive: bool, heartbeat: float | None, *,
         evaluations: int | None = None, started: float | None = None) -> RunSummary:
    if status is RunStatus.RUNNING and not alive:
        status = RunStatus.INTERRUPTED
    resume = kind.resume_command(str(db.parent)) if status in (RunStatus.INTERRUPTED, RunStatus.FAILED) else None
    return RunSummary(db.parent.name, kind, status, started, evaluations=evaluations, heartbeat=heartbeat,
                      resume=resume)


def _unreadable(error: BaseException) -> str:
    text = str(error)
    for word in ("schema", "malformed", "folder", "empty"):
        if word in text:
            return f"unreadable ({word})"
    return "unreadable"
