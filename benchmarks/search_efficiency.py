"""What the genetic search buys over random sampling at an equal training budget (anytime curves).

Why: the search is worth its machinery only if, after as many trainings, the function it holds beats what
random sampling from the same tree generator holds. Fitness is a noisy, selected validation number, so each
search's current best by fitness after n trainings is scored on fresh seeds no search used (mean test
accuracy), for random, ga, ga+knn and ga+forest over many search seeds, each search stopped by ``max_evals``
after exactly the same number of trainings.

    python benchmarks/search_efficiency.py [--tasks digits spirals fashion-mnist] [--seeds 20] [--second-seeds 10]
        [--fresh-seeds 5] [--root results/bench-efficiency] [--data-dir DIR] [--quick]

Everything runs serially under ONE results root, so a training one run did is copied by the others (afos's
sibling reuse), and the same command after a kill resumes (finished searches are skipped, afos resumes an
interrupted one). All numbers but the timings are deterministic given the options. Output: a table per task,
``search_efficiency[-quick].png`` and ``.json`` in the root. afos records no surrogate time, so it is measured
here by wrapping ``Surrogate.predict`` (fit, predict, feature vectors) and ``Proposer.offspring`` (proposing).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import math
import os
import statistics
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import mannwhitneyu

import afos
from afos.activation.spec import resolve_activation
from afos.config import load_config, with_overrides
from afos.errors import UserError
from afos.records.evaluation import Evaluation, Origin, Phase
from afos.records.runs import MetaKey
from afos.search.config import SearchConfig, budgets, fitness_seeds, score, task_protocols
from afos.search.proposals import Proposer
from afos.search.surrogate import Surrogate
from afos.storage.store import RunStore

STRATEGIES: dict[str, dict[str, str]] = {
    "random": {"strategy": "random", "surrogate": "none"},
    "ga": {"strategy": "ga", "surrogate": "none"},
    "ga+knn": {"strategy": "ga", "surrogate": "knn"},
    "ga+forest": {"strategy": "ga", "surrogate": "forest"},
}
#: One-sided Mann-Whitney tests of final quality: (better?, than).
TESTS = (("ga", "random"), ("ga+knn", "ga"), ("ga+forest", "ga"))
#: First fresh seed; far above any search seed + fitness seeds, so no search trained on these.
FRESH_SEED = 1_000_000
#: Generations allowed beyond the config's: the budget (max_evals) ends every search, not the generation count,
#: so a strategy that meets many duplicates still spends exactly the budget.
SPARE_GENERATIONS = 3
#: --quick: 8 functions known after generation 0 (the surrogates' minimum), so they rank from the next one on.
QUICK_SEARCH = {"population": 8, "generations": 3, "fitness_seeds": 1}
DONE = ("finished", "budget")


@dataclass(frozen=True)
class Task:
    """A shipped config, the search and [train] keys changed, and whether it reads files from --data-dir."""

    config: str
    search: dict[str, Any]
    train: dict[str, Any]
    needs_data: bool = False


TASKS = {
    "digits": Task("quick", {}, {}),  # the quick search: cheap, functions differ little
    # the default search's task, where functions differ a lot (a linear net 0.43, ReLU 0.68, GELU 0.78); a
    # smaller search than the default keeps ten seeds of four strategies under an hour on 2 cores
    "spirals": Task("spirals", {"population": 12, "generations": 6}, {}),
    # LeNet-5 after ~40 steps: functions differ more; a smaller search keeps it ~1.5 s a training on 2 cores
    "fashion-mnist": Task("fashion-mnist", {"population": 12, "generations": 6, "fitness_seeds": 2},
                          {"epochs": 0.1}, needs_data=True),
}


@dataclass(frozen=True)
class Plan:
    """What the options ask for: searches per task (seeds), fresh seeds per function, the one results root."""

    root: Path
    tasks: list[str]
    seeds: dict[str, int]
    fresh_seeds: int
    quick: bool
    data_dir: str | None


@dataclass(frozen=True)
class Trace:
    """One finished search read back: its current best function (activation key) after each training, in the
    search's own deterministic order, the canonical text of every candidate, and its cost."""

    best: list[str | None]
    texts: dict[str, str]
    trained: int
    reused: int
    train_seconds: float


