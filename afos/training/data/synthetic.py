"""Synthetic tasks that need a nonlinearity: generated, never downloaded, identical on every machine.

On scikit-learn's digits a linear network is within a point of ReLU, so a search there mostly ranks
functions by noise. Interleaved spirals are the classic opposite: no linear boundary separates the arms,
so a linear network is near chance and the activation's shape decides how much of the curl a small MLP
can follow in a short training. (DeepMind's AlphaEvolve activation search scores candidates on small
synthetic tasks for the same reason.) What such a task cannot show is how a function behaves in a deep
image network; that is the image datasets' job.

The hard tasks (benchmarks/RESULTS.md, "Hard tasks"), where good functions are rare, use three more.
A checkerboard of many cells is the periodic counterpart: the class flips at every cell edge, so a small
network must bend its boundary many times, which a periodic or sharply curved function does in few units
and a ReLU network only with many. Concentric rings ask for a radial boundary that flips several times,
which an even or periodic function draws at once. Two interleaved spiral arms through a plain network four
layers deep ask whether the function lets a deep network without normalisation train at all.

The points come from NumPy's PCG64 generator under a constant seed, whose stream NumPy keeps stable across
versions and platforms, so each task (like digits) is the same for every run and every seed. Each task is
one generator in :data:`GENERATORS`; the registry loads them by name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

SPIRALS = "spirals"
CHECKERBOARD = "checkerboard"
RINGS = "rings"
TWO_SPIRALS = "two-spirals"

_SPIRAL_SEED = 20_261_206
_SPIRAL_ARMS = 3
_SPIRAL_POINTS_PER_ARM = 1_000
_SPIRAL_TURNS = 1.75  # how far each arm winds: more turns, more curl for the network to follow
_SPIRAL_NOISE = 0.06  # standard deviation of the jitter, in units of the outer radius


def make_spirals() -> tuple[torch.Tensor, torch.Tensor]:
    """Three interleaved spiral arms in the plane: 3,000 points (float32, shape (n, 2)) and their arm.

    A point's radius r is uniform in [0.05, 1] and its angle is ``arm·2π/3 + 2π·turns·r``, then jittered.
    """
    rng = np.random.Generator(np.random.PCG64(_SPIRAL_SEED))
    arm = np.repeat(np.arange(_SPIRAL_ARMS), _SPIRAL_POINTS_PER_ARM)
    radius = rng.uniform(0.05, 1.0, size=arm.size)
    angle = arm * (2 * np.pi / _SPIRAL_ARMS) + 2 * np.pi * _SPIRAL_TURNS * radius
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    points += rng.normal(0.0, _SPIRAL_NOISE, size=points.shape)
    return torch.from_numpy(points.astype(np.float32)), torch.from_numpy(arm.astype(np.int64))


_CHECKER_SEED = 20_261_207
_CHECKER_POINTS = 3_000
_CHECKER_CELLS = 4  # cells per side of the square [-1, 1]^2: 16 cells, the class flips at each edge


def make_checkerboard() -> tuple[torch.Tensor, torch.Tensor]:
    """3,000 points uniform in the square [-1, 1]^2 (float32, shape (n, 2)) and their cell's colour (0 or 1)
    on a 4 x 4 checkerboard; no jitter, so a perfect boundary exists and the ceiling is 1."""
    rng = np.random.Generator(np.random.PCG64(_CHECKER_SEED))
    points = rng.uniform(-1.0, 1.0, size=(_CHECKER_POINTS, 2))
    cells = np.floor((points + 1.0) / 2.0 * _CHECKER_CELLS).clip(0, _CHECKER_CELLS - 1).astype(np.int64)
    colour = (cells[:, 0] + cells[:, 1]) % 2
    return torch.from_numpy(points.astype(np.float32)), torch.from_numpy(colour)


_RINGS_SEED = 20_261_208
_RINGS_POINTS = 3_000
_RINGS_BANDS = 4  # bands of equal width in radius, classes alternating


def make_rings() -> tuple[torch.Tensor, torch.Tensor]:
    """3,000 points uniform in the unit disc and their band's parity: four rings of equal width, alternating
    class (0.375 / 0.625 of the area, so a function that learns nothing scores the majority share)."""
    rng = np.random.Generator(np.random.PCG64(_RINGS_SEED))
    radius = np.sqrt(rng.uniform(0.0, 1.0, size=_RINGS_POINTS))
    angle = rng.uniform(0.0, 2 * np.pi, size=_RINGS_POINTS)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    band = np.floor(radius * _RINGS_BANDS).clip(0, _RINGS_BANDS - 1).astype(np.int64)
    return torch.from_numpy(points.astype(np.float32)), torch.from_numpy(band % 2)


_TWO_SPIRALS_SEED = 20_261_209
_TWO_SPIRALS_POINTS_PER_ARM = 1_250
_TWO_SPIRALS_TURNS = 1.75
_TWO_SPIRALS_NOISE = 0.03


def make_two_spirals() -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved spiral arms (2,500 points, 1.75 turns, little jitter) and their arm; as
    :func:`make_spirals` with two arms half a turn apart."""
    rng = np.random.Generator(np.random.PCG64(_TWO_SPIRALS_SEED))
    arm = np.repeat(np.arange(2), _TWO_SPIRALS_POINTS_PER_ARM)
    radius = rng.uniform(0.05, 1.0, size=arm.size)
    angle = arm * np.pi + 2 * np.pi * _TWO_SPIRALS_TURNS * radius
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    points += rng.normal(0.0, _TWO_SPIRALS_NOISE, size=points.shape)
    return torch.from_numpy(points.astype(np.float32)), torch.from_numpy(arm.astype(np.int64))


#: Every generated task by dataset name: a function of nothing that returns (points, classes).
GENERATORS: dict[str, Callable[[], tuple[torch.Tensor, torch.Tensor]]] = {
    SPIRALS: make_spirals,
    CHECKERBOARD: make_checkerboard,
    RINGS: make_rings,
    TWO_SPIRALS: make_two_spirals,
}
SYNTHETIC_DATASETS: tuple[str, ...] = tuple(GENERATORS)
