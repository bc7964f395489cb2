"""Runs as the command line lists them: kinds, statuses, the roles of functions and the verdicts on them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


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
    """What the confirmation says of a finalist against ReLU (``baseline`` for the baselines themselves)."""

    BETTER = "better"
    WORSE = "worse"
    NO_DIFFERENCE = "no difference"
    FAILED = "failed"
    BASELINE = "baseline"


@dataclass(frozen=True)
class RunSummary:
    """One row of ``afos runs``. ``status`` is None for a run whose database cannot be read (``reason``
    says why); ``resume`` is the command that continues a run that stopped or whose process is gone."""

    run: str
    kind: RunKind | None
    status: RunStatus | None
    generations: str = "-"
    evaluations: int | None = None
    best: str | None = None
    fitness: float | None = None
    heartbeat: float | None = None
    resume: str | None = None
    reason: str = ""
