"""What the search buys over random sampling, replayed over afos's own table at 100+ seeds per strategy.

Why: training for real, a 2-core CPU affords ~10 searches per strategy, too few to tell strategies apart
(benchmarks/search_efficiency.py). The table (benchmarks/tabular.py) holds a real training of every function
of a stated part of the space, so the unchanged search code (proposals, screening, de-duplication,
selection, surrogate) runs against it at table speed (afos.execution.replay), hundreds of seeds in minutes.

    python benchmarks/replay_efficiency.py [--table benchmarks/tables/afos-h2-v2.json.gz] [--tasks ...]
        [--strategies random ga ga+knn ga+forest] [--seeds 100] [--budgets 10 30 100 300] [--root DIR]

Quality of a function: its mean *test* accuracy over the table's replicates (a failed run counts 0); no
search ever sees it (a search selects by validation accuracy at its own fitness seeds). The top 1 %: the
functions of the table whose quality is at least its 99th percentile. Per strategy, task and budget n (in
trainings, each candidate costing one per fitness seed): the median quality of the function the search holds
as best by fitness after n trainings; the share of searches that trained a top-1 % function within n; the
trainings until the first top-1 % function (Kaplan-Meier median, searches that never found one censored);
one-sided Mann-Whitney tests of each strategy above random on the held quality and on the trainings to the
top 1 %, with Vargha-Delaney A12 and Holm correction over all tests of a task. ``random-unique`` (distinct
functions drawn uniformly, scored at the same fitness seeds) is computed exactly from the table.

Each search's trace is kept in ``<root>/traces.jsonl`` as it finishes, so the command resumes after a kill.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import gammaln
from scipy.stats import CensoredData, ecdf, mannwhitneyu

from afos.config import load_config, with_overrides
from afos.errors import ConfigError
from afos.evaluation import Evaluator
from afos.execution.replay import ReplayExecutor, Table, read_table
from afos.records.evaluation import Evaluation, Phase, Status
from afos.records.runs import MetaKey
from afos.search.config import SearchConfig, task_configs
from afos.search.loop import Search
from afos.stats.pairwise import holm
from afos.storage.store import RunStore

STRATEGIES: dict[str, dict[str, str]] = {
    "random": {"strategy": "random", "surrogate": "none"},
    "ga": {"strategy": "ga", "surrogate": "none"},
    "ga+knn": {"strategy": "ga", "surrogate": "knn"},
    "ga+forest": {"strategy": "ga", "surrogate": "forest"},
}
DEFAULT_TABLE = Path(__file__).parent / "tables" / "afos-h2-v2.json.gz"
TOP = 0.01


@dataclass(frozen=True)
class Trace:
    """One replayed search: the function trained at each training (activation key), in order, and the
    function held as best by fitness after each training (None before the first candidate completes)."""

    trained: list[str]
    held: list[str | None]


def search_config(task: str, strategy: str, seed: int, budget: int, settings: dict[str, Any] | None = None,
                  ) -> SearchConfig:
    """The task's shipped config as a search of ``budget`` trainings, no confirmation (it would spend
    trainings outside the budget), generations enough that the budget, not their count, ends it, and no seed
    expressions: planted in generation 0 of every strategy alike, a planted ReLU would be "found" at the
    first training by all of them and hide what each strategy finds by itself."""
    overrides = {**STRATEGIES[strategy], "seed": seed, "confirm": False, "baseline": [], "max_evals": budget,
                 "generations": 10_000, "reuse_runs": False, "seed_expressions": [], **(settings or {})}
    return SearchConfig.from_dict(with_overrides(load_config(task), overrides))


def replay(config: SearchConfig, table: Table, folder: Path) -> Trace:
    """Run the unchanged search against ``table`` in a throwaway database; read its trainings in order."""
    return held_best(replayed(config, table, folder), config.fitness_seeds)


def replayed(config: SearchConfig, table: Table, folder: Path) -> list[Evaluation]:
    """The search trainings, in order, of the unchanged search run against ``table`` in a throwaway database."""
    with RunStore(folder / "afos.db", meta={MetaKey.KIND: "search", MetaKey.CONFIG: config.to_dict()}) as store:
        search = Search(config, store, Evaluator(store, ReplayExecutor(table)))
        search.run()
        return [r for r in store.evaluations() if r.phase is Phase.SEARCH]


def held_best(records: list[Evaluation], fitness_seeds: int) -> Trace:
    """The functions a search trained, in order, and the one it held as best by fitness after each training:
    mean validation accuracy over the fitness seeds, a failed run counting 0 (real searches are read by the
    same rule, ``real_vs_replay.py``)."""
    trained: list[str] = []
    held: list[str | None] = []
    scores: dict[str, list[float]] = {}
    best: tuple[float, str] | None = None
    for record in records:
        key = record.key.activation_key
        trained.append(key)
        scores.setdefault(key, []).append((record.val_accuracy or 0.0) if record.status is Status.OK else 0.0)
        if len(scores[key]) == fitness_seeds:
            fitness = statistics.mean(scores[key])
            if best is None or fitness > best[0]:
                best = (fitness, key)
        held.append(best[1] if best else None)
    return Trace(trained, held)


# ---------------------------------------------------------------------------------------- the numbers
def quality(table: Table, task: str) -> dict[str, float]:
    """Each function of the space's mean test accuracy over the table's replicates (a failed run counts 0);
    the baselines the table holds beside the space (GELU, SELU) are left out: no search can propose them."""
    space = {f.key for f in table.functions[: int(table.space["trained"])]}
    return {key: statistics.mean(o.values[3] if o.status is Status.OK and o.values[3] is not None else 0.0
                                 for o in runs) for key, runs in table.outcomes[task].items() if key in space}


def a12(first: list[float], second: list[float]) -> float:
    """Vargha-Delaney A12: the probability that a draw of ``first`` beats one of ``second`` (ties half)."""
    wins = sum((a > b) + 0.5 * (a == b) for a in first for b in second)
    return wins / (len(first) * len(second))


def km_median(times: list[float], found: list[bool]) -> float:
    """Kaplan-Meier median of trainings to the top 1 % (inf when fewer than half are ever found)."""
    if not any(found):
        return math.inf
    data = CensoredData(uncensored=[t for t, f in zip(times, found) if f],
                        right=[t for t, f in zip(times, found) if not f])
    curve = ecdf(data).sf
    below = np.nonzero(curve.probabilities <= 0.5)[0]
    return float(curve.quantiles[below[0]]) if below.size else math.inf


def random_unique(values: dict[str, float], fitness: dict[str, float], top: set[str], candidates: int,
                  ) -> tuple[float, float]:
    """Exact (median held quality, P(top 1 % trained)) of ``candidates`` distinct functions drawn uniformly,
    the held one the best by ``fitness`` (from the order statistics: the j-th fittest of N is held with
    probability C(N - j, c - 1) / C(N, c))."""
    ranked = sorted(fitness, key=fitness.__getitem__, reverse=True)
    n, c = len(ranked), min(candidates, len(ranked))

    def log_choose(a: int, b: int) -> float:
        return gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1) if 0 <= b <= a else -math.inf

    weights = [math.exp(log_choose(n - j, c - 1) - log_choose(n, c)) for j in range(1, n + 1)]
    order = sorted(range(n), key=lambda j: values[ranked[j]])
    cumulative, median = 0.0, values[ranked[order[-1]]]
    for j in order:
        cumulative += weights[j]
        if cumulative >= 0.5:
            median = values[ranked[j]]
            break
    missing = n - len(top)
    p_top = 1 - math.exp(log_choose(missing, c) - log_choose(n, c))
    return median, p_top


# ------------------------------------------------------------------------------------------- the run
def run_all(args: argparse.Namespace, table: Table) -> dict[tuple[str, str, int], Trace]:
    def search(task: str, strategy: str, seed: int, folder: Path) -> dict[str, Any]:
        trace = replay(search_config(task, strategy, seed, max(args.budgets), args.settings), table, folder)
        return {"trained": trace.trained, "held": trace.held}

    rows = run_searches(args, search)
    return {key: Trace(row["trained"], row["held"]) for key, row in rows.items()}


#: One replayed search, in a throwaway folder: (task, strategy, seed, folder) -> its trace as JSON values.
SearchOnce = Callable[[str, str, int, Path], dict[str, Any]]


def run_searches(args: argparse.Namespace, search: SearchOnce) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Every (task, strategy, seed) of ``args`` searched once by ``search``: each trace is appended to
    ``<root>/traces.jsonl`` as it finishes, and the ones already there are read back instead, so the command
    resumes after a kill."""
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    done_path = root / "traces.jsonl"
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    if done_path.is_file():
        for line in done_path.read_text().splitlines():
            row = json.loads(line)
            rows[(row["task"], row["strategy"], row["seed"])] = row
    start = time.monotonic()
    memory = "/dev/shm" if Path("/dev/shm").is_dir() else None  # the throwaway databases need no disk
    with done_path.open("a") as out, tempfile.TemporaryDirectory(dir=memory) as scratch:
        for task in args.tasks:
            for strategy in args.strategies:
                for seed in range(args.seeds):
                    if (task, strategy, seed) in rows:
                        continue
                    folder = Path(scratch) / f"{Path(task).stem}-{strategy}-{seed}"
                    folder.mkdir()
                    row = {"task": task, "strategy": strategy, "seed": seed, **search(task, strategy, seed, folder)}
                    rows[(task, strategy, seed)] = row
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                print(f"{task} {strategy}: {args.seeds} searches, {time.monotonic() - start:.0f} s so far",
                      file=sys.stderr)
    return rows


