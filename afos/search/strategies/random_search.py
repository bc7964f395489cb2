"""Random search, the baseline every search claim is measured against: after the same generation 0 as the
GA, every new candidate is drawn at random from the same tree generator. Everything else is the GA's:
elites, screening, de-duplication, budget, records and confirmation, so a comparison isolates what the
evolution buys."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from afos.search.config import SearchConfig
from afos.search.proposals import Proposals, Proposer, Ranker
from afos.search.strategies.elitist import Elitist
from afos.search.trees import Individual


@dataclass(frozen=True)
class RandomSearch(Elitist):
    """Every slot of a later generation is a random tree (an immigrant); survivors as in the GA."""

    @classmethod
    def from_config(cls, config: SearchConfig) -> RandomSearch:
        return cls()

    def offspring(self, proposer: Proposer, population: list[Individual], elites: Collection[str],
                  known: Collection[str], cap: int, rank: Ranker | None, pool: int) -> Proposals:
        return proposer.offspring(population, elites, known, cap, rank, pool, immigrants=1.0)
