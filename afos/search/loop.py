"""The genetic search: DEAP trees in, trained candidates and a hall of fame out.

Per generation the :class:`~afos.search.proposals.Proposer` proposes distinct, valid, new candidates and the
generation loop here has them evaluated through the evaluation layer (:class:`~afos.evaluation.Evaluator`),
scores them, keeps the hall of fame and saves a resume point. Successive halving trains every new
candidate at a fraction of the budget and only the best ``1/eta`` further.

Determinism: every decision here is made from the records the evaluator returns and from this run's own
database, never from other runs, so a search's proposals, hall of fame and every number it writes depend
only on its config and seed: not on a twin run in the same results folder (whose records the evaluator
copies instead of training), not on the executor (on the CPU at matched torch thread counts), not on a
resume. The search draws from a random state of its own (:class:`SearchRandom`), never the caller's. After
each generation the population, the hall of fame and that state are committed in one transaction;
resuming replays the interrupted generation from that state, and its finished training runs are read back
instead of trained.
"""

from __future__ import annotations

import contextlib
import math
import random
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, replace
from typing import Any, Protocol

from afos.activation.spec import ActivationSpec
from afos.errors import BudgetSpent, TimeUp, UserError
from afos.evaluation import EvalRequest, Evaluator, RunDatabase
from afos.records.evaluation import Evaluation, Origin, Phase
from afos.records.runs import MetaKey, RunStatus
from afos.records.search import (
    Baseline,
    CandidateRecord,
    CandidateStatus,
    Counts,
    Fitness,
    Generation,
    GenerationStats,
    HallOfFameEntry,
    Lineage,
    Member,
)
from afos.records.settings import SurrogateKind
from afos.search.budget import BudgetWatch, stop_if_nothing_trains
from afos.search.config import (
    SearchConfig,
    baseline_names,
    budgets,
    expected_runs,
    fitness_seeds,
    score,
    task_configs,
    task_protocols,
)
from afos.search.hall_of_fame import HallOfFame, ParetoArchive, entry_of
from afos.search.proposals import Candidate, Proposals, Proposer, Ranker, Variation
from afos.search.strategies import strategy_for
from afos.search.surrogate import MIN_RECORDS, Surrogate, rank_correlation
from afos.search.trees import Individual, fitness_of, parse_tree, primitive_set, set_fitness
from afos.space.cost import cost
from afos.space.parse import canonical
from afos.space.primitives import primitive_set as resolve_primitives
from afos.text import counted


class SearchDatabase(RunDatabase, Protocol):
    """What the search needs of its run database (:class:`afos.storage.store.RunStore` provides it)."""

    def evaluations(self, *, activation_key: str | None = None, protocol: str | None = None,
                    phase: Phase | None = None, task: str | None = None) -> list[Evaluation]: ...

    def count_evaluations(self, phase: Phase | None = None) -> int: ...

    def add_candidate(self, candidate: CandidateRecord) -> bool: ...

    def candidates(self) -> list[CandidateRecord]: ...

    def save_generation(self, generation: Generation) -> None: ...

    def last_generation(self) -> Generation | None: ...

    def set_meta(self, key: MetaKey, value: object) -> None: ...


Progress = Callable[[str], None]
#: A function of a search or its baseline: what to train, its canonical text and its activation key.
TrainTarget = tuple[ActivationSpec, str, str]


class SearchRandom:
    """The search's own random state. DEAP's operators draw from Python's global generator, so the state is
    swapped in only while the search draws (:meth:`active`) and the caller's is put back afterwards: a search
    never changes its caller's random numbers, and the caller's draws never change the search."""

    def __init__(self, seed: int) -> None:
        self.state = random.Random(seed).getstate()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        outer = random.getstate()
        random.setstate(self.state)
        try:
            yield
        finally:
            self.state = random.getstate()
            random.setstate(outer)


