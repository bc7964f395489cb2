"""The time of every kernel the lowering runs, relative to ``torch.relu``: the weights of the cost model.

Why: a candidate's cost (:mod:`afos.space.cost`, a search objective beside accuracy) is the weighted sum of
the kernels its fused activation runs per step, forward and backward. The model must be a constant table
(a search compares costs across generations, resumes and machines), but its weights should be measured,
not guessed: an ``i0e`` costs many ReLUs, an ``add`` about one. This measures them on this machine.

How: every kernel of :data:`afos.space.lower.KERNELS` (the very callables the lowering runs) is called on
one float32 tensor of 2**20 elements (--size) with values where it is finite: uniform in [-3, 3], in
(-0.9, 0.9) for ``atanh`` and ``atanh_gate``'s input, in [0.05, 3] for ``log``. Each kernel gets the
arguments the lowering passes it: unary kernels one tensor; ``add``, ``mul``, ``max``, ``min`` two tensors;
``max_number``/``min_number`` a tensor and 1.0 (``clamp``; against 0 ``max`` runs ``relu``, the baseline);
``pow`` a tensor and the exponent 3.0 (``torch.pow``), ``pow_simple`` the exponent 2 (``square``; -1, 1/2,
-1/2 run ``reciprocal``, ``sqrt``, ``rsqrt``, shown as extra rows); ``gate(grad, a, b, at_tie)`` two tensors
and the tie share 0 (the tie-splitting ``maximum`` backward is an extra row), ``threshold`` a tensor against
0 (relu's backward); ``atanh_gate(grad, a, at_bound)`` with this torch's clamp tie share; ``heaviside(a, 1/2)``;
each ``*_backward(grad, a)``. Extra rows (not weights) show the variants one name covers, e.g. the other
exponents of ``pow_simple``.

On one thread (``torch.set_num_threads(1)``), after --warmup untimed rounds, each of --rounds rounds calls
every kernel --calls times in a fresh random order, ``torch.relu`` among them; a kernel's weight is the
median over rounds of its time over ReLU's in the same round, so load on the other core that comes and
goes moves both alike. ``--write`` rewrites the ``WEIGHTS`` literal of afos/space/cost.py (2 decimals).

``--validate`` checks the model: for a dozen functions it compares ``afos.space.cost.cost`` with measured
ratios to ReLU of (a) the fused eager Activation's forward + backward alone on a tensor of ResNet-20's
largest activation shape and (b) a ResNet-20 forward + backward at batch --batch-size on 32x32 inputs
(the network and path of benchmarks/step_time.py's "fused" column; one thread), interleaved the same way,
and prints Spearman's rank correlation of each with the predicted cost.

    python benchmarks/op_cost.py [--rounds 30] [--calls 3] [--write] [--validate] [--steps 8]
"""

from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from afos.space.lower import KERNELS, clamp_tie

COST_FILE = Path(__file__).resolve().parents[1] / "afos" / "space" / "cost.py"
BASELINE = "relu"

#: Functions of the validation: names afos and torch know, the step_time.py candidates, evolved-looking forms.
VALIDATION: dict[str, tuple[str, tuple[str, ...]]] = {
    "relu": ("max(x, 0)", ()),
    "silu": ("x*sigmoid(x)", ()),
    "mish": ("x*tanh(softplus(x))", ()),
    "gelu": ("gelu(x)", ()),
    "tanh": ("tanh(x)", ()),
    "elu": ("elu(x)", ()),
    "x*erf(x)": ("x*erf(x)", ()),
    "max(x, 0)*tanh(x)": ("max(x, 0)*tanh(x)", ()),
    "x + sin(x)": ("x + sin(x)", ()),
    "eelu": ("-x*erf(exp(-x))", ()),
    "mila": ("x*tanh(softplus(x - 0.25))", ()),
    "adaptive_tanh": ("b*tanh(a*x + c) + d", ("a", "b", "c", "d")),
    "x*i0e(x)": ("x*i0e(x)", ()),
    "atan(x)*cos(x)": ("atan(x)*cos(x)", ()),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2**20, help="elements of the tensor each kernel runs on")
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds (each calls every kernel)")
    parser.add_argument("--calls", type=int, default=3, help="calls of a kernel per round, timed together")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and of the call order")
    parser.add_argument("--write", action="store_true", help="rewrite WEIGHTS in afos/space/cost.py")
    parser.add_argument("--validate", action="store_true", help="compare cost() with measured ratios")
    parser.add_argument("--steps", type=int, default=8, help="--validate: timed network steps per function")
    parser.add_argument("--batch-size", type=int, default=32, help="--validate: ResNet-20 batch")
    return parser.parse_args()


