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

from afos.errors import UserError
from afos.export import Form
from afos.plots import function_plot, line_plot
from afos.stats import finite_mean
from afos.store import RunStore

HOF_COLUMNS = ("rank", "expression", "canonical", "fingerprint", "fitness", "val_accuracy", "test_accuracy",
               "generation", "learned")
GENERATION_COLUMNS = ("generation", "best", "mean", "median", "proposed", "duplicate", "screened", "trained",
                      "failed", "crossovers", "mutations", "seconds")


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
         "fitness": e["fitness"][1], "rung": e["fitness"][0], "val_accuracy": e["val_accuracy"],
         "test_accuracy": e["test_accuracy"], "generation": e["generation"],
         "learned": json.dumps(e.get("learned")) if e.get("learned") else ""}
        for rank, e in enumerate(entries, start=1)
    ]


def generation_rows(store: RunStore) -> list[dict[str, Any]]:
    return [{"generation": g["generation"], **g["stats"]} for g in store.generations()]


def baseline_summary(store: RunStore) -> dict[str, Any] | None:
    """Mean validation/test accuracy of the baseline (ReLU), trained by the run under its protocol."""
    baseline = store.get_meta("baseline")
    if not baseline:
        return None
    records = [r for r in store.evaluations(fingerprint=baseline["fingerprint"], protocol=store.get_meta("protocol"))
               if r["budget"] == baseline["budget"]]
    if not records:
        return None
    return {
        "expression": baseline["expression"],
        "canonical": records[0]["expression"],
        "val_accuracy": finite_mean(r["val_accuracy"] for r in records),
        "test_accuracy": finite_mean(r["test_accuracy"] for r in records),
        "fitness": finite_mean(r["fitness"] for r in records),
        "status": ", ".join(sorted({r["status"] for r in records})),
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
        function_plot(shapes, run_dir / "top_functions.png", title="Top functions beside ReLU", reference="ReLU")
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


def list_runs(root: str | Path) -> list[dict[str, Any]]:
    """One summary per run folder under ``root``: status, progress and best function."""
    runs = []
    for db in sorted(Path(root).glob("*/afos.db")):
        with RunStore(db, readonly=True) as store:
            config = store.get_meta("config", {}) or {}
            hof = hall_of_fame_rows(store)
            kind = store.get_meta("kind", "search")
            runs.append({
                "run": db.parent.name,
                "kind": kind,
                "status": store.get_meta("status", "unknown"),
                "generations": f"{len(store.generations())}/{config.get('generations', '?')}" if kind == "search" else "-",
                "evaluations": store.count_evaluations(),
                "best": hof[0]["canonical"] if hof else None,
                "fitness": hof[0]["fitness"] if hof else None,
            })
    return runs


def hall_of_fame_form(run_dir: str | Path, rank: int = 1) -> Form:
    """The function at ``rank`` (1 = best) of a search run's hall of fame, for :func:`afos.export.render`.

    Learned constants are per activation site; the form carries their mean over the sites (a per-channel
    summary counts by its mean), and says so.
    """
    path = Path(run_dir) / "afos.db" if Path(run_dir).is_dir() else Path(run_dir)
    if not path.is_file():
        raise UserError(f"{run_dir} is neither an expression nor a run folder holding afos.db")
    with RunStore(path, readonly=True) as store:
        generation = store.last_generation()
    entries = (generation or {}).get("hall_of_fame") or []
    if not entries:
        raise UserError(f"{run_dir} has no hall of fame (not a search run, or no generation finished)")
    if not 1 <= rank <= len(entries):
        raise UserError(f"--rank {rank} is out of range: {run_dir} holds {len(entries)} functions")
    entry = entries[rank - 1]
    per_site: dict[str, list[float]] = {}
    for values in (entry.get("learned") or {}).values():
        for name, value in values.items():
            per_site.setdefault(name, []).append(value["mean"] if isinstance(value, dict) else value)
    means = {name: math.fsum(v) / len(v) for name, v in per_site.items() if None not in v}
    source = f"Rank {rank} of {run_dir} (fitness {_num(entry['fitness'][1])})"
    if means:
        source += f"; learned values are means over {max(map(len, per_site.values()))} activation sites"
    return Form.from_text(entry["canonical"], means, source=source + ".")
