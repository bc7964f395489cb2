"""Training-step time and saved-for-backward memory of candidate activations, relative to native ReLU.

Why: every fitness evaluation is a training run, so an activation that makes the step k times slower makes
the search k times slower, and in a wall-clock budget it trains less; one that keeps k times ReLU's tensors
for backward fits k times fewer images in memory. This measures both on ResNet-20 at 32x32 with the very
step afos.train runs (`Learner.step`: forward, backward, optimizer step; bf16 autocast and channels_last on
CUDA), for torch's native modules and for afos Activations on each kernel path:

* eager: the chain of torch ops (`Activation(..., fused=False)`), autograd keeping every intermediate;
* fused: one autograd.Function with the symbolic backward, eager torch;
* compiled: the same two programs through torch.compile (the first steps pay compilation; that time is
  reported as compile seconds, and the break-even step count = compile seconds / saving per step over
  the eager chain, the two paths ``kernels = "auto"`` chooses between on the CPU);
* model: the whole network through torch.compile with the activations in their fused form (train key
  ``kernels = "model"``), against native ReLU both plain and in a compiled network too. Its saved bytes
  are inductor's choice inside one graph, which the per-site hooks cannot see: "n/a".

All variants are built in one process and their timed steps are interleaved (one step of each in turn), so a
change of load on a shared machine hits every variant alike and the ratios stay meaningful. Each time is the
median over --steps timed steps after --warmup untimed ones (which also absorb compilation). Compilation
starts from an empty inductor cache (a fresh temporary directory) unless --warm-cache is given: a search
meets every candidate for the first time.

Saved bytes: the tensors autograd keeps for backward from inside each activation site (counted once per
storage, by torch.autograd.graph.saved_tensors_hooks around the site), over the bytes of the site's input,
averaged over the sites of one forward pass.

    python benchmarks/step_time.py [--device auto] [--batch-size N] [--steps N] [--warmup N] [--trees 20]
"""

from __future__ import annotations

import argparse
import atexit
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

if "--warm-cache" not in sys.argv:  # before torch is imported: inductor reads it once
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="afos-inductor-")
    atexit.register(shutil.rmtree, os.environ["TORCHINDUCTOR_CACHE_DIR"], ignore_errors=True)

import torch
from deap import gp
from torch import nn

from afos.activation.module import Activation, activation_factory
from afos.activation.spec import resolve_activation
from afos.search.trees import Individual, primitive_set, to_sympy
from afos.space.parse import canonical
from afos.space.primitives import PRIMITIVES
from afos.space.primitives import primitive_set as resolve
from afos.space.probe import screen
from afos.training.config import MODEL, TrainConfig, resolve_device
from afos.training.learner import Learner
from afos.training.models.registry import activation_sites, build_model

BASELINE = "ReLU (torch.nn.ReLU)"
NATIVE: dict[str, Callable[[], nn.Module]] = {
    BASELINE: nn.ReLU,
    "SiLU (torch.nn.SiLU)": nn.SiLU,
    "GELU (torch.nn.GELU)": nn.GELU,
    "Mish (torch.nn.Mish)": nn.Mish,
}
NAMED = {"eelu": "-x*erf(exp(-x))", "mila": "mila", "adaptive_tanh": "adaptive_tanh"}
PATHS = ("eager", "fused", "compiled", MODEL)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    parser.add_argument("--batch-size", type=int, help="default: 128 on CUDA, 32 on the CPU")
    parser.add_argument("--steps", type=int, help="timed steps per variant; default: 50 on CUDA, 15 on the CPU")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant before timing")
    parser.add_argument("--trees", type=int, default=20, help="random afos-set trees (depth <= 4) to add")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random trees")
    parser.add_argument("--warm-cache", action="store_true", help="keep inductor's on-disk cache")
    return parser.parse_args()


