"""Where runs lie: a results root holds one folder per run, and a run folder is one holding :data:`DATABASE`.

Every reader that looks for runs under a root asks :func:`run_databases`, so that the rule (a folder
directly under the root, holding a regular database file) is written once; every file afos writes into a
run folder (or a report folder) is named once, by :class:`RunFiles`.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class RunFiles:
    """The files of a run folder, or of the folder a report is written into (``afos report --out``): every
    name afos gives them, in one place. The database, ``run.json`` and the writer's lock are the storage's
    own (:mod:`afos.storage.liveness`); these are what the reports and the progress log write beside them."""

    folder: Path

    @property
    def database(self) -> Path:
        return self.folder / DATABASE

    @property
    def report(self) -> Path:
        """``report.md``: a search's or a comparison's report."""
        return self.folder / "report.md"

    @property
    def results_md(self) -> Path:
        """``results.md``: an evaluation's report."""
        return self.folder / "results.md"

    @property
    def results_json(self) -> Path:
        return self.folder / "results.json"

    @property
    def results_csv(self) -> Path:
        return self.folder / "results.csv"

    @property
    def runs_csv(self) -> Path:
        return self.folder / "runs.csv"

    @property
    def hall_of_fame_csv(self) -> Path:
        return self.folder / "hall_of_fame.csv"

    @property
    def generations_csv(self) -> Path:
        return self.folder / "generations.csv"

    @property
    def finalists_csv(self) -> Path:
        return self.folder / "finalists.csv"

    def log(self, kind: str) -> Path:
        """``search.log``, ``evaluate.log``, ``compare.log``: the progress of every invocation on the run."""
        return self.folder / f"{kind}.log"
