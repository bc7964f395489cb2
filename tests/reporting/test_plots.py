"""The figures users look at: per-case heatmap scales, reference lines, channel bands, readable y ranges."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from afos.reporting import plots
from afos.reporting.grid_report import _channel_corners

PNG = b"\x89PNG\r\n\x1a\n"


def test_heatmap_colours_are_distances_below_each_rows_best_on_one_scale() -> None:
    gaps = plots._below_row_best(np.array([[0.962, 0.960, 0.95], [0.61, 0.66, math.nan], [0.8, 0.8, 0.8]]))
    np.testing.assert_allclose(gaps[0], [0.0, -0.002, -0.012], atol=1e-12)  # 0.960 and 0.962: close in colour
    np.testing.assert_allclose(gaps[1, :2], [-0.05, 0.0], atol=1e-12)
    assert math.isnan(gaps[1, 2])
    np.testing.assert_allclose(gaps[2], [0.0, 0.0, 0.0])


def test_per_case_heatmap_and_banded_function_plot_write_pngs(tmp_path: Path) -> None:
    heat = plots.heatmap([[0.9, 0.8], [0.3, math.nan]], ["a/mlp", "b/mlp"], ["f", "g"], tmp_path / "h.png",
                         value_label="mean test accuracy", from_row_best=True)
    shapes = plots.function_plot(
        {"initial": ("x*sigmoid(beta*x)", {"beta": 1.0}), "layer 0": ("x*sigmoid(beta*x)", {"beta": 0.9}),
         "exp": "exp(x)"},
        tmp_path / "f.png", reference="initial", bands={"layer 0": [{"beta": 0.6}, {"beta": 1.3}]}, order=2,
    )
    assert heat.read_bytes()[:8] == PNG and shapes.read_bytes()[:8] == PNG


def test_a_dwarfing_curve_does_not_set_the_y_range(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    x = np.linspace(-5, 5, 101)
    for y in (np.maximum(x, 0), np.tanh(x), x / (1 + np.exp(-x)), np.exp(x)):
        ax.plot(x, y)
    plots._robust_ylim(ax)
    low, high = ax.get_ylim()
    assert -1.5 < low < -1.0 and 5.0 < high < 6.0


def test_channel_corners_combine_each_parameters_extremes() -> None:
    corners = _channel_corners({"a": {"mean": 1.0, "min": 0.5, "max": 2.0}, "b": 3.0,
                                "c": {"mean": 0.0, "min": -1.0, "max": 1.0}})
    assert sorted((c["a"], c["b"], c["c"]) for c in corners) == [
        (0.5, 3.0, -1.0), (0.5, 3.0, 1.0), (2.0, 3.0, -1.0), (2.0, 3.0, 1.0)]
