"""One run lifecycle for every kind: a search, an evaluate grid and a compare grid, each killed with SIGKILL
or stopped with SIGTERM in a real subprocess, are shown ``interrupted`` by ``afos runs`` with the command that
resumes them, and the same command (or ``--resume``) finishes them."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from afos.records.runs import RunKind, RunStatus
from afos.runs.listing import list_runs
from afos.storage.liveness import Heartbeat, writer_lock

#: Per kind: the command (the run folder is appended with --out) and how to resume it.
COMMANDS = {
    RunKind.SEARCH: ["search", "--population", "6", "--generations", "3", "--epochs", "1", "--no-confirm"],
    RunKind.EVALUATE: ["evaluate", "relu", "silu", "tanh", "--seeds", "3", "--epochs", "2"],
    RunKind.COMPARE: ["compare", "relu", "--baseline", "silu,tanh", "--datasets", "digits,wine", "--seeds", "2",
                      "--epochs", "2"],
}


def _start(kind: RunKind, out: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "afos", *COMMANDS[kind], "--out", str(out), "--quiet", "--no-reuse"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_records(db: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
                if connection.execute("SELECT count(*) FROM evaluations").fetchone()[0] >= count:
                    return
        except sqlite3.Error:
            pass  # not created yet
        time.sleep(0.05)
    pytest.fail(f"{db} never held {count} runs")


def _resume(kind: RunKind, out: Path) -> list[str]:
    if kind is RunKind.SEARCH:
        return [sys.executable, "-m", "afos", "search", "--resume", str(out), "--quiet"]
    return [sys.executable, "-m", "afos", *COMMANDS[kind], "--out", str(out), "--quiet", "--no-reuse"]


@pytest.mark.parametrize("kind", [RunKind.SEARCH, *(pytest.param(kind, marks=pytest.mark.slow) for kind in RunKind
                                                       if kind is not RunKind.SEARCH)], ids=lambda kind: kind.value)
def test_a_killed_run_of_any_kind_shows_interrupted_and_resumes(tmp_path: Path, kind: RunKind) -> None:
    """Also: while another process holds the run (its lock and a live heartbeat, as a working afos does), the
    same resume is refused with one line, since two writers would train the same runs twice."""
    out = tmp_path / "run"
    process = _start(kind, out)
    _wait_for_records(out / "afos.db", 2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    (row,) = list_runs(tmp_path)
    assert (row.kind, row.status) == (kind, RunStatus.INTERRUPTED)
    assert row.resume == kind.resume_command(str(out))
    shown = subprocess.run([sys.executable, "-m", "afos", "runs", str(tmp_path)], capture_output=True, text=True,
                           timeout=120)
    assert "interrupted" in shown.stdout and row.resume in shown.stdout
    with writer_lock(out), Heartbeat(out, kind):
        second = subprocess.run(_resume(kind, out), capture_output=True, text=True, timeout=300)
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 2 and len(lines) == 1, second.stderr
    assert f"is being written by another afos process (pid {os.getpid()}" in lines[0]
    resumed = subprocess.run(_resume(kind, out), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    (row,) = list_runs(tmp_path)
    assert row.status is RunStatus.FINISHED and row.resume is None


@pytest.mark.parametrize("kind", [pytest.param(RunKind.EVALUATE, marks=pytest.mark.slow), RunKind.COMPARE],
                         ids=lambda kind: kind.value)
def test_sigterm_interrupts_a_grid_like_a_search(tmp_path: Path, kind: RunKind) -> None:
    """A scheduler's cancel: status interrupted, exit 143, one line saying how to resume, no traceback."""
    out = tmp_path / "run"
    process = _start(kind, out)
    _wait_for_records(out / "afos.db", 2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert f"terminated; run the same command with --out {out} to resume" in stderr and "Traceback" not in stderr
    (row,) = list_runs(tmp_path)
    assert row.status is RunStatus.INTERRUPTED


def test_a_finished_search_is_changed_only_by_resume(tmp_path: Path) -> None:
    """A reused --out, or the Python API called again with other settings, is refused before anything is
    written; only --resume continues the run, and only with what --resume may change."""
    import afos
    from afos.errors import ConfigError

    out = tmp_path / "same"
    done = subprocess.run([sys.executable, "-m", "afos", *COMMANDS[RunKind.SEARCH], "--generations", "1",
                           "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    again = subprocess.run([sys.executable, "-m", "afos", *COMMANDS[RunKind.SEARCH], "--population", "7",
                            "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and f"afos search --resume {out}" in again.stderr, again.stderr
    with pytest.raises(ConfigError, match=r"other settings \(population\)"):
        afos.run_search("spirals", out=out, population=7, generations=1, confirm=False, train={"epochs": 1})
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == before
