"""Real run folders for ``afos serve``'s tests: one small search (with its confirmation), one evaluate and
one compare, trained for real on digits once per test session, and a client of the application over them."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import afos
from afos.app.server import create_app

#: A search small enough for the default suite that still has generations, a hall of fame, a failed run or
#: two, baselines and a confirmation with a verdict.
SEARCH = {"population": 4, "generations": 2, "seed": 1, "fitness_seeds": 1, "confirm_top": 1, "confirm_seeds": 2,
          "baseline": ["silu"], "train": {"dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 64}}


@pytest.fixture(scope="session")
def made_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results root holding a finished search, evaluate and compare (made once, never changed: tests that
    alter a run work on a copy, :func:`results_root`)."""
    root = tmp_path_factory.mktemp("made") / "results"
    afos.run_search(SEARCH, out=root / "search")
    afos.evaluate("x*sigmoid(x)", baselines=["relu"], seeds=2, epochs=1, out=root / "evaluate")
    afos.compare("x*sigmoid(x)", baselines=["relu", "tanh"], datasets=["digits", "wine"], seeds=2, epochs=1,
                 out=root / "compare")
    return root


@pytest.fixture
def results_root(made_runs: Path, tmp_path: Path) -> Path:
    """A copy of the made runs, for a test to add to or spoil."""
    return Path(shutil.copytree(made_runs, tmp_path / "results"))


@pytest.fixture
def client(made_runs: Path) -> TestClient:
    return TestClient(create_app(made_runs, hosts=["testserver"]))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(results_root: Path) -> Iterator[tuple[str, Path]]:
    """``afos serve`` as a user starts it, in its own process: its address and its results root."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "afos", "serve", str(results_root), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(address + "/api", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"afos serve did not start: {process.communicate()[1]}") from None
                time.sleep(0.2)
        yield address, results_root
    finally:
        process.terminate()
        process.wait(timeout=30)
