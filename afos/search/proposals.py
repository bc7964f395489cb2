"""Proposals of the genetic search: which new functions a generation trains.

A :class:`Proposer` turns a population into the next generation's *distinct, valid, new* candidates:
seed expressions and ramped half-and-half trees in generation 0; afterwards tournament-selected
offspring (subtree crossover, then one of four mutations) and random immigrants. Each proposal goes
tree -> sympy -> activation key -> known? -> screening; a duplicate or a screened-out function costs no
training and its slot is refilled.

What is *known* is decided only from the run's own history (passed in by the search), never from other
runs, so the proposals depend on the config and seed alone. All randomness comes from Python's
``random`` module (DEAP's operators use it), which the search seeds and checkpoints.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from deap import gp, tools

from afos.activation.spec import activation_key
from afos.errors import ConfigError, TimeUp, UserError
from afos.records.search import Counts, Lineage, MadeBy
from afos.search.trees import Individual, insert_scale, learnable_starts, parse_tree, remove_scale, small_trees, to_sympy
from afos.space.parse import canonical
from afos.space.primitives import Primitive
from afos.space.probe import fingerprint, screen

#: What a tree computes, remembered for the process (tree text -> sympy form, learnable starts, activation key
#: or None when it is no function) and what screening says of a function (key -> reason or None). Both are
#: pure functions of their key (primitive names denote one formula everywhere), so remembering them changes
#: no decision; it spares the sympy work when proposals repeat, within a search and across searches in one
#: process (a replay benchmark runs hundreds). Bounded: cleared when full.
_FUNCTIONS: dict[str, tuple[Any, dict[str, float], str | None]] = {}
_VERDICTS: dict[str, str | None] = {}
_MEMO_LIMIT = 20_000  # a sympy form each: a few hundred MB at most; the table space holds 4,807 trees

#: Fruitless proposals in a row before a known (already evaluated) function is accepted with its stored
#: fitness instead of being refilled; bounds the work when the neighbourhood is exhausted.
REFILL_LIMIT = 50


@dataclass(frozen=True)
class Candidate:
    """A proposal that passed screening: its tree, canonical text, activation key and learnable constants
    (name -> start value; empty unless learnable constants are on)."""

    tree: Individual
    text: str
    key: str
    learnable: dict[str, float] = field(default_factory=dict)
    lineage: Lineage = Lineage(MadeBy.RANDOM)
    predicted: float | None = None  # the surrogate's prediction of its fitness, when one chose it


@dataclass(frozen=True)
class Proposals:
    """A generation's candidates, and what happened to every proposal made to find them (the search adds
    the trained, reused and failed counts once they have trained)."""

    candidates: list[Candidate]
    counts: Counts


@dataclass(frozen=True)
class Variation:
    """The search settings that shape proposals (a view of the search config)."""

    population: int
    seed_expressions: tuple[str, ...]
    tournament_size: int
    crossover_prob: float
    mutation_prob: float
    init_min_depth: int
    init_max_depth: int
    max_height: int
    max_size: int
    learnable_constants: bool


TallyCounter = Counter[str]  # Counts field -> how many so far, while a generation's proposals are made

#: Called once per distinct function screened: (key, tree text, canonical text, screening reason or None,
#: lineage).
OnScreened = Callable[[str, str, str, "str | None", Lineage], None]
#: Picks the candidates to train from a pool (a surrogate): (pool, slots) -> chosen, with their predictions.
Ranker = Callable[[list["Candidate"], int], list["Candidate"]]
#: Picks one parent from a population (the GA's tournament by default; NSGA-II's crowded tournament).
Selector = Callable[[list[Individual]], Individual]
#: A proposal: a tree and how it was made.
Proposal = tuple[Individual, Lineage]
#: The mutations by the index :meth:`Proposer._mutate` draws.
MUTATIONS = ("subtree", "node replacement", "shrink", "insert", "insert constant", "remove constant")


class Proposer:
    """Variation, bloat limits, immigrants, screening and de-duplication within one run."""

    def __init__(self, settings: Variation, pset: gp.PrimitiveSet, primitives: dict[str, Primitive], *,
                 on_screened: OnScreened, say: Callable[[str], None], deadline: float | None = None) -> None:
        self.settings = settings
        self.pset = pset
        self.primitives = primitives
        self.on_screened = on_screened
        self.say = say
        self.deadline = deadline
        self.verdicts: dict[str, str | None] = {}  # activation key -> screening reason (None: valid)

    # -------------------------------------------------------------------------------- generations
    def initial(self, known: Collection[str], cap: int) -> Proposals:
        """Seed expressions first (even if known), then random trees until the population is full."""
        accepted: list[Candidate] = []
        tally: TallyCounter = Counter()
        for tree in self._seed_trees():
            self._consider((tree, Lineage(MadeBy.SEED)), accepted, tally, known, accept_known=True)
        self._fill(accepted, min(cap, self.settings.population), tally, known,
                   lambda: (self.random_tree(), Lineage(MadeBy.RANDOM)))
        return Proposals(accepted, Counts(**tally))

    def offspring(self, population: list[Individual], taken: Collection[str], known: Collection[str],
                  cap: int, rank: Ranker | None = None, pool: int = 1, *, immigrants: float,
                  select: Selector | None = None) -> Proposals:
        """Varied offspring of parents chosen by ``select`` (default: a tournament of ``tournament_size``),
        then random trees (``immigrants``, a share of the population: 1 under random search), for the slots
        the ``taken`` elites leave. With ``rank`` (a surrogate), ``pool`` times as many are proposed in the
        same proportions and ``rank`` picks the ones to train."""
        slots = min(cap, self.settings.population - len(taken))
        size = slots * (pool if rank is not None else 1)
        drawn = min(size, round(immigrants * self.settings.population) * (size // max(1, slots)))
        accepted: list[Candidate] = []
        tally: TallyCounter = Counter()
        parent = select or self._tournament
        self._fill(accepted, size - drawn, tally, known, lambda: self._vary(population, tally, parent), taken)
        self._fill(accepted, size, tally, known, lambda: (self.random_tree(), Lineage(MadeBy.IMMIGRANT)), taken)
        if rank is not None and len(accepted) > slots:
            chosen = rank(accepted, slots)
            tally["ranked_out"] += len(accepted) - len(chosen)
            accepted = chosen
        return Proposals(accepted, Counts(**tally))

    def _fill(self, accepted: list[Candidate], size: int, counts: TallyCounter, known: Collection[str],
              propose: Callable[[], Proposal], taken: Collection[str] = ()) -> None:
        """Propose until ``accepted`` holds ``size`` candidates; after :data:`REFILL_LIMIT` fruitless
        proposals in a row a known function is accepted (with its stored fitness) rather than none."""
        since = 0  # fruitless proposals in a row
        while len(accepted) < size:
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise TimeUp
            before = len(accepted)
            self._consider(propose(), accepted, counts, known, accept_known=since >= REFILL_LIMIT, taken=taken)
            since = 0 if len(accepted) > before else since + 1
            if since > 2 * REFILL_LIMIT:
                break  # even known functions are exhausted: a smaller generation beats an endless loop

    def _consider(self, proposal: Proposal, accepted: list[Candidate], counts: TallyCounter, known: Collection[str], *,
                  accept_known: bool, taken: Collection[str] = ()) -> None:
        """The per-candidate path up to training: sympy, activation key, duplicate check, screening."""
        tree, lineage = proposal
        counts["proposed"] += 1
        if tree.height > self.settings.max_height or len(tree) > self.settings.max_size:
            counts["screened"] += 1  # a random tree over the bloat limits: never stored, never trained
            return
        expr, starts, key = self._function(tree)
        if key is None:
            counts["screened"] += 1
            return
        in_generation = key in taken or any(c.key == key for c in accepted)
        if in_generation or (key in known and not accept_known):
            counts["duplicate"] += 1
            return
        if self._screen(key, expr, proposal, starts) is not None:
            counts["screened"] += 1
            return
        accepted.append(Candidate(tree, canonical(expr), key, starts, lineage))

    def _function(self, tree: Individual) -> tuple[Any, dict[str, float], str | None]:
        """The tree's sympy form, learnable starts and activation key (None: not a function), remembered."""
        text = str(tree)
        if text not in _FUNCTIONS:
            if len(_FUNCTIONS) >= _MEMO_LIMIT:
                _FUNCTIONS.clear()
            expr, starts = to_sympy(tree, self.primitives), learnable_starts(tree)
            try:
                key: str | None = activation_key(expr, starts)
            except UserError:
                key = None
            _FUNCTIONS[text] = (expr, starts, key)
        expr, starts, key = _FUNCTIONS[text]
        return expr, dict(starts), key

    def _screen(self, key: str, expr: Any, proposal: Proposal, starts: Mapping[str, float]) -> str | None:
        if key not in self.verdicts:
            if key not in _VERDICTS:
                if len(_VERDICTS) >= _MEMO_LIMIT:
                    _VERDICTS.clear()
                _VERDICTS[key] = screen(expr, starts).reason
            self.verdicts[key] = _VERDICTS[key]
            self.on_screened(key, str(proposal[0]), canonical(expr), self.verdicts[key], proposal[1])
        return self.verdicts[key]

    # ----------------------------------------------------------------------------------- trees
    def _seed_trees(self) -> list[Individual]:
        """Seed expressions as trees: tree text directly, else the smallest tree with the same function."""
        trees = []
        for text in self.settings.seed_expressions:
            try:
                trees.append(parse_tree(text, self.pset))
                continue
            except ConfigError:
                pass
            target = fingerprint(text)
            match = next((t for t in small_trees(self.pset) if _safe_fingerprint(to_sympy(t, self.primitives)) == target),
                         None)
            if match is None:
                self.say(f"seed {text!r} cannot be built from the primitive set; skipped")
            else:
                trees.append(match)
        return trees

    def random_tree(self) -> Individual:
        """A ramped half-and-half tree within the depth range (an immigrant, or generation 0's filler)."""
        return Individual(gp.genHalfAndHalf(self.pset, self.settings.init_min_depth, self.settings.init_max_depth))

    def _vary(self, population: list[Individual], counts: TallyCounter, select: Selector) -> Proposal:
        """Tournament-select a parent, then maybe cross it with a second one and maybe mutate it; the
        lineage names the operators whose child stayed within the bloat limits, and the parents' keys.

        DEAP's operators change their arguments in place, so each works on clones and the bloat limit
        compares the child with the untouched parent (as DEAP's ``staticLimit`` does).
        """
        first = select(population)
        parent, parents, operators = _clone(first), [first], []
        if random.random() < self.settings.crossover_prob:
            second = select(population)
            child = gp.cxOnePoint(_clone(parent), _clone(second))[0]
            parent = self._within_limits(parent, child)
            counts["crossovers"] += 1
            if parent is child:
                parents.append(second)
                operators.append("crossover")
        if random.random() < self.settings.mutation_prob:
            kind = random.randrange(6 if self.settings.learnable_constants else 4)
            child = self._mutate(_clone(parent), kind)
            parent = self._within_limits(parent, child)
            counts["mutations"] += 1
            if parent is child:
                operators.append(MUTATIONS[kind])
        keys = tuple(dict.fromkeys(k for k in map(self._key_of, parents) if k is not None))
        return parent, Lineage(MadeBy.OFFSPRING, tuple(operators), keys)

    def _key_of(self, tree: Individual) -> str | None:
        """A population member's activation key (None for a tree that is no function)."""
        return self._function(tree)[2]

    def _tournament(self, population: list[Individual]) -> Individual:
        return tools.selTournament(population, 1, self.settings.tournament_size)[0]

    def _mutate(self, tree: Individual, kind: int) -> Individual:
        """Mutation ``kind`` of :data:`MUTATIONS` (drawn uniformly among the first four: subtree, node
        replacement, shrink, insert; with learnable constants among all six)."""
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

    def _within_limits(self, parent: Individual, child: Individual) -> Individual:
        """Bloat control: a child over the height or size limit is replaced by its parent."""
        if child.height > self.settings.max_height or len(child) > self.settings.max_size:
            return parent
        return child


def _clone(tree: Individual) -> Individual:
    copy = Individual(tree)
    copy.fitness.values = tree.fitness.values
    return copy


def _safe_fingerprint(expr: Any) -> str | None:
    try:
        return fingerprint(expr)
    except UserError:
        return None
