"""Confirmation of a search's finalists on fresh seeds (digits, CPU, seconds) and the transfer study."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats as sps

from afos.execution.local import SerialExecutor
from afos.records.evaluation import Origin, Phase
from afos.runs.search import search as run_search
from afos.search.config import SearchConfig
from afos.search.confirmation import confirm_seeds
from afos.storage.store import RunStore

SEARCH = {"population": 4, "generations": 2, "seed": 3, "fitness_seeds": 2, "elites": 1, "reuse_runs": False,
          "confirm_top": 2, "confirm_seeds": 3, "baseline": "silu",
          "train": {"dataset": "digits", "model": "mlp", "epochs": 2, "batch_size": 64}}


def _search(run_dir: Path, **changes: object) -> None:
    with SerialExecutor() as executor:
        run_search(SearchConfig.from_dict({**SEARCH, **changes}), run_dir, executor=executor)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("finalists") / "run"
    _search(run_dir)
    return run_dir


def _finalists(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "finalists.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_confirmation_seeds_are_fresh_and_paired(searched: Path) -> None:
    with RunStore(searched / "afos.db", readonly=True) as store:
        search_seeds = {r.seed for r in store.evaluations(phase=Phase.SEARCH)}
        confirm = store.evaluations(phase=Phase.CONFIRM)
        plan = store.get_meta("confirmation")
    assert search_seeds == {3, 4}
    assert plan["seeds"] == confirm_seeds(3, 2, 3) == [5, 6, 7]
    assert {r.seed for r in confirm} == {5, 6, 7}
    keys = {r.activation_key for r in confirm}
    assert len(keys) == len(plan["functions"]) == 2 + 2  # two finalists, relu and silu
    assert all(sum(1 for r in confirm if r.activation_key == key) == 3 for key in keys)  # every seed each


def test_p_values_equal_scipy_on_the_stored_numbers(searched: Path) -> None:
    rows = _finalists(searched)
    with RunStore(searched / "afos.db", readonly=True) as store:
        confirm = store.evaluations(phase=Phase.CONFIRM)
    test = {(r.activation_key, r.seed): r.test_accuracy for r in confirm}
    relu = next(row for row in rows if row["expression"] == "relu")
    finalists = [row for row in rows if row["role"] == "finalist"]
    assert [row["rank"] for row in finalists] == ["1", "2"]
    assert float(finalists[0]["val_mean"]) >= float(finalists[1]["val_mean"])  # ranked by validation
    for row in finalists:
        mine = [test[(row["fingerprint"], s)] for s in (5, 6, 7)]
        theirs = [test[(relu["fingerprint"], s)] for s in (5, 6, 7)]
        expected = sps.ttest_rel(mine, theirs, alternative="greater").pvalue
        assert float(row["p_vs_relu"]) == pytest.approx(expected, rel=1e-9)
        assert float(row["delta_vs_relu"]) == pytest.approx(sum(mine) / 3 - sum(theirs) / 3)
        assert float(row["test_ci_low"]) <= float(row["test_mean"]) <= float(row["test_ci_high"])
        assert row["verdict"] in {"better", "no difference", "worse"}
    p = sorted(float(row["p_vs_relu"]) for row in finalists)
    assert sorted(float(row["p_holm"]) for row in finalists) == pytest.approx([min(1, 2 * p[0]), min(1, max(2 * p[0], p[1]))])
    report = (searched / "report.md").read_text()
    assert "## Confirmation" in report and ("beats ReLU" in report)


def test_a_resumed_confirmation_trains_nothing_twice(searched: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(searched, copy)
    with RunStore(copy / "afos.db", readonly=True) as store:
        before = store.count_evaluations()
    _search(copy)  # the same command again: every search and confirmation run is read back
    with RunStore(copy / "afos.db", readonly=True) as store:
        assert store.count_evaluations() == before
        assert all(r.origin is Origin.TRAINED for r in store.evaluations())
    assert _finalists(copy) == _finalists(searched)


def test_no_confirm_writes_no_finalists(tmp_path: Path) -> None:
    _search(tmp_path / "run", confirm=False, generations=1)
    assert not (tmp_path / "run" / "finalists.csv").exists()
    with RunStore(tmp_path / "run" / "afos.db", readonly=True) as store:
        assert store.count_evaluations(Phase.CONFIRM) == 0


def test_compare_from_search_takes_the_finalists(searched: Path, tmp_path: Path) -> None:
    finalists = [row["canonical"] for row in _finalists(searched) if row["role"] == "finalist"]
    out = tmp_path / "transfer"
    result = subprocess.run([sys.executable, "-m", "afos", "compare", "--from-search", str(searched), "--top", "1",
                             "--datasets", "digits,wine", "--seeds", "2", "--epochs", "1", "--out", str(out),
                             "--json", "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    import json

    analysis = json.loads(result.stdout)
    names = {f["name"]: f["role"] for f in analysis["functions"]}
    assert names == {finalists[0]: "candidate", "relu": "baseline", "silu": "baseline"}
    assert "digits/mlp is the search's own (seen) task" in (out / "report.md").read_text()
