"""Query parameters as afos reads them: bounded, typed, and a :class:`~afos.errors.UserError` naming the
parameter when they are not what a route takes (the API answers it with 400)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from afos.app.function_view import MAX_POINTS
from afos.errors import UserError
from afos.records.evaluation import Phase, Status
from afos.records.runs import RunKind, RunStatus


def integer(request: Request, name: str, default: int, low: int, high: int) -> int:
    """A bounded integer query parameter."""
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{name} must be a whole number, got {text[:40]!r}") from None
    if not low <= value <= high:
        raise UserError(f"{name} must be between {low} and {high}, got {value}")
    return value


def choice(request: Request, name: str, kind: type[Phase] | type[Status] | type[RunKind] | type[RunStatus]) -> Any:
    """An enum query parameter (None when absent or empty: a form's "any" sends ``phase=``)."""
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise UserError(f"{name} must be one of {', '.join(m.value for m in kind)}, got {text[:40]!r}") from None


def points(request: Request) -> list[float]:
    """Evaluation points: ``x=0.5&x=1``, ``x=0.5,1`` or ``lo``, ``hi`` and ``n`` (evenly spaced)."""
    texts = [part for value in request.query_params.getlist("x") for part in value.split(",") if part.strip()]
    if len(texts) > MAX_POINTS:
        raise UserError(f"{len(texts)} points asked for; at most {MAX_POINTS} are evaluated at once")
    try:
        if texts:
            return [float(t) for t in texts]
        if "lo" in request.query_params or "hi" in request.query_params:
            lo, hi = float(request.query_params.get("lo", "-5")), float(request.query_params.get("hi", "5"))
            n = integer(request, "n", 401, 2, MAX_POINTS)
            if not lo < hi:
                raise UserError(f"lo must be below hi, got {lo} and {hi}")
            return [lo + (hi - lo) * i / (n - 1) for i in range(n)]
    except ValueError:
        raise UserError("every point must be a number") from None
    return []


def expression(request: Request) -> str:
    text = request.query_params.get("expr")
    if text is None:
        raise UserError("give the function as expr=..., e.g. expr=x*sigmoid(x)")
    return text


def run_filters(request: Request) -> dict[str, Any]:
    """The runs list's filters: ``kind``, ``status`` and ``name`` (a part of the run's name, at most 100
    characters), each None when absent or empty."""
    name = request.query_params.get("name") or None
    if name is not None and len(name) > 100:
        raise UserError(f"name must be at most 100 characters, got {len(name)}")
    return {"kind": choice(request, "kind", RunKind), "status": choice(request, "status", RunStatus), "name": name}
