"""Where runs lie: a results root holds one folder per run, and a run folder is one holding :data:`DATABASE`.

Every reader that looks for runs under a root asks :func:`run_databases`, so that the rule (a folder
directly under the root, holding a regular database file) is written once.
"""

from __future__ import annotations

from pathlib import Path

#: A run folder is a folder holding this database.
DATABASE = "afos.db"


def run_databases(root: str | Path, *, links: bool = True) -> list[Path]:
    """The database of every run folder directly under ``root``, sorted by path (empty when ``root`` is not a
    folder). With ``links=False`` a folder or database that is a symbolic link is left out: a server must
    not follow one, since it could lead anywhere on the machine."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = (db for db in sorted(root.glob(f"*/{DATABASE}")) if db.is_file())
    return [db for db in found if links or not (db.is_symlink() or db.parent.is_symlink())]


def run_database(run_dir: str | Path) -> Path:
    """The database of the run folder ``run_dir``."""
    return Path(run_dir) / DATABASE
