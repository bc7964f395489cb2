"""What NSGA-II buys over random search on the front of accuracy against cost, replayed over afos's table.

Why: a search over ``objectives = ["accuracy", "cost"]`` claims a better front per training than random
sampling. The table (benchmarks/tabular.py) holds a real training of every function of a stated part of the
space, so the unchanged search runs against it at table speed (afos.execution.replay, as
benchmarks/replay_efficiency.py does for one objective), 100+ seeds per strategy.

    python benchmarks/front_efficiency.py [--table benchmarks/tables/afos-h2-v2.json.gz] [--tasks ...]
        [--strategies random nsga2 nsga2+knn ga+knn] [--seeds 100] [--budgets 30 100 300] [--root DIR]

What is measured, per strategy, task and budget n (in trainings): the **hypervolume** of the front the
search holds after n trainings. The search holds the functions it evaluated at every fitness seed that no
other one beats in its own fitness (mean validation accuracy at its fitness seeds) and cost; each is then
scored by its *quality*, its mean test accuracy over the table's replicates, which no search sees, and its
cost (afos.space.cost, from the form). The hypervolume is the area those (quality, cost) points dominate
within a reference: quality above the median of the space, cost below --max-cost ReLUs (10: a function
worse than the median or dearer than ten ReLUs adds nothing). Every search soon holds a ReLU-like function
that dominates most of that area, so the numbers compared are the **missed hypervolume**: the whole table's
front's minus the search's (0 when a search holds the table's front). Tests: one-sided Mann-Whitney of each
strategy against random (less missed), Vargha-Delaney A12, Holm over the tests of a task. ``ga+knn`` is
the single-objective search (cost not an objective) read the same way: what minimising cost adds to a
search for accuracy.

Each search's trace is kept in ``<root>/traces.jsonl`` as it finishes, so the command resumes after a kill.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import moocore
import numpy as np
from replay_efficiency import DEFAULT_TABLE, a12, quality, replayed, run_searches, search_config, table_task
from scipy.stats import mannwhitneyu

from afos.execution.replay import Table, read_table
from afos.records.evaluation import Status
from afos.space.cost import cost
from afos.stats.pairwise import holm

COSTED = {"objectives": ["accuracy", "cost"]}
STRATEGIES: dict[str, dict[str, Any]] = {
    "random": {"strategy": "random", "surrogate": "none", **COSTED},
    "nsga2": {"strategy": "nsga2", "surrogate": "none", **COSTED},
    "nsga2+knn": {"strategy": "nsga2", "surrogate": "knn", **COSTED},
    "ga+knn": {"strategy": "ga", "surrogate": "knn"},
}


@dataclass(frozen=True)
class Trace:
    """One replayed search: each training's function (activation key) and score (validation accuracy, a
    failed run 0), in order."""

    trained: list[str]
    scores: list[float]


def held_front(trace: Trace, n: int, fitness_seeds: int, costs: dict[str, float]) -> list[str]:
    """The functions a search holds as its front after ``n`` trainings: evaluated at every fitness seed, and
    beaten by no other in both fitness and cost."""
    scores: dict[str, list[float]] = {}
    for key, value in zip(trace.trained[:n], trace.scores[:n]):
        scores.setdefault(key, []).append(value)
    fitness = {key: statistics.mean(v) for key, v in scores.items() if len(v) == fitness_seeds}
    return [key for key in fitness
            if not any(fitness[o] >= fitness[key] and costs[o] <= costs[key]
                       and (fitness[o], costs[o]) != (fitness[key], costs[key]) for o in fitness)]


def hypervolume(points: list[tuple[float, float]], reference: tuple[float, float]) -> float:
    """The area (quality, cost) ``points`` dominate above ``reference`` (quality at least, cost at most);
    moocore's hypervolume (DEAP's, which minimises), on (-quality, cost)."""
    inside = [(-q, c) for q, c in points if q > reference[0] and c < reference[1]]
    if not inside:
        return 0.0
    return float(moocore.hypervolume(np.array(inside, dtype=float), ref=np.array([-reference[0], reference[1]])))


def run_all(args: argparse.Namespace, table: Table) -> dict[tuple[str, str, int], Trace]:
    def search(task: str, strategy: str, seed: int, folder: Path) -> dict[str, Any]:
        config = search_config(task, "random", seed, max(args.budgets), {**STRATEGIES[strategy], **args.settings})
        records = replayed(config, table, folder)
        return {"trained": [r.key.activation_key for r in records],
                "scores": [(r.val_accuracy or 0.0) if r.status is Status.OK else 0.0 for r in records]}

    rows = run_searches(args, search)
    return {key: Trace(row["trained"], row["scores"]) for key, row in rows.items()}


def summarise(args: argparse.Namespace, table: Table, traces: dict[tuple[str, str, int], Trace]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for task in args.tasks:
        name = table_task(table, task)
        values = quality(table, name)
        texts = {f.key: f.canonical for f in table.functions}
        costs = {key: cost(texts[key]) for key in values}
        reference = (float(np.median(list(values.values()))), args.max_cost)
        seeds = search_config(task, "random", 0, max(args.budgets)).fitness_seeds
        everything = hypervolume([(values[k], costs[k]) for k in values], reference)
        missed: dict[tuple[str, int], list[float]] = {}
        rows = []
        for strategy in args.strategies:
            runs = [traces[(task, strategy, seed)] for seed in range(args.seeds)]
            for n in args.budgets:
                fronts = [held_front(t, n, seeds, costs) for t in runs]
                held = [everything - hypervolume([(values[k], costs[k]) for k in f], reference) for f in fronts]
                missed[(strategy, n)] = held
                rows.append({"strategy": strategy, "budget": n, "median_missed": statistics.median(held),
                             "iqr_missed": [float(q) for q in np.quantile(held, [0.25, 0.75])],
                             "median_front": statistics.median(len(f) for f in fronts)})
        tests = [{"test": f"{strategy} < random, missed hypervolume at {n}",
                  "p": float(mannwhitneyu(missed[(strategy, n)], missed[("random", n)], alternative="less").pvalue),
                  "a12": a12(missed[("random", n)], missed[(strategy, n)])}
                 for strategy in args.strategies if strategy != "random" for n in args.budgets]
        for test, adjusted in zip(tests, holm([t["p"] for t in tests])):
            test["p_holm"] = float(adjusted)
        summary[task] = {"table_task": name, "functions": len(values), "reference": reference,
                         "table_hv": everything, "rows": rows, "tests": tests}
    return summary


def plot(args: argparse.Namespace, summary: dict[str, Any], path: Path) -> None:
    """Median missed hypervolume (with its interquartile band) against trainings, one panel per task, as a
    share of the whole table's front's hypervolume."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 - only the picture needs it

    figure, axes = plt.subplots(1, len(args.tasks), figsize=(4.2 * len(args.tasks), 3.6), squeeze=False)
    for axis, task in zip(axes[0], args.tasks):
        result = summary[task]
        for strategy in args.strategies:
            rows = [r for r in result["rows"] if r["strategy"] == strategy]
            budgets = [r["budget"] for r in rows]
            share = [r["median_missed"] / result["table_hv"] for r in rows]
            low = [r["iqr_missed"][0] / result["table_hv"] for r in rows]
            high = [r["iqr_missed"][1] / result["table_hv"] for r in rows]
            line = axis.plot(budgets, share, marker="o", label=strategy)[0]
            axis.fill_between(budgets, low, high, color=line.get_color(), alpha=0.08)
        axis.set_title(f"{Path(task).stem} ({args.seeds} seeds each)", fontsize=10)
        axis.set_xscale("log")
        axis.set_yscale("symlog", linthresh=1e-3)  # from most of the front missed down to none of it
        axis.set_ylim(bottom=0)
        axis.set_xticks(args.budgets, [str(b) for b in args.budgets])
        axis.minorticks_off()
        axis.set_xlabel("trainings")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("missed hypervolume / the table front's")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def print_summary(summary: dict[str, Any]) -> None:
    for task, result in summary.items():
        quality_ref, cost_ref = result["reference"]
        print(f"\n{task} ({result['functions']} functions; reference: quality {quality_ref:.4f}, cost {cost_ref:.2f}; "
              f"the whole table's front: hypervolume {result['table_hv']:.4f})")
        print(f"{'strategy':12s} {'budget':>6s} {'missed HV':>10s} {'share':>6s} {'IQR':>17s} {'front':>6s}")
        for row in result["rows"]:
            low, high = row["iqr_missed"]
            print(f"{row['strategy']:12s} {row['budget']:6d} {row['median_missed']:10.4f} "
                  f"{row['median_missed'] / result['table_hv']:6.1%} {low:8.4f}-{high:8.4f} {row['median_front']:6g}")
        for test in result["tests"]:
            print(f"  {test['test']:42s} p = {test['p']:.3g}  p_holm = {test['p_holm']:.3g}  A12 = {test['a12']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    parser.add_argument("--tasks", nargs="+", default=["hard-checkerboard", "hard-rings", "hard-deep"])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--budgets", type=int, nargs="+", default=[30, 100, 300])
    parser.add_argument("--max-cost", type=float, default=10.0, help="The reference's cost, in ReLUs.")
    parser.add_argument("--root", default="results/front-efficiency")
    parser.add_argument("--picture", default=None, help="Write the picture here (default <root>/front-efficiency.png).")
    parser.add_argument("--set", dest="settings", nargs="+", default=[], metavar="KEY=VALUE",
                        help="search settings for every strategy (immigrants=0.5); use a --root of their own")
    args = parser.parse_args()
    args.settings = {key: json.loads(value) for key, value in (item.split("=", 1) for item in args.settings)}
    if "random" not in args.strategies:
        parser.error("random is the baseline every strategy is tested against: keep it in --strategies")
    table = read_table(args.table)
    summary = summarise(args, table, run_all(args, table))
    print_summary(summary)
    root = Path(args.root)
    (root / "summary.json").write_text(json.dumps(summary, indent=1))
    plot(args, summary, Path(args.picture) if args.picture else root / "front-efficiency.png")


if __name__ == "__main__":
    main()
