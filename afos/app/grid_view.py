"""One ``afos evaluate`` or ``afos compare`` run as its page and the API show it (read-only, cached by
version like a search's view).

The table is the grid's cells; where the grid holds two or more functions, the same statistics
``afos compare`` writes (average ranks, Friedman, Nemenyi, Wilcoxon-Holm) and their plain findings. The
heatmap is drawn as the table itself, each cell shaded by how far it falls below its row's best, so it is
live while the grid runs; the critical-difference diagram is the picture the run's report wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from afos.app.folders import run_files
from afos.errors import UserError
from afos.grid.analysis import GridAnalysis, analyse
from afos.grid.sources import load_results
from afos.records.runs import RunSummary
from afos.reporting.grid_report import CellLine, cell_lines
from afos.runs.listing import summary
from afos.storage.layout import run_database

#: Shading steps of the heatmap: a cell's shortfall from its row's best, in accuracy points.
SHADES = (0.0, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class GridView:
    """Everything an evaluate or compare page shows: ``analysis`` is None for a grid of one function (or
    ``note`` says why there are no statistics)."""

    summary: RunSummary
    lines: tuple[CellLine, ...]
    analysis: GridAnalysis | None
    note: str
    files: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary.to_dict(), "cells": [line.to_dict() for line in self.lines],
                "analysis": self.analysis.to_dict() if self.analysis else None, "note": self.note,
                "files": list(self.files)}

    def heatmap(self) -> list[tuple[str, list[tuple[float | None, int]]]]:
        """Per case, each function's mean test accuracy with its shade (0: the row's best, up to
        len(SHADES): furthest below it; a failed cell is None)."""
        if self.analysis is None:
            return []
        rows = []
        for case, values in zip(self.analysis.cases, self.analysis.matrix):
            best = max((v for v in values if v is not None), default=None)
            rows.append((case, [(v, _shade(best - v) if best is not None and v is not None else 0) for v in values]))
        return rows


def _shade(shortfall: float) -> int:
    return sum(100 * shortfall > step for step in SHADES)


@lru_cache(maxsize=32)
def grid_view(folder: Path, version: str) -> GridView:
    """The view of the evaluate/compare run in ``folder`` at ``version``."""
    row = summary(run_database(folder))
    results = load_results([folder])
    try:
        analysis, note = analyse(results), ""
    except UserError as error:
        analysis, note = None, f"no statistics: {error}"
    return GridView(row, tuple(cell_lines(results)), analysis, note, tuple(run_files(folder)))
