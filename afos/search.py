"""The genetic search: DEAP trees in, a run database of trained candidates out.

Per generation the engine *proposes* candidates (elites from the hall of fame, tournament-selected
offspring varied by crossover and one of four mutations, and random immigrants) and only then *trains*
the new ones. Each proposal goes tree -> sympy -> fingerprint -> known? -> screening; a function that was
already evaluated (in this run or, on the same protocol, in a sibling run) or that fails screening costs
no training and its slot is refilled, so every generation trains the configured number of distinct,
valid candidates (unless the neighbourhood is exhausted, see :data:`REFILL_LIMIT`).

Crash safety and determinism: every training result is committed to the run database as it finishes,
and after each generation the population, the hall of fame and Python's random state are committed in one
transaction. Resuming replays the interrupted generation from that state: its proposals come out the
same, and evaluations already stored are read back instead of trained, so a resumed run ends with the
same hall of fame as an uninterrupted one (on CPU, where training is bit-reproducible).
"""

from __future__ import annotations

import math
import random
import sys
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from deap import gp, tools

from afos import data, models
from afos.compile import ActivationSpec, activation_key
from afos.errors import ConfigError, UserError
from afos.executors import Executor, Job, make_executor
from afos.space.parse import MAX_LITERAL, canonical
from afos.space.primitives import primitive_set as resolve_primitives
from afos.space.probe import fingerprint, screen
from afos.stats import finite_mean
from afos.store import RunStore, protocol_hash, rng_state_from_json, rng_state_to_json
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
    with_overrides,
)
from afos.train import TrainConfig, protocol_settings
from afos.trees import (
    MAX_TREE_DEPTH,
    Individual,
    insert_scale,
    learnable_starts,
    parse_tree,
    primitive_set,
    remove_scale,
    small_trees,
    to_sympy,
)

#: Proposals per open slot before a known (already evaluated) function is accepted with its stored
#: fitness instead of being refilled; bounds the work when the neighbourhood is exhausted.
REFILL_LIMIT = 50
FITNESSES = ("val_accuracy", "accuracy_loss")

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
_RULES: dict[str, Rule] = {
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
    "init_min_depth": (integer(0, MAX_INIT_DEPTH), "an integer >= 0, at most init_max_depth"),
    "init_max_depth": (integer(0, MAX_INIT_DEPTH), f"an integer in [init_min_depth, {MAX_INIT_DEPTH}]"),
    "max_height": (integer(0, MAX_TREE_DEPTH), f"an integer in [init_max_depth, {MAX_TREE_DEPTH}]"),
    "max_size": (integer(1, MAX_TREE_SIZE), f"an integer in [1, {MAX_TREE_SIZE}]"),
    "max_evals": (optional(integer(1)), "None or an integer >= 1"),
    "time_limit": (optional(number(0, open_low=True)), "None or a number of seconds > 0"),
    "fitness": (one_of(FITNESSES), f"one of {', '.join(FITNESSES)}"),
    "fitness_seeds": (integer(1, MAX_FITNESS_SEEDS), f"an integer in [1, {MAX_FITNESS_SEEDS}]"),
    "tasks": (list_of(is_text), "a list of 'DATASET/MODEL' strings"),
    "halving_rungs": (integer(1, MAX_HALVING_RUNGS), f"an integer in [1, {MAX_HALVING_RUNGS}]"),
    "halving_eta": (integer(2, 100), "an integer in [2, 100]"),
    "reuse_runs": BOOLEAN,
    "baseline": (is_text, "an expression or a built-in name, as a string"),
    "learnable_constants": BOOLEAN,
}


@dataclass
class SearchConfig:
    """Settings of one search; ``train`` is the fitness protocol. See the README's config reference."""

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
    init_min_depth: int = 1
    init_max_depth: int = 3
    max_height: int = 6
    max_size: int = 20
    max_evals: int | None = None
    time_limit: float | None = None
    fitness: str = "val_accuracy"
    fitness_seeds: int = 1
    tasks: list[str] = field(default_factory=list)
    halving_rungs: int = 1
    halving_eta: int = 3
    reuse_runs: bool = True
    baseline: str = "relu"
    learnable_constants: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> SearchConfig:
        """Raise :class:`ConfigError` naming the first bad key: each value's type and range (the rule table),
        then the bounds that relate two keys."""
        check_rules(self, _RULES, "search config")
        relations = {
            "elites": (self.elites < self.population, "below population"),
            "hall_of_fame": (self.hall_of_fame >= self.elites, "at least elites"),
            "init_min_depth": (self.init_min_depth <= self.init_max_depth, "at most init_max_depth"),
            "max_height": (self.max_height >= self.init_max_depth, "at least init_max_depth"),
        }
        for key, (ok, expected) in relations.items():
            if not ok:
                raise ConfigError(f"search config: {key}={getattr(self, key)!r} is invalid; expected {expected}")
        for task in self.task_list():
            _split_task(task)
        resolve_primitives(self.primitives)
        self.train.validate()
        return self

    def task_list(self) -> list[str]:
        """``dataset/model`` pairs the fitness averages over (default: the train config's one)."""
        if self.tasks:
            return list(self.tasks)
        return [f"{self.train.dataset}/{self.train.model or models.default_model(self.train.dataset)}"]

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


