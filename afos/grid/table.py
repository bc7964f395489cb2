"""afos's own tabular benchmark: a stated, finite part of the search space, trained whole, as one file.

The part: every tree of height at most :data:`HEIGHT` over a primitive set (DEAP's height: ``x`` is 0,
``u(x)`` and ``b(x, x)`` are 1, ``b(u(x), u(x))`` and ``u(u(x))`` are 2), de-duplicated by activation key
(the function's values on the fingerprint grid, as the search de-duplicates), less what screening rejects
(the search never trains those either). A search with ``max_height = HEIGHT``, ``init_max_depth <= HEIGHT``,
the same primitives and no constants or learnable constants proposes only functions of this part, so a
replay (:mod:`afos.execution.replay`) can answer every training it asks for. The baselines are added
beside the space so a replayed search can confirm against them.

The table is built as ordinary ``afos evaluate`` grids, one per task, under one results root
(``benchmarks/tabular.py build``): killed or spread over days, a build resumes where it stopped and loses
nothing. :func:`table_from_grids` turns the finished grids into a :class:`~afos.execution.replay.Table`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from afos.activation.spec import activation_key
from afos.errors import ConfigError, UserError
from afos.execution.replay import Outcome, Table, TableFunction, TableTask, task_settings
from afos.grid.results import Results
from afos.search.config import SearchConfig
from afos.search.trees import primitive_set as tree_set
from afos.search.trees import small_trees, to_sympy
from afos.space.parse import canonical
from afos.space.primitives import primitive_set
from afos.space.probe import screen

#: The tree height the table enumerates (what :func:`afos.search.trees.small_trees` yields).
HEIGHT = 2
#: Beside the space: the functions every claim is measured against.
TABLE_BASELINES = ("relu", "silu", "gelu", "tanh", "selu")


@dataclass(frozen=True)
class Space:
    """The enumerated part of the space: how many trees, the unique valid functions in enumeration order
    (smallest trees first), and the unique functions screening rejected, with the reason."""

    primitives: tuple[str, ...]
    trees: int
    unique: int
    functions: tuple[TableFunction, ...]
    screened: Mapping[str, str]  # activation key -> screening reason

    def first(self, count: int | None) -> Space:
        """The space cut to its first ``count`` functions (a smoke build); None keeps all."""
        return self if count is None else replace(self, functions=self.functions[:count])

    def summary(self) -> dict[str, Any]:
        """The ``space`` field of a table: what was enumerated and what came of it."""
        return {"primitives": list(self.primitives), "max_height": HEIGHT, "trees": self.trees,
                "unique": self.unique, "screened_out": len(self.screened),
                "trained": len(self.functions), "constants": "none", "learnable_constants": False}


def enumerate_space(primitives: str | Sequence[str] = "afos") -> Space:
    """Every tree of height <= :data:`HEIGHT` over ``primitives``, de-duplicated and screened, as the
    search's proposer would treat each one (same keys, same screening)."""
    chosen = primitive_set(primitives if isinstance(primitives, str) else list(primitives))
    by_name = {p.name: p for p in chosen}
    pset = tree_set(chosen)
    functions: dict[str, TableFunction] = {}
    screened: dict[str, str] = {}
    trees = 0
    for tree in small_trees(pset):
        trees += 1
        expr = to_sympy(tree, by_name)
        try:
            key = activation_key(expr, {})
        except UserError as error:  # not a function at all (the search screens it out the same way)
            screened.setdefault(f"tree:{tree}", f"cannot be evaluated: {error}")
            continue
        if key in functions or key in screened:
            continue
        reason = screen(expr).reason
        if reason is not None:
            screened[key] = reason
        else:
            functions[key] = TableFunction(key, canonical(expr), str(tree))
    unique = len(functions) + len(screened)
    return Space(tuple(p.name for p in chosen), trees, unique, tuple(functions.values()), screened)


def table_from_grids(space: Space, grids: Mapping[str, Results], datasheet: Mapping[str, Any]) -> Table:
    """The table of finished grids (task name -> the grid's stored results): one outcome per function and
    replicate seed. Raises UserError naming what is missing from an unfinished grid."""
    baselines: list[TableFunction] = []
    tasks, outcomes = [], {}
    for name, results in grids.items():
        (spec,) = results.specs
        (case,) = spec.tasks
        tasks.append(TableTask(name, task_settings(spec.config(case)), spec.seeds))
        runs: dict[str, tuple[Outcome, ...]] = {}
        for function in results.functions:
            by_seed = results.runs.get((function.fingerprint, case), {})
            missing = [seed for seed in spec.seeds if seed not in by_seed]
            if missing:
                raise UserError(f"task {name}: {function.canonical} has no run at seed(s) {missing}; "
                                "finish the build first")
            runs[function.fingerprint] = tuple(Outcome.of(by_seed[seed]) for seed in spec.seeds)
            if function.fingerprint not in {f.key for f in (*space.functions, *baselines)}:
                baselines.append(TableFunction(function.fingerprint, function.canonical, function.name))
        absent = [f.canonical for f in space.functions if f.key not in runs]
        if absent:
            raise UserError(f"task {name}: {len(absent)} function(s) of the space were not trained, e.g. {absent[0]}")
        outcomes[name] = runs
    return Table(space.summary(), dict(datasheet), tuple(tasks), (*space.functions, *baselines), outcomes)


def check_within(table: Table, config: SearchConfig) -> None:
    """Raise ConfigError unless every function ``config``'s search can propose is in ``table``'s space:
    the same primitives, trees no higher than the table's, no constants and no learnable constants (one
    clear line before anything starts, instead of an error in the middle of a search)."""
    space = table.space
    primitives = [p.name for p in primitive_set(config.primitives)]
    problems = []
    if primitives != list(space.get("primitives", [])):
        problems.append(f"primitives must be the table's ({', '.join(space.get('primitives', []))})")
    if config.max_height > int(space.get("max_height", -1)) or config.init_max_depth > config.max_height:
        problems.append(f"max_height and init_max_depth must be at most {space.get('max_height')}")
    if config.constants or config.learnable_constants:
        problems.append("the table has no constants: set constants = [] and learnable_constants = false")
    if problems:
        raise ConfigError(f"this search can propose functions outside the table: {'; '.join(problems)}")
