"""PNG figures: Demšar critical-difference diagrams, annotated result heatmaps and function shapes.

Figures are built on matplotlib's object API with the Agg canvas rather than pyplot, so plotting never
touches global state, never opens a window, and is safe from worker threads or headless CI.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from afos.stats.ranks import nemenyi_groups
from afos.storage.atomic import replaced_atomically

_ROW_STEP = 0.3  # vertical distance between label rows in a CD diagram, in axis units
_BAR_STEP = 0.1  # vertical distance between stacked group bars


def new_figure(width: float, height: float) -> tuple[Figure, Any]:
    """A figure attached to an Agg canvas, with one axes."""
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot(1, 1, 1)


def save_figure(figure: Figure, path: str | os.PathLike[str]) -> Path:
    """Write the figure as PNG (replaced atomically), creating parent folders; tight bounds keep long labels
    inside the image."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(target) as partial:
        figure.savefig(partial, format="png", dpi=150, bbox_inches="tight")
    return target


# ------------------------------------------------------------------------------------------- CD diagram


def _draw_rank_axis(ax: Any, k: int) -> None:
    """The horizontal rank axis at y = 0 with integer ticks; rank 1 (best) on the right, as in Demšar."""
    ax.plot([1, k], [0, 0], color="black", linewidth=1)
    for tick in range(1, k + 1):
        ax.plot([tick, tick], [0, 0.08], color="black", linewidth=1)
        ax.text(tick, 0.13, str(tick), ha="center", va="bottom", fontsize=9)


def _draw_cd_interval(ax: Any, k: int, cd: float) -> None:
    """The CD as a bracketed segment above the axis, starting at its worst (left) end."""
    y = 0.5
    ax.plot([k, k - cd], [y, y], color="black", linewidth=1.2)
    for x in (k, k - cd):
        ax.plot([x, x], [y - 0.04, y + 0.04], color="black", linewidth=1.2)
    ax.text(k - cd / 2, y + 0.06, f"CD = {cd:.3f}", ha="center", va="bottom", fontsize=9)


def _draw_labels(ax: Any, ordered: list[tuple[str, float]], edge: float, top: float, right: bool) -> float:
    """Elbow lines from each rank down to a label row at the figure side; returns the lowest y used."""
    y = top
    for name, rank in ordered:
        y -= _ROW_STEP
        ax.plot([rank, rank, edge], [0, y, y], color="black", linewidth=0.8)
        text = f"  {rank:.2f}  {name}" if right else f"{name}  {rank:.2f}  "
        ax.text(edge, y, text, ha="left" if right else "right", va="center", fontsize=9)
    return y


def critical_difference_diagram(
    avg_ranks: Mapping[str, float],
    cd: float,
    path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """Demšar (2006) critical-difference diagram of average ranks (lower is better) written as a PNG.

    Functions hang from the rank axis with the better half labelled on the right and the worse half on the
    left; thick bars join groups not significantly different (ranks within less than `cd`, see
    `afos.stats.nemenyi_groups`); the CD itself is drawn above the axis for scale.
    """
    ranks = {str(name): float(rank) for name, rank in avg_ranks.items()}
    k = len(ranks)
    if k < 2:
        raise ValueError("a critical-difference diagram needs at least two functions")
    by_rank = sorted(ranks.items(), key=lambda item: item[1])
    groups = nemenyi_groups(ranks, cd)
    bars_bottom = -_BAR_STEP * (len(groups) + 1)
    right_half, left_half = by_rank[: math.ceil(k / 2)], by_rank[math.ceil(k / 2) :][::-1]

    figure, ax = new_figure(7.0, 1.4 + 0.35 * (len(right_half) + len(groups) * 0.4))
    _draw_rank_axis(ax, k)
    _draw_cd_interval(ax, k, cd)
    low = min(_draw_labels(ax, right_half, 1 - 0.3, bars_bottom, right=True),
              _draw_labels(ax, left_half, k + 0.3, bars_bottom, right=False))
    for index, group in enumerate(groups):
        y = -_BAR_STEP * (index + 1)
        ax.plot([ranks[group[0]] - 0.03, ranks[group[-1]] + 0.03], [y, y], color="black", linewidth=3.5,
                solid_capstyle="round")

    ax.set_xlim(max(k, k - cd) + 0.35, min(1.0, k - cd) - 0.35)  # reversed: best on the right
    ax.set_ylim(low - _ROW_STEP / 2, 0.8)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(figure, path)


# --------------------------------------------------------------------------------------------- heatmap


def _text_colour(rgba: tuple[float, float, float, float]) -> str:
    """Black on light cells, white on dark ones (perceived luminance)."""
    red, green, blue, _ = rgba
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"


def _below_row_best(values: np.ndarray) -> np.ndarray:
    """Each value minus the best (highest finite) value of its row: 0 for a row's best, negative below it."""
    best = np.array([row[np.isfinite(row)].max() if np.isfinite(row).any() else np.nan for row in values])
    return values - best[:, None]


def heatmap(
    matrix: Any,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: str | os.PathLike[str],
    title: str | None = None,
    fmt: str = "{:.3f}",
    *,
    value_label: str = "value",
    from_row_best: bool = False,
) -> Path:
    """Annotated heatmap (e.g. cases x functions accuracies) written as a PNG; NaN cells read "failed".

    With ``from_row_best`` a cell's colour is its distance below the best of its row (a case), on one scale
    for the whole figure: cases differ in difficulty far more than functions differ within one, so raw
    values would paint an easy and a hard dataset each one flat colour, while scaling each row on its own
    would paint 0.960 and 0.962 as opposite ends of the colour map. The cells print the values; the colour
    bar says which scale it shows (``value_label``).
    """
    values = np.asarray(matrix, dtype=float)
    if values.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"matrix shape {values.shape} does not match {len(row_labels)} x {len(col_labels)} labels")
    colours = _below_row_best(values) if from_row_best else values
    finite = colours[np.isfinite(colours)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    norm = Normalize(min(low, high - 1e-9), high)
    figure, ax = new_figure(max(4.0, 1.0 * len(col_labels) + 2.5), max(2.5, 0.45 * len(row_labels) + 1.5))
    cmap = colormaps["viridis"].with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(colours), cmap=cmap, norm=norm, aspect="auto")
    for (row, col), value in np.ndenumerate(values):
        failed = not math.isfinite(value)
        colour = "black" if failed else _text_colour(cmap(norm(colours[row, col])))
        ax.text(col, row, "failed" if failed else fmt.format(value), ha="center", va="center", fontsize=8,
                color=colour)
    ax.set_xticks(range(len(col_labels)), labels=list(col_labels), rotation=45, ha="right")
    ax.set_yticks(range(len(row_labels)), labels=list(row_labels))
    bar = figure.colorbar(image, ax=ax)
    bar.set_label(f"{value_label}: difference from the row's best" if from_row_best else value_label, fontsize=9)
    if title:
        ax.set_title(title)
    return save_figure(figure, path)


