"""Files replaced whole: a reader sees the old file or the new one, never half of either.

Everything afos writes beside a run's database (``run.json``, the CSV tables, ``report.md``, the plots) is
rewritten while a search runs, and may be read at that moment by ``afos runs``, a browser or ``tail``, or be
cut by a kill. Each is written to a hidden file in the same folder, flushed to disk and renamed over the old
one, which POSIX makes atomic within a filesystem.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replaced_atomically(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block ends without an
    error, removed when it raises. A ``path`` that exists and is not a regular file (``/dev/stdout``, a
    pipe, a device) is written in place: renaming onto it would replace the device with a file."""
    target = Path(path)
    if target.exists() and not target.is_file():
        yield target
        return
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        yield partial
        with partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Replace the text file ``path`` atomically."""
    with replaced_atomically(path) as partial:
        partial.write_text(text)
