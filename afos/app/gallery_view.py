"""The functions of one search, each as a unit: what it is (its canonical form, shape and known family), how
it fared (fitness, training runs, status) and where it came from (parents, operators, children).

Why a view of its own: the search page ranks the hall of fame, ten functions; a search holds thousands,
and a reader wants to see them side by side, narrowed by shape, and follow one's family. Everything here is
read from the run's database (read-only) once per version of the run and cached, like the search page's
view; shape facts cost milliseconds per function, so they are computed only for the functions a page shows
or a shape filter asks about, and remembered per canonical form.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote, urlencode

from afos.activation.spec import resolve_activation
from afos.app.folders import READ_ERRORS, clipped, shown, version
from afos.app.sketch import Sketch, sketch
from afos.app.views import Unreadable, find_run
from afos.errors import UserError
from afos.records.evaluation import Evaluation, Phase, Status
from afos.records.runs import MetaKey, RunKind
from afos.records.search import CandidateStatus, Lineage
from afos.reporting.run_report import run_kind
from afos.search.config import score
from afos.space.features import CONSTANT
from afos.space.parse import canonical as canonical_text
from afos.space.probe import properties
from afos.storage.layout import run_database
from afos.storage.store import RunStore

#: Functions on one page of a gallery.
PER_PAGE = 200
#: What a function's status in a search can be: trained and every run ok, trained with a failed run,
#: screened out before training, or valid but never trained (ranked out by the surrogate, or the budget ended).
STATUSES = ("ok", "failed", "screened", "untrained")
#: Functions afos knows by name, matched by fingerprint (the activation key of a form without learnable
#: constants): the grid's and the search's baselines and the parser's activation names.
KNOWN_NAMES = (("relu", "ReLU"), ("silu", "SiLU (Swish)"), ("gelu", "GELU"), ("mish", "Mish"), ("elu", "ELU"),
               ("selu", "SELU"), ("tanh", "tanh"), ("sigmoid", "sigmoid"), ("softplus", "softplus"),
               ("softsign", "softsign"), ("leaky_relu", "leaky ReLU"), ("elish", "ELiSH"), ("hard_sigmoid", "hard sigmoid"),
               ("relu6", "ReLU6"), ("eelu", "EELU"), ("mila", "Mila (β = −0.25)"), ("erf", "erf"), ("atan", "arctan"),
               ("asinh", "asinh"), ("abs", "absolute value"), ("identity", "identity"))
#: The shape filters and the values each takes (an empty value or none at all: any).
SHAPE_CHOICES = {"monotonic": ("increasing", "decreasing", "no"), "bounded_below": ("yes", "no"),
                 "slope": ("positive", "zero", "negative"), "saturating": ("yes", "no"), "negative": ("yes", "no")}


@lru_cache(maxsize=1)
def _known_keys() -> dict[str, str]:
    return {resolve_activation(f"{name}(x)").key(): label for name, label in reversed(KNOWN_NAMES)}


def known_name(key: str) -> str | None:
    """The name of the function afos knows whose fingerprint ``key`` is (learnable constants at their start
    values: the part of a key before its colon), or None."""
    return _known_keys().get(key.split(":")[0])


def constants_of(text: str) -> tuple[tuple[str, float], ...]:
    """The learnable constants ``p0, p1, ...`` of a canonical form, at their start value 1."""
    return tuple((name, 1.0) for name in sorted(set(CONSTANT.findall(text))))


@dataclass(frozen=True)
class Shape:
    """What a function looks like, from :func:`afos.space.probe.properties` (constants at 1): monotonic
    (increasing, decreasing, no); bounded below; the sign of f′(0); saturating (it levels off on both sides,
    bounded below and above, like tanh); a negative region (its minimum on [-10, 10] is below 0)."""

    monotonic: str
    bounded_below: str
    slope: str
    saturating: str
    negative: str

    def to_dict(self) -> dict[str, str]:
        return dict(vars(self))


def _yes(value: bool) -> str:
    return "yes" if value else "no"


@lru_cache(maxsize=8192)
def shape_of(text: str) -> Shape | None:
    """The shape of the function ``text`` (a canonical form), or None when it cannot be evaluated."""
    try:
        facts = properties(text, dict(constants_of(text)))
    except (UserError, RuntimeError, ValueError, TypeError, ArithmeticError, RecursionError):
        return None
    slope = facts.slope_at_0
    sign = "zero" if not math.isfinite(slope) or abs(slope) < 1e-9 else "positive" if slope > 0 else "negative"
    return Shape(facts.monotonic, _yes(facts.bounded_below), sign, _yes(facts.bounded_below and facts.bounded_above),
                 _yes(facts.minimum < 0))


@dataclass(frozen=True)
class FunctionRow:
    """One distinct function of a search: its key and canonical form, its status (:data:`STATUSES`), the
    generation it was first proposed in (from 0; None for a baseline), how it was made, its fitness at each
    training budget it reached (budget, mean score over tasks and seeds, a failure scoring 0, as the search
    scores), its training runs and failed ones, the screening's reason and the family afos knows it as."""

    key: str
    canonical: str
    status: str
    generation: int | None
    lineage: Lineage | None
    scores: tuple[tuple[float, float], ...] = ()
    runs: int = 0
    failed: int = 0
    reason: str | None = None
    known: str | None = None

    @property
    def fitness(self) -> float | None:
        """The fitness at the largest budget it was trained at (None: never trained)."""
        return self.scores[-1][1] if self.scores else None

    @property
    def budget(self) -> float | None:
        return self.scores[-1][0] if self.scores else None

    def score_at(self, budget: float | None) -> float | None:
        return next((value for at, value in self.scores if at == budget), None)

    @property
    def made_by(self) -> str:
        return self.lineage.describe() if self.lineage else "baseline" if self.generation is None else "-"

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(lineage=self.lineage.to_dict() if self.lineage else None, scores=[list(s) for s in self.scores],
                      fitness=self.fitness, budget=self.budget, made_by=self.made_by)
        return values


