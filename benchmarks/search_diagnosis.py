"""Why a strategy does or does not beat random search: read the search-efficiency runs, train nothing.

benchmarks/search_efficiency.py says *whether* the GA beats random sampling; this says *why* from the same
run databases, on the questions issue 20 asks:

- **fitness noise**: over the functions a search trained on two fitness seeds, the rank correlation of one
  seed's validation accuracy with the other's, and of fitness with the same runs' test accuracy. If one
  seed says little about the next, selection mostly follows noise.
- **what each strategy proposes**: the fitness of the candidates it trains after generation 0 (median,
  and the share in the top 10 % of every function any search of the task trained), by how each was made
  (offspring of selected parents, random immigrant, random tree). Offspring no fitter than random trees
  mean the operators do not carry what made the parents good.
- **duplicates**: proposals made per candidate trained (a strategy that keeps re-proposing known functions
  spends its proposals, not its trainings, but shows how concentrated it has become).

    python benchmarks/search_diagnosis.py [--tasks digits spirals] [--seeds 20] [--second-seeds 10]
        [--root results/bench-efficiency]

It takes the options of search_efficiency.py (the same searches by the same names) and reads only the
searches that finished; run it after that script.
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_efficiency as bench  # noqa: E402 - the sibling script, for its plan, names and configs

from afos.records.evaluation import Phase  # noqa: E402
from afos.records.runs import MetaKey
from afos.search.config import SearchConfig, budgets, score  # noqa: E402
from afos.storage.store import RunStore  # noqa: E402


@dataclass(frozen=True)
class Trained:
    """One function a search trained at the full budget on every fitness seed."""

    made_by: str
    generation: int
    fitness: float
    seed_vals: tuple[float, ...]
    test: float


def trained_functions(run_dir: Path, config: SearchConfig) -> list[Trained]:
    """The functions of one search with all their fitness-seed runs, in the search's own records."""
    with RunStore(run_dir / "afos.db", readonly=True) as store:
        protocols = store.get_meta(MetaKey.PROTOCOLS) or {}
        made = {c.key: (c.lineage.made_by.value if c.lineage else "?", c.generation) for c in store.candidates()}
        records = [r for r in store.evaluations(phase=Phase.SEARCH)
                   if r.budget == budgets(config)[-1] and protocols.get(r.task) == r.protocol]
    runs: dict[str, list] = defaultdict(list)
    for record in records:
        runs[record.activation_key].append(record)
    out = []
    for key, group in runs.items():
        if len(group) < config.fitness_seeds or key not in made:
            continue
        group.sort(key=lambda r: r.seed)
        tests = [r.test_accuracy if r.ok and r.test_accuracy is not None else 0.0 for r in group]
        vals = tuple(r.val_accuracy if r.ok and r.val_accuracy is not None else 0.0 for r in group)
        out.append(Trained(made[key][0], made[key][1], statistics.fmean(score(r, config.fitness) for r in group),
                           vals, statistics.fmean(tests)))
    return out


def proposals_per_trained(run_dir: Path) -> float:
    with RunStore(run_dir / "afos.db", readonly=True) as store:
        counts = [g.stats.counts for g in store.generations()[1:]]
    trained = sum(c.trained + c.reused for c in counts)
    return sum(c.proposed for c in counts) / trained if trained else float("nan")


def correlation(pairs: list[tuple[float, float]]) -> float:
    if len(pairs) < 3:
        return float("nan")
    a, b = zip(*pairs)
    return float(spearmanr(a, b).statistic)


def diagnose(plan: bench.Plan, task: str) -> str:
    """The table of one task: a row per strategy, medians over its finished searches."""
    found: dict[str, list[tuple[Path, list[Trained]]]] = defaultdict(list)
    for strategy in bench.STRATEGIES:
        for seed in range(plan.seeds[task]):
            config = bench.search_config(plan, task, strategy, seed)
            run_dir = plan.root / bench.run_name(task, strategy, config)
            if bench.status(run_dir) in bench.DONE:
                found[strategy].append((run_dir, trained_functions(run_dir, config)))
    every = [t.fitness for runs in found.values() for _, functions in runs for t in functions]
    if not every:
        return f"{task}: no finished searches under {plan.root}"
    top = float(np.percentile(every, 90))
    lines = [f"\n{task}: top 10 % of trained functions have fitness >= {top:.4f}", "",
             "| strategy | searches | seed-to-seed rank corr. | fitness-to-test rank corr. | after gen 0: median "
             "fitness | share in top 10 % | by origin: n, median fitness, top-10 % share | proposals per trained |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    for strategy, runs in found.items():
        later = [t for _, functions in runs for t in functions if t.generation > 0]
        seeds = statistics.median(correlation([t.seed_vals[:2] for t in f if len(t.seed_vals) > 1]) for _, f in runs)
        tests = statistics.median(correlation([(t.fitness, t.test) for t in f]) for _, f in runs)
        origins = []
        for origin in sorted({t.made_by for t in later}):
            group = [t.fitness for t in later if t.made_by == origin]
            origins.append(f"{origin} {len(group)}, {statistics.median(group):.4f}, "
                           f"{sum(v >= top for v in group) / len(group):.0%}")
        share = sum(t.fitness >= top for t in later) / len(later) if later else float("nan")
        median = statistics.median(t.fitness for t in later) if later else float("nan")
        per_trained = statistics.median(proposals_per_trained(run_dir) for run_dir, _ in runs)
        lines.append(f"| {strategy} | {len(runs)} | {seeds:.2f} | {tests:.2f} | {median:.4f} | {share:.0%} "
                     f"| {'; '.join(origins)} | {per_trained:.1f} |")
    return "\n".join(lines)


def main() -> None:
    plan = bench.parse_args()
    for task in plan.tasks:
        print(diagnose(plan, task))


if __name__ == "__main__":
    main()
