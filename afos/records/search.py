"""What a search saves after each generation: its statistics, population and hall of fame.

A :class:`Generation` is one resume point, committed in one transaction; readers (reports, ``afos runs``)
see the same typed records the search wrote. The JSON form keeps the key names afos has always stored
(``fingerprint`` for an activation key, ``fitness`` as ``[rung, value]``), so older run databases read back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any, NamedTuple

from afos.records.evaluation import Params


class CandidateStatus(str, Enum):
    """What screening said of a distinct function the first time it was proposed."""

    VALID = "valid"
    SCREENED = "screened"


class MadeBy(str, Enum):
    """How a candidate's tree was made: a seed expression or a random tree of generation 0, a random
    immigrant of a later generation (every candidate of a random search), or the offspring of parents."""

    SEED = "seed"
    RANDOM = "random"
    IMMIGRANT = "immigrant"
    OFFSPRING = "offspring"


@dataclass(frozen=True)
class Lineage:
    """Where a candidate came from: how it was made, the operators applied in order (``crossover``, then a
    mutation: ``subtree``, ``node replacement``, ``shrink``, ``insert``, ``insert constant``, ``remove
    constant``) and its parents' activation keys (the first selected first; none for seeds and random
    trees)."""

    made_by: MadeBy
    operators: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"made_by": self.made_by.value, "operators": list(self.operators), "parents": list(self.parents)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Lineage:
        return cls(MadeBy(values["made_by"]), tuple(str(o) for o in values.get("operators") or ()),
                   tuple(str(p) for p in values.get("parents") or ()))

    def describe(self) -> str:
        """``crossover + shrink``, ``seed``, ``immigrant``: how it reads in a genealogy."""
        return " + ".join(self.operators) if self.operators else self.made_by.value


@dataclass(frozen=True)
class CandidateRecord:
    """A distinct function as first proposed: its key, DEAP tree, canonical text, generation of discovery,
    the screening's verdict (``reason`` says why a screened one was refused) and its lineage (None in runs
    of an afos that did not record it)."""

    key: str
    tree: str
    canonical: str
    generation: int
    status: CandidateStatus
    reason: str | None = None
    created: float = 0.0
    lineage: Lineage | None = None


@dataclass(frozen=True)
class Counts:
    """What happened to the proposals of one generation."""

    proposed: int = 0
    duplicate: int = 0
    screened: int = 0
    trained: int = 0
    reused: int = 0
    failed: int = 0
    crossovers: int = 0
    mutations: int = 0
    ranked_out: int = 0  # valid proposals a surrogate ranked below the ones trained


class Fitness(NamedTuple):
    """A candidate's fitness: the successive-halving rung it reached (0: the first budget), its score there
    (the config's fitness, mean over seeds and tasks) and, in a search that minimises cost too, its cost in
    ReLUs (:mod:`afos.space.cost`; None otherwise). A tuple, compared lexicographically, so scores compare
    only at equal training budgets; named, so a reader writes ``fitness.value``.

    Stored as ``[rung, value]`` or ``[rung, value, cost]``, the form afos has always written."""

    rung: float
    value: float
    cost: float | None = None

    def dominates(self, other: Fitness) -> bool:
        """Pareto dominance: no worse in rung, value and cost (higher, higher, lower; a missing cost counts
        as 0) and better in one of them."""
        mine, theirs = self.maximised(), other.maximised()
        return all(a >= b for a, b in zip(mine, theirs)) and mine != theirs

    def maximised(self) -> tuple[float, float, float]:
        """(rung, value, -cost): each objective as a number to maximise."""
        return self.rung, self.value, -(self.cost or 0.0)

    def to_list(self) -> list[float]:
        return [self.rung, self.value] + ([] if self.cost is None else [self.cost])

    @classmethod
    def from_list(cls, values: Any) -> Fitness:
        rung, value, *cost = values
        return cls(float(rung), float(value), float(cost[0]) if cost else None)


@dataclass(frozen=True)
class GenerationStats:
    """A generation's counts and its population's best, mean and median fitness; with a surrogate, the
    fitness it predicted for each candidate it chose (activation key -> prediction) and the rank correlation
    between those predictions and the fitness obtained."""

    counts: Counts
    best: float | None
    mean: float | None
    median: float | None
    predicted: dict[str, float] = field(default_factory=dict)
    rank_correlation: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.counts), "best": self.best, "mean": self.mean, "median": self.median,
                "predicted": dict(self.predicted), "rank_correlation": self.rank_correlation}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> GenerationStats:
        counts = Counts(**{f.name: int(values.get(f.name) or 0) for f in fields(Counts)})
        predicted = {str(k): float(v) for k, v in (values.get("predicted") or {}).items()}
        return cls(counts, _number(values.get("best")), _number(values.get("mean")), _number(values.get("median")),
                   predicted, _number(values.get("rank_correlation")))


@dataclass(frozen=True)
class Member:
    """One tree of a population (DEAP tree text) with its fitness."""

    tree: str
    fitness: Fitness

    def to_dict(self) -> dict[str, Any]:
        return {"tree": self.tree, "fitness": self.fitness.to_list()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Member:
        return cls(str(values["tree"]), Fitness.from_list(values["fitness"]))


@dataclass(frozen=True)
class HallOfFameEntry:
    """One distinct function of a search's hall of fame.

    ``fitness`` is (rung, value); the accuracies are over the search's runs of it at the full budget;
    ``ok`` is whether every one of them finished ok. ``learned`` holds the learned parameters per activation
    site from the first full-budget run (None for a function without any), ``learned_runs`` each learnable
    constant's mean over the sites, per run that finished ok.
    """

    key: str
    tree: str
    canonical: str
    fitness: Fitness
    generation: int
    n_runs: int = 0
    ok: bool = True
    val_accuracy: float | None = None
    val_std: float | None = None
    test_accuracy: float | None = None
    learned: Params | None = None
    learned_runs: dict[str, list[float | None]] = field(default_factory=dict)

    @property
    def rank_key(self) -> tuple[float, float, str]:
        """Sorting by this ranks entries: higher rung, then higher fitness, then key (a fixed tie-break)."""
        return -self.fitness.rung, -self.fitness.value, self.key

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["fingerprint"] = values.pop("key")
        values["fitness"] = self.fitness.to_list()
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> HallOfFameEntry:
        return cls(
            key=str(values["fingerprint"]), tree=str(values["tree"]), canonical=str(values["canonical"]),
            fitness=Fitness.from_list(values["fitness"]), generation=int(values["generation"]),
            n_runs=int(values.get("n_runs") or 0), ok=bool(values.get("ok", True)),
            val_accuracy=_number(values.get("val_accuracy")), val_std=_number(values.get("val_std")),
            test_accuracy=_number(values.get("test_accuracy")), learned=values.get("learned") or None,
            learned_runs=dict(values.get("learned_runs") or {}),
        )


@dataclass(frozen=True)
class Baseline:
    """A reference function a search trains beside its candidates, at the full budget on the fitness seeds."""

    expression: str
    key: str
    budget: float

    def to_dict(self) -> dict[str, Any]:
        return {"expression": self.expression, "fingerprint": self.key, "budget": self.budget}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Baseline:
        return cls(str(values["expression"]), str(values["fingerprint"]), float(values["budget"]))


@dataclass(frozen=True)
class Generation:
    """A search's resume point after ``generation``: everything needed to continue from it.

    ``rng_state`` is the search's own random state in JSON form (see :mod:`afos.search.loop`).
    """

    generation: int
    stats: GenerationStats
    population: tuple[Member, ...]
    hall_of_fame: tuple[HallOfFameEntry, ...]
    rng_state: dict[str, Any]
    finished: float = 0.0


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
