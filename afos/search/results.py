"""What a search's database holds, read back: its hall of fame, generations, baselines and confirmation.

Readers (reports, ``afos runs``, ``evaluate --from-search``) import this, not the loop that wrote it: reading
a search needs its database and its records only. A database is untrusted input: a stored value that does
not read back as its record is a :class:`~afos.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from afos.errors import StoreError
from afos.records.evaluation import EvalKey, Evaluation
from afos.records.runs import MetaKey
from afos.records.search import Baseline, Generation, HallOfFameEntry
from afos.search.config import score
from afos.search.confirmation import ConfirmationPlan, Finalist, PlannedFunction, summarise
from afos.space.display import display_form
from afos.stats.common import finite_mean
from afos.storage.store import RunStore


def hall_of_fame(store: RunStore) -> list[HallOfFameEntry]:
    """The hall of fame of the last completed generation, best first."""
    saved = store.last_generation()
    return list(saved.hall_of_fame) if saved else []


def generations(store: RunStore) -> list[Generation]:
    return store.generations()


def shown_form(entry: HallOfFameEntry) -> str:
    """A hall-of-fame function as shown: learned constants with their mean ± spread over the runs."""
    learned = {name: values for name, values in entry.learned_runs.items() if values}
    return display_form(entry.canonical, learned=learned) if learned else entry.canonical


@dataclass(frozen=True)
class BaselineSummary:
    """A baseline the search trained on its fitness seeds: its runs' mean fitness and accuracies, and their
    measured time per training step (:func:`seconds_per_step`)."""

    expression: str
    canonical: str
    n_runs: int
    fitness: float | None
    val_accuracy: float | None
    test_accuracy: float | None
    statuses: str
    step_seconds: float | None = None


def baseline_summaries(store: RunStore) -> list[BaselineSummary]:
    """Mean validation/test accuracy of each baseline (ReLU first), trained by the run on its fitness seeds."""
    stored = store.get_meta(MetaKey.BASELINE)
    stored = [stored] if isinstance(stored, dict) else stored if isinstance(stored, list) else []  # afos < 0.1: one
    protocols: dict[str, Any] = store.get_meta(MetaKey.PROTOCOLS) or {}
    config: dict[str, Any] = store.get_meta(MetaKey.CONFIG) or {}
    seeds = range(config.get("seed", 0), config.get("seed", 0) + config.get("fitness_seeds", 1))
    summaries = []
    for baseline in (_read(Baseline.from_dict, value, store, "baseline") for value in stored):
        records = [r for r in store.evaluations(activation_key=baseline.key)
                   if r.budget == baseline.budget and protocols.get(r.task) == r.protocol and r.seed in seeds]
        if not records:
            continue
        ok = [r for r in records if r.ok]
        summaries.append(BaselineSummary(
            baseline.expression, records[0].expression, len(records),
            finite_mean(score(r, config.get("fitness", "val_accuracy")) for r in records),
            finite_mean(r.val_accuracy for r in ok), finite_mean(r.test_accuracy for r in ok),
            ", ".join(sorted({r.status.value for r in records})), seconds_per_step(ok)))
    return summaries


def seconds_per_step(records: Iterable[Evaluation]) -> float | None:
    """The mean measured time of a training step over ``records`` that finished ok, from each run's own
    clock between its first and last validation pass (so the start-up the first run of a process pays, data
    loading and warm-up, is left out; a validation pass per epoch is in); recorded beside a function's cost,
    never its fitness. None when no run has two passes."""
    return finite_mean(_warm_step(r) for r in records if r.ok)


def _warm_step(record: Evaluation) -> float | None:
    if len(record.history) < 2 or record.history[-1].step <= record.history[0].step:
        return None
    first, last = record.history[0], record.history[-1]
    return (last.seconds - first.seconds) / (last.step - first.step)


def confirmation_plan(store: RunStore) -> ConfirmationPlan | None:
    """The plan the search's confirmation followed (None for a search without one)."""
    stored = store.get_meta(MetaKey.CONFIRMATION)
    return None if stored is None else _read(ConfirmationPlan.from_dict, stored, store, "confirmation")


def finalist_rows(store: RunStore) -> list[Finalist] | None:
    """The confirmation table of a search from its stored runs (None for a search without one)."""
    plan = confirmation_plan(store)
    protocols: dict[str, str] = store.get_meta(MetaKey.PROTOCOLS) or {}
    if plan is None:
        return None

    def records(function: PlannedFunction, seed: int) -> list[Evaluation] | None:
        found = [store.find_evaluation(EvalKey(function.key, protocol, plan.budget, seed, task))
                 for task, protocol in protocols.items()]
        return None if any(r is None for r in found) else [r for r in found if r is not None]

    return summarise(plan.functions, plan.seeds, records)


def _read(build: Any, value: Any, store: RunStore, what: str) -> Any:
    try:
        return build(value)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise StoreError(f"{store.path}: meta {what!r} is malformed ({error})") from None
