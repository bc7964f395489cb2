"""benchmarks/gpu_suite.py --quick on the CPU: the suite a GPU session runs must not break unseen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_suite_quick_runs_on_the_cpu_and_prints_its_table() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_suite.py", "--quick", "--device", "cpu"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    rows = [line for line in lines if line.startswith(("| resnet20", "| airbench")) and "native ReLU" not in line]
    assert len(rows) == 8, done.stdout  # 4 activations x 2 models
    assert sum("native ReLU" in line for line in lines) == 2, done.stdout  # one reference line per model
    assert all("n/a" not in row.split("|")[5] for row in rows), done.stdout  # compiled column measured
    assert any(line.startswith("| cifar10-fast") or "skipped" in line for line in lines), done.stdout
