"""TensorBoard logs of a real search: each run's curves in a readable folder, and the search's fitness per
generation (counted from 1) beside them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from afos.reporting.tensorboard import SEARCH_FOLDER
from afos.storage.store import RunStore


@pytest.mark.slow
def test_a_search_logs_its_generations_and_its_runs(tmp_path: Path) -> None:
    logs = tmp_path / "tb"
    done = subprocess.run([sys.executable, "-m", "afos", "search", "--population", "4", "--generations", "2",
                           "--epochs", "1", "--no-confirm", "--seed", "1", "--tensorboard", str(logs),
                           "--out", str(tmp_path / "run"), "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    search = EventAccumulator(str(logs / SEARCH_FOLDER))
    search.Reload()
    with RunStore(tmp_path / "run" / "afos.db", readonly=True) as store:
        saved = store.generations()
    best = sorted(search.Scalars("fitness/best"), key=lambda e: e.step)  # one event file per generation
    assert [e.step for e in best] == [1, 2]
    assert [e.value for e in best] == pytest.approx([g.stats.best for g in saved], rel=1e-6)  # float32 in the log
    trained = sorted(search.Scalars("candidates/trained"), key=lambda e: e.step)
    assert [e.value for e in trained] == [g.stats.counts.trained for g in saved]
    assert search.Tags()["tensors"] == ["config/text_summary"]
    folders = [p.name for p in logs.iterdir() if p.name != SEARCH_FOLDER]
    assert folders and not any(name.startswith(("-", ".")) for name in folders)
    assert any(name.startswith("x*sigmoid(x)-") for name in folders)  # a seed expression, readable
