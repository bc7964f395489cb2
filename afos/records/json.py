"""The one JSON normaliser, and the stable hash of a value built on it.

Every value afos writes as JSON (the run database, results files, ``--json`` output) goes through
:func:`plain`, so that enums, tuples, frozen records, numpy numbers and non-finite floats are written one way
everywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any


def plain(value: Any) -> Any:
    """Strict JSON data from ``value``: enums by value, records (dataclasses) and mappings as objects with
    string keys, tuples as lists, paths as text, numpy values via ``tolist``, and non-finite floats as None
    (JSON has no NaN; a missing measurement reads as null).

    Duck-typing ``tolist`` lets numpy scalars and arrays be written without importing numpy.
    """
    if isinstance(value, Enum):
        return plain(value.value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        return plain(to_dict() if to_dict else {f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    raise TypeError(f"cannot write a {type(value).__name__} as JSON: {value!r}")


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` of :func:`plain` of ``value``, refusing NaN (there is none left)."""
    return json.dumps(plain(value), allow_nan=False, **options)


def stable_hash(value: Any) -> str:
    """16 hex digits of sha256 over canonical JSON: sorted keys, integral floats as ints (``epochs = 1`` from
    a flag equals ``1.0`` from TOML), and non-finite floats by name (an infinite limit is not a missing one)."""
    text = json.dumps(plain(_numbers(value)), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _numbers(value: Any) -> Any:
    if isinstance(value, float) and not isinstance(value, Enum):
        return repr(value) if not math.isfinite(value) else int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {key: _numbers(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_numbers(item) for item in value]
    return value
