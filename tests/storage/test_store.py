"""Tests for afos.store: real SQLite files in tmp_path, including a process killed with SIGKILL mid-write."""

from __future__ import annotations

import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from afos.errors import StoreError
from afos.records.evaluation import Checkpoint, EvalKey, Evaluation, Origin, Phase, Status
from afos.records.json import stable_hash
from afos.records.runs import MetaKey
from afos.records.search import (
    CandidateRecord,
    CandidateStatus,
    Counts,
    Fitness,
    Generation,
    GenerationStats,
    HallOfFameEntry,
    Lineage,
    MadeBy,
    Member,
)
from afos.search.loop import rng_state_from_json, rng_state_to_json
from afos.storage.schema import SCHEMA_VERSION
from afos.storage.store import RunStore

REPO = Path(__file__).resolve().parents[2]


def _record(activation_key: str = "fp1", seed: int = 0, **changes: object) -> Evaluation:
    values: dict = {
        "activation_key": activation_key, "protocol": "p" * 16, "budget": 1.0, "seed": seed, "task": "digits/mlp",
        "status": Status.OK, "reason": "", "val_accuracy": 0.9, "val_loss": 0.3, "test_accuracy": 0.88,
        "test_loss": 0.35, "train_loss": 0.2, "epochs": 1.0, "steps": 30, "seconds": 1.5, "generation": 2,
        "expression": "x*sigmoid(x)", "params": {"0": {"beta": 0.5}, "1": {"beta": 1.5}},
        "history": (Checkpoint(30, 1.0, 0.2, 0.3, 0.9, 0.85, 1.4),), "created": 1.0,
    }
    values.update(changes)
    return Evaluation(**values)


def _generation(number: int) -> Generation:
    return Generation(number, GenerationStats(Counts(), 0.5, 0.5, 0.5), (Member("a", Fitness(0.0, 0.5)),), (), {})


def _key(activation_key: str = "fp1", seed: int = 0, **changes: object) -> EvalKey:
    return _record(activation_key, seed, **changes).key


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    with RunStore(tmp_path / "afos.db") as opened:
        yield opened


def test_schema_created_versioned_and_reopened(tmp_path: Path) -> None:
    path = tmp_path / "run" / "afos.db"
    with RunStore(path) as store:
        store.set_meta(MetaKey.CONFIG, {"population": 20, "dataset": "digits"})
    conn = sqlite3.connect(path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "candidates", "evaluations", "generations"} <= tables
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    with RunStore(path) as store:
        assert store.get_meta(MetaKey.CONFIG) == {"population": 20, "dataset": "digits"}
        assert store.get_meta(MetaKey.WINNER, "fallback") == "fallback"


def test_meta_values_keep_their_json_type(store: RunStore) -> None:
    keys = dict(zip(("int", "str", "float", "big", "none", "nan", "list"), MetaKey))
    values = {"int": 1, "str": "1", "float": 1.0, "big": 2**100, "none": None, "nan": math.nan,
              "list": [1, (2, 3)]}
    for name, value in values.items():
        store.set_meta(keys[name], value)
    got = {name: store.get_meta(keys[name], "missing") for name in values}
    assert got == {**values, "nan": None, "list": [1, [2, 3]]}
    assert type(got["float"]) is float and type(got["str"]) is str
    store.set_meta(keys["int"], 2)
    assert store.get_meta(keys["int"]) == 2


def test_refuses_foreign_and_newer_databases(tmp_path: Path) -> None:
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not an afos run database"):
        RunStore(foreign)
    newer = tmp_path / "newer.db"
    RunStore(newer).close()
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer|upgrade"):
        RunStore(newer)


def test_evaluation_round_trip(store: RunStore) -> None:
    record = _record(val_f1=0.5, test_f1=0.45, kernels="compiled", compile_seconds=2.5, cuda_graphs=True,
                     kernel_note="a note", phase=Phase.CONFIRM, origin=Origin.REUSED, source="other-run")
    store.add_evaluation(record)
    assert store.find_evaluation(record.key) == record
    assert store.find_evaluation(_key(task="wine/mlp")) is None
    assert store.find_evaluation(_key(budget=2.0)) is None


