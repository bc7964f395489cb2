"""Reports of a search run, rebuilt at any time from its database alone.

The database is the system of record; every file written here (CSV, Markdown, PNG) is derived from it,
so ``afos report RUN_DIR`` can regenerate them after a crash, a resume or a change of this module.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

from afos.plots import function_plot, line_plot
from afos.search import score
from afos.stats import finite_mean
from afos.store import RunStore

HOF_COLUMNS = ("rank", "expression", "canonical", "fingerprint", "fitness", "n_runs", "val_accuracy", "val_std",
               "test_accuracy", "generation", "learned")
GENERATION_COLUMNS = ("generation", "best", "mean", "median", "proposed", "duplicate", "screened", "trained",
                      "reused", "failed", "crossovers", "mutations")


def _write_csv(path: Path, columns: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def hall_of_fame_rows(store: RunStore) -> list[dict[str, Any]]:
    """The hall of fame of the last completed generation, ranked, as flat rows."""
    saved = store.last_generation()
    entries = saved["hall_of_fame"] if saved else []
    return [
        {"rank": rank, "expression": e["tree"], "canonical": e["canonical"], "fingerprint": e["fingerprint"],
         "fitness": e["fitness"][1], "rung": e["fitness"][0], "n_runs": e.get("n_runs"), "ok": e.get("ok", True),
         "val_accuracy": e["val_accuracy"], "val_std": e.get("val_std"), "test_accuracy": e["test_accuracy"],
         "generation": e["generation"],
         "learned": json.dumps(e.get("learned")) if e.get("learned") else ""}
        for rank, e in enumerate(entries, start=1)
    ]


def generation_rows(store: RunStore) -> list[dict[str, Any]]:
    return [{"generation": g["generation"], **g["stats"]} for g in store.generations()]


def baseline_summary(store: RunStore) -> dict[str, Any] | None:
    """Mean validation/test accuracy of the baseline (ReLU), trained by the run under its protocol."""
    baseline = store.get_meta("baseline")
    protocols = store.get_meta("protocols") or {}
    fitness = (store.get_meta("config") or {}).get("fitness", "val_accuracy")
    if not isinstance(baseline, dict):
        return None
    records = [r for r in store.evaluations(activation_key=baseline.get("fingerprint"))
               if r.budget == baseline.get("budget") and protocols.get(r.task) == r.protocol]
    if not records:
        return None
    ok = [r for r in records if r.ok]
    return {
        "expression": baseline["expression"],
        "canonical": records[0].expression,
        "n_runs": len(records),
        "fitness": finite_mean(score(r, fitness) for r in records),
        "val_accuracy": finite_mean(r.val_accuracy for r in ok),
        "test_accuracy": finite_mean(r.test_accuracy for r in ok),
        "status": ", ".join(sorted({r.status.value for r in records})),
    }


def write_report(run_dir: str | Path) -> Path:
    """Write hall_of_fame.csv, generations.csv, report.md and the plots into ``run_dir``."""
    run_dir = Path(run_dir)
    with RunStore(run_dir / "afos.db", readonly=True) as store:
        config = store.get_meta("config", {}) or {}
        hof, generations = hall_of_fame_rows(store), generation_rows(store)
        baseline = baseline_summary(store)
        status = store.get_meta("status", "unknown")
        evaluations = store.count_evaluations()
    _write_csv(run_dir / "hall_of_fame.csv", HOF_COLUMNS, hof)
    _write_csv(run_dir / "generations.csv", GENERATION_COLUMNS, generations)
    if generations:
        line_plot(
            [g["generation"] for g in generations],
            {name: [g[name] for g in generations] for name in ("best", "mean", "median")},
            run_dir / "fitness.png", xlabel="generation", ylabel=f"fitness ({config.get('fitness')})",
            title="Fitness over generations",
        )
    if hof:
        shapes = {f"#{row['rank']} {row['canonical']}": _plottable(row) for row in hof[:5]}
        shapes["ReLU"] = "relu"
        function_plot(shapes, run_dir / "top_functions.png", title="Top functions beside ReLU")
    path = run_dir / "report.md"
    path.write_text(_markdown(run_dir.name, config, status, evaluations, hof, generations, baseline))
    return path


def _plottable(row: Mapping[str, Any]) -> object:
    """A hall-of-fame function for plotting: parametric forms with their first site's learned values."""
    if not row["learned"]:
        return row["canonical"]
    first_site = next(iter(json.loads(row["learned"]).values()))
    return row["canonical"], {k: v for k, v in first_site.items() if isinstance(v, float)}


