"""The tabular benchmark's space and its build: what is enumerated, and a table made from real grids."""

from __future__ import annotations

from pathlib import Path

import pytest

from afos.activation.spec import ActivationSpec
from afos.errors import UserError
from afos.execution.local import SerialExecutor
from afos.execution.replay import Outcome
from afos.grid.sources import load_results
from afos.grid.table import HEIGHT, enumerate_space, table_from_grids
from afos.runs.api import evaluate
from afos.space.primitives import PRIMITIVE_SETS, primitive_set

TRAIN = {"dataset": "checkerboard", "model": "mlp", "model_options": {"hidden": [8]}, "epochs": 1, "batch_size": 64,
         "optimizer": "adam", "lr": 0.01, "val_fraction": 0.25, "kernels": "eager"}


@pytest.mark.slow  # ~7 s: the whole afos space enumerated and a seventh of it parsed back
def test_the_space_is_every_tree_of_height_two_deduplicated_and_screened() -> None:
    space = enumerate_space("afos")
    unary = sum(1 for p in primitive_set("afos") if p.arity == 1)
    binary = len(PRIMITIVE_SETS["afos"]) - unary
    assert HEIGHT == 2
    assert space.trees == unary + binary + unary * (unary + binary) + binary * (1 + unary + binary) ** 2
    assert space.unique == len(space.functions) + len(space.screened) < space.trees
    keys = [f.key for f in space.functions]
    assert len(set(keys)) == len(keys) and not set(keys) & set(space.screened)
    # The grid that trains a function parses its canonical text: it must land on the enumerated key.
    for function in space.functions[::7]:
        assert ActivationSpec(function.canonical).key() == function.key, function.canonical
    assert space.summary()["trained"] == len(space.functions)


def test_a_table_holds_what_its_grids_trained_and_refuses_an_unfinished_one(tmp_path: Path) -> None:
    space = enumerate_space(["identity", "abs", "add"])
    texts = [f.canonical for f in space.functions]
    with SerialExecutor() as executor:
        results = evaluate(*texts, baselines=["relu"], seeds=2, out=tmp_path / "grid", executor=executor, **TRAIN)
    table = table_from_grids(space, {"tiny": load_results([tmp_path / "grid"])}, {"licence": "MIT"})
    (task,) = table.tasks
    assert task.seeds == (0, 1) and task.settings["budget"] == 1.0 and task.settings["dataset"] == "checkerboard"
    assert [f.key for f in table.functions[: len(space.functions)]] == [f.key for f in space.functions]
    assert table.functions[-1].tree == "relu"  # the baseline, beside the space
    for run in results.all_runs():
        assert table.outcomes["tiny"][run.function.fingerprint][run.seed] == Outcome.of(run.record)
    bigger = enumerate_space(["identity", "abs", "neg", "add"])
    with pytest.raises(UserError, match="function\\(s\\) of the space were not trained"):
        table_from_grids(bigger, {"tiny": load_results([tmp_path / "grid"])}, {})
