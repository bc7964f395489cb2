"""The fused Activation (one autograd.Function, symbolic backward) against autograd through the eager chain.

The eager chain is the reference: torch's autograd differentiates the very lowering that the fused forward
runs, so the fused backward must give its gradients, with its conventions at kinks, and never a NaN/inf
where the chain has a finite number.
"""

from __future__ import annotations

import pickle
import random

import pytest
import sympy
import torch
from deap import gp

from afos.activation.module import Activation
from afos.activation.spec import resolve_activation
from afos.errors import ConfigError
from afos.search.trees import Individual, primitive_set, to_sympy
from afos.space.derive import GRAD, adjoints
from afos.space.functions import ATANH_BOUND
from afos.space.lower import lower_many
from afos.space.parse import canonical, parse
from afos.space.primitives import PRIMITIVES, X
from afos.space.primitives import primitive_set as resolve
from afos.training.config import CPU_COMPILE_MIN_STEPS, CPU_MODEL_MIN_STEPS, MODEL, TrainConfig
from afos.training.data.registry import Dataset, load_dataset
from afos.training.fitness import kernel_path, run_fitness

TOLERANCES = {torch.float64: (1e-9, 1e-12), torch.float32: (2e-4, 1e-5), torch.bfloat16: (4e-2, 2e-2)}
KINKS = [0.0, 0.5, -0.5, 1.0, -1.0, 1e-3, -1e-3]


def _grid(dtype: torch.dtype) -> torch.Tensor:
    """Dense around the origin, every kink of the primitives exactly, and magnitudes out to 1e4."""
    dense = torch.linspace(-6, 6, 961, dtype=torch.float64)
    wide = torch.logspace(-4, 4, 81, dtype=torch.float64)
    return torch.cat([dense, wide, -wide, torch.tensor(KINKS, dtype=torch.float64)]).to(dtype)


def _expressions() -> list[str]:
    """Every primitive of every set (binary ones against a second function of x) and random afos trees."""
    second = sympy.sin(X) - sympy.Rational(1, 2)
    exprs = [p.build(*([X] if p.arity == 1 else [X, second])) for p in PRIMITIVES.values()]
    rng_state = random.getstate()
    random.seed(12)
    pset = primitive_set(resolve("afos"))
    exprs += [to_sympy(Individual(gp.genHalfAndHalf(pset, 1, 4)), PRIMITIVES) for _ in range(60)]
    random.setstate(rng_state)
    return sorted({canonical(e) for e in exprs if e.has(X)})


