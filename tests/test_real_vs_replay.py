"""benchmarks/real_vs_replay.py end to end at a tiny size: one seed per strategy, six trainings each, trained
for real on hard-deep and replayed against the shipped table; a second call trains nothing again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, "benchmarks/real_vs_replay.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


@pytest.mark.slow
def test_real_searches_are_run_resumed_and_compared_with_their_replay(tmp_path: Path) -> None:
    command = ["--seeds", "1", "--budget", "6", "--out", str(tmp_path)]
    first = _run(*command)
    assert "seed 0 random: 6 trainings" in first and "A12" in first
    rows = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert sorted((r["mode"], r["strategy"], r["seed"]) for r in rows) == [
        ("real", "ga+knn", 0), ("real", "random", 0), ("replay", "ga+knn", 0), ("replay", "random", 0)]
    for row in rows:
        assert len(row["trained"]) == len(row["held"]) == 6 and row["held"][-1] is not None
    assert all(r["trainings"] == 6 and r["held_real_test"] is not None for r in rows if r["mode"] == "real")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"task", "seeds", "budget", "top_cut", "modes", "directions_agree"} <= summary.keys()
    assert set(summary["modes"]) == {"real", "replay"}
    for result in summary["modes"].values():
        assert set(result["strategies"]) == {"random", "ga+knn"}
        assert {"held_quality", "trainings_to_top"} <= result["tests"].keys()
        assert all(0.0 <= t["a12"] <= 1.0 and 0.0 <= t["p"] <= 1.0 for t in result["tests"].values())
    assert "median_held_real_test" in summary["modes"]["real"]["strategies"]["random"]
    second = _run(*command)  # everything is done: nothing is trained again
    assert "seed 0 random:" not in second and "A12" in second
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 4
