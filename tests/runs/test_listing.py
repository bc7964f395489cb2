"""``afos runs``: oldest run first, a header, times as ISO 8601 in JSON, and no torch imported to list."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from afos.records.runs import RunKind, RunStatus
from afos.runs.listing import list_runs


def _afos(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "afos", *argv], capture_output=True, text=True, timeout=300)


def test_runs_are_listed_oldest_first_with_iso_times(tmp_path: Path) -> None:
    for name in ("zeta", "alpha"):  # zeta starts first, so it is listed first although it sorts last by name
        done = _afos("evaluate", "relu", "--seeds", "1", "--epochs", "1", "--out", str(tmp_path / name), "--quiet")
        assert done.returncode == 0, done.stderr
    assert [row.run for row in list_runs(tmp_path)] == ["zeta", "alpha"]
    listed = json.loads(_afos("runs", str(tmp_path), "--json").stdout)
    assert [(row["run"], row["kind"], row["status"]) for row in listed] == [
        ("zeta", RunKind.EVALUATE.value, RunStatus.FINISHED.value), ("alpha", "evaluate", "finished")]
    started, beat = (datetime.fromisoformat(listed[0][key]) for key in ("started", "heartbeat"))
    assert started.utcoffset() is not None and started <= beat
    table = _afos("runs", str(tmp_path)).stdout.splitlines()
    assert table[0].split()[:4] == ["STARTED", "RUN", "KIND", "STATUS"]
    assert [line.split()[2] for line in table[1:]] == ["zeta", "alpha"]


def test_listing_runs_imports_neither_torch_nor_the_statistics() -> None:
    code = ("import sys, afos.cli, afos.runs.listing; "
            "print(sorted(m for m in ('torch', 'scipy', 'sympy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


def test_a_stopped_confirmation_names_no_verdict(tmp_path: Path) -> None:
    """A confirmation stopped after its first seeds holds finalist rows whose statistics mean nothing yet:
    the run is listed with its search's best, unconfirmed, not with a verdict."""
    import sqlite3

    done = _afos("search", "--population", "4", "--generations", "1", "--epochs", "1", "--confirm-top", "2",
                 "--confirm-seeds", "2", "--out", str(tmp_path / "run"), "--quiet")
    assert done.returncode == 0, done.stderr
    (row,) = list_runs(tmp_path)
    assert row.verdict is not None
    with sqlite3.connect(tmp_path / "run" / "afos.db") as connection:  # the state a kill in the confirmation leaves
        connection.execute("DELETE FROM meta WHERE key = 'winner'")
        connection.execute("UPDATE meta SET value = ? WHERE key = 'status'", (json.dumps("interrupted"),))
    (row,) = list_runs(tmp_path)
    assert row.verdict is None and row.best is not None
    assert "(unconfirmed: search fitness" in _afos("runs", str(tmp_path)).stdout
