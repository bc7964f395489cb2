"""The JSON API under ``/api/``: what the pages show, for programs.

Every route reads; none writes. Each route's docstring is its documentation (``GET /api`` lists them, and
``docs/serve.md`` is generated from the same table). Numbers are plain JSON (a missing measurement is
``null``); times are ISO 8601 in UTC. Every route that answers a table answers it as CSV with
``format=csv`` (nested values as dotted columns, lists as JSON text): the pages' download links. Errors
are ``{"error": "..."}`` with 400 (a bad parameter), 404 (no such run) or 422 (the run's files cannot be
read).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from afos.app.folders import root_version, version
from afos.app.function_pages import gallery_json
from afos.app.function_view import function_export, function_facts, function_values, trained_in
from afos.app.grid_view import GridView
from afos.app.params import choice, expression, integer, points, run_filters
from afos.app.search_view import SearchView
from afos.app.tables import csv_text
from afos.app.views import UnknownRun, Unreadable, evaluation_page, find_run, listed_runs, read_view
from afos.errors import UserError
from afos.records.evaluation import Phase, Status
from afos.records.json import dumps
from afos.space.features import CONSTANT

#: The most evaluations one page of the API returns.
MAX_PAGE = 1000


class Json(JSONResponse):
    """JSON through afos's one normaliser: enums by value, records as objects, NaN as null."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def _root(request: Request) -> Path:
    return request.app.state.root


def _error(status: int, message: str) -> Json:
    return Json({"error": message}, status_code=status)