# ------------------------------------------------------------------------------------ function shapes


#: The slopes shown beside a reference (ReLU's 0 and 1): where the gradients a training passes live. A
#: slope far outside it (an exponential's, a clamp's spike) leaves the frame visibly instead of flattening
#: every other slope into a line.
SLOPE_FRAME = (-1.0, 2.0)


def function_plot(
    functions: Mapping[str, object],
    path: str | os.PathLike[str],
    *,
    order: int = 0,
    params: Mapping[str, float] | None = None,
    x_range: tuple[float, float] = (-5.0, 5.0),
    title: str | None = None,
    reference: str | None = None,
    bands: Mapping[str, Sequence[Mapping[str, float]]] | None = None,
) -> Path:
    """Plot functions (label -> expression, or (expression, parameter values)) and their derivatives up to
    ``order`` (1: f', 2: f' and f'') in panels beside. ``params`` are the parameter values of functions given
    without their own.

    ``reference`` names the function to draw as a thin dashed black line on top (e.g. ReLU), and the others
    are drawn from thick to thin, so that a function equal to another (or to the reference) on part of the
    range still shows. ``bands`` shades, around a function's line, the range its curve spans over several
    parameter sets (e.g. the per-channel extremes of learned parameters).

    Derivatives come from autograd through the same torch lowering used in training, so a kink shows as
    the jump the optimiser actually sees.
    """
    import torch

    from afos.space.probe import derivatives as curves_of

    points = torch.linspace(x_range[0], x_range[1], 801, dtype=torch.float64)
    panels = ["f(x)", "f'(x)", "f''(x)"][: order + 1]
    figure = Figure(figsize=(4.2 * len(panels), 3.8), layout="constrained")  # room for suptitle and titles
    FigureCanvasAgg(figure)
    axes = [figure.add_subplot(1, len(panels), i + 1) for i in range(len(panels))]
    others = [label for label in functions if label != reference]
    for label, function in functions.items():
        expr, values = function if isinstance(function, tuple) else (function, params)
        curves = [c.numpy() for c in curves_of(expr, points, order, values)]
        style: dict[str, Any]
        if label == reference:
            style = {"color": "black", "linestyle": "--", "linewidth": 1.0, "zorder": 4}
        else:
            style = {"linewidth": max(0.8, 3.2 - 0.6 * others.index(label)), "zorder": 3}
        for index, (ax, curve) in enumerate(zip(axes, curves)):
            (line,) = ax.plot(points.numpy(), curve, label=label, **style)
            if bands and label in bands:
                spread = np.array([curves_of(expr, points, order, variant)[index].numpy() for variant in bands[label]])
                ax.fill_between(points.numpy(), spread.min(0), spread.max(0), color=line.get_color(), alpha=0.2,
                                linewidth=0, zorder=2)
    at = list(functions).index(reference) if reference is not None and reference in functions else None  # its line in every panel
    for ax, name in zip(axes, panels):
        if name == "f'(x)" and at is not None:
            ax.set_ylim(*SLOPE_FRAME)
        else:
            _robust_ylim(ax, reference=at)
        ax.set_title(name)
        ax.axhline(0, color="0.75", linewidth=0.8)
        ax.axvline(0, color="0.75", linewidth=0.8)
        ax.grid(alpha=0.3)
        ax.set_xlabel("x")
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", fontsize=8,
                  ncols=min(3, len(functions)))  # below the panels: never over a curve
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)