def uniform(size: int, low: float, high: float) -> torch.Tensor:
    return torch.empty(size).uniform_(low, high)


def kernel_calls(size: int) -> tuple[dict[str, Callable[[], Any]], dict[str, Callable[[], Any]]]:
    """Zero-argument calls of every kernel of KERNELS (by name) and of the extra variant rows."""
    a, b, grad = uniform(size, -3, 3), uniform(size, -3, 3), torch.randn(size)
    unit, positive = uniform(size, -0.9, 0.9), uniform(size, 0.05, 3)
    tie = float(clamp_tie())
    arguments: dict[str, tuple[Any, ...]] = {
        "log": (positive,), "atanh": (unit,),
        "add": (a, b), "mul": (a, b), "max": (a, b), "min": (a, b), "max_number": (a, 1.0), "min_number": (a, 1.0),
        "pow": (a, 3.0), "pow_simple": (a, 2.0),
        "gate": (grad, a, b, 0.0), "threshold": (grad, a, 0.0, 0.0), "atanh_gate": (grad, unit, tie),
        "heaviside": (a, 0.5),
        **{name: (grad, a) for name in KERNELS if name.endswith("_backward")},
    }
    calls = {name: _bind(kernel, arguments.get(name, (a,))) for name, kernel in KERNELS.items()}
    extras = {
        "add(a, 1.0)": _bind(KERNELS["add"], (a, 1.0)),
        "mul(a, 2.0)": _bind(KERNELS["mul"], (a, 2.0)),
        "mul(-1.0, a): neg": _bind(KERNELS["mul"], (-1.0, a)),
        "pow(a, -1.0): reciprocal": _bind(KERNELS["pow"], (a, -1.0)),
        "pow(a, 0.5): sqrt": _bind(KERNELS["pow"], (positive, 0.5)),
        "pow(a, 2.5)": _bind(KERNELS["pow"], (positive, 2.5)),
        "pow(a, b), tensor exponent": _bind(KERNELS["pow"], (positive, b)),
        "gate(g, a, b, 1/2)": _bind(KERNELS["gate"], (grad, a, b, 0.5)),
    }
    return {BASELINE: _bind(torch.relu, (a,)), **calls}, extras


def _bind(kernel: Callable[..., Any], args: tuple[Any, ...]) -> Callable[[], Any]:
    return lambda: kernel(*args)


def interleaved_ratios(
    calls: dict[str, Callable[[], Any]], rounds: int, repeats: int, warmup: int, seed: int
) -> dict[str, float]:
    """Median over rounds of each call's time over the BASELINE's in the same round; each round calls
    every entry ``repeats`` times in a fresh random order."""
    order, rng = list(calls), random.Random(seed)
    ratios: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(warmup + rounds):
        rng.shuffle(order)
        times: dict[str, float] = {}
        for name in order:
            start = time.perf_counter()
            for _ in range(repeats):
                calls[name]()
            times[name] = time.perf_counter() - start
        if round_ >= warmup:
            for name, seconds in times.items():
                ratios[name].append(seconds / times[BASELINE])
    return {name: statistics.median(values) for name, values in ratios.items()}


def measure_kernels(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float], float]:
    """(weights by kernel name, extra rows, ReLU's median ms per call)."""
    calls, extras = kernel_calls(args.size)
    relu_ms = _median_ms(calls[BASELINE], 50)
    ratios = interleaved_ratios({**calls, **extras}, args.rounds, args.calls, args.warmup, args.seed)
    weights = {name: ratios[name] for name in KERNELS}
    return weights, {name: ratios[name] for name in extras}, relu_ms


def _median_ms(call: Callable[[], Any], count: int) -> float:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return 1000 * statistics.median(samples)


def weights_literal(weights: dict[str, float], width: int = 110) -> str:
    """The ``WEIGHTS`` assignment as cost.py spells it: keys sorted, packed lines of at most ``width``."""
    entries = [f'"{name}": {max(0.01, round(weights[name], 2))!r},' for name in sorted(weights)]
    lines, line = [], "   "
    for entry in entries:
        if len(line) + 1 + len(entry) > width:
            lines.append(line)
            line = "   "
        line += " " + entry
    lines.append(line)
    return "WEIGHTS: dict[str, float] = {\n" + "\n".join(lines) + "\n}\n"