def _split_task(task: str) -> tuple[str, str]:
    dataset, _, model = task.partition("/")
    if dataset not in data.DATASETS or model not in models.MODELS:
        raise ConfigError(f"search config: task {task!r} must be DATASET/MODEL with a known dataset and model")
    return dataset, model


@dataclass
class Counts:
    """What happened to the proposals of one generation."""

    proposed: int = 0
    duplicate: int = 0
    screened: int = 0
    trained: int = 0
    failed: int = 0
    crossovers: int = 0
    mutations: int = 0


@dataclass
class Candidate:
    """A proposal that passed screening: its tree, expression text, fingerprint and learnable constants
    (name -> start value; empty unless ``learnable_constants``)."""

    tree: Individual
    text: str
    fingerprint: str
    learnable: dict[str, float] = field(default_factory=dict)


class _Stop(Exception):
    """The evaluation budget or the time limit ran out."""


Progress = Callable[[str], None]


class Search:
    """One search run, bound to its folder and database; :meth:`run` starts or resumes it."""

    def __init__(
        self, config: SearchConfig, run_dir: Path, *, progress: Progress | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.config = config.validate()
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.store = RunStore(self.run_dir / "afos.db")
        self.progress = progress or (lambda message: None)
        self.primitives = {p.name: p for p in resolve_primitives(config.primitives)}
        self.pset = primitive_set(self.primitives.values(), config.constants,
                                  learnable_constants=config.learnable_constants)
        self.protocol = protocol_hash(protocol_settings(config.train.to_dict()))
        self.executor = executor or make_executor("serial")
        self.known: dict[str, tuple[float, float]] = {}  # fingerprint -> fitness, as of generation start
        self.verdicts: dict[str, str | None] = {}  # fingerprint -> screening reason (None: valid)
        self.trainings = self.store.count_evaluations()  # --max-evals counts the whole run, resumes included
        self.started = time.monotonic()
        self.hof: dict[str, dict[str, Any]] = {}
        self.generation = 0

    # ------------------------------------------------------------------------------------ the loop
    def run(self) -> str:
        """Run (or resume) to the end; returns the final status: finished, budget, time-limit.

        Ctrl-C (KeyboardInterrupt) marks the run interrupted and propagates; nothing finished is lost.
        """
        self.store.set_meta("config", self.config.to_dict())
        self.store.set_meta("protocol", self.protocol)
        self.store.set_meta("status", "running")
        population, start = self._restore()
        status = "finished"
        try:
            for generation in range(start, self.config.generations):
                population = self._generation(generation, population)
        except _Stop as stop:
            status = str(stop)
            self.progress(f"stopped: {status}")
        except KeyboardInterrupt:
            self.store.set_meta("status", "interrupted")  # every finished evaluation is already committed
            raise
        self._baseline()
        self.store.set_meta("status", status)
        return status

    def _restore(self) -> tuple[list[Individual], int]:
        saved = self.store.last_generation()
        if saved is None:
            random.seed(self.config.seed)
            return [], 0
        py_state, _ = rng_state_from_json(saved["rng_state"])
        random.setstate(py_state)
        self.hof = {entry["fingerprint"]: entry for entry in saved["hall_of_fame"]}
        population = [self._individual(item) for item in saved["population"]]
        self.known = self._known_before(saved["generation"] + 1)
        self.progress(f"resuming after generation {saved['generation']}")
        return population, saved["generation"] + 1

    def _individual(self, item: Mapping[str, Any]) -> Individual:
        tree = parse_tree(item["tree"], self.pset)
        tree.fitness.values = tuple(item["fitness"])
        return tree

    def _generation(self, generation: int, population: list[Individual]) -> list[Individual]:
        self.generation = generation
        counts = Counts()
        if generation == 0:
            candidates, carried = self._initial(counts), []
        else:
            carried = self._elites()
            candidates = self._offspring(population, len(carried), counts)
        self.progress(f"generation {generation}: training {len(candidates)} candidates")
        fitnesses = self._evaluate(candidates, generation, counts)
        for candidate in candidates:
            candidate.tree.fitness.values = fitnesses[candidate.fingerprint]
        new_population = carried + [c.tree for c in candidates]
        self._update_hof(candidates, fitnesses, generation)
        self._save(generation, new_population, counts)
        return new_population

    # ------------------------------------------------------------------------------- proposals
    def _initial(self, counts: Counts) -> list[Candidate]:
        """Seed expressions first, then ramped half-and-half trees until the population is full."""
        accepted: list[Candidate] = []
        for tree in self._seed_trees():
            self._consider(tree, accepted, counts, accept_known=True)
        return self._fill(accepted, self.config.population, counts, self._random_tree)

    def _offspring(self, population: list[Individual], carried: int, counts: Counts) -> list[Candidate]:
        """Varied offspring of ``population``, then random immigrants, for the slots elites leave."""
        slots = self.config.population - carried
        immigrants = min(slots, round(self.config.immigrants * self.config.population))
        taken = set(self._elite_fingerprints())
        accepted = self._fill([], slots - immigrants, counts, lambda: self._vary(population, counts), taken)
        return self._fill(accepted, slots, counts, self._random_tree, taken)

    def _fill(
        self, accepted: list[Candidate], size: int, counts: Counts,
        propose: Callable[[], Individual], taken: set[str] | None = None,
    ) -> list[Candidate]:
        """Propose until ``accepted`` holds ``size`` candidates; after :data:`REFILL_LIMIT` fruitless
        proposals in a row a known function is accepted (with its stored fitness) rather than none."""
        since = 0  # fruitless proposals in a row
        while len(accepted) < size:
            before = len(accepted)
            self._consider(propose(), accepted, counts, accept_known=since >= REFILL_LIMIT, taken=taken)
            since = 0 if len(accepted) > before else since + 1
            if since > 2 * REFILL_LIMIT:
                break  # even known functions are exhausted: a smaller generation beats an endless loop
        return accepted

    def _consider(
        self, tree: Individual, accepted: list[Candidate], counts: Counts, *, accept_known: bool,
        taken: set[str] | None = None,
    ) -> None:
        """The per-candidate path up to training: sympy, fingerprint, duplicate check, screening."""
        counts.proposed += 1
        expr, starts = to_sympy(tree, self.primitives), learnable_starts(tree)
        try:
            key = activation_key(expr, starts)
        except UserError:
            counts.screened += 1
            return
        in_generation = any(c.fingerprint == key for c in accepted) or key in (taken or set())
        if in_generation or (key in self.known and not accept_known):
            counts.duplicate += 1
            return
        if self._screen(key, expr, tree, starts) is not None:
            counts.screened += 1
            return
        accepted.append(Candidate(tree, canonical(expr), key, starts))

    def _screen(self, key: str, expr: Any, tree: Individual, starts: Mapping[str, float]) -> str | None:
        if key not in self.verdicts:
            verdict = screen(expr, starts)
            self.verdicts[key] = verdict.reason
            self.store.add_candidate(
                fingerprint=key, expression=str(tree), canonical=canonical(expr), tree=str(tree),
                generation=self.generation, status="valid" if verdict.valid else "screened",
                reason=verdict.reason,
            )
        return self.verdicts[key]

    def _seed_trees(self) -> list[Individual]:
        """Seed expressions as trees: tree text directly, else the smallest tree with the same function."""
        trees = []
        for text in self.config.seed_expressions:
            try:
                trees.append(parse_tree(text, self.pset))
                continue
            except ConfigError:
                pass
            target = fingerprint(text)
            match = next((t for t in small_trees(self.pset) if _safe_fingerprint(to_sympy(t, self.primitives)) == target), None)
            if match is None:
                self.progress(f"seed {text!r} cannot be built from the primitive set; skipped")
            else:
                trees.append(match)
        return trees

    def _random_tree(self) -> Individual:
        return Individual(gp.genHalfAndHalf(self.pset, self.config.init_min_depth, self.config.init_max_depth))

    def _vary(self, population: list[Individual], counts: Counts) -> Individual:
        """Tournament-select a parent, then maybe cross it with a second one and maybe mutate it."""
        first = self._clone(tools.selTournament(population, 1, self.config.tournament_size)[0])
        if random.random() < self.config.crossover_prob:
            second = self._clone(tools.selTournament(population, 1, self.config.tournament_size)[0])
            first = self._limited(first, gp.cxOnePoint(first, second)[0])
            counts.crossovers += 1
        if random.random() < self.config.mutation_prob:
            first = self._limited(first, self._mutate(self._clone(first)))
            counts.mutations += 1
        return first

    def _mutate(self, tree: Individual) -> Individual:
        """One of four mutations, chosen uniformly: subtree, node replacement, shrink, insert; with
        learnable constants also inserting or removing a constant (six, uniformly)."""
        kind = random.randrange(6 if self.config.learnable_constants else 4)
        if kind == 4:
            return insert_scale(tree, self.pset)
        if kind == 5:
            return remove_scale(tree)
        if kind == 0:
            return gp.mutUniform(tree, lambda pset, type_: gp.genFull(pset, 0, 2), self.pset)[0]
        if kind == 1:
            return gp.mutNodeReplacement(tree, self.pset)[0]
        if kind == 2:
            return gp.mutShrink(tree)[0]
        return gp.mutInsert(tree, self.pset)[0]

    def _limited(self, parent: Individual, child: Individual) -> Individual:
        """Bloat control: a child over the height or size limit is replaced by its parent."""
        if child.height > self.config.max_height or len(child) > self.config.max_size:
            return parent
        return child

    @staticmethod
    def _clone(tree: Individual) -> Individual:
        copy = Individual(tree)
        copy.fitness.values = tree.fitness.values
        return copy

    def _elite_fingerprints(self) -> list[str]:
        return [entry["fingerprint"] for entry in self._ranked_hof()[: self.config.elites]]

    def _elites(self) -> list[Individual]:
        return [self._individual(entry) for entry in self._ranked_hof()[: self.config.elites]]

    # ------------------------------------------------------------------------------ evaluation
    def _evaluate(self, candidates: list[Candidate], generation: int, counts: Counts) -> dict[str, tuple[float, float]]:
        """Fitness of each candidate; with successive halving only the top 1/eta climb each rung."""
        budgets = self._budgets()
        fitness = {c.fingerprint: self.known[c.fingerprint] for c in candidates if c.fingerprint in self.known}
        alive = [c for c in candidates if c.fingerprint not in self.known]
        for rung, budget in enumerate(budgets):
            records = self._run(alive, budget, generation)
            for candidate in alive:
                mine = records[candidate.fingerprint]
                fitness[candidate.fingerprint] = (float(rung), statistics.fmean(self._score(r) for r in mine))
                if rung == 0:
                    counts.trained += 1
                    counts.failed += any(r["status"] != "ok" for r in mine)
            keep = max(1, math.ceil(len(alive) / self.config.halving_eta))
            alive = sorted(alive, key=lambda c: (-fitness[c.fingerprint][1], c.fingerprint))[:keep]
        return fitness

    def _budgets(self) -> list[float]:
        full, eta, rungs = self.config.train.epochs, self.config.halving_eta, self.config.halving_rungs
        return [full / eta ** (rungs - 1 - r) for r in range(rungs)]

    def _score(self, record: Mapping[str, Any]) -> float:
        """Fitness of one training run; failed runs score 0."""
        accuracy, loss = record.get("val_accuracy"), record.get("val_loss")
        if record["status"] != "ok" or accuracy is None or not math.isfinite(accuracy):
            return 0.0
        if self.config.fitness == "accuracy_loss":
            return accuracy / loss if loss and math.isfinite(loss) and loss > 0 else 0.0
        return accuracy

    def _run(self, functions: Iterable[Candidate], budget: float, generation: int | None) -> dict[str, list[dict[str, Any]]]:
        """Training runs of candidates over every task and fitness seed at a budget.

        Runs already in the store (e.g. made before a crash) are read back; the rest go to the executor,
        at most the remaining evaluation budget of them.
        Records are committed by this (driver) process as each finishes.
        """
        records: dict[str, list[dict[str, Any]]] = {}
        pending: dict[str, tuple[Job, dict[str, Any]]] = {}
        for function in functions:
            text, key = function.text, function.fingerprint
            records[key] = []
            for task in self.config.task_list():
                for seed in range(self.config.seed, self.config.seed + self.config.fitness_seeds):
                    stored = self.store.find_evaluation(key, self.protocol, budget, seed, task)
                    if stored is not None:
                        records[key].append(stored)
                        continue
                    identity = {"fingerprint": key, "protocol": self.protocol, "budget": budget, "seed": seed,
                                "task": task, "generation": generation, "expression": text}
                    job = self._job(function, task, seed, budget)
                    pending[job.key] = (job, identity)

        def finished(job: Job, result: Mapping[str, Any]) -> None:
            identity = pending[job.key][1]
            records[identity["fingerprint"]].append(self._store_result(identity, result))

        jobs = [job for job, _ in pending.values()]
        # With a time limit the jobs go out in batches of the executor's width, so the clock is checked
        # between batches; without one they go out at once and no worker waits for a slow neighbour.
        size = max(1, self.executor.width) if self.config.time_limit is not None else max(1, len(jobs))
        for start in range(0, len(jobs), size):
            self._check_limits()
            chunk = jobs[start: start + size]
            allowed = chunk[: self._evals_left()]
            self.executor.run(allowed, finished)
            if len(allowed) < len(chunk):
                raise _Stop("budget")
        return records

    def _job(self, function: Candidate, task: str, seed: int, budget: float) -> Job:
        """Plain data for one training run: it can cross a process or network boundary."""
        dataset_name, model = _split_task(task)
        train = replace(self.config.train, dataset=dataset_name, model=model, epochs=budget, seed=seed)
        spec = ActivationSpec(function.text, learnable=dict(function.learnable))
        return Job(key=f"{function.fingerprint}|{task}|{seed}", activation=spec.to_dict(), train=train.to_dict())

    def _store_result(self, identity: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
        record = {**result, **identity}
        record["fitness"] = self._score(record)
        self.store.add_evaluation(record)
        self.trainings += 1
        self.progress(_describe(record))
        return record

    def _check_limits(self) -> None:
        if self._evals_left() <= 0:
            raise _Stop("budget")
        if self.config.time_limit is not None and time.monotonic() - self.started > self.config.time_limit:
            raise _Stop("time-limit")

    def _evals_left(self) -> int:
        return sys.maxsize if self.config.max_evals is None else self.config.max_evals - self.trainings

    def _known_before(self, generation: int) -> dict[str, tuple[float, float]]:
        """Fitness of functions fully evaluated at the full budget before ``generation`` (or in sibling
        runs): every task and fitness seed of this run must be present, as the fitness averages them."""
        full = self._budgets()[-1]
        wanted = {(task, seed) for task in self.config.task_list()
                  for seed in range(self.config.seed, self.config.seed + self.config.fitness_seeds)}
        records = [r for r in self.store.evaluations(protocol=self.protocol)
                   if r["generation"] is not None and r["generation"] < generation]
        if self.config.reuse_runs:
            records += list(_sibling_evaluations(self.run_dir, self.protocol))
        scores: dict[str, dict[tuple[str, int], float]] = {}
        for record in records:
            if record["budget"] == full and (record["task"], record["seed"]) in wanted:
                scores.setdefault(record["fingerprint"], {})[(record["task"], record["seed"])] = self._score(record)
        rung = float(len(self._budgets()) - 1)
        return {key: (rung, statistics.fmean(by_run.values())) for key, by_run in scores.items()
                if set(by_run) == wanted}

    def _baseline(self) -> None:
        """Train the baseline (ReLU) under the same protocol, for the report's comparison.

        Its evaluations are found by fingerprint (a seeded ReLU may already have been trained).
        """
        key = fingerprint(self.config.baseline)
        self.store.set_meta("baseline", {"expression": self.config.baseline, "fingerprint": key,
                                         "budget": self._budgets()[-1]})
        try:
            baseline = Candidate(Individual([]), canonical(self.config.baseline), key)
            self._run([baseline], self._budgets()[-1], None)
        except _Stop:
            return

    # ----------------------------------------------------------------------- hall of fame, saving
    def _update_hof(self, candidates: list[Candidate], fitnesses: Mapping[str, tuple[float, float]], generation: int) -> None:
        full = self._budgets()[-1]
        for candidate in candidates:
            if candidate.fingerprint in self.hof:
                continue
            at_full = fitnesses[candidate.fingerprint][0] == len(self._budgets()) - 1
            records = [r for r in self.store.evaluations(fingerprint=candidate.fingerprint, protocol=self.protocol)
                       if r["budget"] == full] if at_full else []
            self.hof[candidate.fingerprint] = {
                "fingerprint": candidate.fingerprint,
                "tree": str(candidate.tree),
                "canonical": candidate.text,
                "fitness": list(fitnesses[candidate.fingerprint]),
                "val_accuracy": finite_mean(r.get("val_accuracy") for r in records),
                "test_accuracy": finite_mean(r.get("test_accuracy") for r in records),
                "generation": generation,
                # learned constants per activation site, from the first full-budget run
                "learned": records[0].get("params") if records and candidate.learnable else None,
            }
        ranked = self._ranked_hof()[: self.config.hall_of_fame]
        self.hof = {entry["fingerprint"]: entry for entry in ranked}

    def _ranked_hof(self) -> list[dict[str, Any]]:
        return sorted(self.hof.values(), key=lambda e: (-e["fitness"][0], -e["fitness"][1], e["fingerprint"]))

    def _save(self, generation: int, population: list[Individual], counts: Counts) -> None:
        values = [ind.fitness.values[1] for ind in population]
        stats = {**asdict(counts), "best": max(values), "mean": statistics.fmean(values),
                 "median": statistics.median(values), "seconds": round(time.monotonic() - self.started, 3)}
        self.store.save_generation(
            generation,
            stats=stats,
            population=[{"tree": str(ind), "fitness": list(ind.fitness.values)} for ind in population],
            hall_of_fame=self._ranked_hof(),
            rng_state=rng_state_to_json(random.getstate()),
        )
        self.known = self._known_before(generation + 1)
        best = self._ranked_hof()[0]
        self.progress(
            f"generation {generation} done: best {best['fitness'][1]:.4f} {best['canonical']}  "
            f"(proposed {counts.proposed}, duplicate {counts.duplicate}, screened {counts.screened}, "
            f"trained {counts.trained}, failed {counts.failed})"
        )


def _safe_fingerprint(expr: Any) -> str | None:
    try:
        return fingerprint(expr)
    except UserError:
        return None


def _describe(record: Mapping[str, Any]) -> str:
    accuracy = record.get("val_accuracy")
    shown = f"{accuracy:.4f}" if accuracy is not None else "-"
    return (f"  {record['status']:<8} val_acc {shown}  {record['seconds']:.1f}s  "
            f"[{record['task']} seed {record['seed']} {record['budget']:g} ep]  {record['expression']}")


def _sibling_evaluations(run_dir: Path, protocol: str) -> Iterable[dict[str, Any]]:
    """Evaluations on the same protocol in the other run folders beside this one (read-only)."""
    for other in sorted(run_dir.parent.glob("*/afos.db")):
        if other.parent == run_dir:
            continue
        try:
            with RunStore(other, readonly=True) as store:
                yield from store.evaluations(protocol=protocol)
        except Exception:  # noqa: BLE001 - a foreign, new or broken database is simply not reused
            continue


#: Options that may change when a run is resumed; everything else is part of the run's identity.
RESUMABLE = ("generations", "max_evals", "time_limit", "train.device", "train.data_dir")


def resume_config(run_dir: Path, overrides: Mapping[str, Any]) -> SearchConfig:
    """The stored config of a run, with only the :data:`RESUMABLE` options changed."""
    db = Path(run_dir) / "afos.db"
    if not db.exists():
        raise ConfigError(f"--resume {run_dir}: no afos.db there, so it is not a run folder")
    with RunStore(db, readonly=True) as store:
        stored = store.get_meta("config")
    fixed = sorted(k for k, v in overrides.items() if v is not None and k not in RESUMABLE)
    if fixed:
        raise ConfigError(f"--resume keeps the run's settings; cannot change {', '.join(fixed)}")
    return SearchConfig.from_dict(with_overrides(stored, overrides))


def new_run_dir(root: str | Path, config: SearchConfig) -> Path:
    """``results/<time>-<dataset>-<model>-s<seed>``: sortable, readable, unique per second."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    task = config.task_list()[0].replace("/", "-")
    return Path(root) / f"{stamp}-{task}-s{config.seed}"


def run_log(run_dir: Path, echo: Progress | None) -> Progress:
    """A progress callback that appends timestamped lines to ``search.log`` and echoes them."""
    path = Path(run_dir) / "search.log"

    def write(message: str) -> None:
        with path.open("a") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        if echo is not None:
            echo(message)

    return write
