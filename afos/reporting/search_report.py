"""Reports of a search run, rebuilt at any time from its database alone.

The database is the system of record; every file written here (CSV, Markdown, PNG) is derived from it,
so ``afos report RUN_DIR`` can regenerate them after a crash, a resume or a change of this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afos.records.search import Generation, HallOfFameEntry
from afos.reporting.plots import function_plot, line_plot
from afos.reporting.tables import GENERATION_COLUMNS, HOF_COLUMNS, format_number, plus_minus, write_csv
from afos.search.confirmation import FINALIST_COLUMNS, Finalist, verdict_sentence
from afos.search.results import (
    BaselineSummary,
    baseline_summaries,
    finalist_rows,
    generations,
    hall_of_fame,
    shown_form,
)
from afos.storage.store import RunStore


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write hall_of_fame.csv, generations.csv, finalists.csv, report.md and the plots of the search in
    ``run_dir`` into ``out`` (default: the run folder itself); returns the report's path."""
    run_dir = Path(run_dir)
    folder = Path(out) if out is not None else run_dir
    folder.mkdir(parents=True, exist_ok=True)
    report = _read(run_dir)
    write_csv(folder / "hall_of_fame.csv", HOF_COLUMNS, [_hof_row(rank, e) for rank, e in enumerate(report.hof, 1)])
    write_csv(folder / "generations.csv", GENERATION_COLUMNS,
              [{"generation": g.generation, **g.stats.to_dict()} for g in report.generations])
    if report.finalists is not None:
        write_csv(folder / "finalists.csv", FINALIST_COLUMNS, [f.to_dict() for f in report.finalists])
    if report.generations:
        stats = [g.stats for g in report.generations]
        line_plot([g.generation for g in report.generations],
                  {"best": [s.best for s in stats], "mean": [s.mean for s in stats],
                   "median": [s.median for s in stats]},
                  folder / "fitness.png", xlabel="generation", ylabel=f"fitness ({report.config.get('fitness')})",
                  title="Fitness over generations")
    ranked = _ok(report.hof)
    if ranked:
        shapes = {f"#{rank} {entry.canonical}": _plottable(entry) for rank, entry in ranked[:5]}
        shapes["ReLU"] = "relu"
        function_plot(shapes, folder / "top_functions.png", title="Top functions beside ReLU", reference="ReLU")
    path = folder / "report.md"
    path.write_text(_markdown(run_dir.name, report))
    return path


def report_text(run_dir: str | Path) -> str:
    """The Markdown report of the search in ``run_dir``, for a run folder that cannot be written."""
    return _markdown(Path(run_dir).name, _read(Path(run_dir)))


@dataclass(frozen=True)
class _Report:
    """What a search report shows, read from the run database in one go."""

    config: dict[str, Any]
    status: str
    evaluations: int
    hof: list[HallOfFameEntry]
    generations: list[Generation]
    baselines: list[BaselineSummary]
    finalists: list[Finalist] | None


def _read(run_dir: Path) -> _Report:
    with RunStore(run_dir / "afos.db", readonly=True) as store:
        return _Report(store.get_meta("config", {}) or {}, str(store.get_meta("status", "unknown")),
                       store.count_evaluations(), hall_of_fame(store), generations(store), baseline_summaries(store),
                       finalist_rows(store))


def _hof_row(rank: int, entry: HallOfFameEntry) -> dict[str, Any]:
    return {"rank": rank, "expression": entry.tree, "canonical": entry.canonical, "fingerprint": entry.key,
            "fitness": entry.fitness[1], "n_runs": entry.n_runs, "val_accuracy": entry.val_accuracy,
            "val_std": entry.val_std, "test_accuracy": entry.test_accuracy, "generation": entry.generation,
            "learned": entry.learned or ""}


def _ok(hof: Sequence[HallOfFameEntry]) -> list[tuple[int, HallOfFameEntry]]:
    """(rank, entry) of the functions whose every run finished ok: the only ones ranked in tables."""
    return [(rank, entry) for rank, entry in enumerate(hof, 1) if entry.ok]


def _plottable(entry: HallOfFameEntry) -> object:
    """A hall-of-fame function for plotting: parametric forms with their first site's learned values."""
    if not entry.learned:
        return entry.canonical
    first_site = next(iter(entry.learned.values()))
    return entry.canonical, {k: v for k, v in first_site.items() if isinstance(v, float)}


