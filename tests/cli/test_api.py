"""What users see first: the public names of `import afos`, CLI warnings, and the documented exit codes."""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import afos
from afos.cli.boundary import show_warning


def test_dir_lists_the_public_api_and_every_name_resolves() -> None:
    assert dir(afos) == sorted(afos.__all__)
    assert {"Activation", "parse", "build_model", "load_dataset", "run_fitness", "__version__"} <= set(dir(afos))
    assert not {"Any", "importlib", "annotations"} & set(dir(afos))
    for name in afos.__all__:
        assert getattr(afos, name) is not None


def test_import_afos_stays_light() -> None:
    code = "import sys, afos; afos.parse('x'); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False).stdout.strip() == "False"


def test_warnings_print_as_one_clean_line(capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show_warning
        warnings.warn("first part,\n  second part", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == "afos: warning: first part, second part\n"


def test_the_cifar_subset_warning_through_the_cli(shared_data: Callable[[str], Path], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "afos", "evaluate", "relu", "--dataset", "cifar10", "--model", "small_cnn",
         "--data-dir", str(shared_data("cifar10-subset")), "--epochs", "0.02", "--seeds", "1",
         "--out", str(tmp_path / "run"), "--quiet"],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("afos: warning: cifar-10-batches-py: ")  # once, not per read
    assert "not the official release" in lines[0] and "warnings.warn" not in result.stderr


def test_bad_input_exits_2_with_one_line() -> None:
    result = subprocess.run([sys.executable, "-m", "afos", "export", "x +* 2"], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("afos: error: ")


def test_a_search_result_is_a_table_a_sympy_expression_and_a_torch_module(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """What PySR and Optuna users expect of a result: the table of what was found, the winner as sympy and
    as a module that computes the same function, named fitness, and progress without asking for it."""
    import importlib.util

    import torch

    from afos.errors import UserError
    from afos.space.probe import evaluate

    result = afos.run_search("quick", population=4, generations=1, confirm=False, train={"epochs": 1},
                             out=tmp_path / "run")
    assert "generation 1/1 done" in capsys.readouterr().err  # progress is on by default
    rows = result.rows()
    first = result.hall_of_fame[0]
    assert [row["rank"] for row in rows] == list(range(1, len(result.hall_of_fame) + 1))
    assert (rows[0]["function"], rows[0]["fitness"], rows[0]["rung"]) == (first.canonical, first.fitness.value,
                                                                           first.fitness.rung)
    points = torch.linspace(-3, 3, 13, dtype=torch.float64)
    with torch.no_grad():
        from_module = result.torch_module()(points)
    torch.testing.assert_close(from_module, evaluate(result.sympy(), points))
    assert str(result.sympy(rank=2)) != str(result.sympy(rank=1))
    if importlib.util.find_spec("pandas") is None:
        with pytest.raises(UserError, match="pandas is not installed"):
            result.dataframe()
    else:
        assert list(result.dataframe()["function"]) == [row["function"] for row in rows]
