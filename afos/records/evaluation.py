"""One training run: how it ended (:class:`FitnessResult`) and its stored record (:class:`Evaluation`).

A :class:`FitnessResult` is what :func:`afos.training.fitness.run_fitness` returns and what a worker sends
back; an :class:`Evaluation` is that result with the run's identity (:class:`EvalKey`) and provenance (which
phase asked for it, whether it was trained here, read back or copied), as the evaluation layer returns it
and the store keeps it. An Evaluation *is* a FitnessResult, so every reader uses one set of field names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, NamedTuple

from afos.records.json import plain

#: Reason prefix of a run whose worker died every time it was tried (the executors write it). Such a
#: record says nothing about the function, so it is retried when the same command runs again.
WORKER_DIED = "worker died"


class Status(str, Enum):
    """How a training run ended; every status but ``ok`` scores as a failure."""

    OK = "ok"
    DIVERGED = "diverged"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    OOM = "oom"
    ERROR = "error"


#: Statuses that belong to the machine at that moment (its load, its free memory), not to the function.
MACHINE_FAILURES = frozenset({Status.TIMEOUT, Status.OOM})


class Origin(str, Enum):
    """Where a record came from: trained by this run (in this or an earlier invocation), read back from
    this run's own database in this invocation, or copied from another run (``source`` names it)."""

    TRAINED = "trained"
    RESUMED = "resumed"
    REUSED = "reused"


class Phase(str, Enum):
    """What a run was for: search fitness, the search's baseline, confirmation of finalists, a grid cell."""

    SEARCH = "search"
    BASELINE = "baseline"
    CONFIRM = "confirm"
    GRID = "grid"


class EvalKey(NamedTuple):
    """The identity of one training run in every run database."""

    activation_key: str
    protocol: str
    budget: float
    seed: int
    task: str


@dataclass(frozen=True)
class Checkpoint:
    """One validation pass of a run: at each epoch end, at the early-rejection point and at the last step.
    ``train_loss`` is the mean since the previous pass; ``seconds`` count from the run's start."""

    step: int
    epoch: float
    train_loss: float | None
    val_loss: float | None
    val_accuracy: float | None
    val_f1: float | None
    seconds: float

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Checkpoint:
        def number(name: str) -> float | None:
            value = values.get(name)
            return None if value is None else float(value)

        return cls(int(values["step"]), float(values["epoch"]), number("train_loss"), number("val_loss"),
                   number("val_accuracy"), number("val_f1"), float(values.get("seconds") or 0.0))


#: Per activation site (its index in forward order, as text): parameter name -> a float per scalar, or
#: {"mean", "min", "max"} per tensor.
Params = dict[str, dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class FitnessResult:
    """The outcome of one fitness run; partial (metrics None) when the run stopped early.

    ``val_*`` is the fitness, from the last validation pass (for ``rejected``, the one that rejected).
    ``test_*`` is filled only for ``ok`` runs. ``history`` holds one :class:`Checkpoint` per validation
    pass. ``params`` are the activation
    sites' learned parameters (:data:`Params`). Non-finite numbers are None, so that records are valid JSON
    and compare equal once stored. ``kernels`` is the kernel path the candidate trained on (empty without
    an :class:`afos.activation.module.Activation`), ``compile_seconds`` the compilation and CUDA-graph
    capture this run paid for (already compiled kernels cost none), ``cuda_graphs`` whether its steps
    replayed CUDA graphs, ``kernel_note`` why the path is not the one asked for, if it is not, and
    ``threads`` the CPU threads it trained on (0: not recorded).
    """

    status: Status
    reason: str = ""
    val_accuracy: float | None = None
    val_loss: float | None = None
    val_f1: float | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    test_f1: float | None = None
    train_loss: float | None = None
    epochs: float = 0.0
    steps: int = 0
    seconds: float = 0.0
    history: tuple[Checkpoint, ...] = ()
    params: Params = field(default_factory=dict)
    kernels: str = ""
    compile_seconds: float = 0.0
    cuda_graphs: bool = False
    kernel_note: str = ""
    threads: int = 0

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, enums as their values."""
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}

    def metric(self, name: str) -> float | None:
        """A finite measurement by field name (``val_f1``, ``test_accuracy`` ...), None when absent."""
        value = getattr(self, name, None) if name in METRICS else None
        return value if isinstance(value, (int, float)) and math.isfinite(value) else None


#: The measurements of a run, by the names :meth:`FitnessResult.metric` takes.
METRICS = frozenset({"val_accuracy", "val_loss", "val_f1", "test_accuracy", "test_loss", "test_f1", "train_loss"})
RESULT_FIELDS = tuple(f.name for f in fields(FitnessResult))


@dataclass(frozen=True, kw_only=True)
class Evaluation(FitnessResult):
    """The stored record of one training run: its outcome, identity and provenance."""

    activation_key: str
    protocol: str
    budget: float
    seed: int
    task: str
    expression: str = ""
    activation: dict[str, Any] = field(default_factory=dict)  # ActivationSpec.to_dict() of what was trained
    phase: Phase = Phase.SEARCH
    generation: int | None = None
    origin: Origin = Origin.TRAINED
    source: str | None = None
    attempts: int = 1
    created: float = 0.0

    @classmethod
    def of(cls, result: FitnessResult, key: EvalKey, **provenance: Any) -> Evaluation:
        """The record of ``result``, trained under ``key``; ``provenance`` sets the remaining fields."""
        outcome = {name: getattr(result, name) for name in RESULT_FIELDS}
        return cls(**outcome, **key._asdict(), **provenance)

    @property
    def key(self) -> EvalKey:
        return EvalKey(self.activation_key, self.protocol, self.budget, self.seed, self.task)

    @property
    def parameters(self) -> list[str]:
        """The names of the trained function's parameters, learnable then fixed (the symbols of its text)."""
        return [*(self.activation.get("learnable") or {}), *(self.activation.get("fixed") or {})]

    @property
    def final(self) -> bool:
        """False for a record that tells of the machine, not the function: a run lost with its worker, a
        timeout or an out-of-memory (:data:`MACHINE_FAILURES`; the same training may fit on an idle or a
        larger machine). Such a record is retried by the next command that needs it, never copied."""
        if self.status in MACHINE_FAILURES:
            return False
        return not (self.status is Status.ERROR and self.reason.startswith(WORKER_DIED))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Evaluation:
        """A record from :meth:`to_dict`'s data; unknown keys (written by a later afos) are ignored."""
        known = {k: v for k, v in values.items() if k in FIELDS}
        known["status"] = Status(known["status"])
        known["phase"] = Phase(known.get("phase", Phase.SEARCH))
        known["origin"] = Origin(known.get("origin", Origin.TRAINED))
        known["history"] = tuple(Checkpoint.from_dict(entry) for entry in known.get("history") or ())
        return cls(**known)


FIELDS = frozenset(f.name for f in fields(Evaluation))
