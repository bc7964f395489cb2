"""What a function looks like to a surrogate: a fixed vector of its values and slopes, at no training cost.

AQuaSurF (Bingham & Miikkulainen, 2023) predicts an activation's accuracy from its outputs on samples of
N(0, 1), the inputs a normalised network feeds it. The vector here holds f and f' on 32 fixed quantiles of
N(0, 1) (deterministic: no random sample to seed or record) and on every fourth point of the fingerprint grid
(the tails), each squashed by ``sign(v) * log1p(|v|)`` so that one exploding function does not dominate a
distance, with non-finite values as 0. Learnable constants take their start value 1.
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from afos.space.probe import PROBE, value_and_slope

#: 32 quantiles of N(0, 1) at the midpoints of equal-probability bins.
NORMAL = math.sqrt(2) * torch.special.erfinv(2 * (torch.arange(32, dtype=torch.float64) + 0.5) / 32 - 1)
#: The points the vector samples: the normal quantiles, then the fingerprint grid's tails and centre.
POINTS = torch.cat([NORMAL, PROBE[::4]])
#: A learnable constant's name in a candidate's canonical text (p0, p1, ...).
CONSTANT = re.compile(r"\bp\d+\b")


def features(text: str) -> np.ndarray:
    """The feature vector of a function given as canonical text (learnable constants p0, p1, ... at 1)."""
    params = {name: 1.0 for name in sorted(set(CONSTANT.findall(text)))}
    values, slopes = value_and_slope(text, POINTS, params)
    vector = torch.cat([values, slopes]).double()
    squashed = torch.sign(vector) * torch.log1p(vector.abs())
    return torch.nan_to_num(squashed, nan=0.0, posinf=0.0, neginf=0.0).numpy()
