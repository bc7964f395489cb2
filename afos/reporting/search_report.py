"""Reports of a search run, rebuilt at any time from its database alone.

The database is the system of record; every file written here (CSV, Markdown, PNG) is derived from it,
so ``afos report RUN_DIR`` can regenerate them after a crash, a resume or a change of this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afos.records.evaluation import Evaluation, Phase
from afos.records.runs import MetaKey, Role, RunStatus, Verdict
from afos.records.search import CandidateRecord, Generation, HallOfFameEntry
from afos.reporting.cost_front import COST_PLOT, cost_front_lines, cost_front_plot
from afos.reporting.front import Point, front, front_lines, points
from afos.reporting.genealogy import genealogy_lines, genealogy_plot
from afos.reporting.listed_runs import failure_lines, pending_lines
from afos.reporting.plots import front_plot, function_plot, line_plot
from afos.reporting.tables import (
    GENERATION_COLUMNS,
    HOF_COLUMNS,
    format_number,
    format_p,
    format_points,
    plus_minus,
    write_csv,
)
from afos.search.confirmation import FINALIST_COLUMNS, Finalist
from afos.search.hall_of_fame import is_front
from afos.search.results import (
    BaselineSummary,
    baseline_summaries,
    confirmation_plan,
    finalist_rows,
    generations,
    hall_of_fame,
    seconds_per_step,
    shown_form,
)
from afos.search.verdict import verdict_sentence, winner
from afos.space.display import expression_size
from afos.storage.atomic import write_text_atomically
from afos.storage.layout import RunFiles, run_database
from afos.storage.liveness import running_elsewhere
from afos.storage.store import RunStore
from afos.text import counted


def write_report(run_dir: str | Path, out: str | Path | None = None, *, store: RunStore | None = None) -> Path:
    """Write hall_of_fame.csv, generations.csv, finalists.csv, report.md and the plots of the search in
    ``run_dir`` into ``out`` (default: the run folder itself); returns the report's path.

    Every file is replaced atomically, so the search rewrites them after each generation (passing its own
    open ``store``: on a network filesystem no second connection may open a database being written) while
    readers look at them. A plot is linked from the report only when it was drawn."""
    run_dir = Path(run_dir)
    folder = Path(out) if out is not None else run_dir
    folder.mkdir(parents=True, exist_ok=True)
    report = _read(store) if store is not None else read_report(run_dir)
    files = RunFiles(folder)
    write_csv(files.hall_of_fame_csv, HOF_COLUMNS,
              [_hof_row(rank, e, report.candidates.get(e.key)) for rank, e in enumerate(report.hof, 1)])
    write_csv(files.generations_csv, GENERATION_COLUMNS,
              [{**g.stats.to_dict(), "generation": g.generation + 1} for g in report.generations])
    if report.finalists is not None:
        write_csv(files.finalists_csv, FINALIST_COLUMNS, [f.to_dict() for f in report.finalists])
    if report.generations:
        _fitness_plot(report, folder / FITNESS_PLOT)
    if report.front:
        _front_plot(report, folder / FRONT_PLOT)
    if is_front(report.hof):
        cost_front_plot(report.hof, report.points, report.baselines, folder / COST_PLOT, _fitness_label(report))
    if report.lineage_of:
        genealogy_plot(report.candidates, report.lineage_of, folder / GENEALOGY_PLOT)
    shapes, title = _shapes(report)
    if shapes:
        function_plot({**shapes, "ReLU": "relu"}, folder / SHAPES_PLOT, title=title, reference="ReLU", order=1)
    path = files.report
    write_text_atomically(path, _markdown(run_dir, report, _plots(folder)))
    return path


def report_text(run_dir: str | Path) -> str:
    """The Markdown report of the search in ``run_dir``, for a run folder that cannot be written."""
    return _markdown(Path(run_dir), read_report(Path(run_dir)), _plots(Path(run_dir)))


FITNESS_PLOT, SHAPES_PLOT, FRONT_PLOT, GENEALOGY_PLOT = "fitness.png", "top_functions.png", "front.png", "genealogy.png"


def _plots(folder: Path) -> list[str]:
    return [name for name in (FITNESS_PLOT, SHAPES_PLOT, COST_PLOT, FRONT_PLOT, GENEALOGY_PLOT)
            if (folder / name).is_file()]


def _front_plot(report: SearchReport, path: Path) -> None:
    relu = _relu_fitness(report)
    front_plot([(p.size, p.fitness) for p in report.points], [(p.size, p.fitness, p.canonical) for p in report.front],
               path, ylabel=_fitness_label(report), reference=("ReLU", relu) if relu else None)


def _fitness_label(report: SearchReport) -> str:
    return f"fitness ({report.config.get('fitness')})"


def _relu_fitness(report: SearchReport) -> float | None:
    return next((b.fitness for b in report.baselines if b.expression == "relu" and b.fitness is not None), None)


def _fitness_plot(report: SearchReport, path: Path) -> None:
    """Best and median fitness per generation (the mean is in generations.csv: a failed run scores 0 and
    drags it down, which says more about failures than about progress), with ReLU's fitness under the
    same protocol as a dashed line once the baselines are trained."""
    stats = [g.stats for g in report.generations]
    relu = _relu_fitness(report)
    line_plot([g.generation + 1 for g in report.generations],
              {"best": [s.best for s in stats], "median": [s.median for s in stats]}, path,
              xlabel="generation", ylabel=_fitness_label(report),
              title="Fitness over generations", references={"ReLU": relu} if relu is not None else None)


@dataclass(frozen=True)
class SearchReport:
    """What a search report shows, read from the run database in one go: besides the generations, the
    runs no completed generation accounts for yet and every failed run, so that the report of a stopped
    search says what happened."""

    config: dict[str, Any]
    status: str
    evaluations: int
    hof: list[HallOfFameEntry]
    generations: list[Generation]
    baselines: list[BaselineSummary]
    finalists: list[Finalist] | None
    tasks: list[str]
    confirm_seeds: tuple[int, ...]
    pending: list[Evaluation]
    failed: list[Evaluation]
    points: list[Point]
    candidates: dict[str, CandidateRecord]
    step_seconds: dict[str, float | None]  # activation key -> measured seconds per step at the full budget

    @property
    def lineage_of(self) -> str | None:
        """The key whose genealogy the report shows: the confirmed winner, else the hall of fame's first;
        None when its lineage was not recorded (a run of an older afos)."""
        best = winner(self.finalists or [])
        ranked = _ok(self.hof)
        key = best.fingerprint if best is not None else ranked[0][1].key if ranked else None
        record = self.candidates.get(key) if key else None
        return key if record is not None and record.lineage is not None else None

    @property
    def front(self) -> list[Point]:
        return front(self.points)


def _status(store: RunStore) -> str:
    """The run's status as ``afos runs`` shows it: ``running`` whose process is gone is ``interrupted``."""
    status = str(store.get_meta(MetaKey.STATUS, "unknown"))
    if status == RunStatus.RUNNING.value and not running_elsewhere(Path(store.path).parent):
        return RunStatus.INTERRUPTED.value
    return status


