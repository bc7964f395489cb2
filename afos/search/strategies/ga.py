"""The genetic algorithm: tournament selection, subtree crossover and mutation (DEAP's operators), with a
share of random immigrants, and the elites carried over unchanged (``eaSimple`` with elitism)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from afos.search.config import SearchConfig
from afos.search.proposals import Proposals, Proposer, Ranker
from afos.search.strategies.elitist import Elitist
from afos.search.trees import Individual


@dataclass(frozen=True)
class GeneticAlgorithm(Elitist):
    """Varied offspring of the population fill ``1 - immigrants`` of a generation's slots, random trees the
    rest; the next population is the elites and every new candidate."""

    immigrants: float

    @classmethod
    def from_config(cls, config: SearchConfig) -> GeneticAlgorithm:
        return cls(config.immigrants)

    def offspring(self, proposer: Proposer, population: list[Individual], elites: Collection[str],
                  known: Collection[str], cap: int, rank: Ranker | None, pool: int) -> Proposals:
        return proposer.offspring(population, elites, known, cap, rank, pool, immigrants=self.immigrants)
