"""The executor contract: a training run as a :class:`Job`, and what every :class:`Executor` promises."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from afos.errors import ConfigError
from afos.training.fitness import FitnessResult

KINDS: tuple[str, ...] = ("serial", "process", "ray")

@dataclass(frozen=True)
class Job:
    """One training run as plain data: it is pickled to workers, so it never holds modules or trees.

    ``key`` is the caller's identifier (e.g. ``"{fingerprint}|{task}|{seed}"``), ``activation`` an
    :meth:`ActivationSpec.to_dict`, ``train`` a :meth:`TrainConfig.to_dict` with dataset, model, budget
    and seed already set.
    """

    key: str
    activation: dict[str, Any]
    train: dict[str, Any]


Record = dict[str, Any]
OnResult = Callable[[Job, Record], None]
Target = Callable[[Job], Record]


def failure_result(status: str, reason: str, seconds: float) -> Record:
    """A record for a job the executor had to give up on, with the same keys as a trained one."""
    return FitnessResult(status=status, reason=reason, seconds=seconds).to_dict()


# ------------------------------------------------------------------------------------ the interface


class Executor(Protocol):
    """Runs jobs; ``width`` is how many run at once (callers size their batches by it)."""

    width: int

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        """Run every job and call ``on_result(job, record)`` in this (driver) process as each finishes, in
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
