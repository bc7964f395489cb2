"""The run database's schema, its migration from older afos versions, and the row <-> record mapping.

Structured values are JSON text, so opening a database from elsewhere cannot run code, and users can query
it with plain ``sqlite3``. JSON columns are declared ``TEXT``: a column declared ``JSON`` gets NUMERIC
affinity and SQLite would turn the text ``'1.0'`` into the integer 1 (and big ints into lossy floats).
Non-finite floats become NULL/``null``, since JSON has no NaN. A database is untrusted input: every value
read back is checked (:func:`loads`), and a malformed one is a :class:`~afos.errors.StoreError`."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from afos.errors import StoreError
from afos.records.evaluation import Evaluation
from afos.records.json import dumps as json_text
from afos.records.search import Generation, GenerationStats, HallOfFameEntry, Member

SCHEMA_VERSION = 3

# Separate statements (not one script): executescript() would COMMIT the transaction the schema is made in.
SCHEMA = (
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
    created        REAL NOT NULL,     -- unix seconds
    lineage        TEXT               -- JSON: how it was made and its parents' keys (NULL before schema 3)
)""",
    """
CREATE TABLE evaluations (
    id             INTEGER PRIMARY KEY,
    activation_key TEXT NOT NULL,     -- ActivationSpec.key() of the function trained
    protocol       TEXT NOT NULL,     -- afos.training.protocol.protocol_id() of the resolved config
    budget         REAL NOT NULL,     -- epochs
    seed           INTEGER NOT NULL,
    task           TEXT NOT NULL,     -- 'dataset/model'
    status         TEXT NOT NULL,     -- afos.records.evaluation.Status
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
    phase          TEXT NOT NULL,     -- afos.records.evaluation.Phase
    generation     INTEGER,           -- search generation that asked for it (NULL outside the search loop)
    origin         TEXT NOT NULL,     -- 'trained' (by this run) or 'reused' (copied from another run)
    source         TEXT,              -- the run it was copied from, for origin 'reused'
    attempts       INTEGER NOT NULL,  -- invocations that tried it (a lost worker, timeout or OOM is retried)
    params         TEXT,              -- JSON: learned parameters per activation site
    history        TEXT,              -- JSON: one entry per validation pass
    extra          TEXT,              -- JSON: result fields without a column (f1, kernels, threads, …)
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
MIGRATE_1_TO_2 = (
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

# Schema 2 -> 3: candidates record their lineage. Readers open a schema-2 database as it is (no lineage).
MIGRATE_2_TO_3 = ("ALTER TABLE candidates ADD COLUMN lineage TEXT",)
#: The statements that bring a database of each older version to the next one.
MIGRATIONS = {1: MIGRATE_1_TO_2, 2: MIGRATE_2_TO_3}
#: Versions a read-only reader opens without migrating them (their missing columns read as absent).
READABLE_AS_IS = frozenset({2})

_REAL_COLUMNS = ("budget", "val_accuracy", "val_loss", "test_accuracy", "test_loss", "train_loss", "epochs",
                 "seconds", "created")
_INT_COLUMNS = ("seed", "steps", "generation", "attempts")
_TEXT_COLUMNS = ("activation_key", "protocol", "task", "status", "reason", "expression", "phase", "origin",
                 "source")
_JSON_COLUMNS = ("activation", "params", "history")
#: Result fields without a column of their own, kept in the ``extra`` JSON column, each with its type.
EXTRA_FIELDS: dict[str, tuple[type, ...]] = {"val_f1": (float, type(None)), "test_f1": (float, type(None)),
                                             "kernels": (str,), "compile_seconds": (float, int),
                                             "cuda_graphs": (bool,), "kernel_note": (str,), "threads": (int,)}
BY_KEY = ("SELECT * FROM evaluations WHERE activation_key = ? AND protocol = ? AND budget = ? AND seed = ? "
          "AND task = ?")


def dumps(value: Any) -> str | None:
    """JSON text for a column, or SQL NULL for None (so ``WHERE params IS NULL`` means 'absent')."""
    return None if value is None else json_text(value)


def loads(text: str | None, where: str) -> Any:
    """Decode a JSON column; a database is untrusted input, so malformed text is a StoreError naming it."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise StoreError(f"{where} holds malformed JSON") from None


def real_or_none(value: Any) -> float | None:
    """A REAL column value: NaN/inf are stored as NULL because they mean 'no measurement'."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


# ------------------------------------------------------------------------------------------ evaluations


def evaluation_row(evaluation: Evaluation) -> dict[str, Any]:
    """Column -> SQL value for a record."""
    values = evaluation.to_dict()
    row: dict[str, Any] = {column: real_or_none(values[column]) for column in _REAL_COLUMNS}
    row.update({column: int_or_none(values[column]) for column in _INT_COLUMNS})
    row.update({column: values[column] for column in _TEXT_COLUMNS})
    row.update({column: dumps(values[column] or None) for column in _JSON_COLUMNS})
    row["extra"] = dumps({name: values[name] for name in EXTRA_FIELDS})
    row["created"] = row["created"] or time.time()
    return row


def evaluation_from_row(row: Mapping[str, Any] | sqlite3.Row, where: str) -> Evaluation:
    """A typed record from a row, checked like user input: a malformed row is a StoreError naming it."""
    values = dict(row)
    for column in (*_JSON_COLUMNS, "extra"):
        values[column] = loads(values[column], where)
    extra = values.pop("extra") or {}
    try:
        shapes = {"params": dict, "history": list, "activation": dict}
        if not isinstance(extra, dict) or not all(isinstance(values[c] or kind(), kind) for c, kind in shapes.items()):
            raise TypeError("a JSON column has the wrong shape")
        values.update({name: extra[name] for name, kinds in EXTRA_FIELDS.items()
                       if name in extra and isinstance(extra[name], kinds)})
        for column, empty in (("params", {}), ("history", []), ("activation", {}), ("reason", ""), ("epochs", 0.0),
                              ("seconds", 0.0), ("created", 0.0), ("steps", 0)):
            values[column] = values[column] or empty
        return Evaluation.from_dict(values)
    except (TypeError, ValueError, KeyError) as error:
        raise StoreError(f"{where} is malformed ({error})") from None


# ------------------------------------------------------------------------------------------ generations


def generation_row(generation: Generation) -> tuple[Any, ...]:
    """(generation, stats, population, hall_of_fame, rng_state, finished) for the generations table."""
    return (int(generation.generation), json_text(generation.stats), json_text(generation.population),
            json_text(generation.hall_of_fame), json_text(generation.rng_state), time.time())


def generation_from_row(row: Mapping[str, Any] | sqlite3.Row, where: str) -> Generation:
    """A typed resume point from a row, checked like user input."""
    stats, population, hall, rng_state = (loads(row[column], where) for column in
                                          ("stats", "population", "hall_of_fame", "rng_state"))
    try:
        if not (isinstance(stats, dict) and isinstance(population, list) and isinstance(hall, list)
                and isinstance(rng_state, dict)):
            raise TypeError("a JSON column has the wrong shape")
        return Generation(int(row["generation"]), GenerationStats.from_dict(stats),
                          tuple(Member.from_dict(m) for m in population),
                          tuple(HallOfFameEntry.from_dict(e) for e in hall), rng_state, float(row["finished"] or 0.0))
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise StoreError(f"{where} is malformed ({error})") from None