def random_trees(count: int, seed: int) -> list[str]:
    """``count`` distinct random afos-set trees of depth 1-4 that pass afos's screening, as text."""
    rng_state = random.getstate()
    random.seed(seed)
    pset = primitive_set(resolve("afos"))
    texts: list[str] = []
    while len(texts) < count:
        expr = to_sympy(Individual(gp.genHalfAndHalf(pset, 1, 4)), PRIMITIVES)
        text = canonical(expr)
        if text not in texts and screen(expr).valid:
            texts.append(text)
    random.setstate(rng_state)
    return texts


class Variant:
    """One (activation, kernel path) model (ResNet-20 unless told) with a fixed synthetic 32x32 batch;
    timing needs no real data."""

    def __init__(
        self, factory: Callable[[], nn.Module], device: torch.device, batch_size: int, model: str = "resnet20",
        *, cuda_graphs: bool = False, compile_model: bool = False,
    ):
        torch.manual_seed(0)
        model = build_model(model, factory, in_channels=3, num_classes=10, image_size=32)
        self.sites = activation_sites(model)
        config = TrainConfig(device=str(device), schedule="constant", cuda_graphs=cuda_graphs)
        self.learner = Learner(model, config, self.sites, device=device, total_steps=1, warmup_steps=0,
                               compile_model=compile_model)
        self.compiles_network = compile_model
        memory_format = torch.channels_last if self.learner.channels_last else torch.contiguous_format
        self.x = torch.randn(batch_size, 3, 32, 32, device=device).contiguous(memory_format=memory_format)
        self.y = torch.randint(0, 10, (batch_size,), device=device)
        self.times: list[float] = []
        self.failure = ""
        self.saved_ratio = self._saved_ratio()

    def _saved_ratio(self) -> float:
        """Mean over sites of (bytes saved for backward inside the site) / (bytes of its input)."""
        ratios: list[float] = []

        def around(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            storages: dict[int, int] = {}

            def pack(tensor: torch.Tensor) -> torch.Tensor:
                storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
                return tensor

            hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
            hooks.__enter__()
            module._afos_measure = (hooks, storages, inputs[0].untyped_storage().nbytes())

        def after(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            hooks, storages, input_bytes = module._afos_measure
            hooks.__exit__(None, None, None)
            ratios.append(sum(storages.values()) / input_bytes)

        handles = [h for s in self.sites for h in (s.register_forward_pre_hook(around), s.register_forward_hook(after))]
        with self.learner._autocast():
            self.learner.model(self.x)
        for handle in handles:
            handle.remove()
        return statistics.mean(ratios)

    def step(self, timed: bool) -> None:
        """One synchronised training step; a variant that fails is dropped with its reason."""
        if self.failure:
            return
        start = time.perf_counter()
        try:
            self.learner.step(self.x, self.y)
            if self.x.is_cuda:
                torch.cuda.synchronize(self.x.device)
        except Exception as exc:  # noqa: BLE001 - report "n/a" with the reason instead of losing every number
            self.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            return
        if timed:
            self.times.append(time.perf_counter() - start)

    def median_ms(self) -> float | None:
        return None if self.failure or not self.times else 1000 * statistics.median(self.times)

    def compile_seconds(self) -> float:
        """The activations' kernel compilation plus the network's (kernels = "model")."""
        sites = sum({id(s): s.compile_seconds for s in self.sites if isinstance(s, Activation)}.values())
        return sites + self.learner.setup_seconds

    def kernel_note(self) -> str:
        notes = {s.kernel_note for s in self.sites if isinstance(s, Activation) and s.kernel_note}
        return "; ".join(sorted(notes | ({self.learner.note} if self.learner.note else set())))


def activation_variants(text: str, path: str) -> Callable[[], nn.Module]:
    """The per-site factory of ``text`` (a family name or an expression) on kernel ``path``."""
    build = activation_factory(resolve_activation(text))

    def factory() -> nn.Module:
        site = build()
        site.use_kernels(path)
        return site

    return factory


def measure(variants: list[Variant], warmup: int, steps: int) -> None:
    for _ in range(warmup):  # compilation happens here, outside timing
        for variant in variants:
            variant.step(timed=False)
    for _ in range(steps):
        for variant in variants:
            variant.step(timed=True)


def _ratio(ms: float | None, base: float) -> str:
    return "n/a" if ms is None else f"{ms / base:.2f}x"


def report(native: dict[str, Variant], candidates: dict[str, dict[str, Variant]]) -> list[dict[str, Any]]:
    base = native[BASELINE].median_ms()
    assert base is not None, native[BASELINE].failure
    print("| activation | ms/step | / ReLU | saved bytes / input |")
    print("|---|---:|---:|---:|")
    for name, variant in native.items():
        ms = variant.median_ms()
        saved = "n/a" if variant.compiles_network else f"{variant.saved_ratio:.2f}x"
        print(f"| {name} | {'n/a' if ms is None else f'{ms:.2f}'} | {_ratio(ms, base)} | {saved} |")
    print()
    print("| activation | eager / ReLU | fused / ReLU | compiled / ReLU | model / ReLU | saved: eager, fused, "
          "compiled | compile s: kernels, model | break-even steps: compiled, model (vs eager) |")
    print("|---|---:|---:|---:|---:|---|---|---|")
    rows = []
    for name, by_path in candidates.items():
        ms = {path: v.median_ms() for path, v in by_path.items()}
        saved = ", ".join(f"{by_path[p].saved_ratio:.2f}x" for p in PATHS[:3])
        compile_s = {p: by_path[p].compile_seconds() for p in ("compiled", "model")}
        saving = {p: None if ms["eager"] is None or ms[p] is None else (ms["eager"] - ms[p]) / 1000 for p in compile_s}
        even = ", ".join("never" if saving[p] is None or saving[p] <= 0 else f"{compile_s[p] / saving[p]:.0f}"
                         for p in compile_s)
        cells = " | ".join(_ratio(ms[p], base) for p in PATHS)
        print(f"| `{name}` | {cells} | {saved} | {compile_s['compiled']:.1f}, {compile_s['model']:.1f} | {even} |")
        rows.append({"name": name, "ms": ms, "compile_s": compile_s["compiled"], "saving_s": saving["compiled"]})
    problems = {f"{n} ({p})": v.failure or v.kernel_note() for n, d in candidates.items() for p, v in d.items()
                if v.failure or v.kernel_note()}
    for key, why in problems.items():
        print(f"\nn/a or fallback {key}: {why}")
    return rows


def summary(rows: list[dict[str, Any]]) -> None:
    faster = [r for r in rows if r["saving_s"] is not None and r["saving_s"] > 0]
    if faster:
        evens = [r["compile_s"] / r["saving_s"] for r in faster]
        print(f"\ncompiled faster than eager for {len(faster)} of {len(rows)} forms; among them median compile "
              f"{statistics.median(r['compile_s'] for r in faster):.1f} s, median break-even "
              f"{statistics.median(evens):.0f} steps (max {max(evens):.0f})")
    for path in PATHS[1:]:
        slower = [r["name"] for r in rows if None not in (r["ms"][path], r["ms"]["eager"])
                  and r["ms"][path] > r["ms"]["eager"]]
        print(f"{path} slower than eager: {', '.join(slower) or 'none'}")


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    batch_size = args.batch_size or (128 if cuda else 32)
    steps = args.steps or (50 if cuda else 15)
    texts = {**NAMED, **{t: t for t in random_trees(args.trees, args.seed)}}
    native = {name: Variant(factory, device, batch_size) for name, factory in NATIVE.items()}
    native[f"{BASELINE}, network compiled"] = Variant(nn.ReLU, device, batch_size, compile_model=True)
    candidates = {
        name: {path: Variant(activation_variants(text, "fused" if path == MODEL else path), device, batch_size,
                             compile_model=path == MODEL) for path in PATHS}
        for name, text in texts.items()
    }
    measure([*native.values(), *(v for d in candidates.values() for v in d.values())], args.warmup, steps)
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"ResNet-20, 32x32, batch {batch_size}, {name}, torch {torch.__version__}; median of {steps} steps\n")
    summary(report(native, candidates))


if __name__ == "__main__":
    main()