def test_non_finite_floats_become_null(store: RunStore) -> None:
    store.add_evaluation(_record(status=Status.DIVERGED, val_loss=math.inf, train_loss=-math.inf,
                                 params={"0": {"beta": math.nan}},
                                 history=(Checkpoint(1, 0.5, math.inf, 1.0, 0.5, 0.4, 1.0),)))
    got = store.find_evaluation(_key())
    assert got.val_loss is None and got.train_loss is None and got.status is Status.DIVERGED
    assert got.params == {"0": {"beta": None}}
    assert got.history == (Checkpoint(1, 0.5, None, 1.0, 0.5, 0.4, 1.0),)


def test_numpy_values_are_stored_as_plain_json(store: RunStore) -> None:
    store.add_evaluation(_record(val_accuracy=np.float32(0.5), steps=np.int64(7), params={"w": np.arange(3)}))
    got = store.find_evaluation(_key())
    assert got.val_accuracy == 0.5 and got.steps == 7 and got.params == {"w": [0, 1, 2]}


def test_an_evaluation_is_a_fact_but_a_lost_worker_is_retried(store: RunStore) -> None:
    store.add_evaluation(_record(val_accuracy=0.9))
    store.add_evaluation(_record(val_accuracy=0.1))
    assert store.count_evaluations() == 1 and store.find_evaluation(_key()).val_accuracy == 0.9
    assert store.find_evaluation(_key(budget=1)) is not None  # an int budget is the same key
    lost = _record("lost", status=Status.ERROR, reason="worker died 3 times: killed by SIGKILL")
    store.add_evaluation(lost)
    assert not store.find_evaluation(lost.key).final
    store.add_evaluation(_record("lost", attempts=2))
    retried = store.find_evaluation(lost.key)
    assert retried.ok and retried.attempts == 2 and store.count_evaluations() == 2
    store.add_evaluation(_record("lost", val_accuracy=0.1, attempts=3))  # a final record is kept
    assert store.find_evaluation(lost.key).attempts == 2


def test_malformed_rows_are_store_errors(store: RunStore) -> None:
    store.add_evaluation(_record())
    store._conn.execute("UPDATE evaluations SET params = '{not json'")
    with pytest.raises(StoreError, match="malformed"):
        store.find_evaluation(_key())
    store._conn.execute("UPDATE evaluations SET params = '[1]', status = 'ok'")
    with pytest.raises(StoreError, match="malformed"):
        store.evaluations()
    store._conn.execute("UPDATE evaluations SET params = NULL, status = 'exploded'")
    with pytest.raises(StoreError, match="malformed"):
        store.evaluations()


def test_evaluations_filters_and_order(store: RunStore) -> None:
    store.add_evaluation(_record("a"))
    store.add_evaluation(_record("b", status=Status.DIVERGED, protocol="q" * 16, phase=Phase.BASELINE))
    store.add_evaluation(_record("a", seed=1, status=Status.TIMEOUT, task="wine/mlp"))
    assert [row.activation_key for row in store.evaluations()] == ["a", "b", "a"]
    assert [row.seed for row in store.evaluations(activation_key="a")] == [0, 1]
    assert [row.activation_key for row in store.evaluations(protocol="q" * 16)] == ["b"]
    assert [row.activation_key for row in store.evaluations(phase=Phase.BASELINE)] == ["b"]
    assert [row.task for row in store.evaluations(task="wine/mlp")] == ["wine/mlp"]
    assert store.count_evaluations(Phase.SEARCH) == 2


def test_candidates(store: RunStore) -> None:
    first = CandidateRecord("f1", "mul(x, sigmoid(x))", "x*sigmoid(x)", 0, CandidateStatus.VALID)
    assert store.add_candidate(first) is True
    assert store.add_candidate(replace(first, generation=3)) is False
    assert store.add_candidate(replace(first, key="f0", status=CandidateStatus.SCREENED, reason="flat")) is True
    rows = store.candidates()
    assert [(row.key, row.generation, row.status, row.reason) for row in rows] == [
        ("f1", 0, CandidateStatus.VALID, None), ("f0", 0, CandidateStatus.SCREENED, "flat")]