def write_weights(weights: dict[str, float], path: Path = COST_FILE) -> None:
    """Replace the WEIGHTS literal in ``path``, every other byte unchanged."""
    text = path.read_text()
    pattern = re.compile(r"^WEIGHTS: dict\[str, float\] = \{\n.*?^\}\n", re.DOTALL | re.MULTILINE)
    new, count = pattern.subn(lambda _: weights_literal(weights), text)
    if count != 1:
        raise SystemExit(f"expected one WEIGHTS literal in {path}, found {count}")
    path.write_text(new)


def validate(args: argparse.Namespace) -> None:
    """Predicted cost against measured ratios: the activation alone, and a ResNet-20 step."""
    import importlib

    from scipy.stats import spearmanr

    from afos.activation.module import Activation
    from afos.training.models.registry import build_model

    cost = importlib.reload(importlib.import_module("afos.space.cost")).cost  # the weights just written
    torch.manual_seed(args.seed)
    shape = (args.batch_size, 16, 32, 32)  # ResNet-20's largest activation
    x, ones = torch.randn(shape), torch.ones(shape)
    batch = torch.randn(args.batch_size, 3, 32, 32)
    labels = torch.randint(0, 10, (args.batch_size,))

    def activation(text: str, params: tuple[str, ...]) -> Activation:
        return Activation(text, {name: 1.0 for name in params})

    def alone(module: Activation) -> Callable[[], None]:
        def call() -> None:
            leaf = x.clone().requires_grad_(True)
            module(leaf).backward(ones)

        return call

    def network(text: str, params: tuple[str, ...]) -> Callable[[], None]:
        torch.manual_seed(0)
        model = build_model("resnet20", lambda: activation(text, params), in_channels=3, num_classes=10,
                            image_size=32)

        def call() -> None:
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(batch), labels).backward()

        return call

    single = {name: alone(activation(*VALIDATION[name])) for name in VALIDATION}
    alone_ratio = interleaved_ratios(single, rounds=max(args.rounds // 2, 5), repeats=args.calls, warmup=2,
                                     seed=args.seed)
    steps = {name: network(*VALIDATION[name]) for name in VALIDATION}
    step_ratio = interleaved_ratios(steps, rounds=args.steps, repeats=1, warmup=2, seed=args.seed)
    predicted = {name: cost(text, params) for name, (text, params) in VALIDATION.items()}
    print(f"\nValidation: fused eager Activation, forward + backward; alone on x {shape}, and a ResNet-20 step "
          f"(batch {args.batch_size}, 32x32); median of {max(args.rounds // 2, 5)} and {args.steps} rounds\n")
    print("| function | expression | cost (model) | alone / ReLU | ResNet-20 step / ReLU |")
    print("|---|---|---:|---:|---:|")
    for name in sorted(VALIDATION, key=lambda n: (predicted[n], n)):
        print(f"| {name} | `{VALIDATION[name][0]}` | {predicted[name]:.2f} | {alone_ratio[name]:.2f} | "
              f"{step_ratio[name]:.2f} |")
    names = list(VALIDATION)
    for label, measured in (("alone", alone_ratio), ("ResNet-20 step", step_ratio)):
        rho, p = spearmanr([predicted[n] for n in names], [measured[n] for n in names])
        print(f"Spearman, cost vs {label}: {rho:.3f} (p = {p:.2g}, {len(names)} functions)")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    weights, extras, relu_ms = measure_kernels(args)
    print(f"float32 x {args.size} elements, CPU, 1 thread, torch {torch.__version__}; torch.relu {relu_ms:.3f} ms; "
          f"median over {args.rounds} rounds of {args.calls} calls\n")
    print("| kernel | / relu |\n|---|---:|")
    for name in sorted(weights, key=lambda n: (weights[n], n)):
        print(f"| {name} | {weights[name]:.2f} |")
    print("\n| variant (not a weight) | / relu |\n|---|---:|")
    for name, ratio in extras.items():
        print(f"| {name} | {ratio:.2f} |")
    cheapest, dearest = min(weights, key=weights.__getitem__), max(weights, key=weights.__getitem__)
    print(f"\nrange: {cheapest} {weights[cheapest]:.2f} .. {dearest} {weights[dearest]:.2f}; "
          f"{time.perf_counter() - started:.0f} s")
    if args.write:
        write_weights(weights)
        print(f"wrote WEIGHTS to {COST_FILE}")
    if args.validate:
        started = time.perf_counter()
        validate(args)
        print(f"validation {time.perf_counter() - started:.0f} s")
    assert all(math.isfinite(w) and w > 0 for w in weights.values())


if __name__ == "__main__":
    main()