def _markdown(name: str, report: _Report) -> str:
    config, hof, finalists = report.config, report.hof, report.finalists
    train = config.get("train", {})
    tasks = config.get("tasks") or [f"{train.get('dataset')}/{train.get('model') or 'its default model'}"]
    keys = ("proposed", "duplicate", "screened", "trained", "reused", "failed")
    totals = {k: sum(getattr(g.stats.counts, k) for g in report.generations) for k in keys}
    ranked = _ok(hof)
    lines = [
        f"# afos search report: {name}",
        "",
        f"Status: **{report.status}**, {len(report.generations)} of {config.get('generations')} generations, "
        f"{report.evaluations} training runs in the database.",
        "",
        *([f"**{verdict_sentence(finalists)}**", "", f"Export it: `afos export {name}` (run from the folder that "
           "holds this run; `--rank N` takes the N-th of the hall of fame instead).", ""] if finalists else []),
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
    for rank, entry in ranked:
        lines.append(f"| {rank} | `{shown_form(entry)}` | {format_number(entry.fitness[1])} "
                     f"| {plus_minus(entry.val_accuracy, entry.val_std)} | {format_number(entry.test_accuracy)} "
                     f"| {entry.n_runs} | {entry.generation} |")
    for baseline in report.baselines:
        lines.append(f"| baseline | `{baseline.canonical}` ({baseline.expression}) "
                     f"| {format_number(baseline.fitness)} | {format_number(baseline.val_accuracy)} "
                     f"| {format_number(baseline.test_accuracy)} | {baseline.n_runs} | - |")
    failed = len(hof) - len(ranked)
    if failed:
        lines += ["", f"{failed} function(s) of the hall of fame had a failed run and are not ranked."]
    learned = [(rank, entry) for rank, entry in ranked if entry.learned]
    if learned:
        lines += ["", "## Learned constants", "", "Per activation site (layer), from the first full-budget run:", ""]
        for rank, entry in learned:
            shown = "; ".join(f"site {site}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items()
                                                            if isinstance(v, float))
                              for site, values in (entry.learned or {}).items())
            lines.append(f"- #{rank} `{entry.canonical}`: {shown}")
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
        "held-out claim, tested against ReLU (one-sided paired t-test, Holm-corrected over the finalists). "
        "A finalist that failed on any seed is ranked after the others and called failed, never tested on "
        "the seeds it survived.",
        "",
        "| rank | function | val acc | test acc | 95 % CI | Δ test vs ReLU | p | p (Holm) | verdict |",
        "|---:|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for f in finalists:
        ci = "-" if f.test_ci_low is None else f"{format_number(f.test_ci_low)} – {format_number(f.test_ci_high)}"
        delta = "-" if f.delta_vs_relu is None else f"{100 * f.delta_vs_relu:+.2f} pts"
        lines.append(f"| {f.rank or f.role.value} | `{f.canonical}` | {plus_minus(f.val_mean, f.val_std)} "
                     f"| {plus_minus(f.test_mean, f.test_std)} | {ci} | {delta} | {_p(f.p_vs_relu)} | {_p(f.p_holm)} "
                     f"| {f.outcome()} |")
    return [*lines, ""]


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def summary_lines(run_dir: str | Path, top: int = 5) -> list[str]:
    """The top functions beside the baseline, then the confirmation's verdict, as lines for the terminal."""
    with RunStore(Path(run_dir) / "afos.db", readonly=True) as store:
        rows = _ok(hall_of_fame(store))[:top]
        baselines = baseline_summaries(store)
        finalists = finalist_rows(store)
    lines = [f"{'rank':>4}  {'fitness':>7}  {'val acc (search)':>16}  {'test acc':>8}  function"]
    lines += [f"{rank:>4}  {format_number(entry.fitness[1]):>7}  {plus_minus(entry.val_accuracy, entry.val_std):>16}  "
              f"{format_number(entry.test_accuracy):>8}  {entry.canonical}" for rank, entry in rows]
    if not rows:
        lines.append("   -  no generation completed yet; its finished runs are in afos.db "
                     "(raise --max-evals or --time-limit and --resume)")
    for baseline in baselines:
        lines.append(f"{'base':>4}  {format_number(baseline.fitness):>7}  "
                     f"{format_number(baseline.val_accuracy):>16}  {format_number(baseline.test_accuracy):>8}  "
                     f"{baseline.canonical} ({baseline.expression})")
    if finalists:
        lines += ["", "confirmed on fresh seeds (rank by validation; test is the claim):"]
        lines += [f"{f.rank or 'base':>4}  val {plus_minus(f.val_mean, f.val_std):>16}  "
                  f"test {plus_minus(f.test_mean, f.test_std):>16}  {f.outcome():<13}  {f.canonical}" for f in finalists]
        lines += ["", verdict_sentence(finalists), f"export it: afos export {run_dir}"]
    return lines