# ------------------------------------------------------------------------------------------ the searches


def search_config(plan: Plan, task: str, strategy: str, seed: int) -> SearchConfig:
    """The search of one (task, strategy, seed): the task's config without confirmation or extra baselines
    (they would spend trainings outside the compared budget), capped at the config's planned trainings."""
    spec = TASKS[task]
    train = {**spec.train, "data_dir": plan.data_dir if spec.needs_data else None}
    overrides = {**spec.search, **(QUICK_SEARCH if plan.quick else {}), **STRATEGIES[strategy], "seed": seed,
                 "confirm": False, "baseline": [], **{f"train.{k}": v for k, v in train.items()}}
    config = SearchConfig.from_dict(with_overrides(load_config(spec.config), overrides))
    candidates = config.population + (config.generations - 1) * (config.population - config.elites)
    budget = candidates * len(config.task_list()) * config.fitness_seeds  # every candidate, task and fitness seed
    return replace(config, generations=config.generations * SPARE_GENERATIONS, max_evals=budget).validate()


def run_name(task: str, strategy: str, config: SearchConfig) -> str:
    """Folder name; a hash of the config (data folder aside) and of its protocols (afos and torch versions) keeps
    quick and full runs, changed settings and another afos apart."""
    values = {**config.to_dict(), "protocols": task_protocols(config)}
    values["train"].pop("data_dir", None)
    digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{task}-{strategy.replace('+', '_')}-s{config.seed:03d}-{digest}"


def status(run_dir: Path) -> str | None:
    if not (run_dir / "afos.db").is_file():
        return None
    with RunStore(run_dir / "afos.db", readonly=True) as store:
        return store.get_meta(MetaKey.STATUS)  # running (killed), interrupted, failed: afos resumes it


