"""A private copy of a run database whose writer died with its journal beside it, for readers.

Why: a run killed with ``kill -9`` leaves its last committed transactions in the write-ahead log
(``afos.db-wal``), or a hot rollback journal (``afos.db-journal``) on a network filesystem. SQLite can only
read such a file by writing beside it: a WAL reader creates the shared-memory file ``afos.db-shm``, and a
hot journal must be rolled back into the database. An immutable open writes nothing but ignores both, so it
would show a killed run without its last generations (or with half a transaction). ``afos runs`` and
``afos serve`` promise to leave every run folder as they found it, so they read a copy: the database and
its journal copied into a temporary folder of this process, where SQLite may recover them as it likes.

A dead writer's files no longer change, so a copy is made once per state of the files and reused; the few
most recent are kept (:data:`KEPT`), and the temporary folders go when the process ends.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from afos.storage.liveness import running_elsewhere

#: The journals SQLite leaves beside a database whose writer was killed.
JOURNALS = ("-wal", "-journal")
#: Copies kept per process (a server reading several killed runs in turn); each is the size of its database.
KEPT = 4

_copies: OrderedDict[tuple[str, ...], tempfile.TemporaryDirectory[str]] = OrderedDict()
_lock = threading.Lock()


def needs_copy(path: Path) -> bool:
    """Whether reading ``path`` in place would write into its folder: a journal lies beside it and no live
    process owns it (a live WAL writer owns the shared-memory file a reader uses, and writes nothing more
    for it)."""
    journals = [path.with_name(path.name + suffix) for suffix in JOURNALS]
    return any(journal.is_file() for journal in journals) and not running_elsewhere(path.parent)


def private_copy(path: Path) -> Path:
    """A copy of the database at ``path`` with its journals, in a temporary folder of this process."""
    with _lock:
        key = _state(path)
        held = _copies.get(key)
        if held is not None:
            _copies.move_to_end(key)
            return Path(held.name) / path.name
        folder = tempfile.TemporaryDirectory(prefix="afos-read-")
        for suffix in JOURNALS:
            journal = path.with_name(path.name + suffix)
            if journal.is_file():
                shutil.copyfile(journal, Path(folder.name) / journal.name)
        shutil.copyfile(path, Path(folder.name) / path.name)
        _copies[key] = folder
        while len(_copies) > KEPT:
            _copies.popitem(last=False)[1].cleanup()
        return Path(folder.name) / path.name


def _state(path: Path) -> tuple[str, ...]:
    """The path with the size and modification time of the database and each journal: a new state of the
    files is a new copy."""
    stamps = [str(path.resolve())]
    for candidate in (path, *(path.with_name(path.name + suffix) for suffix in JOURNALS)):
        try:
            stat = candidate.stat()
        except OSError:
            stamps.append("-")
            continue
        stamps.append(f"{stat.st_size}:{stat.st_mtime_ns}")
    return tuple(stamps)
