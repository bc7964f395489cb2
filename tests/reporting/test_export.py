"""`afos export` and `render(Form.from_activation(...))`: the exported code runs where afos cannot be imported and computes
the function afos trains, values and gradients alike."""

from __future__ import annotations

import json
import keyword
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from afos.activation.module import Activation
from afos.errors import UserError
from afos.execution.local import SerialExecutor
from afos.reporting.export.form import ExportError, Form
from afos.reporting.export.formats import RESERVED_NAMES, render
from afos.runs.search import search as run_search
from afos.search.config import SearchConfig
from afos.space.parse import parse
from afos.storage.store import RunStore

GRID = np.linspace(-6.0, 6.0, 241)  # includes 0 and 1, where the kinks of max/min/heaviside lie

#: (expression, learnable values to set after construction): every custom function and fixed-up construct.
CASES = [
    ("-x*erf(exp(-x))", {}),
    ("x*tanh(softplus(x + beta))", {"beta": -0.37}),
    ("b*sigmoid(a*x) + gelu(x)", {"a": 1.7, "b": 0.6}),
    ("elu(x) - selu(x)/3 + elish(x)", {}),
    ("max(0, x) + min(x, 1)*erfc(x) + heaviside(x - 1)", {}),
    ("sinc(x) + atanh(x/7) + log(1 + exp(x))", {}),
    ("abs(x)**0.5 + asinh(x)*atan(x) - x**2/10", {}),
    ("max(x, sin(x)) + i0e(x)", {}),
]

RUNNER = textwrap.dedent('''
    import importlib.util, json, sys
    sys.modules["afos"] = None  # any import of afos in the exported code fails here
    import numpy
    path, kind, points = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    spec = importlib.util.spec_from_file_location("exported", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if kind == "torch":
        import torch
        out = {}
        for name, fn in (("function", module.activation), ("module", module.Activation().double())):
            x = torch.tensor(points, dtype=torch.float64, requires_grad=True)
            y = fn(x)
            (grad,) = torch.autograd.grad(y.sum(), x)
            out[name] = [y.tolist(), grad.tolist()]
        out["parameters"] = sorted(n for n, _ in module.Activation().named_parameters())
    else:
        x = numpy.array(points)
        h = 1e-6
        out = {"function": [module.activation(x).tolist(),
                            ((module.activation(x + h) - module.activation(x - h)) / (2 * h)).tolist()]}
    print(json.dumps(out))
''')


def run_isolated(source: str, kind: str, tmp_path: Path, points: np.ndarray = GRID) -> dict:
    """Run exported code with ``python -I`` from an empty folder, afos blocked."""
    work = tmp_path / f"clean-{kind}"
    work.mkdir(exist_ok=True)
    (work / "exported.py").write_text(source)
    result = subprocess.run([sys.executable, "-I", "-c", RUNNER, "exported.py", kind, json.dumps(points.tolist())],
                            cwd=work, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def afos_values(activation: Activation, points: np.ndarray = GRID) -> tuple[np.ndarray, np.ndarray]:
    x = torch.tensor(points, dtype=torch.float64, requires_grad=True)
    y = activation.double()(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    return y.detach().numpy(), grad.numpy()


def trained(text: str, values: dict[str, float]) -> Activation:
    """An Activation whose learnable parameters hold ``values`` (as if training had moved them there)."""
    activation = Activation(text, {name: 0.0 for name in values})
    with torch.no_grad():
        for name, value in values.items():
            activation.params[name].fill_(value)
    return activation


@pytest.mark.parametrize(("text", "values"), CASES)
def test_exported_torch_matches_values_and_gradients(tmp_path: Path, text: str, values: dict) -> None:
    activation = trained(text, values)
    expected, expected_grad = afos_values(activation)
    out = run_isolated(render(Form.from_activation(activation), "torch"), "torch", tmp_path)
    for name in ("function", "module"):
        got, grad = (np.array(v) for v in out[name])
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-12)
    assert out["parameters"] == sorted(values)


@pytest.mark.parametrize(("text", "values"), [c for c in CASES if "i0e" not in c[0]])
def test_exported_numpy_matches_values_and_gradients(tmp_path: Path, text: str, values: dict) -> None:
    activation = trained(text, values)
    expected, expected_grad = afos_values(activation)
    source = render(Form.from_activation(activation), "numpy")
    got, grad = (np.array(v) for v in run_isolated(source, "numpy", tmp_path)["function"])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    smooth = np.min(np.abs(GRID[:, None] - np.array([0.0, 1.0])), axis=1) > 1e-3  # central differences
    np.testing.assert_allclose(grad[smooth], expected_grad[smooth], rtol=1e-5, atol=1e-5)


def test_per_channel_values_are_exported_per_channel(tmp_path: Path) -> None:
    activation = Activation("x*sigmoid(beta*x)", {"beta": 1.0}, channel=True)
    activation(torch.zeros(1, 3, 2, 2))
    with torch.no_grad():
        activation.params["beta"].copy_(torch.tensor([0.5, 1.0, 2.0]))
    source = render(Form.from_activation(activation), "torch")
    namespace: dict = {}
    exec(compile(source, "exported.py", "exec"), namespace)  # noqa: S102 - our own generated code, in a test
    x = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    expected = activation.double()(x)
    torch.testing.assert_close(namespace["activation"](x), expected)
    torch.testing.assert_close(namespace["Activation"]().double()(x), expected)


def test_text_formats_substitute_the_values() -> None:
    form = Form.from_text("x*tanh(softplus(x + beta))", {"beta": -0.1})
    assert render(form, "sympy") == "x*tanh(softplus(x - 0.1))\n"
    assert "0.1" in render(form, "latex") and "beta" not in render(form, "latex")


def test_impossible_exports_are_clear_errors() -> None:
    with pytest.raises(ExportError, match="i0e.*export it to torch"):
        render(Form.from_text("i0e(x)"), "numpy")
    with pytest.raises(ExportError, match="unknown export format 'julia'"):
        render(Form.from_text("x"), "julia")
    with pytest.raises(ExportError, match="beta.*need a value"):
        Form(parse("beta*x", params=["beta"]))


def afos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "afos", *args], capture_output=True, text=True, check=False, timeout=300)


