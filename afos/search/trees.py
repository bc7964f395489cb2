"""Expression trees for the genetic search: DEAP primitive sets, safe tree text, trees to sympy.

DEAP's own ``PrimitiveTree.from_string`` calls ``eval`` on tokens it does not know, so trees are read
back (from configs, the run database and resumed populations) by the small parser here instead, which
accepts only the primitive names of the set, ``x`` and numbers.
"""

from __future__ import annotations

import itertools
import random
import re
from typing import Iterable

import sympy
from deap import base, gp

from afos.errors import ConfigError
from afos.records.search import Fitness
from afos.space.parse import MAX_DEPTH, MAX_LENGTH, parameter_symbol
from afos.space.primitives import Primitive, X


class TreeFitness(base.Fitness):
    """A tree's fitness as DEAP's operators read it: (rung reached, value, cost), the first two maximised,
    the cost minimised (0 when cost is not an objective). Compared lexicographically by the GA's tournaments
    (so scores compare only at equal training budgets; the cost only breaks exact ties), by Pareto dominance
    in NSGA-II's ``selNSGA2``. Without successive halving every candidate is on rung 0."""

    weights = (1.0, 1.0, -1.0)


class Individual(gp.PrimitiveTree):
    """A candidate tree carrying its fitness, as DEAP's operators expect."""

    def __init__(self, content: Iterable[gp.Primitive | gp.Terminal]) -> None:
        super().__init__(content)
        self.fitness = TreeFitness()


def set_fitness(tree: Individual, fitness: Fitness) -> None:
    """Give ``tree`` the fitness record's values, as DEAP's operators read them."""
    tree.fitness.values = (fitness.rung, fitness.value, 0.0 if fitness.cost is None else fitness.cost)


def fitness_of(tree: Individual, costed: bool) -> Fitness:
    """The fitness record of an evaluated tree (its cost only when cost is an objective)."""
    rung, value, cost = tree.fitness.values
    return Fitness(rung, value, cost if costed else None)


#: The unary node ``scale(u)`` stands for ``p_i * u`` with its own learnable constant p_i (PANGAEA-style):
#: around ``x`` it scales an edge (u(p*x)), around an operator it scales its output (p*op(...)).
SCALE = "scale"
#: Start value of every learnable constant: at 1 a scaled form computes its unscaled function.
SCALE_START = 1.0


def primitive_set(
    primitives: Iterable[Primitive], constants: Iterable[float] = (), *, learnable_constants: bool = False
) -> gp.PrimitiveSet:
    """A DEAP primitive set over the single input ``x``; ``constants`` become fixed terminals and
    ``learnable_constants`` adds the :data:`SCALE` node."""
    pset = gp.PrimitiveSet("afos", 1)
    pset.renameArguments(ARG0="x")
    for primitive in primitives:
        pset.addPrimitive(primitive.build, primitive.arity, name=primitive.name)
    if learnable_constants:
        pset.addPrimitive(lambda a: a, 1, name=SCALE)
    for value in constants:
        pset.addTerminal(float(value), name=repr(float(value)))
    return pset


#: Stored trees are read within the expression parser's limits, so a crafted database cannot make reading
#: them deep (recursion) or long (time, memory): at most MAX_TREE_DEPTH levels below the root, MAX_LENGTH
#: characters of text.
MAX_TREE_DEPTH = MAX_DEPTH

_TREE_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<number>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<op>[(),]))"
)


def parse_tree(text: str, pset: gp.PrimitiveSet) -> Individual:
    """Read tree text such as ``sigmoid_mul(x, max0(x))`` with only the names of ``pset``."""
    if not isinstance(text, str) or len(text) > MAX_LENGTH:
        size = f"{len(text)} characters long" if isinstance(text, str) else f"a {type(text).__name__}"
        raise ConfigError(f"tree text is {size}; a tree is a string of at most {MAX_LENGTH} characters")
    tokens = [(m.lastgroup, m.group(m.lastgroup or "op")) for m in _TREE_TOKEN.finditer(text)]
    if "".join(t for _, t in tokens) != re.sub(r"\s+", "", text):
        raise ConfigError(f"tree {text!r} has characters outside the tree grammar")
    nodes: list[gp.Primitive | gp.Terminal] = []
    position = _read_node(tokens, 0, pset, nodes, text, 0)
    if position != len(tokens):
        raise ConfigError(f"tree {text!r} has trailing text")
    return Individual(nodes)


