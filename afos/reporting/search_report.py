"""Reports of a search run, rebuilt at any time from its database alone.

The database is the system of record; every file written here (CSV, Markdown, PNG) is derived from it,
so ``afos report RUN_DIR`` can regenerate them after a crash, a resume or a change of this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from afos.reporting.plots import function_plot, line_plot
from afos.reporting.tables import GENERATION_COLUMNS, HOF_COLUMNS, format_number, plus_minus, write_csv
from afos.search.confirmation import FINALIST_COLUMNS, Finalist, verdict_sentence
from afos.search.results import baseline_summaries, finalist_rows, generation_rows, hall_of_fame_rows
from afos.storage.store import RunStore


def write_report(run_dir: str | Path) -> Path:
    """Write hall_of_fame.csv, generations.csv, finalists.csv, report.md and the plots into ``run_dir``."""
    run_dir = Path(run_dir)
    with RunStore(run_dir / "afos.db", readonly=True) as store:
        config = store.get_meta("config", {}) or {}
        hof, generations = hall_of_fame_rows(store), generation_rows(store)
        baselines = baseline_summaries(store)
        finalists = finalist_rows(store)
        status = store.get_meta("status", "unknown")
        evaluations = store.count_evaluations()
    write_csv(run_dir / "hall_of_fame.csv", HOF_COLUMNS, hof)
    write_csv(run_dir / "generations.csv", GENERATION_COLUMNS, generations)
    if finalists is not None:
        write_csv(run_dir / "finalists.csv", FINALIST_COLUMNS, [f.to_dict() for f in finalists])
    if generations:
        line_plot(
            [g["generation"] for g in generations],
            {name: [g[name] for g in generations] for name in ("best", "mean", "median")},
            run_dir / "fitness.png", xlabel="generation", ylabel=f"fitness ({config.get('fitness')})",
            title="Fitness over generations",
        )
    ranked = _ok(hof)
    if ranked:
        shapes = {f"#{row['rank']} {row['canonical']}": _plottable(row) for row in ranked[:5]}
        shapes["ReLU"] = "relu"
        function_plot(shapes, run_dir / "top_functions.png", title="Top functions beside ReLU", reference="ReLU")
    path = run_dir / "report.md"
    path.write_text(_markdown(run_dir.name, config, status, evaluations, hof, generations, baselines, finalists))
    return path


def _ok(hof: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hall-of-fame rows of functions whose every run finished ok: the only ones ranked in tables."""
    return [row for row in hof if row["ok"]]


def _plottable(row: Mapping[str, Any]) -> object:
    """A hall-of-fame function for plotting: parametric forms with their first site's learned values."""
    if not row["learned"]:
        return row["canonical"]
    first_site = next(iter(json.loads(row["learned"]).values()))
    return row["canonical"], {k: v for k, v in first_site.items() if isinstance(v, float)}


def _markdown(
    name: str, config: Mapping[str, Any], status: str, evaluations: int, hof: list[dict[str, Any]],
    generations: list[dict[str, Any]], baselines: list[dict[str, Any]], finalists: list[Finalist] | None,
) -> str:
    train = config.get("train", {})
    tasks = config.get("tasks") or [f"{train.get('dataset')}/{train.get('model') or 'its default model'}"]
    keys = ("proposed", "duplicate", "screened", "trained", "reused", "failed")
    totals = {k: sum(g.get(k, 0) for g in generations) for k in keys}
    ranked = _ok(hof)
    lines = [
        f"# afos search report: {name}",
        "",
        f"Status: **{status}**, {len(generations)} of {config.get('generations')} generations, "
        f"{evaluations} training runs in the database.",
        "",
        *([f"**{verdict_sentence(finalists)}**", ""] if finalists else []),
        "## Protocol",
        "",
        f"- tasks: {', '.join(tasks)}",
        f"- budget: {train.get('epochs')} epochs, optimizer {train.get('optimizer')} (lr {train.get('lr')}), "
        f"batch {train.get('batch_size')}, schedule {train.get('schedule')}",
        f"- search: primitives `{config.get('primitives')}`, population {config.get('population')}, "
        f"seed {config.get('seed')}, fitness `{config.get('fitness')}` over {config.get('fitness_seeds')} seed(s)",
        "- selection: fitness is validation accuracy on a split held out from the training data; test accuracy "
        "is computed once per run, reported, and never used to select, rank or stop anything.",
        f"- proposals: {totals['proposed']} proposed, {totals['duplicate']} duplicates and {totals['screened']} "
        f"screened out at no training cost, {totals['trained']} trained here, {totals['reused']} reused from "
        f"other runs, {totals['failed']} failed.",
        "",
        *_confirmation_lines(finalists),
        "## Top functions of the search",
        "",
        "Selection numbers: mean ± std over the search's fitness runs; the maximum of many noisy scores is "
        "biased upwards, which is why the finalists above are confirmed on fresh seeds.",
        "",
        "| rank | function | fitness | val acc | test acc | runs | found in gen |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in ranked:
        lines.append(f"| {row['rank']} | `{row['form']}` | {format_number(row['fitness'])} "
                     f"| {plus_minus(row['val_accuracy'], row['val_std'])} | {format_number(row['test_accuracy'])} "
                     f"| {row['n_runs']} | {row['generation']} |")
    for baseline in baselines:
        lines.append(f"| baseline | `{baseline['canonical']}` ({baseline['expression']}) "
                     f"| {format_number(baseline['fitness'])} | {format_number(baseline['val_accuracy'])} "
                     f"| {format_number(baseline['test_accuracy'])} | {baseline['n_runs']} | - |")
    failed = len(hof) - len(ranked)
    if failed:
        lines += ["", f"{failed} function(s) of the hall of fame had a failed run and are not ranked."]
    learned = [row for row in ranked if row["learned"]]
    if learned:
        lines += ["", "## Learned constants", "", "Per activation site (layer), from the first full-budget run:", ""]
        for row in learned:
            sites = json.loads(row["learned"])
            shown = "; ".join(f"site {site}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items()
                                                            if isinstance(v, float)) for site, values in sites.items())
            lines.append(f"- #{row['rank']} `{row['canonical']}`: {shown}")
    lines += [
        "",
        "![fitness over generations](fitness.png)",
        "",
        "![top functions](top_functions.png)",
        "",
    ]
    return "\n".join(lines)