def read_report(run_dir: Path) -> SearchReport:
    with RunStore(run_database(run_dir), readonly=True) as store:
        return _read(store)


def _read(store: RunStore) -> SearchReport:
    saved = generations(store)
    done = saved[-1].generation if saved else -1
    search = store.evaluations(phase=Phase.SEARCH)
    plan = confirmation_plan(store)
    return SearchReport(store.get_meta(MetaKey.CONFIG, {}) or {}, _status(store),
                        store.count_evaluations(), hall_of_fame(store), saved, baseline_summaries(store),
                        finalist_rows(store), list(store.get_meta(MetaKey.PROTOCOLS) or {}), plan.seeds if plan else (),
                        [r for r in search if r.generation is not None and r.generation > done],
                        [r for r in store.evaluations() if not r.ok],
                        _points(search, store.get_meta(MetaKey.CONFIG, {}) or {}),
                        {c.key: c for c in store.candidates()}, _step_seconds(search))


def _points(search: list[Evaluation], config: dict[str, Any]) -> list[Point]:
    """Every function the search trained at the full budget, priced when cost is one of its objectives."""
    return points(search, str(config.get("fitness", "val_accuracy")), priced="cost" in (config.get("objectives") or ()))


def _step_seconds(search: list[Evaluation]) -> dict[str, float | None]:
    """Each function's measured seconds per training step over its search runs at the full budget."""
    full = max((r.budget for r in search), default=None)
    groups: dict[str, list[Evaluation]] = {}
    for record in search:
        if record.budget == full:
            groups.setdefault(record.activation_key, []).append(record)
    return {key: seconds_per_step(group) for key, group in groups.items()}