def _read_node(tokens: list, position: int, pset: gp.PrimitiveSet, nodes: list, text: str, depth: int) -> int:
    if depth > MAX_TREE_DEPTH:
        raise ConfigError(f"tree {text[:40]!r}... nests deeper than {MAX_TREE_DEPTH} levels")
    if position >= len(tokens):
        raise ConfigError(f"tree {text!r} ends early")
    kind, token = tokens[position]
    terminals = {t.format(): t for t in pset.terminals[pset.ret]}
    if kind == "number" or token in terminals:
        key = repr(float(token)) if kind == "number" else token
        if key not in terminals:
            raise ConfigError(f"tree {text!r}: {token} is not a terminal of this primitive set")
        nodes.append(terminals[key])
        return position + 1
    primitive = {p.name: p for p in pset.primitives[pset.ret]}.get(token)
    if primitive is None:
        raise ConfigError(f"tree {text!r}: {token!r} is not a primitive of this primitive set")
    nodes.append(primitive)
    position += 1
    for index in range(primitive.arity):
        expected = "(" if index == 0 else ","
        if position >= len(tokens) or tokens[position][1] != expected:
            raise ConfigError(f"tree {text!r}: {token} takes {primitive.arity} argument(s)")
        position = _read_node(tokens, position + 1, pset, nodes, text, depth + 1)
    if position >= len(tokens) or tokens[position][1] != ")":
        raise ConfigError(f"tree {text!r}: {token} takes {primitive.arity} argument(s)")
    return position + 1


def to_sympy(tree: gp.PrimitiveTree, primitives: dict[str, Primitive]) -> sympy.Expr:
    """Build the sympy expression of a prefix-ordered tree (iteratively: no recursion limit).

    The i-th :data:`SCALE` node in prefix order multiplies its argument by the parameter ``p<i>``.
    """
    scales = [i for i, node in enumerate(tree) if node.name == SCALE]
    stack: list[sympy.Expr] = []
    for index in range(len(tree) - 1, -1, -1):
        node = tree[index]
        if isinstance(node, gp.Terminal):
            text = node.format()  # "x", or a constant's repr (DEAP keeps named terminals' values as text)
            stack.append(X if text == "x" else sympy.Float(float(text)))
        elif node.name == SCALE:
            stack.append(parameter_symbol(f"p{scales.index(index)}") * stack.pop())
        else:
            args = [stack.pop() for _ in range(node.arity)]
            stack.append(primitives[node.name].build(*args))
    return stack[0]


def learnable_starts(tree: gp.PrimitiveTree) -> dict[str, float]:
    """The learnable constants of a tree and their start values."""
    count = sum(1 for node in tree if node.name == SCALE)
    return {f"p{i}": SCALE_START for i in range(count)}


def remove_scale(tree: Individual) -> Individual:
    """Mutation: drop one randomly chosen :data:`SCALE` node (its argument takes its place)."""
    positions = [i for i, node in enumerate(tree) if node.name == SCALE]
    if positions:
        index = random.choice(positions)
        tree[index: tree.searchSubtree(index).stop] = tree[tree.searchSubtree(index + 1)]
    return tree


def insert_scale(tree: Individual, pset: gp.PrimitiveSet) -> Individual:
    """Mutation: wrap one randomly chosen subtree in a :data:`SCALE` node."""
    index = random.randrange(len(tree))
    subtree = tree.searchSubtree(index)
    tree[subtree] = [pset.mapping[SCALE], *tree[subtree]]
    return tree


def small_trees(pset: gp.PrimitiveSet) -> Iterable[Individual]:
    """Every tree of depth <= 2 over ``x``, smallest first: where a named seed is looked up."""
    x = [pset.mapping["x"]]
    unary = [p for p in pset.primitives[pset.ret] if p.arity == 1]
    binary = [p for p in pset.primitives[pset.ret] if p.arity == 2]
    depth1 = [[u, *x] for u in unary] + [[b, *x, *x] for b in binary]
    yield from (Individual(n) for n in depth1)
    for outer in unary:
        yield from (Individual([outer, *inner]) for inner in depth1)
    for outer, left, right in itertools.product(binary, [x, *depth1], [x, *depth1]):
        yield Individual([outer, *left, *right])