def _confirmation_lines(finalists: list[Finalist] | None) -> list[str]:
    if not finalists:
        return []
    lines = [
        "## Confirmation",
        "",
        f"The finalists and baselines retrained on {finalists[0].n_seeds} seeds that took no part in the search, "
        "paired by seed. Ranked by confirmed validation accuracy; test accuracy (mean ± std, 95 % CI) is the "
        "held-out claim, tested against ReLU (one-sided paired t-test, Holm-corrected over the finalists).",
        "",
        "| rank | function | val acc | test acc | 95 % CI | Δ test vs ReLU | p | p (Holm) | verdict |",
        "|---:|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for f in finalists:
        ci = "-" if f.test_ci_low is None else f"{format_number(f.test_ci_low)} – {format_number(f.test_ci_high)}"
        delta = "-" if f.delta_vs_relu is None else f"{100 * f.delta_vs_relu:+.2f} pts"
        lines.append(f"| {f.rank or f.role} | `{f.canonical}` | {plus_minus(f.val_mean, f.val_std)} "
                     f"| {plus_minus(f.test_mean, f.test_std)} | {ci} | {delta} | {_p(f.p_vs_relu)} | {_p(f.p_holm)} "
                     f"| {f.verdict} |")
    return [*lines, ""]


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def summary_lines(run_dir: str | Path, top: int = 5) -> list[str]:
    """The top functions beside the baseline, then the confirmation's verdict, as lines for the terminal."""
    with RunStore(Path(run_dir) / "afos.db", readonly=True) as store:
        rows = _ok(hall_of_fame_rows(store))[:top]
        baselines = baseline_summaries(store)
        finalists = finalist_rows(store)
    lines = [f"{'rank':>4}  {'fitness':>7}  {'val acc (search)':>16}  {'test acc':>8}  function"]
    lines += [f"{row['rank']:>4}  {format_number(row['fitness']):>7}  {plus_minus(row['val_accuracy'], row['val_std']):>16}  "
              f"{format_number(row['test_accuracy']):>8}  {row['canonical']}" for row in rows]
    if not rows:
        lines.append("   -  no generation completed yet; its finished runs are in afos.db "
                     "(raise --max-evals or --time-limit and --resume)")
    for baseline in baselines:
        lines.append(f"{'base':>4}  {format_number(baseline['fitness']):>7}  "
                     f"{format_number(baseline['val_accuracy']):>16}  {format_number(baseline['test_accuracy']):>8}  "
                     f"{baseline['canonical']} ({baseline['expression']})")
    if finalists:
        lines += ["", "confirmed on fresh seeds (rank by validation; test is the claim):"]
        lines += [f"{f.rank or 'base':>4}  val {plus_minus(f.val_mean, f.val_std):>16}  "
                  f"test {plus_minus(f.test_mean, f.test_std):>16}  {f.verdict:<13}  {f.canonical}" for f in finalists]
        lines += ["", verdict_sentence(finalists)]
    return lines
