"""The evaluation layer and what it guarantees: runs beside each other, resumed or killed, give the same
answer; other runs are a cache; bloat limits hold; a run's status tells the truth; old databases open."""

from __future__ import annotations

import csv
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from afos.activation.spec import ActivationSpec
from afos.evaluation import EvalRequest, Evaluator
from afos.execution.local import SerialExecutor
from afos.records.evaluation import Origin, Phase
from afos.records.runs import RunStatus
from afos.runs.listing import list_runs
from afos.runs.search import search as run_search
from afos.search.config import SearchConfig
from afos.search.trees import parse_tree, primitive_set
from afos.space.primitives import primitive_set as resolve_primitives
from afos.storage.siblings import SiblingRuns
from afos.storage.store import RunStore
from afos.training.config import TrainConfig
from afos.training.protocol import protocol_id

TINY = {"population": 5, "generations": 2, "seed": 7, "elites": 1,
        "train": {"dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 64}}


def afos(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "afos", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def _search(run_dir: Path, **changes: object) -> str:
    with SerialExecutor() as executor:
        return run_search(SearchConfig.from_dict({**TINY, **changes}), run_dir, executor=executor)


def _hall(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "hall_of_fame.csv").open() as handle:
        return list(csv.DictReader(handle))


def _origins(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return dict(connection.execute("SELECT origin, count(*) FROM evaluations GROUP BY origin").fetchall())


def test_a_twin_search_in_the_same_folder_trains_nothing_and_ends_identical(tmp_path: Path) -> None:
    _search(tmp_path / "root" / "a")
    _search(tmp_path / "root" / "b")
    _search(tmp_path / "alone" / "c", reuse_runs=False)
    assert _hall(tmp_path / "root" / "a") == _hall(tmp_path / "root" / "b") == _hall(tmp_path / "alone" / "c")
    first = sum(_origins(tmp_path / "root" / "a" / "afos.db").values())
    assert _origins(tmp_path / "root" / "b" / "afos.db") == {"reused": first}
    with RunStore(tmp_path / "root" / "b" / "afos.db", readonly=True) as store:
        records = store.evaluations()
        counts = [g.stats.counts for g in store.generations()]
    assert {r.source for r in records} == {"a"}
    assert all(c.trained == 0 and c.reused > 0 for c in counts)  # generation 0 included


def test_evaluate_then_compare_trains_only_the_new_function(tmp_path: Path) -> None:
    common = ["--seeds", "2", "--epochs", "2", "--quiet"]
    assert afos("evaluate", "relu", "silu", "--dataset", "digits", "--out", str(tmp_path / "r" / "ev"),
                *common).returncode == 0
    result = afos("compare", "relu", "silu", "tanh", "--baseline", "relu", "--datasets", "digits", "--models", "mlp",
                  "--out", str(tmp_path / "r" / "cmp"), "--json", *common)
    assert result.returncode == 0, result.stderr
    with RunStore(tmp_path / "r" / "cmp" / "afos.db", readonly=True) as store:
        records = store.evaluations()
    trained = {r.expression for r in records if r.origin is Origin.TRAINED}
    assert trained == {"tanh(x)"}
    assert {r.source for r in records if r.origin is Origin.REUSED} == {"ev"}
    with (tmp_path / "r" / "cmp" / "runs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["origin"] for row in rows} == {"trained", "reused"}


def test_no_stored_tree_exceeds_the_bloat_limits(tmp_path: Path) -> None:
    _search(tmp_path / "run", max_height=3, max_size=9, init_max_depth=3, population=8, generations=4,
            crossover_prob=1.0, mutation_prob=1.0, reuse_runs=False)
    pset = primitive_set(resolve_primitives("afos"))
    with RunStore(tmp_path / "run" / "afos.db", readonly=True) as store:
        trees = [parse_tree(row.tree, pset) for row in store.candidates()]
        population = [parse_tree(member.tree, pset) for g in store.generations() for member in g.population]
        counts = [g.stats.counts for g in store.generations()]
    assert len(trees) > 10 and sum(c.crossovers for c in counts) > 0
    assert all(t.height <= 3 and len(t) <= 9 for t in trees + population)


def test_successive_halving_promotes_only_the_top_third(tmp_path: Path) -> None:
    _search(tmp_path / "run", population=6, generations=1, halving_rungs=2, halving_eta=3, reuse_runs=False,
            train={**TINY["train"], "epochs": 3})
    with RunStore(tmp_path / "run" / "afos.db", readonly=True) as store:
        search = store.evaluations(phase=Phase.SEARCH)
    cheap = {r.activation_key: r.val_accuracy if r.ok else 0.0 for r in search if r.budget == 1.0}
    full = {r.activation_key for r in search if r.budget == 3.0}
    assert len(cheap) == 6 and len(full) == 2  # ceil(6 / 3) climb
    assert set(sorted(cheap, key=lambda k: (-cheap[k], k))[:2]) == full  # the best at the cheap rung
    hall = _hall(tmp_path / "run")
    rungs = [float(row["fitness"]) for row in hall]
    assert len(hall) == 6 and rungs  # every candidate ranked, promoted ones first (compared at equal budget)
    assert {row["fingerprint"] for row in hall[:2]} == full


def test_immigrants_fill_their_share_of_each_generation(tmp_path: Path) -> None:
    """With crossover and mutation off, offspring are copies of parents: only immigrants bring new functions."""
    _search(tmp_path / "run", population=6, generations=2, immigrants=0.5, crossover_prob=0.0, mutation_prob=0.0,
            reuse_runs=False)
    with RunStore(tmp_path / "run" / "afos.db", readonly=True) as store:
        second = store.generations()[1].stats.counts
    assert second.crossovers == second.mutations == 0
    assert second.trained >= 3  # round(0.5 * 6) immigrant slots, all new


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            return connection.execute("SELECT count(*) FROM evaluations").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_a_search_that_fails_before_training_leaves_no_folder(tmp_path: Path) -> None:
    result = afos("search", "--dataset", "mnist", "--data-dir", str(tmp_path / "nothing"), "--out",
                  str(tmp_path / "run"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_resume_of_a_grid_folder_is_a_clear_error(tmp_path: Path) -> None:
    assert afos("evaluate", "relu", "--seeds", "1", "--epochs", "1", "--out", str(tmp_path / "ev"),
                "--quiet").returncode == 0
    result = afos("search", "--resume", str(tmp_path / "ev"))
    assert result.returncode == 2 and "afos evaluate" in result.stderr and "Traceback" not in result.stderr


def test_protocol_is_the_resolved_config_plus_versions() -> None:
    written = TrainConfig(dataset="digits")  # model unset: the dataset's default model
    assert protocol_id(written) == protocol_id(TrainConfig(dataset="digits", model="mlp"))
    assert protocol_id(written) != protocol_id(TrainConfig(dataset="digits", model="small_cnn"))
    # on the CPU amp and channels_last change nothing, so they do not change the protocol either
    assert protocol_id(written) == protocol_id(TrainConfig(dataset="digits", amp=False, channels_last=False))
    assert protocol_id(written) == protocol_id(TrainConfig(dataset="digits", epochs=3, seed=4, device="cpu"))


def test_a_worker_death_is_retried_when_the_command_runs_again(tmp_path: Path) -> None:
    from afos.records.evaluation import Evaluation, Status

    request = EvalRequest.make(ActivationSpec("relu"), TrainConfig(dataset="digits", epochs=1), budget=1, seed=0,
                               label="Max(0, x)", phase=Phase.GRID)
    with RunStore(tmp_path / "afos.db") as store:
        store.add_evaluation(Evaluation(**request.key._asdict(), status=Status.ERROR,
                                        reason="worker died 3 times: SIGKILL"))
        with SerialExecutor() as executor:
            (record,) = Evaluator(store, executor).ensure([request])
        assert record.ok and record.attempts == 2 and record.origin is Origin.TRAINED
        assert store.find_evaluation(request.key) == record


@pytest.mark.parametrize("status", ["timeout", "oom"])
def test_a_machine_failure_is_retried_never_reused(tmp_path: Path, status: str) -> None:
    """A timeout or out-of-memory tells of the machine at that moment: another run under the same root does
    not copy it, and the run that holds it trains it again when its command runs again."""
    from afos.records.evaluation import Evaluation, Status

    request = EvalRequest.make(ActivationSpec("relu"), TrainConfig(dataset="digits", epochs=1), budget=1, seed=0,
                               label="Max(0, x)", phase=Phase.GRID)
    failure = Evaluation(**request.key._asdict(), status=Status(status), reason="the machine was busy")
    with RunStore(tmp_path / "loaded" / "afos.db") as store:
        store.add_evaluation(failure)
    with RunStore(tmp_path / "idle" / "afos.db") as store, SerialExecutor() as executor, \
            SiblingRuns(tmp_path, tmp_path / "idle") as cache:
        (record,) = Evaluator(store, executor, cache=cache).ensure([request])
        assert record.ok and record.origin is Origin.TRAINED
    with RunStore(tmp_path / "loaded" / "afos.db") as store, SerialExecutor() as executor:
        (record,) = Evaluator(store, executor).ensure([request])
        assert record.ok and record.attempts == 2 and store.find_evaluation(request.key) == record


def test_sibling_cache_skips_broken_databases(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "afos.db").write_bytes(b"not a database at all")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "afos.db").write_bytes(b"")
    request = EvalRequest.make(ActivationSpec("relu"), TrainConfig(dataset="digits", epochs=1), budget=1, seed=0,
                               label="Max(0, x)")
    with SiblingRuns(tmp_path, tmp_path / "mine") as cache:
        assert cache.find(request.key) is None


def test_a_schema_1_database_is_upgraded_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old" / "afos.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as connection:
        for statement in _SCHEMA_1:
            connection.execute(statement)
        connection.execute("INSERT INTO meta VALUES ('kind', '\"compare\"')")
        connection.execute("INSERT INTO evaluations (fingerprint, protocol, budget, seed, task, status, fitness, "
                           "val_accuracy, params, created) VALUES ('f', 'p', 1.0, 0, 'digits/mlp', 'ok', 0.5, 0.5, "
                           "'{\"0\": {\"beta\": 1.0}}', 1.0)")
        connection.execute("PRAGMA user_version = 1")
    with pytest.raises(Exception, match="older afos"):
        RunStore(path, readonly=True)
    with RunStore(path) as store:
        (record,) = store.evaluations()
    assert record.activation_key == "f" and record.phase is Phase.GRID and record.params == {"0": {"beta": 1.0}}
    with RunStore(path, readonly=True) as store:
        assert store.count_evaluations() == 1
    report = afos("runs", str(tmp_path))
    assert report.returncode == 0 and "old" in report.stdout


_SCHEMA_1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE candidates (fingerprint TEXT PRIMARY KEY, expression TEXT NOT NULL, canonical TEXT, tree TEXT, "
    "generation INTEGER, status TEXT NOT NULL, reason TEXT, created REAL NOT NULL)",
    "CREATE TABLE evaluations (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, protocol TEXT NOT NULL, "
    "budget REAL NOT NULL, seed INTEGER NOT NULL, task TEXT, status TEXT NOT NULL, reason TEXT, fitness REAL, "
    "val_accuracy REAL, val_loss REAL, test_accuracy REAL, test_loss REAL, train_loss REAL, epochs REAL, "
    "steps INTEGER, seconds REAL, generation INTEGER, expression TEXT, params TEXT, history TEXT, extra TEXT, "
    "created REAL NOT NULL)",
    "CREATE UNIQUE INDEX evaluations_key ON evaluations (fingerprint, protocol, budget, seed, ifnull(task, ''))",
    "CREATE INDEX evaluations_task ON evaluations (task)",
    "CREATE TABLE generations (generation INTEGER PRIMARY KEY, stats TEXT, population TEXT, hall_of_fame TEXT, "
    "rng_state TEXT, finished REAL)",
)


def test_json_output_carries_the_origin(tmp_path: Path) -> None:
    common = ["--seeds", "1", "--epochs", "1", "--dataset", "digits", "--json"]
    first = afos("evaluate", "relu", "--out", str(tmp_path / "r" / "one"), *common)
    second = afos("evaluate", "relu", "--out", str(tmp_path / "r" / "two"), *common)
    assert [row["origin"] for row in json.loads(first.stdout)] == ["trained"]
    assert [(row["origin"], row["source"]) for row in json.loads(second.stdout)] == [("reused", "one")]
    assert json.loads(first.stdout)[0]["val_accuracy"] == json.loads(second.stdout)[0]["val_accuracy"]


@pytest.mark.slow
def test_the_process_executor_beside_a_serial_twin_ends_identical(tmp_path: Path) -> None:
    """One worker process uses the serial run's torch thread count, so it trains bit for bit alike."""
    config = tmp_path / "tiny.toml"
    config.write_text('population = 4\ngenerations = 2\nseed = 11\nelites = 1\nconfirm = false\n'
                      '[train]\ndataset = "digits"\nmodel = "mlp"\nepochs = 1\nbatch_size = 64\n')
    root = tmp_path / "root"
    assert afos("search", "--config", str(config), "--out", str(root / "serial"), "--quiet").returncode == 0
    result = afos("search", "--config", str(config), "--out", str(root / "process"), "--quiet", "--no-reuse",
                  "--executor", "process", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert _hall(root / "process") == _hall(root / "serial")
    trained = _origins(root / "serial" / "afos.db")
    assert set(trained) == {"trained"} and _origins(root / "process" / "afos.db") == trained


def test_sigterm_marks_the_run_interrupted(tmp_path: Path) -> None:
    """A scheduler's cancel (SIGTERM) is handled like Ctrl-C: status interrupted, exit 143, resumable."""
    process = subprocess.Popen([sys.executable, "-m", "afos", "search", "--population", "6", "--generations", "3",
                                "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _count(tmp_path / "run" / "afos.db") < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "terminated; resume with: afos search --resume" in stderr and "Traceback" not in stderr
    (row,) = list_runs(tmp_path)
    assert row.status is RunStatus.INTERRUPTED


def test_fitness_can_be_validation_macro_f1(tmp_path: Path) -> None:
    _search(tmp_path / "run", fitness="val_f1", generations=1, population=3, reuse_runs=False, confirm=False)
    with RunStore(tmp_path / "run" / "afos.db", readonly=True) as store:
        records = {r.activation_key: r for r in store.evaluations(phase=Phase.SEARCH)}
        hall = store.last_generation().hall_of_fame
    for entry in hall:
        record = records[entry.key]
        expected = record.metric("val_f1") if record.ok else 0.0
        assert entry.fitness.value == expected and 0.0 <= expected <= 1.0
