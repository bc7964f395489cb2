"""What the statistics share: the result matrix, finite means, and results that print as strict JSON."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import fields
from typing import Any

import numpy as np

from afos.records.json import plain


def finite_mean(values: Iterable[Any]) -> float | None:
    """Mean of the finite numbers among ``values`` (None and NaN are failed runs); None if there are none."""
    numbers = [float(v) for v in values if v is not None and math.isfinite(v)]
    return sum(numbers) / len(numbers) if numbers else None


class Result:
    """Mixin giving the statistics' result records a JSON-ready ``to_dict()`` (numpy numbers as Python ones,
    non-finite floats as None)."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


def as_matrix(matrix: Any) -> np.ndarray:
    """Validate a (cases x functions) result matrix and return it as float64."""
    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2 or values.shape[0] < 1 or values.shape[1] < 2:
        raise ValueError(f"expected a (cases x functions) matrix, >= 1 case and >= 2 functions; got {values.shape}")
    return values
