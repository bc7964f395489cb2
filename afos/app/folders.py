"""Which runs a results root holds, and whether one changed since a reader last looked.

Run folders are found again on every request, so a run started after the server appears without a restart.
A request names a run by its folder's name, and the name is only ever looked up among the folders found:
no path is built from request text. A folder or database that is a symbolic link is not a run here: it could
lead anywhere on the machine. Text a run holds is shown up to :data:`SHOWN_TEXT` characters: a failure reason
is a line or a short traceback, and a hostile database's megabytes would otherwise be sent to every reader.

A run's *version* is the size and modification time of the files its process writes (the database, its
write-ahead log and ``run.json``): pages poll it to learn, without opening the database, that something
new was written, and views and pages are cached under it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import replace
from pathlib import Path

from afos.errors import StoreError, UserError
from afos.records.evaluation import Evaluation
from afos.storage.layout import DATABASE, run_databases
from afos.storage.liveness import STATE_FILE, running_elsewhere

#: The files a working run writes; any change to one changes the run's version.
WRITTEN = (DATABASE, f"{DATABASE}-wal", STATE_FILE)
#: What reading a run folder may raise when its files are not what afos wrote.
READ_ERRORS = (StoreError, UserError, OSError, sqlite3.Error, ValueError, KeyError, TypeError, AttributeError)
#: The most characters of one stored text (a failure or screening reason) a page or the API shows.
SHOWN_TEXT = 4000


def run_folders(root: Path) -> dict[str, Path]:
    """Every run folder directly under ``root``, by name (empty when ``root`` does not exist yet)."""
    return {db.parent.name: db.parent for db in run_databases(root, links=False)}


def run_folder(root: Path, name: str) -> Path | None:
    """The folder of the run called ``name``, or None when no such run is under ``root``."""
    return run_folders(root).get(name)


def version(folder: Path) -> str:
    """A short text that changes whenever the run's process writes anything, and when that process is
    found gone (killed: its files stop changing, but an open page must learn that it died)."""
    stamps = [f"alive:{running_elsewhere(folder)}"]
    for name in WRITTEN:
        try:
            stat = (folder / name).stat()
        except OSError:
            stamps.append(f"{name}:-")
            continue
        stamps.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha1("|".join(stamps).encode()).hexdigest()[:16]


def root_version(root: Path) -> str:
    """A short text that changes when a run appears, goes, or changes under ``root``."""
    parts = [f"{name}={version(folder)}" for name, folder in run_folders(root).items()]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


#: What a run's report writes into its folder that the server hands out, by suffix, with its media type.
SERVED = {".png": "image/png", ".csv": "text/csv; charset=utf-8", ".md": "text/markdown; charset=utf-8",
          ".json": "application/json", ".log": "text/plain; charset=utf-8"}


def run_files(folder: Path) -> list[str]:
    """The names of the files a run's report wrote into its folder (pictures, tables, the report, the
    log): plain files only, since a link could point anywhere; ``run.json`` is the liveness file, not a
    result."""
    return sorted(path.name for path in folder.iterdir() if path.suffix in SERVED and path.name != STATE_FILE
                  and path.is_file() and not path.is_symlink())


def clipped(text: str) -> str:
    """``text`` cut to :data:`SHOWN_TEXT` characters, saying how much was left out."""
    if len(text) <= SHOWN_TEXT:
        return text
    return f"{text[:SHOWN_TEXT]} … ({len(text) - SHOWN_TEXT:,} more characters, in the run's database)"


def shown(evaluation: Evaluation) -> Evaluation:
    """The training run as pages and the API show it: its reason clipped."""
    return replace(evaluation, reason=clipped(evaluation.reason))
