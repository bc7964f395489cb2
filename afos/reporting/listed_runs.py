"""The runs a search report lists one by one: those of a generation that did not complete, and every failed
run with its reason; so that the report of a stopped or troubled search says what happened."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from afos.records.evaluation import Evaluation
from afos.reporting.tables import format_number

#: Runs listed one by one in the report's tables of pending and failed runs; the rest are counted.
LISTED = 20


def pending_lines(pending: Sequence[Evaluation]) -> list[str]:
    """The runs of the generation the search was in when it stopped: trained, but in no ranking yet."""
    if not pending:
        return []
    generation = max(r.generation or 0 for r in pending) + 1
    return ["## Runs of the unfinished generation", "",
            f"Generation {generation} stopped before it completed; its {len(pending)} finished training run(s) are "
            "kept and read back when the search resumes:", "", *_run_table(pending)]


def failure_lines(failed: Sequence[Evaluation]) -> list[str]:
    """Every failed run (search, baselines, confirmation), by status, with its reason."""
    if not failed:
        return []
    counts = ", ".join(f"{n} {status}" for status, n in sorted(Counter(r.status.value for r in failed).items()))
    return ["## Failed runs", "", f"{len(failed)} training run(s) failed ({counts}); a failed run scores 0 and its "
            "function is never ranked:", "", *_run_table(failed)]


def _run_table(runs: Sequence[Evaluation]) -> list[str]:
    lines = ["| function | phase | seed | status | val acc | reason |", "|---|---|---:|---|---:|---|"]
    lines += [f"| `{r.expression}` | {r.phase.value} | {r.seed} | {r.status.value} | {format_number(r.val_accuracy)} "
              f"| {_cell(r.reason)} |" for r in runs[:LISTED]]
    if len(runs) > LISTED:
        lines.append(f"| … {len(runs) - LISTED} more in afos.db | | | | | |")
    return [*lines, ""]


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, no column breaks, at most 120 characters."""
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= 120 else flat[:119] + "…"
