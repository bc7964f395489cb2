"""Where a comparison's functions and runs come from when not trained now: stored grids and search runs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from afos.errors import ConfigError, StoreError, UserError
from afos.grid.results import Results, collect, merge
from afos.grid.spec import Spec
from afos.records.runs import MetaKey, Role
from afos.search.config import baseline_names
from afos.search.results import finalist_rows, hall_of_fame
from afos.storage.layout import run_database
from afos.storage.store import RunStore


@dataclass(frozen=True)
class SearchSelection:
    """The functions a search hands on to ``evaluate``/``compare --from-search``: its confirmed finalists in
    rank order (else its hall of fame's top functions that trained ok), its baselines, the learnable
    constants they use (trained again from their start, 1) and the tasks the search selected on."""

    candidates: list[str]
    baselines: list[str]
    learnable: dict[str, float]
    seen: list[str]

    def note(self, tasks: Sequence[str]) -> list[str]:
        """What the report must say: the search's own tasks are not a held-out claim."""
        seen = [task for task in tasks if task in self.seen]
        return [f"task {task} is the search's own (seen) task: its numbers are not a held-out claim"
                for task in seen]


def from_search(run_dir: str | Path, top: int) -> SearchSelection:
    """Read a search run's finalists (or its top ``top`` ok functions) for a transfer study."""

    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")
    path = run_database(run_dir)
    if not path.is_file():
        raise UserError(f"--from-search {run_dir}: no afos.db there, so it is not a run folder")
    with RunStore(path, readonly=True) as store:
        if store.get_meta(MetaKey.KIND, "search") != "search":
            raise UserError(f"--from-search {run_dir}: it is not a search run")
        config = store.get_meta(MetaKey.CONFIG) or {}
        finalists = finalist_rows(store)
        seen = list(store.get_meta(MetaKey.PROTOCOLS) or {})
        if finalists:
            chosen = [f.canonical for f in finalists if f.role is Role.FINALIST][:top]
        else:
            chosen = [entry.canonical for entry in hall_of_fame(store) if entry.ok][:top]
    if not chosen:
        raise UserError(f"--from-search {run_dir}: the search has no function that trained ok yet")
    constants = {name: 1.0 for text in chosen for name in re.findall(r"\bp\d+\b", text)}  # PANGAEA scale()s
    return SearchSelection(chosen, baseline_names(config.get("baseline", "relu")), constants, seen)


def load_results(sources: Sequence[str | Path]) -> Results:
    """Merge the grids stored in run folders or ``afos.db`` files, read-only, for ``compare --from``."""
    return merge([_load_one(Path(source)) for source in sources])


def _load_one(source: Path) -> Results:
    path = run_database(source) if source.is_dir() else source
    try:
        with RunStore(path, readonly=True) as store:
            grid = store.get_meta(MetaKey.GRID)
            if not grid:
                raise UserError(f"{source} holds no evaluate/compare grid (is it a search run?)")
            try:
                spec = Spec.from_dict(grid)
            except (KeyError, TypeError, ValueError, ConfigError) as error:
                raise UserError(f"--from {source}: the stored grid is malformed ({error})") from None
            return collect(spec, store, str(path))
    except (FileNotFoundError, StoreError) as error:
        raise UserError(f"--from {source}: {error}") from None
