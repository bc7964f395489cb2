"""The SQLite run database (``afos.db``): the system of record of a search run and of ``afos compare`` grids.

Everything a run learns is written here as it happens, so a run can be resumed, reported on and audited
after any crash, including ``kill -9`` or a pre-empted machine:

* **WAL journal.** A commit appends to the write-ahead log and is atomic: a process killed at any instant
  leaves the last committed state; the next open rolls back whatever was in flight. Readers (reports, a
  second terminal) read a consistent snapshot while the driver writes, and never block it.
* **synchronous=FULL.** With WAL, ``NORMAL`` already survives a killed *process*; ``FULL`` adds one fsync per
  commit so that a committed evaluation also survives an OS crash or power loss (cloud VMs get pre-empted).
  A commit happens once per training run, which costs seconds to hours, so the fsync is free in comparison.
* **One transaction per logical write.** Each write method runs in :meth:`RunStore.transaction`, and the
  driver wraps larger units (a whole generation) in an outer one, so a crash loses at most the evaluation in
  flight and never leaves half a generation.
* **On a network filesystem** (NFS, Lustre, GPFS; :mod:`afos.storage.filesystems`), where WAL's shared memory
  cannot work across hosts and locks are unreliable, the writer uses the rollback journal (``DELETE``: a
  killed process leaves a hot journal the next open rolls back, so commits stay atomic) and holds the
  database exclusively for as long as it runs (``locking_mode=EXCLUSIVE``: one lock taken once, no lock
  traffic per transaction). Readers there open a database only once its run has ended (its ``run.json``
  says so, :mod:`afos.storage.liveness`), as an immutable file: no lock, no journal, nothing written.
* **No pickle.** Structured values are JSON text, so opening a database from elsewhere cannot run code,
  and users can query it with plain ``sqlite3``. JSON columns are declared ``TEXT``: a column declared
  ``JSON`` gets NUMERIC affinity and SQLite would turn the text ``'1.0'`` into the integer 1 (and big ints
  into lossy floats). Non-finite floats become NULL/``null``, since JSON has no NaN.

It serialises the typed records of :mod:`afos.records`; search and grids are handed a store (through the
run lifecycle of :mod:`afos.runs`), they never open one.
A ``RunStore`` belongs to the thread that opened it (sqlite3's default check), and there is one writer, the
driver process; other processes may open the same file with ``readonly=True``."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from afos.errors import StoreError
from afos.records.evaluation import MACHINE_FAILURES, WORKER_DIED, EvalKey, Evaluation, Phase, Status
from afos.records.runs import MetaKey
from afos.records.search import CandidateRecord, CandidateStatus, Generation, Lineage
from afos.storage.database import Database
from afos.storage.schema import (
    BY_KEY,
    MIGRATIONS,
    READABLE_AS_IS,
    SCHEMA,
    SCHEMA_VERSION,
    dumps,
    evaluation_from_row,
    evaluation_row,
    generation_from_row,
    generation_row,
    int_or_none,
    loads,
)

#: SQL true for a stored evaluation that is not final (the condition of Evaluation.final, negated).
_NOT_FINAL = (f"evaluations.status IN ({', '.join(repr(s.value) for s in sorted(MACHINE_FAILURES))}) OR "
              f"(evaluations.status = 'error' AND evaluations.reason LIKE '{WORKER_DIED}%')")


class RunStore(Database):
    """One run database. Writable by default (creates the file and schema); ``readonly=True`` for readers.

    ``meta`` given when opening writable is written in the transaction that creates the schema, so a
    database is never seen with a schema but without its config (a kill at any moment leaves either no
    schema at all or a complete start).
    """

    def __enter__(self) -> RunStore:
        return self

    def prepare(self, meta: Mapping[MetaKey, Any]) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {version}; this afos reads up to "
                             f"{SCHEMA_VERSION} (upgrade afos)")
        if version == SCHEMA_VERSION or (self.readonly and version in READABLE_AS_IS):
            return
        tables = self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if version in MIGRATIONS and tables:
            self._migrate(version)
            return
        if tables:
            raise StoreError(f"{self.path} is not an afos run database")
        if self.readonly:
            raise StoreError(f"{self.path} is an empty file, not an afos run database")
        with self.transaction():
            for statement in SCHEMA:
                self._conn.execute(statement)
            for key, value in meta.items():
                self.set_meta(key, value)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _migrate(self, version: int) -> None:
        """Bring a database of an older afos to this schema, every step in one transaction."""
        if self.readonly:
            raise StoreError(f"{self.path} was written by an older afos (schema {version}); open it once with a "
                             f"command that may write to it (e.g. `afos report {self.path.parent}`) to upgrade it")
        try:
            with self.transaction():
                for step in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[step]:
                        self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: cannot upgrade this schema-{version} database ({error}); its CSV and "
                             f"report files still hold its results") from None

    # --- candidates -----------------------------------------------------------------------------------

    def add_candidate(self, candidate: CandidateRecord) -> bool:
        """Record a distinct function the first time its key is seen; True if it was new.

        A known key keeps its first row (first tree, generation of discovery).
        """
        with self.transaction():
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO candidates (activation_key, tree, canonical, generation, status, reason, "
                "created, lineage) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (candidate.key, candidate.tree, candidate.canonical, int_or_none(candidate.generation),
                 CandidateStatus(candidate.status).value, candidate.reason, candidate.created or time.time(),
                 dumps(candidate.lineage.to_dict()) if candidate.lineage else None))
        return cursor.rowcount == 1

    def candidates(self) -> list[CandidateRecord]:
        """All candidates in the order they were first seen."""
        rows = self._conn.execute("SELECT * FROM candidates ORDER BY rowid")
        try:
            return [CandidateRecord(row["activation_key"], row["tree"], row["canonical"], row["generation"],
                                    CandidateStatus(row["status"]), row["reason"], row["created"], self._lineage(row))
                    for row in rows]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise StoreError(f"{self.path}: the candidates table is malformed ({error})") from None

    def _lineage(self, row: sqlite3.Row) -> Lineage | None:
        """A candidate's lineage; None in a database from before lineage was recorded (schema 2)."""
        text = row["lineage"] if "lineage" in row.keys() else None
        values = loads(text, f"{self.path}: candidate {row['activation_key']}")
        return None if values is None else Lineage.from_dict(values)

    # --- evaluations ----------------------------------------------------------------------------------

    def add_evaluation(self, evaluation: Evaluation) -> None:
        """Store one training run.

        An evaluation is a fact: if its key is already stored, the first record is kept, except a record
        that is not :attr:`~afos.evaluation.Evaluation.final` (its worker died, it timed out or ran out of
        memory), which a new attempt replaces.
        """
        row = evaluation_row(evaluation)
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        updates = ", ".join(f"{column} = excluded.{column}" for column in row)
        with self.transaction():
            self._conn.execute(
                f"INSERT INTO evaluations ({columns}) VALUES ({marks}) "
                "ON CONFLICT (activation_key, protocol, budget, seed, task) DO UPDATE SET "
                f"{updates} WHERE {_NOT_FINAL}",
                tuple(row.values()))

    def find_evaluation(self, key: EvalKey) -> Evaluation | None:
        """The training run with this key, or None."""
        row = self._conn.execute(BY_KEY, (key.activation_key, key.protocol, float(key.budget), int(key.seed),
                                           key.task)).fetchone()
        return None if row is None else self._evaluation(row)

    def evaluations(self, *, activation_key: str | None = None, protocol: str | None = None,
                    phase: Phase | None = None, task: str | None = None, limit: int = -1) -> list[Evaluation]:
        """Training runs in insertion order, filtered by whichever arguments are not None; the first ``limit``
        (every one when negative)."""
        filters = {"activation_key": activation_key, "protocol": protocol, "task": task,
                   "phase": phase.value if phase else None}
        used = {column: value for column, value in filters.items() if value is not None}
        where = " AND ".join(f"{column} = ?" for column in used) or "1"
        rows = self._conn.execute(f"SELECT * FROM evaluations WHERE {where} ORDER BY id LIMIT ?",
                                  (*used.values(), int(limit)))
        return [self._evaluation(row) for row in rows]

    def evaluation_page(self, *, after: int = 0, limit: int = 100, phase: Phase | None = None,
                        status: Status | None = None, failed: bool = False) -> list[tuple[int, Evaluation]]:
        """Up to ``limit`` training runs stored after row ``after``, as (row id, record), filtered by phase and
        status (``failed``: every status but ok); a reader pages through 100,000 runs by passing the last id
        it got, which the primary key finds without scanning (``?after=`` of ``afos serve``'s API)."""
        conditions: list[str] = ["id > ?"]
        values: list[int | str] = [int(after)]
        if phase is not None:
            conditions.append("phase = ?")
            values.append(phase.value)
        if status is not None:
            conditions.append("status = ?")
            values.append(status.value)
        if failed:
            conditions.append("status != 'ok'")
        rows = self._conn.execute(f"SELECT * FROM evaluations WHERE {' AND '.join(conditions)} ORDER BY id LIMIT ?",
                                  (*values, int(limit)))
        return [(row["id"], self._evaluation(row)) for row in rows]

    def function_totals(self, activation_key: str) -> tuple[int, int, list[str], float | None, float | None]:
        """The training runs of one function, summed in SQL (a function may have thousands of runs): how many,
        how many finished ok, the phases they served, and the mean validation and test accuracy of the ok ones."""
        row = self._conn.execute(
            "SELECT count(*), coalesce(sum(status = 'ok'), 0), group_concat(DISTINCT phase), "
            "avg(CASE WHEN status = 'ok' THEN val_accuracy END), avg(CASE WHEN status = 'ok' THEN test_accuracy END) "
            "FROM evaluations WHERE activation_key = ?", (activation_key,)).fetchone()
        return int(row[0]), int(row[1]), sorted((row[2] or "").split(",")) if row[2] else [], row[3], row[4]

    def count_evaluations(self, phase: Phase | None = None) -> int:
        if phase is None:
            return self._conn.execute("SELECT count(*) FROM evaluations").fetchone()[0]
        return self._conn.execute("SELECT count(*) FROM evaluations WHERE phase = ?", (phase.value,)).fetchone()[0]

    def _evaluation(self, row: sqlite3.Row) -> Evaluation:
        return evaluation_from_row(row, f"{self.path}: evaluation {row['id']}")

    # --- generations ----------------------------------------------------------------------------------

    def save_generation(self, generation: Generation) -> None:
        """Save a resume point: everything needed to continue the search after it.

        Saving a generation number again replaces it (a resumed run that redoes a generation writes the
        state it actually continued from).
        """
        with self.transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO generations "
                "(generation, stats, population, hall_of_fame, rng_state, finished) VALUES (?, ?, ?, ?, ?, ?)",
                generation_row(generation))

    def last_generation(self) -> Generation | None:
        """The highest generation saved, or None for a run that has not finished one."""
        row = self._conn.execute("SELECT * FROM generations ORDER BY generation DESC LIMIT 1").fetchone()
        return None if row is None else self._generation(row)

    def generations(self) -> list[Generation]:
        """All saved generations in order."""
        return [self._generation(row) for row in self._conn.execute("SELECT * FROM generations ORDER BY generation")]

    def _generation(self, row: sqlite3.Row) -> Generation:
        return generation_from_row(row, f"{self.path}: generation {row['generation']}")
