"""NSGA-II (Deb et al., 2002) over accuracy and cost.

Parents are chosen by binary tournaments under the crowded comparison (the lower Pareto rank wins, then the
larger crowding distance), their offspring made by the GA's operators with the same share of random
immigrants, and the next population is DEAP's ``selNSGA2`` of the previous population and the new candidates:
whole fronts first, the last one cut by crowding distance. Ranks and distances are computed afresh from the
population each generation, so a resumed search selects as the uninterrupted one. With successive halving
the rung is a third objective: a function trained further is never dominated by one stopped earlier.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass

from deap import tools
from deap.tools.emo import assignCrowdingDist

from afos.search.config import SearchConfig
from afos.search.proposals import Proposals, Proposer, Ranker, Selector
from afos.search.trees import Individual


@dataclass(frozen=True)
class NSGA2:
    """Crowded tournaments for parents, ``selNSGA2`` for survivors; generation 0 as the GA's."""

    population: int
    immigrants: float

    @classmethod
    def from_config(cls, config: SearchConfig) -> NSGA2:
        return cls(config.population, config.immigrants)

    def initial(self, proposer: Proposer, known: Collection[str], cap: int) -> Proposals:
        return proposer.initial(known, cap)

    def offspring(self, proposer: Proposer, population: list[Individual], elites: Collection[str],
                  known: Collection[str], cap: int, rank: Ranker | None, pool: int) -> Proposals:
        """Every slot is new (NSGA-II keeps its elites through the survivors, not by carrying them)."""
        return proposer.offspring(population, (), known, cap, rank, pool, immigrants=self.immigrants,
                                  select=crowded_tournament(population))

    def survivors(self, previous: list[Individual], carried: list[Individual],
                  offspring: list[Individual]) -> list[Individual]:
        return list(tools.selNSGA2(previous + offspring, self.population))


def crowded_tournament(population: list[Individual]) -> Selector:
    """A binary tournament under the crowded comparison, over the Pareto ranks and crowding distances of
    ``population`` (drawn from the search's random state, like every draw of a strategy)."""
    rank: dict[int, int] = {}
    for index, front in enumerate(tools.sortNondominated(population, len(population))):
        assignCrowdingDist(front)
        rank.update((id(individual), index) for individual in front)

    def select(candidates: list[Individual]) -> Individual:
        first, second = random.sample(candidates, 2) if len(candidates) > 1 else candidates * 2
        return min((first, second), key=lambda ind: (rank[id(ind)], -ind.fitness.crowding_dist))

    return select