class Search:
    """One search run over its run database; :meth:`run` starts or resumes it.

    The loop, written the way DEAP writes ``eaSimple``'s::

        population, hall_of_fame, start <- the last saved generation, else [], empty, 0
        for g in start .. generations - 1:                            # strategy: afos.search.strategies
            if g == 0:
                candidates <- strategy.initial                        # seed expressions + random trees
            else:
                elites <- the best `elites` of hall_of_fame
                candidates <- strategy.offspring(population)          # ga: tournament, crossover, mutation
                                                                      #   + immigrants; random: all drawn;
                                                                      #   nsga2: crowded tournaments
            (every candidate is distinct, valid and new to this run: duplicates and screened-out
             functions cost no training and their slots are refilled; Proposer, bloat limits)
            (with a surrogate: `pool` x as many, the best predicted   # Surrogate.ranker
             trained, an `explore` share drawn from the rest)
            for rung, budget in successive halving:                   # all at the first budget,
                fitness(c) <- mean score over tasks x fitness seeds   #   the best 1/eta go further
                              (and its cost, when cost is an objective: afos.space.cost)
            population <- strategy.survivors(population, elites,      # ga, random: elites + candidates
                                             candidates)              # nsga2: selNSGA2 of population
                                                                      #   + candidates
            hall_of_fame.update(candidates)                           # two objectives: a Pareto archive
            save(g, population, hall_of_fame, random state)           # one transaction: the resume point
            on_generation(g)                                          # e.g. rewrite the report files
            if g = 0 and no training ended ok: train the baselines; none ok -> stop
        train the baselines at the full budget

    The caller (:mod:`afos.runs.search`) opens the database and the evaluator and keeps the run's status.
    """

    def __init__(self, config: SearchConfig, store: SearchDatabase, evaluator: Evaluator, *,
                 progress: Progress | None = None, on_generation: Callable[[Generation], None] | None = None) -> None:
        self.config = config.validate()
        self.store = store
        self.evaluator = evaluator
        self.progress = progress or (lambda message: None)
        self.on_generation = on_generation or (lambda generation: None)
        self.started = time.monotonic()
        self.deadline = None if config.time_limit is None else self.started + config.time_limit
        primitives = {p.name: p for p in resolve_primitives(config.primitives)}
        self.pset = primitive_set(primitives.values(), config.constants, learnable_constants=config.learnable_constants)
        self.proposer = Proposer(_variation(config), self.pset, primitives, on_screened=self._record_candidate,
                                 say=self.progress, deadline=self.deadline)
        self.strategy, self.protocols = strategy_for(config), task_protocols(config)
        self.budgets = budgets(config)
        self.known: dict[str, Fitness] = {}  # activation key -> fitness, as of generation start
        self.hall_of_fame = self._hall_of_fame(())
        self.random = SearchRandom(config.seed)
        self.generation = 0
        kind = SurrogateKind(config.surrogate)
        self.surrogate = None if kind is SurrogateKind.NONE else Surrogate(kind, config.seed)
        watch = BudgetWatch(config.train, expected_runs(config), config.time_limit, self.progress)
        evaluator.listen(watch.observe)

    # ------------------------------------------------------------------------------------ the loop
    def run(self) -> RunStatus:
        """Run (or resume) to the end and train the baselines; returns finished, budget or time-limit."""
        population, start = self._restore()
        status = RunStatus.FINISHED
        try:
            for generation in range(start, self.config.generations):
                population = self._generation(generation, population)
                if generation == 0:  # not one training ended ok: do the baselines train? (stop if not)
                    stop_if_nothing_trains(self.store.evaluations(phase=Phase.SEARCH), self._baseline, self.config.train)
        except BudgetSpent:
            status = RunStatus.BUDGET
        except TimeUp:
            status = RunStatus.TIME_LIMIT
        if status is not RunStatus.FINISHED:
            self.progress(f"stopped: {status.value}")
        self._baseline()
        return status

    def _restore(self) -> tuple[list[Individual], int]:
        saved = self.store.last_generation()
        if saved is None:
            return [], 0
        self.random.state = rng_state_from_json(saved.rng_state)
        try:
            self.hall_of_fame = self._hall_of_fame(saved.hall_of_fame)
            population = [self._individual(member) for member in saved.population]
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"generation {saved.generation} in the run database is malformed ({error}); "
                            "it cannot be resumed") from None
        self.known = self._known_before(saved.generation + 1)
        self.progress(f"resuming after generation {saved.generation + 1}")
        return population, saved.generation + 1

    def _individual(self, member: Member) -> Individual:
        tree = parse_tree(member.tree, self.pset)
        set_fitness(tree, member.fitness)
        return tree

    def _hall_of_fame(self, entries: Iterable[HallOfFameEntry]) -> HallOfFame:
        """The hall of fame, or with cost as an objective the Pareto archive, holding ``entries``."""
        if self.config.costed:
            return ParetoArchive(len(self.budgets) - 1, entries)
        return HallOfFame(self.config.hall_of_fame, entries)

    def _generation(self, generation: int, population: list[Individual]) -> list[Individual]:
        self.generation = generation
        carried, proposals = self._propose(generation, population)
        candidates = proposals.candidates
        self.progress(f"generation {generation + 1}/{self.config.generations}: {counted(len(candidates), 'candidate')}")
        fitnesses, counts = self._evaluate(candidates, generation, proposals.counts)
        for candidate in candidates:
            set_fitness(candidate.tree, fitnesses[candidate.key])
        new_population = self.strategy.survivors(population, carried, [c.tree for c in candidates])
        self.hall_of_fame.update(self._entry(c, fitnesses[c.key], generation) for c in candidates
                                 if c.key not in self.hall_of_fame)
        predicted = {c.key: c.predicted for c in candidates if c.predicted is not None}
        self._save(generation, new_population, counts, predicted,
                   rank_correlation([(value, fitnesses[key].value) for key, value in predicted.items()]))
        return new_population

    def _propose(self, generation: int, population: list[Individual]) -> tuple[list[Individual], Proposals]:
        """The elites carried over and the new candidates, drawn from the search's own random state."""
        cap = self._candidates_left()
        with self.random.active():
            if generation == 0:
                return [], self.strategy.initial(self.proposer, self.known, cap)
            elites = self.hall_of_fame.ranked()[: self.config.elites]
            carried = [self._individual(Member(entry.tree, entry.fitness)) for entry in elites]
            return carried, self.strategy.offspring(self.proposer, population, [e.key for e in elites], self.known,
                                                    cap, self._ranker(generation), self.config.pool)

    def _ranker(self, generation: int) -> Ranker | None:
        """With a surrogate and enough of this run's fitness, what picks candidates from each pool."""
        if self.surrogate is None or len(self.known) < MIN_RECORDS:
            return None
        texts = {c.key: c.canonical for c in self.store.candidates()}
        known = {texts[key]: fitness.value for key, fitness in self.known.items() if key in texts}
        return self.surrogate.ranker(known, generation, self.config.explore)

    def _candidates_left(self) -> int:
        """How many new candidates the budget can still take: a huge population under a small ``max_evals``
        stops proposing at once, and a spent budget stops the search before it records an untrainable one."""
        left = self._evals_left()
        if left is None:
            return self.config.population
        if left <= 0:
            raise BudgetSpent
        return max(1, math.ceil(left / (len(self.config.task_list()) * self.config.fitness_seeds)))

    def _record_candidate(self, key: str, tree: str, text: str, reason: str | None, lineage: Lineage) -> None:
        status = CandidateStatus.VALID if reason is None else CandidateStatus.SCREENED
        self.store.add_candidate(CandidateRecord(key, tree, text, self.generation, status, reason, lineage=lineage))

    # ------------------------------------------------------------------------------ evaluation
    def _evaluate(self, candidates: list[Candidate], generation: int,
                  counts: Counts) -> tuple[dict[str, Fitness], Counts]:
        """Fitness of each candidate (with successive halving only the top 1/eta climb each rung), and the
        counts with how many trained, were reused and failed."""
        fitness = {c.key: self.known[c.key] for c in candidates if c.key in self.known}
        alive = [c for c in candidates if c.key not in self.known]
        for rung, budget in enumerate(self.budgets):
            functions = [(ActivationSpec(c.text, learnable=dict(c.learnable)), c.text, c.key) for c in alive]
            records = self._ensure(functions, budget, Phase.SEARCH, generation)
            for candidate in alive:
                price = cost(candidate.text, candidate.learnable) if self.config.costed else None
                fitness[candidate.key] = Fitness(float(rung), _mean_score(records[candidate.key], self.config.fitness),
                                                 price)
            if rung == 0:
                trained = sum(any(r.origin is not Origin.REUSED for r in records[c.key]) for c in alive)
                failed = sum(any(not r.ok for r in records[c.key]) for c in alive)
                counts = replace(counts, trained=trained, reused=len(alive) - trained, failed=failed)
            keep = max(1, math.ceil(len(alive) / self.config.halving_eta))
            alive = sorted(alive, key=lambda c: (-fitness[c.key].value, c.key))[:keep]
        return fitness, counts

    def _ensure(self, functions: list[TrainTarget], budget: float, phase: Phase, generation: int | None,
                seeds: list[int] | None = None) -> dict[str, list[Evaluation]]:
        """The records of ``functions`` over every task and seed (default: the fitness seeds) at a budget."""
        requests = [EvalRequest.make(spec, config, budget=budget, seed=seed, label=text, phase=phase,
                                     generation=generation)
                    for spec, text, _ in functions for config in task_configs(self.config)
                    for seed in (seeds or fitness_seeds(self.config))]
        records = self.evaluator.ensure(requests, limit=self._evals_left(), deadline=self.deadline)
        per_function = len(requests) // max(1, len(functions))
        return {key: records[i * per_function:(i + 1) * per_function] for i, (_, _, key) in enumerate(functions)}

    def _evals_left(self) -> int | None:
        """Records this run may still add (trained or reused alike; resumes included), None for no limit."""
        if self.config.max_evals is None:
            return None
        return self.config.max_evals - self.store.count_evaluations()

    def _known_before(self, generation: int) -> dict[str, Fitness]:
        """Fitness of functions this run fully evaluated at the full budget before ``generation``."""
        return known_fitness(self.store.evaluations(phase=Phase.SEARCH), generation, self.config, self.protocols)

    def _baseline(self) -> list[Evaluation]:
        """Train the baselines (ReLU first) for the report's comparison; their records (none if out of budget)."""
        specs = [ActivationSpec(name) for name in baseline_names(self.config.baseline)]
        baselines = [Baseline(spec.expression, spec.key(), self.budgets[-1]) for spec in specs]
        self.store.set_meta(MetaKey.BASELINE, [baseline.to_dict() for baseline in baselines])
        try:
            records = self._ensure([(spec, canonical(spec.expression), spec.key()) for spec in specs],
                                   self.budgets[-1], Phase.BASELINE, None)
        except (BudgetSpent, TimeUp):
            self.progress("the baselines were not trained: the evaluation budget or time limit ran out")
            return []
        return [record for runs in records.values() for record in runs]

    # ----------------------------------------------------------------------- hall of fame, saving
    def _entry(self, candidate: Candidate, fitness: Fitness, generation: int) -> HallOfFameEntry:
        """The hall-of-fame entry of a candidate, from this run's own runs of it at the full budget."""
        at_full = fitness.rung == len(self.budgets) - 1
        full = self.budgets[-1]
        runs = [r for r in self.store.evaluations(activation_key=candidate.key, phase=Phase.SEARCH)
                if r.budget == full and self.protocols.get(r.task) == r.protocol] if at_full else []
        return entry_of(candidate, fitness, generation, runs)

    def _save(self, generation: int, population: list[Individual], counts: Counts,
              predicted: dict[str, float], correlation: float | None) -> None:
        values = [ind.fitness.values[1] for ind in population]
        stats = GenerationStats(counts, max(values), statistics.fmean(values), statistics.median(values), predicted,
                                correlation)
        ranked = self.hall_of_fame.ranked()
        members = tuple(Member(str(ind), fitness_of(ind, self.config.costed)) for ind in population)
        saved = Generation(generation, stats, members, tuple(ranked), rng_state_to_json(self.random.state))
        self.store.save_generation(saved)
        self.known = self._known_before(generation + 1)
        done = ", ".join(f"{name} {value}" for name, value in asdict(counts).items()
                         if name not in ("crossovers", "mutations"))
        self.progress(f"generation {generation + 1}/{self.config.generations} done: {_best(ranked)}  ({done})")
        self.on_generation(saved)


