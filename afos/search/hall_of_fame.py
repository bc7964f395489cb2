"""The hall of fame: the best distinct functions a search has found, as typed entries.

Like DEAP's ``HallOfFame`` it keeps the best individuals ever seen, here keyed by activation key (two trees
computing one function are one entry) and ranked by (rung, fitness), so a function is compared only with
functions trained at the same budget. An entry's statistics come from the search's own runs of it at the
full budget, so the hall of fame depends on the config and seed alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

from afos.records.evaluation import Evaluation
from afos.records.search import Fitness, HallOfFameEntry
from afos.search.proposals import Candidate
from afos.space.display import site_mean
from afos.stats.common import finite_mean


class HallOfFame:
    """At most ``size`` entries, best first; a function already in it keeps its first entry."""

    def __init__(self, size: int, entries: Iterable[HallOfFameEntry] = ()) -> None:
        self.size = size
        self._entries = {entry.key: entry for entry in entries}

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def ranked(self) -> list[HallOfFameEntry]:
        return sorted(self._entries.values(), key=lambda entry: entry.rank_key)

    def update(self, entries: Iterable[HallOfFameEntry]) -> None:
        """Add the entries of functions not in it yet, then keep the best ``size``."""
        for entry in entries:
            self._entries.setdefault(entry.key, entry)
        self._entries = {entry.key: entry for entry in self.ranked()[: self.size]}


def entry_of(candidate: Candidate, fitness: Fitness, generation: int,
             full_budget_runs: Sequence[Evaluation]) -> HallOfFameEntry:
    """The hall-of-fame entry of a candidate evaluated in ``generation``; ``full_budget_runs`` are the
    search's runs of it at the full budget (none if successive halving stopped it on a lower rung)."""
    runs = list(full_budget_runs)
    accuracies = [r.val_accuracy for r in runs if r.ok and r.val_accuracy is not None]
    return HallOfFameEntry(
        key=candidate.key,
        tree=str(candidate.tree),
        canonical=candidate.text,
        fitness=Fitness(*fitness),
        generation=generation,
        n_runs=len(runs),
        ok=bool(runs) and all(r.ok for r in runs),
        val_accuracy=finite_mean(accuracies),
        val_std=statistics.stdev(accuracies) if len(accuracies) > 1 else None,
        test_accuracy=finite_mean(r.test_accuracy for r in runs if r.ok),
        learned=runs[0].params if runs and candidate.learnable else None,
        learned_runs={name: [site_mean(r.params, name) for r in runs if r.ok] for name in candidate.learnable}
        if runs else {},
    )
