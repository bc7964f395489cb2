"""Early warnings that a search's training budget does not fit the machine it runs on.

A search on a laptop with a GPU config can spend its whole time limit on two timed-out trainings and say
so only at the end. The watch reads each batch of records as it arrives and says, once each: that a
training run hit the run timeout (every candidate will, so nothing will be learned), and that the runs
planned cannot finish within ``time_limit`` at the speed measured so far (the search will stop early,
with few candidates and perhaps no confirmation). When not one run of the first generation nor of the
baselines ends ok, :func:`nothing_trains` is the line the search stops with.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from collections.abc import Callable, Sequence

from afos.errors import NothingTrains
from afos.records.evaluation import Evaluation, Origin, Status
from afos.training.config import TrainConfig

#: How far beyond the time limit the projection must be before the watch speaks: a rough estimate early
#: in a search should not cry wolf over a search that may just fit.
FAR_BEYOND = 2.0
#: Planned work beyond which a search without a time limit is said to be long (a typo such as --epochs 100000
#: starts a search of months).
LONG_S = 24 * 3600.0
#: Trained runs measured before projecting: one, since on a machine the budget does not fit the first run
#: may take the whole time limit (it includes loading the data, which FAR_BEYOND leaves room for).
MEASURED = 1
def fit_hint(train: TrainConfig) -> str:
    """What a user can change when the training budget does not fit: said with each warning."""
    hint = "lower --epochs or --batch-size, raise --timeout, use a GPU"
    if train.dataset == "cifar10" and train.model != "airbench":
        hint += ", or on a CPU start from a config sized for it (--config cifar10-cpu)"
    return hint + _load_note()


def _load_note() -> str:
    """A note when other processes hold the cores: a timeout may be the machine's, not the config's."""
    try:
        load, cores = os.getloadavg()[0], len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no load average (Windows) or affinity (macOS)
        return ""
    return f"; the machine is busy (load {load:.1f} on {cores} cores), so a quieter time may be enough" \
        if load > cores else ""


def stop_if_nothing_trains(first: Sequence[Evaluation], train_baselines: Callable[[], list[Evaluation]],
                           train: TrainConfig) -> None:
    """Stop a search (:class:`NothingTrains`, one line) whose first generation's trainings (``first``) all
    failed, if its baselines (trained now by ``train_baselines``) fail too. Why then: on a machine the budget
    does not fit (every run times out) or under settings nothing trains with, the rest of the search would
    fail the same way, for hours, and its ranking of failures would mean nothing. Baselines that train say
    the candidates were just bad, and the search goes on; none trained means the budget or time ran out."""
    if not first or any(record.ok for record in first):
        return
    baselines = train_baselines()
    if baselines and not any(record.ok for record in baselines):
        raise NothingTrains(nothing_trains([*first, *baselines], train))


def nothing_trains(records: Sequence[Evaluation], train: TrainConfig) -> str:
    """The line a search stops with when none of ``records`` (its first generation's and its baselines')
    ended ok: what they ended with, most common first, and what to change for the most common."""
    statuses = Counter(record.status for record in records)
    shown = ", ".join(f"{count} {status.value}" for status, count in statuses.most_common())
    common = statuses.most_common(1)[0][0] if records else Status.ERROR
    advice = {
        Status.TIMEOUT: f"each training hit the run timeout ({train.timeout_s} s): {fit_hint(train)}",
        Status.DIVERGED: "even the baselines diverged: lower --lr",
        Status.OOM: "the trainings ran out of memory: lower --batch-size or choose a smaller model",
    }.get(common, f"the first reason: {next((r.reason for r in records if r.reason), 'none recorded')}")
    return (f"nothing trained: every run of the first generation and of the baselines failed ({shown}), so "
            f"nothing can be compared and the search stops; {advice}")


class BudgetWatch:
    """Says (through ``say``) once that a run timed out and once that the planned runs do not fit the time
    limit (without one: that they take more than a day); silent for a search whose budget fits."""

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
                     f"{record.reason}): the training budget does not fit this machine; {fit_hint(self.train)}")
        self._project()

    def _project(self) -> None:
        if self.projection_said or len(self.seconds) < MEASURED:
            return
        projected = statistics.median(self.seconds) * self.planned
        if self.time_limit is None and projected > LONG_S:
            self.projection_said = True
            self.say(f"warning: at {statistics.median(self.seconds):.1f} s per training run, the ~{self.planned} "
                     f"runs planned take ~{projected / 3600:.0f} h; if that is not meant, stop (Ctrl-C, then "
                     "--resume with fewer --generations) or lower --epochs or --population")
        elif self.time_limit is not None and projected > FAR_BEYOND * self.time_limit:
            self.projection_said = True
            self.say(f"warning: at {statistics.median(self.seconds):.1f} s per training run, the ~{self.planned} "
                     f"runs planned take ~{projected / 60:.0f} min, far beyond --time-limit "
                     f"{self.time_limit / 60:.1f} min: the search will stop early with few candidates; "
                     f"{fit_hint(self.train)}")
