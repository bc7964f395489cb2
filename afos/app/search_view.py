"""One search run as its page and the API show it, read from its database in one go (read-only).

Reading a run means reading untrusted input: whatever a database holds that does not read back as afos's
records becomes a :class:`~afos.errors.StoreError` here, which the routes turn into a message on that run's
page, never into a broken server. Views are cached under the run's version (:mod:`afos.app.folders`), so
twenty readers polling a live search cost one read per change, not twenty.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from afos.app.folders import clipped, run_files, shown
from afos.app.sketch import Sketch, sketch
from afos.errors import ConfigError
from afos.records.evaluation import Evaluation
from afos.records.runs import MetaKey, RunSummary
from afos.records.search import CandidateRecord, CandidateStatus, Counts, Generation, HallOfFameEntry
from afos.runs.listing import summary
from afos.search.confirmation import Finalist
from afos.search.results import BaselineSummary, baseline_summaries, finalist_rows, hall_of_fame
from afos.search.verdict import verdict_sentence
from afos.space.display import expression_size
from afos.space.features import CONSTANT
from afos.storage.layout import run_database
from afos.storage.store import RunStore
from afos.training.data.registry import default_model

#: Failed runs a page lists; the API pages through all of them.
FAILED_SHOWN = 200


@dataclass(frozen=True)
class GenerationRow:
    """One generation as a page shows it: numbered from 1, with the trainings spent up to its end and the
    best fitness seen so far (the anytime curve)."""

    generation: int
    best: float | None
    median: float | None
    mean: float | None
    counts: Counts
    rank_correlation: float | None
    trainings: int
    best_so_far: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "best": self.best, "median": self.median, "mean": self.mean,
                "counts": vars(self.counts), "rank_correlation": self.rank_correlation,
                "trainings": self.trainings, "best_so_far": self.best_so_far}


@dataclass(frozen=True)
class HallRow:
    """One hall-of-fame function with how it came to be, its size, a sketch of f and f', and the fitness a
    surrogate predicted for it before it was trained (None without one)."""

    rank: int
    entry: HallOfFameEntry
    lineage: str
    parents: tuple[str, ...]
    size: int
    sketch: Sketch | None
    predicted: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, **self.entry.to_dict(), "generation": self.entry.generation + 1,
                "lineage": self.lineage, "parents": list(self.parents), "size": self.size, "predicted": self.predicted}


@dataclass(frozen=True)
class SearchView:
    """Everything a search's page shows: ``failed`` and ``screened`` hold the first FAILED_SHOWN of each."""

    summary: RunSummary
    config: dict[str, Any]
    generations: tuple[GenerationRow, ...]
    hall: tuple[HallRow, ...]
    baselines: tuple[BaselineSummary, ...]
    finalists: tuple[Finalist, ...]
    verdict: str | None
    failed: tuple[tuple[int, Evaluation], ...]
    screened: tuple[CandidateRecord, ...]
    relu_fitness: float | None
    searched: tuple[tuple[str, str], ...] = ()
    files: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary.to_dict(), "config": self.config,
                "generations": [g.to_dict() for g in self.generations],
                "hall_of_fame": [h.to_dict() for h in self.hall],
                "baselines": [vars(b) for b in self.baselines],
                "finalists": [f.to_dict() for f in self.finalists], "verdict": self.verdict,
                "failed": [{"id": i, **e.to_dict()} for i, e in self.failed],
                "screened": [{"canonical": c.canonical, "tree": c.tree, "generation": c.generation + 1, "reason": c.reason}
                             for c in self.screened],
                "relu_fitness": self.relu_fitness, "searched": dict(self.searched), "files": list(self.files)}