def test_a_candidates_lineage_round_trips(store: RunStore) -> None:
    lineage = Lineage(MadeBy.OFFSPRING, ("crossover", "shrink"), ("p1", "p2"))
    store.add_candidate(CandidateRecord("c", "x", "x", 2, CandidateStatus.VALID, lineage=lineage))
    (row,) = store.candidates()
    assert row.lineage == lineage and row.lineage.describe() == "crossover + shrink"


def test_a_schema_2_database_reads_as_it_is_and_upgrades_when_written(tmp_path: Path) -> None:
    path = tmp_path / "afos.db"
    with RunStore(path, meta={MetaKey.KIND: "search"}) as store:
        store.add_candidate(CandidateRecord("old", "x", "x", 0, CandidateStatus.VALID))
    with sqlite3.connect(path) as connection:  # what afos wrote before lineage existed
        connection.execute("ALTER TABLE candidates DROP COLUMN lineage")
        connection.execute("PRAGMA user_version = 2")
    with RunStore(path, readonly=True) as store:  # a reader never changes the file
        assert [(c.key, c.lineage) for c in store.candidates()] == [("old", None)]
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 2
    with RunStore(path) as store:
        store.add_candidate(CandidateRecord("new", "x", "x", 1, CandidateStatus.VALID, lineage=Lineage(MadeBy.IMMIGRANT)))
        assert [(c.key, c.lineage) for c in store.candidates()] == [("old", None), ("new", Lineage(MadeBy.IMMIGRANT))]
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3


def test_transaction_rolls_back_on_exception(store: RunStore) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction():
            store.add_evaluation(_record("a"))
            store.set_meta(MetaKey.REASON, 1)
            store.save_generation(_generation(0))
            raise RuntimeError("boom")
    assert store.count_evaluations() == 0
    assert store.get_meta(MetaKey.REASON) is None and store.last_generation() is None
    store.add_evaluation(_record("b"))  # the store is still usable
    assert store.count_evaluations() == 1


def test_nested_transactions_commit_with_the_outer_one(tmp_path: Path) -> None:
    path = tmp_path / "afos.db"
    with RunStore(path) as store, RunStore(path, readonly=True) as reader:
        with store.transaction():
            store.add_evaluation(_record("outer"))
            with pytest.raises(RuntimeError):
                with store.transaction():
                    store.add_evaluation(_record("inner"))
                    raise RuntimeError
            store.add_evaluation(_record("after"))
            assert reader.count_evaluations() == 0  # nothing visible before the outermost commit
        assert [row.activation_key for row in reader.evaluations()] == ["outer", "after"]


def test_generation_round_trip_restores_random_draws(store: RunStore) -> None:
    random.seed(1234)
    random.gauss(0, 1)  # leaves a cached gauss_next in the state
    state = rng_state_to_json(random.getstate())
    expected = [random.random() for _ in range(5)] + [random.gauss(0, 1)]
    hall = (HallOfFameEntry("k", "x", "x", Fitness(0.0, 0.9), 1, n_runs=1, val_accuracy=0.9, learned={"0": {"p0": 1.5}},
                            learned_runs={"p0": [1.5]}),)
    store.save_generation(_generation(0))
    saved = Generation(1, GenerationStats(Counts(proposed=4, trained=2), 0.9, 0.7, math.nan),
                       (Member("x", Fitness(0.0, 0.9)),), hall, state)
    store.save_generation(saved)
    last = store.last_generation()
    assert last.finished == pytest.approx(time.time(), abs=60)
    assert replace(last, finished=0.0) == replace(saved, stats=replace(saved.stats, median=None))
    random.seed(0)
    random.setstate(rng_state_from_json(last.rng_state))
    assert [random.random() for _ in range(5)] + [random.gauss(0, 1)] == expected
    assert [row.generation for row in store.generations()] == [0, 1]