def _hof_row(rank: int, entry: HallOfFameEntry, candidate: CandidateRecord | None) -> dict[str, Any]:
    return {"rank": rank, "canonical": entry.canonical, "fingerprint": entry.key, "fitness": entry.fitness.value,
            "cost": entry.fitness.cost, "n_runs": entry.n_runs, "val_accuracy": entry.val_accuracy, "val_std": entry.val_std,
            "test_accuracy": entry.test_accuracy, "generation": entry.generation + 1,
            "size": expression_size(entry.canonical, _parameters(entry)), "learned": entry.learned or "", "tree": entry.tree,
            "lineage": candidate.lineage.to_dict() if candidate and candidate.lineage else ""}


def _shapes(report: SearchReport, top: int = 5) -> tuple[dict[str, object], str]:
    """The functions the shapes plot draws, first (thickest) what the report leads with: the confirmed
    winner then the other finalists whose seeds all finished, or before a confirmation the hall of fame's
    top functions."""
    entries = {entry.key: entry for _, entry in _ok(report.hof)}
    best = winner(report.finalists or [])
    finalists = [f for f in report.finalists or [] if f.role is Role.FINALIST and not f.failed
                 and f.fingerprint in entries]
    if best is not None and best in finalists:
        ordered = [best, *(f for f in finalists if f is not best)][:top]
        beats = best.verdict is Verdict.BETTER  # "winner" only for a function confirmed better than ReLU
        title = "Confirmed winner and finalists beside ReLU" if beats else "Finalists beside ReLU (none beats it)"
        return ({f"{'winner' if f is best and beats else f'finalist {f.rank}'}: {f.canonical}":
                 _plottable(entries[f.fingerprint]) for f in ordered}, title)
    return ({f"#{rank} {entry.canonical}": _plottable(entry) for rank, entry in _ok(report.hof)[:top]},
            "Top functions of the search beside ReLU")


def _parameters(entry: HallOfFameEntry) -> set[str]:
    return {name for values in (entry.learned or {}).values() for name in values} | set(entry.learned_runs)


def _ok(hof: Sequence[HallOfFameEntry]) -> list[tuple[int, HallOfFameEntry]]:
    """(rank, entry) of the functions whose every run finished ok: the only ones ranked in tables."""
    return [(rank, entry) for rank, entry in enumerate(hof, 1) if entry.ok]


def _plottable(entry: HallOfFameEntry) -> object:
    """A hall-of-fame function for plotting: parametric forms with their first site's learned values."""
    if not entry.learned:
        return entry.canonical
    first_site = next(iter(entry.learned.values()))
    return entry.canonical, {k: v for k, v in first_site.items() if isinstance(v, float)}


def _markdown(run_dir: Path, report: SearchReport, plots: Sequence[str]) -> str:
    """report.md: status, verdict, protocol, confirmation, top functions, failures and the plots drawn.

    The commands it names use the run folder as the search was given it (``results/<run>``), so they work
    from where the search was started."""
    finalists = report.finalists
    hints = _resume_hint(run_dir, report.status)
    lines = [
        f"# afos search report: {run_dir.name}",
        "",
        f"Status: **{report.status}**, {len(report.generations)} of {report.config.get('generations')} generations "
        f"completed, {counted(report.evaluations, 'training run')} in the database.{hints}",
        "",
        *([f"**{verdict_sentence(finalists)}**", "", f"Export it: `afos export {run_dir}` ({_other_picks(report)}).",
           ""] if finalists else []),
        *_protocol_lines(report),
        *_confirmation_lines(finalists, report.confirm_seeds),
        *_top_lines(report),
        *cost_front_lines(report.hof, report.baselines, report.step_seconds, finalists or ()),
        *front_lines(report.front),
        *_genealogy_lines(report),
        *pending_lines(report.pending),
        *failure_lines(report.failed),
        *(line for plot in plots for line in (f"![{PLOT_TITLES[plot]}]({plot})", "")),
    ]
    return "\n".join(lines)


