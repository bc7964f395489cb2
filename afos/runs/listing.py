"""``afos runs``: one summary per run folder under a results root, with liveness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from afos.errors import StoreError, UserError
from afos.search.results import hall_of_fame_rows
from afos.storage.liveness import is_alive
from afos.storage.store import RunStore


def list_runs(root: str | Path) -> list[dict[str, Any]]:
    """One summary per run folder under ``root``: status (with ``interrupted`` for a run whose process is
    gone), progress and best function; an unreadable database is listed with a one-word reason."""
    runs = []
    for db in sorted(Path(root).glob("*/afos.db")):
        try:
            runs.append(_summary(db))
        except (StoreError, UserError, OSError) as error:
            runs.append({"run": db.parent.name, "kind": "-", "status": _unreadable(error), "generations": "-",
                         "evaluations": None, "best": None, "fitness": None, "heartbeat": None, "resume": None})
    return runs


def _summary(db: Path) -> dict[str, Any]:
    with RunStore(db, readonly=True) as store:
        kind = store.get_meta("kind", "search")
        config = store.get_meta("config", {}) or {}
        hof = hall_of_fame_rows(store)
        status = store.get_meta("status", "unknown")
        beat = store.get_meta("heartbeat")
        generations = f"{len(store.generations())}/{config.get('generations', '?')}" if kind == "search" else "-"
        alive = is_alive(store.get_meta("host"), store.get_meta("pid"), beat)
        evaluations = store.count_evaluations()
    interrupted = status == "running" and not alive
    resume = None
    if interrupted or status == "interrupted":
        status = "interrupted"
        resume = (f"afos search --resume {db.parent}" if kind == "search"
                  else f"rerun the `afos {kind}` command with --out {db.parent}")
    return {"run": db.parent.name, "kind": kind, "status": status, "generations": generations,
            "evaluations": evaluations, "best": hof[0]["canonical"] if hof else None,
            "fitness": hof[0]["fitness"] if hof else None, "heartbeat": beat, "resume": resume}


def _unreadable(error: BaseException) -> str:
    text = str(error)
    for word in ("schema", "malformed", "folder", "empty"):
        if word in text:
            return f"unreadable ({word})"
    return "unreadable"