@contextlib.contextmanager
def timed(owner: type, name: str, clock: dict[str, float], label: str) -> Iterator[None]:
    """Add the seconds spent in ``owner.name`` to ``clock[label]`` while the block runs: afos keeps no record of
    surrogate or proposal time, so the benchmark measures it around the methods that do the work."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            clock[label] = clock.get(label, 0.0) + time.perf_counter() - start

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def run_search(root: Path, name: str, config: SearchConfig) -> None:
    """Run (or resume) one search and add this invocation's wall, proposal and surrogate seconds to
    ``timings.json`` (kept even if the search is interrupted; a SIGKILL loses that invocation's time)."""
    clock: dict[str, float] = {}
    start = time.perf_counter()
    try:
        with timed(Surrogate, "predict", clock, "surrogate"), timed(Proposer, "offspring", clock, "proposals"):
            afos.run_search(config, out=root / name)
    finally:
        clock["wall"] = time.perf_counter() - start
        if (root / name / "afos.db").is_file():  # else refused before it started (a missing dataset)
            timings = read_json(root / "timings.json")
            timings.setdefault(name, []).append(clock)
            write_json(root / "timings.json", timings)


def run_searches(plan: Plan, task: str) -> dict[str, list[Path]]:
    """Every search of a task, seed-major (a partial run has every strategy at its first seeds). The first
    search of a seed trains the generation 0 that all strategies share and the others copy it, so the order
    of strategies rotates with the seed, sharing that advantage out in wall time (not in results)."""
    runs: dict[str, list[Path]] = {strategy: [] for strategy in STRATEGIES}
    names = list(STRATEGIES)
    for seed in range(plan.seeds[task]):
        for strategy in names[seed % len(names):] + names[: seed % len(names)]:
            config = search_config(plan, task, strategy, seed)
            name = run_name(task, strategy, config)
            runs[strategy].append(plan.root / name)
            if status(plan.root / name) in DONE:
                continue
            run_search(plan.root, name, config)
            trace = read_trace(plan.root / name, config)
            print(f"  {name}: {len(trace.best)} trainings ({trace.trained} trained, {trace.reused} copied), "
                  f"{sum(t['wall'] for t in read_json(plan.root / 'timings.json')[name]):.1f} s", flush=True)
    return runs


# ------------------------------------------------------------------------------------- reading searches


def read_trace(run_dir: Path, config: SearchConfig) -> Trace:
    """A search's records in its own request order (generation, candidate first proposed, task, seed): not the
    database's insertion order, where copied records precede trained ones within a batch and so would depend
    on which other searches ran first."""
    with RunStore(run_dir / "afos.db", readonly=True) as store:
        protocols: dict[str, str] = store.get_meta(MetaKey.PROTOCOLS) or {}
        candidates = store.candidates()
        records = [r for r in store.evaluations(phase=Phase.SEARCH)
                   if r.budget == budgets(config)[-1] and protocols.get(r.task) == r.protocol]
    order = {c.key: i for i, c in enumerate(candidates)}
    records.sort(key=lambda r: (-1 if r.generation is None else r.generation, order.get(r.activation_key, len(order)),
                                r.task, r.seed))
    wanted = {(task, seed) for task in protocols for seed in fitness_seeds(config)}
    return Trace(best_after_each(records, config, len(wanted)), {c.key: c.canonical for c in candidates},
                 sum(r.origin is not Origin.REUSED for r in records), sum(r.origin is Origin.REUSED for r in records),
                 sum(r.seconds for r in records))


def best_after_each(records: list[Evaluation], config: SearchConfig, runs: int) -> list[str | None]:
    """After each record, the key of the best function by fitness among those with all their ``runs`` records
    (ties to the smaller key, as afos's hall of fame ranks); None before the first complete one."""
    scores: dict[str, list[float]] = {}
    best: tuple[float, str] | None = None
    out: list[str | None] = []
    for record in records:
        scores.setdefault(record.activation_key, []).append(score(record, config.fitness))
        if len(scores[record.activation_key]) == runs:
            fitness = statistics.fmean(scores[record.activation_key])
            key = record.activation_key
            if best is None or fitness > best[0] or (fitness == best[0] and key < best[1]):
                best = (fitness, key)
        out.append(best[1] if best else None)
    return out


def fresh_quality(plan: Plan, task: str, texts: dict[str, str]) -> dict[str, float]:
    """Mean test accuracy over the fresh seeds of each function (activation key -> quality), trained once per
    function in one evaluate grid under the root (a failed run counts as 0: the search would hold a broken
    function); rerunning reads the grid's records back instead of training."""
    spec = TASKS[task]
    train = {**spec.train, **({"data_dir": plan.data_dir} if spec.needs_data and plan.data_dir else {})}
    ordered = sorted(texts.items())
    results = afos.evaluate(*(text for _, text in ordered), config=spec.config, seeds=plan.fresh_seeds,
                            seed=FRESH_SEED, out=plan.root / f"fresh-{task}", **train)
    case = results.cases[0]
    quality = {}
    for key, text in ordered:
        runs = results.runs.get((resolve_activation(text).key(), case), {})
        if len(runs) < plan.fresh_seeds:
            raise SystemExit(f"{task}: {text!r} has {len(runs)} fresh runs, not {plan.fresh_seeds}")
        quality[key] = statistics.fmean(r.test_accuracy if r.ok and r.test_accuracy is not None else 0.0
                                        for r in runs.values())
    return quality


# ------------------------------------------------------------------------------------------- analysis


def curve(trace: Trace, quality: dict[str, float], length: int) -> np.ndarray:
    """Quality after n = 1..length trainings; a search that stopped short keeps its last best."""
    values = [math.nan if key is None else quality[key] for key in trace.best[:length]]
    values += [values[-1] if values else math.nan] * (length - len(values))
    return np.array(values)


def plain(values: np.ndarray) -> list[float | None]:
    """JSON has no NaN: an undefined point (before the first complete function) is null."""
    return [None if math.isnan(v) else float(v) for v in values]


def time_of(timings: dict[str, list[dict[str, float]]], run: Path) -> dict[str, float]:
    parts = timings.get(run.name, [])
    return {label: sum(p.get(label, 0.0) for p in parts) for label in ("wall", "proposals", "surrogate")}


def analyse(curves: dict[str, np.ndarray], traces: dict[str, list[Trace]],
            times: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Per strategy: median/IQR curve, area, final quality, trainings to random's final median, cost; tests."""
    target = float(np.median(curves["random"][:, -1]))
    out: dict[str, Any] = {"random_final_median": target, "strategies": {}, "tests": {}}
    for strategy, matrix in curves.items():
        with warnings.catch_warnings():  # n before the first complete function is NaN for every search: null
            warnings.simplefilter("ignore", RuntimeWarning)
            median, low, high = (np.nanpercentile(matrix, q, axis=0) for q in (50, 25, 75))
        walls = [t["wall"] for t in times[strategy]]
        share = {label: statistics.median(t[label] / t["wall"] if t["wall"] else 0.0 for t in times[strategy])
                 for label in ("surrogate", "proposals")}
        out["strategies"][strategy] = {
            "median": plain(median), "q25": plain(low), "q75": plain(high), "final": plain(matrix[:, -1]),
            "auc": float(np.nanmean(median)), "auc_per_search_median": float(np.median(np.nanmean(matrix, axis=1))),
            "trainings_to_random_final": next((n + 1 for n, v in enumerate(median) if v >= target - 1e-12), None),
            "wall_s_median": statistics.median(walls), "wall_s_total": sum(walls),
            "surrogate_share_median": share["surrogate"], "proposal_share_median": share["proposals"],
            "trained": sum(t.trained for t in traces[strategy]), "copied": sum(t.reused for t in traces[strategy]),
            "train_seconds_median": statistics.median(t.train_seconds for t in traces[strategy]),
        }
    for better, than in TESTS:
        test = mannwhitneyu(curves[better][:, -1], curves[than][:, -1], alternative="greater")
        out["tests"][f"{better} > {than}"] = {"U": float(test.statistic), "p": float(test.pvalue)}
    return out


def run_task(plan: Plan, task: str) -> dict[str, Any]:
    """Searches, fresh-seed scoring and analysis of one task."""
    print(f"{task}: {plan.seeds[task]} seeds x {len(STRATEGIES)} strategies", flush=True)
    runs = run_searches(plan, task)
    configs = {s: [search_config(plan, task, s, seed) for seed in range(plan.seeds[task])] for s in STRATEGIES}
    traces = {s: [read_trace(run, c) for run, c in zip(runs[s], configs[s])] for s in STRATEGIES}
    needed = {key: trace.texts[key] for ts in traces.values() for trace in ts for key in trace.best if key}
    print(f"  scoring {len(needed)} distinct current-best functions on {plan.fresh_seeds} fresh seeds", flush=True)
    quality = fresh_quality(plan, task, needed)
    length = configs["random"][0].max_evals or 0
    curves = {s: np.stack([curve(t, quality, length) for t in traces[s]]) for s in STRATEGIES}
    timings = read_json(plan.root / "timings.json")
    times = {s: [time_of(timings, run) for run in runs[s]] for s in STRATEGIES}
    config = configs["random"][0]
    return {"task": config.task_list()[0], "seeds": plan.seeds[task], "budget": length,
            "fresh_seeds": list(range(FRESH_SEED, FRESH_SEED + plan.fresh_seeds)),
            "population": config.population, "fitness_seeds": config.fitness_seeds,
            "distinct_scored": len(needed), **analyse(curves, traces, times)}


# --------------------------------------------------------------------------------------------- output


def table(result: dict[str, Any]) -> str:
    """Medians over seeds. Wall time depends on what earlier searches left to copy; training seconds (every
    record's own training time, copied ones included) do not. Proposing and surrogate: shares of wall time."""
    lines = [f"\n{result['task']}: {result['seeds']} seeds per strategy, budget {result['budget']} trainings per search, "
             f"quality = mean test accuracy on {len(result['fresh_seeds'])} fresh seeds of the current best by fitness",
             "", "| strategy | final median [IQR] | AUC (mean of median curve) | trainings to random's final median "
             f"({result['random_final_median']:.4f}) | wall s/search | training s/search | proposing | surrogate "
             "| trained / copied |", "|---|---|---|---|---|---|---|---|---|"]
    for name, s in result["strategies"].items():
        final = np.array(s["final"])
        reach = s["trainings_to_random_final"]
        lines.append(f"| {name} | {np.median(final):.4f} [{np.percentile(final, 25):.4f}, {np.percentile(final, 75):.4f}] "
                     f"| {s['auc']:.4f} | {'never' if reach is None else reach} | {s['wall_s_median']:.1f} "
                     f"| {s['train_seconds_median']:.1f} "
                     f"| {s['proposal_share_median']:.1%} | {s['surrogate_share_median']:.1%} "
                     f"| {s['trained']} / {s['copied']} |")
    lines.append("")
    for name, test in result["tests"].items():
        lines.append(f"Mann-Whitney U, one-sided, final quality {name}: U = {test['U']:.1f}, p = {test['p']:.4f}")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Median and interquartile band of quality vs trainings, one panel per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6.5 * len(results), 4.5), squeeze=False)
    for ax, result in zip(axes[0], results):
        x = np.arange(1, result["budget"] + 1)
        for name, s in result["strategies"].items():
            median, low, high = (np.array(s[k], dtype=float) for k in ("median", "q25", "q75"))
            (line,) = ax.plot(x, median, drawstyle="steps-post", label=f"{name} (AUC {s['auc']:.4f})")
            ax.fill_between(x, low, high, step="post", color=line.get_color(), alpha=0.15, linewidth=0)
        ax.axhline(result["random_final_median"], color="grey", linestyle=":", linewidth=1,
                   label="random's final median")
        ax.set(title=f"{result['task']} ({result['seeds']} seeds)", xlabel="trainings",
               ylabel=f"test accuracy of current best ({len(result['fresh_seeds'])} fresh seeds)")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def write_json(path: Path, value: Any) -> None:
    """Written whole or not at all, so a kill never leaves a half file to resume from."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(value, indent=1, allow_nan=True))
    os.replace(partial, path)


def default_data_dir() -> str | None:
    """The shared real datasets the tests use, so the benchmark runs offline where they exist."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return os.environ.get("AFOS_TEST_DATA") or (str(shared) if (shared / "FashionMNIST").is_dir() else None)


