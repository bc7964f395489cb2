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


def test_a_hostile_database_is_one_unreadable_row_and_the_others_are_listed(tmp_path: Path) -> None:
    """A run database is untrusted input: a meta config that is a list, or a winner without a verdict, makes
    its row unreadable or unconfirmed; every other run is listed, by `afos runs` as by the API."""
    import shutil
    import sqlite3

    done = _afos("search", "--population", "3", "--generations", "1", "--epochs", "0.5", "--no-confirm",
                 "--out", str(tmp_path / "good"), "--quiet")
    assert done.returncode == 0, done.stderr
    for name, key, value in (("bad-config", "config", [1, 2, 3]), ("bad-winner", "winner", {"canonical": "x"})):
        shutil.copytree(tmp_path / "good", tmp_path / name)
        with sqlite3.connect(tmp_path / name / "afos.db") as connection:
            connection.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))
    rows = {row.run: row for row in list_runs(tmp_path)}
    assert rows["good"].status is RunStatus.FINISHED and rows["good"].best is not None
    assert rows["bad-config"].status is None and rows["bad-config"].reason.startswith("unreadable")
    assert rows["bad-winner"].status is RunStatus.FINISHED and rows["bad-winner"].verdict is None
    shown = _afos("runs", str(tmp_path))
    assert shown.returncode == 0 and "unreadable" in shown.stdout, shown.stderr


def test_a_run_json_that_is_a_fifo_or_a_link_does_not_hang_the_listing(tmp_path: Path) -> None:
    """Readers of run folders never block or read forever: a FIFO, a link to /dev/zero and an oversized
    file in place of run.json are read as no run.json at all."""
    import os

    from afos.storage.liveness import read_state

    for name in ("fifo", "zero", "huge"):
        (tmp_path / name).mkdir()
    os.mkfifo(tmp_path / "fifo" / "run.json")
    (tmp_path / "zero" / "run.json").symlink_to("/dev/zero")
    (tmp_path / "huge" / "run.json").write_text(" " * (1 << 20))
    done = subprocess.run([sys.executable, "-c", "import sys; from afos.storage.liveness import read_state; "
                           "print([read_state(p) for p in sys.argv[1:]])", *(str(tmp_path / n) for n in
                                                                            ("fifo", "zero", "huge"))],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[None, None, None]", done.stderr
    assert read_state(tmp_path / "fifo") is None