def test_cli_exports_an_expression_with_fixed_parameters(tmp_path: Path) -> None:
    out = tmp_path / "mila.py"
    result = afos("export", "mila", "--fixed", "beta=-0.1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    got = run_isolated(out.read_text(), "torch", tmp_path, np.array([-1.0, 0.0, 2.0]))["function"][0]
    expected = Activation("x*tanh(softplus(x - 0.1))").double()(torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64))
    np.testing.assert_allclose(got, expected.detach().numpy(), rtol=1e-12)
    assert afos("export", "mila", "--fixed", "beta=-0.1", "--format", "sympy").stdout == "x*tanh(softplus(x - 0.1))\n"


def test_cli_exports_from_a_search_run_with_learned_constants(tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = SearchConfig.from_dict({
        "population": 4, "generations": 1, "seed": 0, "fitness_seeds": 1, "learnable_constants": True,
        "seed_expressions": ["scale(tanh(scale(x)))"], "reuse_runs": False,
        "train": {"dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 64},
    })
    with SerialExecutor() as executor:
        run_search(config, run, executor=executor)
    with RunStore(run / "afos.db", readonly=True) as store:
        hall = store.last_generation().hall_of_fame
    rank = next(i for i, entry in enumerate(hall, start=1) if entry.learned)
    entry = hall[rank - 1]
    sites = list(entry.learned.values())
    means = {name: np.mean([site[name] for site in sites]) for name in sites[0]}
    result = afos("export", str(run), "--rank", str(rank), "--format", "numpy")
    assert result.returncode == 0, result.stderr
    got = run_isolated(result.stdout, "numpy", tmp_path, np.array([-1.5, 0.5]))["function"][0]
    expected = Activation(entry.canonical, fixed=means).double()(torch.tensor([-1.5, 0.5], dtype=torch.float64))
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-9)
    bad = afos("export", str(run), "--rank", "99")
    assert bad.returncode == 2 and bad.stderr.startswith("afos: error: --rank 99 is out of range")


# ------------------------------------------------------------------------------ parameter names


BATCH_RUNNER = textwrap.dedent('''
    import importlib.util, json, pathlib, sys
    sys.modules["afos"] = None
    import numpy, torch
    out = {}
    for path in sorted(pathlib.Path(".").glob("*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        x = [-1.5, 0.0, 2.0]
        if path.stem.startswith("torch"):
            values = module.activation(torch.tensor(x, dtype=torch.float64))
            trained = module.Activation().double()(torch.tensor(x, dtype=torch.float64))
            out[path.stem] = [values.tolist(), trained.tolist()]
        else:
            out[path.stem] = [module.activation(numpy.array(x)).tolist()] * 2
    print(json.dumps(out))
''')


def _exportable_names() -> list[str]:
    """Every Python keyword and every name an exporter writes renamed that the grammar takes as a parameter."""
    names = []
    for name in sorted({*keyword.kwlist, *RESERVED_NAMES}):
        try:
            parse("x*sigmoid(x*NAME)".replace("NAME", name), params=[name])
        except UserError:
            continue  # the grammar refuses it (x, a function or constant name): nothing to export
        names.append(name)
    return names


def test_every_parameter_name_exports_to_working_code(tmp_path: Path) -> None:
    """`afos export "x*sigmoid(x*lambda)" --learnable lambda=1` once wrote a file that did not parse, and a
    parameter named `torch` shadowed the module: every keyword and every name the files use now works."""
    names = _exportable_names()
    assert {"lambda", "torch", "numpy", "formula", "PARAMETERS", "training", "forward"} <= set(names)
    work = tmp_path / "exports"
    work.mkdir()
    for index, name in enumerate(names):
        form = Form.from_text(f"x*sigmoid(x*{name})", {name: 1.5})
        for fmt in ("torch", "numpy"):
            source = render(form, fmt)
            assert f"{name} = 1.5" in source  # the docstring keeps the user's name
            (work / f"{fmt}_{index}.py").write_text(source)
    result = subprocess.run([sys.executable, "-I", "-c", BATCH_RUNNER], cwd=work, capture_output=True, text=True,
                            check=False, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    x = np.array([-1.5, 0.0, 2.0])
    expected = (x / (1 + np.exp(-1.5 * x))).tolist()
    for stem, (values, trained) in json.loads(result.stdout).items():
        np.testing.assert_allclose(values, expected, rtol=1e-6, err_msg=stem)
        np.testing.assert_allclose(trained, expected, rtol=1e-6, err_msg=stem)


def test_a_renamed_parameter_is_named_in_the_docstring() -> None:
    source = render(Form.from_text("x*sigmoid(x*lambda) + torch", {"lambda": 1.0, "torch": 0.5}), "torch")
    assert "lambda as lambda_" in source and "torch as torch_" in source
    assert "def formula(x, lambda_, torch_):" in source and "self.lambda_ = " in source
