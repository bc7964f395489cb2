"""Replay: a search answered from a table decides as the same search trained for real, and a table never
answers what it does not hold."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import pytest

from afos.activation.spec import resolve_activation
from afos.errors import ConfigError, UserError
from afos.execution.contract import Job
from afos.execution.local import SerialExecutor
from afos.execution.replay import Outcome, ReplayExecutor, Table, TableFunction, TableTask, read_table, task_settings, write_table
from afos.records.evaluation import FitnessResult, Status
from afos.runs.lifecycle import Options
from afos.runs.search import search as run_search
from afos.search.config import SearchConfig, fitness_seeds, task_configs
from afos.storage.store import RunStore

#: A search kept to the table's part of the space (trees of height <= 2), trained in a blink.
SEARCH = {
    "population": 5,
    "generations": 3,
    "seed": 4,
    "elites": 1,
    "fitness_seeds": 2,
    "init_max_depth": 2,
    "max_height": 2,
    "reuse_runs": False,
    "confirm": False,  # confirmation trains fresh seeds, which a table answers from its replicates
    "train": {"dataset": "checkerboard", "model": "mlp", "model_options": {"hidden": [8]}, "epochs": 1,
              "batch_size": 64, "optimizer": "adam", "lr": 0.01, "val_fraction": 0.25, "kernels": "eager"},
}


def _search(config: SearchConfig, run_dir: Path, executor: object) -> str:
    return run_search(config, run_dir, executor=executor, options=Options())  # type: ignore[arg-type]


def _table_of(run_dir: Path, config: SearchConfig) -> Table:
    """A table holding exactly what the real search's trainings returned."""
    train = task_configs(config)[0]
    seeds = tuple(fitness_seeds(config))
    with RunStore(run_dir / "afos.db", readonly=True) as store:
        records = store.evaluations()
    by_key: dict[str, dict[int, Outcome]] = {}
    for record in records:
        by_key.setdefault(record.key.activation_key, {})[record.key.seed] = Outcome.of(record)
    outcomes = {key: tuple(runs[seed] for seed in seeds) for key, runs in by_key.items()}
    functions = tuple(TableFunction(key, key, key) for key in outcomes)
    task = TableTask("checkerboard/mlp", task_settings(replace(train, epochs=config.train.epochs)), seeds)
    return Table({"max_height": 2}, {}, (task,), functions, {task.name: outcomes})


def _decisions(run_dir: Path) -> tuple:
    """Everything a search decided and recorded, less wall times and provenance."""
    with RunStore(run_dir / "afos.db", readonly=True) as store:
        generations = [(g.generation, g.population, g.hall_of_fame) for g in store.generations()]
        candidates = [(c.key, c.canonical, c.status, c.lineage) for c in store.candidates()]
        runs = [(r.key, r.status, r.val_accuracy, r.val_loss, r.test_accuracy) for r in store.evaluations()]
    return generations, candidates, runs


@pytest.mark.slow  # ~10 s: a real search, then its replay
def test_a_replayed_search_decides_as_the_search_that_trained(tmp_path: Path) -> None:
    config = SearchConfig.from_dict(SEARCH)
    with SerialExecutor() as executor:
        assert _search(config, tmp_path / "real" / "run", executor) == "finished"
    table = _table_of(tmp_path / "real" / "run", config)
    write_table(table, tmp_path / "table.json.gz")
    replay = ReplayExecutor(read_table(tmp_path / "table.json.gz"))
    assert _search(config, tmp_path / "replayed" / "run", replay) == "finished"
    assert replay.answered == sum(len(runs) for runs in table.outcomes["checkerboard/mlp"].values())
    assert _decisions(tmp_path / "replayed" / "run") == _decisions(tmp_path / "real" / "run")
    assert (tmp_path / "replayed" / "run" / "hall_of_fame.csv").read_text() == \
        (tmp_path / "real" / "run" / "hall_of_fame.csv").read_text()


def _tiny_table() -> Table:
    config = SearchConfig.from_dict(SEARCH)
    key = resolve_activation("relu").key()
    seeds = (0, 1, 2)
    runs = tuple(Outcome.of(FitnessResult(status=Status.OK, val_accuracy=0.5 + s / 10, val_loss=1.0, epochs=1.0,
                                          steps=10, seconds=0.1)) for s in seeds)
    task = TableTask("checkerboard/mlp", task_settings(task_configs(config)[0]), seeds)
    return Table({"max_height": 2}, {"licence": "MIT"}, (task,), (TableFunction(key, "relu", "max0(x)"),),
                 {task.name: {key: runs}})


def _job(expression: str, seed: int, **train: object) -> Job:
    config = task_configs(SearchConfig.from_dict(SEARCH))[0]
    return Job("k", resolve_activation(expression), replace(config, seed=seed, **train))


def test_each_seed_is_answered_by_its_replicate_and_other_seeds_wrap_around() -> None:
    table = _tiny_table()
    accuracy = [table.outcome(_job("max(x, 0)", seed)).result().val_accuracy for seed in (0, 1, 2, 3, 1_000_001)]
    assert accuracy == [0.5, 0.6, 0.7, 0.5, 0.5 + (1_000_001 % 3) / 10]


def test_a_job_the_table_cannot_answer_is_an_error_that_names_why() -> None:
    table = _tiny_table()
    with pytest.raises(ConfigError, match=r"'silu' is outside the table's space \(max_height 2\)"):
        table.outcome(_job("silu", 0))
    with pytest.raises(ConfigError, match=r"differs in lr \(table 0.01, job 0.1\)"):
        table.outcome(_job("relu", 0, lr=0.1))
    with pytest.raises(ConfigError, match=r"differs in budget \(table 1.0, job 2.0\)"):
        table.outcome(_job("relu", 0, epochs=2.0))


def test_a_table_file_round_trips_and_a_malformed_one_is_one_clear_error(tmp_path: Path) -> None:
    table = _tiny_table()
    path = tmp_path / "t.json.gz"
    write_table(table, path)
    assert read_table(path) == table
    assert path.read_bytes() == (write_table(table, tmp_path / "u.json.gz") or (tmp_path / "u.json.gz").read_bytes())
    values = json.loads(gzip.decompress(path.read_bytes()))
    for broken in ({**values, "version": 99}, {**values, "fields": ["status"]},
                   {**values, "outcomes": {"checkerboard/mlp": {"k": [["ok", "NaN", 1, 1, 1, 1, 1, 1]]}}}):
        path.write_bytes(gzip.compress(json.dumps(broken).encode()))
        with pytest.raises(UserError, match="not a readable afos table"):
            read_table(path)
    path.write_bytes(b"not gzip")
    with pytest.raises(UserError, match="not a readable afos table"):
        read_table(path)
