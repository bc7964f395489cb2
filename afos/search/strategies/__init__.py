"""Search strategies: what decides the candidates of each generation and which functions survive it.

A strategy is one module here and one line of :data:`STRATEGIES`. The loop (:class:`afos.search.loop.Search`)
asks its strategy for the first generation, for the proposals of each later one from the population so far,
and for the survivors; the mechanics every strategy shares stay outside it: the :class:`Proposer`'s
screening, de-duplication and bloat limits, the surrogate that ranks pools of proposals (any strategy may be
handed one), the evaluation, the hall of fame and the resume point. Every draw a strategy makes goes through
the search's own random state, so a search stays deterministic given its config and seed, resumable, and
identical on every executor, whatever its strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

from afos.records.settings import Strategy
from afos.search.config import SearchConfig
from afos.search.proposals import Proposals, Proposer, Ranker
from afos.search.strategies.ga import GeneticAlgorithm
from afos.search.strategies.nsga2 import NSGA2
from afos.search.strategies.random_search import RandomSearch
from afos.search.trees import Individual


class SearchStrategy(Protocol):
    """What a strategy decides."""

    def initial(self, proposer: Proposer, known: Collection[str], cap: int) -> Proposals:
        """Generation 0: at most ``cap`` candidates new to the run (``known`` keys have a fitness already)."""
        ...

    def offspring(self, proposer: Proposer, population: list[Individual], elites: Collection[str],
                  known: Collection[str], cap: int, rank: Ranker | None, pool: int) -> Proposals:
        """A later generation's candidates from the population so far, for the slots the ``elites`` (keys)
        leave; with ``rank`` (a surrogate), ``pool`` times as many proposed and the best ranked trained."""
        ...

    def survivors(self, previous: list[Individual], carried: list[Individual],
                  offspring: list[Individual]) -> list[Individual]:
        """The population the next generation varies, from the ``previous`` one, the elites ``carried`` over
        and the new candidates (``offspring``, evaluated)."""
        ...


#: Every strategy, by its name in the config (``strategy``), built from the search config.
STRATEGIES: dict[Strategy, Callable[[SearchConfig], SearchStrategy]] = {
    Strategy.GA: GeneticAlgorithm.from_config,
    Strategy.RANDOM: RandomSearch.from_config,
    Strategy.NSGA2: NSGA2.from_config,
}


def strategy_for(config: SearchConfig) -> SearchStrategy:
    """The strategy ``config`` names."""
    return STRATEGIES[Strategy(config.strategy)](config)