def _robust_ylim(ax: Any, ratio: float = 10.0, reference: int | None = None) -> None:
    """Frame the curves of typical size when some dwarf them (e.g. an exponential beside ReLU, which would
    flatten every other function into a line): curves whose range exceeds ``ratio`` times the typical
    range are left out of the y limits, and visibly leave the frame. The typical range is the reference
    curve's (index ``reference`` among the lines, e.g. ReLU) when there is one with a range, else the
    median: two exploding finalists of five would otherwise set the scale."""
    curves = [np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()]
    curves = [c[np.isfinite(c)] for c in curves]
    spans = np.array([np.ptp(c) if c.size else 0.0 for c in curves])
    typical = np.median(spans[spans > 0]) if (spans > 0).any() else 0.0
    if reference is not None and spans[reference] > 0:
        typical = spans[reference]
    kept = [c for c, span in zip(curves, spans) if c.size and span <= ratio * typical]
    if typical == 0.0 or len(kept) == len([c for c in curves if c.size]) or not kept:
        return
    low, high = min(c.min() for c in kept), max(c.max() for c in kept)
    pad = 0.08 * max(high - low, 1e-9)
    ax.set_ylim(low - pad, high + pad)


def line_plot(
    x: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    path: str | os.PathLike[str],
    *,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    references: Mapping[str, float] | None = None,
) -> Path:
    """Several named series over a shared x axis (e.g. best/median fitness per generation); ``references``
    are drawn as labelled horizontal dashed lines (e.g. ReLU's fitness)."""
    figure, ax = new_figure(6.0, 3.8)
    for label, values in series.items():
        ax.plot(list(x), [math.nan if v is None else v for v in values], marker="o", markersize=3, label=label)
    for label, value in (references or {}).items():
        ax.axhline(value, color="black", linestyle="--", linewidth=1.0, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(x) == 1:  # one point: matplotlib's own margin would tick 0.95 ... 1.05
        ax.set_xticks(list(x))
    if ax.get_legend_handles_labels()[0]:  # nothing to name when every run failed before its first point
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return save_figure(figure, path)


def front_plot(
    points: Sequence[tuple[float, float]],
    front: Sequence[tuple[float, float, str]],
    path: str | os.PathLike[str],
    *,
    ylabel: str = "fitness",
    reference: tuple[str, float] | None = None,
    xlabel: str = "size (nodes of the canonical expression)",
    title: str = "Complexity against fitness",
    marks: Sequence[tuple[str, float, float]] = (),
) -> Path:
    """A front of fitness against a price (size, cost): every function as a grey dot, the Pareto front as a
    labelled step line (the best fitness reached at each price or below), ``reference`` (e.g. ReLU's fitness)
    as a dashed line and ``marks`` (name, price, fitness: the baselines) as labelled diamonds."""
    figure, ax = new_figure(7.0, 4.2)
    if points:
        ax.scatter([x for x, _ in points], [value for _, value in points], s=12, color="0.6", zorder=2,
                   label="functions trained")
    if front:
        xs, values = [x for x, _, _ in front], [value for _, value, _ in front]
        ax.step(xs, values, where="post", color="tab:blue", linewidth=1.5, zorder=3, label="front")
        ax.scatter(xs, values, s=24, color="tab:blue", zorder=4)
        for index, (x, value, text) in enumerate(front):
            last = index == len(front) - 1
            ax.annotate(text if len(text) <= 28 else text[:27] + "…", (x, value), textcoords="offset points",
                        xytext=(-4 if last else 4, -10), ha="right" if last else "left", fontsize=7)
    for name, x, value in marks:
        ax.scatter([x], [value], marker="D", s=36, color="tab:orange", edgecolor="black", zorder=5)
        ax.annotate(name, (x, value), textcoords="offset points", xytext=(5, 4), fontsize=8, color="tab:orange")
    if reference is not None:
        ax.axhline(reference[1], color="black", linestyle="--", linewidth=1.0, label=reference[0])
    _frame_the_top([value for _, value in points], [value for _, value, _ in front] +
                   [value for _, _, value in marks] + ([reference[1]] if reference else []), ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if all(float(x).is_integer() for x, _ in points):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    return save_figure(figure, path)


def _frame_the_top(values: Sequence[float], kept: Sequence[float], ax: Any) -> None:
    """Frame the upper three quarters of ``values`` and all of ``kept``: the front is what matters, and one
    function that barely trained would otherwise squash it into a line at the top (lower dots leave the
    frame visibly)."""
    if not values:
        return
    low = min(float(np.percentile(values, 25)), *kept) if kept else float(np.percentile(values, 25))
    high = max(*values, *kept)
    pad = 0.1 * max(high - low, 1e-3)
    ax.set_ylim(low - pad, high + pad)
