"""One SQLite database file as afos writes it: how it is opened, and transactions that commit or not at all.

:class:`Database` knows nothing of afos's tables: :class:`afos.storage.store.RunStore` builds the run
database on it. The connection is in autocommit mode so that :meth:`Database.transaction` alone decides where
transactions begin and end; the journal and locking follow the filesystem (see :mod:`afos.storage.store`).
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from afos.errors import StoreError
from afos.records.json import dumps as json_text
from afos.records.runs import MetaKey
from afos.storage.filesystems import is_network_filesystem
from afos.storage.schema import loads
from afos.storage.snapshot import needs_copy, private_copy

#: The databases this process holds open for writing, by resolved path: a reader of one of them reads it in
#: place (its writer is alive, here), whether or not a heartbeat says so.
_WRITERS: Counter[Path] = Counter()


class Database:
    """One database file, writable (created with its folder) or ``readonly``; :meth:`prepare` (the subclass's)
    checks or creates the schema, in the same transaction as the ``meta`` of a new file."""

    def __init__(self, path: str | Path, *, readonly: bool = False, meta: Mapping[MetaKey, Any] | None = None) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.network = is_network_filesystem(self.path)
        self._depth = 0
        self._writing: Path | None = None
        try:
            self._conn = self._connect()
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: cannot open the run database ({error})") from None
        try:
            self._conn.row_factory = sqlite3.Row
            if not readonly:
                for pragma in (("journal_mode=DELETE", "locking_mode=EXCLUSIVE") if self.network else
                               ("journal_mode=WAL",)):  # WAL is persistent, stored in the file
                    self._conn.execute(f"PRAGMA {pragma}")
                self._conn.execute("PRAGMA synchronous=FULL")  # per connection; see the module docstring
            self.prepare(meta or {})
        except sqlite3.OperationalError:
            self.close()
            raise  # a full or unreadable disk, a lock: the CLI's boundary says what to do about it
        except sqlite3.DatabaseError as error:
            self.close()
            raise StoreError(f"{self.path} is not a usable afos run database ({error})") from None
        except BaseException:
            self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        """Autocommit connection (``isolation_level=None``), so that :meth:`transaction` alone decides where
        transactions begin and end (the default would open one implicitly before any INSERT).

        Readers use a ``mode=ro`` URI: SQLite itself refuses their writes, and a missing file is an error
        rather than a new empty database. Where the folder cannot be written (an archived or shared results
        folder), a WAL reader could not create its shared-memory file, so the file is opened ``immutable``;
        so is every database on a network filesystem (see the module docstring), and every database without
        a write-ahead log beside it: a WAL writer keeps its log for as long as it is connected, so no process
        writes such a file, and a reader that opened it normally would create the log and shared-memory files
        in a run folder it must leave as it found it (``afos runs``, ``afos serve``). A database whose writer died
        with its journal beside it is read from a private copy (:mod:`afos.storage.snapshot`). The busy timeout waits out
        another connection's short locks (WAL recovery, checkpoints).
        """
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder, not a run database")
        if not self.readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self._writing = self.path.resolve()
            _WRITERS[self._writing] += 1
            return connection
        if not self.path.is_file():
            raise FileNotFoundError(f"no run database at {self.path}")
        if not _WRITERS[self.path.resolve()] and needs_copy(self.path):
            return sqlite3.connect(private_copy(self.path), isolation_level=None, timeout=30.0)
        ended = not self.path.with_name(self.path.name + "-wal").exists()
        shared = self.network or ended or not os.access(self.path.parent, os.W_OK)
        flags = "mode=ro&immutable=1" if shared else "mode=ro"
        uri = self.path.resolve().as_uri() + "?" + flags
        return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)

    def prepare(self, meta: Mapping[MetaKey, Any]) -> None:
        """Check the schema of the file, creating it (with ``meta``) in an empty writable one."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the connection; an open transaction is rolled back. Safe to call twice."""
        self._conn.close()
        if self._writing is not None:
            _WRITERS[self._writing] -= 1
            self._writing = None

    def __enter__(self) -> Database:
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

    def set_meta(self, key: MetaKey, value: object) -> None:
        """Set a run-level value (config, versions, status); any JSON-able value, replacing the old one."""
        with self.transaction():
            self._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                               "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                               (key.value, json_text(value)))

    def get_meta(self, key: MetaKey, default: object = None) -> Any:
        """A run-level value (``default`` when the run has none): untrusted JSON, checked by its reader."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key.value,)).fetchone()
        return default if row is None else loads(row["value"], f"{self.path}: meta {key.value!r}")

