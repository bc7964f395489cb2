"""What the statistics share: the result matrix, finite means, and results that print as strict JSON."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import numpy as np


def finite_mean(values: Iterable[Any]) -> float | None:
    """Mean of the finite numbers among ``values`` (None and NaN are failed runs); None if there are none."""
    numbers = [float(v) for v in values if v is not None and math.isfinite(v)]
    return sum(numbers) / len(numbers) if numbers else None

# Differences smaller than this are floating-point residue of subtracting decimal accuracies

def _json_value(value: Any) -> Any:
    """Make one value strict-JSON-safe: numpy scalars become Python ones, NaN/inf become None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


class Result:
    """Mixin giving result dataclasses a JSON-ready `to_dict()`."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for `json.dumps(..., allow_nan=False)`; non-finite floats become None."""
        return _json_value(asdict(self))  # type: ignore[call-overload]



def as_matrix(matrix: Any) -> np.ndarray:
    """Validate a (cases x functions) result matrix and return it as float64."""
    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2 or values.shape[0] < 1 or values.shape[1] < 2:
        raise ValueError(f"expected a (cases x functions) matrix, >= 1 case and >= 2 functions; got {values.shape}")
    return values