def _other_picks(report: SearchReport) -> str:
    if is_front(report.hof):
        return "`--pick cheapest`, `--pick near-best` or `--pick N` takes a member of the front instead"
    return "`--rank N` takes the N-th of the hall of fame instead"


def _resume_hint(run_dir: Path, status: str) -> str:
    resumable = status in {s.value for s in RunStatus if s.is_resumable()}
    return f" `afos search --resume {run_dir}` continues it." if resumable else ""


PLOT_TITLES = {FITNESS_PLOT: "fitness over generations", SHAPES_PLOT: "top functions",
               FRONT_PLOT: "complexity against fitness", GENEALOGY_PLOT: "genealogy", COST_PLOT: "accuracy against cost"}


def _genealogy_lines(report: SearchReport) -> list[str]:
    if report.lineage_of is None:
        return []
    return ["## Genealogy", "", "Where the function the report leads with came from: each line a candidate, "
            "indented under the child it is a parent of, with its generation and how it was made.", "",
            "```", *genealogy_lines(report.candidates, report.lineage_of), "```", ""]


def _protocol_lines(report: SearchReport) -> list[str]:
    config = report.config
    train = config.get("train", {})
    keys = ("proposed", "duplicate", "screened", "trained", "reused", "failed")
    totals = {k: sum(getattr(g.stats.counts, k) for g in report.generations) for k in keys}
    lines = [
        "## Protocol",
        "",
        f"- tasks: {', '.join(report.tasks)}",
        f"- budget: {train.get('epochs')} epochs, optimizer {train.get('optimizer')} (lr {train.get('lr')}), "
        f"batch {train.get('batch_size')}, schedule {train.get('schedule')}",
        f"- search: primitives `{config.get('primitives')}`, population {config.get('population')}, "
        f"seed {config.get('seed')}, fitness `{config.get('fitness')}` over {config.get('fitness_seeds')} seed(s)",
        "- selection: fitness is validation accuracy on a split held out from the training data; test accuracy "
        "is computed once per run, reported, and never used to select, rank or stop anything.",
    ]
    if config.get("surrogate", "none") != "none":
        lines.append(_surrogate_line(config, report.generations))
    if report.generations:
        lines.append(f"- proposals in the completed generations: {totals['proposed']} proposed, "
                     f"{totals['duplicate']} duplicates and {totals['screened']} screened out at no training cost, "
                     f"{totals['trained']} trained here, {totals['reused']} reused from other runs, "
                     f"{totals['failed']} failed.")
    return [*lines, ""]


def _surrogate_line(config: dict[str, Any], saved: Sequence[Generation]) -> str:
    rho = [f"{g.generation + 1}: {g.stats.rank_correlation:+.2f}" for g in saved if g.stats.rank_correlation is not None]
    return (f"- surrogate: `{config.get('surrogate')}` ranked pools of {config.get('pool')} × the slots "
            f"(explore {config.get('explore')}); rank correlation of predicted and obtained fitness per generation: "
            f"{', '.join(rho) if rho else 'none yet'}.")


