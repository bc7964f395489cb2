"""Runs as the command line lists them: kinds, statuses, the roles of functions and the verdicts on them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from enum import Enum
from typing import Any


class RunKind(str, Enum):
    """The command that made a run folder."""

    SEARCH = "search"
    EVALUATE = "evaluate"
    COMPARE = "compare"

    def resume_command(self, run_dir: str) -> str:
        """How to continue such a run."""
        if self is RunKind.SEARCH:
            return f"afos search --resume {run_dir}"
        return f"rerun the `afos {self.value}` command with --out {run_dir}"


class MetaKey(str, Enum):
    """The run-level values of a run database (its ``meta`` table, JSON each): the run's kind, status and
    the reason it stopped, when it was created, its search config or grid and the protocol id of each task,
    the baselines it trained, its confirmation and the winner that confirmation named; ``heartbeat``,
    ``host`` and ``pid`` are an older afos's liveness (now in ``run.json``), still read."""

    KIND = "kind"
    STATUS = "status"
    REASON = "reason"
    CREATED = "created"
    CONFIG = "config"
    GRID = "grid"
    PROTOCOLS = "protocols"
    BASELINE = "baseline"
    CONFIRMATION = "confirmation"
    WINNER = "winner"
    HEARTBEAT = "heartbeat"
    HOST = "host"
    PID = "pid"


class RunStatus(str, Enum):
    """Where a run stands. ``budget`` and ``time-limit`` are searches stopped by their limits."""

    RUNNING = "running"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    FINISHED = "finished"
    BUDGET = "budget"
    TIME_LIMIT = "time-limit"

    def is_ended(self) -> bool:
        """Whether no process works on the run any more (as it recorded; a killed one could not)."""
        return self is not RunStatus.RUNNING

    def is_resumable(self) -> bool:
        """Whether running the same command again continues work rather than starting it: after a stop, or
        for a search stopped by a limit, with the limit raised."""
        return self in (RunStatus.INTERRUPTED, RunStatus.FAILED, RunStatus.BUDGET, RunStatus.TIME_LIMIT)


class Role(str, Enum):
    """What a function is in a comparison: a candidate, a reference, or a search's confirmed winner."""

    CANDIDATE = "candidate"
    BASELINE = "baseline"
    FINALIST = "finalist"


class Verdict(str, Enum):
    """What the confirmation says of a finalist against ReLU (``baseline`` for the baselines themselves;
    ``failed`` for a finalist that failed on any seed, however well it did on the others; ``pending`` while
    it or ReLU still lacks some of the confirmation's seeds: work not done has no verdict)."""

    BETTER = "better"
    WORSE = "worse"
    NO_DIFFERENCE = "no difference"
    FAILED = "failed"
    PENDING = "pending"
    BASELINE = "baseline"


@dataclass(frozen=True)
class RunSummary:
    """One row of ``afos runs``. ``status`` is None for a run whose database cannot be read (``reason``
    says why); ``resume`` is the command that continues a run that stopped or whose process is gone.

    ``best`` is the function the run stands for: a search's confirmed winner (``verdict`` says what the
    confirmation found, ``score`` is its confirmed validation accuracy), or, before a confirmation has ended,
    its hall of fame's first (``verdict`` None, ``score`` its search fitness). ``front_costs`` are the costs of
    the members of a search's front of accuracy against cost, cheapest first (empty for a hall of fame).
    ``started`` and ``heartbeat`` are unix seconds (ISO 8601 text in :meth:`to_dict`)."""

    run: str
    kind: RunKind | None
    status: RunStatus | None
    started: float | None = None
    generations: str = "-"
    evaluations: int | None = None
    best: str | None = None
    verdict: Verdict | None = None
    score: float | None = None
    front_costs: tuple[float, ...] = ()
    heartbeat: float | None = None
    resume: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**{f.name: getattr(self, f.name) for f in fields(self)},
                "started": iso_time(self.started), "heartbeat": iso_time(self.heartbeat)}


def iso_time(seconds: float | None) -> str | None:
    """Unix seconds as ISO 8601 text in UTC (None stays None): what JSON readers parse without guessing."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunState:
    """What a run folder's ``run.json`` says while and after a process works on it: the run's kind and
    status, the process (host and pid) with its last heartbeat (unix seconds), and how many training runs
    the database holds. Readers use it where they must not open the database of a running run (a network
    filesystem) and to tell a working run from one whose process is gone."""

    kind: RunKind
    status: RunStatus
    host: str
    pid: int
    heartbeat: float
    evaluations: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind.value, "status": self.status.value, "host": self.host, "pid": self.pid,
                "heartbeat": self.heartbeat, "evaluations": self.evaluations}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunState:
        return cls(RunKind(values["kind"]), RunStatus(values["status"]), str(values["host"]), int(values["pid"]),
                   float(values["heartbeat"]), int(values.get("evaluations") or 0))