def parse_args() -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=["digits", "spirals"],
                        help="default: digits spirals (fashion-mnist takes hours on 2 cores)")
    parser.add_argument("--seeds", type=int, help="searches per strategy on digits (default 20; --quick 2)")
    parser.add_argument("--second-seeds", type=int, help="searches per strategy on the other tasks (default 10; --quick 2)")
    parser.add_argument("--fresh-seeds", type=int, help="seeds scoring each current best (default 5; --quick 2)")
    parser.add_argument("--root", type=Path, default=Path("results/bench-efficiency"), help="the one results root")
    parser.add_argument("--data-dir", default=default_data_dir(), help="folder holding FashionMNIST/raw (default "
                        "$AFOS_TEST_DATA, else ../shared/data beside the checkout if it exists, else afos's own)")
    parser.add_argument("--quick", action="store_true", help="smoke setting: 2 seeds, population 8, 3 generations")
    args = parser.parse_args()

    def pick(value: int | None, full: int) -> int:
        return value if value is not None else (2 if args.quick else full)

    seeds = {task: pick(args.seeds, 20) if task == "digits" else pick(args.second_seeds, 10) for task in args.tasks}
    return Plan(args.root, args.tasks, seeds, pick(args.fresh_seeds, 5), args.quick, args.data_dir)


def main() -> None:
    plan = parse_args()
    plan.root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        results = [run_task(plan, task) for task in plan.tasks]
    except UserError as error:  # a missing dataset, a bad setting: afos's one-line message, not a traceback
        raise SystemExit(f"search_efficiency: {error}") from None
    for result in results:
        print(table(result))
    stem = plan.root / ("search_efficiency-quick" if plan.quick else "search_efficiency")
    plot(results, stem.with_suffix(".png"))
    write_json(stem.with_suffix(".json"), {"options": {**vars(plan), "root": str(plan.root)}, "tasks": results})
    print(f"\nwrote {stem}.png and {stem}.json; this invocation took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
