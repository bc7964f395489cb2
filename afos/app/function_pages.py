"""The pages that make a function the unit of a view: a search's gallery, a function's genealogy within a
search, and the overlay of any functions with their derivatives.

The gallery and the genealogy read a search's function index (:mod:`afos.app.gallery_view`); the overlay
reads only its request, each expression through the whitelist parser (:func:`function_spec`), at most
:data:`MAX_FUNCTIONS` at a time, and its page fetches the curves from ``/api/functions/values`` (the
script, ``static/functions.js``, sends the sliders' constants with it). Pages are rendered by the same
autoescaping templates as every other page; data for the script travels as JSON in a ``<script
type="application/json">`` block, which the CSP allows since it never runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from afos.app.folders import run_folders
from afos.app.function_view import function_spec
from afos.app.gallery_view import (
    SHAPE_CHOICES,
    STATUSES,
    FunctionIndex,
    FunctionRow,
    GalleryFilter,
    GalleryPage,
    constants_of,
    function_link,
    gallery_page,
    known_name,
    read_index,
    search_folder,
    training_runs,
)
from afos.app.pages import html_page
from afos.app.params import integer
from afos.app.search_view import SearchView
from afos.app.sketch import sketch
from afos.app.views import UnknownRun, Unreadable, find_run, read_view
from afos.errors import UserError
from afos.space.features import CONSTANT
from afos.space.parse import canonical

#: The most functions one overlay draws (asked for and taken from a hall of fame together).
MAX_FUNCTIONS = 12
#: The references an overlay can switch on and off.
BASELINES = ("relu", "silu", "gelu", "tanh")
#: How an overlay tells its functions apart while keeping the colours of f, f' and f'' (blue, orange, green):
#: function i is drawn with dash i % 6, in the panel's colour for the first six and a darker one for the rest.
DASHES = ((), (8, 4), (2, 3), (10, 3, 2, 3), (4, 4), (14, 4, 4, 4))
COLOURS = {"f": ("#1f77b4", "#0b3f66"), "df": ("#ff7f0e", "#a64d00"), "d2f": ("#2ca02c", "#155215")}
#: The training runs a genealogy page lists.
RUNS_SHOWN = 200


def _problem(name: str | None, error: Exception) -> HTMLResponse:
    """The message page of an error a request about run ``name`` met: 404 no such run, 422 unreadable, 400."""
    if isinstance(error, UnknownRun):
        return html_page("message.html", 404, title="No such run", message=f"No run {error.args[0]!r} under the results root.")
    if isinstance(error, Unreadable):
        return html_page("message.html", 422, title=name or "Overlay", run=name, message=f"This run cannot be read: {error}")
    return html_page("message.html", 400, title=name or "Overlay", run=name, message=str(error))


# --- gallery -----------------------------------------------------------------------------------------


def gallery_page_for(root: Path, name: str, query: Mapping[str, str]) -> tuple[FunctionIndex, GalleryPage]:
    """The index of the search ``name`` and the gallery page a request's query asks for."""
    chosen = GalleryFilter.from_query(query)
    index = read_index(search_folder(root, name))
    return index, gallery_page(index, chosen)


def gallery_json(root: Path, name: str, query: Mapping[str, str]) -> dict[str, Any]:
    """The API's gallery: one page of the search's functions with their shapes, and the filter."""
    _, page = gallery_page_for(root, name, query)
    return {"functions": [{**card.to_dict(), "link": function_link(name, card.row.key)} for card in page.cards],
            "total": page.total, "functions_in_search": page.functions, "page": page.page, "pages": page.pages,
            "filter": page.filter.to_dict()}


def gallery(request: Request) -> Response:
    name = request.path_params["run"]
    try:
        _, page = gallery_page_for(request.app.state.root, name, request.query_params)
    except (UnknownRun, Unreadable, UserError) as error:
        return _problem(name, error)
    return html_page("gallery.html", title=f"{name}: gallery", run=name, page=page, choices=SHAPE_CHOICES,
                 statuses=STATUSES, link=lambda key: function_link(name, key))


# --- genealogy ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relative:
    """A parent or child of a function: its key, its row (None when the search does not hold it) and the
    fitness gained: for a parent, the function's fitness over the parent's at the same budget; for a child,
    the child's over the function's (None when they were not trained at a common budget)."""

    key: str
    row: FunctionRow | None
    gain: float | None


def _gain(later: FunctionRow | None, earlier: FunctionRow | None) -> float | None:
    if later is None or earlier is None or later.fitness is None:
        return None
    before = earlier.score_at(later.budget)
    return None if before is None else later.fitness - before


