"""The GPU suite: one script, one table, for the first (and every later) session on a CUDA machine.

Rows, all measured in this one process:

1. the CUDA test run: pytest of the kernel and activation tests (their CUDA parameters run when CUDA
   is present), passed/failed counts;
2. bf16 training-step time per activation and kernel path (eager chain / fused / compiled / compiled with
   the step's forward and backward replayed as CUDA graphs, the train key ``cuda_graphs``), as ratios to
   native ReLU (for graphs, over native ReLU graphed too; the ReLU line shows what graphing saves), and,
   for eelu only (one network compile each), the whole network compiled (kernels = "model"), for
   ResNet-20 at batch 256 and the airbench model at batch 512, plus the step's peak-memory increment over
   ReLU's (CUDA) and the saved-for-backward bytes per site over the site's input;
3. seconds per candidate (build, compile and train, data already loaded) and candidates per GPU-hour for
   the shipped configs cifar10-resnet20 and cifar10-fast, each also with cuda_graphs on CUDA, on the
   CIFAR-10 subset under
   $AFOS_TEST_DATA/cifar10-subset, at the configs' full budget (the last halving rung, the most expensive one).

Target: under 8 minutes on one H100/H200. ``--quick`` runs every row at tiny sizes (a few steps, small
batches), on the CPU too; it checks the script, not the machine (tests/test_gpu_suite.py runs it).

    python benchmarks/gpu_suite.py [--quick] [--device auto] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from afos.activation.module import activation_factory
from afos.activation.spec import resolve_activation
from afos.config import load_config
from afos.training.config import TrainConfig, resolve_device
from afos.training.data.registry import load_dataset
from afos.training.fitness import run_fitness

sys.path.insert(0, str(Path(__file__).parent))
from step_time import Variant, activation_variants, measure

ROOT = Path(__file__).resolve().parent.parent
ACTIVATIONS = {"eelu": "-x*erf(exp(-x))", "mila": "mila", "adaptive_tanh": "adaptive_tanh",
               "tree": "x*erf(sigmoid(x))*atan(x) + tanh(x)"}
PATHS = ("eager", "fused", "compiled", "graphs", "model")
#: The whole network compiled (kernels = "model") costs a compile per network; only these get one.
MODEL_ACTIVATIONS = ("eelu",)
CONFIGS = ("cifar10-fast", "cifar10-resnet20")  # the search's GPU default first
#: Candidates of the seconds-per-candidate rows, one constant per row: a constant is folded into the kernel's
#: source, so every row compiles its kernels afresh, as every new candidate of a search does.
CANDIDATES = ("relu", "x*atan(softplus({c}*x))", "sin({c}*x)*sigmoid(x) + x")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the script, also on the CPU")
    parser.add_argument("--skip-tests", action="store_true", help="no test row (scripts/gpu-session.sh runs them apart)")
    parser.add_argument("--device", default="auto")
    subset = os.path.join(os.environ["AFOS_TEST_DATA"], "cifar10-subset") if "AFOS_TEST_DATA" in os.environ else None
    parser.add_argument("--data-dir", default=subset, help="holds cifar-10-batches-py; default: $AFOS_TEST_DATA/cifar10-subset")
    return parser.parse_args()


def test_row(quick: bool, skip: bool) -> str:
    if quick or skip:
        return f"skipped ({'--quick' if quick else '--skip-tests'})"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/activation",
               "tests/training/test_cuda_graphs.py"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    counts = re.findall(r"(\d+) (passed|failed|error|skipped)", done.stdout)
    return ", ".join(f"{n} {what}" for n, what in counts) or done.stdout[-300:]


def peak_step_bytes(variant: Variant) -> float | None:
    """Peak memory of one training step above what was allocated before it (CUDA only)."""
    if not variant.x.is_cuda or variant.failure:
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    variant.step(timed=False)
    return float(torch.cuda.max_memory_allocated() - before)


def step_rows(model: str, device: torch.device, batch: int, steps: int, warmup: int, *, compile_networks: bool) -> list[str]:
    """One line per activation: step ratios per kernel path, peak memory and saved bytes vs native ReLU.

    The graphs column is over native ReLU graphed as well (like against like); the ReLU line gives the
    graphed native ReLU over the ungraphed one, the launch overhead CUDA graphs remove.
    """
    cuda = device.type == "cuda"
    relu = {graphs: Variant(nn.ReLU, device, batch, model, cuda_graphs=graphs) for graphs in (False, cuda)}
    if compile_networks:
        relu["model"] = Variant(nn.ReLU, device, batch, model, compile_model=True)
    table: dict[str, dict[str, Variant]] = {}
    for name, text in ACTIVATIONS.items():
        table[name] = {}
        for path in PATHS:
            if (path == "graphs" and not cuda) or (path == "model" and not (compile_networks and name in MODEL_ACTIVATIONS)):
                continue
            graphs = path == "graphs"  # compiled kernels, steps replayed as CUDA graphs (train key cuda_graphs)
            site_path = "compiled" if graphs else "fused" if path == "model" else path
            table[name][path] = Variant(activation_variants(text, site_path), device, batch, model,
                                        cuda_graphs=graphs, compile_model=path == "model")
    everything = [*relu.values(), *(v for row in table.values() for v in row.values())]
    measure(everything, warmup, steps)
    base, base_peak = relu[False].median_ms(), peak_step_bytes(relu[False])
    graphed, compiled = relu[cuda].median_ms(), relu["model"].median_ms() if "model" in relu else None
    lines = [f"| {model} b{batch} | native ReLU: {base or 0:.2f} ms/step; graphed / ungraphed "
             f"{'n/a' if not cuda or graphed is None or base is None else f'{graphed / base:.2f}x'}; "
             f"in a compiled network / plain {'n/a' if compiled is None or base is None else f'{compiled / base:.2f}x'} |"]
    for name, row in table.items():
        cells = []
        for path in PATHS:
            ms = row[path].median_ms() if path in row else None
            reference = graphed if path == "graphs" else base
            cells.append("n/a" if ms is None or reference is None else f"{ms / reference:.2f}x")
        peaks = [peak_step_bytes(v) for v in row.values()]
        peak = "n/a" if base_peak is None else " / ".join(f"{p / base_peak:.2f}x" for p in peaks if p is not None)
        saved = " / ".join("n/a" if p == "model" else f"{v.saved_ratio:.2f}x" for p, v in row.items())
        lines.append(f"| {model} b{batch} | {name} | " + " | ".join(cells) + f" | {peak} | {saved} |")
    notes = [f"{n} {p}: {v.failure or v.learner.note}" for n, row in table.items() for p, v in row.items()
             if v.failure or v.learner.note]
    return lines + [f"|  | n/a or uncaptured: {why} |" for why in notes]


def candidate_rows(device: torch.device, data_dir: str | None, quick: bool) -> list[str]:
    """Seconds per candidate on each config's train table, compile included, and candidates per hour."""
    if data_dir is None:
        return ["| (all configs) | skipped: no --data-dir or $AFOS_TEST_DATA |  |  |"]
    lines = []
    rows = [(p, g) for p in CONFIGS for g in ((False, True) if device.type == "cuda" else (False,))]
    for row, (path, graphs) in enumerate(rows):
        settings = dict(load_config(path).get("train", {}))
        settings.update(device=str(device), data_dir=data_dir, timeout_s=None, cuda_graphs=graphs)
        if quick:
            settings.update(steps=2, batch_size=16)
        config = TrainConfig.from_dict(settings)
        dataset = load_dataset(config.dataset, config.data_dir, val_fraction=config.val_fraction, seed=0)
        seconds, notes = [], []
        for text in (candidate.format(c=1 + (row + 1) / 10) for candidate in CANDIDATES):
            start = time.perf_counter()
            result = run_fitness(activation_factory(resolve_activation(text)), config, dataset=dataset)
            seconds.append(time.perf_counter() - start)
            notes.append(f"{text}: {result.status} acc {result.val_accuracy or 0:.3f}, {result.kernels}"
                         f"{' graphed' if result.cuda_graphs else ''}, compile {result.compile_seconds:.1f} s"
                         f"{', ' + result.kernel_note if result.kernel_note else ''}")
        mean = statistics.mean(seconds)
        label = f"{path}{' + cuda_graphs' if graphs else ''}"
        lines.append(f"| {label} ({config.epochs:g} epochs, {len(dataset.train_y)} train images) | {mean:.1f} | "
                     f"{3600 / mean:.0f} | {'; '.join(notes)} |")
    return lines


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    start = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"afos GPU suite on {name}, torch {torch.__version__}{' (--quick)' if args.quick else ''}\n")
    print(f"tests: {test_row(args.quick, args.skip_tests)}\n")
    print("| model | activation | eager / ReLU | fused / ReLU | compiled / ReLU | graphs / ReLU graphed | "
          "model / ReLU | peak step memory / ReLU (per path measured) | saved bytes per site / input |")
    print("|---|---|---:|---:|---:|---:|---:|---|---|")
    steps, warmup = (2, 1) if args.quick else (30, 5)
    sizes: list[tuple[str, int]] = [("airbench", 8), ("resnet20", 8)] if args.quick else [("airbench", 512), ("resnet20", 256)]
    for model, batch in sizes:
        print("\n".join(step_rows(model, device, batch, steps, warmup, compile_networks=not args.quick)))
    print("\n| config | s / candidate | candidates / hour | runs |")
    print("|---|---:|---:|---|")
    print("\n".join(candidate_rows(device, args.data_dir, args.quick)))
    print(f"\nsuite wall time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
