"""The genetic search end to end on digits: run folder, no duplicate training, kill -9 and resume."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from afos.errors import ConfigError
from afos.execution.local import SerialExecutor
from afos.records.evaluation import Phase
from afos.records.search import MadeBy
from afos.reporting.search_report import read_report
from afos.runs.lifecycle import Options
from afos.runs.search import search as run_search
from afos.search.config import SearchConfig
from afos.search.proposals import MUTATIONS
from afos.storage.store import RunStore

TINY = {
    "population": 6,
    "generations": 3,
    "seed": 3,
    "elites": 1,
    "reuse_runs": False,
    "confirm": False,  # the confirmation phase has tests of its own (test_finalists.py)
    "train": {"dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 64},
}


def _config(**changes: object) -> SearchConfig:
    values = {**TINY, **changes}
    return SearchConfig.from_dict(values)


def _toml(path: Path, values: dict) -> Path:
    """A minimal TOML writer for the flat test configs (tomllib only reads)."""
    def render(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return f'"{value}"'
        if isinstance(value, list):
            return "[" + ", ".join(render(v) for v in value) + "]"
        return str(value)

    lines = [f"{k} = {render(v)}" for k, v in values.items() if not isinstance(v, dict)]
    for section, table in ((k, v) for k, v in values.items() if isinstance(v, dict)):
        lines += [f"[{section}]", *(f"{k} = {render(v)}" for k, v in table.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def _search(config: SearchConfig, run_dir: Path, progress: object = None) -> str:
    """A search run in this process, as `afos search` runs it."""
    with SerialExecutor() as executor:
        return run_search(config, run_dir, executor=executor, options=Options(echo=progress))


def _rows(db: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return connection.execute("SELECT activation_key, budget, seed, task, status FROM evaluations").fetchall()


def _rows_so_far(db: Path) -> int:
    """Rows committed so far; 0 while the writer has not yet created the file or its schema."""
    try:
        return len(_rows(db))
    except sqlite3.OperationalError:
        return 0


def _hall_of_fame(run_dir: Path) -> list[tuple[str, str]]:
    with (run_dir / "hall_of_fame.csv").open() as handle:
        return [(row["fingerprint"], row["fitness"]) for row in csv.DictReader(handle)]


def test_tiny_search_writes_a_trustworthy_run_folder(tmp_path: Path) -> None:
    lines: list[str] = []
    status = _search(_config(), tmp_path / "run", lines.append)
    assert status == "finished"
    for name in ("afos.db", "hall_of_fame.csv", "generations.csv", "report.md", "fitness.png", "top_functions.png",
                 "front.png"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    report = read_report(tmp_path / "run")
    best = report.front
    assert best and best == sorted(best, key=lambda p: p.size)
    for point in best:  # fitter than every smaller function trained at the full budget
        assert all(other.fitness < point.fitness for other in report.points if other.size < point.size)
    assert max(p.fitness for p in report.points) == best[-1].fitness
    assert "## Complexity and fitness" in (tmp_path / "run" / "report.md").read_text()
    with RunStore(tmp_path / "run" / "afos.db", readonly=True) as store:
        assert [g.generation for g in store.generations()] == [0, 1, 2]
        counts = [g.stats.counts for g in store.generations()]
    assert all(c.trained + c.reused + c.ranked_out == c.proposed - c.duplicate - c.screened for c in counts)
    assert counts[1].mutations + counts[1].crossovers > 0  # variation really runs
    with (tmp_path / "run" / "hall_of_fame.csv").open() as handle:
        header = next(csv.reader(handle))
    assert header[:4] == ["rank", "canonical", "fingerprint", "fitness"]
    assert {"n_runs", "val_accuracy", "val_std", "test_accuracy", "generation", "size", "tree"} <= set(header)
    assert "ReLU" in (tmp_path / "run" / "report.md").read_text() or "relu" in (tmp_path / "run" / "report.md").read_text()


def test_a_duplicate_function_is_never_trained_twice(tmp_path: Path) -> None:
    """Four spellings of ReLU are seeded; whatever the search proposes, one function trains once."""
    trainings: list[str] = []
    config = _config(seed_expressions=["relu", "max0(x)", "max0_max(x, x)", "max(x, max0(x))"], generations=2)
    _search(config, tmp_path / "run", lambda m: trainings.append(m) if m.startswith("  ") else None)
    rows = _rows(tmp_path / "run" / "afos.db")
    assert len(trainings) == len(rows)
    assert len({(f, b, s, t) for f, b, s, t, _ in rows}) == len(rows)
    from afos.space.probe import fingerprint

    assert sum(1 for f, *_ in rows if f == fingerprint("relu")) == 1


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="populaton"):
        SearchConfig.from_dict({"populaton": 5})
    with pytest.raises(ConfigError, match="population"):
        SearchConfig.from_dict({"population": 0})
    with pytest.raises(ConfigError, match="epoch"):
        SearchConfig.from_dict({"train": {"epoch": 3}})
    with pytest.raises(ConfigError, match="primitive"):
        SearchConfig.from_dict({"primitives": ["exp", "nosuch"]})
    bad = _toml(tmp_path / "bad.toml", {"population": 4, "train": {"optimiser": "sgd"}})
    result = subprocess.run([sys.executable, "-m", "afos", "search", "--config", str(bad)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "optimiser" in result.stderr


def _start(config: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "afos", "search", "--config", str(config), "--out", str(out),
                             "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_kill_9_mid_generation_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    config = _toml(tmp_path / "tiny.toml", TINY)
    reference = tmp_path / "a" / "run"
    assert subprocess.run([sys.executable, "-m", "afos", "search", "--config", str(config), "--out", str(reference),
                           "--quiet"], capture_output=True, timeout=300).returncode == 0

    killed = tmp_path / "b" / "run"
    process = _start(config, killed)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill inside generation 1: after gen 0's 6 runs, before gen 2
        if 7 <= _rows_so_far(killed / "afos.db") <= 9:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    before = len(_rows(killed / "afos.db"))
    assert 0 < before < len(_rows(reference / "afos.db"))
    _assert_files_match_the_database(killed)

    resumed = subprocess.run([sys.executable, "-m", "afos", "search", "--resume", str(killed), "--quiet"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    rows = _rows(killed / "afos.db")
    assert len({r[:4] for r in rows}) == len(rows)  # nothing trained twice
    assert sorted(rows) == sorted(_rows(reference / "afos.db"))  # nothing lost, same results
    assert _hall_of_fame(killed) == _hall_of_fame(reference)


def _assert_files_match_the_database(run_dir: Path) -> None:
    """The files a killed search leaves are whole and say what its database holds at its last generation."""
    with RunStore(run_dir / "afos.db", readonly=True) as store:
        saved = store.generations()
    assert saved, "the kill came after the first generation"
    assert not list(run_dir.glob(".*partial"))
    with (run_dir / "generations.csv").open() as handle:
        assert [int(row["generation"]) for row in csv.DictReader(handle)] == [g.generation + 1 for g in saved]
    assert [key for key, _ in _hall_of_fame(run_dir)] == [entry.key for entry in saved[-1].hall_of_fame]
    assert (run_dir / "fitness.png").stat().st_size > 0
    assert "Status: **running**" in (run_dir / "report.md").read_text()  # as of the last generation


def test_sigterm_leaves_a_report_that_says_what_happened(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    process = _start(_toml(tmp_path / "tiny.toml", TINY), run_dir)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _rows_so_far(run_dir / "afos.db") < 7:  # inside generation 2
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 143
    report = (run_dir / "report.md").read_text()
    assert "Status: **interrupted**" in report and f"`afos search --resume {run_dir}` continues it" in report
    with RunStore(run_dir / "afos.db", readonly=True) as store:
        done = len(store.generations())
        pending = [r for r in store.evaluations(phase=Phase.SEARCH) if (r.generation or 0) >= done]
    assert done < TINY["generations"] and bool(pending) == ("## Runs of the unfinished generation" in report)
    assert not pending or f"Generation {done + 1} stopped before it completed; its {len(pending)} finished" in report
    linked = {line[line.index("(") + 1:-1] for line in report.splitlines() if line.startswith("![")}
    assert linked and all((run_dir / name).is_file() for name in linked)


def test_resume_refuses_to_change_the_protocol(tmp_path: Path) -> None:
    _search(_config(generations=1), tmp_path / "run")
    result = subprocess.run([sys.executable, "-m", "afos", "search", "--resume", str(tmp_path / "run"),
                             "--epochs", "5"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "train.epochs" in result.stderr


def test_learnable_constants_are_trained_recorded_and_resumable(tmp_path: Path) -> None:
    """A PANGAEA-style run stopped after 2 generations and resumed to 3 equals an uninterrupted 3."""
    settings = {"learnable_constants": True, "seed_expressions": ["scale(tanh(scale(x)))", "relu"]}
    _search(_config(generations=3, **settings), tmp_path / "straight")
    _search(_config(generations=2, **settings), tmp_path / "resumed")
    _search(_config(generations=3, **settings), tmp_path / "resumed")
    assert sorted(_rows(tmp_path / "resumed" / "afos.db")) == sorted(_rows(tmp_path / "straight" / "afos.db"))
    with RunStore(tmp_path / "straight" / "afos.db", readonly=True) as store:
        hall = store.last_generation().hall_of_fame
        seeded = [r for r in store.evaluations(phase=Phase.SEARCH) if r.expression == "p0*tanh(p1*x)"]
    assert seeded and set(seeded[0].params["0"]) == {"p0", "p1"}
    assert seeded[0].params["0"] != {"p0": 1.0, "p1": 1.0}  # the constants were trained
    with RunStore(tmp_path / "resumed" / "afos.db", readonly=True) as store:
        assert store.last_generation().hall_of_fame == hall
    assert any(entry.learned for entry in hall if ":" in entry.key)


def test_a_search_leaves_the_callers_random_state_alone(tmp_path: Path) -> None:
    """DEAP draws from Python's global generator; the search swaps its own state in and out around it."""
    random.seed(1234)
    before = random.getstate()
    _search(_config(generations=2), tmp_path / "run")
    assert random.getstate() == before
    random.seed(99)  # the caller's draws in between do not change what a resumed search proposes
    _search(_config(generations=2), tmp_path / "twin")
    assert _hall_of_fame(tmp_path / "twin") == _hall_of_fame(tmp_path / "run")


