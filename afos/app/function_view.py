"""One function, by its text: what ``afos show`` says of it, its values and derivatives at given points,
what ``afos export`` writes, and every run under the root that trained it.

The text comes from a request, so it goes through afos's whitelist parser only (never ``eval`` or
``sympify``), bounded in length before it is parsed and in the number of points it is evaluated at; a
hall-of-fame function's learnable constants ``p0, p1, ...`` take their start value 1, as when they are
trained again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import torch

from afos.activation.spec import ActivationSpec, resolve_activation
from afos.app.folders import READ_ERRORS, run_folders
from afos.errors import UserError
from afos.records.settings import ExportFormat
from afos.reporting.export.form import Form
from afos.reporting.export.formats import render
from afos.space.features import CONSTANT
from afos.space.probe import derivatives, describe
from afos.storage.layout import run_database
from afos.storage.store import RunStore

#: The longest expression text a request may send, and the most points one may ask values at.
MAX_EXPRESSION = 400
MAX_POINTS = 2001
#: The largest value a request may give a learnable constant.
MAX_CONSTANT = 1e6
#: The x range a function's page plots first.
DEFAULT_RANGE = (-5.0, 5.0)


def function_spec(text: str) -> ActivationSpec:
    """The activation a request names (an expression or a family name), checked by the whitelist parser."""
    text = text.strip()
    if not text:
        raise UserError("give an expression in x, e.g. x*sigmoid(x)")
    if len(text) > MAX_EXPRESSION:
        raise UserError(f"the expression is {len(text)} characters long; at most {MAX_EXPRESSION} are read")
    return resolve_activation(text, learnable={name: 1.0 for name in sorted(set(CONSTANT.findall(text)))})


@lru_cache(maxsize=512)
def function_facts(text: str) -> dict[str, Any]:
    """``afos show --json`` of the function, with its activation key and default plot range."""
    spec = function_spec(text)
    facts = describe(spec.expression, spec.typical_values())
    return {**facts, "expression": text, "key": spec.key(), "parameters": spec.typical_values(),
            "range": list(DEFAULT_RANGE)}


def function_values(text: str, points: list[float], given: Mapping[str, str] | None = None) -> dict[str, Any]:
    """f, f' and f'' at ``points`` (at most MAX_POINTS; a non-finite value is null), with the learnable
    constants named in ``given`` at those values (an overlay's sliders) and the others at their start 1."""
    if not points:
        raise UserError("give the points to evaluate at: x=0.5&x=1 or x=0.5,1, or lo, hi and n")
    if len(points) > MAX_POINTS:
        raise UserError(f"{len(points)} points asked for; at most {MAX_POINTS} are evaluated at once")
    if not all(math.isfinite(p) for p in points):
        raise UserError("every point must be a finite number")
    spec = function_spec(text)
    values = {**spec.typical_values(), **_constants(spec, given or {})}
    curves = derivatives(spec.expression, torch.tensor(points, dtype=torch.float64), 2, values)
    value, slope, curvature = ([v if math.isfinite(v) else None for v in curve.tolist()] for curve in curves)
    return {"expression": text, "x": points, "f": value, "df": slope, "d2f": curvature, "parameters": values}


def _constants(spec: ActivationSpec, given: Mapping[str, str]) -> dict[str, float]:
    """The values a request gives the function's learnable constants: finite, at most MAX_CONSTANT in size."""
    chosen = {}
    for name, text in given.items():
        if name not in spec.learnable:
            raise UserError(f"{name} is not a learnable constant of {spec.expression[:100]}")
        try:
            value = float(text)
        except ValueError:
            raise UserError(f"{name} must be a number, got {text[:40]!r}") from None
        if not (math.isfinite(value) and abs(value) <= MAX_CONSTANT):
            raise UserError(f"{name} must be a finite number of size at most {MAX_CONSTANT:g}, got {text[:40]!r}")
        chosen[name] = value
    return chosen


def function_export(text: str, fmt: str) -> str:
    """What ``afos export TEXT --format FMT`` writes."""
    try:
        chosen = ExportFormat(fmt)
    except ValueError:
        raise UserError(f"format {fmt!r} must be one of {', '.join(f.value for f in ExportFormat)}") from None
    spec = function_spec(text)
    return render(Form.from_text(spec.expression, spec.typical_values(), source=f"Exported from {text!r}."), chosen)


@dataclass(frozen=True)
class TrainedIn:
    """What one run under the root holds of a function: its training runs, how many finished ok, the phases
    they served and their mean accuracies (``reason`` instead, for a run that cannot be read)."""

    run: str
    runs: int = 0
    ok: int = 0
    phases: tuple[str, ...] = ()
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "phases": list(self.phases)}


def trained_in(root: Path, key: str) -> list[TrainedIn]:
    """Every run under ``root`` that trained the function whose activation key is ``key`` (one indexed,
    aggregated query per run database, so a function with thousands of runs costs no more than one)."""
    found = []
    for name, folder in run_folders(root).items():
        try:
            with RunStore(run_database(folder), readonly=True) as store:
                runs, ok, phases, val, test = store.function_totals(key)
        except READ_ERRORS as error:
            found.append(TrainedIn(name, reason=f"cannot be read ({error})"))
            continue
        if runs:
            found.append(TrainedIn(name, runs, ok, tuple(phases), val, test))
    return found
