"""Cost of the per-candidate path before training: tree -> sympy -> fingerprint -> cache lookup -> screening.

Prints, measured in one run on the same random trees, the median time per tree of each step and, for
comparison, of ``sympy.simplify`` (which afos never calls on this path), as a Markdown table.

The cache lookup is what the evaluation layer does per training run it is asked for: the key in the
run's own database, then in the other run databases under the results root (here 3, each holding the
records of every tree), as after a few searches side by side.

    python benchmarks/candidate_path.py [--trees 200] [--simplify 30] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import sympy
from deap import gp

from afos.records.evaluation import EvalKey, Evaluation, Status
from afos.search.trees import Individual, primitive_set, to_sympy
from afos.space.primitives import PRIMITIVES
from afos.space.primitives import primitive_set as resolve
from afos.space.probe import fingerprint, screen
from afos.storage.siblings import SiblingRuns
from afos.storage.store import RunStore


def _lookup_ms(keys: list[str]) -> float:
    """Median time of one own-database plus sibling-databases lookup, for keys none of them holds."""
    with tempfile.TemporaryDirectory() as root:
        for run in ("a", "b", "c", "own"):
            with RunStore(Path(root) / run / "afos.db") as store, store.transaction():
                for key in keys:
                    store.add_evaluation(Evaluation(key, "p", 1.0, 0, "digits/mlp", Status.OK))
        missing = [EvalKey(key, "p", 1.0, 1, "digits/mlp") for key in keys]  # another seed: a miss everywhere
        with RunStore(Path(root) / "own" / "afos.db") as own, SiblingRuns(Path(root), Path(root) / "own") as cache:
            cache.find(missing[0])  # open the sibling databases once, as a search does
            return _median_ms(lambda key: own.find_evaluation(key) or cache.find(key), missing)


def _median_ms(step: Callable[[object], object], items: list) -> float:
    times = []
    for item in items:
        start = time.perf_counter()
        step(item)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--simplify", type=int, default=30, help="trees to time sympy.simplify on")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed)
    pset = primitive_set(resolve("afos"))
    trees = [Individual(gp.genHalfAndHalf(pset, 1, 4)) for _ in range(args.trees)]
    to_sympy_ms = _median_ms(lambda t: to_sympy(t, PRIMITIVES), trees)  # first build: sympy's cache is cold
    exprs = [to_sympy(t, PRIMITIVES) for t in trees]
    fingerprint(exprs[0])  # warm up torch

    keys = [fingerprint(e) for e in exprs]
    rows = [
        ("tree -> sympy", to_sympy_ms),
        ("fingerprint (125-point probe)", _median_ms(fingerprint, exprs)),
        ("cache lookup (own + 3 sibling databases)", _lookup_ms(keys)),
        ("screening", _median_ms(screen, exprs)),
        ("sympy.simplify (not used)", _median_ms(sympy.simplify, exprs[: args.simplify])),
    ]
    path = sum(ms for _, ms in rows[:4])
    print(f"{args.trees} random afos-set trees (depth 1-4), seed {args.seed}; median ms per tree\n")
    print("| step | median ms | / whole path |")
    print("|---|---:|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.3f} | {ms / path:.2f}x |")
    print(f"| whole path (sum of the first four) | {path:.3f} | 1.00x |")


if __name__ == "__main__":
    main()
