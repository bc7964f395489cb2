"""Configs by name: the shipped configs live in the package, load by name from any folder, and validate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from afos.config import SHIPPED, config_path, load_config, shipped_configs
from afos.errors import ConfigError
from afos.search.config import SearchConfig


@pytest.mark.parametrize("name", shipped_configs())
def test_every_shipped_config_loads_by_name_and_validates(name: str) -> None:
    assert config_path(name) == config_path(f"{name}.toml") == config_path(f"configs/{name}.toml") == SHIPPED / f"{name}.toml"
    SearchConfig.from_dict(load_config(name))  # a [train]-only config is a search with default search keys


def test_a_file_wins_over_a_name_and_a_typo_gets_a_suggestion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick").write_text("population = 5\n")
    assert load_config("quick") == {"population": 5}
    with pytest.raises(ConfigError, match="did you mean 'cifar10-fast'"):
        config_path("cifar10-fsat")


@pytest.mark.slow
def test_the_cli_finds_a_shipped_config_outside_the_repository(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "afos", "evaluate", "relu", "--config", "quick", "--seeds", "1",
                           "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    bad = subprocess.run([sys.executable, "-m", "afos", "search", "--config", "cifar10-fsat"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "did you mean 'cifar10-fast'" in bad.stderr


@pytest.mark.parametrize("name", shipped_configs())
def test_every_shipped_seed_expression_can_be_built_from_its_primitives(name: str) -> None:
    """A shipped config must not warn about itself when a search starts."""
    from afos.search.loop import _variation
    from afos.search.proposals import Proposer
    from afos.search.trees import primitive_set
    from afos.space.primitives import primitive_set as resolve_primitives

    config = SearchConfig.from_dict(load_config(name))
    primitives = {p.name: p for p in resolve_primitives(config.primitives)}
    pset = primitive_set(primitives.values(), config.constants, learnable_constants=config.learnable_constants)
    said: list[str] = []
    proposer = Proposer(_variation(config), pset, primitives, on_screened=lambda *record: None, say=said.append)
    assert len(proposer._seed_trees()) == len(config.seed_expressions) and not said


def test_every_mistake_of_a_config_is_named_at_once_with_guesses() -> None:
    """A file with two bad values names both; an unknown key gets the near miss; elites says how to set it."""
    with pytest.raises(ConfigError) as bad:
        SearchConfig.from_dict({"population": 0, "elites": -1})
    assert "population=0 is invalid" in str(bad.value) and "elites=-1 is invalid" in str(bad.value)
    with pytest.raises(ConfigError, match="unknown key.*genrations; did you mean 'generations'"):
        SearchConfig.from_dict({"genrations": 3})
    with pytest.raises(ConfigError, match=r"elites=2 is invalid; expected below population \(2; set it with --elites\)"):
        SearchConfig.from_dict({"population": 2, "elites": 2})


def test_a_gpu_asked_for_without_one_says_what_is_missing() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="device='cuda' asks for a GPU, but torch .* sees none on this machine; "
                                          "use --device cpu"):
        SearchConfig.from_dict({"train": {"device": "cuda"}})


def test_a_search_planned_for_more_than_a_day_is_said_once() -> None:
    from afos.records.evaluation import Evaluation, Status
    from afos.search.budget import BudgetWatch
    from afos.training.config import TrainConfig

    said: list[str] = []
    watch = BudgetWatch(TrainConfig(), planned_runs=100_000, time_limit=None, say=said.append)
    record = Evaluation(activation_key="k", protocol="p", budget=1.0, seed=0, task="t", status=Status.OK, seconds=2.0)
    watch.observe(record)
    watch.observe(record)
    assert len(said) == 1 and "the ~100000 runs planned take ~56 h" in said[0]