def known_fitness(records: Iterable[Evaluation], generation: int, config: SearchConfig,
                  protocols: Mapping[str, str]) -> dict[str, Fitness]:
    """Fitness of the functions ``records`` (a run's search records) hold at the full budget from before
    ``generation``: every task and fitness seed must be present, as the fitness averages them. Only the run's
    own records count, so what is a duplicate never depends on other runs."""
    rungs = budgets(config)
    wanted = {(task, seed) for task in protocols for seed in fitness_seeds(config)}
    scores: dict[str, dict[tuple[str, int], float]] = {}
    prices: dict[str, float | None] = {}
    for record in records:
        if (record.generation is not None and record.generation < generation and record.budget == rungs[-1]
                and protocols.get(record.task) == record.protocol and (record.task, record.seed) in wanted):
            scores.setdefault(record.activation_key, {})[(record.task, record.seed)] = score(record, config.fitness)
            if config.costed and record.activation_key not in prices:
                prices[record.activation_key] = cost(record.expression, record.parameters)
    return {key: Fitness(float(len(rungs) - 1), statistics.fmean(by_run.values()), prices.get(key))
            for key, by_run in scores.items() if set(by_run) == wanted}


def _best(ranked: list[HallOfFameEntry]) -> str:
    """The progress line's summary of the hall of fame (or front) after a generation."""
    if not ranked:
        return "nothing trained at the full budget yet"
    best = ranked[0]
    text = f"best {best.fitness.value:.4f} {best.canonical}"
    if best.fitness.cost is None:
        return text
    return f"front of {counted(len(ranked), 'function')}, {text} (cost {best.fitness.cost:g})"


def _mean_score(records: Iterable[Evaluation], fitness: str) -> float:
    """A candidate's fitness at one rung: its score averaged over tasks and fitness seeds (a failure is 0)."""
    return statistics.fmean(score(record, fitness) for record in records)


def _variation(config: SearchConfig) -> Variation:
    return Variation(config.population, tuple(config.seed_expressions), config.tournament_size,
                     config.crossover_prob, config.mutation_prob, config.init_min_depth, config.init_max_depth,
                     config.max_height, config.max_size, config.learnable_constants)


def rng_state_to_json(state: tuple[Any, ...]) -> dict[str, Any]:
    """JSON-able form of a ``random.getstate()``, stored so a resumed search draws exactly the random numbers
    the uninterrupted one would have (pickle would make opening someone else's ``afos.db`` a code-execution
    risk)."""
    version, internal, gauss_next = state
    return {"python": {"version": version, "state": list(internal), "gauss_next": gauss_next}}


def rng_state_from_json(data: Mapping[str, Any]) -> tuple[Any, ...]:
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