@lru_cache(maxsize=32)
def search_view(folder: Path, version: str) -> SearchView:
    """The view of the search in ``folder`` at ``version`` (the cache key: a new write makes a new view)."""
    row = summary(run_database(folder))
    with RunStore(run_database(folder), readonly=True) as store:
        config = store.get_meta(MetaKey.CONFIG, {}) or {}
        candidates = {c.key: c for c in store.candidates()}
        finalists = tuple(finalist_rows(store) or ())
        baselines = tuple(baseline_summaries(store))
        saved = store.generations()
        predicted = {key: value for generation in saved for key, value in generation.stats.predicted.items()}
        hall = tuple(_hall_row(rank, entry, candidates.get(entry.key), predicted.get(entry.key))
                     for rank, entry in enumerate(hall_of_fame(store), 1))
        screened = tuple(replace(c, reason=c.reason and clipped(c.reason)) for c in candidates.values()
                         if c.status is CandidateStatus.SCREENED)[:FAILED_SHOWN]
        failed = tuple((row, shown(e)) for row, e in store.evaluation_page(failed=True, limit=FAILED_SHOWN))
        return SearchView(row, config, _generation_rows(saved), hall, baselines, finalists,
                          verdict_sentence(finalists) if finalists else None,
                          failed, screened, next((b.fitness for b in baselines if b.expression == "relu"), None),
                          searched(config), tuple(run_files(folder)))


def searched(config: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """What a search searched, as labelled facts for its page: the task, the training, the space and the
    budget, read from its stored config (missing or malformed values are left out, never guessed)."""
    train = config.get("train")
    train = train if isinstance(train, dict) else {}
    length = f"{train['steps']} steps" if train.get("steps") else f"{train.get('epochs', '?')} epochs"
    facts = {
        "tasks": ", ".join(map(str, config.get("tasks") or [])) or _task(train),
        "training": f"{length}, batch {train.get('batch_size', '?')}, {train.get('optimizer', '?')} lr {train.get('lr', '?')}",
        "primitives": str(config.get("primitives", "?")),
        "search": f"{config.get('strategy', '?')}, surrogate {config.get('surrogate', 'none')}, population "
                  f"{config.get('population', '?')} × {config.get('generations', '?')} generations",
        "objectives": " and ".join(map(str, config.get("objectives") or ["accuracy"])),
        "fitness": f"{config.get('fitness', '?')} on {config.get('fitness_seeds', '?')} seed(s), seed {config.get('seed', '?')}",
        "budget": ", ".join(f"{key} {config[key]}" for key in ("max_evals", "time_limit") if config.get(key)) or "generations",
    }
    return tuple(facts.items())


def _task(train: dict[str, Any]) -> str:
    """``dataset / model``, the model a search left to its dataset's default named as such."""
    dataset, model = str(train.get("dataset", "?")), train.get("model")
    if model:
        return f"{dataset} / {model}"
    try:
        return f"{dataset} / {default_model(dataset)} (its default)"
    except ConfigError:
        return f"{dataset} / its default model"


def _generation_rows(saved: list[Generation]) -> tuple[GenerationRow, ...]:
    rows, spent, best = [], 0, None
    for generation in saved:
        stats = generation.stats
        spent += stats.counts.trained + stats.counts.reused
        if stats.best is not None:
            best = stats.best if best is None else max(best, stats.best)
        rows.append(GenerationRow(generation.generation + 1, stats.best, stats.median, stats.mean, stats.counts,
                                  stats.rank_correlation, spent, best))
    return tuple(rows)


def _hall_row(rank: int, entry: HallOfFameEntry, candidate: CandidateRecord | None, predicted: float | None) -> HallRow:
    lineage = candidate.lineage if candidate is not None else None
    constants = sorted(set(CONSTANT.findall(entry.canonical)))
    return HallRow(rank, entry, lineage.describe() if lineage else "-", lineage.parents if lineage else (),
                   expression_size(entry.canonical, constants), sketch(entry.canonical, _learned(entry, constants)),
                   predicted)


def _learned(entry: HallOfFameEntry, constants: list[str]) -> tuple[tuple[str, float], ...]:
    """Each learnable constant at its mean over the runs that learned it (1, its start, when none did)."""
    values = []
    for name in constants:
        learned = [v for v in entry.learned_runs.get(name, []) if v is not None]
        values.append((name, sum(learned) / len(learned) if learned else 1.0))
    return tuple(values)
