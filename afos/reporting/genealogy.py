"""A function's genealogy: the candidates it descends from, read from the lineage each candidate records
(how it was made, by which operators, from which parents), as indented text and as a picture.

The family tree of an evolved function says whether the evolution built it (offspring of offspring of
the seeds) or merely drew it (a random immigrant): the question a random-search baseline asks of a whole
run, asked of its winner.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from afos.records.search import CandidateRecord
from afos.reporting.plots import new_figure, save_figure

#: Generations traced back from the function; older ancestors are cut with a note.
MAX_DEPTH = 8


@dataclass(frozen=True)
class Ancestor:
    """One candidate in a genealogy, at ``depth`` steps from the function (0: the function itself)."""

    record: CandidateRecord
    depth: int
    parent_of: str | None  # the key of the child it is a parent of (None for the function)


def ancestors(candidates: Mapping[str, CandidateRecord], key: str) -> list[Ancestor]:
    """The function of ``key`` and its ancestors, depth first (each shown once, at its first place)."""
    found: list[Ancestor] = []
    seen: set[str] = set()

    def visit(current: str, depth: int, child: str | None) -> None:
        record = candidates.get(current)
        if record is None or current in seen or depth > MAX_DEPTH:
            return
        seen.add(current)
        found.append(Ancestor(record, depth, child))
        for parent in record.lineage.parents if record.lineage else ():
            visit(parent, depth + 1, current)

    visit(key, 0, None)
    return found


def genealogy_lines(candidates: Mapping[str, CandidateRecord], key: str) -> list[str]:
    """The genealogy as indented text: ``canonical  [generation g, how it was made]`` per line."""
    lines = []
    for ancestor in ancestors(candidates, key):
        record, lineage = ancestor.record, ancestor.record.lineage
        how = lineage.describe() if lineage else "lineage not recorded"
        lines.append(f"{'    ' * ancestor.depth}{'└─ ' if ancestor.depth else ''}{record.canonical}  "
                     f"[generation {record.generation + 1}, {how}]")
    return lines


def genealogy_plot(candidates: Mapping[str, CandidateRecord], key: str, path: str | os.PathLike[str]) -> Path:
    """The genealogy as a picture: generation from left to right, each candidate a labelled dot, a line from
    each parent to its child, the function itself in bold at the right."""
    family = ancestors(candidates, key)
    rows: dict[int, list[str]] = {}
    for ancestor in family:
        rows.setdefault(ancestor.record.generation, []).append(ancestor.record.key)
    place = {k: (generation + 1, index - (len(keys) - 1) / 2) for generation, keys in rows.items()
             for index, k in enumerate(keys)}
    figure, ax = new_figure(max(5.0, 1.8 * len(rows) + 2.5), max(2.5, 0.7 * max(len(k) for k in rows.values()) + 1.5))
    for ancestor in family:
        x, y = place[ancestor.record.key]
        if ancestor.parent_of is not None:
            cx, cy = place[ancestor.parent_of]
            ax.annotate("", (cx, cy), (x, y), arrowprops={"arrowstyle": "->", "color": "0.5"})
        lineage = ancestor.record.lineage
        ax.scatter([x], [y], s=30, color="tab:blue" if ancestor.depth else "tab:red", zorder=3)
        text = ancestor.record.canonical if len(ancestor.record.canonical) <= 30 else ancestor.record.canonical[:29] + "…"
        ax.annotate(f"{text}\n{lineage.describe() if lineage else '?'}", (x, y), textcoords="offset points",
                    xytext=(0, 7), ha="center", fontsize=7, fontweight="bold" if ancestor.depth == 0 else "normal")
    ax.set_xlabel("generation")
    ax.set_yticks([])
    ax.set_xticks(sorted({x for x, _ in place.values()}))
    ax.margins(x=0.25, y=0.35)
    ax.set_title(f"Genealogy of {family[0].record.canonical}" if family else "Genealogy")
    return save_figure(figure, path)
