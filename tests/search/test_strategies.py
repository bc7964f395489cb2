"""One contract over every search strategy (:data:`afos.search.strategies.STRATEGIES`): given its config and
seed a search decides the same, on the serial and the process executor alike, and a search killed with
``kill -9`` mid-generation resumes to what the uninterrupted one decided. A new strategy is tested by being
registered. (The GA's kill -9 test in test_search.py runs by default; this contract runs in the slow suite.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from afos.execution.factory import make_executor
from afos.records.settings import Strategy
from afos.runs.lifecycle import Options
from afos.runs.search import search as run_search
from afos.search.strategies import STRATEGIES
from tests.search.test_search import TINY, _config, _hall_of_fame, _rows, _rows_so_far, _start, _toml

pytestmark = pytest.mark.slow


#: What a strategy needs set beside its name (NSGA-II optimises two objectives).
NEEDS: dict[Strategy, dict[str, object]] = {Strategy.NSGA2: {"objectives": ["accuracy", "cost"]}}


def _decided(run_dir: Path) -> tuple[list[tuple], list[tuple[str, str]]]:
    return sorted(_rows(run_dir / "afos.db")), _hall_of_fame(run_dir)


@pytest.mark.parametrize("strategy", list(STRATEGIES), ids=lambda strategy: strategy.value)
def test_a_strategy_decides_by_config_and_seed_alone(strategy: Strategy, tmp_path: Path) -> None:
    config = _config(strategy=strategy.value, **NEEDS.get(strategy, {}))
    decided = []
    for name, kind in (("serial", "serial"), ("serial-again", "serial"), ("process", "process")):
        with make_executor(kind, workers=2) as executor:
            assert run_search(config, tmp_path / name, executor=executor, options=Options()).value == "finished"
        decided.append(_decided(tmp_path / name))
    assert decided[0] == decided[1] == decided[2]


@pytest.mark.parametrize("strategy", list(STRATEGIES), ids=lambda strategy: strategy.value)
def test_a_strategy_resumes_after_kill_9_to_the_same_decisions(strategy: Strategy, tmp_path: Path) -> None:
    config = _toml(tmp_path / "tiny.toml", {**TINY, "strategy": strategy.value, **NEEDS.get(strategy, {})})
    reference = tmp_path / "reference"
    assert subprocess.run([sys.executable, "-m", "afos", "search", "--config", str(config), "--out", str(reference),
                           "--quiet"], capture_output=True, timeout=300).returncode == 0
    killed = tmp_path / "killed"
    process = _start(config, killed)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not 7 <= _rows_so_far(killed / "afos.db") <= 9:
        time.sleep(0.05)  # inside generation 1: after generation 0's 6 runs
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    resumed = subprocess.run([sys.executable, "-m", "afos", "search", "--resume", str(killed), "--quiet"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert _decided(killed) == _decided(reference)
