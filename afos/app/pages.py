"""The HTML pages: runs, a search, an evaluate or compare run, a function, and a run's training runs.

Pages are rendered on the server by Jinja2 with autoescaping, so every value a run folder or a request
holds (expressions, reasons, names, which can hold ``<script>``) reaches the browser as text. A page that
shows a run polls that run's version every 2 s and, when it changed, fetches the page again and swaps only
the sections marked live: no reload, no lost scroll position (``static/app.js``).
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from afos.app.across import anytime_overlay, learning_curves
from afos.app.folders import SERVED, root_version, run_files, version
from afos.app.forest import forest
from afos.app.front_chart import front_chart
from afos.app.function_view import function_facts, trained_in
from afos.app.grid_view import SHADES
from afos.app.params import choice, integer, run_filters
from afos.app.search_view import FAILED_SHOWN, SearchView
from afos.app.views import UnknownRun, Unreadable, evaluation_page, find_run, listed_runs, read_view
from afos.errors import UserError
from afos.records.evaluation import Phase, Status
from afos.records.runs import RunKind, RunStatus
from afos.reporting.tables import format_number, format_p, format_points, plus_minus
from afos.space.features import CONSTANT

#: Training runs per page of a run's evaluations.
PAGE = 100


def _when(seconds: float | None) -> str:
    return "-" if seconds is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def _environment() -> Environment:
    environment = Environment(loader=PackageLoader("afos.app", "templates"), autoescape=select_autoescape(default=True),
                              trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(num=format_number, pts=format_points, p=format_p, when=_when,
                               link=lambda text: "/functions/" + quote(str(text), safe=""))
    environment.globals.update(plus_minus=plus_minus, shades=len(SHADES), failed_shown=FAILED_SHOWN,
                               learnable=lambda text: bool(CONSTANT.search(str(text))))
    environment.tests["picture"] = lambda name: str(name).endswith(".png")
    return environment


TEMPLATES = _environment()


def _render(name: str, **values: Any) -> str:
    return TEMPLATES.get_template(name).render(**values)


def html_page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    """The template ``name`` rendered with ``values``, as an answer with ``status``."""
    return HTMLResponse(_render(name, **values), status_code=status)


def _root(request: Request) -> Path:
    return request.app.state.root


def runs_page(request: Request) -> Response:
    root = _root(request)
    try:
        filters = run_filters(request)
    except UserError as error:
        return html_page("message.html", 400, title="Runs", message=str(error))
    return HTMLResponse(runs_html(root, root_version(root), **filters))


@lru_cache(maxsize=16)
def runs_html(root: Path, current: str, *, kind: RunKind | None, status: RunStatus | None, name: str | None) -> str:
    """The runs page at the root's version ``current``: rendered once per change under the root and filter,
    however many browsers ask (they poll, and each change brings them all back at once)."""
    return _render("runs.html", title="Runs", root=str(root), poll="/api/version", version=current, live=True,
                   runs=listed_runs(root, kind=kind, status=status, name=name), kinds=list(RunKind),
                   statuses=list(RunStatus), filters={"kind": kind, "status": status, "name": name},
                   query=urlencode({key: getattr(value, "value", value) for key, value in
                                    (("kind", kind), ("status", status), ("name", name)) if value}))


def run_page(request: Request) -> Response:
    name = request.path_params["run"]
    try:
        folder = find_run(_root(request), name)
    except UnknownRun:
        return html_page("message.html", 404, title="No such run", message=f"No run {name!r} under the results root.")
    status, html = run_html(folder, name, version(folder))
    return HTMLResponse(html, status_code=status)


@lru_cache(maxsize=64)
def run_html(folder: Path, name: str, current: str) -> tuple[int, str]:
    """A run's page (its HTTP status and HTML) at the run's version ``current``: rendered once per change of
    the run, so twenty browsers watching a search cost the search one render, not twenty."""
    common = {"title": name, "run": name, "poll": f"/api/runs/{quote(name, safe='')}/version", "version": current}
    try:
        view = read_view(folder)
    except Unreadable as error:
        return 422, _render("message.html", **common, message=f"This run cannot be read: {error}")
    live = view.summary.status is RunStatus.RUNNING
    if isinstance(view, SearchView):
        return 200, _render("search.html", **common, view=view, live=live, charts=_search_charts(view),
                            forest=forest(view.finalists), front=front_chart([r.entry for r in view.hall], view.baselines))
    return 200, _render("grid.html", **common, view=view, live=live)


def _search_charts(view: SearchView) -> dict[str, Any]:
    """The data of the search page's two charts, as uPlot takes it (x values first, then each series)."""
    rows = view.generations
    relu = [view.relu_fitness] * len(rows) if view.relu_fitness is not None else None
    fitness = {"x": [r.generation for r in rows], "xlabel": "generation", "ylabel": "fitness",
               "series": {"best": [r.best for r in rows], "median": [r.median for r in rows],
                          **({"ReLU": relu} if relu else {})}}
    anytime = {"x": [r.trainings for r in rows], "xlabel": "candidates trained", "ylabel": "best fitness so far",
               "series": {"best so far": [r.best_so_far for r in rows], **({"ReLU": relu} if relu else {})}}
    return {"fitness": fitness, "anytime": anytime}


