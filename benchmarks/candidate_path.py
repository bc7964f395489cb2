"""Cost of the per-candidate path before training: tree -> sympy -> fingerprint -> screening.

Prints, measured in one run on the same random trees, the median time per tree of each step and, for
comparison, of ``sympy.simplify`` (which afos never calls on this path), as a Markdown table.

    python benchmarks/candidate_path.py [--trees 200] [--simplify 30] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Callable

import sympy
from deap import gp

from afos.space.primitives import PRIMITIVES
from afos.space.primitives import primitive_set as resolve
from afos.space.probe import fingerprint, screen
from afos.trees import Individual, primitive_set, to_sympy


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

    rows = [
        ("tree -> sympy", to_sympy_ms),
        ("fingerprint (125-point probe)", _median_ms(fingerprint, exprs)),
        ("screening", _median_ms(screen, exprs)),
        ("sympy.simplify (not used)", _median_ms(sympy.simplify, exprs[: args.simplify])),
    ]
    path = rows[0][1] + rows[1][1] + rows[2][1]
    print(f"{args.trees} random afos-set trees (depth 1-4), seed {args.seed}; median ms per tree\n")
    print("| step | median ms | / whole path |")
    print("|---|---:|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.3f} | {ms / path:.2f}x |")
    print(f"| whole path (sum of the first three) | {path:.3f} | 1.00x |")


if __name__ == "__main__":
    main()
