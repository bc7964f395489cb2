"""Replay: an executor that answers training jobs from a table of finished runs instead of training.

NAS research made search strategies comparable over hundreds of seeds by training a whole space once
(NAS-Bench-101/201) and replaying optimisers against the table. :class:`ReplayExecutor` does that for afos:
it stands where the serial or process executor stands, so the *unchanged* search (proposals, screening,
de-duplication, selection, surrogate, lineage, records, confirmation) runs at table speed and stores what it
would have stored had it trained.

A table (:class:`Table`) holds, per task, the training settings that define it (its protocol settings less
the afos and torch versions, which change with every release but not the meaning of a number) and, per
function of its space and per replicate seed, the outcome of one real training run. A job is answered by

* the task whose settings equal the job's (a job under any other protocol is an error naming the
  difference: a replay must never answer a question the table was not built for);
* the function with the job's activation key (a function outside the table's space is an error naming it:
  restrict the search to the table's space, see the table's ``space``);
* the replicate of the job's seed: the table's i-th seed answers itself, any other seed ``s`` is answered
  by replicate ``s mod R`` (R replicates). A search's fitness seeds and its confirmation's fresh seeds thus
  reuse the table's replicates, which the datasheet says.

The file is gzipped JSON (never a pickle: tables travel between machines and are untrusted input), read
with a size bound and checked field by field.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afos.errors import ConfigError, UserError
from afos.execution.contract import Closing, Job, OnResult
from afos.records.evaluation import FitnessResult, Status
from afos.records.json import stable_hash
from afos.training.config import TrainConfig
from afos.training.protocol import protocol_settings

TABLE_FORMAT = "afos-table"
TABLE_VERSION = 1
#: Protocol settings a table does not compare: they name the software, not what a number means.
VERSION_SETTINGS = ("afos", "torch")
#: The measurements each outcome keeps, in the order stored (the status first, as text).
FIELDS = ("val_accuracy", "val_loss", "val_f1", "test_accuracy", "epochs", "steps", "seconds")
MAX_TABLE_BYTES = 256 * 2**20  # uncompressed: a table of 10^5 functions fits; a gzip bomb does not


def task_settings(train: TrainConfig) -> dict[str, Any]:
    """What identifies a table's task: the protocol settings of ``train`` without the version fields, and
    the budget (kept beside the protocol in a run's key, so not part of it)."""
    settings = {key: value for key, value in protocol_settings(train).items() if key not in VERSION_SETTINGS}
    return {**settings, "budget": float(train.epochs)}


@dataclass(frozen=True)
class Outcome:
    """One real training run of one function on one task at one replicate seed."""

    status: Status
    values: tuple[float | None, ...]  # one per FIELDS

    def result(self) -> FitnessResult:
        """The record a training would have returned (no history, no learned parameters: the table keeps
        the final numbers only)."""
        val_accuracy, val_loss, val_f1, test_accuracy, epochs, steps, seconds = self.values
        reason = "" if self.status is Status.OK else f"{self.status.value} (replayed from the table)"
        return FitnessResult(status=self.status, reason=reason, val_accuracy=val_accuracy, val_loss=val_loss,
                             val_f1=val_f1, test_accuracy=test_accuracy, epochs=epochs or 0.0,
                             steps=int(steps or 0), seconds=seconds or 0.0)

    @classmethod
    def of(cls, result: FitnessResult) -> Outcome:
        return cls(result.status, tuple(getattr(result, name) for name in FIELDS))

    def to_list(self) -> list[Any]:
        return [self.status.value, *self.values]

    @classmethod
    def from_list(cls, values: Sequence[Any]) -> Outcome:
        if len(values) != 1 + len(FIELDS):
            raise ValueError(f"an outcome holds {1 + len(FIELDS)} values, got {len(values)}")
        numbers = tuple(None if v is None else _number(v) for v in values[1:])
        return cls(Status(values[0]), numbers)


@dataclass(frozen=True)
class TableTask:
    """A task of the table: its name (``dataset/model`` plus the config it came from), the settings that
    identify it, and the replicate seeds every function was trained at."""

    name: str
    settings: Mapping[str, Any]
    seeds: tuple[int, ...]

    def replicate(self, seed: int) -> int:
        """The replicate that answers ``seed``: its own where the table has it, else ``seed mod R``."""
        return self.seeds.index(seed) if seed in self.seeds else seed % len(self.seeds)


@dataclass(frozen=True)
class TableFunction:
    """A function of the table: its activation key, canonical text and the tree it was enumerated as."""

    key: str
    canonical: str
    tree: str


@dataclass(frozen=True)
class Table:
    """A tabular benchmark: functions x tasks x replicate seeds of real outcomes, and what it covers.

    ``space`` states the part of the search space enumerated (primitive set, tree height, counts);
    ``datasheet`` the protocol, code version, machine and time taken (free text fields).
    """

    space: Mapping[str, Any]
    datasheet: Mapping[str, Any]
    tasks: tuple[TableTask, ...]
    functions: tuple[TableFunction, ...]
    outcomes: Mapping[str, Mapping[str, tuple[Outcome, ...]]]  # task name -> function key -> per replicate

    def task_of(self, train: TrainConfig) -> TableTask:
        """The table's task with ``train``'s settings; a ConfigError naming the nearest task's differences."""
        wanted = task_settings(train)
        digest = stable_hash(wanted)
        for task in self.tasks:
            if stable_hash(dict(task.settings)) == digest:
                return task
        nearest = min(self.tasks, key=lambda t: len(_differences(t.settings, wanted)))
        raise ConfigError(f"the table holds no task trained like this job: {nearest.name} differs in "
                          f"{', '.join(_differences(nearest.settings, wanted)) or 'nothing shown'}")

    def outcome(self, job: Job) -> Outcome:
        """The stored outcome that answers ``job`` (see the module docstring for which)."""
        task = self.task_of(job.train)
        key = job.activation.key()
        runs = self.outcomes[task.name].get(key)
        if runs is None:
            raise ConfigError(f"{job.activation.expression!r} is outside the table's space "
                              f"({_space_line(self.space)}); restrict the search to it")
        return runs[task.replicate(job.train.seed)]

    # ------------------------------------------------------------------------------------- the file
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TABLE_FORMAT,
            "version": TABLE_VERSION,
            "space": dict(self.space),
            "datasheet": dict(self.datasheet),
            "fields": ["status", *FIELDS],
            "tasks": [{"name": t.name, "settings": dict(t.settings), "seeds": list(t.seeds)} for t in self.tasks],
            "functions": [[f.key, f.canonical, f.tree] for f in self.functions],
            "outcomes": {task: {key: [o.to_list() for o in runs] for key, runs in by_key.items()}
                         for task, by_key in self.outcomes.items()},
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Table:
        """A table checked like user input (malformed: KeyError, TypeError or ValueError)."""
        if values.get("format") != TABLE_FORMAT or values.get("version") != TABLE_VERSION:
            raise ValueError(f"not an {TABLE_FORMAT} file of version {TABLE_VERSION}")
        if list(values["fields"]) != ["status", *FIELDS]:
            raise ValueError(f"fields must be {['status', *FIELDS]}")
        tasks = tuple(TableTask(str(t["name"]), dict(t["settings"]), tuple(int(s) for s in t["seeds"]))
                      for t in values["tasks"])
        if not tasks or any(not t.seeds for t in tasks):
            raise ValueError("a table needs at least one task, each with at least one seed")
        functions = tuple(TableFunction(str(k), str(c), str(t)) for k, c, t in values["functions"])
        outcomes = {}
        for task in tasks:
            by_key = values["outcomes"][task.name]
            outcomes[task.name] = {str(key): tuple(Outcome.from_list(o) for o in runs) for key, runs in by_key.items()}
            if any(len(runs) != len(task.seeds) for runs in outcomes[task.name].values()):
                raise ValueError(f"task {task.name}: every function needs one outcome per seed")
        return cls(dict(values["space"]), dict(values["datasheet"]), tasks, functions, outcomes)


def write_table(table: Table, path: str | Path) -> None:
    """Write ``table`` as gzipped JSON (deterministic: sorted keys, no timestamp in the gzip header)."""
    text = json.dumps(table.to_dict(), sort_keys=True, separators=(",", ":")).encode()
    Path(path).write_bytes(gzip.compress(text, mtime=0))


def read_table(path: str | Path) -> Table:
    """Read a table file; anything that is not a well-formed table is one UserError naming the file."""
    try:
        with gzip.open(Path(path), "rb") as stream:
            text = stream.read(MAX_TABLE_BYTES + 1)
        if len(text) > MAX_TABLE_BYTES:
            raise ValueError(f"larger than {MAX_TABLE_BYTES // 2**20} MiB uncompressed")
        return Table.from_dict(json.loads(text))
    except (OSError, EOFError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise UserError(f"{path}: not a readable afos table ({type(error).__name__}: {error})") from None


class ReplayExecutor(Closing):
    """An executor that answers every job from a :class:`Table` (see the module docstring); trains nothing."""

    width = 1

    def __init__(self, table: Table) -> None:
        self.table = table
        self.answered = 0

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        for job in jobs:
            result = self.table.outcome(job).result()
            self.answered += 1
            on_result(job, result)

    def close(self) -> None:
        """Nothing to release: no worker ever started."""


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _differences(have: Mapping[str, Any], want: Mapping[str, Any]) -> list[str]:
    return [f"{key} (table {have.get(key)!r}, job {want.get(key)!r})"
            for key in sorted(set(have) | set(want)) if have.get(key) != want.get(key)]


def _space_line(space: Mapping[str, Any]) -> str:
    return "; ".join(f"{key} {value}" for key, value in space.items() if not isinstance(value, (dict, list)))
