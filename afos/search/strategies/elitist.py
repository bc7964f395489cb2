"""What the GA and random search share: generation 0 from the seed expressions and random trees, and the
next population made of the elites carried over and every new candidate."""

from __future__ import annotations

from collections.abc import Collection

from afos.search.proposals import Proposals, Proposer
from afos.search.trees import Individual


class Elitist:
    """Generation 0 and the survivors of an elitist generational strategy; subclasses make the offspring."""

    def initial(self, proposer: Proposer, known: Collection[str], cap: int) -> Proposals:
        return proposer.initial(known, cap)

    def survivors(self, previous: list[Individual], carried: list[Individual],
                  offspring: list[Individual]) -> list[Individual]:
        return carried + offspring
