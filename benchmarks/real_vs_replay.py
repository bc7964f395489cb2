"""Does the replay's verdict hold when the search trains for real? (issue 35, item 6: "the table does not mislead")

Why: benchmarks/replay_efficiency.py compares strategies by replaying the unchanged search against afos's
own table (benchmarks/tables/afos-h2-v2.json.gz), hundreds of seeds in minutes. A replay answers every
training from the table's three stored replicates, so its verdict is only as good as the table's stand-in
for training. This script runs the *same* search config (``replay_efficiency.search_config``: no seed
expressions, no baselines, no confirmation, ``max_evals`` = the budget) with the serial executor training
every candidate for real, for the default strategy (ga+knn) and random at the same seeds and budget, and
replays those very configs against the table beside them, so the two directions can be read side by side.

    python benchmarks/real_vs_replay.py [--task hard-deep] [--seeds 20] [--budget 100]
        [--out results/real-vs-replay] [--table benchmarks/tables/afos-h2-v2.json.gz]

Per search: the function held as best by fitness after the last training (``replay()``'s rule: the best
mean validation accuracy over the fitness seeds among fully scored candidates), scored (a) by its table
quality, the mean test accuracy over the table's replicates (``replay_efficiency.quality``, the replay's
yardstick) and (b), for real searches, by the mean test accuracy of its own real trainings (a failed run
counts 0). Then the share of searches that trained a table top-1 % function and the trainings until the
first. Tests, per mode (real, replay): one-sided Mann-Whitney of ga+knn above random on the held quality
(and below on the trainings to the top 1 %), with Vargha-Delaney A12. Also counted: how many real
trainings reproduced the table's stored validation accuracy, and how many real searches trained exactly the
replay's sequence of functions.

One JSON line per finished search is appended to ``<out>/runs.jsonl`` (real and replayed), so the command
resumes after a kill (a search cut short is restarted from scratch); ``<out>/summary.json`` at the end.
Each real search's database stays under ``<out>/db/``. Run with OMP_NUM_THREADS=1 on a shared CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from replay_efficiency import DEFAULT_TABLE, TOP, a12, held_best, quality, replay, search_config, table_task
from scipy.stats import mannwhitneyu

from afos.evaluation import Evaluator
from afos.execution.factory import make_executor
from afos.execution.replay import Table, read_table
from afos.records.evaluation import Phase, Status
from afos.records.runs import MetaKey
from afos.search.config import SearchConfig, task_configs
from afos.search.loop import Search
from afos.storage.store import RunStore

STRATEGIES = ("random", "ga+knn")  # random, and the default strategy


def real_search(config: SearchConfig, table: Table, folder: Path) -> dict[str, Any]:
    """Run ``config`` training for real (serial executor, one worker) into ``folder``; what it trained and held,
    the held function's real test accuracy, and how many trainings reproduced the table's validation accuracy."""
    if folder.exists():
        shutil.rmtree(folder)  # a search cut short by a kill is started again
    folder.mkdir(parents=True)
    start = time.monotonic()
    with RunStore(folder / "afos.db", meta={MetaKey.KIND: "search", MetaKey.CONFIG: config.to_dict()}) as store, \
            make_executor("serial") as executor:
        Search(config, store, Evaluator(store, executor)).run()
        records = [r for r in store.evaluations() if r.phase is Phase.SEARCH]
    seconds = time.monotonic() - start
    trace = held_best(records, config.fitness_seeds)
    trained, held = trace.trained, trace.held
    final = held[-1] if held else None
    tests = [r.test_accuracy if r.status is Status.OK and r.test_accuracy is not None else 0.0
             for r in records if r.key.activation_key == final]
    task = table.task_of(task_configs(config)[0])
    same = 0
    for record in records:
        runs = table.outcomes[task.name].get(record.key.activation_key)
        if runs is None:
            continue
        stored = runs[task.replicate(record.key.seed)]
        real = record.val_accuracy if record.status is Status.OK else None
        want = stored.values[0] if stored.status is Status.OK else None
        same += (real is None and want is None) or (real is not None and want is not None and abs(real - want) < 1e-9)
    return {"trained": trained, "held": held, "held_real_test": statistics.mean(tests) if tests else None,
            "reproduced": same, "trainings": len(records), "seconds": seconds}


def run_all(args: argparse.Namespace, table: Table) -> dict[tuple[str, str, int], dict[str, Any]]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "runs.jsonl"
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["task"] == args.task and row["budget"] == args.budget:
                rows[(row["mode"], row["strategy"], row["seed"])] = row
    start = time.monotonic()
    with path.open("a") as log, tempfile.TemporaryDirectory() as scratch:
        for seed in range(args.seeds):  # seeds outermost: a run cut short still holds both strategies per seed
            for strategy in STRATEGIES:
                config = search_config(args.task, strategy, seed, args.budget)
                for mode in ("replay", "real"):
                    if (mode, strategy, seed) in rows:
                        continue
                    if mode == "replay":
                        folder = Path(scratch) / f"{strategy}-{seed}"
                        folder.mkdir()
                        trace = replay(config, table, folder)
                        result: dict[str, Any] = {"trained": trace.trained, "held": trace.held}
                    else:
                        folder = out / "db" / f"{Path(args.task).stem}-{strategy}-b{args.budget}-s{seed}"
                        result = real_search(config, table, folder)
                    row = {"task": args.task, "budget": args.budget, "mode": mode, "strategy": strategy,
                           "seed": seed, **result}
                    rows[(mode, strategy, seed)] = row
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    if mode == "real":
                        print(f"seed {seed} {strategy}: {result['trainings']} trainings in {result['seconds']:.0f} s "
                              f"({time.monotonic() - start:.0f} s so far)", file=sys.stderr)
    return rows


def summarise(args: argparse.Namespace, table: Table, rows: dict[tuple[str, str, int], dict[str, Any]],
              ) -> dict[str, Any]:
    name = table_task(table, args.task)
    values = quality(table, name)
    cut = float(np.quantile(list(values.values()), 1 - TOP))
    top = {key for key, value in values.items() if value >= cut}
    seeds = range(args.seeds)
    summary: dict[str, Any] = {"task": args.task, "table_task": name, "seeds": args.seeds, "budget": args.budget,
                               "top_cut": cut, "top": len(top), "modes": {}}
    for mode in ("real", "replay"):
        per: dict[str, dict[str, Any]] = {}
        for strategy in STRATEGIES:
            runs = [rows[(mode, strategy, seed)] for seed in seeds]
            held = [r["held"][-1] if r["held"] else None for r in runs]
            missing = sorted({k for k in held if k is not None and k not in values})
            held_quality = [values.get(k or "", 0.0) for k in held]
            first = [next((i + 1 for i, k in enumerate(r["trained"]) if k in top), math.inf) for r in runs]
            entry: dict[str, Any] = {
                "held": held, "held_quality": held_quality, "median_held_quality": statistics.median(held_quality),
                "held_in_top": sum(k in top for k in held) / len(held),
                "share_found_top": sum(f <= args.budget for f in first) / len(first),
                "first_top": [f if math.isfinite(f) else None for f in first],
                "missing_from_table": missing}
            if mode == "real":
                real_tests = [r["held_real_test"] if r["held_real_test"] is not None else 0.0 for r in runs]
                entry.update({"held_real_test": real_tests, "median_held_real_test": statistics.median(real_tests),
                              "trainings": sum(r["trainings"] for r in runs),
                              "reproduced_trainings": sum(r["reproduced"] for r in runs),
                              "seconds": sum(r["seconds"] for r in runs)})
                replayed = [rows[("replay", strategy, seed)] for seed in seeds]
                entry["same_sequence_as_replay"] = sum(r["trained"] == p["trained"] for r, p in zip(runs, replayed))
            per[strategy] = entry
        mine, theirs = per["ga+knn"], per["random"]
        tests = {"held_quality": {"p": mannwhitneyu(mine["held_quality"], theirs["held_quality"],
                                                    alternative="greater").pvalue,
                                  "a12": a12(mine["held_quality"], theirs["held_quality"])}}
        first_mine = [f if f is not None else math.inf for f in mine["first_top"]]
        first_theirs = [f if f is not None else math.inf for f in theirs["first_top"]]
        tests["trainings_to_top"] = {"p": mannwhitneyu(first_mine, first_theirs, alternative="less").pvalue,
                                     "a12": a12(first_theirs, first_mine)}  # > 0.5: ga+knn gets there sooner
        if mode == "real":
            tests["held_real_test"] = {"p": mannwhitneyu(mine["held_real_test"], theirs["held_real_test"],
                                                         alternative="greater").pvalue,
                                       "a12": a12(mine["held_real_test"], theirs["held_real_test"])}
        summary["modes"][mode] = {"strategies": per, "tests": {k: {n: float(v) for n, v in t.items()}
                                                               for k, t in tests.items()}}
    real, rep = summary["modes"]["real"]["tests"], summary["modes"]["replay"]["tests"]
    summary["directions_agree"] = {test: (real[test]["a12"] - 0.5) * (rep[test]["a12"] - 0.5) > 0
                                   or real[test]["a12"] == rep[test]["a12"] == 0.5 for test in rep}
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    print(f"\n{summary['task']}: {summary['seeds']} seeds per strategy, budget {summary['budget']} trainings; "
          f"table top 1 %: {summary['top']} functions with test accuracy >= {summary['top_cut']:.4f}")
    print(f"{'mode':7s} {'strategy':8s} {'median held q.':>15s} {'held in top':>12s} {'found top':>10s} "
          f"{'median real test':>17s}")
    for mode, result in summary["modes"].items():
        for strategy, entry in result["strategies"].items():
            real = f"{entry['median_held_real_test']:.4f}" if "median_held_real_test" in entry else "-"
            print(f"{mode:7s} {strategy:8s} {entry['median_held_quality']:15.4f} {entry['held_in_top']:12.0%} "
                  f"{entry['share_found_top']:10.0%} {real:>17s}")
    print("ga+knn against random (one-sided Mann-Whitney p, A12):")
    for test in summary["modes"]["real"]["tests"]:
        line = f"  {test:18s}"
        for mode, result in summary["modes"].items():
            if test in result["tests"]:
                t = result["tests"][test]
                line += f"  {mode}: p = {t['p']:.3g}, A12 = {t['a12']:.2f}"
        print(line)
    print("directions agree: " + ", ".join(f"{k} {v}" for k, v in summary["directions_agree"].items()))
    for strategy, entry in summary["modes"]["real"]["strategies"].items():
        print(f"real {strategy}: {entry['trainings']} trainings in {entry['seconds']:.0f} s, "
              f"{entry['reproduced_trainings']} reproduced the table's validation accuracy, "
              f"{entry['same_sequence_as_replay']}/{summary['seeds']} searches trained the replay's sequence; "
              f"held functions missing from the table: {entry['missing_from_table'] or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="hard-deep", help="a shipped config the table holds (default hard-deep)")
    parser.add_argument("--seeds", type=int, default=20, help="search seeds 0..N-1 per strategy (default 20)")
    parser.add_argument("--budget", type=int, default=100, help="trainings per search (default 100)")
    parser.add_argument("--out", default="results/real-vs-replay", help="runs.jsonl, summary.json and the databases")
    parser.add_argument("--table", default=str(DEFAULT_TABLE))
    args = parser.parse_args()
    table = read_table(args.table)
    rows = run_all(args, table)
    summary = summarise(args, table, rows)
    print_summary(summary)
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