def _value_and_grad(act: Activation, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    y = act(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), grad


def _assert_matches_chain(
    fused: torch.Tensor, chain: torch.Tensor, exact: torch.Tensor, dtype: torch.dtype, what: str
) -> None:
    """Finite wherever the chain is, and equal to it within the dtype's tolerance, or else at least as
    close as the chain to ``exact`` (the chain in float64: where a gradient is a near-cancelling sum,
    low precision leaves both far from it, and neither is the better reference)."""
    finite = torch.isfinite(chain)
    new_bad = finite & ~torch.isfinite(fused)
    assert not new_bad.any(), f"{what}: non-finite where the chain is finite at {new_bad.nonzero().flatten()[:5]}"
    rtol, atol = TOLERANCES[dtype]
    a, b, e = fused[finite].double(), chain[finite].double(), exact[finite]
    off = ((a - b).abs() > atol + rtol * b.abs()) & ((a - e).abs() > 2 * (b - e).abs())
    assert not off.any(), f"{what}: fused {a[off][:5].tolist()} vs chain {b[off][:5].tolist()}"


@pytest.mark.parametrize("text", _expressions())
def test_fused_values_and_gradients_equal_the_chain(text: str) -> None:
    """In float64, float32 and bfloat16: one case per expression, since building the two programs is
    most of a case's cost and they serve every dtype."""
    fused, chain = Activation(text), Activation(text, fused=False)
    for dtype in TOLERANCES:
        x = _grid(dtype)
        y_fused, g_fused = _value_and_grad(fused, x)
        y_chain, g_chain = _value_and_grad(chain, x)
        _, g_exact = _value_and_grad(chain, x.double())
        torch.testing.assert_close(y_fused, y_chain, rtol=0, atol=0, equal_nan=True)  # the same forward program
        _assert_matches_chain(g_fused, g_chain, g_exact, dtype, f"d/dx {text} ({dtype})")


@pytest.mark.parametrize("text", ["relu", "abs", "max(x, sin(x))", "min(x, 0.5)", "max(x, 0.25)", "x*heaviside(x)"])
def test_kinks_follow_torch_autograd(text: str) -> None:
    x = torch.tensor(KINKS + [0.25, torch.sin(torch.tensor(0.0)).item()], dtype=torch.float64)
    _, fused = _value_and_grad(Activation(text), x)
    _, chain = _value_and_grad(Activation(text, fused=False), x)
    torch.testing.assert_close(fused, chain, rtol=0, atol=0)


@pytest.mark.parametrize("tie", [0, 1])
def test_backward_follows_either_clamp_convention_at_its_bounds(tie: int) -> None:
    """torch 2.11's clamp passes the whole gradient at a bound, 2.14's none (seen on the first GPU machine,
    which had 2.11): the symbolic backward takes the share as given and applies it at every clamp, while
    relu (a max against 0) and the maximum of two tensors keep theirs (0 and 1/2)."""
    bound = ATANH_BOUND
    x = torch.tensor([0.5, 0.25, 0.0, bound, -bound, 2.0], dtype=torch.float64)
    grad = torch.ones_like(x)
    slopes = {text: lower_many(adjoints(parse(text), [X], clamp_tie=tie), [GRAD, X])(grad, x)
              for text in ("min(x, 0.5)", "max(x, 0.25)", "max(x, 0)", "max(x, sin(x))", "atanh(x)")}
    assert slopes["min(x, 0.5)"].tolist() == [tie, 1, 1, 0, 1, 0]
    assert slopes["max(x, 0.25)"].tolist() == [1, tie, 0, 1, 0, 1]
    assert slopes["max(x, 0)"].tolist() == [1, 1, 0, 1, 0, 1]
    assert slopes["max(x, sin(x))"][2].item() == 1.0  # halves from each side of a tie between tensors
    atanh = slopes["atanh(x)"]
    assert atanh[3].item() == atanh[4].item() == tie / (1 - bound**2) and atanh[5].item() == 0.0


def _twin_pair(name: str, scope: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    spec = resolve_activation(name, scope=scope)
    fused = Activation(spec.expression, spec.learnable, fixed=spec.fixed, channel=scope == "channel")
    chain = Activation(spec.expression, spec.learnable, fixed=spec.fixed, channel=scope == "channel", fused=False)
    return fused, chain


@pytest.mark.parametrize("scope", ["shared", "layer", "channel"])
@pytest.mark.parametrize("name", ["adaptive_tanh", "adaptive_relu", "swish_beta", "mila"])
def test_parameter_gradients_equal_the_chain_in_every_scope(name: str, scope: str) -> None:
    generator = torch.Generator().manual_seed(0)
    x = (torch.randn(4, 3, 5, 5, generator=generator, dtype=torch.float64) * 3).requires_grad_(True)
    fused, chain = _twin_pair(name, scope)
    grads = []
    for act in (fused, chain):
        act.double()
        act(x[:1])  # channel scope materialises here
        torch.manual_seed(1)
        with torch.no_grad():
            for param in act.parameters():
                param.add_(torch.randn(param.shape, dtype=param.dtype) * 0.3)
        # Two uses of one module, as a shared-scope activation is used at every site of a network.
        loss = (act(x) * torch.cos(x)).sum() + act(2 * x).square().mean()
        grads.append(torch.autograd.grad(loss, [x, *act.parameters()]))
    assert grads[0]
    for fused_grad, chain_grad in zip(*grads):
        torch.testing.assert_close(fused_grad, chain_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("text", ["-x*erf(exp(-x))", "mila", "relu", "x*sigmoid(x)*atan(x) + tanh(x)"])
def test_fused_saves_only_its_input(text: str) -> None:
    x = torch.randn(8, 16, requires_grad=True)
    saved: dict[str, int] = {}
    for path in ("eager", "fused"):
        act = Activation(text, fused=path == "fused")
        total = 0

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            nonlocal total
            total += tensor.numel() * tensor.element_size()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            act(x * 1.0)
        saved[path] = total
    assert saved["fused"] == x.numel() * x.element_size()
    assert saved["eager"] >= saved["fused"]


def test_gradcheck_through_the_fused_function() -> None:
    act = Activation("b*tanh(a*x + c) + d", learnable={"a": 1.3, "b": 0.7, "c": 0.1, "d": 0.0}).double()
    x = torch.linspace(-3, 3, 11, dtype=torch.float64).requires_grad_(True)
    names = [name for name, _ in act.named_parameters()]

    def call(t: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(act, dict(zip(names, params)), (t,))

    assert torch.autograd.gradcheck(call, (x, *(p.detach().clone().requires_grad_(True) for p in act.parameters())))


def test_kernel_paths_switch_and_survive_pickling() -> None:
    act = Activation("x*tanh(softplus(x))")
    assert act.kernels == "fused"
    act.use_kernels("eager")
    assert act.kernels == "eager"
    act.use_kernels("fused")
    clone = pickle.loads(pickle.dumps(act))
    assert clone.kernels == "fused"
    x = torch.randn(5)
    torch.testing.assert_close(clone(x), act(x))


def test_compiled_kernels_match_the_chain_and_report_compile_time() -> None:
    act = Activation("-x*erf(exp(-x))", compile=True)
    x = _grid(torch.float32)
    y_compiled, g_compiled = _value_and_grad(act, x)
    y_chain, g_chain = _value_and_grad(Activation("-x*erf(exp(-x))", fused=False), x)
    _, g_exact = _value_and_grad(Activation("-x*erf(exp(-x))", fused=False), x.double())
    # inductor's vectorised erf loses the tiny values of erf(exp(-x)) for large x: a few 1e-6 absolute
    torch.testing.assert_close(y_compiled, y_chain, rtol=1e-5, atol=1e-5, equal_nan=True)
    _assert_matches_chain(g_compiled, g_chain, g_exact, torch.float32, "compiled eelu")
    assert act.kernels == "compiled" and act.compile_seconds > 0 and act.kernel_note == ""


def test_compiled_kernels_fold_the_constants_and_keep_their_values() -> None:
    """Constants are compiled into the kernel (specialised floats); two forms differing only in a constant
    must still compute their own values."""
    x = _grid(torch.float32)
    for text in ("x*sigmoid(1.702*x) - 0.25*tanh(x)", "x*sigmoid(1.5*x) - 0.75*tanh(x)"):
        y_compiled, g_compiled = _value_and_grad(Activation(text, compile=True), x)
        y_chain, g_chain = _value_and_grad(Activation(text, fused=False), x)
        torch.testing.assert_close(y_compiled, y_chain, rtol=1e-5, atol=1e-5, equal_nan=True)
        torch.testing.assert_close(g_compiled, g_chain, rtol=1e-4, atol=1e-5, equal_nan=True)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


@pytest.mark.parametrize("kernels", ["eager", "fused", "auto"])
def test_train_key_kernels_picks_the_path_and_records_it(digits: Dataset, kernels: str) -> None:
    config = TrainConfig(device="cpu", kernels=kernels)
    result = run_fitness(lambda: Activation("mila"), config, dataset=digits)
    assert result.status == "ok" and result.val_accuracy > 0.8
    assert result.kernels == ("eager" if kernels == "auto" else kernels)  # a short CPU run runs the chain
    assert result.compile_seconds == 0.0 and result.kernel_note == ""


def test_fused_and_eager_training_agree(digits: Dataset) -> None:
    results = [
        run_fitness(lambda: Activation("-x*erf(exp(-x))"), TrainConfig(device="cpu", epochs=2, kernels=k), dataset=digits)
        for k in ("eager", "fused")
    ]
    assert results[0].train_loss == pytest.approx(results[1].train_loss, rel=1e-3)
    assert abs(results[0].val_accuracy - results[1].val_accuracy) <= 0.02


def test_compiled_network_trains_the_same_function(digits: Dataset) -> None:
    """kernels = "model": the whole network through torch.compile, the activation traced in its fused form."""
    runs = {k: run_fitness(lambda: Activation("-x*erf(exp(-x))"), TrainConfig(device="cpu", model="small_cnn", epochs=2,
                                                                              kernels=k), dataset=digits)
            for k in ("fused", MODEL)}
    compiled = runs[MODEL]
    assert compiled.status == "ok" and compiled.kernels == MODEL and compiled.kernel_note == ""
    assert compiled.compile_seconds > 0
    for before, after in zip(runs["fused"].history, compiled.history):
        assert after.train_loss == pytest.approx(before.train_loss, rel=1e-3)
        assert after.val_accuracy == pytest.approx(before.val_accuracy, abs=0.02)


def test_every_network_compiles_for_itself(digits: Dataset) -> None:
    """Dynamo's recompile limit is per code object; each network gets its own, so a search never runs
    out of compiles (the limit lowered to 1 here: three networks must still each compile)."""
    config = TrainConfig(device="cpu", model="mlp", model_options={"hidden": [16]}, steps=2, kernels=MODEL)
    with torch._dynamo.config.patch(cache_size_limit=1):
        for text in ("tanh(x)", "x*sigmoid(x)", "-x*erf(exp(-x))"):
            before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
            result = run_fitness(lambda t=text: Activation(t), config, dataset=digits)
            assert result.kernels == MODEL and result.kernel_note == ""
            assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > before, text


def test_auto_kernels_follow_the_run_length_on_the_cpu_and_compile_on_cuda() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert kernel_path("auto", cpu, CPU_COMPILE_MIN_STEPS - 1) == "eager"
    assert kernel_path("auto", cpu, CPU_COMPILE_MIN_STEPS) == "compiled"
    assert kernel_path("auto", cpu, CPU_MODEL_MIN_STEPS) == MODEL
    assert kernel_path("auto", cuda, 10) == kernel_path("auto", cuda, 10**6) == "compiled"
    assert kernel_path("fused", cpu, 10**6) == "fused"


def test_invalid_kernels_setting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="kernels"):
        TrainConfig(kernels="triton").validate()


@pytest.mark.parametrize("fused", [True, False])
def test_trace_and_export_of_a_model_holding_an_activation(fused: bool) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), Activation("mila", fused=fused))
    x = torch.randn(3, 4)
    expected = model(x)
    torch.testing.assert_close(torch.jit.trace(model, x)(x), expected)
    torch.testing.assert_close(torch.export.export(model, (x,)).module()(x), expected)
