"""The settings of one search (:class:`SearchConfig`), checked by one rule table, and what they imply.

Every top-level key of a search config is a field here, with its rule in :data:`RULES` (``docs/config.md``
is generated from it). The functions below derive from a config what a search and its readers share: the
tasks and their protocols, the fitness seeds, the successive-halving budgets, the baselines and the score
of one training run."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Sequence

from afos.config import (
    BOOLEAN,
    MAX_SEED,
    Rule,
    check_keys,
    check_rules,
    integer,
    is_text,
    list_of,
    number,
    one_of,
    optional,
)
from afos.errors import ConfigError
from afos.records.evaluation import FitnessResult
from afos.records.settings import FitnessMeasure, Objective, Strategy, SurrogateKind
from afos.search.trees import MAX_TREE_DEPTH
from afos.space.parse import MAX_LITERAL, canonical
from afos.space.primitives import primitive_set as resolve_primitives
from afos.training.config import TrainConfig
from afos.training.protocol import protocol_id, resolve_train, split_task

RELU = "relu"

#: Upper bounds of the search's sizes. Far beyond useful runs, they stop a typo (population = 1000000000)
#: from proposing forever. Trees: initial trees grow up to 2**depth nodes, and a tree of MAX_TREE_SIZE nodes
#: (at most 25 characters each) stays within the parser's limits when it is read back from the database.
MAX_POPULATION = 10_000
MAX_GENERATIONS = 100_000
MAX_INIT_DEPTH = 8
MAX_TREE_SIZE = 64
MAX_FITNESS_SEEDS = 100
MAX_HALVING_RUNGS = 10

_PROBABILITY = (number(0, 1), "a number in [0, 1]")
_TEXT_LIST = (list_of(is_text), "a list of strings")
RULES: dict[str, Rule] = {
    "primitives": (lambda v: is_text(v) or (list_of(is_text)(v) and bool(v)),
                   "a primitive set name (afos, swish, actbench) or a list of primitive names"),
    "constants": (list_of(number(-MAX_LITERAL, MAX_LITERAL)), f"a list of numbers within ±{MAX_LITERAL:g}"),
    "population": (integer(2, MAX_POPULATION), f"an integer in [2, {MAX_POPULATION}]"),
    "generations": (integer(1, MAX_GENERATIONS), f"an integer in [1, {MAX_GENERATIONS}]"),
    "seed_expressions": _TEXT_LIST,
    "seed": (integer(0, MAX_SEED), "an integer in [0, 2**63 - 1]"),
    "tournament_size": (integer(1, MAX_POPULATION), f"an integer in [1, {MAX_POPULATION}]"),
    "elites": (integer(0, MAX_POPULATION), "an integer >= 0, below population"),
    "hall_of_fame": (integer(1, MAX_POPULATION), f"an integer in [max(1, elites), {MAX_POPULATION}]"),
    "crossover_prob": _PROBABILITY,
    "mutation_prob": _PROBABILITY,
    "immigrants": _PROBABILITY,
    "strategy": (one_of(s.value for s in Strategy), f"one of {', '.join(s.value for s in Strategy)}"),
    "surrogate": (one_of(k.value for k in SurrogateKind), f"one of {', '.join(k.value for k in SurrogateKind)}"),
    "pool": (integer(2, 50), "an integer in [2, 50]"),
    "explore": _PROBABILITY,
    "init_min_depth": (integer(0, MAX_INIT_DEPTH), "an integer >= 0, at most init_max_depth"),
    "init_max_depth": (integer(0, MAX_INIT_DEPTH), f"an integer in [init_min_depth, {MAX_INIT_DEPTH}]"),
    "max_height": (integer(0, MAX_TREE_DEPTH), f"an integer in [init_max_depth, {MAX_TREE_DEPTH}]"),
    "max_size": (integer(1, MAX_TREE_SIZE), f"an integer in [1, {MAX_TREE_SIZE}]"),
    "max_evals": (optional(integer(1)), "None or an integer >= 1"),
    "time_limit": (optional(number(0, open_low=True)), "None or a number of seconds > 0"),
    "objectives": (lambda v: list_of(one_of(o.value for o in Objective))(v) and v[:1] == [Objective.ACCURACY.value]
                   and len(set(v)) == len(v), "[\"accuracy\"] or [\"accuracy\", \"cost\"]"),
    "fitness": (one_of(m.value for m in FitnessMeasure), f"one of {', '.join(m.value for m in FitnessMeasure)}"),
    "fitness_seeds": (integer(1, MAX_FITNESS_SEEDS), f"an integer in [1, {MAX_FITNESS_SEEDS}]"),
    "tasks": (list_of(is_text), "a list of 'DATASET/MODEL' strings"),
    "halving_rungs": (integer(1, MAX_HALVING_RUNGS), f"an integer in [1, {MAX_HALVING_RUNGS}]"),
    "halving_eta": (integer(2, 100), "an integer in [2, 100]"),
    "reuse_runs": BOOLEAN,
    "baseline": (lambda v: is_text(v) or list_of(is_text)(v),
                 "an expression or a built-in name, or a list of them (ReLU is always a baseline)"),
    "learnable_constants": BOOLEAN,
    "confirm": BOOLEAN,
    "confirm_top": (integer(1, MAX_POPULATION), f"an integer in [1, {MAX_POPULATION}]"),
    "confirm_seeds": (integer(2, MAX_FITNESS_SEEDS), f"an integer in [2, {MAX_FITNESS_SEEDS}]"),
    "confirm_epochs": (optional(number(0, open_low=True)), "None or a number of epochs > 0"),
}


@dataclass(frozen=True)
class SearchConfig:
    """Settings of one search; ``train`` is the fitness protocol. Frozen: built once at the boundary (a
    change is a new record, ``dataclasses.replace``). What each key does: docs/search.md; the keys and their
    rules: docs/config.md."""

    primitives: str | list[str] = "afos"
    constants: list[float] = field(default_factory=list)
    population: int = 12
    generations: int = 5
    seed_expressions: list[str] = field(default_factory=lambda: ["relu", "silu"])
    seed: int = 0
    tournament_size: int = 3
    elites: int = 2
    hall_of_fame: int = 10
    crossover_prob: float = 0.5
    mutation_prob: float = 0.5
    immigrants: float = 0.2
    strategy: str = "ga"
    surrogate: str = "knn"  # the best strategy on every hard task of the table (benchmarks/RESULTS.md)
    pool: int = 4
    explore: float = 0.25
    init_min_depth: int = 1
    init_max_depth: int = 3
    max_height: int = 6
    max_size: int = 20
    max_evals: int | None = None
    time_limit: float | None = None
    objectives: list[str] = field(default_factory=lambda: [Objective.ACCURACY.value])
    fitness: str = "val_accuracy"
    fitness_seeds: int = 1
    tasks: list[str] = field(default_factory=list)
    halving_rungs: int = 1
    halving_eta: int = 3
    reuse_runs: bool = True
    baseline: str | list[str] = field(default_factory=lambda: ["silu", "gelu"])
    learnable_constants: bool = False
    confirm: bool = True
    confirm_top: int = 5
    confirm_seeds: int = 5
    confirm_epochs: float | None = None
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> SearchConfig:
        """Raise :class:`ConfigError` naming the bad keys: each value's type and range (the rule table), then
        the bounds that relate two keys (with the option that sets the other)."""
        check_rules(self, RULES, "search config")
        relations = {
            "elites": (self.elites < self.population, f"below population ({self.population}; set it with --elites)"),
            "hall_of_fame": (self.hall_of_fame >= self.elites, "at least elites"),
            "init_min_depth": (self.init_min_depth <= self.init_max_depth, "at most init_max_depth"),
            "max_height": (self.max_height >= self.init_max_depth, "at least init_max_depth"),
            "strategy": (self.strategy != Strategy.NSGA2.value or self.costed,
                         'two objectives for nsga2 (objectives = ["accuracy", "cost"]; set it with --objectives)'),
        }
        for key, (ok, expected) in relations.items():
            if not ok:
                raise ConfigError(f"search config: {key}={getattr(self, key)!r} is invalid; expected {expected}")
        for task in self.task_list():
            split_task(task)
        for name in baseline_names(self.baseline):
            canonical(name)  # a baseline that does not parse is an error now, not after the search
        resolve_primitives(self.primitives)
        self.train.validate()
        return self

    @property
    def costed(self) -> bool:
        """Whether the search minimises cost beside maximising accuracy (and so keeps a Pareto front)."""
        return Objective.COST.value in self.objectives

    def task_list(self) -> list[str]:
        """``dataset/model`` pairs the fitness averages over (default: the train config's one)."""
        if self.tasks:
            return list(self.tasks)
        return [f"{self.train.dataset}/{resolve_train(self.train).model}"]

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["train"] = self.train.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SearchConfig:
        """Build from a config mapping (``train`` as a sub-table); unknown keys are errors by name."""
        check_keys(cls, values, "search config")
        settings = dict(values)
        settings["train"] = TrainConfig.from_dict(settings.get("train", {}))
        return cls(**settings).validate()

def baseline_names(baseline: str | Sequence[str]) -> list[str]:
    """ReLU always, then the config's baselines, each once."""
    names = [baseline] if isinstance(baseline, str) else list(baseline)
    return list(dict.fromkeys([RELU, *names]))


def score(record: FitnessResult, fitness: str | FitnessMeasure) -> float:
    """Fitness of one training run under the config's ``fitness``; failed runs score 0."""
    accuracy, loss = record.metric("val_accuracy"), record.metric("val_loss")
    if not record.ok or accuracy is None:
        return 0.0
    measure = FitnessMeasure(fitness)
    if measure is FitnessMeasure.ACCURACY_LOSS:
        return accuracy / loss if loss and loss > 0 else 0.0
    if measure is FitnessMeasure.VAL_F1:
        return record.metric("val_f1") or 0.0
    return accuracy


def task_configs(config: SearchConfig) -> list[TrainConfig]:
    """The resolved training config of each task (dataset and model set; budget and seed per request)."""
    configs = []
    for task in config.task_list():
        dataset, model = split_task(task)
        configs.append(resolve_train(replace(config.train, dataset=dataset, model=model)))
    return configs


def task_protocols(config: SearchConfig) -> dict[str, str]:
    """``task -> protocol id`` of a search: what its records are stored and found under."""
    return {f"{c.dataset}/{c.model}": protocol_id(c) for c in task_configs(config)}


def fitness_seeds(config: SearchConfig) -> list[int]:
    return list(range(config.seed, config.seed + config.fitness_seeds))


def budgets(config: SearchConfig) -> list[float]:
    """Epochs per successive-halving rung, ending at the full ``[train]`` budget."""
    full, eta, rungs = config.train.epochs, config.halving_eta, config.halving_rungs
    return [full / eta ** (rungs - 1 - r) for r in range(rungs)]


def expected_runs(config: SearchConfig) -> int:
    """The training runs a search is expected to need (the progress bar's total)."""
    per_candidate = len(config.task_list()) * config.fitness_seeds
    rungs = sum(1 / config.halving_eta ** r for r in range(config.halving_rungs))
    candidates = config.population + (config.generations - 1) * (config.population - config.elites)
    runs = math.ceil(candidates * per_candidate * rungs) + per_candidate  # + the baseline
    if config.confirm:
        runs += (config.confirm_top + len(baseline_names(config.baseline))) * len(config.task_list()) * config.confirm_seeds
    return runs if config.max_evals is None else min(runs, config.max_evals)
