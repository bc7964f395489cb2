"""Small pictures of a function and its slope, as SVG path data, for a table row.

Drawn on the server as numbers only (no text of the function reaches the SVG), so a row needs no script and
no picture file: f and f' on [-4, 4], each scaled into its own box, values beyond ±10 clipped so that one
exploding tail does not flatten the rest, and non-finite points leaving a gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from afos.errors import UserError
from afos.space.probe import derivatives

WIDTH, HEIGHT, CLIP = 120.0, 36.0, 10.0
POINTS = torch.linspace(-4.0, 4.0, 81, dtype=torch.float64)


@dataclass(frozen=True)
class Sketch:
    """SVG path data of f and f' in a WIDTH x HEIGHT box, and the height of y = 0 in each (None when 0 is
    out of the box)."""

    value: str
    slope: str
    value_zero: float | None
    slope_zero: float | None


@lru_cache(maxsize=4096)
def sketch(text: str, params: tuple[tuple[str, float], ...] = ()) -> Sketch | None:
    """The sketch of the function ``text`` (parameters at ``params``); None when it cannot be evaluated."""
    try:
        value, slope = derivatives(text, POINTS, 1, dict(params))
    except (UserError, RuntimeError, ValueError, TypeError):
        return None
    (value_path, value_zero), (slope_path, slope_zero) = _path(value.tolist()), _path(slope.tolist())
    return Sketch(value_path, slope_path, value_zero, slope_zero)


def _path(values: list[float]) -> tuple[str, float | None]:
    finite = [min(CLIP, max(-CLIP, v)) for v in values if math.isfinite(v)]
    if not finite:
        return "", None
    low, high = min(finite), max(finite)
    span = high - low or 1.0
    pad = 0.08 * span

    def y(v: float) -> float:
        return HEIGHT - (min(CLIP, max(-CLIP, v)) - low + pad) / (span + 2 * pad) * HEIGHT

    step = WIDTH / (len(values) - 1)
    parts, pen_down = [], False
    for i, v in enumerate(values):
        if not math.isfinite(v):
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{i * step:.1f} {y(v):.1f}")
        pen_down = True
    return " ".join(parts), (round(y(0.0), 1) if low - pad <= 0.0 <= high + pad else None)