def table_task(table: Table, task: str) -> str:
    """The table's task that the shipped config ``task`` trains."""
    try:
        return table.task_of(task_configs(SearchConfig.from_dict(load_config(task)))[0]).name
    except ConfigError as error:
        raise SystemExit(f"config {task!r}: {error}") from None


def summarise(args: argparse.Namespace, table: Table, traces: dict[tuple[str, str, int], Trace]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for task in args.tasks:
        name = table_task(table, task)
        values = quality(table, name)
        cut = float(np.quantile(list(values.values()), 1 - TOP))
        top = {key for key, value in values.items() if value >= cut}
        rows, tests = [], []
        per_strategy: dict[str, dict[str, Any]] = {}
        for strategy in args.strategies:
            runs = [traces[(task, strategy, seed)] for seed in range(args.seeds)]
            first = [next((i + 1 for i, k in enumerate(t.trained) if k in top), None) for t in runs]
            per_strategy[strategy] = {"first": first, "runs": runs}
            for n in args.budgets:
                held = [values.get(t.held[min(n, len(t.held)) - 1] or "", 0.0) if t.held else 0.0 for t in runs]
                found = [f is not None and f <= n for f in first]
                rows.append({"strategy": strategy, "budget": n, "median_quality": statistics.median(held),
                             "share_top": sum(found) / len(found)})
                per_strategy[strategy][n] = held
            times = [float(f) if f is not None else float(len(t.trained)) for f, t in zip(first, runs)]
            per_strategy[strategy]["km"] = km_median(times, [f is not None for f in first])
        config = search_config(task, "random", 0, max(args.budgets), args.settings)
        replicate_fitness = statistics.mean  # the search's fitness: mean validation accuracy at its fitness seeds
        fitness = {key: replicate_fitness(o.values[0] or 0.0 if o.status is Status.OK else 0.0
                                          for o in runs[: config.fitness_seeds])
                   for key, runs in table.outcomes[name].items() if key in values}
        for n in args.budgets:
            median, p_top = random_unique(values, fitness, top, n // config.fitness_seeds)
            rows.append({"strategy": "random-unique (exact)", "budget": n, "median_quality": median, "share_top": p_top})
        for strategy in args.strategies:
            if strategy == "random":
                continue
            for n in args.budgets:
                mine, theirs = per_strategy[strategy][n], per_strategy["random"][n]
                p = mannwhitneyu(mine, theirs, alternative="greater").pvalue
                tests.append({"test": f"{strategy} > random, held quality at {n}", "p": p, "a12": a12(mine, theirs)})
            mine = [float(f) if f else math.inf for f in per_strategy[strategy]["first"]]
            theirs = [float(f) if f else math.inf for f in per_strategy["random"]["first"]]
            p = mannwhitneyu(mine, theirs, alternative="less").pvalue
            tests.append({"test": f"{strategy} < random, trainings to the top 1 %", "p": p, "a12": a12(theirs, mine)})
        for test, adjusted in zip(tests, holm([t["p"] for t in tests])):
            test["p_holm"] = float(adjusted)
        summary[task] = {"table_task": name, "functions": len(values), "top_cut": cut, "top": len(top), "rows": rows,
                         "km_median": {s: per_strategy[s]["km"] for s in args.strategies}, "tests": tests}
    return summary


def curves(table: Table, task: str, runs: list[Trace], budget: int) -> tuple[list[float], list[float]]:
    """Per training count 1..budget: the share of searches that trained a top-1 % function, and the median
    quality of the function held."""
    values = quality(table, task)
    cut = float(np.quantile(list(values.values()), 1 - TOP))
    first = [next((i + 1 for i, k in enumerate(t.trained) if values.get(k, 0.0) >= cut), math.inf) for t in runs]
    share = [sum(f <= n for f in first) / len(first) for n in range(1, budget + 1)]

    def held_at(trace: Trace, n: int) -> float:
        key = trace.held[min(n, len(trace.held)) - 1] if trace.held else None
        return math.nan if key is None else values.get(key, 0.0)

    held = [float(np.nanmedian([held_at(t, n) for t in runs])) if any(t.held[: n] and t.held[min(n, len(t.held)) - 1]
                                                                   for t in runs) else math.nan
            for n in range(1, budget + 1)]
    return share, held


def exact_share(table: Table, task: str, fitness_seeds: int, budget: int) -> list[float]:
    """random-unique's exact chance of having trained a top-1 % function, per training count 1..budget."""
    values = quality(table, task)
    cut = float(np.quantile(list(values.values()), 1 - TOP))
    top = {key for key, value in values.items() if value >= cut}
    return [random_unique(values, values, top, n // fitness_seeds)[1] for n in range(1, budget + 1)]


def plot(args: argparse.Namespace, table: Table, traces: dict[tuple[str, str, int], Trace], path: Path) -> None:
    """Two panels per task: the share of searches that found a top-1 % function, and the median held quality,
    against trainings; random-unique's exact share beside them."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 - only the picture needs it

    budget = max(args.budgets)
    figure, axes = plt.subplots(2, len(args.tasks), figsize=(4.2 * len(args.tasks), 6.4), squeeze=False)
    for column, task in enumerate(args.tasks):
        name = table_task(table, task)
        for strategy in args.strategies:
            share, held = curves(table, name, [traces[(task, strategy, s)] for s in range(args.seeds)], budget)
            axes[0][column].plot(range(1, budget + 1), share, label=strategy)
            axes[1][column].plot(range(1, budget + 1), held, label=strategy)
        config = search_config(task, "random", 0, max(args.budgets), args.settings)
        exact = exact_share(table, name, config.fitness_seeds, budget)
        axes[0][column].plot(range(1, budget + 1), exact, "k--", linewidth=1, label="random-unique (exact)")
        axes[0][column].set_title(f"{Path(task).stem} ({args.seeds} seeds each)", fontsize=10)
        axes[0][column].set_ylabel("share that trained a top-1 % function")
        axes[1][column].set_ylabel("median test accuracy of the held best")
        axes[1][column].set_xlabel("trainings")
        ticks = [t for t in (1, 3, 10, 30, 100, 300, 1000) if t <= budget]
        for axis in axes[:, column]:
            axis.set_xscale("log")
            axis.set_xticks(ticks, [str(t) for t in ticks])
            axis.minorticks_off()
            axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def print_summary(summary: dict[str, Any]) -> None:
    for task, result in summary.items():
        print(f"\n{task} ({result['functions']} functions; top 1 %: {result['top']} with test accuracy >= "
              f"{result['top_cut']:.4f})")
        print(f"{'strategy':24s} {'budget':>6s} {'median held':>12s} {'share top 1%':>13s}")
        for row in result["rows"]:
            print(f"{row['strategy']:24s} {row['budget']:6d} {row['median_quality']:12.4f} {row['share_top']:13.2%}")
        print("trainings to the top 1 % (Kaplan-Meier median): "
              + ", ".join(f"{s} {v:g}" for s, v in result["km_median"].items()))
        for test in result["tests"]:
            print(f"  {test['test']:50s} p = {test['p']:.3g}  p_holm = {test['p_holm']:.3g}  A12 = {test['a12']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    parser.add_argument("--tasks", nargs="+", default=["hard-checkerboard", "hard-rings", "hard-deep"])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 30, 100, 300])
    parser.add_argument("--root", default="results/replay-efficiency")
    parser.add_argument("--set", dest="settings", nargs="+", default=[], metavar="KEY=VALUE",
                        help="search settings for every strategy (population=8 pool=8); use a --root of their own")
    args = parser.parse_args()
    args.settings = {key: json.loads(value) for key, value in (item.split("=", 1) for item in args.settings)}
    if "random" not in args.strategies:
        parser.error("random must be among --strategies: every claim is measured against it")
    table = read_table(args.table)
    traces = run_all(args, table)
    summary = summarise(args, table, traces)
    print_summary(summary)
    (Path(args.root) / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    plot(args, table, traces, Path(args.root) / "replay_efficiency.png")


if __name__ == "__main__":
    main()