def _table(request: Request, name: str, rows: list[dict[str, Any]], **more: Any) -> Response:
    """A table as JSON (``{name: rows, **more}``), or as a CSV download with ``format=csv``."""
    if request.query_params.get("format") == "csv":
        return PlainTextResponse(csv_text(rows)[0], media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return Json({name: rows, **more})


def _guarded(route: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """The route with afos's errors as JSON answers (bad input 400, unknown run 404, unreadable run 422)."""

    def guarded(request: Request) -> Response:
        try:
            return route(request)
        except UnknownRun as error:
            return _error(404, f"no run {error.args[0]!r} under the results root")
        except Unreadable as error:
            return _error(422, f"the run cannot be read: {error}")
        except UserError as error:
            return _error(400, str(error))

    guarded.__doc__ = route.__doc__
    guarded.__name__ = route.__name__
    return guarded


# --- runs --------------------------------------------------------------------------------------------


def runs(request: Request) -> Response:
    """Every run under the root, newest first: kind, status (with the liveness rules of ``afos runs``),
    progress, best function, start; an unreadable run with its reason. Filter by ``kind`` (search, evaluate,
    compare), ``status`` and ``name`` (a part of the run's name)."""
    root = _root(request)
    rows = [row.to_dict() for row in listed_runs(root, **run_filters(request))]
    return _table(request, "runs", rows, version=root_version(root))


def runs_version(request: Request) -> Response:
    """A short text that changes when a run appears, goes, or changes under the root: the runs page polls
    it, so a run started after the page loaded appears."""
    return Json({"version": root_version(_root(request))})


def run(request: Request) -> Response:
    """One run's whole view: its summary and, for a search, its generations, hall of fame, baselines,
    finalists, verdict and failed runs (the first 200); for an evaluate or compare run its cells and
    statistics."""
    return Json(read_view(find_run(_root(request), request.path_params["run"])).to_dict())


def run_version(request: Request) -> Response:
    """A short text that changes whenever the run's process writes: poll it, then fetch what changed."""
    return Json({"version": version(find_run(_root(request), request.path_params["run"]))})


def evaluations(request: Request) -> Response:
    """The run's training runs in the order they were stored, ``limit`` (≤ 1000, default 100) at a time
    after row ``after``; filter by ``phase`` (search, baseline, confirm, grid) and ``status`` (ok, diverged,
    rejected, timeout, oom, error). Pass the answer's ``next_after`` as ``after`` for the next page, or to
    learn what a live run has written since."""
    folder = find_run(_root(request), request.path_params["run"])
    after, limit = integer(request, "after", 0, 0, 2**62), integer(request, "limit", 100, 1, MAX_PAGE)
    phase, status = choice(request, "phase", Phase), choice(request, "status", Status)
    if request.query_params.get("format") == "csv":
        return _csv_stream(folder, after, phase, status)
    page = evaluation_page(folder, after=after, limit=limit, phase=phase, status=status)
    return Json({"evaluations": [{"id": i, **e.to_dict()} for i, e in page],
                 "next_after": page[-1][0] if page else after})


def _csv_stream(folder: Path, after: int, phase: Phase | None, status: Status | None) -> Response:
    """Every training run after ``after`` as one CSV download, read a page at a time (a run may hold
    100,000)."""
    def pages() -> Iterator[str]:
        start, columns = after, None
        while page := evaluation_page(folder, after=start, limit=MAX_PAGE, phase=phase, status=status):
            text, columns = csv_text([{"id": i, **e.to_dict()} for i, e in page], columns)
            yield text
            start = page[-1][0]

    return StreamingResponse(pages(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="evaluations.csv"'})


def _search(request: Request) -> SearchView:
    view = read_view(find_run(_root(request), request.path_params["run"]))
    if not isinstance(view, SearchView):
        raise UserError(f"{request.path_params['run']} is not a search run")
    return view


def generations(request: Request) -> Response:
    """A search's generations: best, mean and median fitness, counts (proposed, duplicate, screened,
    trained, reused, failed, ranked_out), the surrogate's rank correlation, candidates trained so far and the
    best fitness so far (the anytime curve)."""
    return _table(request, "generations", [g.to_dict() for g in _search(request).generations])


def hall_of_fame(request: Request) -> Response:
    """A search's hall of fame, best first, with each function's lineage and size."""
    return _table(request, "hall_of_fame", [row.to_dict() for row in _search(request).hall])


def finalists(request: Request) -> Response:
    """A search's confirmation: finalists and baselines on fresh seeds (intervals, deltas against ReLU and
    the strongest baseline, Holm-corrected p), the baselines' search runs, and the verdict sentence."""
    view = _search(request)
    return _table(request, "finalists", [f.to_dict() for f in view.finalists],
                  baselines=[vars(b) for b in view.baselines], verdict=view.verdict)


def grid(request: Request) -> Response:
    """An evaluate or compare run's cells and statistics (average ranks, Friedman, post-hoc tests,
    findings)."""
    view = read_view(find_run(_root(request), request.path_params["run"]))
    if not isinstance(view, GridView):
        raise UserError(f"{request.path_params['run']} is not an evaluate or compare run")
    return Json(view.to_dict())


# --- functions ---------------------------------------------------------------------------------------


def describe(request: Request) -> Response:
    """What ``afos show`` says of ``expr``: canonical form, LaTeX, fingerprint, screening verdict, shape;
    and every run under the root that trained it."""
    facts = function_facts(expression(request))
    return Json({**facts, "runs": [t.to_dict() for t in trained_in(_root(request), facts["key"])]})


def values(request: Request) -> Response:
    """``expr`` and its first two derivatives at the points ``x`` (``x=0.5&x=1``, ``x=0.5,1``, or ``lo``,
    ``hi``, ``n``), at most 2001 of them; a non-finite value is null. Learnable constants take their start
    value 1, or the value given as ``p0=0.5``."""
    given = {name: value for name, value in request.query_params.items() if CONSTANT.fullmatch(name)}
    return Json(function_values(expression(request), points(request), given))


def export(request: Request) -> Response:
    """What ``afos export EXPR --format FORMAT`` writes (torch, numpy, latex or sympy), as text."""
    return PlainTextResponse(function_export(expression(request), request.query_params.get("format", "torch")))


def gallery(request: Request) -> Response:
    """A search's functions, best first, 200 a page (``page``): each with its fitness, status, lineage,
    family and shape; filtered by shape (``monotonic``: increasing, decreasing, no; ``bounded_below``,
    ``saturating``, ``negative``: yes, no; ``slope`` at 0: positive, zero, negative) and ``status`` (ok,
    failed, screened, untrained), as the gallery page is."""
    return Json(gallery_json(_root(request), request.path_params["run"], request.query_params))


def index(request: Request) -> Response:
    """This list: every route of the API with what it answers."""
    return Json({"routes": [{"path": path, "doc": " ".join((route.__doc__ or "").split())} for path, route in ROUTES]})


ROUTES: tuple[tuple[str, Callable[[Request], Response]], ...] = (
    ("/api", index),
    ("/api/runs", runs),
    ("/api/version", runs_version),
    ("/api/runs/{run}", run),
    ("/api/runs/{run}/version", run_version),
    ("/api/runs/{run}/evaluations", evaluations),
    ("/api/runs/{run}/generations", generations),
    ("/api/runs/{run}/hall-of-fame", hall_of_fame),
    ("/api/runs/{run}/finalists", finalists),
    ("/api/runs/{run}/grid", grid),
    ("/api/runs/{run}/gallery", gallery),
    ("/api/functions/describe", describe),
    ("/api/functions/values", values),
    ("/api/functions/export", export),
)


def routes() -> list[Route]:
    """The API's routes, each answering afos's errors as JSON."""
    return [Route(path, _guarded(endpoint), methods=["GET"]) for path, endpoint in ROUTES]