def test_a_malformed_random_state_is_refused() -> None:
    from afos.errors import UserError

    good = rng_state_to_json(random.Random(5).getstate())
    assert rng_state_from_json(good) == random.Random(5).getstate()
    for bad in ({}, {"python": {"version": 3, "state": [1, 2], "gauss_next": None}}, [], "x",
                {"python": {**good["python"], "state": ["a"] * 625}}):
        with pytest.raises(UserError, match="random state"):
            rng_state_from_json(bad)


def test_last_generation_of_empty_run(store: RunStore) -> None:
    assert store.last_generation() is None and store.generations() == []


def test_readonly_reads_but_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "afos.db"
    with RunStore(path) as store:
        store.add_evaluation(_record())
        store.set_meta(MetaKey.REASON, "v")
    with RunStore(path, readonly=True) as reader:
        assert reader.count_evaluations() == 1 and reader.get_meta(MetaKey.REASON) == "v"
        with pytest.raises(StoreError, match="read-only"):
            reader.add_evaluation(_record(seed=5))
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._conn.execute("DELETE FROM evaluations")  # SQLite itself refuses too (mode=ro)
    with RunStore(path, readonly=True) as reader:
        assert reader.count_evaluations() == 1
    with pytest.raises(FileNotFoundError):
        RunStore(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


def test_evaluations_table_is_plain_sql(tmp_path: Path) -> None:
    path = tmp_path / "afos.db"
    with RunStore(path) as store:
        store.add_evaluation(_record("a", seed=0, val_accuracy=0.8))
        store.add_evaluation(_record("a", seed=1, val_accuracy=0.9))
        store.add_evaluation(_record("b", seed=0, status=Status.DIVERGED, val_accuracy=None))
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT activation_key, count(*), avg(val_accuracy), max(budget) FROM evaluations "
                        "WHERE status = 'ok' GROUP BY activation_key").fetchall()
    assert rows == [("a", 2, pytest.approx(0.85), 1.0)]
    columns = [row[1] for row in conn.execute("PRAGMA table_info(evaluations)")]
    assert columns[:6] == ["id", "activation_key", "protocol", "budget", "seed", "task"]
    assert {"phase", "origin", "source", "attempts", "activation"} <= set(columns) and "fitness" not in columns
    plan = " ".join(str(row) for row in conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM evaluations WHERE activation_key = 'a' AND protocol = 'p'"))
    assert "USING INDEX" in plan
    assert conn.execute("SELECT json_extract(params, '$.\"1\".beta') FROM evaluations LIMIT 1").fetchone() == (1.5,)
    conn.close()


def test_stable_hash_is_stable() -> None:
    settings = {"dataset": "digits", "epochs": 1.0, "lr": 0.1, "schedule": ["cosine", 2]}
    digest = stable_hash(settings)
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert stable_hash(dict(reversed(list(settings.items())))) == digest
    assert stable_hash({**settings, "epochs": 1, "schedule": ("cosine", 2.0)}) == digest
    assert stable_hash({**settings, "lr": 0.01}) != digest
    assert stable_hash({"timeout_s": math.inf}) != stable_hash({"timeout_s": None})
    # pinned so an accidental change of the encoding (which would orphan every stored evaluation) fails here
    assert stable_hash({"a": 1}) == "015abd7f5cc57a2d"


_WRITER = textwrap.dedent("""
    import random, sys, time
    from afos.records.evaluation import Checkpoint, Evaluation, Status
    from afos.records.search import Counts, Fitness, Generation, GenerationStats, Member
    from afos.storage.store import RunStore
    store = RunStore(sys.argv[1])
    pause_at = int(sys.argv[2])  # -1: never pause
    store._conn.execute("PRAGMA cache_size = 8")  # tiny page cache: open transactions spill pages into the WAL
    generation = 0
    while True:
        with store.transaction():  # one generation = 5 evaluations + its resume point, all or nothing
            for i in range(5):
                store.add_evaluation(Evaluation(
                    activation_key=f"g{generation}-{i}", protocol="p", budget=1.0, seed=i, task="digits/mlp",
                    status=Status.OK, val_accuracy=generation + i / 10, generation=generation,
                    params={"0": {"generation": generation, "i": i}},
                    history=tuple(Checkpoint(e, e, 1.0 / (e + 1), None, None, None, 0.0) for e in range(300))))
            if generation == pause_at:
                print("in transaction", flush=True)
                time.sleep(60)
            store.save_generation(Generation(generation, GenerationStats(Counts(proposed=5), 1.0, 1.0, 1.0),
                                             tuple(Member(f"g{generation}-{i}", Fitness(0.0, 1.0)) for i in range(5)), (),
                                             {"generation": generation}))
        generation += 1
""")


def _start_writer(path: Path, pause_at: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(pause_at)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill(child: subprocess.Popen) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=5)
    assert child.returncode == -signal.SIGKILL


def _assert_intact(path: Path) -> int:
    """Integrity ok, and exactly the committed generations with all their evaluations complete."""
    with RunStore(path) as store:
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        saved = [row.generation for row in store.generations()]
        assert saved == list(range(len(saved)))
        rows = store.evaluations()
        assert len(rows) == 5 * len(saved)  # no evaluation of an unsaved (half-written) generation
        for row in rows:
            generation, i = row.params["0"]["generation"], row.params["0"]["i"]
            assert row.activation_key == f"g{generation}-{i}" and row.ok
            assert row.val_accuracy == generation + i / 10 and len(row.history) == 300
        if saved:
            assert store.last_generation().rng_state == {"generation": saved[-1]}
        store.add_evaluation(_record())  # and it is writable again
    return len(saved)


def test_survives_kill_9_at_a_random_moment(tmp_path: Path) -> None:
    path = tmp_path / "afos.db"
    child = _start_writer(path, pause_at=-1)
    try:
        generations = _wait_for_generations(path, child, minimum=20, deadline=time.monotonic() + 8)
        _kill(child)
    finally:
        _reap(child)
    assert _assert_intact(path) >= generations >= 20


def test_survives_kill_9_inside_an_open_transaction(tmp_path: Path) -> None:
    path = tmp_path / "afos.db"
    child = _start_writer(path, pause_at=3)
    try:
        assert child.stdout.readline() == b"in transaction\n", child.stderr.read().decode()
        assert _wal_ends_uncommitted(Path(f"{path}-wal"))  # the kill really tears a transaction
        _kill(child)
    finally:
        _reap(child)
    assert _assert_intact(path) == 3


def _wal_ends_uncommitted(wal: Path) -> bool:
    """True when the WAL's last frame belongs to no commit (frame header bytes 4-8 are 0 for those).

    WAL layout (sqlite.org/fileformat.html): a 32-byte header with the page size at bytes 8-12, then frames
    of a 24-byte header plus one page.
    """
    data = wal.read_bytes()
    frame = 24 + int.from_bytes(data[8:12], "big")
    frames = (len(data) - 32) // frame
    last = 32 + (frames - 1) * frame
    return frames > 0 and int.from_bytes(data[last + 4:last + 8], "big") == 0


def _reap(child: subprocess.Popen) -> None:
    """Never leave a writer behind when an assertion failed first."""
    if child.poll() is None:
        child.kill()
        child.wait()
    child.stdout.close()
    child.stderr.close()


def _wait_for_generations(path: Path, child: subprocess.Popen, *, minimum: int, deadline: float) -> int:
    """Poll through a read-only store (concurrently with the writer) until enough generations committed."""
    while time.monotonic() < deadline:
        if child.poll() is not None:
            pytest.fail(f"writer exited early ({child.returncode}): {child.stderr.read().decode()}")
        if path.exists():
            try:
                with RunStore(path, readonly=True) as reader:
                    count = len(reader.generations())
            except StoreError:  # file created but schema not committed yet
                count = 0
            if count >= minimum:
                return count
        time.sleep(0.02)
    pytest.fail("writer did not commit enough generations in time")
