"""On a task trained for real: how much cheaper is the front's function that is as accurate as the winner?

Why: benchmarks/front_efficiency.py compares strategies on the front by replaying the table; this script
answers the practitioner's question on one live task. It runs two real searches from the same config, seed
and budget: the single-objective search (accuracy only, the default strategy) and NSGA-II over accuracy and
cost, each confirmed on the same fresh seeds. Then it names the cheapest member of NSGA-II's front whose
search fitness is within one seed-spread (the standard deviation over the fitness seeds) of the
single-objective winner's, with its cost in ReLUs and its cost over the winner's, and both functions'
confirmed test accuracy on the fresh seeds where the confirmation took them.

    python benchmarks/front_live.py [--task hard-deep] [--seed 0] [--budget 200] [--out results/front-live]

Run with OMP_NUM_THREADS=1 on a shared CPU; each search is an ordinary run folder under --out (resumable:
a finished one is read, not run again).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from afos.records.search import HallOfFameEntry
from afos.search.confirmation import Finalist
from afos.search.results import finalist_rows, hall_of_fame
from afos.space.cost import cost
from afos.storage.layout import run_database
from afos.storage.store import RunStore

SEARCHES = {"accuracy": [], "front": ["--strategy", "nsga2", "--objectives", "accuracy,cost"]}


def run(task: str, seed: int, budget: int, folder: Path, extra: list[str], confirm_seeds: int) -> None:
    """One real search to its end (confirmation included); a finished run folder is left as it is."""
    if (folder / "finalists.csv").is_file():
        return
    command = [sys.executable, "-m", "afos", "search", "--config", task, "--seed", str(seed), "--max-evals",
               str(budget), "--generations", "1000", "--confirm-seeds", str(confirm_seeds), "--quiet", *extra]
    command += ["--resume", str(folder)] if run_database(folder).is_file() else ["--out", str(folder)]
    subprocess.run(command, check=True)


def read(folder: Path) -> tuple[list[HallOfFameEntry], dict[str, Finalist]]:
    with RunStore(run_database(folder), readonly=True) as store:
        return hall_of_fame(store), {f.fingerprint: f for f in finalist_rows(store) or []}


def confirmed(finalists: dict[str, Finalist], key: str) -> dict[str, Any] | None:
    row = finalists.get(key)
    return None if row is None else {"val": row.val_mean, "test": row.test_mean, "test_std": row.test_std,
                                     "verdict": row.verdict.value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="hard-deep")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--confirm-seeds", type=int, default=5)
    parser.add_argument("--out", default="results/front-live")
    args = parser.parse_args()
    out = Path(args.out)
    for name, extra in SEARCHES.items():
        run(args.task, args.seed, args.budget, out / name, extra, args.confirm_seeds)
    single, single_confirmed = read(out / "accuracy")
    front, front_confirmed = read(out / "front")
    winner = next(e for e in single if e.ok)
    spread = winner.val_std or 0.0
    members = sorted((e for e in front if e.ok), key=lambda e: (e.fitness.cost or 0.0, -e.fitness.value))
    near = next((e for e in members if e.fitness.value >= winner.fitness.value - spread), None)
    winner_cost = cost(winner.canonical)
    summary = {
        "task": args.task, "seed": args.seed, "budget": args.budget,
        "winner": {"function": winner.canonical, "fitness": winner.fitness.value, "spread": spread,
                   "cost": winner_cost, "confirmed": confirmed(single_confirmed, winner.key)},
        "front": [{"function": e.canonical, "fitness": e.fitness.value, "cost": e.fitness.cost} for e in members],
        "cheapest_within_spread": None if near is None else {
            "function": near.canonical, "fitness": near.fitness.value, "cost": near.fitness.cost,
            "cost_over_winner": (near.fitness.cost or 0.0) / winner_cost if winner_cost else None,
            "confirmed": confirmed(front_confirmed, near.key)},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
