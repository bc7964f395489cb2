"""`afos evaluate` end to end on digits through the real CLI, plus the grid's input handling."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from afos.errors import ConfigError, ParseError
from afos.grid.spec import make_tasks, resolve_functions, train_config

RUN_KEYS = {"expression", "canonical", "dataset", "model", "seed", "status", "reason", "val_accuracy",
            "test_accuracy", "val_loss", "epochs", "seconds", "params", "val_f1", "test_f1"}
Evaluated = tuple[subprocess.CompletedProcess[str], Path]


def afos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "afos", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Evaluated:
    """One small evaluation shared by the tests below: two good functions, one that diverges, a baseline."""
    out = tmp_path_factory.mktemp("evaluate") / "run"
    result = afos("evaluate", "eelu", "relu", "exp(exp(exp(x)))", "--baseline", "silu", "--dataset", "digits",
                  "--seeds", "2", "--epochs", "2", "--out", str(out), "--json")
    return result, out


def test_json_has_one_object_per_function_and_seed(evaluated: Evaluated) -> None:
    result, _ = evaluated
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)
    assert all(set(run) >= RUN_KEYS for run in runs)
    assert sorted((r["expression"], r["seed"]) for r in runs) == sorted(
        (e, s) for e in ("eelu", "relu", "exp(exp(exp(x)))", "silu") for s in (0, 1))
    eelu = next(r for r in runs if r["expression"] == "eelu")
    assert eelu["canonical"] == "-x*erf(exp(-x))" and (eelu["dataset"], eelu["model"]) == ("digits", "mlp")
    assert eelu["status"] == "ok" and 0.1 < eelu["test_accuracy"] <= 1 and eelu["epochs"] == 2


def test_a_diverging_function_fails_without_failing_the_command(evaluated: Evaluated) -> None:
    result, _ = evaluated
    assert result.returncode == 0
    exploding = [r for r in json.loads(result.stdout) if r["expression"] == "exp(exp(exp(x)))"]
    assert {r["status"] for r in exploding} == {"diverged"} and all(r["reason"] for r in exploding)
    assert all(r["test_accuracy"] is None for r in exploding)


def test_progress_goes_to_stderr_and_files_are_written(evaluated: Evaluated) -> None:
    result, out = evaluated
    assert "run 8/8" in result.stderr and "ETA" in result.stderr
    for name in ("results.json", "results.csv", "runs.csv", "results.md", "afos.db"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "results.json").read_text())
    assert len(saved["runs"]) == 8 and saved["runs"][0]["history"]
    markdown = (out / "results.md").read_text()
    assert "| eelu | `-x*erf(exp(-x))` | candidate |" in markdown and "| silu |" in markdown
    assert "diverged" in markdown


def test_rerunning_the_command_trains_nothing(evaluated: Evaluated) -> None:
    _, out = evaluated
    again = afos("evaluate", "eelu", "relu", "exp(exp(exp(x)))", "--baseline", "silu", "--dataset", "digits",
                 "--seeds", "2", "--epochs", "2", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "resuming: 8 of 8 runs" in again.stderr and "run 1/" not in again.stderr
    assert "eelu" in again.stdout and "2 diverged" in again.stdout
    with sqlite3.connect(out / "afos.db") as db:
        assert db.execute("SELECT count(*) FROM evaluations").fetchone()[0] == 8


def test_an_expression_starting_with_minus_is_an_argument(tmp_path: Path) -> None:
    result = afos("evaluate", "-x*erf(exp(-x))", "--seeds", "1", "--epochs", "1", "--out", str(tmp_path / "r"),
                  "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    (run,) = json.loads(result.stdout)
    assert run["expression"] == "-x*erf(exp(-x))" and run["status"] == "ok"
    assert result.stderr == ""


@pytest.mark.parametrize("args", [["tanh("], ["relu", "foo(x)"], ["relu", "--epoch", "3"],
                                  ["relu", "--dataset", "nope"], ["relu", "--dataset", "wine", "--model", "small_cnn"]])
def test_bad_input_is_one_line_exit_2_before_training(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "r"
    result = afos("evaluate", *args, "--out", str(out), "--quiet")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("afos: error:")
    assert not out.exists()  # nothing was trained or written


def test_tensorboard_without_the_package_is_a_clear_error(tmp_path: Path) -> None:
    """As on a machine without the package: its import fails (a None entry in sys.modules makes it raise)."""
    code = ("import sys; sys.modules['torch.utils.tensorboard'] = None; from afos.cli import main; "
            f"sys.argv = ['afos', 'evaluate', 'relu', '--tensorboard', {str(tmp_path / 'tb')!r}, "
            f"'--out', {str(tmp_path / 'r')!r}]; main()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "pip install tensorboard" in result.stderr


def test_functions_are_parsed_first_and_duplicates_merge() -> None:
    functions, notes = resolve_functions(["silu", "eelu"], ["relu", "swish"])
    assert [(f.name, f.role) for f in functions] == [("silu", "baseline"), ("eelu", "candidate"), ("relu", "baseline")]
    assert "'swish' is the same function as 'silu'" in notes[0]
    with pytest.raises(ParseError):
        resolve_functions(["relu", "x +"])


def test_tasks_are_normalised_and_checked() -> None:
    assert make_tasks(["Digits", "wine"]) == ["digits/mlp", "wine/mlp"]
    assert make_tasks(["digits"], ["mlp", "small-cnn"], ["wine/mlp", "digits/mlp"]) == [
        "digits/mlp", "digits/small_cnn", "wine/mlp"]
    with pytest.raises(ConfigError, match="unknown model"):
        make_tasks([], [], ["digits/nonet"])


def test_train_config_layers_flags_over_file_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('population = 4\n[train]\nepochs = 5\nlr = 0.2\nbatch_size = 32\n')
    config = train_config(path, {"lr": 0.1, "epochs": None})
    assert (config.epochs, config.lr, config.batch_size) == (5, 0.1, 32)
    assert train_config(None, {}).epochs == 30
    with pytest.raises(ConfigError, match="steps"):
        train_config(None, {"steps": 10})
