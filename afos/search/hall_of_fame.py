"""The hall of fame: the best distinct functions a search has found, as typed entries.

Like DEAP's ``HallOfFame`` it keeps the best individuals ever seen, here keyed by activation key (two trees
computing one function are one entry) and ranked by (rung, fitness), so a function is compared only with
functions trained at the same budget. An entry's statistics come from the search's own runs of it at the
full budget, so the hall of fame depends on the config and seed alone.

A search that minimises cost too keeps a :class:`ParetoArchive` in its place (DEAP's ``ParetoFront``, keyed
the same way): every function trained at the full budget that no other one dominates in accuracy and cost.
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


class ParetoArchive(HallOfFame):
    """The front of accuracy against cost of the functions trained at the full budget (rung ``top_rung``):
    none is dominated by another (as accurate or more, as cheap or cheaper, and better in one). Ranked like
    a hall of fame, most accurate first. Two objectives keep it small: one function per distinct cost at most."""

    def __init__(self, top_rung: int, entries: Iterable[HallOfFameEntry] = ()) -> None:
        super().__init__(0, ())
        self.top_rung = top_rung
        self.update(entries)

    def update(self, entries: Iterable[HallOfFameEntry]) -> None:
        """Add the entries of functions at the full budget not in it yet, then drop the dominated ones (of
        two with equal fitness and cost, the one in it first stays)."""
        for entry in entries:
            if entry.fitness.rung == self.top_rung and entry.fitness.cost is not None:
                self._entries.setdefault(entry.key, entry)
        members = self.ranked()
        self._entries = {entry.key: entry for entry in members
                         if not any(other.fitness.dominates(entry.fitness) for other in members)}


def is_front(entries: Sequence[HallOfFameEntry]) -> bool:
    """Whether ``entries`` are a Pareto archive's (they carry a cost), not a hall of fame's."""
    return any(entry.fitness.cost is not None for entry in entries)


def cheapest_first(entries: Sequence[HallOfFameEntry]) -> list[HallOfFameEntry]:
    """A front's members that trained ok, cheapest first (none of a hall of fame: its entries carry no cost)."""
    members = [entry for entry in entries if entry.ok and entry.fitness.cost is not None]
    return sorted(members, key=lambda entry: (entry.fitness.cost or 0.0, -entry.fitness.value, entry.key))


def spread(front: Sequence[HallOfFameEntry], count: int) -> list[HallOfFameEntry]:
    """``count`` members of a front spread along it by cost, its cheapest and its most accurate included
    (all of them when it has no more); the most accurate first."""
    members = cheapest_first(front)
    if len(members) > count:
        picks = {round(i * (len(members) - 1) / (count - 1)) for i in range(count)} if count > 1 else {len(members) - 1}
        members = [members[i] for i in sorted(picks)]
    return sorted(members, key=lambda entry: entry.rank_key)


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
        fitness=fitness,
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
