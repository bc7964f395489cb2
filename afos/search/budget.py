"""Early warnings that a search's training budget does not fit the machine it runs on.

A search on a laptop with a GPU config can spend its whole time limit on two timed-out trainings and say
so only at the end. The watch reads each batch of records as it arrives and says, once each: that a
training run hit the run timeout (every candidate will, so nothing will be learned), and that the runs
planned cannot finish within ``time_limit`` at the speed measured so far (the search will stop early,
with few candidates and perhaps no confirmation).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

from afos.records.evaluation import Evaluation, Origin, Status
from afos.training.config import TrainConfig

#: How far beyond the time limit the projection must be before the watch speaks: a rough estimate early
#: in a search should not cry wolf over a search that may just fit.
FAR_BEYOND = 2.0
#: Trained runs measured before projecting: one, since on a machine the budget does not fit the first run
#: may take the whole time limit (it includes loading the data, which FAR_BEYOND leaves room for).
MEASURED = 1
#: What a user can change, said with each warning.
FIT_HINT = ("lower --epochs or --batch-size, raise --timeout, use a GPU, or on a CPU start from a config "
            "sized for it (--config cifar10-cpu for CIFAR-10)")


class BudgetWatch:
    """Says (through ``say``) once that a run timed out and once that the planned runs do not fit the time
    limit; silent for a search whose budget fits."""

    def __init__(self, train: TrainConfig, planned_runs: int, time_limit: float | None,
                 say: Callable[[str], None]) -> None:
        self.train, self.planned, self.time_limit, self.say = train, planned_runs, time_limit, say
        self.seconds: list[float] = []
        self.timeout_said = self.projection_said = False

    def observe(self, record: Evaluation) -> None:
        """Take one committed record into account (the evaluator calls this as each one arrives)."""
        if record.origin is Origin.TRAINED:
            self.seconds.append(record.seconds)
        if record.status is Status.TIMEOUT and not self.timeout_said:
            self.timeout_said = True
            self.say(f"warning: {record.expression} hit the run timeout (timeout_s = {self.train.timeout_s} s; "
                     f"{record.reason}): the training budget does not fit this machine; {FIT_HINT}")
        self._project()

    def _project(self) -> None:
        if self.projection_said or self.time_limit is None or len(self.seconds) < MEASURED:
            return
        projected = statistics.median(self.seconds) * self.planned
        if projected > FAR_BEYOND * self.time_limit:
            self.projection_said = True
            self.say(f"warning: at {statistics.median(self.seconds):.1f} s per training run, the ~{self.planned} "
                     f"runs planned take ~{projected / 60:.0f} min, far beyond --time-limit "
                     f"{self.time_limit / 60:.1f} min: the search will stop early with few candidates; {FIT_HINT}")
