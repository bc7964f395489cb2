"""The genetic search: DEAP trees in, trained candidates and a hall of fame out.

Per generation the :class:`~afos.search.proposals.Proposer` proposes distinct, valid, new candidates and the
generation loop here has them evaluated through the evaluation layer (:class:`~afos.evaluation.Evaluator`),
scores them, keeps the hall of fame and saves a resume point. Successive halving trains every new
candidate at a fraction of the budget and only the best ``1/eta`` further.

Determinism: every decision here is made from the records the evaluator returns and from this run's own
database, never from other runs, so a search's proposals, hall of fame and every number it writes depend
only on its config and seed: not on a twin run in the same results folder (whose records the evaluator
copies instead of training), not on the executor (on the CPU at matched torch thread counts), not on a
resume. After each generation the population, the hall of fame and Python's random state are committed
in one transaction; resuming replays the interrupted generation from that state, and its finished
training runs are read back instead of trained.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import asdict
from typing import Any, Callable, Mapping, Protocol

from afos.activation.spec import ActivationSpec
from afos.errors import BudgetSpent, TimeUp, UserError
from afos.evaluation import EvalRequest, Evaluator, RunDatabase
from afos.records import Evaluation, Origin, Phase
from afos.search.config import (
    SearchConfig,
    baseline_names,
    budgets,
    fitness_seeds,
    score,
    task_configs,
    task_protocols,
)
from afos.search.proposals import Candidate, Counts, Proposer, Variation
from afos.search.trees import Individual, parse_tree, primitive_set
from afos.space.display import site_mean
from afos.space.parse import canonical
from afos.space.primitives import primitive_set as resolve_primitives
from afos.stats.common import finite_mean


class SearchDatabase(RunDatabase, Protocol):
    """What the search needs of its run database (:class:`afos.store.RunStore` provides it)."""

    def evaluations(self, *, activation_key: str | None = None, protocol: str | None = None,
                    phase: Phase | None = None, task: str | None = None) -> list[Evaluation]: ...

    def count_evaluations(self, phase: Phase | None = None) -> int: ...

    def add_candidate(self, *, activation_key: str, tree: str, canonical: str, generation: int, status: str,
                      reason: str | None = None) -> bool: ...

    def save_generation(self, generation: int, *, stats: dict, population: list[dict], hall_of_fame: list[dict],
                        rng_state: dict) -> None: ...

    def last_generation(self) -> dict | None: ...

    def set_meta(self, key: str, value: object) -> None: ...


Progress = Callable[[str], None]
#: A function of a search or its baseline: what to train and its activation key.
Function = tuple[ActivationSpec, str, str]  # spec, canonical text, key


class Search:
    """One search run over its run database; :meth:`run` starts or resumes it.

    The caller (``afos.runs``) opens the database and the evaluator and keeps the run's status.
    """

    def __init__(self, config: SearchConfig, store: SearchDatabase, evaluator: Evaluator, *,
                 progress: Progress | None = None) -> None:
        self.config = config.validate()
        self.store = store
        self.evaluator = evaluator
        self.progress = progress or (lambda message: None)
        self.started = time.monotonic()
        self.deadline = None if config.time_limit is None else self.started + config.time_limit
        primitives = {p.name: p for p in resolve_primitives(config.primitives)}
        pset = primitive_set(primitives.values(), config.constants, learnable_constants=config.learnable_constants)
        self.pset = pset
        self.proposer = Proposer(_variation(config), pset, primitives, on_screened=self._record_candidate,
                                 say=self.progress, deadline=self.deadline)
        self.protocols = task_protocols(config)
        self.budgets = budgets(config)
        self.known: dict[str, tuple[float, float]] = {}  # activation key -> fitness, as of generation start
        self.hof: dict[str, dict[str, Any]] = {}
        self.generation = 0

    # ------------------------------------------------------------------------------------ the loop
    def run(self) -> str:
        """Run (or resume) to the end and train the baseline; returns finished, budget or time-limit."""
        population, start = self._restore()
        status = "finished"
        try:
            for generation in range(start, self.config.generations):
                population = self._generation(generation, population)
        except BudgetSpent:
            status = "budget"
        except TimeUp:
            status = "time-limit"
        if status != "finished":
            self.progress(f"stopped: {status}")
        self._baseline()
        return status

    def _restore(self) -> tuple[list[Individual], int]:
        saved = self.store.last_generation()
        if saved is None:
            random.seed(self.config.seed)
            return [], 0
        random.setstate(rng_state_from_json(saved["rng_state"]))
        try:
            self.hof = {entry["fingerprint"]: entry for entry in saved["hall_of_fame"]}
            population = [self._individual(item) for item in saved["population"]]
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"generation {saved['generation']} in the run database is malformed ({error}); "
                            "it cannot be resumed") from None
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
        cap = self._candidates_left()
        if generation == 0:
            carried, candidates = [], self.proposer.initial(counts, self.known, cap)
        else:
            ranked = self._ranked_hof()[: self.config.elites]
            carried = [self._individual(entry) for entry in ranked]
            taken = [entry["fingerprint"] for entry in ranked]
            candidates = self.proposer.offspring(population, taken, counts, self.known, cap)
        self.progress(f"generation {generation + 1}/{self.config.generations}: {len(candidates)} candidates")
        fitnesses = self._evaluate(candidates, generation, counts)
        for candidate in candidates:
            candidate.tree.fitness.values = fitnesses[candidate.key]
        new_population = carried + [c.tree for c in candidates]
        self._update_hof(candidates, fitnesses, generation)
        self._save(generation, new_population, counts)
        return new_population

    def _candidates_left(self) -> int:
        """How many new candidates the evaluation budget can still take: proposals beyond it could never
        train, so a huge population with a small ``max_evals`` stops proposing at once."""
        left = self._evals_left()
        if left is None:
            return self.config.population
        runs = len(self.config.task_list()) * self.config.fitness_seeds
        return max(1, math.ceil(left / runs))

    def _record_candidate(self, key: str, tree: str, text: str, reason: str | None) -> None:
        self.store.add_candidate(activation_key=key, tree=tree, canonical=text, generation=self.generation,
                                 status="valid" if reason is None else "screened", reason=reason)

    # ------------------------------------------------------------------------------ evaluation
    def _evaluate(self, candidates: list[Candidate], generation: int, counts: Counts) -> dict[str, tuple[float, float]]:
        """Fitness of each candidate; with successive halving only the top 1/eta climb each rung."""
        fitness = {c.key: self.known[c.key] for c in candidates if c.key in self.known}
        alive = [c for c in candidates if c.key not in self.known]
        for rung, budget in enumerate(self.budgets):
            functions = [(ActivationSpec(c.text, learnable=dict(c.learnable)), c.text, c.key) for c in alive]
            records = self._ensure(functions, budget, Phase.SEARCH, generation)
            for candidate in alive:
                mine = records[candidate.key]
                fitness[candidate.key] = (float(rung), statistics.fmean(self.score(r) for r in mine))
                if rung == 0:
                    trained = any(r.origin is not Origin.REUSED for r in mine)
                    counts.trained += trained
                    counts.reused += not trained
                    counts.failed += any(not r.ok for r in mine)
            keep = max(1, math.ceil(len(alive) / self.config.halving_eta))
            alive = sorted(alive, key=lambda c: (-fitness[c.key][1], c.key))[:keep]
        return fitness

    def _ensure(self, functions: list[Function], budget: float, phase: Phase, generation: int | None,
                seeds: list[int] | None = None) -> dict[str, list[Evaluation]]:
        """The records of ``functions`` over every task and seed (default: the fitness seeds) at a budget."""
        requests = [EvalRequest.make(spec, config, budget=budget, seed=seed, label=text, phase=phase,
                                     generation=generation)
                    for spec, text, _ in functions for config in task_configs(self.config)
                    for seed in (seeds or fitness_seeds(self.config))]
        records = self.evaluator.ensure(requests, limit=self._evals_left(), deadline=self.deadline)
        per_function = len(requests) // max(1, len(functions))
        return {key: records[i * per_function:(i + 1) * per_function] for i, (_, _, key) in enumerate(functions)}

    def score(self, record: Evaluation) -> float:
        return score(record, self.config.fitness)

    def _evals_left(self) -> int | None:
        """Records this run may still add (trained or reused alike; resumes included), None for no limit."""
        if self.config.max_evals is None:
            return None
        return self.config.max_evals - self.store.count_evaluations()

    def _known_before(self, generation: int) -> dict[str, tuple[float, float]]:
        """Fitness of functions this run fully evaluated at the full budget before ``generation``: every
        task and fitness seed must be present, as the fitness averages them. Only this run's own records
        count, so what is a duplicate never depends on other runs."""
        full = self.budgets[-1]
        wanted = {(task, seed) for task in self.protocols for seed in fitness_seeds(self.config)}
        scores: dict[str, dict[tuple[str, int], float]] = {}
        for record in self.store.evaluations(phase=Phase.SEARCH):
            if (record.generation is not None and record.generation < generation and record.budget == full
                    and self.protocols.get(record.task) == record.protocol and (record.task, record.seed) in wanted):
                scores.setdefault(record.activation_key, {})[(record.task, record.seed)] = self.score(record)
        rung = float(len(self.budgets) - 1)
        return {key: (rung, statistics.fmean(by_run.values())) for key, by_run in scores.items()
                if set(by_run) == wanted}

    def _baseline(self) -> None:
        """Train the baselines (ReLU first) under the same protocol and seeds, for the report's comparison."""
        specs = [ActivationSpec(name) for name in baseline_names(self.config.baseline)]
        self.store.set_meta("baseline", [{"expression": spec.expression, "fingerprint": spec.key(),
                                          "budget": self.budgets[-1]} for spec in specs])
        try:
            self._ensure([(spec, canonical(spec.expression), spec.key()) for spec in specs], self.budgets[-1],
                         Phase.BASELINE, None)
        except (BudgetSpent, TimeUp):
            self.progress("the baselines were not trained: the evaluation budget or time limit ran out")

    # ----------------------------------------------------------------------- hall of fame, saving
    def _update_hof(self, candidates: list[Candidate], fitnesses: Mapping[str, tuple[float, float]],
                    generation: int) -> None:
        full = self.budgets[-1]
        for candidate in candidates:
            if candidate.key in self.hof:
                continue
            at_full = fitnesses[candidate.key][0] == len(self.budgets) - 1
            records = [r for r in self.store.evaluations(activation_key=candidate.key, phase=Phase.SEARCH)
                       if r.budget == full and self.protocols.get(r.task) == r.protocol] if at_full else []
            values = [r.val_accuracy for r in records if r.ok and r.val_accuracy is not None]
            self.hof[candidate.key] = {
                "fingerprint": candidate.key,
                "tree": str(candidate.tree),
                "canonical": candidate.text,
                "fitness": list(fitnesses[candidate.key]),
                "n_runs": len(records),
                "ok": bool(records) and all(r.ok for r in records),
                "val_accuracy": finite_mean(values),
                "val_std": statistics.stdev(values) if len(values) > 1 else None,
                "test_accuracy": finite_mean(r.test_accuracy for r in records if r.ok),
                "generation": generation,
                # learned constants per activation site, from the first full-budget run, and per run
                "learned": records[0].params if records and candidate.learnable else None,
                "learned_runs": {name: [site_mean(r.params, name) for r in records if r.ok]
                                 for name in candidate.learnable} if records else {},
            }
        ranked = self._ranked_hof()[: self.config.hall_of_fame]
        self.hof = {entry["fingerprint"]: entry for entry in ranked}

    def _ranked_hof(self) -> list[dict[str, Any]]:
        return sorted(self.hof.values(), key=lambda e: (-e["fitness"][0], -e["fitness"][1], e["fingerprint"]))

    def _save(self, generation: int, population: list[Individual], counts: Counts) -> None:
        values = [ind.fitness.values[1] for ind in population]
        stats = {**asdict(counts), "best": max(values), "mean": statistics.fmean(values),
                 "median": statistics.median(values)}
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
            f"generation {generation + 1}/{self.config.generations} done: best {best['fitness'][1]:.4f} "
            f"{best['canonical']}  (proposed {counts.proposed}, duplicate {counts.duplicate}, screened "
            f"{counts.screened}, trained {counts.trained}, reused {counts.reused}, failed {counts.failed})"
        )


def _variation(config: SearchConfig) -> Variation:
    return Variation(config.population, tuple(config.seed_expressions), config.tournament_size,
                     config.crossover_prob, config.mutation_prob, config.immigrants, config.init_min_depth,
                     config.init_max_depth, config.max_height, config.max_size, config.learnable_constants)


def rng_state_to_json(state: tuple) -> dict:
    """JSON-able form of ``random.getstate()``, stored so a resumed search draws exactly the random numbers
    the uninterrupted one would have (pickle would make opening someone else's ``afos.db`` a code-execution
    risk)."""
    version, internal, gauss_next = state
    return {"python": {"version": version, "state": list(internal), "gauss_next": gauss_next}}


def rng_state_from_json(data: Any) -> tuple:
    """Inverse of :func:`rng_state_to_json`, checked like user input: a stored state is untrusted."""
    try:
        python = data["python"]
        state = tuple(python["state"])
        valid = python["version"] == 3 and len(state) == 625 and all(
            isinstance(v, int) and 0 <= v < 2**32 for v in state)
        gauss = python["gauss_next"]
        if not valid or not (gauss is None or isinstance(gauss, float)):
            raise ValueError
        return 3, state, gauss
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UserError("the run database holds a malformed random state; it cannot be resumed") from None
