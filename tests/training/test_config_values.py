"""Every config value that used to give a traceback or a silently meaningless run is one ConfigError naming
its key (issue 14, items 4 and 5): through SearchConfig.from_dict, through a real fitness run for the two
that need the dataset and model, and through the real CLI."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch.nn as nn

from afos.errors import ConfigError
from afos.search.config import SearchConfig
from afos.training.config import TrainConfig
from afos.training.data.registry import load_dataset
from afos.training.fitness import check_setup, run_fitness

_BAD_VALUES: list[tuple[str, dict[str, Any]]] = [
    ("reuse_runs", {"reuse_runs": "no"}),
    ("learnable_constants", {"learnable_constants": 1}),
    ("population", {"population": 4.5}),
    ("population", {"population": True}),
    ("population", {"population": 1_000_000_000}),
    ("tournament_size", {"tournament_size": 1.5}),
    ("generations", {"generations": 2.5}),
    ("seed", {"seed": 1.5}),
    ("seed", {"seed": 99999999999999999999}),
    ("seed", {"seed": -1}),
    ("halving_rungs", {"halving_rungs": 2.5}),
    ("halving_eta", {"halving_eta": "3"}),
    ("constants", {"constants": ["a"]}),
    ("constants", {"constants": [math.nan]}),
    ("constants", {"constants": 0.5}),
    ("seed_expressions", {"seed_expressions": [5]}),
    ("seed_expressions", {"seed_expressions": "relu"}),
    ("tasks", {"tasks": [5]}),
    ("baseline", {"baseline": 5}),
    ("primitives", {"primitives": 5}),
    ("train", {"train": 5}),
    ("train", {"train": [1, 2]}),
    ("init_max_depth", {"init_max_depth": 60, "max_height": 60}),
    ("max_height", {"max_height": 10_000}),
    ("max_size", {"max_size": 1_000_000}),
    ("elites", {"elites": 12, "population": 12}),
    ("hall_of_fame", {"hall_of_fame": 10**9}),
    ("fitness_seeds", {"fitness_seeds": 0}),
    ("time_limit", {"time_limit": math.inf}),
    ("max_evals", {"max_evals": 2.0}),
    ("seed", {"train": {"seed": 2**63}}),
    ("batch_size", {"train": {"batch_size": 1.5}}),
    ("augment", {"train": {"augment": "yes"}}),
    ("model", {"train": {"model": []}}),
    ("device", {"train": {"device": 0}}),
    ("epochs", {"train": {"epochs": math.inf}}),
    ("lr", {"train": {"lr": True}}),
]


@pytest.mark.parametrize(("key", "values"), _BAD_VALUES, ids=[f"{k}={v}" for k, v in _BAD_VALUES])
def test_bad_value_is_one_config_error_naming_the_key(key: str, values: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        SearchConfig.from_dict(values)
    message = str(info.value)
    assert key in message and "\n" not in message


def test_boundary_values_are_accepted() -> None:
    config = SearchConfig.from_dict({"seed": 2**63 - 1, "population": 10_000, "max_size": 64, "max_height": 64,
                                     "init_max_depth": 8, "constants": [-1e15, 0, 2.5], "reuse_runs": False,
                                     "train": {"seed": 0, "model_options": {"hidden": [8]}}})
    assert (config.seed, config.population, config.reuse_runs) == (2**63 - 1, 10_000, False)


def test_model_without_activation_site_fails_before_training() -> None:
    config = TrainConfig(model="mlp", model_options={"hidden": []}, epochs=1.0)
    with pytest.raises(ConfigError, match="model_options.*no activation site"):
        run_fitness(nn.ReLU, config)


@pytest.mark.parametrize("fraction", [1e-9, 0.02])
def test_tiny_validation_split_fails_before_training(fraction: float) -> None:
    config = TrainConfig(val_fraction=fraction, epochs=1.0)
    with pytest.raises(ConfigError, match=r"val_fraction=.* leaves \d+ validation example\(s\) of digits"):
        run_fitness(nn.ReLU, config)


def test_small_dataset_needs_a_tenth_not_fifty() -> None:
    """wine holds 142 training examples: its default split (14) is allowed, a 7-example one is not."""
    run_fitness(nn.ReLU, TrainConfig(dataset="wine", epochs=0.1))
    with pytest.raises(ConfigError, match="leaves 7 validation example"):
        run_fitness(nn.ReLU, TrainConfig(dataset="wine", val_fraction=0.05, epochs=0.1))
    assert len(load_dataset("wine").val_y) == 14


@pytest.mark.parametrize(("toml", "key"), [("reuse_runs = \"no\"\n", "reuse_runs"),
                                           ("[train]\nmodel_options = { hidden = [] }\n", "no activation site")])
def test_cli_reports_bad_config_values_in_one_line(tmp_path: Path, toml: str, key: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("population = 4\ngenerations = 1\n" + toml)
    result = subprocess.run([sys.executable, "-m", "afos", "search", "--config", str(config), "--out",
                             str(tmp_path / "run"), "--epochs", "0.1", "--quiet"], capture_output=True, text=True,
                            timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("afos: error: ") and key in lines[0]
    assert not (tmp_path / "run").exists()  # checked before the run folder is made


def test_setup_check_needs_no_training() -> None:
    """The preflight the commands run: the same two checks, on the loaded dataset, before any folder exists."""
    digits = load_dataset("digits", val_fraction=0.02)
    with pytest.raises(ConfigError, match="leaves 29 validation example"):
        check_setup(TrainConfig(val_fraction=0.02), digits)
    with pytest.raises(ConfigError, match="no activation site"):
        check_setup(TrainConfig(model_options={"hidden": []}), load_dataset("digits"))
    check_setup(TrainConfig(model_options={"hidden": [4]}), load_dataset("digits"))
