"""`afos show` and `afos primitives` through the real console entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ENTRY = ("import atexit, sys; from afos.cli import main; "
         "atexit.register(lambda: print('TORCH', 'torch' in sys.modules, file=sys.stderr)); main()")


def run_afos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True, text=True, timeout=120)


def test_show_prints_facts_and_plot(tmp_path: Path) -> None:
    plot = tmp_path / "f.png"
    result = run_afos("show", "-x*erf(exp(-x))", "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    for key in ("canonical", "latex", "fingerprint", "screening   valid", "monotonic   no"):
        assert key in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_show_json_has_the_documented_keys() -> None:
    result = run_afos("show", "relu", "--json")
    facts = json.loads(result.stdout)
    assert set(facts) == {"expression", "canonical", "latex", "fingerprint", "valid", "reason", "properties"}
    assert facts["canonical"] == "Max(0, x)" and facts["valid"] is True
    assert facts["properties"]["bounded_below"] is True


def test_show_reports_screening_rejection() -> None:
    facts = json.loads(run_afos("show", "exp(exp(exp(x)))", "--json").stdout)
    assert facts["valid"] is False and "non-finite" in facts["reason"]


@pytest.mark.parametrize("text", ["tanh(", "__import__('os').system('ls')", "foo(x)", "x/0", "10**10**10"])
def test_bad_expression_is_one_line_exit_2_without_torch(text: str) -> None:
    result = run_afos("show", text)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("TORCH")]
    assert result.returncode == 2
    assert len(lines) == 1 and lines[0].startswith("afos: error:")
    assert "Traceback" not in result.stderr
    assert "TORCH False" in result.stderr  # the error path never pays torch's import time


def test_primitives_lists_each_set() -> None:
    result = run_afos("primitives", "--set", "afos", "--json")
    rows = json.loads(result.stdout)
    assert {r["name"] for r in rows} >= {"x_erf", "mul_erf", "max0_max", "sigmoid_mul"}
    assert run_afos("primitives", "--set", "nope").returncode == 2