@pytest.mark.slow
def test_a_budget_that_does_not_fit_the_machine_is_said_early(tmp_path: Path) -> None:
    """A run that times out, and a time limit far below what the planned runs need, each get one line as
    soon as they are seen, not a silent search that stops with nothing. When every run of the first
    generation and of the baselines fails, the search stops there with one line (exit 2), names no best,
    and a resume with a larger --timeout trains the timed-out runs again."""
    from afos.runs.listing import list_runs

    common = ["--population", "4", "--no-confirm", "--dataset", "digits", "--model", "mlp"]
    timed_out = subprocess.run([sys.executable, "-m", "afos", "search", *common, "--generations", "2", "--epochs", "3",
                                "--timeout", "0.05", "--out", str(tmp_path / "a")],
                               capture_output=True, text=True, timeout=300)
    assert timed_out.returncode == 2, timed_out.stderr
    assert timed_out.stderr.count("hit the run timeout (timeout_s = 0.05 s; timed out after") == 1
    assert "cifar10-cpu" not in timed_out.stderr  # the hint fits the task
    last = timed_out.stderr.strip().splitlines()[-1]
    assert last.startswith("afos: error: nothing trained: every run of the first generation and of the baselines "
                           "failed (") and "timeout), so nothing can be compared" in last, last
    (row,) = list_runs(tmp_path)
    assert row.status.value == "failed" and row.best is None
    resumed = subprocess.run([sys.executable, "-m", "afos", "search", "--resume", str(tmp_path / "a"), "--timeout",
                              "120", "--quiet"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    with RunStore(tmp_path / "a" / "afos.db", readonly=True) as store:
        assert all(record.ok for record in store.evaluations(phase=Phase.BASELINE))
    rushed = subprocess.run([sys.executable, "-m", "afos", "search", *common, "--generations", "8", "--epochs", "5",
                             "--time-limit", "3", "--out", str(tmp_path / "b")], capture_output=True, text=True,
                            timeout=300)
    assert rushed.returncode == 0, rushed.stderr
    (line,) = [line for line in rushed.stderr.splitlines() if "far beyond --time-limit" in line]
    assert line.startswith("warning: at ") and "s per training run, the ~" in line


def test_random_search_differs_from_the_ga_only_in_how_it_proposes(tmp_path: Path) -> None:
    """Same generation 0 (seeds and random trees from the same seed), then every new candidate drawn at
    random: no crossover, no mutation; records, hall of fame and files as for the GA."""
    runs = {strategy: tmp_path / strategy for strategy in ("ga", "random")}
    for strategy, run_dir in runs.items():
        assert _search(_config(strategy=strategy), run_dir) == "finished"
    generations = {}
    for strategy, run_dir in runs.items():
        with RunStore(run_dir / "afos.db", readonly=True) as store:
            generations[strategy] = store.generations()
    assert generations["ga"][0].population == generations["random"][0].population
    assert all(g.stats.counts.crossovers == g.stats.counts.mutations == 0 for g in generations["random"])
    assert sum(g.stats.counts.crossovers + g.stats.counts.mutations for g in generations["ga"][1:]) > 0
    assert (runs["random"] / "report.md").is_file()
    with pytest.raises(ConfigError, match="strategy='evolve' is invalid"):
        _config(strategy="evolve").validate()


def test_every_candidate_records_how_it_was_made_and_the_report_shows_a_genealogy(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert _search(_config(generations=4), run_dir) == "finished"
    with RunStore(run_dir / "afos.db", readonly=True) as store:
        candidates = {c.key: c for c in store.candidates()}
    assert candidates and all(c.lineage is not None for c in candidates.values())
    for candidate in candidates.values():
        lineage = candidate.lineage
        assert lineage is not None
        if candidate.generation == 0:
            assert lineage.made_by in (MadeBy.SEED, MadeBy.RANDOM) and not lineage.parents
        else:
            assert lineage.made_by in (MadeBy.OFFSPRING, MadeBy.IMMIGRANT)
        assert (lineage.made_by is MadeBy.OFFSPRING) == bool(lineage.parents)
        for parent in lineage.parents:  # a parent was proposed in an earlier generation of this run
            assert candidates[parent].generation < candidate.generation
        assert set(lineage.operators) <= {"crossover", *MUTATIONS}
    assert any(c.lineage and c.lineage.operators for c in candidates.values())
    report = (run_dir / "report.md").read_text()
    assert "## Genealogy" in report and "![genealogy](genealogy.png)" in report
    with (run_dir / "hall_of_fame.csv").open() as handle:
        first = next(csv.DictReader(handle))
    assert json.loads(first["lineage"])["made_by"] == candidates[first["fingerprint"]].lineage.made_by.value


def test_a_surrogate_ranks_pools_deterministically_and_records_its_predictions(tmp_path: Path) -> None:
    config = _config(generations=4, surrogate="knn", pool=3, fitness_seeds=1)
    runs = [tmp_path / "a", tmp_path / "b"]
    for run_dir in runs:
        assert _search(config, run_dir) == "finished"
    saved = []
    for run_dir in runs:
        with RunStore(run_dir / "afos.db", readonly=True) as store:
            saved.append([(g.stats.predicted, g.stats.rank_correlation, g.stats.counts) for g in store.generations()])
    assert saved[0] == saved[1]  # the same config and seed: the same pools, predictions and choices
    ranked = [(predicted, rho, counts) for predicted, rho, counts in saved[0] if predicted]
    assert ranked, "the surrogate never had the records it needs"
    for predicted, rho, counts in ranked:
        assert counts.ranked_out > 0 and counts.trained + counts.reused == len(predicted)
        assert rho is None or -1.0 <= rho <= 1.0
    assert not saved[0][0][0]  # generation 1 is proposed as the GA proposes it
    with (runs[0] / "generations.csv").open() as handle:
        assert "rank_correlation" in next(csv.reader(handle))


def test_a_spent_budget_stops_before_proposing_and_a_resume_adds_nothing(tmp_path: Path) -> None:
    """max_evals spent exactly at a generation's end: the next generation must not record a candidate it can
    never train, and resuming the stopped run changes nothing in its database."""
    config = _config(max_evals=14, fitness_seeds=2, baseline=[])  # generation 0: 6 candidates x 2 seeds, then 1
    run_dir = tmp_path / "run"
    assert _search(config, run_dir) == "budget"

    def contents() -> tuple[list[tuple[str, int]], int]:
        with RunStore(run_dir / "afos.db", readonly=True) as store:
            return ([(c.key, c.generation) for c in store.candidates()],
                    store.count_evaluations(phase=Phase.SEARCH))

    candidates, evaluations = contents()
    assert evaluations == 14 and max(generation for _, generation in candidates) == 1
    assert _search(config, run_dir) == "budget"
    assert contents() == (candidates, evaluations)
