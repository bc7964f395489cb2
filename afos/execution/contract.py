"""The executor contract: a training run as a :class:`Job`, and what every :class:`Executor` promises."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from afos.activation.spec import ActivationSpec
from afos.errors import ConfigError
from afos.records.evaluation import FitnessResult, Status
from afos.training.config import TrainConfig


@dataclass(frozen=True)
class Job:
    """One training run: what to train and under which validated config (dataset, model, budget and seed
    set). Plain records only, so it pickles to workers and Ray actors and never holds modules or trees;
    ``key`` is the caller's identifier of the job."""

    key: str
    activation: ActivationSpec
    train: TrainConfig


OnResult = Callable[[Job, FitnessResult], None]
Target = Callable[[Job], FitnessResult]


def failure_result(status: Status, reason: str, seconds: float) -> FitnessResult:
    """The result of a job the executor had to give up on (its worker died, or it ran out of time)."""
    return FitnessResult(status=status, reason=reason, seconds=seconds)


# ------------------------------------------------------------------------------------ the interface


class Executor(Protocol):
    """Runs jobs; ``width`` is how many run at once (callers size their batches by it)."""

    width: int

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        """Run every job and call ``on_result(job, result)`` in this (driver) process as each finishes, in
        any order, exactly once per job; return when all are done. Ctrl-C stops the workers promptly."""

    def close(self) -> None:
        """Stop the workers and release what they hold; the executor is unusable afterwards."""

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


_C = TypeVar("_C", bound="Closing")


class Closing:
    """Context-manager support, so ``with make_executor(...) as executor:`` always stops workers."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_options(workers: int | None, workers_per_gpu: int, max_retries: int, timeout_s: float | None) -> None:
    if workers is not None and workers < 1:
        raise ConfigError(f"workers={workers} is invalid; expected an integer >= 1")
    if workers_per_gpu < 1:
        raise ConfigError(f"workers_per_gpu={workers_per_gpu} is invalid; expected an integer >= 1")
    if max_retries < 0:
        raise ConfigError(f"max_retries={max_retries} is invalid; expected an integer >= 0")
    if timeout_s is not None and not timeout_s > 0:
        raise ConfigError(f"timeout_s={timeout_s} is invalid; expected a number > 0")