@dataclass(frozen=True)
class FunctionIndex:
    """Every function of a search, best first (largest budget, then fitness), by key, and each one's
    children (the keys of the candidates that name it as a parent, in the order they were proposed)."""

    rows: tuple[FunctionRow, ...]
    by_key: dict[str, FunctionRow]
    children: dict[str, tuple[str, ...]]

    @property
    def fitness_range(self) -> tuple[float, float] | None:
        values = [row.fitness for row in self.rows if row.fitness is not None]
        return (min(values), max(values)) if values else None


def search_folder(root: Path, name: str) -> Path:
    """The folder of the search run ``name`` (UnknownRun when there is none; a UserError for a run of
    another kind; Unreadable when its database cannot be read)."""
    folder = find_run(root, name)
    try:
        kind = run_kind(folder)
    except READ_ERRORS as error:
        raise Unreadable(str(error) or type(error).__name__) from None
    if kind is not RunKind.SEARCH:
        raise UserError(f"{name} is not a search run: only a search has a gallery and genealogies")
    return folder


def read_index(folder: Path) -> FunctionIndex:
    """The search's function index at its current version; a broken or hostile database is Unreadable."""
    try:
        return function_index(folder, version(folder))
    except READ_ERRORS as error:
        raise Unreadable(str(error) or type(error).__name__) from None


@lru_cache(maxsize=16)
def function_index(folder: Path, current: str) -> FunctionIndex:
    """The index of the search in ``folder`` at version ``current`` (the cache key: a write makes a new one)."""
    with RunStore(run_database(folder), readonly=True) as store:
        config = store.get_meta(MetaKey.CONFIG, {}) or {}
        candidates = store.candidates()
        records = [*store.evaluations(phase=Phase.SEARCH), *store.evaluations(phase=Phase.BASELINE)]
    measure = str(config.get("fitness", "val_accuracy")) if isinstance(config, dict) else "val_accuracy"
    by_budget: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    failed: dict[str, int] = defaultdict(int)
    baselines: dict[str, str] = {}
    for record in records:
        by_budget[record.activation_key][float(record.budget)].append(score(record, measure))
        failed[record.activation_key] += record.status is not Status.OK
        baselines.setdefault(record.activation_key, record.expression)

    def row(key: str, text: str, screened: bool, generation: int | None, lineage: Lineage | None,
            reason: str | None) -> FunctionRow:
        scores = tuple((budget, sum(v) / len(v)) for budget, v in sorted(by_budget.get(key, {}).items()))
        runs = sum(len(v) for v in by_budget.get(key, {}).values())
        status = "screened" if screened else "untrained" if not runs else "failed" if failed[key] else "ok"
        return FunctionRow(key, clipped(text), status, generation, lineage, scores, runs, failed[key],
                           reason and clipped(reason), known_name(key))

    rows = {c.key: row(c.key, c.canonical or c.tree, c.status is CandidateStatus.SCREENED, c.generation, c.lineage,
                       c.reason) for c in candidates}
    for key, expression in baselines.items():
        if key not in rows:
            rows[key] = row(key, _canonical(expression), False, None, None, None)
    children: dict[str, list[str]] = defaultdict(list)
    for candidate in candidates:
        for parent in dict.fromkeys(candidate.lineage.parents if candidate.lineage else ()):
            children[parent].append(candidate.key)
    ranked = sorted(rows.values(), key=lambda r: (r.fitness is None, -(r.budget or 0.0), -(r.fitness or 0.0), r.key))
    return FunctionIndex(tuple(ranked), rows, {key: tuple(keys) for key, keys in children.items()})


