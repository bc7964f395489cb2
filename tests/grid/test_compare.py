"""`afos compare` end to end on digits: the grid, its statistics, --from, and resuming after kill -9."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scipy import stats as sps

from afos.activation.spec import ActivationSpec
from afos.errors import UserError
from afos.grid.analysis import analyse, friedman_floor
from afos.grid.results import Results, select
from afos.grid.sources import load_results
from afos.grid.spec import Function, Spec
from afos.records.evaluation import Evaluation, Status
from afos.records.runs import MetaKey, Role, RunKind
from afos.training.config import TrainConfig

GRID = ["eelu", "--baseline", "relu,silu", "--datasets", "digits", "--models", "mlp,small_cnn", "--seeds", "2",
        "--epochs", "1"]
STATISTICS = ("functions", "cases", "matrix", "average_ranks", "friedman", "posthoc", "wins")


def afos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "afos", *args], capture_output=True, text=True, timeout=300)


def evaluation_keys(db: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return connection.execute("SELECT activation_key, task, seed FROM evaluations").fetchall()


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("compare") / "run"
    result = afos("compare", *GRID, "--out", str(out), "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), out


def test_grid_json_has_the_statistics(compared: tuple[dict, Path]) -> None:
    analysis, out = compared
    assert set(STATISTICS) <= set(analysis)
    assert [f["name"] for f in analysis["functions"]] == ["eelu", "relu", "silu"]
    assert [f["role"] for f in analysis["functions"]] == ["candidate", "baseline", "baseline"]
    assert analysis["cases"] == ["digits/mlp", "digits/small_cnn"] and analysis["metric"] == "test_accuracy"
    assert all(0 < value <= 1 for row in analysis["matrix"] for value in row)
    assert sum(analysis["average_ranks"].values()) == pytest.approx(1 + 2 + 3)
    assert {"statistic", "p_value"} <= set(analysis["friedman"]) and analysis["friedman"]["n_cases"] == 2
    pairs = {(r["candidate"], r["baseline"]) for r in analysis["posthoc"]["wilcoxon_holm"]}
    assert pairs == {("eelu", "relu"), ("eelu", "silu")}
    assert analysis["posthoc"]["nemenyi"]["critical_difference"] > 2
    (wins,) = analysis["wins"]
    assert wins["candidate"] == "eelu" and wins["n_cases"] == 2 and wins["n_tested"] == 2
    assert any("cannot reach p<0.05" in line for line in analysis["findings"])
    assert len(evaluation_keys(out / "afos.db")) == 12


def test_grid_writes_report_tables_and_figures(compared: tuple[dict, Path]) -> None:
    _, out = compared
    for name in ("cd_diagram.png", "heatmap.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "Cells are **test accuracy**" in report and "Friedman chi2" in report and "Holm" in report
    assert "the Friedman test cannot reach p<0.05 for k=3 functions" in report
    assert len((out / "results.csv").read_text().splitlines()) == 1 + 2 * 3
    assert len((out / "runs.csv").read_text().splitlines()) == 1 + 12


def test_from_recomputes_the_same_statistics_without_training(compared: tuple[dict, Path], tmp_path: Path) -> None:
    analysis, out = compared
    before = evaluation_keys(out / "afos.db")
    result = afos("compare", "--from", str(out), "--out", str(tmp_path / "again"), "--json")
    assert result.returncode == 0, result.stderr
    again = json.loads(result.stdout)
    for key in STATISTICS:
        assert again[key] == analysis[key], key
    assert evaluation_keys(out / "afos.db") == before and not (tmp_path / "again" / "afos.db").exists()
    assert (tmp_path / "again" / "report.md").exists()


def test_from_can_choose_functions_and_refuses_training_options(compared: tuple[dict, Path], tmp_path: Path) -> None:
    _, out = compared
    subset = select(load_results([out / "afos.db"]), [], ["relu"])
    assert [(f.name, f.role) for f in subset.functions] == [("eelu", "candidate"), ("relu", "baseline")]
    swapped = select(load_results([out]), ["max(x, 0)"], ["silu"])  # any text of a stored function names it
    assert [(f.name, f.role) for f in swapped.functions] == [("relu", "candidate"), ("silu", "baseline")]
    with pytest.raises(UserError, match="not in the stored runs"):
        select(load_results([out]), ["mish"], None)
    refused = afos("compare", "--from", str(out), "--epochs", "3", "--out", str(tmp_path / "x"))
    assert refused.returncode == 2 and "--epochs" in refused.stderr


@pytest.mark.slow
def test_a_killed_grid_resumes_without_repeating_runs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    db = out / "afos.db"
    command = [sys.executable, "-m", "afos", "compare", "relu", "--baseline", "silu,eelu", "--tasks",
               "digits/small_cnn,digits/mlp", "--seeds", "2", "--epochs", "3", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if db.exists() and _count(db) >= 2:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = _count(db)
    assert 2 <= done < 12, "the grid must be killed part-way"
    survivors = _rows(db)

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {done} of 12 runs" in resumed.stderr
    assert "run 12/12 " in resumed.stderr and f"run {done + 1}/12 " in resumed.stderr
    assert f"run {done}/12 " not in resumed.stderr  # nothing stored is run again
    keys = evaluation_keys(db)
    assert len(keys) == len(set(keys)) == 12
    assert {row for row in _rows(db) if row[0] in {s[0] for s in survivors}} == set(survivors)  # untouched


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            return connection.execute("SELECT count(*) FROM evaluations").fetchone()[0]
    except sqlite3.Error:  # created but not yet holding its schema
        return 0


def _rows(db: Path) -> set[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return set(connection.execute("SELECT id, activation_key, task, seed, created, val_accuracy FROM evaluations"))


# ------------------------------------------------------------------------------ statistics, no training


def _results(cells: dict[tuple[str, str], list[tuple[str, float | None]]], roles: dict[str, str]) -> Results:
    """Results from (function, case) -> [(status, test accuracy) per seed]."""
    functions = tuple(Function(name, name, name, Role(role), ActivationSpec(name)) for name, role in roles.items())
    cases = tuple(dict.fromkeys(case for _, case in cells))
    runs = {(name, case): {seed: Evaluation(activation_key=name, protocol="p", budget=1.0, seed=seed, task=case,
                                            status=Status(status), test_accuracy=value, val_accuracy=value, seconds=1.0)
                           for seed, (status, value) in enumerate(seeds)}
            for (name, case), seeds in cells.items()}
    return Results(functions, cases, runs, {}, (), ())


def test_a_cell_with_any_failed_seed_ranks_worst() -> None:
    ok = [("ok", 0.9), ("ok", 0.92)]
    cells = {("cand", "a"): [("ok", 0.99), ("diverged", None)], ("base", "a"): ok,
             ("cand", "b"): [("ok", 0.95), ("ok", 0.96)], ("base", "b"): ok}
    analysis = analyse(_results(cells, {"cand": "candidate", "base": "baseline"}))
    assert analysis.matrix == [[None, 0.91], [0.955, 0.91]]
    assert analysis.average_ranks == {"cand": 1.5, "base": 1.5}
    assert analysis.failed_cells == 1 and any("1 cell(s) failed" in line for line in analysis.findings)
    assert analysis.cells[0][0].statuses == {"ok": 1, "diverged": 1}


def test_findings_say_when_a_test_cannot_reach_significance() -> None:
    assert friedman_floor(2, 3) == pytest.approx(sps.chi2.sf(4, 2))
    assert friedman_floor(4, 5) < 0.05 < friedman_floor(2, 4)
    cells = {(f, case): [("ok", v + i / 100), ("ok", v + i / 100 + 0.01)]
             for i, f in enumerate(["c", "b1", "b2"]) for case, v in (("x", 0.5), ("y", 0.7))}
    findings = analyse(_results(cells, {"c": "candidate", "b1": "baseline", "b2": "baseline"})).findings
    assert "With N=2 case(s) the Friedman test cannot reach p<0.05 for k=3" in findings[0]
    assert any("no Wilcoxon signed-rank test can reach" in line for line in findings)
    assert any("does not support a claim" in line for line in findings)


def test_merging_grids_refuses_a_task_trained_under_two_protocols(tmp_path: Path) -> None:
    from afos.storage.store import RunStore

    for name, protocol in (("one", "p1"), ("two", "p2")):
        relu = Function("relu", "Max(0, x)", "f1", Role.BASELINE, ActivationSpec("relu"))
        spec = Spec(RunKind.COMPARE, (relu,), ("digits/mlp",), (0,), 1.0, TrainConfig(), {"digits/mlp": protocol})
        with RunStore(tmp_path / name / "afos.db") as store:
            store.set_meta(MetaKey.GRID, spec.to_dict())
    with pytest.raises(UserError, match="different settings"):
        load_results([tmp_path / "one", tmp_path / "two"])
    RunStore(tmp_path / "search" / "afos.db").close()  # a database without a grid, like a search run's
    with pytest.raises(UserError, match="no evaluate/compare grid"):
        load_results([tmp_path / "search"])
