"""The other runs under one results root, read-only: the cache of finished records a run may copy."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from afos.errors import StoreError
from afos.records.evaluation import EvalKey, Evaluation
from afos.storage.filesystems import is_network_filesystem
from afos.storage.layout import run_databases
from afos.storage.liveness import read_state
from afos.storage.store import RunStore

#: Seconds between listings of the sibling run folders.
RELIST_S = 10.0


class SiblingRuns:
    """The finished records of the other run databases under one results root, read-only: the cache the
    evaluation layer copies from (:class:`afos.evaluation.RecordCache`).

    A database that is foreign, older, broken or still being created is simply not used. The folder is
    listed again at most every :data:`RELIST_S` seconds (listing costs more than the lookups), so a run
    that appears beside this one is seen soon after. On a network filesystem only runs that have ended
    (by their ``run.json``) are read, as immutable files: a running run's database belongs to its writer
    (maybe on another host), and a killed run's journal is rolled back only by its resume.
    """

    def __init__(self, root: Path, exclude: Path) -> None:
        self.root = Path(root)
        self.exclude = Path(exclude).resolve()
        self._open: dict[Path, RunStore] = {}
        self._broken: set[Path] = set()
        self._paths: list[Path] = []
        self._listed = -math.inf
        self.network = is_network_filesystem(self.root)

    def find(self, key: EvalKey) -> tuple[Evaluation, str] | None:
        for path, store in self._stores():
            try:
                record = store.find_evaluation(key)
            except (StoreError, sqlite3.Error):
                self._broken.add(path)
                continue
            if record is not None and record.final:
                return record, path.parent.name
        return None

    def _stores(self) -> Iterator[tuple[Path, RunStore]]:
        if time.monotonic() - self._listed > RELIST_S:
            self._paths, self._listed = run_databases(self.root), time.monotonic()
        for path in self._paths:
            if path.parent.resolve() == self.exclude or path in self._broken:
                continue
            if path not in self._open and self.network and not _ended(path.parent):
                continue  # asked again after the next listing
            if path not in self._open:
                try:
                    self._open[path] = RunStore(path, readonly=True)
                except (StoreError, OSError, sqlite3.Error):
                    self._broken.add(path)
                    continue
            yield path, self._open[path]

    def close(self) -> None:
        for store in self._open.values():
            store.close()
        self._open.clear()

    def __enter__(self) -> SiblingRuns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ended(run_dir: Path) -> bool:
    state = read_state(run_dir)
    return state is not None and state.status.is_ended()
