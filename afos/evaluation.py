"""The evaluation layer: the one path from "this training run is needed" to a stored, typed record.

Search, ``afos evaluate`` and ``afos compare`` describe each training run they need as an
:class:`EvalRequest` and hand lists of them to :meth:`Evaluator.ensure`, which returns one
:class:`Evaluation` per request after

1. looking the request up in the run's own database (a resumed run reads its finished runs back),
2. else copying it from another run's database under the same results root (a *cache*: the record is
   a fact about the function under the protocol, so it is copied, never trained again),
3. else training it through the executor and committing the record as it arrives.

Whatever path a record takes, its values are the same (training is seeded; on the CPU bit for bit), so
a caller that decides only from the returned records decides the same way whether it ran alone, beside
a twin, resumed, or on another executor. Callers must therefore never look at other runs themselves.

The identity of a stored result is :class:`EvalKey`: the activation's key, the *protocol* (a hash of
every training setting that changes what a number means, derived in exactly one place,
:func:`afos.training.protocol.protocol_id`), the budget in epochs, the seed and the task.

This module does not import the store: the database is handed in as a :class:`RunDatabase` (and the
cache of other runs as a :class:`RecordCache`), so the layers stay one-way (the store sits above and
serialises these records).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Protocol

from afos.activation.spec import ActivationSpec
from afos.errors import BudgetSpent, TimeUp
from afos.execution.contract import Executor, Job
from afos.records.evaluation import EvalKey, Evaluation, FitnessResult, Origin, Phase
from afos.training.config import TrainConfig
from afos.training.protocol import protocol_id, resolve_train


@dataclass(frozen=True)
class EvalRequest:
    """One training run that a caller needs: what to train, under which resolved config, and why.

    ``train`` is resolved (model filled in) with ``epochs`` the budget and ``seed`` the run's seed; build
    requests with :meth:`make`. ``label`` is the canonical expression stored with the record.
    """

    activation: ActivationSpec
    train: TrainConfig
    label: str
    phase: Phase = Phase.SEARCH
    generation: int | None = None

    @classmethod
    def make(cls, activation: ActivationSpec, train: TrainConfig, *, budget: float, seed: int, label: str,
             phase: Phase = Phase.SEARCH, generation: int | None = None) -> EvalRequest:
        config = resolve_train(replace(train, epochs=float(budget), seed=int(seed), steps=None))
        return cls(activation, config, label, phase, generation)

    @property
    def task(self) -> str:
        return f"{self.train.dataset}/{self.train.model}"

    @cached_property
    def key(self) -> EvalKey:
        return EvalKey(self.activation.key(), protocol_id(self.train), float(self.train.epochs), self.train.seed,
                       self.task)


# -------------------------------------------------------------------------------------- the evaluator


def record_of(request: EvalRequest, result: FitnessResult, *, attempts: int = 1) -> Evaluation:
    """The record of ``request`` trained just now."""
    return Evaluation.of(result, request.key, expression=request.label, activation=request.activation.to_dict(),
                         phase=request.phase, generation=request.generation, attempts=attempts, created=time.time())


class RunDatabase(Protocol):
    """What the evaluation layer needs of a run database (:class:`afos.store.RunStore` provides it)."""

    def find_evaluation(self, key: EvalKey) -> Evaluation | None: ...

    def add_evaluation(self, evaluation: Evaluation) -> None: ...


class RecordCache(Protocol):
    """Finished records of *other* runs (:class:`afos.store.SiblingRuns`): ``(record, run name)`` or None."""

    def find(self, key: EvalKey) -> tuple[Evaluation, str] | None: ...


OnRecord = Callable[[Evaluation], None]


class Evaluator:
    """Look up, reuse, or train: see the module docstring. One per run database and executor."""

    def __init__(self, store: RunDatabase, executor: Executor, *, cache: RecordCache | None = None,
                 on_record: OnRecord | None = None) -> None:
        self.store = store
        self.executor = executor
        self.cache = cache
        self.listeners: list[OnRecord] = [on_record] if on_record else []

    def listen(self, on_record: OnRecord) -> None:
        """Also call ``on_record`` with each record as it is committed (trained or reused)."""
        self.listeners.append(on_record)

    def ensure(self, requests: Sequence[EvalRequest], *, limit: int | None = None,
               deadline: float | None = None) -> list[Evaluation]:
        """One record per request, in order (requests with one key share one record).

        ``limit`` caps how many records this call may *add* to the database (trained or reused alike,
        so that a budget ends at the same point whatever other runs hold); past it, :class:`BudgetSpent`
        is raised after the allowed ones are committed. ``deadline`` (``time.monotonic()``) is checked
        between batches of the executor's width; past it, :class:`TimeUp`.
        """
        found: dict[EvalKey, Evaluation] = {}
        missing: dict[EvalKey, tuple[EvalRequest, int]] = {}
        for request in requests:
            key = request.key
            if key in found or key in missing:
                continue
            stored = self.store.find_evaluation(key)
            if stored is not None and stored.final:
                found[key] = replace(stored, origin=Origin.RESUMED) if stored.origin is Origin.TRAINED else stored
            else:
                missing[key] = (request, stored.attempts if stored else 0)
        pending = list(missing.values())
        allowed = pending if limit is None else pending[: max(0, limit)]
        self._reuse(allowed, found)
        self._train([item for item in allowed if item[0].key not in found], found, deadline)
        if len(allowed) < len(pending):
            raise BudgetSpent
        return [found[request.key] for request in requests]

    def _reuse(self, items: Iterable[tuple[EvalRequest, int]], found: dict[EvalKey, Evaluation]) -> None:
        if self.cache is None:
            return
        for request, _ in items:
            hit = self.cache.find(request.key)
            if hit is None or not hit[0].final:
                continue
            record, run = hit
            copy = replace(record, expression=request.label, phase=request.phase, generation=request.generation,
                           origin=Origin.REUSED, source=run, attempts=1, created=time.time())
            self._commit(copy, found)

    def _train(self, items: list[tuple[EvalRequest, int]], found: dict[EvalKey, Evaluation],
               deadline: float | None) -> None:
        by_job = {str(index): item for index, item in enumerate(items)}
        jobs = [Job(name, request.activation, request.train)
                for name, (request, _) in by_job.items()]

        def finished(job: Job, result: FitnessResult) -> None:
            request, attempts = by_job[job.key]
            self._commit(record_of(request, result, attempts=attempts + 1), found)

        size = len(jobs) if deadline is None else max(1, self.executor.width)
        for start in range(0, len(jobs), max(1, size)):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeUp
            self.executor.run(jobs[start: start + size], finished)

    def _commit(self, evaluation: Evaluation, found: dict[EvalKey, Evaluation]) -> None:
        self.store.add_evaluation(evaluation)
        found[evaluation.key] = evaluation
        for listener in self.listeners:
            listener(evaluation)
