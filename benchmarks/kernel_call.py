"""Forward + backward time of one activation call on each kernel path, without the network around it.

Why: the whole-step benchmark (step_time.py) needs many minutes on a loaded CPU; this isolates the part
the kernel paths change. Each (activation, path) is built once, compiled kernels compile in 3 untimed
calls, then `y = act(x); y.backward(ones)` runs interleaved over all variants (native ReLU and Mish as
references), median of --rounds, forward and backward timed apart.
The default x, (32, 16, 32, 32), is the largest ResNet-20 activation at batch 32.

    python benchmarks/kernel_call.py [--rounds 20] [activation ...]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from afos.activation.module import KERNEL_PATHS, activation_factory
from afos.activation.spec import resolve_activation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("activations", nargs="*", default=["-x*erf(exp(-x))", "mila", "adaptive_tanh"])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(32, 16, 32, 32)
    variants: dict[tuple[str, str], nn.Module] = {("relu", "native nn.ReLU"): nn.ReLU(), ("mish", "native nn.Mish"): nn.Mish()}
    for text in args.activations:
        for path in KERNEL_PATHS:
            variants[(text, path)] = activation_factory(resolve_activation(text))()
            variants[(text, path)].use_kernels(path)

    def call(module: nn.Module) -> tuple[float, float]:
        leaf, ones = x.clone().requires_grad_(True), torch.ones_like(x)
        start = time.perf_counter()
        y = module(leaf)
        middle = time.perf_counter()
        y.backward(ones)
        return middle - start, time.perf_counter() - middle

    times: dict[tuple[str, str], list[tuple[float, float]]] = {key: [] for key in variants}
    for _ in range(3):
        for module in variants.values():
            call(module)
    for _ in range(args.rounds):
        for key, module in variants.items():
            times[key].append(call(module))
    print(f"x {tuple(x.shape)}, CPU {torch.get_num_threads()} threads, torch {torch.__version__}; median ms\n")
    print("| activation | path | forward | backward | both |\n|---|---|---:|---:|---:|")
    for (text, path), samples in times.items():
        forward, backward = (1000 * statistics.median(part) for part in zip(*samples))
        both = 1000 * statistics.median(f + b for f, b in samples)
        print(f"| {text} | {path} | {forward:.2f} | {backward:.2f} | {both:.2f} |")


if __name__ == "__main__":
    main()
