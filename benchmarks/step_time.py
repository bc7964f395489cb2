"""Training-step time of compiled candidate activations, relative to torch's native ReLU.

Why: every fitness evaluation is a training run, so an activation that makes the step k times slower makes
the search k times slower, and in a wall-clock budget it trains less. This measures k on ResNet-20 at 32x32
with the very step afos.train runs (`Learner.step`: forward, backward, optimizer step; bf16 autocast and
channels_last on CUDA), eagerly and, by default on CUDA, under torch.compile.

All variants are built in one process and their timed steps are interleaved (one step of each in turn), so a
change of load on a shared machine hits every variant alike and the ratios stay meaningful. Each time is the
median over --steps timed steps after --warmup untimed ones (which also absorb compilation).

    python benchmarks/step_time.py [--device auto] [--batch-size N] [--steps N] [--warmup N] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from afos import models
from afos.compile import Activation
from afos.train import Learner, TrainConfig, resolve_device

BASELINE = "ReLU (torch.nn.ReLU)"
VARIANTS: dict[str, Callable[[], nn.Module]] = {
    BASELINE: nn.ReLU,
    "relu (Activation)": lambda: Activation("relu"),  # the cost of the Activation wrapper itself
    "-x*erf(exp(-x))": lambda: Activation("-x*erf(exp(-x))"),
    "mila = x*tanh(softplus(x-0.25))": lambda: Activation("mila"),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    parser.add_argument("--batch-size", type=int, help="default: 128 on CUDA, 32 on the CPU")
    parser.add_argument("--steps", type=int, help="timed steps per variant; default: 50 on CUDA, 15 on the CPU")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per variant before timing")
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time torch.compile'd models; default: on CUDA only (inductor takes ~40 s per model on a CPU)",
    )
    return parser.parse_args()


class Variant:
    """One (activation, eager|compiled) model with a fixed synthetic batch; timing needs no real data."""

    def __init__(self, factory: Callable[[], nn.Module], device: torch.device, batch_size: int, compiled: bool):
        torch.manual_seed(0)
        model = models.build_model("resnet20", factory, in_channels=3, num_classes=10, image_size=32)
        sites = models.activation_sites(model)
        config = TrainConfig(device=str(device), schedule="constant")
        model = torch.compile(model) if compiled else model
        self.learner = Learner(model, config, sites, device=device, total_steps=1, warmup_steps=0)
        memory_format = torch.channels_last if self.learner.channels_last else torch.contiguous_format
        self.x = torch.randn(batch_size, 3, 32, 32, device=device).contiguous(memory_format=memory_format)
        self.y = torch.randint(0, 10, (batch_size,), device=device)
        self.times: list[float] = []
        self.failure = ""

    def step(self, timed: bool) -> None:
        """One synchronised training step; a variant that fails (e.g. compile unsupported) is dropped."""
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
        return None if self.failure else 1000 * statistics.median(self.times)


def measure(variants: list[Variant], warmup: int, steps: int) -> None:
    for _ in range(warmup):  # compilation happens here, outside timing
        for variant in variants:
            variant.step(timed=False)
    for _ in range(steps):
        for variant in variants:
            variant.step(timed=True)


def table(results: dict[str, dict[str, Variant]], modes: list[str]) -> str:
    header = "| activation | " + " | ".join(f"{m} ms/step | {m} / ReLU" for m in modes) + " |"
    lines = [header, "|" + "---|" * (1 + 2 * len(modes))]
    for name, by_mode in results.items():
        cells = []
        for mode in modes:
            ms, base = by_mode[mode].median_ms(), results[BASELINE][mode].median_ms()
            cells += ["n/a", "n/a"] if ms is None or base is None else [f"{ms:.2f}", f"{ms / base:.2f}x"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    failures = {f"{n} ({m})": v.failure for n, d in results.items() for m, v in d.items() if v.failure}
    lines += [f"\nn/a {key}: {why}" for key, why in failures.items()]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    batch_size = args.batch_size or (128 if cuda else 32)
    steps = args.steps or (50 if cuda else 15)
    modes = ["eager", "compiled"] if (cuda if args.compile is None else args.compile) else ["eager"]
    results = {
        name: {mode: Variant(factory, device, batch_size, mode == "compiled") for mode in modes}
        for name, factory in VARIANTS.items()
    }
    measure([v for by_mode in results.values() for v in by_mode.values()], args.warmup, steps)
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"ResNet-20, 32x32, batch {batch_size}, {name}, torch {torch.__version__}; median of {steps} steps\n")
    print(table(results, modes))


if __name__ == "__main__":
    main()
