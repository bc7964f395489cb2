"""Synthetic tasks that need a nonlinearity: generated, never downloaded, identical on every machine.

On scikit-learn's digits a linear network is within a point of ReLU, so a search there mostly ranks
functions by noise. Interleaved spirals are the classic opposite: no linear boundary separates the arms,
so a linear network is near chance and the activation's shape decides how much of the curl a small MLP
can follow in a short training. (DeepMind's AlphaEvolve activation search scores candidates on small
synthetic tasks for the same reason.) What such a task cannot show is how a function behaves in a deep
image network; that is the image datasets' job.

The points come from NumPy's PCG64 generator under a constant seed, whose stream NumPy keeps stable across
versions and platforms, so the task (like digits) is the same for every run and every seed.
"""

from __future__ import annotations

import numpy as np
import torch

SPIRALS = "spirals"
SYNTHETIC_DATASETS: tuple[str, ...] = (SPIRALS,)

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
