"""What ``afos evaluate`` and ``afos compare`` write and print, derived from the run database.

Because every table and figure is built from stored runs, the output of a resumed grid is the output of an
uninterrupted one, and ``compare --from`` reproduces a comparison without training."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afos.grid.analysis import Cell, GridAnalysis, analyse, cell_summary
from afos.grid.results import Results
from afos.grid.spec import METRIC, Function, Run
from afos.records.json import dumps
from afos.reporting.plots import critical_difference_diagram, function_plot, heatmap, line_plot
from afos.reporting.tables import CELL_COLUMNS, RUN_COLUMNS, format_number, plus_minus, safe_name, write_csv
from afos.space.display import display_form, site_mean
from afos.storage.atomic import write_text_atomically
from afos.storage.layout import RunFiles
from afos.training.protocol import split_task

# ------------------------------------------------------------------------------------------- rows


def run_row(run: Run, *, history: bool = False) -> dict[str, Any]:
    """One run as a flat JSON object (a line of runs.csv, ``--json`` of evaluate); ``history`` adds the
    per-epoch curve."""
    record, function = run.record.to_dict(), run.function
    dataset, model = split_task(run.task)
    row = {"expression": function.name, "canonical": function.canonical, "fingerprint": function.fingerprint,
           "role": function.role.value, "dataset": dataset, "model": model, "seed": run.seed}
    row.update({key: record[key] for key in RUN_COLUMNS if key not in row})
    return {**row, "history": record["history"]} if history else row


@dataclass(frozen=True)
class CellLine:
    """One (case, function) line of a grid's tables: the cell, and the function as shown (a parametric form
    with its learned values, mean ± spread over the seeds that finished ok)."""

    function: Function
    shown: str
    cell: Cell

    def to_dict(self) -> dict[str, Any]:
        """A line of results.csv (and of evaluate's results.json)."""
        return {**self.cell.to_dict(), "canonical": self.shown, "role": self.function.role.value}


def cell_lines(results: Results) -> list[CellLine]:
    """One line per (case, function), case-major."""
    return [CellLine(f, _learned_form(f, results.of(f, case)), cell_summary(results.of(f, case), case, f.name))
            for case in results.cases for f in results.functions]


def _learned_form(function: Function, runs: Sequence[Run]) -> str:
    spec = function.activation
    if not spec.learnable:
        return function.canonical
    learned = {name: [site_mean(run.record.params, name) for run in runs if run.record.ok and run.record.params]
               for name in spec.learnable}
    return display_form(spec.expression, fixed=spec.fixed, learned={k: v for k, v in learned.items() if v})


def _write_json(path: Path, value: Any) -> None:
    write_text_atomically(path, dumps(value, indent=2) + "\n")


def _statuses(cell: Cell) -> str:
    return ", ".join(f"{count} {status}" for status, count in sorted(cell.statuses.items()))


def _cell_text(cell: Cell) -> str:
    """A matrix cell: mean ± std test accuracy, or why it failed (with what the successful seeds reached)."""
    if not cell.failed:
        return _metric(cell, METRIC)
    reached = f": {format_number(cell.means[METRIC])} on {cell.ok}" if cell.ok else ""
    return f"failed ({_statuses(cell)}{reached})"


def _metric(cell: Cell, metric: str) -> str:
    return plus_minus(cell.means[metric], cell.stds[metric])


# ----------------------------------------------------------------------------------------- evaluate


def evaluation_markdown(results: Results) -> str:
    """``afos evaluate``'s results.md."""
    return _evaluation_markdown(results, cell_lines(results))


def comparison_markdown(results: Results) -> str:
    """``afos compare``'s report.md."""
    return _comparison_markdown(results, analyse(results))


def write_evaluation(out: Path, results: Results) -> None:
    """results.json/.csv/.md, runs.csv, curves.png and the learned shapes of an evaluation, into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    lines = cell_lines(results)
    runs = results.all_runs()
    files = RunFiles(out)
    _write_json(files.results_json, {"grid": [s.to_dict() for s in results.specs],
                                     "functions": [line.to_dict() for line in lines],
                                     "runs": [run_row(r, history=True) for r in runs]})
    write_csv(files.results_csv, CELL_COLUMNS, [line.to_dict() for line in lines])
    write_csv(files.runs_csv, RUN_COLUMNS, [run_row(r) for r in runs])
    write_text_atomically(files.results_md, _evaluation_markdown(results, lines))
    curves_plot(results, out / "curves.png")
    learned_shapes(results, out)


def learned_shapes(results: Results, out: Path) -> list[Path]:
    """For each function with learnable parameters: its shape per layer (activation site) after training,
    beside its initial shape, from the first successful run; ``learned-<name>.png``."""
    paths = []
    for function in results.functions:
        spec = function.activation
        if not spec.learnable:
            continue
        run = next((r for r in results.all_runs() if r.function == function and r.record.ok and r.record.params),
                   None)
        if run is None:
            continue
        curves: dict[str, object] = {"initial": (spec.expression, spec.typical_values())}
        bands: dict[str, list[dict[str, float]]] = {}
        for site, values in run.record.params.items():
            learned = {k: v["mean"] if isinstance(v, dict) else v for k, v in values.items()}
            curves[f"layer {site}"] = (spec.expression, {**spec.fixed, **learned})
            if any(isinstance(v, dict) for v in values.values()):
                bands[f"layer {site}"] = [{**spec.fixed, **corner} for corner in _channel_corners(values)]
        title = f"{function.name}: learned shape per layer ({run.task}, seed {run.seed})"
        if bands:
            title += "\nline: mean over channels; band: the curves at the channels' parameter extremes"
        paths.append(function_plot(curves, out / f"learned-{safe_name(function.name)}.png", title=title,
                                   reference="initial", bands=bands))
    return paths


def _channel_corners(values: Mapping[str, Any]) -> list[dict[str, float]]:
    """Every combination of each per-channel parameter's min and max (scalars as they are).

    Records keep per-channel parameters as {mean, min, max}; the curves at these corners span the channels'
    shapes wherever the function is monotone in each parameter, and show their spread in any case.
    """
    choices = [[(name, v["min"]), (name, v["max"])] if isinstance(v, dict) else [(name, v)]
               for name, v in values.items()]
    return [dict(corner) for corner in itertools.product(*choices)]


def evaluation_table(results: Results) -> str:
    """The terminal table of ``afos evaluate``: one line per function (and case)."""
    lines = [(f"{'function':<24} {'canonical':<32} {'role':<9} {'val acc':>16} {'test acc':>16} {'test F1':>16} "
              f"{'s/run':>6}  runs")]
    for line in cell_lines(results):
        cell = line.cell
        lines.append(f"{_short(cell.function, 24):<24} {_short(line.shown, 32):<32} {line.function.role.value:<9} "
                     f"{_metric(cell, 'val_accuracy'):>16} {_metric(cell, 'test_accuracy'):>16} "
                     f"{_metric(cell, 'test_f1'):>16} {_seconds(cell.seconds):>6}  {_statuses(cell)}")
    return "\n".join(lines)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _evaluation_markdown(results: Results, cells: list[CellLine]) -> str:
    lines = ["# afos evaluate", "", *_protocol_lines(results), "",
             ("Accuracies and macro-F1 are mean ± sample standard deviation over the seeds that finished ok; the test "
              "split is held out from training and validation and touched once per run."), "",
             "| function | canonical | role | val acc | test acc | val F1 | test F1 | s/run | runs |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {c.cell.function} | `{c.shown}` | {c.function.role.value} | {_metric(c.cell, 'val_accuracy')} "
              f"| {_metric(c.cell, 'test_accuracy')} | {_metric(c.cell, 'val_f1')} | {_metric(c.cell, 'test_f1')} "
              f"| {_seconds(c.cell.seconds)} | {_statuses(c.cell)} |" for c in cells]
    failures = [r for r in results.all_runs() if not r.record.ok]
    if failures:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {r.function.name} seed {r.seed}: {r.record.status.value}: {r.record.reason}" for r in failures]
    lines += [*_notes(results.notes), "", "![validation accuracy per epoch](curves.png)", ""]
    return "\n".join(lines)


def curves_plot(results: Results, path: Path) -> Path:
    """Validation accuracy per epoch, mean over seeds, one line per function (and case when several)."""
    curves: dict[str, dict[float, list[float]]] = {}
    for run in results.all_runs():
        label = run.function.name if len(results.cases) == 1 else f"{run.function.name} [{run.task}]"
        for entry in run.record.history:
            if entry.val_accuracy is not None:
                curves.setdefault(label, {}).setdefault(round(entry.epoch, 6), []).append(entry.val_accuracy)
    epochs = sorted({epoch for curve in curves.values() for epoch in curve})
    series = {label: [sum(curve[e]) / len(curve[e]) if e in curve else None for e in epochs]
              for label, curve in curves.items()}
    return line_plot(epochs, series, path, xlabel="epoch", ylabel="validation accuracy (mean over seeds)",
                     title="Validation accuracy during training")


# ------------------------------------------------------------------------------------------ compare


def write_comparison(out: Path, results: Results) -> GridAnalysis:
    """Analyse ``results`` and write results.json/.csv, runs.csv, report.md, heatmap.png, cd_diagram.png."""
    out.mkdir(parents=True, exist_ok=True)
    analysis = analyse(results)
    runs = results.all_runs()
    files = RunFiles(out)
    _write_json(files.results_json, {**analysis.to_dict(), "grid": [s.to_dict() for s in results.specs],
                                     "runs": [run_row(r, history=True) for r in runs]})
    write_csv(files.results_csv, CELL_COLUMNS, [line.to_dict() for line in cell_lines(results)])
    write_csv(files.runs_csv, RUN_COLUMNS, [run_row(r) for r in runs])
    names = [f.name for f in analysis.functions]
    matrix = [[math.nan if v is None else v for v in row] for row in analysis.matrix]
    heatmap(matrix, list(analysis.cases), names, out / "heatmap.png", title="Mean test accuracy over seeds",
            value_label="mean test accuracy", from_row_best=True)
    if analysis.average_ranks and analysis.nemenyi and analysis.friedman:
        critical_difference_diagram(analysis.average_ranks, analysis.nemenyi.critical_difference,
                                    out / "cd_diagram.png",
                                    title=f"Average ranks over {analysis.friedman.n_cases} cases "
                                          f"(Nemenyi CD, alpha {analysis.alpha:g})")
    write_text_atomically(files.report, _comparison_markdown(results, analysis))
    return analysis


def comparison_text(analysis: GridAnalysis, out: Path) -> str:
    """The terminal summary of ``afos compare``: matrix, ranks, Friedman and the findings."""
    names = [f.name for f in analysis.functions]
    width = max(12, *(len(c) for c in analysis.cases))
    lines = ["test accuracy (mean ± std over seeds)",
             f"{'case':<{width}}  " + "  ".join(f"{_short(n, 18):>18}" for n in names)]
    for case, row in zip(analysis.cases, analysis.cells):
        lines.append(f"{case:<{width}}  " + "  ".join(f"{_short(_cell_text(c), 18):>18}" for c in row))
    ranks, friedman = analysis.average_ranks, analysis.friedman
    if ranks and friedman:
        lines.append(f"{'average rank':<{width}}  " + "  ".join(f"{ranks[n]:>18.2f}" for n in names))
        lines.append(f"Friedman chi2 = {friedman.statistic:.3f}, p = {friedman.p_value:.3g} "
                     f"(N = {friedman.n_cases}, k = {friedman.k})")
    lines += [f"- {line}" for line in analysis.findings]
    lines.append(f"report: {RunFiles(out).report}")
    return "\n".join(lines)


def _comparison_markdown(results: Results, analysis: GridAnalysis) -> str:
    names = [f.name for f in analysis.functions]
    lines = ["# afos compare", "", *_protocol_lines(results), "",
             "## What the data supports", "", *[f"- {line}" for line in analysis.findings], "",
             "## Results", "",
             "Cells are **test accuracy**, mean ± sample standard deviation over seeds. The functions were fixed "
             "before these runs, so no selection happens on them and the held-out test split is the unbiased "
             "final measure. A cell is *failed* if any seed's run did not finish ok; failed cells rank worst in "
             "their case (tied among themselves).", "",
             *_matrix_table(analysis, names, _cell_text), "",
             "Validation accuracy (the search's fitness; optimistic for a function selected on it):", "",
             *_matrix_table(analysis, names, lambda c: _metric(c, "val_accuracy")), "",
             "![results heatmap](heatmap.png)", ""]
    if analysis.average_ranks:
        lines += _test_sections(analysis)
    lines += _notes(analysis.notes)
    return "\n".join(lines) + "\n"


def _matrix_table(analysis: GridAnalysis, names: list[str], cell: Callable[[Cell], str]) -> list[str]:
    lines = ["| case | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    lines += [f"| {case} | " + " | ".join(cell(c) for c in row) + " |"
              for case, row in zip(analysis.cases, analysis.cells)]
    return lines


def _test_sections(analysis: GridAnalysis) -> list[str]:
    friedman, nemenyi, ranks = analysis.friedman, analysis.nemenyi, analysis.average_ranks
    assert friedman is not None and nemenyi is not None and ranks is not None
    lines = ["## Average ranks and Friedman test", "", "| function | average rank |", "|---|---:|"]
    lines += [f"| {name} | {rank:.2f} |" for name, rank in sorted(ranks.items(), key=lambda item: item[1])]
    iman = friedman.iman_davenport
    lines += ["", f"Friedman chi2 = {friedman.statistic:.3f}, p = {friedman.p_value:.3g} over "
                  f"N = {friedman.n_cases} cases and k = {friedman.k} functions (smallest p possible with "
                  f"these N and k: {analysis.smallest_possible_p:.3g}). Iman-Davenport F = "
                  + ("not defined with one case" if iman is None else
                     f"{iman:.3f}, p = {friedman.iman_davenport_p_value:.3g} (an approximation that is "
                     f"anti-conservative with few cases; the chi-square p above is the one interpreted)") + ".", "",
              "## Post-hoc tests", "",
              f"Nemenyi critical difference {nemenyi.critical_difference:.3f} (alpha {analysis.alpha:g}); "
              f"interpreted only after a significant Friedman test. Groups not significantly different: "
              + ("; ".join(", ".join(g) for g in nemenyi.groups) or "none") + ".", "",
              "![critical difference diagram](cd_diagram.png)", ""]
    rows = analysis.wilcoxon_holm
    if rows:
        lines += ["Wilcoxon signed-rank test over cases, each candidate against each baseline, Holm-corrected:", "",
                  "| candidate | baseline | n | p | p (Holm) | direction | significant | note |",
                  "|---|---|---:|---:|---:|---|---|---|"]
        lines += [f"| {r.candidate} | {r.baseline} | {r.n} | {r.p_value:.3g} | {r.p_holm:.3g} | "
                  f"{r.direction} | {'yes' if r.significant else 'no'} | {r.note} |" for r in rows]
        lines += ["", "## Wins against the best baseline", "",
                  "A description of consistency, not a test: cases where the candidate's mean beats the best "
                  "baseline's, and how many of those wins a one-sided Welch test over seeds finds significant "
                  "(uncorrected).", "", "| candidate | wins | cases | significant wins | cases tested |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {w.candidate} | {w.wins} | {w.n_cases} | "
                  f"{'-' if w.significant_wins is None else w.significant_wins} | {w.n_tested} |"
                  for w in analysis.wins]
        lines.append("")
    return lines


# ------------------------------------------------------------------------------------------ shared


def _protocol_lines(results: Results) -> list[str]:
    """Where the runs come from and how they were trained, one line per stored grid."""
    lines = ["## Protocol", ""]
    for spec, source in zip(results.specs, results.sources):
        train = spec.train
        lines.append(f"- `{source}`: {', '.join(spec.tasks)}; seeds {', '.join(map(str, spec.seeds))}; "
                     f"epochs {spec.budget:g}, {train.optimizer} lr {train.lr}, batch {train.batch_size}, "
                     f"{train.schedule} schedule, weight decay {train.weight_decay}, "
                     f"validation fraction {train.val_fraction}")
    functions = "; ".join(f"{f.name} = `{f.canonical}` ({f.role.value})" for f in results.functions)
    return [*lines, f"- functions: {functions}"]


def _notes(notes: Sequence[str]) -> list[str]:
    return ["", "Notes:", "", *[f"- {note}" for note in notes]] if notes else []
