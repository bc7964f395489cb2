"""benchmarks/tabular.py, benchmarks/replay_efficiency.py and benchmarks/front_efficiency.py end to end on a
tiny space: build (twice: the second trains nothing), export, stats, then the replayed comparisons (one
objective, and the front of accuracy against cost) with their summaries and pictures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from afos.execution.replay import read_table

ROOT = Path(__file__).resolve().parents[1]
PRIMITIVES = "identity,abs,sin,add"
CONFIG = """primitives = ["identity", "abs", "sin", "add"]
population = 4
elites = 1
fitness_seeds = 2
init_max_depth = 2
max_height = 2
[train]
dataset = "checkerboard"
model = "mlp"
model_options = {hidden = [8]}
epochs = 1
batch_size = 128
optimizer = "adam"
lr = 0.01
val_fraction = 0.25
kernels = "eager"
"""


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


@pytest.mark.slow
def test_a_tiny_table_is_built_resumed_exported_and_replayed(tmp_path: Path) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG)
    build = ["benchmarks/tabular.py", "build", "--primitives", PRIMITIVES, "--tasks", str(config), "--seeds", "2",
             "--workers", "1", "--root", str(tmp_path / "root")]
    first = _run(*build)
    assert "run 1/" in first
    assert "run 1/" not in _run(*build)  # a finished build trains nothing again
    table_path = tmp_path / "tiny.json.gz"
    _run("benchmarks/tabular.py", "export", "--primitives", PRIMITIVES, "--tasks", str(config),
         "--root", str(tmp_path / "root"), "--out", str(table_path))
    table = read_table(table_path)
    assert len(table.functions) - table.space["trained"] == 5  # the five baselines, none in this small space
    assert "rank correlation of functions" in (tmp_path / "tiny.md").read_text()
    replay = ["benchmarks/replay_efficiency.py", "--table", str(table_path), "--tasks", str(config),
              "--seeds", "4", "--budgets", "8", "16", "--root", str(tmp_path / "replay")]
    out = _run(*replay)
    assert "random-unique (exact)" in out and "A12" in out
    summary = json.loads((tmp_path / "replay" / "summary.json").read_text())[str(config)]
    assert {row["strategy"] for row in summary["rows"]} == {"random", "ga", "ga+knn", "ga+forest",
                                                           "random-unique (exact)"}
    assert (tmp_path / "replay" / "replay_efficiency.png").stat().st_size > 0
    lines = (tmp_path / "replay" / "traces.jsonl").read_text().splitlines()
    assert len(lines) == 4 * 4
    _run(*replay)  # resumed: every search is read back, none replayed again
    assert (tmp_path / "replay" / "traces.jsonl").read_text().splitlines() == lines
    front = ["benchmarks/front_efficiency.py", "--table", str(table_path), "--tasks", str(config), "--seeds", "4",
             "--budgets", "8", "16", "--root", str(tmp_path / "front")]
    assert "missed hypervolume" in _run(*front)
    result = json.loads((tmp_path / "front" / "summary.json").read_text())[str(config)]
    assert {row["strategy"] for row in result["rows"]} == {"random", "nsga2", "nsga2+knn", "ga+knn"}
    assert all(0.0 <= row["median_missed"] <= result["table_hv"] + 1e-9 for row in result["rows"])
    assert (tmp_path / "front" / "front-efficiency.png").stat().st_size > 0