def _canonical(text: str) -> str:
    try:
        return canonical_text(text)
    except (UserError, RuntimeError, ValueError, TypeError, ArithmeticError, RecursionError):
        return text


@dataclass(frozen=True)
class GalleryFilter:
    """What a gallery shows: the shape filters (:data:`SHAPE_CHOICES`), a status and a page (from 1)."""

    monotonic: str = ""
    bounded_below: str = ""
    slope: str = ""
    saturating: str = ""
    negative: str = ""
    status: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> GalleryFilter:
        """The filter a request's query asks for; a value it does not know is a UserError naming it."""
        chosen: dict[str, Any] = {}
        for name, allowed in (*SHAPE_CHOICES.items(), ("status", STATUSES)):
            value = query.get(name) or ""
            if value and value not in allowed:
                raise UserError(f"{name} must be one of {', '.join(allowed)} (or empty: any), got {value[:40]!r}")
            chosen[name] = value
        page = query.get("page") or "1"
        if not page.isdigit() or not 1 <= int(page) <= 10**6:
            raise UserError(f"page must be a whole number from 1, got {page[:40]!r}")
        return cls(**chosen, page=int(page))

    @property
    def shaped(self) -> bool:
        return any(getattr(self, name) for name in SHAPE_CHOICES)

    def admits(self, row: FunctionRow) -> bool:
        if self.status and row.status != self.status:
            return False
        if not self.shaped:
            return True
        shape = shape_of(row.canonical)
        return shape is not None and all(getattr(shape, n) == getattr(self, n) for n in SHAPE_CHOICES if getattr(self, n))

    def query(self, **changes: Any) -> str:
        """The query string of this filter with ``changes`` (a pager's link), leaving out what is "any"."""
        values = {**{f.name: getattr(self, f.name) for f in fields(self)}, **changes}
        return urlencode({k: v for k, v in values.items() if v and not (k == "page" and v == 1)})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) or None for f in fields(self)}


@dataclass(frozen=True)
class Card:
    """One function of a gallery page: its row, sketch, shape and fitness shade (0 worst to 5 best of the
    search; None untrained)."""

    row: FunctionRow
    sketch: Sketch | None
    shape: Shape | None
    shade: int | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.row.to_dict(), "shape": self.shape.to_dict() if self.shape else None}


@dataclass(frozen=True)
class GalleryPage:
    """One page of a gallery: its cards, how many functions match the filter, and the pages they fill."""

    cards: tuple[Card, ...]
    total: int
    functions: int
    page: int
    pages: int
    filter: GalleryFilter


def gallery_page(index: FunctionIndex, chosen: GalleryFilter) -> GalleryPage:
    """The page ``chosen.page`` of the functions ``chosen`` admits, best first."""
    rows = [row for row in index.rows if chosen.admits(row)]
    pages = max(1, math.ceil(len(rows) / PER_PAGE))
    if chosen.page > pages:
        raise UserError(f"page {chosen.page} is past the last page ({pages}) of these functions")
    span = index.fitness_range
    cards = tuple(Card(row, sketch(row.canonical, constants_of(row.canonical)), shape_of(row.canonical),
                       _shade(row.fitness, span))
                  for row in rows[(chosen.page - 1) * PER_PAGE:chosen.page * PER_PAGE])
    return GalleryPage(cards, len(rows), len(index.rows), chosen.page, pages, chosen)


def _shade(value: float | None, span: tuple[float, float] | None) -> int | None:
    if value is None or span is None:
        return None
    low, high = span
    return 5 if high <= low else min(5, int((value - low) / (high - low) * 6))


def function_link(run: str, key: str) -> str:
    """The address of a function's genealogy page within a search."""
    return f"/runs/{quote(run, safe='')}/functions/{quote(key, safe='')}"


def training_runs(folder: Path, key: str, limit: int) -> tuple[list[Evaluation], int]:
    """The first ``limit`` training runs of the function ``key`` in the run, every phase, and how many there
    are; a broken or hostile database is Unreadable."""
    try:
        with RunStore(run_database(folder), readonly=True) as store:
            runs = store.evaluations(activation_key=key)
    except READ_ERRORS as error:
        raise Unreadable(str(error) or type(error).__name__) from None
    return [shown(run) for run in runs[:limit]], len(runs)
