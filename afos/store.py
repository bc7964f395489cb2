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
* **No pickle.** Structured values are JSON text, so opening a database from elsewhere cannot run code,
  and users can query it with plain ``sqlite3``. JSON columns are declared ``TEXT``: a column declared
  ``JSON`` gets NUMERIC affinity and SQLite would turn the text ``'1.0'`` into the integer 1 (and big ints
  into lossy floats). Non-finite floats become NULL/``null``, since JSON has no NaN.

It serialises the typed records of :mod:`afos.evaluation` and sits above search/compare and below report
and cli in the layering: search and compare are handed a store, they never open one.
A ``RunStore`` belongs to the thread that opened it (sqlite3's default check), and there is one writer, the
driver process; other processes may open the same file with ``readonly=True``.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any

from afos.errors import StoreError
from afos.records import WORKER_DIED, EvalKey, Evaluation, Phase

SCHEMA_VERSION = 2

# Separate statements (not one script): executescript() would COMMIT the transaction the schema is made in.
_SCHEMA = (
    """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT                    -- JSON
)""",
    """
CREATE TABLE candidates (
    activation_key TEXT PRIMARY KEY,  -- ActivationSpec.key(): fingerprint, plus a form hash when parametric
    tree           TEXT NOT NULL,     -- the DEAP tree as first proposed
    canonical      TEXT,              -- its canonical expression
    generation     INTEGER,           -- generation of discovery
    status         TEXT NOT NULL,     -- 'valid' or 'screened'
    reason         TEXT,              -- why it was screened out
    created        REAL NOT NULL      -- unix seconds
)""",
    """
CREATE TABLE evaluations (
    id             INTEGER PRIMARY KEY,
    activation_key TEXT NOT NULL,     -- ActivationSpec.key() of the function trained
    protocol       TEXT NOT NULL,     -- evaluation.protocol_id() of the resolved training config
    budget         REAL NOT NULL,     -- epochs
    seed           INTEGER NOT NULL,
    task           TEXT NOT NULL,     -- 'dataset/model'
    status         TEXT NOT NULL,     -- evaluation.Status
    reason         TEXT,
    val_accuracy   REAL,
    val_loss       REAL,
    test_accuracy  REAL,
    test_loss      REAL,
    train_loss     REAL,
    epochs         REAL,
    steps          INTEGER,
    seconds        REAL,
    expression     TEXT,              -- canonical expression of the function trained
    activation     TEXT,              -- JSON: ActivationSpec.to_dict()
    phase          TEXT NOT NULL,     -- evaluation.Phase: search, baseline, confirm, grid
    generation     INTEGER,           -- search generation that asked for it (NULL outside the search loop)
    origin         TEXT NOT NULL,     -- 'trained' (by this run) or 'reused' (copied from another run)
    source         TEXT,              -- the run it was copied from, for origin 'reused'
    attempts       INTEGER NOT NULL,  -- invocations that tried it (a run lost with its worker is retried)
    params         TEXT,              -- JSON: learned parameters per activation site
    history        TEXT,              -- JSON: one entry per validation pass
    extra          TEXT,              -- JSON: result fields without a column
    created        REAL NOT NULL
)""",
    "CREATE UNIQUE INDEX evaluations_key ON evaluations (activation_key, protocol, budget, seed, task)",
    "CREATE INDEX evaluations_task ON evaluations (task)",
    """
CREATE TABLE generations (
    generation   INTEGER PRIMARY KEY,
    stats        TEXT,            -- JSON
    population   TEXT,            -- JSON list of {tree, fitness}
    hall_of_fame TEXT,            -- JSON
    rng_state    TEXT,            -- JSON, see rng_state_to_json()
    finished     REAL             -- unix seconds
)""",
)

# Schema 1 (afos before the evaluation layer) -> 2, in one transaction. Old protocol hashes were made
# differently, so migrated records stay readable (reports) but are never matched by new requests.
_MIGRATE_1_TO_2 = (
    "ALTER TABLE candidates RENAME COLUMN fingerprint TO activation_key",
    "ALTER TABLE candidates DROP COLUMN expression",
    "DROP INDEX evaluations_key",
    "ALTER TABLE evaluations RENAME COLUMN fingerprint TO activation_key",
    "ALTER TABLE evaluations DROP COLUMN fitness",
    "ALTER TABLE evaluations ADD COLUMN activation TEXT",
    "ALTER TABLE evaluations ADD COLUMN phase TEXT NOT NULL DEFAULT 'search'",
    "ALTER TABLE evaluations ADD COLUMN origin TEXT NOT NULL DEFAULT 'trained'",
    "ALTER TABLE evaluations ADD COLUMN source TEXT",
    "ALTER TABLE evaluations ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1",
    "UPDATE evaluations SET task = '' WHERE task IS NULL",
    "UPDATE evaluations SET phase = 'baseline' WHERE generation IS NULL",
    "UPDATE evaluations SET phase = 'grid' WHERE EXISTS "
    "(SELECT 1 FROM meta WHERE key = 'kind' AND value IN ('\"evaluate\"', '\"compare\"'))",
    "CREATE UNIQUE INDEX evaluations_key ON evaluations (activation_key, protocol, budget, seed, task)",
)

_REAL_COLUMNS = ("budget", "val_accuracy", "val_loss", "test_accuracy", "test_loss", "train_loss", "epochs",
                 "seconds", "created")
_INT_COLUMNS = ("seed", "steps", "generation", "attempts")
_TEXT_COLUMNS = ("activation_key", "protocol", "task", "status", "reason", "expression", "phase", "origin",
                 "source")
_JSON_COLUMNS = ("activation", "params", "history", "extra")
_GENERATION_JSON = ("stats", "population", "hall_of_fame", "rng_state")
_BY_KEY = ("SELECT * FROM evaluations WHERE activation_key = ? AND protocol = ? AND budget = ? AND seed = ? "
           "AND task = ?")


def _jsonable(value: Any) -> Any:
    """Plain JSON data from ``value``: non-finite floats -> None, tuples -> lists, enums by value, numpy values
    via ``tolist``.

    Duck-typing ``tolist`` lets numpy scalars/arrays from training code be stored without importing numpy.
    """
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    raise TypeError(f"cannot store a {type(value).__name__} as JSON: {value!r}")


def _dumps(value: Any) -> str | None:
    """JSON text for a column, or SQL NULL for None (so ``WHERE params IS NULL`` means 'absent')."""
    return None if value is None else json.dumps(_jsonable(value), allow_nan=False)


def _loads(text: str | None, where: str) -> Any:
    """Decode a JSON column; a database is untrusted input, so malformed text is a StoreError naming it."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise StoreError(f"{where} holds malformed JSON") from None


def _real(value: Any) -> float | None:
    """A REAL column value: NaN/inf are stored as NULL because they mean 'no measurement'."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


class RunStore:
    """One run database. Writable by default (creates the file and schema); ``readonly=True`` for readers.

    ``meta`` given when opening writable is written in the transaction that creates the schema, so a
    database is never seen with a schema but without its config (a kill at any moment leaves either no
    schema at all or a complete start).
    """

    def __init__(self, path: str | Path, *, readonly: bool = False, meta: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._depth = 0
        try:
            self._conn = self._connect()
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: cannot open the run database ({error})") from None
        try:
            self._conn.row_factory = sqlite3.Row
            if not readonly:
                self._conn.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
                self._conn.execute("PRAGMA synchronous=FULL")  # per connection; see the module docstring
            self._check_schema(meta or {})
        except sqlite3.OperationalError:
            self._conn.close()
            raise  # a full or unreadable disk, a lock: the CLI's boundary says what to do about it
        except sqlite3.DatabaseError as error:
            self._conn.close()
            raise StoreError(f"{self.path} is not a usable afos run database ({error})") from None
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        """Autocommit connection (``isolation_level=None``), so that :meth:`transaction` alone decides where
        transactions begin and end (the default would open one implicitly before any INSERT).

        Readers use a ``mode=ro`` URI: SQLite itself refuses their writes, and a missing file is an error
        rather than a new empty database. Where the folder cannot be written (an archived or shared results
        folder), a WAL reader could not create its shared-memory file, so the file is opened ``immutable``.
        The busy timeout waits out another connection's short locks (WAL recovery, checkpoints).
        """
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder, not a run database")
        if not self.readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        if not self.path.is_file():
            raise FileNotFoundError(f"no run database at {self.path}")
        flags = "mode=ro" if os.access(self.path.parent, os.W_OK) else "mode=ro&immutable=1"
        uri = self.path.resolve().as_uri() + "?" + flags
        return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)

    def _check_schema(self, meta: Mapping[str, Any]) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {version}; this afos reads up to "
                             f"{SCHEMA_VERSION} (upgrade afos)")
        if version == SCHEMA_VERSION:
            return
        tables = self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if version == 1 and tables:
            self._migrate_from_1()
            return
        if tables:
            raise StoreError(f"{self.path} is not an afos run database")
        if self.readonly:
            raise StoreError(f"{self.path} is an empty file, not an afos run database")
        with self.transaction():
            for statement in _SCHEMA:
                self._conn.execute(statement)
            for key, value in meta.items():
                self.set_meta(key, value)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _migrate_from_1(self) -> None:
        if self.readonly:
            raise StoreError(f"{self.path} was written by an older afos (schema 1); open it once with a command "
                             f"that may write to it (e.g. `afos report {self.path.parent}`) to upgrade it")
        try:
            with self.transaction():
                for statement in _MIGRATE_1_TO_2:
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: cannot upgrade this schema-1 database ({error}); its CSV and "
                             f"report files still hold its results") from None

    def close(self) -> None:
        """Close the connection; an open transaction is rolled back. Safe to call twice."""
        self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all.

        ``BEGIN IMMEDIATE`` takes the write lock up front, so a transaction can never fail half-way with
        SQLITE_BUSY when it first writes after having read. A nested block joins the outer transaction
        through a SAVEPOINT: nothing is committed until the outermost block ends, and an exception leaving
        an inner block undoes that block's writes only, even if the outer block catches it.
        """
        if self.readonly:
            raise StoreError(f"{self.path} was opened read-only")
        if self._depth:
            yield from self._savepoint()
            return
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:  # also when COMMIT itself failed (disk full, I/O error)
                self._conn.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0

    def _savepoint(self) -> Iterator[None]:
        name = f"afos_{self._depth}"
        self._conn.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException:
            if self._conn.in_transaction:  # some errors (SQLITE_FULL) already rolled back everything
                self._conn.execute(f"ROLLBACK TO {name}")
            raise
        finally:
            self._depth -= 1
            if self._conn.in_transaction:
                self._conn.execute(f"RELEASE {name}")

    # --- run metadata ---------------------------------------------------------------------------------

    def set_meta(self, key: str, value: object) -> None:
        """Set a run-level value (config, versions, status); any JSON-able value, replacing the old one."""
        with self.transaction():
            self._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                               "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                               (key, json.dumps(_jsonable(value), allow_nan=False)))

    def get_meta(self, key: str, default: object = None) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else _loads(row["value"], f"{self.path}: meta {key!r}")

    # --- candidates -----------------------------------------------------------------------------------

    def add_candidate(self, *, activation_key: str, tree: str, canonical: str, generation: int, status: str,
                      reason: str | None = None) -> bool:
        """Record a distinct function the first time its key is seen; True if it was new.

        A known key keeps its first row (first tree, generation of discovery).
        """
        with self.transaction():
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO candidates "
                "(activation_key, tree, canonical, generation, status, reason, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (activation_key, tree, canonical, _int(generation), status, reason, time.time()))
        return cursor.rowcount == 1

    def candidates(self) -> list[dict]:
        """All candidates in the order they were first seen."""
        return [dict(row) for row in self._conn.execute("SELECT * FROM candidates ORDER BY rowid")]

    # --- evaluations ----------------------------------------------------------------------------------

    def add_evaluation(self, evaluation: Evaluation) -> None:
        """Store one training run.

        An evaluation is a fact: if its key is already stored, the first record is kept, except a record
        that is not :attr:`~afos.evaluation.Evaluation.final` (its worker died), which a new attempt replaces.
        """
        row = _evaluation_row(evaluation)
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        updates = ", ".join(f"{column} = excluded.{column}" for column in row)
        with self.transaction():
            self._conn.execute(
                f"INSERT INTO evaluations ({columns}) VALUES ({marks}) "
                "ON CONFLICT (activation_key, protocol, budget, seed, task) DO UPDATE SET "
                f"{updates} WHERE evaluations.status = 'error' AND evaluations.reason LIKE '{WORKER_DIED}%'",
                tuple(row.values()))

    def find_evaluation(self, key: EvalKey) -> Evaluation | None:
        """The training run with this key, or None."""
        row = self._conn.execute(_BY_KEY, (key.activation_key, key.protocol, float(key.budget), int(key.seed),
                                           key.task)).fetchone()
        return None if row is None else self._evaluation(row)

    def evaluations(self, *, activation_key: str | None = None, protocol: str | None = None,
                    phase: Phase | None = None, task: str | None = None) -> list[Evaluation]:
        """Training runs in insertion order, filtered by whichever arguments are not None."""
        filters = {"activation_key": activation_key, "protocol": protocol, "task": task,
                   "phase": phase.value if phase else None}
        used = {column: value for column, value in filters.items() if value is not None}
        where = " AND ".join(f"{column} = ?" for column in used) or "1"
        rows = self._conn.execute(f"SELECT * FROM evaluations WHERE {where} ORDER BY id", tuple(used.values()))
        return [self._evaluation(row) for row in rows]

    def count_evaluations(self, phase: Phase | None = None) -> int:
        if phase is None:
            return self._conn.execute("SELECT count(*) FROM evaluations").fetchone()[0]
        return self._conn.execute("SELECT count(*) FROM evaluations WHERE phase = ?", (phase.value,)).fetchone()[0]

    def _evaluation(self, row: sqlite3.Row) -> Evaluation:
        """A typed record from a row, checked like user input: a malformed row is a StoreError."""
        values = dict(row)
        where = f"{self.path}: evaluation {values.get('id')}"
        for column in _JSON_COLUMNS:
            values[column] = _loads(values[column], where)
        try:
            values["params"] = values["params"] or {}
            values["history"] = values["history"] or []
            values["extra"] = values["extra"] or {}
            values["activation"] = values["activation"] or {}
            values["reason"] = values["reason"] or ""
            for column in ("epochs", "seconds", "created"):
                values[column] = values[column] or 0.0
            values["steps"] = values["steps"] or 0
            shapes = {"params": dict, "history": list, "extra": dict, "activation": dict}
            if not all(isinstance(values[c], kind) for c, kind in shapes.items()):
                raise TypeError("a JSON column has the wrong shape")
            return Evaluation.from_dict(values)
        except (TypeError, ValueError) as error:
            raise StoreError(f"{where} is malformed ({error})") from None

    # --- generations ----------------------------------------------------------------------------------

    def save_generation(self, generation: int, *, stats: dict, population: list[dict],
                        hall_of_fame: list[dict], rng_state: dict) -> None:
        """Save a resume point: everything needed to continue the search after ``generation``.

        Saving a generation number again replaces it (a resumed run that redoes a generation writes the
        state it actually continued from).
        """
        with self.transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO generations "
                "(generation, stats, population, hall_of_fame, rng_state, finished) VALUES (?, ?, ?, ?, ?, ?)",
                (int(generation), _dumps(stats), _dumps(population), _dumps(hall_of_fame), _dumps(rng_state),
                 time.time()))

    def last_generation(self) -> dict | None:
        """The highest generation saved (decoded), or None for a run that has not finished one."""
        row = self._conn.execute("SELECT * FROM generations ORDER BY generation DESC LIMIT 1").fetchone()
        return None if row is None else self._generation(row)

    def generations(self) -> list[dict]:
        """All saved generations in order, decoded like :meth:`last_generation`."""
        return [self._generation(row) for row in self._conn.execute("SELECT * FROM generations ORDER BY generation")]

    def _generation(self, row: sqlite3.Row) -> dict:
        data = dict(row)
        where = f"{self.path}: generation {data.get('generation')}"
        for column in _GENERATION_JSON:
            data[column] = _loads(data[column], where)
        shapes = {"stats": dict, "population": list, "hall_of_fame": list, "rng_state": dict}
        if not all(isinstance(data[c], kind) for c, kind in shapes.items()):
            raise StoreError(f"{where} is malformed")
        return data


def _evaluation_row(evaluation: Evaluation) -> dict[str, Any]:
    """Column -> SQL value for a record."""
    values = evaluation.to_dict()
    row: dict[str, Any] = {column: _real(values[column]) for column in _REAL_COLUMNS}
    row.update({column: _int(values[column]) for column in _INT_COLUMNS})
    row.update({column: values[column] for column in _TEXT_COLUMNS})
    row.update({column: _dumps(values[column] or None) for column in _JSON_COLUMNS})
    row["created"] = row["created"] or time.time()
    return row


# --------------------------------------------------------------------------------- other runs, liveness


#: Seconds between listings of the sibling run folders.
RELIST_S = 10.0


class SiblingRuns:
    """The finished records of the other run databases under one results root, read-only: the cache the
    evaluation layer copies from (:class:`afos.evaluation.RecordCache`).

    A database that is foreign, older, broken or still being created is simply not used. The folder is
    listed again at most every :data:`RELIST_S` seconds (listing costs more than the lookups), so a run
    that appears beside this one is seen soon after.
    """

    def __init__(self, root: Path, exclude: Path) -> None:
        self.root = Path(root)
        self.exclude = Path(exclude).resolve()
        self._open: dict[Path, RunStore] = {}
        self._broken: set[Path] = set()
        self._paths: list[Path] = []
        self._listed = -math.inf

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
            self._paths, self._listed = sorted(self.root.glob("*/afos.db")), time.monotonic()
        for path in self._paths:
            if path.parent.resolve() == self.exclude or path in self._broken:
                continue
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


#: Seconds between heartbeats of a working run; a run whose last one is older than STALE_S is not alive.
HEARTBEAT_S = 10.0
STALE_S = 120.0


class Heartbeat:
    """Writes ``host``, ``pid`` and, every :data:`HEARTBEAT_S`, ``heartbeat`` (unix seconds) into a run's
    meta from a thread of its own (with its own connection), so that readers can tell a working run from
    one whose process is gone, also while a single training run takes hours."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="afos-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        with RunStore(self.path) as store, store.transaction():
            store.set_meta("host", socket.gethostname())
            store.set_meta("pid", os.getpid())
            store.set_meta("heartbeat", time.time())
        self._thread.start()
        return self

    def _beat(self) -> None:
        with RunStore(self.path) as store:
            while not self._stop.wait(HEARTBEAT_S):
                try:
                    store.set_meta("heartbeat", time.time())
                except sqlite3.Error:  # a full disk or a lock: the next beat tries again
                    continue

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_S + 5)


def is_alive(host: Any, pid: Any, heartbeat: Any, now: float | None = None) -> bool:
    """Whether the process that last worked on a run still does: its heartbeat is fresh and, on this host,
    its pid exists. A run without heartbeat data (an older afos) counts as alive."""
    if not isinstance(heartbeat, (int, float)):
        return True
    if (now or time.time()) - heartbeat > STALE_S:
        return False
    if host == socket.gethostname() and isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True