def genealogy(request: Request) -> Response:
    name, key = request.path_params["run"], request.path_params["key"]
    try:
        folder = search_folder(request.app.state.root, name)
        index = read_index(folder)
        row = index.by_key.get(key)
        if row is None:
            return html_page("message.html", 404, title=name, run=name, message=f"The search {name} holds no function {key!r}.")
        runs, total = training_runs(folder, key, RUNS_SHOWN)
    except (UnknownRun, Unreadable, UserError) as error:
        return _problem(name, error)
    parents = tuple(Relative(p, index.by_key.get(p), _gain(row, index.by_key.get(p)))
                    for p in dict.fromkeys(row.lineage.parents if row.lineage else ()))
    children = tuple(Relative(c, index.by_key.get(c), _gain(index.by_key.get(c), row)) for c in index.children.get(key, ()))
    overlay = "/overlay?" + "&".join(f"f={quote(r.canonical, safe='')}" for r in
                                     (row, *(p.row for p in parents if p.row))[:MAX_FUNCTIONS])
    return html_page("genealogy.html", title=f"{name}: {row.canonical}", run=name, row=row, parents=parents,
                 children=children, runs=runs, total=total, shown=RUNS_SHOWN, overlay=overlay,
                 sketch=sketch(row.canonical, constants_of(row.canonical)), link=lambda k: function_link(name, k))


# --- overlay -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """One function of an overlay: its legend label, the text the values API is asked about, its canonical
    form, the family afos knows it as, its learnable constants with the values the sliders start at, and
    where it came from (asked for, or a rank of a search's hall of fame)."""

    label: str
    expression: str
    canonical: str
    known: str | None
    parameters: tuple[tuple[str, float], ...]
    source: str

    def to_data(self) -> dict[str, Any]:
        return {"label": self.label, "expr": self.expression, "params": dict(self.parameters)}


def curve(text: str, source: str = "asked", starts: dict[str, float] | None = None) -> Curve:
    """The curve of the expression ``text``, checked by the whitelist parser (a UserError says why not)."""
    text = text.strip()
    spec = function_spec(text)
    shown = canonical(spec.expression, [*spec.learnable, *spec.fixed])
    names = [name for name in spec.learnable if CONSTANT.fullmatch(name)]
    parameters = tuple((n, (starts or {}).get(n, 1.0)) for n in sorted(names))
    return Curve(shown, text, shown, known_name(spec.key()), parameters, source)


def _learned(learned_runs: dict[str, list[float | None]], text: str) -> dict[str, float]:
    """Each learnable constant of a hall-of-fame function at its mean over the runs that learned it."""
    values = {}
    for name, _ in constants_of(text):
        learned = [v for v in learned_runs.get(name, []) if isinstance(v, (int, float))]
        values[name] = sum(learned) / len(learned) if learned else 1.0
    return values


def _hall_curves(root: Path, name: str, top: int) -> list[Curve]:
    view = read_view(find_run(root, name))
    if not isinstance(view, SearchView):
        raise UserError(f"{name} is not a search run: only a search has a hall of fame")
    curves = []
    for row in view.hall[:top]:
        try:
            curves.append(curve(row.entry.canonical, f"rank {row.rank} of {name}",
                                _learned(row.entry.learned_runs, row.entry.canonical)))
        except UserError:
            continue  # a stored form the parser refuses is left out, as the page cannot draw it
    return curves


def overlay(request: Request) -> Response:
    root: Path = request.app.state.root
    texts = [t for t in request.query_params.getlist("f") if t.strip()]
    run = request.query_params.get("run") or None
    errors: list[str] = []
    try:
        if len(texts) > MAX_FUNCTIONS:
            raise UserError(f"{len(texts)} functions asked for; an overlay draws at most {MAX_FUNCTIONS}")
        top = integer(request, "top", 3, 0, MAX_FUNCTIONS)
        curves = []
        for text in texts:
            try:
                curves.append(curve(text))
            except UserError as error:
                errors.append(f"{text[:200]}: {error}")
        if run:
            curves += _hall_curves(root, run, min(top, MAX_FUNCTIONS - len(curves)))
    except (UnknownRun, Unreadable, UserError) as error:
        return _problem(run, error)
    data = {"functions": [c.to_data() for c in curves], "baselines": list(BASELINES), "range": [-5.0, 5.0],
            "dashes": [list(d) for d in DASHES], "colours": {k: list(v) for k, v in COLOURS.items()}}
    return html_page("overlay.html", 400 if errors else 200, title="Overlay", curves=curves, errors=errors, data=data,
                 texts=texts, run=run, runs=sorted(run_folders(root)), top=top, max_functions=MAX_FUNCTIONS,
                 baselines=BASELINES, dashes=[" ".join(map(str, d)) for d in DASHES], colours=COLOURS["f"])


def routes() -> list[Route]:
    """The function pages' routes (their JSON twin is in :mod:`afos.app.api`)."""
    return [Route("/runs/{run}/gallery", gallery), Route("/runs/{run}/functions/{key}", genealogy),
            Route("/overlay", overlay)]