def _markdown(
    name: str, config: Mapping[str, Any], status: str, evaluations: int, hof: list[dict[str, Any]],
    generations: list[dict[str, Any]], baseline: Mapping[str, Any] | None,
) -> str:
    train = config.get("train", {})
    tasks = config.get("tasks") or [f"{train.get('dataset')}/{train.get('model') or 'default model'}"]
    totals = {k: sum(g.get(k, 0) for g in generations) for k in ("proposed", "duplicate", "screened", "trained", "failed")}
    lines = [
        f"# afos search report: {name}",
        "",
        f"Status: **{status}**, {len(generations)} of {config.get('generations')} generations, "
        f"{evaluations} training runs in the database.",
        "",
        "## Protocol",
        "",
        f"- tasks: {', '.join(tasks)}",
        f"- budget: {train.get('epochs')} epochs, optimizer {train.get('optimizer')} (lr {train.get('lr')}), "
        f"batch {train.get('batch_size')}, schedule {train.get('schedule')}",
        f"- search: primitives `{config.get('primitives')}`, population {config.get('population')}, "
        f"seed {config.get('seed')}, fitness `{config.get('fitness')}` over {config.get('fitness_seeds')} seed(s)",
        "- fitness is measured on a validation split held out from the training data; test accuracy is "
        "computed once per run, reported here, and never used for selection.",
        f"- proposals: {totals['proposed']} proposed, {totals['duplicate']} duplicates and "
        f"{totals['screened']} screened out at no training cost, {totals['trained']} trained, {totals['failed']} failed.",
        "",
        "## Top functions",
        "",
        "| rank | function | fitness | val acc | test acc | found in gen |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in hof:
        lines.append(f"| {row['rank']} | `{row['canonical']}` | {_num(row['fitness'])} | {_num(row['val_accuracy'])} "
                     f"| {_num(row['test_accuracy'])} | {row['generation']} |")
    if baseline:
        lines.append(f"| baseline | `{baseline['canonical']}` ({baseline['expression']}) | {_num(baseline['fitness'])} "
                     f"| {_num(baseline['val_accuracy'])} | {_num(baseline['test_accuracy'])} | - |")
    learned = [row for row in hof if row["learned"]]
    if learned:
        lines += ["", "## Learned constants", "", "Per activation site (layer), from the first full-budget run:", ""]
        for row in learned:
            sites = json.loads(row["learned"])
            shown = "; ".join(f"site {site}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items()
                                                            if isinstance(v, float)) for site, values in sites.items())
            lines.append(f"- #{row['rank']} `{row['canonical']}`: {shown}")
    lines += [
        "",
        "The baseline is trained by the run itself under the same protocol and seeds. Differences of one "
        "short run are noisy: confirm a finalist with `afos evaluate EXPR --seeds 5` or `afos compare`.",
        "",
        "![fitness over generations](fitness.png)",
        "",
        "![top functions](top_functions.png)",
        "",
    ]
    return "\n".join(lines)


def _num(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.4f}"


def summary_lines(run_dir: str | Path, top: int = 5) -> list[str]:
    """The top functions beside the baseline, as short lines for the terminal."""
    with RunStore(Path(run_dir) / "afos.db", readonly=True) as store:
        rows = hall_of_fame_rows(store)[:top]
        baseline = baseline_summary(store)
    lines = [f"{'rank':>4}  {'fitness':>7}  {'val acc':>7}  {'test acc':>8}  function"]
    lines += [f"{row['rank']:>4}  {_num(row['fitness']):>7}  {_num(row['val_accuracy']):>7}  "
              f"{_num(row['test_accuracy']):>8}  {row['canonical']}" for row in rows]
    if not rows:
        lines.append("   -  no generation completed yet; its finished runs are in afos.db "
                     "(raise --max-evals or --time-limit and --resume)")
    if baseline:
        lines.append(f"{'base':>4}  {_num(baseline['fitness']):>7}  {_num(baseline['val_accuracy']):>7}  "
                     f"{_num(baseline['test_accuracy']):>8}  {baseline['canonical']} ({baseline['expression']})")
    return lines