def evaluations_page(request: Request) -> Response:
    name = request.path_params["run"]
    try:
        folder = find_run(_root(request), name)
        after = integer(request, "after", 0, 0, 2**62)
        phase, status = choice(request, "phase", Phase), choice(request, "status", Status)
        rows = evaluation_page(folder, after=after, limit=PAGE, phase=phase, status=status)
    except UnknownRun:
        return html_page("message.html", 404, title="No such run", message=f"No run {name!r} under the results root.")
    except Unreadable as error:
        return html_page("message.html", 422, title=name, run=name, message=f"This run cannot be read: {error}")
    except UserError as error:
        return html_page("message.html", 400, title=name, run=name, message=str(error))
    filters = {k: v for k, v in (("phase", phase), ("status", status)) if v is not None}
    return html_page("evaluations.html", title=f"{name}: training runs", run=name, rows=rows, after=after,
                 next_after=rows[-1][0] if len(rows) == PAGE else None,
                 filters={k: v.value for k, v in filters.items()}, phases=list(Phase), statuses=list(Status))


def run_file(request: Request) -> Response:
    """A file a run's report wrote (a picture, a table, the report), by a name found in its folder (never a
    path from the request); tables and the report are sent as downloads."""
    try:
        folder = find_run(_root(request), request.path_params["run"])
    except UnknownRun:
        return Response("no such run", 404)
    name = request.path_params["name"]
    if name not in run_files(folder):
        return Response("no such file", 404)
    media = SERVED[Path(name).suffix]
    if name.endswith(".png"):
        return FileResponse(folder / name, media_type=media)
    return FileResponse(folder / name, media_type=media, filename=name)  # Content-Disposition: attachment


def function_page(request: Request) -> Response:
    text = request.path_params.get("expr") or request.query_params.get("expr")
    if text is None:
        return html_page("function.html", title="Functions", facts=None, trained=[], error=None, text="")
    if "expr" in request.query_params:
        return RedirectResponse("/functions/" + quote(text, safe=""), status_code=303)
    try:
        facts = function_facts(text)
    except UserError as error:
        return html_page("function.html", 400, title="Functions", facts=None, trained=[], error=str(error), text=text)
    return html_page("function.html", title=facts["canonical"], facts=facts, text=text, error=None,
                 trained=trained_in(_root(request), facts["key"]),
                 charts={"curves": learning_curves(_root(request), facts["key"])})


def searches_page(request: Request) -> Response:
    """Several searches' anytime curves on one chart, grouped by strategy (median and band per group)."""
    names = request.query_params.getlist("run")
    try:
        lines, chart = anytime_overlay(_root(request), names)
    except UserError as error:
        return html_page("message.html", 400, title="Compare searches", message=str(error))
    return html_page("searches.html", title="Compare searches", lines=lines, charts={"anytime": chart})


def routes() -> list[Route]:
    return [Route("/", runs_page), Route("/runs/{run}", run_page), Route("/runs/{run}/evaluations", evaluations_page),
            Route("/runs/{run}/files/{name}", run_file), Route("/functions", function_page),
            Route("/functions/{expr:path}", function_page), Route("/searches", searches_page)]

