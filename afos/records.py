"""Typed records of training runs: what the evaluation layer returns and the store serialises.

Plain data and the standard library only, so that reading a run database (``afos runs``, ``afos report``)
never imports torch.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any, NamedTuple

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


def stable_hash(value: Any) -> str:
    """16 hex digits of sha256 over canonical JSON: sorted keys, integral floats as ints (``epochs = 1``
    from a flag equals ``1.0`` from TOML), non-finite floats by name."""
    text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _canonical(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    return value


class EvalKey(NamedTuple):
    """The identity of one training run in every run database."""

    activation_key: str
    protocol: str
    budget: float
    seed: int
    task: str



@dataclass(frozen=True)
class Evaluation:
    """The stored record of one training run. Metrics are None where the run stopped before them;
    ``extra`` keeps result fields that have no column of their own (e.g. kernel notes)."""

    activation_key: str
    protocol: str
    budget: float
    seed: int
    task: str
    status: Status
    reason: str = ""
    val_accuracy: float | None = None
    val_loss: float | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    train_loss: float | None = None
    epochs: float = 0.0
    steps: int = 0
    seconds: float = 0.0
    expression: str = ""
    activation: dict[str, Any] = field(default_factory=dict)
    phase: Phase = Phase.SEARCH
    generation: int | None = None
    origin: Origin = Origin.TRAINED
    source: str | None = None
    attempts: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0

    @property
    def key(self) -> EvalKey:
        return EvalKey(self.activation_key, self.protocol, self.budget, self.seed, self.task)

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def final(self) -> bool:
        """False for a run lost with its worker: it says nothing about the function and is retried."""
        return not (self.status is Status.ERROR and self.reason.startswith(WORKER_DIED))

    def metric(self, name: str) -> Any:
        """A column or an ``extra`` value by name (None when absent)."""
        return getattr(self, name) if name in FIELDS else self.extra.get(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, enums as their values."""
        values = asdict(self)
        for name in ("status", "phase", "origin"):
            values[name] = values[name].value
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Evaluation:
        known = {k: v for k, v in values.items() if k in FIELDS}
        known["status"] = Status(known["status"])
        known["phase"] = Phase(known.get("phase", Phase.SEARCH))
        known["origin"] = Origin(known.get("origin", Origin.TRAINED))
        return cls(**known)

FIELDS = frozenset(f.name for f in fields(Evaluation))
RESULT_FIELDS = frozenset({"status", "reason", "val_accuracy", "val_loss", "test_accuracy", "test_loss",
                           "train_loss", "epochs", "steps", "seconds", "params", "history"})
"""The fields of a training result (``FitnessResult.to_dict()``) that are columns of a record."""
