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

Standard library only: this module sits below report and cli and above search/compare in the layering.
A ``RunStore`` belongs to the thread that opened it (sqlite3's default check), and there is one writer, the
driver process; other processes may open the same file with ``readonly=True``.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

# Separate statements (not one script): executescript() would COMMIT the transaction the schema is made in.
_SCHEMA = (
    """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT                    -- JSON
)""",
    """
CREATE TABLE candidates (
    fingerprint TEXT PRIMARY KEY,
    expression  TEXT NOT NULL,
    canonical   TEXT,
    tree        TEXT,
    generation  INTEGER,
    status      TEXT NOT NULL,
    reason      TEXT,
    created     REAL NOT NULL     -- unix seconds
)""",
    """
CREATE TABLE evaluations (
    id            INTEGER PRIMARY KEY,
    fingerprint   TEXT NOT NULL,
    protocol      TEXT NOT NULL,  -- protocol_hash() of the training settings
    budget        REAL NOT NULL,  -- epochs
    seed          INTEGER NOT NULL,
    task          TEXT,           -- e.g. 'digits/mlp' in compare grids; NULL in a search
    status        TEXT NOT NULL,
    reason        TEXT,
    fitness       REAL,
    val_accuracy  REAL,
    val_loss      REAL,
    test_accuracy REAL,
    test_loss     REAL,
    train_loss    REAL,
    epochs        REAL,
    steps         INTEGER,
    seconds       REAL,
    generation    INTEGER,
    expression    TEXT,
    params        TEXT,           -- JSON
    history       TEXT,           -- JSON
    extra         TEXT,           -- JSON: record keys that have no column
    created       REAL NOT NULL
)""",
    # One row per training run. task goes through ifnull() because NULLs never collide in a UNIQUE index.
    # The leading (fingerprint, protocol) columns also serve the per-candidate lookups.
    """
CREATE UNIQUE INDEX evaluations_key
    ON evaluations (fingerprint, protocol, budget, seed, ifnull(task, ''))""",
    "CREATE INDEX evaluations_task ON evaluations (task)",
    """
CREATE TABLE generations (
    generation   INTEGER PRIMARY KEY,
    stats        TEXT,            -- JSON
    population   TEXT,            -- JSON list of tree strings
    hall_of_fame TEXT,            -- JSON
    rng_state    TEXT,            -- JSON, see rng_state_to_json()
    finished     REAL             -- unix seconds
)""",
)

_REAL_COLUMNS = ("budget", "fitness", "val_accuracy", "val_loss", "test_accuracy", "test_loss",
                 "train_loss", "epochs", "seconds")
_INT_COLUMNS = ("seed", "steps", "generation")
_TEXT_COLUMNS = ("fingerprint", "protocol", "task", "status", "reason", "expression")
_JSON_COLUMNS = ("params", "history", "extra")
_REQUIRED = ("fingerprint", "protocol", "budget", "seed", "status")
_GENERATION_JSON = ("stats", "population", "hall_of_fame", "rng_state")
# The UNIQUE key of evaluations, written as its index is (so SQLite uses it); '' and NULL tasks are one key.
_BY_KEY = ("SELECT {} FROM evaluations WHERE fingerprint = ? AND protocol = ? AND budget = ? AND seed = ? "
           "AND ifnull(task, '') = ifnull(?, '')")


class StoreError(Exception):
    """The file is not a usable afos run database, or a write was attempted on a read-only store."""


def _jsonable(value: Any) -> Any:
    """Plain JSON data from ``value``: non-finite floats -> None, tuples -> lists, numpy values via ``tolist``.

    Duck-typing ``tolist`` lets numpy scalars/arrays from training code be stored without importing numpy.
    """
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


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _real(value: Any) -> float | None:
    """A REAL column value: NaN/inf are stored as NULL because they mean 'no measurement'."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def protocol_hash(settings: dict) -> str:
    """Stable 16-hex-digit sha256 of the training settings, to tell whether two evaluations are comparable.

    The dict is serialised as canonical JSON (sorted keys, no spaces), so key order does not matter.
    Integral floats hash as ints (``epochs=1`` from a CLI flag equals ``epochs = 1.0`` from TOML), and
    non-finite floats as their names so ``timeout_s=inf`` stays distinct from ``None``.
    """
    text = json.dumps(_canonical(settings), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _canonical(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays, as in _jsonable
        value = value.tolist()
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    return _jsonable(value)


def rng_state_to_json(py_random_state: tuple, numpy_state: dict | None = None) -> dict:
    """JSON-able form of ``random.getstate()`` (and optionally a numpy ``bit_generator.state`` dict).

    Stored so a resumed search draws exactly the random numbers the uninterrupted one would have; pickle
    would do it in one line but would make opening someone else's ``afos.db`` a code-execution risk.
    """
    version, internal, gauss_next = py_random_state
    return {
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
        "numpy": _jsonable(numpy_state),
    }


def rng_state_from_json(d: dict) -> tuple[tuple, dict | None]:
    """Inverse of :func:`rng_state_to_json`: ``(state for random.setstate, numpy state dict or None)``."""
    python = d["python"]
    return (python["version"], tuple(python["state"]), python["gauss_next"]), d.get("numpy")


class RunStore:
    """One run database. Writable by default (creates the file and schema); ``readonly=True`` for readers."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._depth = 0
        self._conn = self._connect()
        try:
            self._conn.row_factory = sqlite3.Row
            if not readonly:
                self._conn.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
                self._conn.execute("PRAGMA synchronous=FULL")  # per connection; see the module docstring
            self._check_schema()
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        """Autocommit connection (``isolation_level=None``), so that :meth:`transaction` alone decides where
        transactions begin and end (the default would open one implicitly before any INSERT).

        Readers use a ``mode=ro`` URI: SQLite itself refuses their writes, and a missing file is an error
        rather than a new empty database. The busy timeout waits out another connection's short locks
        (WAL recovery, checkpoints) instead of failing.
        """
        if not self.readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        if not self.path.is_file():
            raise FileNotFoundError(f"no run database at {self.path}")
        uri = self.path.resolve().as_uri() + "?mode=ro"
        return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)

    def _check_schema(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {version}; this afos reads up to "
                             f"{SCHEMA_VERSION} (upgrade afos)")
        if version == SCHEMA_VERSION:
            return
        if self.readonly or self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreError(f"{self.path} is not an afos run database")
        with self.transaction():
            for statement in _SCHEMA:
                self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

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

    def get_meta(self, key: str, default: object = None) -> object:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else _loads(row["value"])

    # --- candidates -----------------------------------------------------------------------------------

    def add_candidate(self, *, fingerprint: str, expression: str, canonical: str, tree: str,
                      generation: int, status: str, reason: str | None = None) -> bool:
        """Record a distinct function the first time its fingerprint is seen; True if it was new.

        A known fingerprint keeps its first row (first expression, generation of discovery).
        """
        with self.transaction():
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO candidates "
                "(fingerprint, expression, canonical, tree, generation, status, reason, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (fingerprint, expression, canonical, tree, _int(generation), status, reason, time.time()))
        return cursor.rowcount == 1

    def set_candidate_status(self, fingerprint: str, status: str, reason: str | None = None) -> None:
        """Update a candidate's status; KeyError for an unknown fingerprint (a driver bug, not a no-op)."""
        with self.transaction():
            cursor = self._conn.execute("UPDATE candidates SET status = ?, reason = ? WHERE fingerprint = ?",
                                        (status, reason, fingerprint))
        if cursor.rowcount == 0:
            raise KeyError(f"unknown candidate fingerprint {fingerprint!r}")

    def candidate(self, fingerprint: str) -> dict | None:
        row = self._conn.execute("SELECT * FROM candidates WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return None if row is None else dict(row)

    def candidates(self) -> list[dict]:
        """All candidates in the order they were first seen."""
        return [dict(row) for row in self._conn.execute("SELECT * FROM candidates ORDER BY rowid")]

    # --- evaluations ----------------------------------------------------------------------------------

    def add_evaluation(self, record: dict) -> int:
        """Store one training run and return its row id.

        ``record`` needs fingerprint, protocol, budget, seed and status; the other column keys are
        optional; ``created`` defaults to now, ``id`` is ignored (so a row read from another database can
        be copied in), and keys with no column are merged into the ``extra`` JSON object. If a row with
        the same (fingerprint, protocol, budget, seed, task) exists, nothing is written and the existing
        row's id is returned: an evaluation is a fact and the first result recorded is kept.
        """
        row = _evaluation_row(record)
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        with self.transaction():
            cursor = self._conn.execute(f"INSERT INTO evaluations ({columns}) VALUES ({marks}) "
                                        "ON CONFLICT DO NOTHING", tuple(row.values()))
            if cursor.rowcount == 1:
                return cursor.lastrowid
            key = (row["fingerprint"], row["protocol"], row["budget"], row["seed"], row["task"])
            return self._conn.execute(_BY_KEY.format("id"), key).fetchone()[0]

    def find_evaluation(self, fingerprint: str, protocol: str, budget: float, seed: int,
                        task: str | None = None) -> dict | None:
        """The training run with this key (``task=None`` matches only rows without a task), or None."""
        key = (fingerprint, protocol, float(budget), int(seed), task)
        row = self._conn.execute(_BY_KEY.format("*"), key).fetchone()
        return None if row is None else _decode(row, _JSON_COLUMNS)

    def evaluations(self, *, fingerprint: str | None = None, protocol: str | None = None,
                    status: str | None = None, task: str | None = None) -> list[dict]:
        """Training runs in insertion order, filtered by whichever arguments are not None."""
        filters = {"fingerprint": fingerprint, "protocol": protocol, "status": status, "task": task}
        used = {column: value for column, value in filters.items() if value is not None}
        where = " AND ".join(f"{column} = ?" for column in used) or "1"
        rows = self._conn.execute(f"SELECT * FROM evaluations WHERE {where} ORDER BY id", tuple(used.values()))
        return [_decode(row, _JSON_COLUMNS) for row in rows]

    def count_evaluations(self) -> int:
        return self._conn.execute("SELECT count(*) FROM evaluations").fetchone()[0]

    # --- generations ----------------------------------------------------------------------------------

    def save_generation(self, generation: int, *, stats: dict, population: list[str],
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
        return None if row is None else _decode(row, _GENERATION_JSON)

    def generations(self) -> list[dict]:
        """All saved generations in order, decoded like :meth:`last_generation`."""
        rows = self._conn.execute("SELECT * FROM generations ORDER BY generation")
        return [_decode(row, _GENERATION_JSON) for row in rows]


def _evaluation_row(record: dict) -> dict[str, Any]:
    """Column -> SQL value for an evaluation record, with unknown keys folded into ``extra``."""
    missing = [key for key in _REQUIRED if record.get(key) is None]
    if missing:
        raise ValueError(f"evaluation record lacks {', '.join(missing)}")
    known = {*_REAL_COLUMNS, *_INT_COLUMNS, *_TEXT_COLUMNS, *_JSON_COLUMNS, "id", "created"}
    extra = {**(record.get("extra") or {}), **{k: v for k, v in record.items() if k not in known}}
    row: dict[str, Any] = {column: _real(record.get(column)) for column in _REAL_COLUMNS}
    row.update({column: _int(record.get(column)) for column in _INT_COLUMNS})
    row.update({column: record.get(column) for column in _TEXT_COLUMNS})
    row.update(params=_dumps(record.get("params")), history=_dumps(record.get("history")),
               extra=_dumps(extra or None), created=_real(record.get("created")) or time.time())
    return row


def _decode(row: sqlite3.Row, json_columns: tuple[str, ...]) -> dict:
    """A row as a record; keys kept in ``extra`` (metrics without a column, e.g. ``val_f1``) are lifted to the
    top level as well, so readers see a record as it was written."""
    data = dict(row)
    for column in json_columns:
        data[column] = _loads(data[column])
    if isinstance(data.get("extra"), dict):
        data.update({key: value for key, value in data["extra"].items() if key not in data})
    return data