def _top_lines(report: SearchReport) -> list[str]:
    ranked = _ok(report.hof)
    lines = ["## Top functions of the search", ""]
    if not report.generations:
        lines += ["No generation has completed, so nothing is ranked yet.", ""]
    lines += [
        "Selection numbers: mean ± std over the search's fitness runs; the maximum of many noisy scores is "
        "biased upwards, which is why the finalists are confirmed on fresh seeds.",
        "",
        "| rank | function | size | fitness | val acc | test acc | runs | found in gen |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for rank, entry in ranked:
        lines.append(f"| {rank} | `{shown_form(entry)}` | {expression_size(entry.canonical, _parameters(entry))} "
                     f"| {format_number(entry.fitness.value)} | {plus_minus(entry.val_accuracy, entry.val_std)} "
                     f"| {format_number(entry.test_accuracy)} | {entry.n_runs} | {entry.generation + 1} |")
    for baseline in report.baselines:
        lines.append(f"| baseline | `{baseline.canonical}` ({baseline.expression}) | - "
                     f"| {format_number(baseline.fitness)} | {format_number(baseline.val_accuracy)} "
                     f"| {format_number(baseline.test_accuracy)} | {baseline.n_runs} ({baseline.statuses}) | - |")
    failed = len(report.hof) - len(ranked)
    if failed:
        lines += ["", f"{failed} function(s) of the hall of fame had a failed run and are not ranked."]
    lines.append("")
    learned = [(rank, entry) for rank, entry in ranked if entry.learned]
    if learned:
        lines += ["## Learned constants", "", "Per activation site (layer), from the first full-budget run:", ""]
        for rank, entry in learned:
            shown = "; ".join(f"site {site}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items()
                                                            if isinstance(v, float))
                              for site, values in (entry.learned or {}).items())
            lines.append(f"- #{rank} `{entry.canonical}`: {shown}")
        lines.append("")
    return lines


def _confirmation_lines(finalists: list[Finalist] | None, seeds: Sequence[int]) -> list[str]:
    if not finalists:
        return []
    finished = min(f.n_seeds for f in finalists)
    strongest = next((f.strongest_baseline for f in finalists if f.strongest_baseline), None) or "strongest"
    progress = "" if finished == len(seeds) else f" (stopped: {finished} of them finished for every function)"
    lines = [
        "## Confirmation",
        "",
        f"The finalists and baselines retrained on {counted(len(seeds), 'seed')} that took no part in the search{progress}, "
        "paired by seed. Ranked by confirmed validation accuracy; test accuracy (mean ± std, 95 % CI) is the "
        "held-out claim, tested against ReLU (one-sided paired t-test, Holm-corrected over the finalists). "
        "A finalist that failed on any seed is ranked after the others and called failed, never tested on "
        "the seeds it survived. The last two columns compare each finalist with the strongest baseline (the "
        "best by confirmed validation), one-sided, Holm-corrected over the finalists.",
        "",
        "| rank | function | val acc | test acc | 95 % CI | Δ test vs ReLU | p | p (Holm) | verdict "
        f"| Δ vs {strongest} | p (Holm) vs {strongest} |",
        "|---:|---|---:|---:|---|---:|---:|---:|---|---:|---:|",
    ]
    for f in finalists:
        ci = "-" if f.test_ci_low is None else f"{format_number(f.test_ci_low)} – {format_number(f.test_ci_high)}"
        delta = format_points(f.delta_vs_relu)
        lines.append(f"| {f.rank or f.role.value} | `{f.canonical}` | {plus_minus(f.val_mean, f.val_std)} "
                     f"| {plus_minus(f.test_mean, f.test_std)} | {ci} | {delta} | {format_p(f.p_vs_relu)} | {format_p(f.p_holm)} "
                     f"| {f.outcome()} | {format_points(f.delta_vs_strongest)} | {format_p(f.p_holm_vs_strongest)} |")
    return [*lines, ""]


def summary_lines(run_dir: str | Path, top: int = 5) -> list[str]:
    """The top functions beside the baseline, then the confirmation's verdict, as lines for the terminal."""
    with RunStore(run_database(run_dir), readonly=True) as store:
        rows = _ok(hall_of_fame(store))[:top]
        baselines = baseline_summaries(store)
        finalists = finalist_rows(store)
    lines = [f"{'rank':>4}  {'fitness':>7}  {'val acc (search)':>16}  {'test acc':>8}  function"]
    lines += [f"{rank:>4}  {format_number(entry.fitness.value):>7}  {plus_minus(entry.val_accuracy, entry.val_std):>16}  "
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
